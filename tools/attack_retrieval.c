/* finch attack --retrieval: adversarial queries against a retrieval model (U-turn's setting).
 * The protocol's first --limit images are the queries, all of its images (clean) the gallery;
 * each query is attacked at every radius of --eps-list, and Recall@1/5/10 and mAP are measured
 * before and after: retrieval-attack.json and retrieval-attack.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plot.h"
#include "retrieval_run.h"
#include "run_dir.h"
#include "attack/feature.h"
#include "core/fileio.h"
#include "data/image.h"
#include "eval/retrieval.h"
#include "models/model_io.h"

#define MAX_EPS 8

typedef struct { double eps; int steps; RetrievalResult r; double seconds, ranking_seconds; } Row;

/* Each image of x (1 or 3 channels) through an 8-bit JPEG round trip at quality, as the adversarial
 * queries U-turn saved to disk. 0 or -1. */
static int jpeg_queries(Tensor *x, int quality) {
    int n = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3], rc = 0;
    int64_t per = (int64_t)C * H * W;
    float *h = ft_xmalloc((size_t)x->numel * sizeof *h);
    uint8_t *px = ft_xmalloc((size_t)per);
    ft_to_floats(x, h, x->numel);
    for (int i = 0; i < n && rc == 0; i++) {
        float *img = h + i * per;
        for (int c = 0; c < C; c++)
            for (int k = 0; k < H * W; k++) px[(int64_t)k * C + c] = (uint8_t)lrintf(fminf(fmaxf(img[c * H * W + k], 0), 1) * 255);
        rc = jpeg_round_trip(px, W, H, C, quality);
        for (int c = 0; c < C; c++)
            for (int k = 0; k < H * W; k++) img[c * H * W + k] = px[(int64_t)k * C + c] / 255.0f;
    }
    ft_from_floats(x, h, x->numel);
    free(h);
    free(px);
    return rc;
}

/* Adversarial queries [start, start + b) at eps made on m, (after a JPEG round trip when jpeg > 0)
 * their L2-normalised features by `judge` into q. 0 or -1. */
static int attack_batch(Model *m, Model *judge, Tape *tp, const RetrievalData *rd, int start, int b, const char *kind,
                        const char *layer, double eps, int steps, int jpeg, Rng *rng, float *q, int dim, float *images, float *raw) {
    Shape s = rd->data.test.images->shape;
    s.d[0] = b;
    Device dev = m->params.device;
    Tensor *x = ft_tensor_new(FT_F32, s, dev), *xa = ft_tensor_new(FT_F32, s, dev);
    retrieval_data_batch(rd, start, b, x);
    int rc = 0;
    if (strncmp(kind, "odfa", 4) == 0) {
        OdfaAttack a = attack_odfa_defaults(layer, eps, strcmp(kind, "odfa-ms") == 0);
        if (steps) a.steps = steps;
        rc = attack_odfa(m, tp, x, &a, xa, NULL);
    } else {   /* I-FGSM / MI-FGSM on the classifier, away from its clean prediction (the classes may be unseen) */
        int32_t *pred = ft_xmalloc((size_t)b * sizeof *pred);
        attack_predict(m, tp, x, pred);
        Tensor *y = ft_tensor_new(FT_I32, SHAPE(b), FT_CPU), *yd = ft_tensor_new(FT_I32, SHAPE(b), dev);
        memcpy(ft_i32(y), pred, (size_t)b * sizeof *pred);
        ft_copy_(yd, y);
        int k = steps ? steps : attack_odfa_defaults(layer, eps, false).steps;
        StepAttack a = strcmp(kind, "mim") == 0 ? attack_mim(eps, k, 1.0) : attack_bim(eps, k);
        attack_steps(m, tp, x, yd, &a, rng, xa, false);
        ft_tensor_free(y);
        ft_tensor_free(yd);
        free(pred);
    }
    if (rc == 0 && jpeg > 0) rc = jpeg_queries(xa, jpeg);
    if (rc == 0 && images) ft_to_floats(xa, images, xa->numel);   /* for the picture */
    if (rc == 0) {
        ft_no_grad_begin(tp);
        Tensor *f = model_layer(judge, tp, xa, layer);
        ft_no_grad_end(tp);
        ft_to_floats(f, q, (int64_t)b * dim);
        if (raw) memcpy(raw, q, (size_t)b * dim * sizeof *raw);
        retrieval_normalize(q, b, dim);
    }
    ft_tape_reset(tp);
    ft_tensor_free(x);
    ft_tensor_free(xa);
    return rc;
}

