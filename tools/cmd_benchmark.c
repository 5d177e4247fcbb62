/* finch benchmark: the robustness benchmark of Su et al. (ECCV 2018) over the user's models: clean
 * accuracy, size, FGSM / I-FGSM / C&W-L2 / EAD success and distortion, CLEVER (L2 and L-inf,
 * untargeted), the transferability matrix, and distortion against classification error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "plot.h"
#include "dist/dist.h"
#include "bench_report.h"
#include "core/fileio.h"
#include "core/progress.h"

typedef struct {
    int limit, clever_limit, transfer_limit, batch, steps, cw_steps, search_steps, batches, samples;
    double eps;
    const char *clever_target;    /* untargeted | top-K */
    uint64_t seed;
    char text[512];               /* all of it, kept in every result file: a re-run reuses only its own */
} Settings;

static int save(const char *dir, const char *name, cJSON *doc, const Settings *s) {
    if (ft_dist_rank() > 0) return 0;   /* several processes share each step; rank 0 writes */
    char path[1500];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "settings");
    cJSON_AddStringToObject(doc, "settings", s->text);
    return run_write_json("benchmark", path, doc);
}

/* Overall progress between the steps: what is done, of how many, and the time left at this rate. */
typedef struct { int done, total; double start; bool quiet; } Overall;
static void step_done(Overall *o, const char *what) {
    o->done++;
    if (o->quiet) return;
    double el = ft_now() - o->start, left = o->done ? el / o->done * (o->total - o->done) : 0;
    fprintf(stderr, "benchmark: %d of %d steps done (%s), %.0f s so far, ETA %.0f s\n", o->done, o->total, what, el, left);
}

/* One step's result for model m, computed into doc. 0 or 1 (printed). */
static int compute(Model *m, const char *file, int step, const Dataset *test, const Settings *s, bool quiet, cJSON *doc) {
    if (step == BENCH_CLEAN) {
        Accuracy a = clean_accuracy(m, test, 0, s->batch, quiet);
        cJSON_AddNumberToObject(doc, "clean_accuracy", (double)a.correct / a.total);
        cJSON_AddNumberToObject(doc, "test_images", a.total);
        cJSON_AddNumberToObject(doc, "parameters", (double)m->params.n_trainable);
        return 0;
    }
    if (step <= BENCH_EAD) {
        const char *name = bench_step_names[step];
        AttackSpec a = { 0 };
        run_attack_spec(step == BENCH_IFGSM ? "bim" : name, s->eps, s->eps, s->steps, NORM_INF, &a);
        if (step >= BENCH_CW) { a.opt.steps = s->cw_steps; a.opt.search_steps = s->search_steps; }
        RunAttackFiles files = { .model_file = file, .attack_name = name };
        AttackStats st;
        return run_attack(m, test, s->limit, s->batch, &a, s->seed, &files, quiet, doc, &st);
    }
    CleverConfig cfg = clever_defaults(step == BENCH_CLEVER_INF ? NORM_INF : NORM_L2);
    cfg.batches = s->batches;
    cfg.samples = s->samples;
    int n, fb, fits;
    double sec;
    run_clever(m, test, s->clever_limit, &cfg, s->clever_target, s->seed, quiet, doc, &n, &fb, &fits, &sec);
    return 0;
}

/* Everything for model i into dir/<name>/, reusing what a previous run with the same settings wrote. */
static int bench_model(const ModelList *ms, int i, const Dataset *test, const Settings *s, const char *dir, bool quiet, Overall *ov,
                       BenchRow *row) {
    char md[1200], step[160];
    snprintf(md, sizeof md, "%s/%s", dir, ms->name[i]);
    if (make_dirs(md) != 0) { fprintf(stderr, "finch benchmark: %s\n", ft_last_error()); return 1; }
    for (int k = 0; k < BENCH_STEPS; k++) {
        cJSON *doc = bench_result_read(md, k, s->text);
        bool reused = doc != NULL;
        if (!doc) {
            doc = cJSON_CreateObject();
            if (compute(ms->m[i], ms->file[i], k, test, s, quiet, doc) != 0 || save(md, bench_step_names[k], doc, s) != 0) {
                cJSON_Delete(doc);
                return 1;
            }
        }
        bench_result_take(doc, k, row);
        cJSON_Delete(doc);
        snprintf(step, sizeof step, "%s: %s%s", ms->name[i], bench_step_names[k], reused ? ", reused" : "");
        step_done(ov, step);
    }
    return 0;
}

