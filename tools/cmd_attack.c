/* finch attack: one attack, or the robust paper's suite, on a saved model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "run.h"
#include "dist/dist.h"
#include "run_dir.h"
#include "core/fileio.h"

/* The suite's table: Markdown into md (a buffer of n bytes), rows into the JSON array. */
static size_t suite_table(const char *suite, const SuiteRow *rows, int n_rows, const char *title, char *md, size_t n, cJSON *list) {
    NamedAttack atk[SUITE_MAX];
    int na = suite_attacks(suite, rows[0].eps, atk);
    size_t k = (size_t)snprintf(md, n, "# %s\n\n| eps | images | clean |", title);
    for (int a = 0; a < na; a++) k += (size_t)snprintf(md + k, n - k, " %s |", atk[a].name);
    k += (size_t)snprintf(md + k, n - k, " worst case |\n|---|---|---|");
    for (int a = 0; a <= na; a++) k += (size_t)snprintf(md + k, n - k, "---|");
    k += (size_t)snprintf(md + k, n - k, "\n");
    for (int i = 0; i < n_rows; i++) {
        const SuiteRow *r = &rows[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(list, j);
        cJSON_AddNumberToObject(j, "eps", r->eps);
        cJSON_AddNumberToObject(j, "images", r->total);
        cJSON_AddNumberToObject(j, "clean_acc", (double)r->clean / r->total);
        k += (size_t)snprintf(md + k, n - k, "| %.4g (%.1f/255) | %d | %.2f |", r->eps, r->eps * 255, r->total, 100.0 * r->clean / r->total);
        for (int a = 0; a < na; a++) {
            cJSON_AddNumberToObject(j, atk[a].name, (double)r->robust[a] / r->total);
            k += (size_t)snprintf(md + k, n - k, " %.2f |", 100.0 * r->robust[a] / r->total);
        }
        cJSON_AddNumberToObject(j, "worst_case", (double)r->worst / r->total);
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        k += (size_t)snprintf(md + k, n - k, " %.2f |\n", 100.0 * r->worst / r->total);
    }
    return k;
}

/* The self-checks' findings into the JSON ("warnings", always present) and the Markdown. */
static size_t add_warnings(char (*w)[256], int n_found, int max, cJSON *doc, char *md, size_t k, size_t n) {
    cJSON *arr = cJSON_AddArrayToObject(doc, "warnings");
    k += (size_t)snprintf(md + k, n - k, "\n## Self-checks\n\n");
    if (n_found == 0) k += (size_t)snprintf(md + k, n - k, "None of the symptoms of gradient masking or a broken attack was seen.\n");
    for (int i = 0; i < n_found && i < max; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(w[i]));
        k += (size_t)snprintf(md + k, n - k, "- **warning**: %s\n", w[i]);
        fprintf(stderr, "finch attack: warning: %s\n", w[i]);
    }
    return k;
}

/* A suite's finished radii, kept in DIR/robustness.partial.json after each one, so that the same
 * command run again after a kill does only the radii still to do (a strong suite's radius takes
 * tens of minutes on a CPU). They count only for the same model file (path, size and time), data,
 * suite, image count, batch and seed; the file goes when the suite's results are written. */
static cJSON *partial_key(const char *model_file, const Dataset *test, const char *suite, int limit, int batch, uint64_t seed) {
    struct stat st;
    bool known = stat(model_file, &st) == 0;
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "model_file", model_file);
    cJSON_AddNumberToObject(k, "model_bytes", known ? (double)st.st_size : -1);
    cJSON_AddNumberToObject(k, "model_mtime", known ? (double)st.st_mtime : -1);
    cJSON_AddStringToObject(k, "data", test->name);
    cJSON_AddStringToObject(k, "suite", suite);
    cJSON_AddNumberToObject(k, "limit", limit);
    cJSON_AddNumberToObject(k, "batch", batch);
    cJSON_AddNumberToObject(k, "seed", (double)seed);
    return k;
}