/* A 2-D feature layer: the clean queries' features and their adversarial versions, one colour per
 * identity (retrieval-features.png). A plot that cannot be drawn is a warning. */
static void feature_plot(const char *dir, Model *m, Model *judge, const RetrievalData *rd, int nq, const char *layer, int batch,
                         const float *adv, double eps, bool quiet) {
    int dim = 0;
    float *clean = retrieval_data_features("attack", judge, rd, nq, layer, batch, &dim, false, quiet);
    if (!clean) return;
    double *a = ft_xmalloc((size_t)nq * 2 * sizeof *a), *b = ft_xmalloc((size_t)nq * 2 * sizeof *b);
    for (int i = 0; i < 2 * nq; i++) { a[i] = clean[i]; b[i] = adv[i]; }
    char png[1200], title[256];
    snprintf(png, sizeof png, "%s/retrieval-features.png", dir);
    snprintf(title, sizeof title, "%s: 2-D features (%s) of %d queries, clean and after the attack at eps %.3g/255", m->arch, layer,
             nq, 255 * eps);
    if (plot_points2(png, title, nq, a, b, rd->id, "clean", "adversarial") != 0)
        fprintf(stderr, "finch attack: warning: no feature plot: %s\n", ft_last_error());
    else printf("the 2-D features before and after: %s\n", png);
    free(a);
    free(b);
    free(clean);
}

static void add_result(cJSON *o, const RetrievalResult *r) {
    for (int k = 0; k < RETRIEVAL_KS; k++) {
        char key[16];
        snprintf(key, sizeof key, "recall@%d", retrieval_ks[k]);
        cJSON_AddNumberToObject(o, key, r->recall[k]);
    }
    cJSON_AddNumberToObject(o, "map", r->map);
    cJSON_AddNumberToObject(o, "scored", r->scored);
}

