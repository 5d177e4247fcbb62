/* finch transfer: the transferability matrix of adversarial examples between models (Su et al.,
 * ECCV 2018): each source model attacks the same test images, each target model classifies every
 * source's examples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "run.h"
#include "dist/dist.h"
#include "plot.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "models/model_io.h"

void run_models_free(ModelList *ms) {
    for (int i = 0; i < ms->n; i++) model_free(ms->m[i]);
    ms->n = 0;
}

/* A model's short name: its run directory's for a model.safetensors, else the file's stem. */
static void short_name(const char *file, char *out, size_t n) {
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", file);
    char *base = strrchr(buf, '/');
    if (base && strcmp(base + 1, "model.safetensors") == 0) {
        *base = 0;
        base = strrchr(buf, '/');
    }
    const char *s = base ? base + 1 : buf;
    if (!base && strcmp(buf, "model.safetensors") == 0) s = "model";
    snprintf(out, n, "%.80s", s);
    char *dot = strstr(out, ".safetensors");
    if (dot) *dot = 0;
}

int run_load_models(const char *cmd, const char *list, Device dev, ModelList *ms) {
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", list);
    ms->n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (ms->n == RUN_MAX_MODELS) { fprintf(stderr, "finch %s: --models names more than %d models\n", cmd, RUN_MAX_MODELS); return 2; }
        char *f = ms->file[ms->n];
        snprintf(f, 1100, "%s", tok);
        struct stat sb;
        if (stat(f, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(f, 1100, "%s/model.safetensors", tok);
        if (!(ms->m[ms->n] = model_load(f, dev, NULL))) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return 1; }
        ms->m[ms->n]->training = false;
        short_name(f, ms->name[ms->n], sizeof ms->name[0]);
        for (int k = 0; k < ms->n; k++)   /* two runs both called "model": tell them apart */
            if (strcmp(ms->name[k], ms->name[ms->n]) == 0) {
                size_t l = strlen(ms->name[ms->n]);
                snprintf(ms->name[ms->n] + (l < 80 ? l : 80), 16, "#%d", ms->n + 1);
            }
        ms->n++;
    }
    if (ms->n < 1) { fprintf(stderr, "finch %s: --models needs at least one model\n", cmd); return 2; }
    return 0;
}

int run_check_models(const char *cmd, const ModelList *ms, const Dataset *test, const char *data) {
    int rc = 0;
    for (int i = 0; i < ms->n && rc == 0; i++) {
        if (ms->m[i]->num_classes != ms->m[0]->num_classes) {
            fprintf(stderr, "finch %s: %s has %d classes, %s %d: the models must share their classes\n", cmd, ms->file[i],
                    ms->m[i]->num_classes, ms->file[0], ms->m[0]->num_classes);
            rc = 2;
        } else {
            rc = run_check_input(cmd, ms->m[i], test, data);
        }
    }
    return rc;
}

/* Head-0 predictions of the n images x_host (floats, [n, ...] of shape s) by m, in batches. */
static void predict_all(Model *m, const float *x_host, Shape s, int n, int batch, int32_t *pred) {
    Device dev = m->params.device;
    Tape *tp = ft_tape_new(dev);
    int64_t per = 1;
    for (int d = 1; d < s.ndim; d++) per *= s.d[d];
    for (int start = 0; start < n; start += batch) {
        int b = n - start < batch ? n - start : batch;
        Shape bs = s;
        bs.d[0] = b;
        Tensor *x = ft_new(tp, FT_F32, bs);
        ft_from_floats(x, x_host + start * per, b * per);
        attack_predict(m, tp, x, pred + start);
    }
    ft_tape_free(tp);
}

/* The adversarial images of one source, on the host, and each image's goal. */
typedef struct { float *adv; int32_t *target; int64_t per; } Adv;

static void keep_adv(void *ctx, int start, int n, Tensor *x, Tensor *x_adv, const Goal *g, const int32_t *pc, const int32_t *pa) {
    (void)x; (void)pc; (void)pa;
    Adv *a = ctx;
    ft_to_floats(x_adv, a->adv + start * a->per, n * a->per);
    for (int i = 0; i < n; i++) a->target[start + i] = g->targets ? g->targets[i] : -1;
}

/* The examples' file (the --save-adv format of finch attack) */
static int save_examples(const char *path, const Adv *a, const Dataset *set, const char *model_file, const char *attack) {
    int n = dataset_size(set);
    Shape s = set->images->shape;
    Tensor *adv = ft_tensor_new(FT_F32, s, FT_CPU), *target = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    memcpy(ft_f32(adv), a->adv, (size_t)adv->numel * sizeof(float));
    memcpy(ft_i32(target), a->target, (size_t)n * sizeof(int32_t));
    const char *names[] = { "adv", "label", "target" }, *keys[] = { "format", "model_file", "attack" };
    const char *values[] = { "finch-adv", model_file, attack };
    Tensor *const t[] = { adv, set->labels, target };
    int rc = st_write(path, 3, names, t, 3, keys, values);
    ft_tensor_free(adv);
    ft_tensor_free(target);
    return rc;
}

