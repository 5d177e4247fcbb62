/* finch feature-adv: Sabour et al.'s feature adversaries (attack/feature.h) on pairs of test images
 * of different classes, per layer and delta: how near the guide's representation each gets (the
 * distance ratio, and its rank among the guide's nearest training images), how often it takes the
 * guide's label, also after rounding to 8-bit pixels; feature-adv.json, .md and a picture. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "retrieval_run.h"
#include "attack/feature.h"
#include "core/fileio.h"
#include "data/image.h"
#include "eval/features.h"
#include "models/model_io.h"

#define MAX_LIST 8

typedef struct { const char *layer; double delta, ratio_mean, ratio_median, rank_median, rank1, guide_label, guide_label_8bit, seconds; } Row;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double dist2(const float *a, const float *b, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    return s;
}

/* source, guide, adversarial and (adversarial - source) / (2 delta) + 1/2 for the first n pairs, one
 * column each, C x H x W images magnified to at least 64 pixels; grey images as grey */
static int picture(const char *path, const float *src, const float *guide, const float *adv, int n, Shape s, double delta) {
    int C = s.d[1], H = s.d[2], W = s.d[3], small = H < W ? H : W;
    int k = small >= 64 ? 1 : (64 + small - 1) / small, th = H * k, tw = W * k, gap = 6;
    int w = n * (tw + gap) + gap, h = 4 * (th + gap) + gap;
    uint8_t *px = ft_xmalloc((size_t)w * h * 3);
    memset(px, 255, (size_t)w * h * 3);
    int64_t per = (int64_t)C * H * W;
    for (int i = 0; i < n; i++)
        for (int row = 0; row < 4; row++)
            for (int y = 0; y < th; y++)
                for (int x = 0; x < tw; x++)
                    for (int ch = 0; ch < 3; ch++) {
                        int64_t at = i * per + (int64_t)(C == 3 ? ch : 0) * H * W + (int64_t)(y / k) * W + x / k;
                        double v = row == 0 ? src[at] : row == 1 ? guide[at] : row == 2 ? adv[at] : (adv[at] - src[at]) / (2 * delta) + 0.5;
                        px[((size_t)(gap + row * (th + gap) + y) * w + gap + i * (tw + gap) + x) * 3 + ch] = (uint8_t)lrint(fmin(fmax(v, 0), 1) * 255);
                    }
    int rc = png_write_rgb(path, px, w, h);
    free(px);
    return rc;
}

/* One layer and box over all pairs: the sources and guides (host floats [n, per], shape s with any
 * first dimension), the guides' labels; ranks among the first `neighbours` training images. */