static int write_results(const char *dir, const char *file, const char *judge, int jpeg, const char *kind, const char *layer,
                         const RetrievalData *rd, int nq, int dim, const RetrievalResult *before, const Row *rows, int n_rows) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model_file", file);
    cJSON_AddStringToObject(doc, "eval_model", judge ? judge : file);
    cJSON_AddNumberToObject(doc, "jpeg_quality", jpeg);
    cJSON_AddStringToObject(doc, "attack", kind);
    cJSON_AddStringToObject(doc, "layer", layer);
    cJSON_AddStringToObject(doc, "protocol", rd->protocol);
    cJSON_AddNumberToObject(doc, "queries", nq);
    cJSON_AddNumberToObject(doc, "gallery", rd->n - rd->n_query);
    cJSON_AddNumberToObject(doc, "dim", dim);
    add_result(cJSON_AddObjectToObject(doc, "clean"), before);
    cJSON *list = cJSON_AddArrayToObject(doc, "rows");
    char *md = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    fprintf(f, "# Retrieval under attack: %s, layer %s, %s\n\nProtocol: %s. %d queries (the first) against a clean gallery of %d "
               "images%s.\n", file, layer, kind, rd->protocol, nq, rd->n - rd->n_query,
            rd->n_query ? "" : " (all of the protocol's, each query excluded from its own ranking)");
    if (judge) fprintf(f, "\nBlack box: the queries are made on %s and ranked by %s's features.\n", file, judge);
    if (jpeg) fprintf(f, "\nThe adversarial queries went through an 8-bit JPEG round trip at quality %d.\n", jpeg);
    fprintf(f, "\n| eps | steps | Recall@1 | Recall@5 | Recall@10 | mAP | attack s | ranking s |\n|---|---|---|---|---|---|---|---|\n"
               "| clean | | %.2f | %.2f | %.2f | %.2f | | |\n", 100 * before->recall[0], 100 * before->recall[1], 100 * before->recall[2],
            100 * before->map);
    for (int i = 0; i < n_rows; i++) {
        const Row *w = &rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "eps", w->eps);
        cJSON_AddNumberToObject(o, "steps", w->steps);
        add_result(o, &w->r);
        cJSON_AddNumberToObject(o, "seconds", w->seconds);
        cJSON_AddNumberToObject(o, "ranking_seconds", w->ranking_seconds);
        cJSON_AddItemToArray(list, o);
        fprintf(f, "| %g (%.3g/255) | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.2f |\n", w->eps, 255 * w->eps, w->steps,
                100 * w->r.recall[0], 100 * w->r.recall[1], 100 * w->r.recall[2], 100 * w->r.map, w->seconds, w->ranking_seconds);
    }
    fclose(f);
    printf("%s", md);
    char path[1200];
    snprintf(path, sizeof path, "%s/retrieval-attack.json", dir);
    int rc = run_write_json("attack", path, doc) ? 1 : 0;
    snprintf(path, sizeof path, "%s/retrieval-attack.md", dir);
    if (rc == 0 && write_file_atomic(path, md, len) != 0) { fprintf(stderr, "finch attack: %s\n", ft_last_error()); rc = 1; }
    if (rc == 0) printf("\nwritten: %s/retrieval-attack.json and %s/retrieval-attack.md\n", dir, dir);
    cJSON_Delete(doc);
    free(md);
    return rc;
}