/* The first `limit` test images that every model classifies correctly, as a dataset of their own. */
static int common_images(const ModelList *ms, const Dataset *test, int limit, int batch, Dataset *out, int32_t **index) {
    int N = dataset_size(test), n = 0;
    Shape s = test->images->shape;
    int64_t per = test->images->numel / (N ? N : 1);
    float *x = ft_xmalloc((size_t)(batch * per) * sizeof *x);
    int32_t *pred = ft_xmalloc((size_t)batch * sizeof *pred), *idx = ft_xmalloc((size_t)(N ? N : 1) * sizeof *idx);
    bool *ok = ft_xmalloc((size_t)batch * sizeof *ok);
    for (int start = 0; start < N && n < limit; start += batch) {
        int b = N - start < batch ? N - start : batch;
        for (int64_t k = 0; k < b * per; k++) x[k] = ft_u8(test->images)[start * per + k] / 255.0f;
        for (int i = 0; i < b; i++) ok[i] = true;
        for (int j = 0; j < ms->n; j++) {
            predict_all(ms->m[j], x, s, b, batch, pred);
            for (int i = 0; i < b; i++) ok[i] &= pred[i] == ft_i32(test->labels)[start + i];
        }
        for (int i = 0; i < b && n < limit; i++) if (ok[i]) idx[n++] = start + i;
    }
    free(x); free(pred); free(ok);
    *out = (Dataset){ .num_classes = test->num_classes };
    snprintf(out->name, sizeof out->name, "%s", test->name);
    s.d[0] = n;
    out->images = ft_tensor_new(FT_U8, s, FT_CPU);
    out->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int i = 0; i < n; i++) {
        memcpy(ft_u8(out->images) + i * per, ft_u8(test->images) + idx[i] * per, (size_t)per);
        ft_i32(out->labels)[i] = ft_i32(test->labels)[idx[i]];
    }
    *index = idx;
    return n;
}

/* transfer.md's table for one matrix. */
static void table(FILE *f, const ModelList *ms, const double *rate, const char *what) {
    fprintf(f, "\n%s (rows: source models, columns: target models; the diagonal is white-box):\n\n| source \\ target |", what);
    for (int j = 0; j < ms->n; j++) fprintf(f, " %s |", ms->name[j]);
    fprintf(f, "\n|---|");
    for (int j = 0; j < ms->n; j++) fprintf(f, "---|");
    for (int i = 0; i < ms->n; i++) {
        fprintf(f, "\n| %s |", ms->name[i]);
        for (int j = 0; j < ms->n; j++) fprintf(f, i == j ? " **%.1f** |" : " %.1f |", 100 * rate[i * ms->n + j]);
    }
    fprintf(f, "\n");
}