static int run_one(Model *m, const Dataset *train, const float *src, const float *gd, const int32_t *glabel, int n, Shape s,
                   const FeatureAdvAttack *a, int neighbours, int batch, const char *png, Row *row) {
    const char *layer = a->layer;
    int64_t per = (int64_t)s.d[1] * s.d[2] * s.d[3];
    Tape *tp = ft_tape_new(m->params.device);
    float *adv = ft_xmalloc((size_t)n * per * sizeof *adv);
    double t0 = ft_now();
    int rc = 0;
    for (int start = 0; start < n && rc == 0; start += batch) {
        int b = n - start < batch ? n - start : batch;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, m->params.device), *g = ft_tensor_new(FT_F32, s, m->params.device);
        Tensor *xa = ft_tensor_new(FT_F32, s, m->params.device);
        ft_from_floats(x, src + start * per, b * per);
        ft_from_floats(g, gd + start * per, b * per);
        rc = attack_feature_adv(m, tp, x, g, a, xa, NULL);
        ft_to_floats(xa, adv + start * per, b * per);
        ft_tensor_free(x); ft_tensor_free(g); ft_tensor_free(xa);
    }
    row->seconds = ft_now() - t0;
    if (rc != 0) { fprintf(stderr, "finch feature-adv: --layer %s: %s\n", layer, ft_last_error()); rc = 2; }
    /* features of sources, guides, adversarial images (and their 8-bit versions), training neighbours */
    float *f[4] = { NULL, NULL, NULL, NULL };
    int d = 0;
    int32_t *pred[2] = { ft_xmalloc((size_t)n * sizeof(int32_t)), ft_xmalloc((size_t)n * sizeof(int32_t)) };
    for (int v = 0; v < 3 && rc == 0; v++) {
        const float *imgs = v == 0 ? src : v == 1 ? gd : adv;
        for (int start = 0; start < n; start += batch) {
            int b = n - start < batch ? n - start : batch;
            s.d[0] = b;
            Tensor *x = ft_tensor_new(FT_F32, s, m->params.device);
            for (int q = 0; q < 1 + (v == 2); q++) {   /* the adversarial images also rounded to 8 bits, for the label */
                float *h = ft_xmalloc((size_t)b * per * sizeof *h);
                for (int64_t j = 0; j < b * per; j++) h[j] = q ? roundf(imgs[start * per + j] * 255) / 255 : imgs[start * per + j];
                ft_from_floats(x, h, b * per);
                free(h);
                if (v == 2) attack_predict(m, tp, x, pred[q] + start);
            }
            ft_no_grad_begin(tp);
            Tensor *o = model_layer(m, tp, x, layer);
            ft_no_grad_end(tp);
            d = (int)(o->numel / b);
            if (!f[v]) f[v] = ft_xmalloc((size_t)n * d * sizeof(float));
            ft_to_floats(o, f[v] + (int64_t)start * d, (int64_t)b * d);
            ft_tape_reset(tp);
            ft_tensor_free(x);
        }
    }
    int nn = neighbours < dataset_size(train) ? neighbours : dataset_size(train);
    if (rc == 0) {
        int32_t *ti = ft_xmalloc((size_t)nn * sizeof *ti);
        for (int i = 0; i < nn; i++) ti[i] = i;
        f[3] = eval_features(m, train, ti, nn, layer, batch, &d, NULL);
        free(ti);
        if (!f[3]) { fprintf(stderr, "finch feature-adv: the training images: %s\n", ft_last_error()); rc = 1; }
    }
    if (rc == 0) {
        double *ratio = ft_xmalloc((size_t)n * sizeof *ratio), *rank = ft_xmalloc((size_t)n * sizeof *rank);
        int hit = 0, hit8 = 0, first = 0;
        row->ratio_mean = 0;
        for (int i = 0; i < n; i++) {
            const float *fs = f[0] + (int64_t)i * d, *fg = f[1] + (int64_t)i * d, *fa = f[2] + (int64_t)i * d;
            double da = dist2(fa, fg, d);
            ratio[i] = sqrt(da / fmax(dist2(fs, fg, d), 1e-30));
            row->ratio_mean += ratio[i] / n;
            int r = 1;   /* training images nearer the guide than the adversarial image is */
            for (int j = 0; j < nn; j++) r += dist2(f[3] + (int64_t)j * d, fg, d) < da;
            rank[i] = r;
            first += r == 1;
            hit += pred[0][i] == glabel[i];
            hit8 += pred[1][i] == glabel[i];
        }
        *row = (Row){ layer, a->delta, row->ratio_mean, median(ratio, n), median(rank, n), (double)first / n, (double)hit / n,
                      (double)hit8 / n, row->seconds };
        if (png && picture(png, src, gd, adv, n < 8 ? n : 8, s, a->delta) != 0)
            fprintf(stderr, "finch feature-adv: warning: no picture: %s\n", ft_last_error());
        free(ratio);
        free(rank);
    }
    for (int v = 0; v < 4; v++) free(f[v]);
    free(pred[0]); free(pred[1]); free(adv);
    ft_tape_free(tp);
    return rc;
}

/* --source or --guide FILE as C x H x W floats on [0, 1], as the model takes it (grey: PIL's
 * luminance), not resized: the box is around the file's own pixels. 0, or the exit status (printed). */