/* The row of radius eps from the partial file of this key into *r: true when found whole. */
static bool partial_row(const cJSON *doc, const cJSON *key, double eps, int n_attacks, SuiteRow *r) {
    if (!doc || !cJSON_Compare(cJSON_GetObjectItemCaseSensitive(doc, "key"), key, true)) return false;
    const cJSON *j;
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(doc, "rows")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eps"), *rob = cJSON_GetObjectItemCaseSensitive(j, "robust");
        if (!cJSON_IsNumber(e) || e->valuedouble != eps || cJSON_GetArraySize(rob) != n_attacks) continue;
        SuiteRow v = { .eps = eps, .n_attacks = n_attacks };
        v.total = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "total"));
        v.clean = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "clean"));
        v.worst = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "worst"));
        v.seconds = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "seconds"));
        for (int a = 0; a < n_attacks; a++) v.robust[a] = (int)cJSON_GetNumberValue(cJSON_GetArrayItem(rob, a));
        if (!(v.total > 0 && v.clean >= 0 && v.clean <= v.total && v.worst >= 0 && v.worst <= v.clean)) continue;
        *r = v;
        return true;
    }
    return false;
}

static void partial_save(const char *path, const cJSON *key, const SuiteRow *rows, int n) {
    cJSON *doc = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(doc, "rows");
    cJSON_AddItemToObject(doc, "key", cJSON_Duplicate(key, true));
    for (int i = 0; i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(list, j);
        cJSON_AddNumberToObject(j, "eps", rows[i].eps);
        cJSON_AddNumberToObject(j, "total", rows[i].total);
        cJSON_AddNumberToObject(j, "clean", rows[i].clean);
        cJSON_AddItemToObject(j, "robust", cJSON_CreateIntArray(rows[i].robust, rows[i].n_attacks));
        cJSON_AddNumberToObject(j, "worst", rows[i].worst);
        cJSON_AddNumberToObject(j, "seconds", rows[i].seconds);
    }
    char *text = cJSON_Print(doc);
    if (write_file_atomic(path, text, strlen(text)) != 0) fprintf(stderr, "finch attack: %s (going on without it)\n", ft_last_error());
    free(text);
    cJSON_Delete(doc);
}

/* finch attack --suite paper|strong: every attack of the suite at every eps of eps_list. */
static int run_suite(Model *m, const char *model_file, const Dataset *test, const char *suite, const char *eps_list, int limit,
                     int batch, uint64_t seed, bool quiet, const char *dir) {
    SuiteRow rows[8];
    double eps[8];
    int n_rows = cli_parse_eps_list("attack", "eps-list", eps_list, eps, 8);
    if (n_rows < 0) return 2;
    char partial[1100];
    snprintf(partial, sizeof partial, "%s/robustness.partial.json", dir);
    bool keep = !ft_dist_active();   /* several processes: each would have to read the same file; not kept */
    cJSON *key = partial_key(model_file, test, suite, limit, batch, seed);
    char *text = keep ? read_file(partial, NULL) : NULL;
    cJSON *done = text ? cJSON_Parse(text) : NULL;
    free(text);
    for (int i = 0; i < n_rows; i++) {
        NamedAttack atk[SUITE_MAX];
        if (partial_row(done, key, eps[i], suite_attacks(suite, eps[i], atk), &rows[i])) {
            if (!quiet) printf("eps %g: from %s (an earlier run of this command)\n", eps[i], partial);
            continue;
        }
        rows[i] = robust_suite(m, test, limit, batch, suite, eps[i], seed, quiet);
        if (keep && i + 1 < n_rows) partial_save(partial, key, rows, i + 1);
    }
    cJSON_Delete(done);
    cJSON_Delete(key);
    char title[1200], md[16384], path[1100], warnings[32][256];
    snprintf(title, sizeof title, "Robustness of %s (%s), %s, suite %s", m->arch, model_file, test->name, suite);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model_file", model_file);
    cJSON_AddStringToObject(doc, "suite", suite);
    size_t k = suite_table(suite, rows, n_rows, title, md, sizeof md, cJSON_AddArrayToObject(doc, "rows"));
    add_warnings(warnings, suite_checks(suite, rows, n_rows, warnings, 32), 32, doc, md, k, sizeof md);
    printf("%s", md);
    snprintf(path, sizeof path, "%s/robustness.json", dir);
    int rc = ft_dist_rank() > 0 ? 0 : run_write_json("attack", path, doc);   /* several processes: rank 0 writes */
    cJSON_Delete(doc);
    snprintf(path, sizeof path, "%s/robustness.md", dir);
    if (!rc && ft_dist_rank() == 0 && (rc = write_file_atomic(path, md, strlen(md))) != 0) fprintf(stderr, "finch attack: %s\n", ft_last_error());
    if (!rc) printf("\nwritten: %s/robustness.json and %s\n", dir, path);
    if (!rc && keep) unlink(partial);
    return rc ? 1 : 0;
}