int run_transfer(const char *cmd, const ModelList *ms, const Dataset *test, const TransferSpec *t, const char *out, bool quiet,
                 cJSON *doc, char **md_out) {
    const char *kind = t->attack, *target_s = t->target;
    bool ifgsm = strcmp(kind, "ifgsm") == 0 || strcmp(kind, "bim") == 0;
    int n_runs = t->n_steps, limit = t->limit, batch = t->batch, rc = 0;
    const int *step_counts = t->steps;
    double eps = t->eps;
    Target target;
    target_parse(target_s, &target);
    Dataset set;
    int32_t *index;
    int n = common_images(ms, test, limit, batch, &set, &index);
    if (n == 0) {
        fprintf(stderr, "finch %s: no test image is classified correctly by every model\n", cmd);
        free(index);
        dataset_free(&set);
        return 1;
    }
    if (!quiet) fprintf(stderr, "finch %s: %d images that all %d models classify correctly (of the first %d asked for)\n", cmd, n, ms->n, limit);
    int M = ms->n;
    int64_t per = set.images->numel / n;
    Adv adv = { ft_xmalloc((size_t)(n * per) * sizeof(float)), ft_xmalloc((size_t)n * sizeof(int32_t)), per };
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    double *rate = ft_xmalloc((size_t)n_runs * M * M * sizeof *rate);
    cJSON *jm = cJSON_AddArrayToObject(doc, "models"), *runs = cJSON_AddArrayToObject(doc, "matrices");
    for (int i = 0; i < M; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ms->name[i]);
        cJSON_AddStringToObject(o, "file", ms->file[i]);
        cJSON_AddItemToArray(jm, o);
    }
    cJSON_AddStringToObject(doc, "attack", kind);
    cJSON_AddStringToObject(doc, "target", target_s);
    cJSON_AddNumberToObject(doc, "eps", eps);
    cJSON_AddNumberToObject(doc, "images", n);
    cJSON_AddItemToObject(doc, "image_index", cJSON_CreateIntArray(index, n));
    char path[1400], title[512];
    int plot_failures = 0;
    bool writer = ft_dist_rank() == 0;   /* several processes: each attacks a share, rank 0 writes */
    for (int r = 0; r < n_runs && rc == 0; r++) {
        AttackSpec a = { 0 };
        run_attack_spec(ifgsm ? "bim" : kind, eps, eps, step_counts[r], NORM_INF, &a);
        if (a.kind != ATTACK_STEPS && step_counts[r]) a.opt.steps = step_counts[r];
        a.target = target;
        double *R = rate + (size_t)r * M * M;
        for (int i = 0; i < M && rc == 0; i++) {
            if (!quiet) fprintf(stderr, "finch %s: %s examples from %s (%d of %d)\n", cmd, kind, ms->name[i], i + 1, M);
            attack_evaluate(ms->m[i], &set, n, batch, &a, t->seed, quiet, keep_adv, &adv);
            FT_CHECK(ft_dist_gather_rows(adv.adv, (size_t)per * sizeof(float), n, batch) == 0 &&   /* several processes: all rows */
                     ft_dist_gather_rows(adv.target, sizeof(int32_t), n, batch) == 0, "%s", ft_last_error());
            if (n_runs > 1) snprintf(path, sizeof path, "%s/adv-%s-steps-%d.safetensors", out, ms->name[i], a.step.steps);
            else snprintf(path, sizeof path, "%s/adv-%s.safetensors", out, ms->name[i]);
            if (writer && save_examples(path, &adv, &set, ms->file[i], kind) != 0) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); rc = 1; }
            for (int j = 0; j < M; j++) {
                predict_all(ms->m[j], adv.adv, set.images->shape, n, batch, pred);
                int hit = 0;
                for (int k = 0; k < n; k++) hit += adv.target[k] >= 0 ? pred[k] == adv.target[k] : pred[k] != ft_i32(set.labels)[k];
                R[i * M + j] = (double)hit / n;
            }
        }
        cJSON *o = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(o, "rate");
        if (a.kind == ATTACK_STEPS) cJSON_AddNumberToObject(o, "steps", a.step.steps);
        for (int i = 0; i < M; i++) cJSON_AddItemToArray(rows, cJSON_CreateDoubleArray(R + i * M, M));
        cJSON_AddItemToArray(runs, o);
        const char *names[RUN_MAX_MODELS];
        for (int i = 0; i < M; i++) names[i] = ms->name[i];
        if (n_runs > 1) snprintf(path, sizeof path, "%s/transfer-steps-%d.png", out, a.step.steps);
        else snprintf(path, sizeof path, "%s/transfer.png", out);
        snprintf(title, sizeof title, "%s, eps %.4g, %s: %s on %d images", kind, eps, target_s,
                 target.mode == TARGET_UNTARGETED ? "error rate" : "target rate", n);
        if (ifgsm) snprintf(title + strlen(title), sizeof title - strlen(title), ", %d iterations", a.step.steps);
        if (rc == 0 && writer && plot_heatmap(path, title, M, M, R, names, names, "target model", "source model",
                                    target.mode == TARGET_UNTARGETED ? "error rate" : "target rate", 0, 1) != 0) {
            fprintf(stderr, "finch %s: warning: %s\n", cmd, ft_last_error());   /* the numbers are still written */
            plot_failures++;
        }
    }
    if (rc == 0 && writer) {
        snprintf(path, sizeof path, "%s/transfer.json", out);
        rc = run_write_json(cmd, path, doc) ? 1 : 0;
    }
    if (rc == 0) {
        char *md = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&md, &len);
        fprintf(f, "# Transferability: %s, eps %g, %s, %d test images every model classifies correctly\n", kind, eps, target_s, n);
        for (int r = 0; r < n_runs; r++) {
            char what[96];
            snprintf(what, sizeof what, "%s (%%)", target.mode == TARGET_UNTARGETED ? "Error rate" : "Target rate");
            if (ifgsm) snprintf(what + strlen(what), sizeof what - strlen(what), ", %d iterations", step_counts[r] ? step_counts[r] : 20);
            table(f, ms, rate + (size_t)r * M * M, what);
        }
        fclose(f);
        snprintf(path, sizeof path, "%s/transfer.md", out);
        if (writer && write_file_atomic(path, md, len) != 0) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); rc = 1; }
        else if (!md_out) printf("%s\nwritten: %s/transfer.json, %s/transfer.md%s\n", md, out, out, plot_failures ? " (no heatmap: see the warning)" : ", heatmaps");
        if (md_out) *md_out = md;
        else free(md);
    }
    free(adv.adv); free(adv.target); free(pred); free(rate); free(index);
    dataset_free(&set);
    return rc;
}