static int load_file(const char *flag, const char *path, const Model *m, Shape *s, float **out) {
    Image im;
    if (image_read(path, &im) != 0) { fprintf(stderr, "finch feature-adv: --%s: %s\n", flag, ft_last_error()); return 1; }
    int C = m->in_channels, H = im.height, W = im.width, rc = 0;
    if (s->d[0] && (H != s->d[2] || W != s->d[3])) {
        fprintf(stderr, "finch feature-adv: --%s %s is %dx%d, the source is %dx%d: source and guide must be one size\n", flag, path, W, H,
                s->d[3], s->d[2]);
        rc = 2;
    } else if (!model_accepts(m, C, H, W)) {
        fprintf(stderr, "finch feature-adv: --%s %s is %dx%d; %s takes ", flag, path, W, H, m->arch);
        if (m->height) fprintf(stderr, "%dx%d images (the images are not resized)\n", m->width, m->height);
        else fprintf(stderr, "no image that small\n");
        rc = 2;
    } else {
        *s = SHAPE(1, C, H, W);
        float *x = *out = ft_xmalloc((size_t)C * H * W * sizeof *x);
        const uint8_t *p = im.rgb;
        for (int64_t i = 0; i < (int64_t)H * W; i++, p += 3)
            if (C == 3) for (int c = 0; c < 3; c++) x[c * H * W + i] = p[c] / 255.0f;
            else x[i] = image_luma(p[0], p[1], p[2]) / 255.0f;
    }
    image_free(&im);
    return rc;
}

/* `pairs` test images and guides of other classes (seeded), as host floats; the guides' labels. */
static void pairs_from_test(const Dataset *test, int pairs, int seed, Device dev, float *src, float *gd, int32_t *glabel) {
    int nt = dataset_size(test);
    const int32_t *label = ft_i32(test->labels);
    int32_t *si = ft_xmalloc((size_t)pairs * sizeof *si), *gi = ft_xmalloc((size_t)pairs * sizeof *gi);
    Rng r = rng_new((uint64_t)seed);
    for (int i = 0; i < pairs; i++) {   /* a source, then a guide of another class */
        si[i] = (int32_t)(rng_u32(&r) % (uint32_t)nt);
        int tries = 0;
        do gi[i] = (int32_t)(rng_u32(&r) % (uint32_t)nt);
        while (label[gi[i]] == label[si[i]] && ++tries < 1000);
        glabel[i] = label[gi[i]];
    }
    Shape s = test->images->shape;
    s.d[0] = pairs;
    int64_t n = (int64_t)pairs * s.d[1] * s.d[2] * s.d[3];
    Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(pairs), dev);
    dataset_batch(test, si, pairs, x, y);
    ft_to_floats(x, src, n);
    dataset_batch(test, gi, pairs, x, y);
    ft_to_floats(x, gd, n);
    ft_tensor_free(x);
    ft_tensor_free(y);
    free(si);
    free(gi);
}