/* The attacks by name, with their defaults. */
/* "mean (median)" with the given decimals, or "-" when nothing was measured. */
static const char *stat_str(Stat s, int decimals, char *buf, size_t n) {
    if (isnan(s.mean)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.*f (%.*f)", decimals, s.mean, decimals, s.median);
    return buf;
}

/* attack.md: the run's one row. */
static void attack_table(const char *title, const char *kind, const AttackStats *r, char *md, size_t n) {
    char b[4][64];
    snprintf(md, n,
             "# %s\n\n"
             "| attack | images | clean | robust | success | success, 8-bit | L0 | L1 | L2 | L-inf |\n"
             "|---|---|---|---|---|---|---|---|---|---|\n"
             "| %s | %d | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n\n"
             "Percentages of the attacked images. Distortions on the 0..1 pixel scale: mean (median) over the %d\n"
             "successful examples of the %d whose clean image did not already meet the goal; L0 counts the\n"
             "pixels changed by more than half a grey level.\n",
             title, kind, r->total, 100.0 * r->clean_correct / r->total, 100.0 * r->adv_correct / r->total,
             100.0 * r->success / r->total, 100.0 * r->success_8bit / r->total, stat_str(r->l0, 1, b[0], 64),
             stat_str(r->l1, 3, b[1], 64), stat_str(r->l2, 4, b[2], 64), stat_str(r->linf, 4, b[3], 64), r->measured, r->needed);
}

/* --save-adv's folder made, as --out's is, and writable, before the attack runs rather than after
 * it (a long attack whose examples cannot be kept). 0, or -1 with ft_last_error(). */
static int save_path_ok(const char *path) {
    char folder[1024];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    if (!slash) snprintf(folder, sizeof folder, ".");
    else if (slash == folder) folder[1] = 0;
    else *slash = 0;
    if (make_dirs(folder) != 0) return ft_error("--save-adv %s: %s", path, ft_last_error());
    if (access(folder, W_OK) != 0) return ft_error("--save-adv %s: the folder %s is not writable", path, folder);
    return 0;
}

int cmd_attack(int argc, char **argv) {
    if (cli_given(argc, argv, "retrieval")) return cmd_attack_retrieval(argc, argv);   /* attack_retrieval.c */
    const char *file = NULL, *kind = "pgd", *out = NULL, *device = "cpu", *run = NULL, *suite = NULL, *eps_list = "2/255,8/255";
    const char *target_s = "untargeted", *norm_s = "inf", *rule = "en", *save = NULL;
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 1000, batch = 250, steps = 0, seed = 1, threads = 0, search_steps = 9, restarts = 1, queries = 5000;
    double eps = 0.1, alpha = 0, kappa = 0, c0 = 1e-3, lr = 1e-2, beta = 1e-3;
    bool quiet = false;
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        { "run", ARG_STRING, &run, 0, 0, "a run directory of finch train: its model.safetensors and (unless --data) its data, results written there" },
        DATA_ARGS(d),
        { "attack", ARG_STRING, &kind, 0, 0, "fgsm | fgsm-rs | pgd | bim (= ifgsm) | mim | apgd-ce | apgd-dlr | apgd-t | square | cw (C&W-L2) | ead" },
        { "suite", ARG_STRING, &suite, 0, 0, "paper: FGSM, BIM-10, PGD-10 and MIM-10 at every --eps-list radius; strong: APGD-CE, "
          "APGD-T and Square, then the paper's (per-example worst case, self-checks); killed, the same command continues after the "
          "radii it finished (kept in robustness.partial.json)" },
        { "eps-list", ARG_STRING, &eps_list, 0, 0, "radii of --suite" },
        { "target", ARG_STRING, &target_s, 0, 0, "untargeted | random (another class, seeded) | least-likely (of the clean logits) | CLASS" },
        { "norm", ARG_STRING, &norm_s, 0, 0, "pgd, apgd-*: inf | 2" },
        { "restarts", ARG_INT, &restarts, 1, 1000, "apgd-*: random restarts on the examples not fooled yet" },
        { "queries", ARG_INT, &queries, 1, 10000000, "square: queries of the model per example" },
        { "eps", ARG_EPS, &eps, 0, 1000, "radius on [0,1] pixels (L-inf: 8/255 or 0.0314; L2: the whole image's)" },
        { "alpha", ARG_EPS, &alpha, 0, 1000, "step size (pgd, fgsm-rs; 0: 0.01 under L-inf, eps / 5 under L2)" },
        { "steps", ARG_INT, &steps, 0, 1000000, "iterations (pgd, bim, mim: 0 means 20; apgd-*: 100; cw, ead: 1000)" },
        { "kappa", ARG_DOUBLE, &kappa, 0, 1e6, "cw, ead: logit margin the goal must be met by" },
        { "search-steps", ARG_INT, &search_steps, 1, 1000, "cw, ead: binary search steps over the constant c" },
        { "c", ARG_DOUBLE, &c0, 1e-12, 1e12, "cw, ead: initial constant c" },
        { "lr", ARG_DOUBLE, &lr, 1e-12, 1e6, "cw: Adam's learning rate; ead: the first step (it decays as sqrt(1 - k / steps))" },
        { "beta", ARG_DOUBLE, &beta, 0, 1e6, "ead: weight of the L1 distance" },
        { "rule", ARG_STRING, &rule, 0, 0, "ead: keep the smallest en (elastic-net) | l1 distance" },
        { "save-adv", ARG_STRING, &save, 0, 0, "write the adversarial images with index, label, target and predictions (safetensors)" },
        { "limit", ARG_INT, &limit, 1, 2147483647, "first N test images" },
        { "batch", ARG_INT, &batch, 1, 65536, "batch size" },
        { "out", ARG_STRING, &out, 0, 0, "directory for attack.json, attack.md and attack.png (default: the model's)" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed (random starts, random targets)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("attack", "White-box attack on a saved model: clean accuracy, robust accuracy, success rate (also after\n"
                       "rounding to 8-bit pixels) and distortion; attack.json, attack.md and attack.png (clean images,\n"
                       "adversarial images, perturbations, predicted classes). With --retrieval: adversarial retrieval\n"
                       "queries (ODFA, U-turn) and Recall@K / mAP before and after (finch attack --retrieval --help).",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    Norm norm = strcmp(norm_s, "2") == 0 ? NORM_L2 : NORM_INF;
    if (strcmp(norm_s, "2") != 0 && strcmp(norm_s, "inf") != 0) { fprintf(stderr, "finch attack: --norm must be inf or 2, got '%s'\n", norm_s); return 2; }
    if (norm == NORM_INF && eps > 1) {
        fprintf(stderr, "finch attack: --eps is out of range for an L-inf attack: expected 0..1, got %g\n", eps);
        return 2;
    }
    if (alpha == 0) alpha = norm == NORM_L2 ? eps / 5 : 0.01;
    AttackSpec a = { 0 };
    if (!run_attack_spec(kind, eps, alpha, steps, norm, &a)) {
        fprintf(stderr, "finch attack: --attack must be fgsm, fgsm-rs, pgd, bim, ifgsm, mim, apgd-ce, apgd-dlr, apgd-t, square, cw or ead, "
                "got '%s'\n", kind);
        return 2;
    }
    if (!target_parse(target_s, &a.target)) {
        fprintf(stderr, "finch attack: --target must be untargeted, random, least-likely or a class number, got '%s'\n", target_s);
        return 2;
    }
    if (a.kind == ATTACK_APGD) a.apgd.restarts = restarts;
    if (a.kind == ATTACK_SQUARE) a.square.queries = queries;
    if (a.kind == ATTACK_APGD && a.apgd.loss == APGD_DLR_TARGETED && a.target.mode != TARGET_UNTARGETED) {
        fprintf(stderr, "finch attack: --target does nothing for --attack apgd-t, which targets the runner-up classes itself; drop it\n");
        return 2;
    }
    if (strcmp(rule, "en") != 0 && strcmp(rule, "l1") != 0) { fprintf(stderr, "finch attack: --rule must be en or l1, got '%s'\n", rule); return 2; }
    if (a.kind != ATTACK_STEPS) {
        a.opt.kappa = kappa; a.opt.c0 = c0; a.opt.lr = lr; a.opt.search_steps = search_steps;
        a.opt.beta = beta; a.opt.rule = strcmp(rule, "l1") == 0 ? EAD_RULE_L1 : EAD_RULE_EN;
        if (steps) a.opt.steps = steps;
    }
    if (suite && strcmp(suite, "paper") != 0 && strcmp(suite, "strong") != 0) {
        fprintf(stderr, "finch attack: --suite must be paper or strong, got '%s'\n", suite);
        return 2;
    }
    if (run && file) { fprintf(stderr, "finch attack: give --run or --model-file, not both\n"); return 2; }
    if ((rc = cli_unused_attack_flags(argc, argv, kind, suite != NULL)) != 0) return rc;
    char model_path[1100];
    RunDataCopy keep;
    if (run) { snprintf(model_path, sizeof model_path, "%s/model.safetensors", run); file = model_path; }
    if ((rc = run_data_of_run("attack", run, argc, argv, &d, &keep)) != 0) return rc;   /* the run's data, unless told otherwise */
    Device dev;
    if (!cli_device("attack", device, &dev)) return 2;
    run_set_threads(threads);
    Splits data;
    Model *m = run_load_model("attack", file, &d, dev, &data, &rc);
    if (!m) return rc;
    if (a.target.mode == TARGET_CLASS && a.target.cls >= m->num_classes) {
        fprintf(stderr, "finch attack: --target %d: the model has classes 0..%d\n", a.target.cls, m->num_classes - 1);
        model_free(m);
        splits_free(&data);
        return 2;
    }
    char dir[1024], png[1100], json[1100], mdpath[1100];
    snprintf(dir, sizeof dir, "%s", out ? out : file);
    if (!out) { char *slash = strrchr(dir, '/'); if (slash) *slash = 0; else snprintf(dir, sizeof dir, "."); }
    snprintf(png, sizeof png, "%s/attack.png", dir);
    snprintf(json, sizeof json, "%s/attack.json", dir);
    snprintf(mdpath, sizeof mdpath, "%s/attack.md", dir);
    if ((save && save_path_ok(save) != 0) || make_dirs(dir) != 0) {
        fprintf(stderr, "finch attack: %s\n", ft_last_error());
        model_free(m);
        splits_free(&data);
        return 1;
    }
    if (suite) {
        rc = run_suite(m, file, &data.test, suite, eps_list, limit, batch, (uint64_t)seed, quiet, dir);
        model_free(m);
        splits_free(&data);
        return rc;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model_file", file);
    cJSON_AddStringToObject(doc, "attack", kind);
    AttackStats r;
    RunAttackFiles files = { .png = png, .save_adv = save, .model_file = file, .attack_name = kind };
    rc = run_attack(m, &data.test, limit, batch, &a, (uint64_t)seed, &files, quiet, doc, &r);
    char title[1200], md[4096], warnings[1][256];
    snprintf(title, sizeof title, "%s on %s (%s), %s, target %s", kind, m->arch, file, data.test.name, target_s);
    attack_table(title, kind, &r, md, sizeof md);
    /* (c) an unbounded attack (C&W, EAD, or the whole pixel box) must reach its goal everywhere */
    bool unbounded = a.kind == ATTACK_CW || a.kind == ATTACK_EAD || (a.kind == ATTACK_STEPS && a.step.norm == NORM_INF && eps >= 1);
    int n_warn = 0;
    if (unbounded && r.success < r.total)
        snprintf(warnings[n_warn++], 256, "%s has no distortion limit, yet %d of %d examples do not meet the goal: the "
                 "attack is broken, too short, or the gradients mislead", kind, r.total - r.success, r.total);
    add_warnings(warnings, n_warn, 1, doc, md, strlen(md), sizeof md);
    /* the results are written even when --save-adv could not be (the exit status still says so) */
    if (ft_dist_rank() > 0) {}   /* several processes: rank 0 writes */
    else if (run_write_json("attack", json, doc) != 0) rc = 1;
    else if (write_file_atomic(mdpath, md, strlen(md)) != 0) { fprintf(stderr, "finch attack: %s\n", ft_last_error()); rc = 1; }
    printf("%s\n%s: clean accuracy %.2f%%, robust accuracy %.2f%%, success %.2f%% on %d images\n", md, kind,
           100.0 * r.clean_correct / r.total, 100.0 * r.adv_correct / r.total, 100.0 * r.success / r.total, r.total);
    if (!rc) printf("\nwritten: %s, %s, %s%s%s\n", json, mdpath, png, save ? ", " : "", save ? save : "");
    cJSON_Delete(doc);
    model_free(m);
    splits_free(&data);
    return rc ? 1 : 0;
}