int cmd_transfer(int argc, char **argv) {
    const char *models = NULL, *kind = "ifgsm", *target_s = "untargeted", *steps_list = NULL, *out = NULL, *device = "cpu";
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 200, batch = 100, steps = 0, seed = 1, threads = 0;
    double eps = 0.1;
    bool quiet = false;
    const CliArg args[] = {
        { "models", ARG_STRING, &models, 0, 0, "model files or run directories, comma-separated (all with the same classes and input)" },
        DATA_ARGS(d),
        { "attack", ARG_STRING, &kind, 0, 0, "fgsm | ifgsm (= bim) | cw (C&W-L2) | ead" },
        { "target", ARG_STRING, &target_s, 0, 0, "untargeted | random (seeded) | least-likely (of the source's clean logits) | CLASS" },
        { "eps", ARG_EPS, &eps, 0, 1, "fgsm, ifgsm: L-inf radius on [0, 1] pixels" },
        { "steps", ARG_INT, &steps, 0, 1000000, "ifgsm: iterations (0: 20); cw, ead: 0 for their 1,000" },
        { "steps-list", ARG_STRING, &steps_list, 0, 0, "ifgsm: one matrix per iteration count, e.g. 1,2,5,10" },
        { "limit", ARG_INT, &limit, 1, 1000000, "test images, the first ones every model classifies correctly" },
        { "batch", ARG_INT, &batch, 1, 65536, "batch size" },
        { "out", ARG_STRING, &out, 0, 0, "directory for transfer.json, transfer.md, the heatmaps and the examples (required)" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed (random targets)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("transfer", "The transferability matrix: each source model attacks the same test images (the first --limit\n"
                       "that every model classifies correctly), each target model classifies every source's examples.\n"
                       "Untargeted: the target's error rate; targeted: how often the target predicts the chosen class.\n"
                       "transfer.json, transfer.md, transfer.png (or one per --steps-list entry) and adv-<source>.safetensors.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!models || !out) { fprintf(stderr, "finch transfer: --models and --out are required\n"); return 2; }
    bool ifgsm = strcmp(kind, "ifgsm") == 0 || strcmp(kind, "bim") == 0;
    if (!ifgsm && strcmp(kind, "fgsm") && strcmp(kind, "cw") && strcmp(kind, "ead")) {
        fprintf(stderr, "finch transfer: --attack must be fgsm, ifgsm, cw or ead, got '%s'\n", kind);
        return 2;
    }
    int step_counts[RUN_MAX_STEPS], n_runs = 1;
    step_counts[0] = steps;
    if (steps_list) {
        if (!ifgsm) { fprintf(stderr, "finch transfer: --steps-list is for --attack ifgsm\n"); return 2; }
        n_runs = model_parse_ints("--steps-list", steps_list, step_counts, RUN_MAX_STEPS, false);
        for (int k = 0; n_runs > 0 && k < n_runs; k++) if (step_counts[k] < 1) n_runs = -1;
        if (n_runs < 1) { fprintf(stderr, "finch transfer: --steps-list must be positive iteration counts, e.g. 1,2,5,10\n"); return 2; }
    }
    Target target;
    if (!target_parse(target_s, &target)) {
        fprintf(stderr, "finch transfer: --target must be untargeted, random, least-likely or a class number, got '%s'\n", target_s);
        return 2;
    }
    Device dev;
    if (!cli_device("transfer", device, &dev)) return 2;
    run_set_threads(threads);
    ModelList ms = { 0 };
    if ((rc = run_load_models("transfer", models, dev, &ms)) != 0) { run_models_free(&ms); return rc; }
    Splits data;
    if ((rc = run_load_data("transfer", &d, false, &data)) != 0) { run_models_free(&ms); return rc; }
    rc = run_check_models("transfer", &ms, &data.test, d.data);
    if (rc == 0 && target.mode == TARGET_CLASS && target.cls >= ms.m[0]->num_classes) {
        fprintf(stderr, "finch transfer: --target %d: the models have classes 0..%d\n", target.cls, ms.m[0]->num_classes - 1);
        rc = 2;
    }
    if (rc == 0 && make_dirs(out) != 0) { fprintf(stderr, "finch transfer: %s\n", ft_last_error()); rc = 1; }
    if (rc) { run_models_free(&ms); splits_free(&data); return rc; }

    TransferSpec ts = { kind, target_s, eps, step_counts, n_runs, limit, batch, (uint64_t)seed };
    cJSON *doc = cJSON_CreateObject();
    rc = run_transfer("transfer", &ms, &data.test, &ts, out, quiet, doc, NULL);
    cJSON_Delete(doc);
    run_models_free(&ms);
    splits_free(&data);
    return rc;
}