int cmd_benchmark(int argc, char **argv) {
    const char *models = NULL, *out = NULL, *device = "cpu";
    DataOpts d = { .data = "fashion-mnist" };
    Settings s = { .limit = 100, .clever_limit = 20, .transfer_limit = 200, .batch = 100, .steps = 10, .cw_steps = 1000,
                   .search_steps = 9, .batches = 50, .samples = 128, .eps = 0.1, .clever_target = "untargeted" };
    int seed = 1, threads = 0;
    bool quiet = false;
    const CliArg args[] = {
        { "models", ARG_STRING, &models, 0, 0, "model files or run directories, comma-separated (same classes and input)" },
        DATA_ARGS(d),
        { "out", ARG_STRING, &out, 0, 0, "directory for benchmark.json, benchmark.md, benchmark.png, one folder per model, transfer/ (required)" },
        { "limit", ARG_INT, &s.limit, 1, 1000000, "test images attacked per model" },
        { "eps", ARG_EPS, &s.eps, 0, 1, "FGSM and I-FGSM L-inf radius on [0, 1] pixels" },
        { "steps", ARG_INT, &s.steps, 1, 100000, "I-FGSM iterations" },
        { "cw-steps", ARG_INT, &s.cw_steps, 1, 1000000, "C&W and EAD iterations per search step" },
        { "search-steps", ARG_INT, &s.search_steps, 1, 1000, "C&W and EAD binary search steps" },
        { "clever-limit", ARG_INT, &s.clever_limit, 1, 1000000, "test images for CLEVER" },
        { "batches", ARG_INT, &s.batches, 1, 1000000, "CLEVER's N_b (the reference's 500 is slow on a CPU)" },
        { "samples", ARG_INT, &s.samples, 1, 100000000, "CLEVER's N_s (the reference's 1,024)" },
        { "clever-target", ARG_STRING, &s.clever_target, 0, 0, "CLEVER's targets: untargeted (every other class) | top-K (the 2nd "
          "to K-th most likely; top-2: the runner-up)" },
        { "transfer-limit", ARG_INT, &s.transfer_limit, 1, 1000000, "test images for the transfer matrix (every model right on them)" },
        { "batch", ARG_INT, &s.batch, 1, 65536, "batch size" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("benchmark", "The robustness benchmark over many models: clean accuracy, parameters, success and distortion of\n"
                       "FGSM, I-FGSM, C&W-L2 and EAD, CLEVER (L2, L-inf; untargeted unless --clever-target) and the transfer\n"
                       "matrix (I-FGSM);\n"
                       "benchmark.json, benchmark.md and benchmark.png (C&W L2 distortion against log classification error).\n"
                       "A re-run with the same settings reuses each model's result files.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!models || !out) { fprintf(stderr, "finch benchmark: --models and --out are required\n"); return 2; }
    if (!clever_target_ok(s.clever_target, 0)) {
        fprintf(stderr, "finch benchmark: --clever-target must be untargeted or top-K (K >= 2), got '%s'\n", s.clever_target);
        return 2;
    }
    s.seed = (uint64_t)seed;
    snprintf(s.text, sizeof s.text, "data %s, %d attacked images, eps %g, I-FGSM %d steps, C&W/EAD %d steps x %d searches, "
             "CLEVER %d images of %d x %d, %s, transfer %d images, seed %d", d.data, s.limit, s.eps, s.steps, s.cw_steps,
             s.search_steps, s.clever_limit, s.batches, s.samples, s.clever_target, s.transfer_limit, seed);
    Device dev;
    if (!cli_device("benchmark", device, &dev)) return 2;
    run_set_threads(threads);
    ModelList ms = { 0 };
    if ((rc = run_load_models("benchmark", models, dev, &ms)) != 0) { run_models_free(&ms); return rc; }
    Splits data;
    if ((rc = run_load_data("benchmark", &d, false, &data)) != 0) { run_models_free(&ms); return rc; }
    if ((rc = run_check_models("benchmark", &ms, &data.test, d.data)) == 0 && make_dirs(out) != 0) {
        fprintf(stderr, "finch benchmark: %s\n", ft_last_error());
        rc = 1;
    }
    BenchRow *rows = ft_xcalloc((size_t)ms.n, sizeof *rows);
    Overall ov = { 0, BENCH_STEPS * ms.n + 1, ft_now(), quiet };
    for (int i = 0; i < ms.n && rc == 0; i++) rc = bench_model(&ms, i, &data.test, &s, out, quiet, &ov, &rows[i]);
    char *transfer_md = NULL, path[1400];
    if (rc == 0) {   /* the transfer matrix, I-FGSM at the benchmark's eps and steps */
        snprintf(path, sizeof path, "%s/transfer", out);
        char file[1500];
        size_t n;
        snprintf(file, sizeof file, "%s/transfer.json", path);
        char *text = read_file(file, &n);
        cJSON *t = bench_result_parse(text, s.text);
        free(text);
        bool t_reused = t != NULL;
        if (!t) {
            t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "settings", s.text);
            TransferSpec ts = { "ifgsm", "untargeted", s.eps, &s.steps, 1, s.transfer_limit, s.batch, s.seed };
            rc = make_dirs(path) != 0 ? 1 : run_transfer("benchmark", &ms, &data.test, &ts, path, quiet, t, &transfer_md);
        } else {
            snprintf(file, sizeof file, "%s/transfer.md", path);
            transfer_md = read_file(file, &n);
        }
        cJSON_Delete(t);
        step_done(&ov, t_reused ? "transfer matrix, reused" : "transfer matrix");
    }
    if (rc == 0) {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "models");
        double x[RUN_MAX_MODELS], y[RUN_MAX_MODELS];
        const char *names[RUN_MAX_MODELS];
        int np = 0;
        for (int i = 0; i < ms.n; i++) {
            const BenchRow *r = &rows[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", ms.name[i]);
            cJSON_AddStringToObject(o, "file", ms.file[i]);
            cJSON_AddNumberToObject(o, "clean_accuracy", r->acc);
            cJSON_AddNumberToObject(o, "parameters", r->params);
            for (int k = 0; k < 4; k++) {
                cJSON *a = cJSON_AddObjectToObject(o, bench_step_names[BENCH_FGSM + k]);
                cJSON_AddNumberToObject(a, "success_rate", r->success[k]);
                cJSON_AddNumberToObject(a, "l2_mean", r->l2[k]);
                cJSON_AddNumberToObject(a, "linf_mean", r->linf[k]);
            }
            cJSON_AddNumberToObject(o, "clever_l2", r->clever2);
            cJSON_AddNumberToObject(o, "clever_linf", r->clever_inf);
            cJSON_AddItemToArray(arr, o);
            x[np] = bench_log_error(r);
            y[np] = r->l2[2];
            if (isfinite(x[np]) && isfinite(y[np])) names[np++] = ms.name[i];   /* a model with a C&W success */
        }
        cJSON_AddStringToObject(doc, "settings", s.text);
        snprintf(path, sizeof path, "%s/benchmark.json", out);
        bool writer = ft_dist_rank() == 0;
        rc = writer && run_write_json("benchmark", path, doc) ? 1 : 0;
        cJSON_Delete(doc);
        const char *all[RUN_MAX_MODELS];
        for (int i = 0; i < ms.n; i++) all[i] = ms.name[i];
        char *md = bench_summary(ms.n, all, rows, s.text, transfer_md);
        snprintf(path, sizeof path, "%s/benchmark.md", out);
        if (rc == 0 && writer && write_file_atomic(path, md, strlen(md)) != 0) { fprintf(stderr, "finch benchmark: %s\n", ft_last_error()); rc = 1; }
        snprintf(path, sizeof path, "%s/benchmark.png", out);
        if (rc == 0 && !writer) {}
        else if (rc == 0 && np == 0)
            fprintf(stderr, "finch benchmark: warning: no model has a successful C&W example: no plot\n");
        else if (rc == 0 && plot_scatter_fit(path, "C&W-L2 distortion against classification error", np, x, y, names,
                                             "log(classification error)", "mean C&W L2 distortion (successful examples)") != 0)
            fprintf(stderr, "finch benchmark: warning: %s\n", ft_last_error());
        printf("%s\n", md);
        if (rc == 0) printf("written: %s/benchmark.json, %s/benchmark.md, %s/benchmark.png\n", out, out, out);
        free(md);
    }
    free(transfer_md);
    free(rows);
    run_models_free(&ms);
    splits_free(&data);
    return rc;
}