int cmd_feature_adv(int argc, char **argv) {
    const char *file = NULL, *layers = "pooled", *deltas = "10/255", *out = NULL, *device = "cpu", *source = NULL, *guide = NULL;
    DataOpts d = { .data = "fashion-mnist" };
    int pairs = 20, neighbours = 1000, batch = 20, seed = 1, threads = 0;
    FeatureAdvAttack solver = attack_feature_adv_defaults(NULL);
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        DATA_ARGS(d),
        { "layer", ARG_STRING, &layers, 0, 0, "layers, comma-separated (finch model layers ARCH lists them)" },
        { "delta", ARG_STRING, &deltas, 0, 0, "L-inf boxes around the source on [0, 1] pixels, comma-separated (the paper's 10/255)" },
        { "pairs", ARG_INT, &pairs, 1, 100000, "source and guide test images of different classes (seeded)" },
        { "source", ARG_STRING, &source, 0, 0, "or: one source image (PNG or JPEG, the model's input size; with --guide)" },
        { "guide", ARG_STRING, &guide, 0, 0, "and its guide image (the source's size; its label: the model's prediction)" },
        { "memory", ARG_INT, &solver.memory, 1, 1000, "L-BFGS-B's memory m (corrections kept)" },
        { "iters", ARG_INT, &solver.max_iters, 1, 1000000, "L-BFGS-B iterations at most per image" },
        { "factr", ARG_DOUBLE, &solver.factr, 0, 1e20, "L-BFGS-B's relative-reduction test, in units of machine epsilon" },
        { "pgtol", ARG_DOUBLE, &solver.pgtol, 0, 1e10, "L-BFGS-B's projected-gradient test" },
        { "neighbours", ARG_INT, &neighbours, 1, 10000000, "training images the rank is measured among" },
        { "batch", ARG_INT, &batch, 1, 4096, "images optimised together" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed of the pairs" },
        { "out", ARG_STRING, &out, 0, 0, "directory for feature-adv.json, .md and .png (required)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
    };
    int rc = cli_parse("feature-adv", "Feature adversaries (Sabour et al., ICLR 2016): images within delta of a source whose\n"
                       "layer representation mimics a guide's, by L-BFGS-B. Per layer and delta: the distance ratio\n"
                       "d(adv, guide) / d(source, guide), the rank of the adversarial image among the guide's nearest\n"
                       "training images, and how often it takes the guide's label (also after rounding to 8-bit pixels).\n"
                       "Pairs: --pairs N test images with guides of other classes, or --source FILE --guide FILE.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!file || !out) { fprintf(stderr, "finch feature-adv: --model-file and --out are required\n"); return 2; }
    double delta[MAX_LIST];
    int nd = cli_parse_eps_list("feature-adv", "delta", deltas, delta, MAX_LIST);
    if (nd < 0) return 2;
    for (int i = 0; i < nd; i++)
        if (delta[i] <= 0) { fprintf(stderr, "finch feature-adv: --delta must be positive, got %g\n", delta[i]); return 2; }
    char list[512], *layer[MAX_LIST];
    int nl = 0;
    snprintf(list, sizeof list, "%s", layers);
    for (char *tok = strtok(list, ","); tok && nl < MAX_LIST; tok = strtok(NULL, ",")) layer[nl++] = tok;
    if (nl == 0) { fprintf(stderr, "finch feature-adv: --layer is empty\n"); return 2; }
    if (!source != !guide) { fprintf(stderr, "finch feature-adv: --source and --guide go together\n"); return 2; }
    if (source && cli_given(argc, argv, "pairs")) { fprintf(stderr, "finch feature-adv: --pairs or --source/--guide, not both\n"); return 2; }
    Device dev;
    if (!cli_device("feature-adv", device, &dev)) return 2;
    run_set_threads(threads);
    Model *m = model_load(file, dev, NULL);
    if (!m) { fprintf(stderr, "finch feature-adv: %s\n", ft_last_error()); return 1; }
    m->training = false;
    Splits data;
    if ((rc = run_load_data("feature-adv", &d, true, &data)) != 0) { model_free(m); return rc; }
    if ((rc = run_check_input("feature-adv", m, &data.test, d.data)) != 0) { model_free(m); splits_free(&data); return rc; }
    Shape s = data.test.images->shape;
    float *src = NULL, *gd = NULL;
    int32_t *glabel = NULL;
    if (source) {   /* one pair from files; the guide's label is what the model says it is */
        pairs = 1;
        Shape sg = SHAPE(0, 0, 0, 0);
        rc = load_file("source", source, m, &sg, &src);
        if (rc == 0) rc = load_file("guide", guide, m, &sg, &gd);
        s = sg;
        if (rc == 0) {
            Tape *tp = ft_tape_new(dev);
            Tensor *x = ft_tensor_new(FT_F32, s, dev);
            ft_from_floats(x, gd, (int64_t)s.d[1] * s.d[2] * s.d[3]);
            glabel = ft_xmalloc(sizeof *glabel);
            attack_predict(m, tp, x, glabel);
            ft_tensor_free(x);
            ft_tape_free(tp);
        }
    } else {
        int64_t per = (int64_t)s.d[1] * s.d[2] * s.d[3];
        src = ft_xmalloc((size_t)pairs * per * sizeof *src);
        gd = ft_xmalloc((size_t)pairs * per * sizeof *gd);
        glabel = ft_xmalloc((size_t)pairs * sizeof *glabel);
        pairs_from_test(&data.test, pairs, seed, dev, src, gd, glabel);
    }
    Row rows[MAX_LIST * MAX_LIST];
    int n_rows = 0;
    for (int l = 0; l < nl && rc == 0; l++) {   /* every layer exists, before anything is written */
        int dim;
        int32_t first = 0;
        float *probe = eval_features(m, &data.test, &first, 1, layer[l], 1, &dim, NULL);
        if (!probe) { fprintf(stderr, "finch feature-adv: --layer %s: %s\n", layer[l], ft_last_error()); rc = 2; }
        free(probe);
    }
    if (rc == 0 && make_dirs(out) != 0) { fprintf(stderr, "finch feature-adv: %s\n", ft_last_error()); rc = 1; }
    char png[1200];
    snprintf(png, sizeof png, "%s/feature-adv.png", out);
    for (int l = 0; l < nl && rc == 0; l++)
        for (int k = 0; k < nd && rc == 0; k++, n_rows++) {
            FeatureAdvAttack a = solver;
            a.layer = layer[l];
            a.delta = delta[k];
            rc = run_one(m, &data.train, src, gd, glabel, pairs, s, &a, neighbours, batch, l == 0 && k == nd - 1 ? png : NULL, &rows[n_rows]);
        }
    if (rc == 0) {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "rows");
        cJSON_AddStringToObject(doc, "model_file", file);
        cJSON_AddNumberToObject(doc, "pairs", pairs);
        if (source) {
            cJSON_AddStringToObject(doc, "source", source);
            cJSON_AddStringToObject(doc, "guide", guide);
            cJSON_AddNumberToObject(doc, "guide_prediction", glabel[0]);
        } else cJSON_AddNumberToObject(doc, "seed", seed);
        cJSON *lb = cJSON_AddObjectToObject(doc, "lbfgsb");
        cJSON_AddNumberToObject(lb, "memory", solver.memory);
        cJSON_AddNumberToObject(lb, "max_iters", solver.max_iters);
        cJSON_AddNumberToObject(lb, "factr", solver.factr);
        cJSON_AddNumberToObject(lb, "pgtol", solver.pgtol);
        cJSON_AddNumberToObject(doc, "neighbours", neighbours);
        char *md = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&md, &len);
        fprintf(f, "# Feature adversaries: %s\n\n", file);
        if (source) fprintf(f, "Source %s, guide %s (the guide's label: the model's prediction, class %d)", source, guide, glabel[0]);
        else fprintf(f, "%d pairs of test images of different classes (seed %d)", pairs, seed);
        fprintf(f, "; ranks among %d training images; L-BFGS-B with m %d, at most %d iterations, factr %g, pgtol %g.\n\n| layer | delta | ratio (mean) | ratio (median) | rank (median) | rank 1 | guide's label | "
                   "after 8-bit rounding | seconds |\n|---|---|---|---|---|---|---|---|---|\n", neighbours, solver.memory, solver.max_iters,
                solver.factr, solver.pgtol);
        for (int i = 0; i < n_rows; i++) {
            const Row *w = &rows[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "layer", w->layer);
            cJSON_AddNumberToObject(o, "delta", w->delta);
            cJSON_AddNumberToObject(o, "ratio_mean", w->ratio_mean);
            cJSON_AddNumberToObject(o, "ratio_median", w->ratio_median);
            cJSON_AddNumberToObject(o, "rank_median", w->rank_median);
            cJSON_AddNumberToObject(o, "rank1", w->rank1);
            cJSON_AddNumberToObject(o, "guide_label", w->guide_label);
            cJSON_AddNumberToObject(o, "guide_label_8bit", w->guide_label_8bit);
            cJSON_AddNumberToObject(o, "seconds", w->seconds);
            cJSON_AddItemToArray(arr, o);
            fprintf(f, "| %s | %.3g/255 | %.3f | %.3f | %.0f | %.0f%% | %.0f%% | %.0f%% | %.1f |\n", w->layer, 255 * w->delta, w->ratio_mean,
                    w->ratio_median, w->rank_median, 100 * w->rank1, 100 * w->guide_label, 100 * w->guide_label_8bit, w->seconds);
        }
        fclose(f);
        printf("%s", md);
        char path[1200];
        snprintf(path, sizeof path, "%s/feature-adv.json", out);
        rc = run_write_json("feature-adv", path, doc) ? 1 : 0;
        snprintf(path, sizeof path, "%s/feature-adv.md", out);
        if (rc == 0 && write_file_atomic(path, md, len) != 0) { fprintf(stderr, "finch feature-adv: %s\n", ft_last_error()); rc = 1; }
        if (rc == 0) printf("\nwritten: %s/feature-adv.json, .md and .png (source, guide, adversarial, perturbation)\n", out);
        cJSON_Delete(doc);
        free(md);
    }
    free(src);
    free(gd);
    free(glabel);
    splits_free(&data);
    model_free(m);
    return rc;
}