int cmd_attack_retrieval(int argc, char **argv) {
    const char *file = NULL, *judge_file = NULL, *run = NULL, *kind = "odfa", *layer = "pooled", *split = "classes", *out = NULL, *device = "cpu";
    const char *eps_list = "2/255,4/255,8/255,12/255,16/255", *eps_one = NULL;
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 1000, gallery = 0, steps = 0, batch = 100, seed = 1, threads = 0, jpeg = 0;
    bool quiet = false, retrieval = false;
    const CliArg args[] = {
        { "retrieval", ARG_FLAG, &retrieval, 0, 0, "attack retrieval queries (this mode)" },
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        { "run", ARG_STRING, &run, 0, 0, "or a run directory of finch train: its model and (unless --data) its data" },
        DATA_ARGS(d),
        { "attack", ARG_STRING, &kind, 0, 0, "odfa | odfa-ms (multi-scale) | bim (= ifgsm) | mim: the last two on the classifier" },
        { "layer", ARG_STRING, &layer, 0, 0, "the feature layer (finch model layers ARCH lists them)" },
        { "eval-model", ARG_STRING, &judge_file, 0, 0, "black box: rank with this model's features (same --layer), the queries made on --model-file" },
        { "jpeg-quality", ARG_INT, &jpeg, 0, 100, "queries through an 8-bit JPEG round trip at this quality, as U-turn saved them (75; 0: none)" },
        { "split", ARG_STRING, &split, 0, 0, "cub: classes (101-200) | test" },
        { "eps-list", ARG_STRING, &eps_list, 0, 0, "L-inf radii on [0, 1] pixels" },
        { "eps", ARG_STRING, &eps_one, 0, 0, "one radius (instead of --eps-list)" },
        { "steps", ARG_INT, &steps, 0, 100000, "iterations (0: U-turn's round(min(1.25 e, e + 4)), e = 255 eps; step 1/255)" },
        { "limit", ARG_INT, &limit, 1, 2147483647, "queries: the protocol's first N images" },
        { "gallery", ARG_INT, &gallery, 0, 2147483647, "the protocol's first N images as the gallery (0: all)" },
        { "batch", ARG_INT, &batch, 1, 65536, "batch size" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed" },
        { "out", ARG_STRING, &out, 0, 0, "directory for retrieval-attack.json and .md (default: the model's)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("attack", "Adversarial retrieval queries (U-turn): each query is attacked at every radius, its\n"
                       "features ranked against the clean gallery; Recall@1/5/10 and mAP before and after. ODFA pushes a\n"
                       "query's feature toward the opposite of its clean direction; bim and mim leave the classifier's\n"
                       "clean prediction (baselines).", argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    const char *kinds[] = { "odfa", "odfa-ms", "bim", "ifgsm", "mim" };
    bool known = false;
    for (int i = 0; i < 5; i++) known |= strcmp(kind, kinds[i]) == 0;
    if (!known) { fprintf(stderr, "finch attack: --retrieval: --attack must be odfa, odfa-ms, bim, ifgsm or mim, got '%s'\n", kind); return 2; }
    double eps[MAX_EPS];
    if (eps_one && cli_given(argc, argv, "eps-list")) { fprintf(stderr, "finch attack: give --eps or --eps-list, not both\n"); return 2; }
    int n_eps = eps_one ? cli_parse_eps_list("attack", "eps", eps_one, eps, 1) : cli_parse_eps_list("attack", "eps-list", eps_list, eps, MAX_EPS);
    if (n_eps < 0) return 2;
    if (strcmp(split, "classes") != 0 && strcmp(split, "test") != 0) {
        fprintf(stderr, "finch attack: --split must be classes or test, got '%s'\n", split);
        return 2;
    }
    if ((run != NULL) == (file != NULL)) { fprintf(stderr, "finch attack: give exactly one of --model-file and --run\n"); return 2; }
    char model_path[1100];
    RunDataCopy keep;
    if (run) { snprintf(model_path, sizeof model_path, "%s/model.safetensors", run); file = model_path; }
    if ((rc = run_data_of_run("attack", run, argc, argv, &d, &keep)) != 0) return rc;
    if (strncmp(d.data, "cub:", 4) != 0 && cli_given(argc, argv, "split")) { fprintf(stderr, "finch attack: --split is for cub: data only\n"); return 2; }
    Device dev;
    if (!cli_device("attack", device, &dev)) return 2;
    run_set_threads(threads);
    Model *m = model_load(file, dev, NULL), *judge = m && judge_file ? model_load(judge_file, dev, NULL) : m;
    if (!m || !judge) {
        fprintf(stderr, "finch attack: %s\n", ft_last_error());
        model_free(m);
        return 1;
    }
    m->training = judge->training = false;
    RetrievalData rd;
    bool market = strncmp(d.data, "market:", 7) == 0;   /* its gallery is its own; --limit picks the queries to decode */
    if (market && gallery) {
        fprintf(stderr, "finch attack: --gallery is for the protocols whose gallery is their images; a market: gallery is "
                        "its bounding_box_test/\n");
        if (judge != m) model_free(judge);
        model_free(m);
        return 2;
    }
    if ((rc = retrieval_data_load("attack", &d, split, market ? limit : gallery, m, &rd)) != 0 ||
        (judge != m && (rc = run_check_input("attack", judge, &rd.data.test, d.data)) != 0)) {
        if (rd.idx) retrieval_data_free(&rd);
        if (judge != m) model_free(judge);
        model_free(m);
        return rc;
    }
    int C = rd.data.test.images->shape.d[1];
    if (jpeg > 0 && C != 1 && C != 3) {
        fprintf(stderr, "finch attack: --jpeg-quality: %s has %d channels; JPEG holds 1 or 3\n", d.data, C);
        retrieval_data_free(&rd);
        if (judge != m) model_free(judge);
        model_free(m);
        return 2;
    }
    int dim = 0, nq = limit < retrieval_data_queries(&rd) ? limit : retrieval_data_queries(&rd);
    float *g = retrieval_data_features("attack", judge, &rd, rd.n, layer, batch, &dim, true, quiet);
    Row rows[MAX_EPS];
    RetrievalResult before = { 0 };
    if (!g) rc = 2;
    else {
        RetrievalSet s = retrieval_data_set(&rd, g, g, nq, dim);
        retrieval_evaluate(&s, &before);
        float *q = ft_xmalloc((size_t)nq * dim * sizeof *q);
        int64_t per = rd.data.test.images->numel / dataset_size(&rd.data.test);
        float *pic = ft_xmalloc((size_t)(nq < batch ? nq : batch) * per * sizeof *pic);   /* the last radius's first queries */
        float *raw = dim == 2 ? ft_xmalloc((size_t)nq * 2 * sizeof *raw) : NULL;          /* its features, unnormalised */
        Tape *tp = ft_tape_new(dev);
        Rng rng = rng_new((uint64_t)seed);
        for (int e = 0; e < n_eps && rc == 0; e++) {
            rows[e] = (Row){ .eps = eps[e], .steps = steps ? steps : attack_odfa_defaults(layer, eps[e], false).steps };
            Progress p;
            char label[64];
            snprintf(label, sizeof label, "%s eps %.3g/255", kind, 255 * eps[e]);
            progress_start(&p, label, nq, quiet);
            for (int start = 0; start < nq && rc == 0; start += batch) {
                int b = nq - start < batch ? nq - start : batch;
                if (attack_batch(m, judge, tp, &rd, start, b, kind, layer, eps[e], steps, jpeg, &rng, q + (int64_t)start * dim,
                                 dim, e == n_eps - 1 && start == 0 ? pic : NULL, raw && e == n_eps - 1 ? raw + (int64_t)start * dim : NULL) != 0) {
                    fprintf(stderr, "finch attack: %s\n", ft_last_error());
                    rc = 2;
                }
                progress_update(&p, b, NULL);
            }
            rows[e].seconds = progress_finish(&p, NULL);
            RetrievalSet sa = s;
            sa.q = q;
            double t0 = ft_now();
            retrieval_evaluate(&sa, &rows[e].r);
            rows[e].ranking_seconds = ft_now() - t0;
        }
        char dir[1100], png[1200];
        snprintf(dir, sizeof dir, "%s", out ? out : file);
        if (!out) { char *slash = strrchr(dir, '/'); if (slash) *slash = 0; else snprintf(dir, sizeof dir, "."); }
        if (rc == 0 && make_dirs(dir) != 0) { fprintf(stderr, "finch attack: %s\n", ft_last_error()); rc = 1; }
        if (rc == 0) rc = write_results(dir, file, judge_file, jpeg, kind, layer, &rd, nq, dim, &before, rows, n_eps);
        snprintf(png, sizeof png, "%s/retrieval-attack.png", dir);
        RetrievalSet sa = s;
        sa.q = q;
        int shown = nq < 6 ? nq : 6;
        if (rc == 0 && shown > batch) shown = batch;
        if (rc == 0 && retrieval_picture(png, &rd, &s, &sa, pic, shown) != 0)
            fprintf(stderr, "finch attack: warning: no picture: %s\n", ft_last_error());
        else if (rc == 0) printf("the first %d queries' top 5 before and after eps %.3g/255: %s\n", shown, 255 * eps[n_eps - 1], png);
        if (rc == 0 && raw) feature_plot(dir, m, judge, &rd, nq, layer, batch, raw, eps[n_eps - 1], quiet);
        ft_tape_free(tp);
        free(q);
        free(pic);
        free(raw);
    }
    free(g);
    retrieval_data_free(&rd);
    if (judge != m) model_free(judge);
    model_free(m);
    return rc;
}
