/* finch clever: CLEVER scores (attack/clever.h) of a saved model on the first test images. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "dist/dist.h"
#include "core/fileio.h"
#include "core/progress.h"

/* The target classes of one image: "untargeted" (every class but the predicted c), "top-K" (the
 * 2nd to K-th most likely of the clean logits) or one class. Returns the count. */
static int targets_of(const char *spec, const float *z, int K, int c, int *out) {
    int n = 0;
    if (strcmp(spec, "untargeted") == 0) {
        for (int j = 0; j < K; j++) if (j != c) out[n++] = j;
    } else if (strncmp(spec, "top-", 4) == 0) {
        int k = atoi(spec + 4);
        bool *used = ft_xcalloc((size_t)K, sizeof *used);
        used[c] = true;
        for (int r = 1; r < k && r < K; r++) {   /* the next most likely, ties to the lower class */
            int best = -1;
            for (int j = 0; j < K; j++) if (!used[j] && (best < 0 || z[j] > z[best])) best = j;
            used[best] = true;
            out[n++] = best;
        }
        free(used);
    } else if (atoi(spec) != c) {
        out[n++] = atoi(spec);
    }
    return n;
}

bool clever_target_ok(const char *s, int K) {
    char *end;
    if (strcmp(s, "untargeted") == 0) return true;
    long v = strtol(strncmp(s, "top-", 4) == 0 ? s + 4 : s, &end, 10);
    if (*end || end == s || v < 0) return false;
    return strncmp(s, "top-", 4) == 0 ? v >= 2 : v < K;
}

typedef struct { Progress p; } Ticker;
static void tick(void *ctx) { progress_update(&((Ticker *)ctx)->p, 1, NULL); }

static const char *norm_name(Norm p) { return p == NORM_L2 ? "2" : p == NORM_L1 ? "1" : "inf"; }

/* clever.md: one row per image, the mean of the images' scores. */
static char *markdown(cJSON *doc, const char *title, double mean, int fallbacks, int fits) {
    size_t cap = 4096, len = 0;
    char *md = ft_xmalloc(cap);
    len += (size_t)snprintf(md, cap, "# CLEVER: %s\n\n| image | label | predicted | score | target | L | p-value |\n|---|---|---|---|---|---|---|\n", title);
    cJSON *im;
    cJSON_ArrayForEach(im, cJSON_GetObjectItemCaseSensitive(doc, "images")) {
        char row[256];
        int k = snprintf(row, sizeof row, "| %d | %d | %d | %.4g | %d | %.4g | %.3g |\n",
                         (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "index")),
                         (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "label")),
                         (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "predicted")),
                         cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "score")),
                         (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "target")),
                         cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "lipschitz")),
                         cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "p_value")));
        if (len + (size_t)k + 512 > cap) md = ft_xrealloc(md, cap *= 2);
        memcpy(md + len, row, (size_t)k + 1);
        len += (size_t)k;
    }
    snprintf(md + len, cap - len, "\nMean score over the images: **%.4g**. The score of an image is the smallest over its "
             "targets of min(g(x0) / L, R); %d of %d fits fell back to the largest sample (KS p-value below 0.001).\n",
             mean, fallbacks, fits);
    return md;
}

/* Each process's array of image records, joined in rank order (the images' order). */
static cJSON *gather_images(cJSON *mine) {
    char *text = cJSON_PrintUnformatted(mine), *all;
    cJSON_Delete(mine);
    size_t *lens = ft_xmalloc((size_t)ft_dist_size() * sizeof *lens), at = 0;
    FT_CHECK(ft_dist_allgather_var(text, strlen(text), &all, lens) == 0, "%s", ft_last_error());
    cJSON *joined = cJSON_CreateArray();
    for (int r = 0; r < ft_dist_size(); r++) {
        cJSON *part = cJSON_ParseWithLength(all + at, lens[r]), *im;
        at += lens[r];
        FT_CHECK(part, "clever: rank %d's image records do not parse", r);
        while ((im = cJSON_DetachItemFromArray(part, 0))) cJSON_AddItemToArray(joined, im);
        cJSON_Delete(part);
    }
    free(text); free(all); free(lens);
    return joined;
}

double run_clever(Model *m, const Dataset *test, int limit, const CleverConfig *c, const char *target, uint64_t seed, bool quiet,
                  cJSON *doc, int *n_images, int *fallbacks_out, int *fits, double *seconds_out) {
    CleverConfig cfg = *c;
    int batches = cfg.batches, samples = cfg.samples, K = m->num_classes;
    Device dev = m->params.device;
    int n = limit < dataset_size(test) ? limit : dataset_size(test);
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    Shape s = test->images->shape;
    s.d[0] = 1;
    Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(1), dev);
    float *z = ft_xmalloc((size_t)K * sizeof *z);
    int *targets = ft_xmalloc((size_t)K * sizeof *targets), *n_targets = ft_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *n_targets), total = 0;
    int32_t *pred = ft_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *pred);
    Share sh = share_of(n, 1);   /* several processes: a share of the images each (every image's samples are its own) */
    for (int i = sh.lo; i < sh.hi; i++) {   /* the targets first, for the progress line's total */
        int32_t idx = i;
        dataset_batch(test, &idx, 1, x, y);
        float *zi = attack_clean_logits(m, tp, x);
        memcpy(z, zi, (size_t)K * sizeof *z);
        free(zi);
        int c = 0;
        for (int j = 1; j < K; j++) if (z[j] > z[c]) c = j;
        pred[i] = c;
        total += n_targets[i] = targets_of(target, z, K, c, targets);
    }
    cJSON *images = cJSON_CreateArray();
    cJSON_AddStringToObject(doc, "norm", norm_name(cfg.norm));
    cJSON_AddStringToObject(doc, "sampling", cfg.sampling == CLEVER_SAMPLE_BALL ? "uniform-ball" : "reference");
    cJSON_AddStringToObject(doc, "target", target);
    cJSON_AddNumberToObject(doc, "batches", batches);
    cJSON_AddNumberToObject(doc, "samples", samples);
    cJSON_AddNumberToObject(doc, "radius", cfg.radius);
    cJSON_AddNumberToObject(doc, "seed", seed);
    Ticker tk;
    progress_start(&tk.p, "clever", (int64_t)total * batches, quiet || sh.rank > 0);
    double *maxima = ft_xmalloc((size_t)batches * sizeof *maxima), sum = 0;
    int fallbacks = 0, scored = 0;
    for (int i = sh.lo; i < sh.hi; i++) {
        int32_t idx = i;
        dataset_batch(test, &idx, 1, x, y);
        float *zi = attack_clean_logits(m, tp, x);
        memcpy(z, zi, (size_t)K * sizeof *z);
        free(zi);
        targets_of(target, z, K, pred[i], targets);
        cJSON *im = cJSON_CreateObject(), *per = cJSON_CreateArray();
        cJSON_AddNumberToObject(im, "index", i);
        cJSON_AddNumberToObject(im, "label", ft_i32(test->labels)[i]);
        cJSON_AddNumberToObject(im, "predicted", pred[i]);
        double best = INFINITY, best_L = NAN, best_p = NAN;
        int best_j = -1;
        for (int t = 0; t < n_targets[i]; t++) {
            Rng rng = rng_new(seed * 1000003u + (uint64_t)i * 1009u + (uint64_t)targets[t]);
            double g0;
            clever_gradient_maxima(m, tp, x, pred[i], targets[t], &cfg, &rng, maxima, &g0, tick, &tk);
            WeibullFit f = clever_fit(maxima, batches);
            double score = fmin(g0 / f.lipschitz, cfg.radius);
            fallbacks += f.fallback;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "target", targets[t]);
            cJSON_AddNumberToObject(o, "g0", g0);
            cJSON_AddNumberToObject(o, "lipschitz", f.lipschitz);
            cJSON_AddNumberToObject(o, "score", score);
            cJSON_AddNumberToObject(o, "shape", f.shape);
            cJSON_AddNumberToObject(o, "loc", f.loc);
            cJSON_AddNumberToObject(o, "scale", f.scale);
            cJSON_AddNumberToObject(o, "ks", f.ks);
            cJSON_AddNumberToObject(o, "p_value", f.p_value);
            cJSON_AddBoolToObject(o, "fallback", f.fallback);
            cJSON_AddItemToArray(per, o);
            if (score < best) { best = score; best_j = targets[t]; best_L = f.lipschitz; best_p = f.p_value; }
        }
        if (best_j >= 0) { sum += best; scored++; }
        cJSON_AddNumberToObject(im, "score", best_j >= 0 ? best : 0);
        cJSON_AddNumberToObject(im, "target", best_j);
        cJSON_AddNumberToObject(im, "lipschitz", best_L);
        cJSON_AddNumberToObject(im, "p_value", best_p);
        cJSON_AddItemToObject(im, "targets", per);
        cJSON_AddItemToArray(images, im);
    }
    double seconds = progress_finish(&tk.p, NULL);
    if (ft_dist_active()) {   /* every process's images, in order, and the sums */
        double sums[4] = { sum, scored, fallbacks, total };
        ft_dist_allreduce_f64(sums, 4);
        sum = sums[0]; scored = (int)sums[1]; fallbacks = (int)sums[2]; total = (int)sums[3];
        images = gather_images(images);
    }
    double mean = scored ? sum / scored : NAN;
    cJSON_AddItemToObject(doc, "images", images);
    cJSON_AddNumberToObject(doc, "mean_score", mean);
    cJSON_AddNumberToObject(doc, "fallbacks", fallbacks);
    cJSON_AddNumberToObject(doc, "seconds", seconds);
    free(maxima); free(z); free(targets); free(n_targets); free(pred);
    ft_tensor_free(x); ft_tensor_free(y);
    ft_tape_free(tp);
    *n_images = n;
    *fallbacks_out = fallbacks;
    *fits = total;
    *seconds_out = seconds;
    return mean;
}

int cmd_clever(int argc, char **argv) {
    const char *file = NULL, *run = NULL, *out = NULL, *device = "cpu", *norm_s = "2", *sampling = "reference", *target = "top-10";
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 10, batches = 500, samples = 1024, chunk = 256, seed = 1, threads = 0;
    double radius = -1;
    bool quiet = false;
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        { "run", ARG_STRING, &run, 0, 0, "a run directory of finch train: its model.safetensors, results written there" },
        DATA_ARGS(d),
        { "limit", ARG_INT, &limit, 1, 1000000, "first N test images" },
        { "norm", ARG_STRING, &norm_s, 0, 0, "the perturbation's norm p: 2 | inf | 1 (gradients are measured in the dual norm)" },
        { "batches", ARG_INT, &batches, 1, 1000000, "N_b: batches of samples, one maximum each (the reference's 500)" },
        { "samples", ARG_INT, &samples, 1, 100000000, "N_s: samples per batch (the reference's 1024)" },
        { "radius", ARG_DOUBLE, &radius, -1, 1e6, "R, the sampling ball's radius and the score's cap on [0, 1] pixels "
          "(default, the reference's: 3 for L2, 30 for L1, 0.1 for L-inf)" },
        { "sampling", ARG_STRING, &sampling, 0, 0, "reference: as huanzhang12/CLEVER (L2: uniform in the unit ball times a radius "
          "uniform in [0, R]; L1: on the L1 sphere times a uniform radius; L-inf: uniform in the cube) | uniform-ball: "
          "uniform in the ball of radius R (the paper); either way each sample is clipped to [0, 1]" },
        { "target", ARG_STRING, &target, 0, 0, "top-K: the 2nd to K-th most likely classes | untargeted: every other class | "
          "CLASS; an image's score is its smallest" },
        { "chunk", ARG_INT, &chunk, 1, 65536, "samples per forward and backward" },
        { "out", ARG_STRING, &out, 0, 0, "directory for clever.json and clever.md (default: the model's)" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed of the samples" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("clever", "CLEVER scores (Weng et al., ICLR 2018) of a saved model: for each image and target class j,\n"
                       "g = Z_c - Z_j (c the predicted class), N_b batches of N_s samples around the image, the largest\n"
                       "dual-norm gradient of g in each batch, a reverse Weibull fit of those maxima (its location is the\n"
                       "local Lipschitz estimate L), score min(g(x0) / L, R). clever.json and clever.md.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    Norm p = strcmp(norm_s, "2") == 0 ? NORM_L2 : strcmp(norm_s, "1") == 0 ? NORM_L1 : NORM_INF;
    if (strcmp(norm_s, "2") && strcmp(norm_s, "1") && strcmp(norm_s, "inf")) {
        fprintf(stderr, "finch clever: --norm must be 2, inf or 1, got '%s'\n", norm_s);
        return 2;
    }
    if (cli_given(argc, argv, "radius") && !(radius > 0)) { fprintf(stderr, "finch clever: --radius must be above 0, got %g\n", radius); return 2; }
    if (strcmp(sampling, "reference") && strcmp(sampling, "uniform-ball")) {
        fprintf(stderr, "finch clever: --sampling must be reference or uniform-ball, got '%s'\n", sampling);
        return 2;
    }
    if (!clever_target_ok(target, 1 << 30)) {
        fprintf(stderr, "finch clever: --target must be top-K (K >= 2), untargeted or a class number, got '%s'\n", target);
        return 2;
    }
    if (run && file) { fprintf(stderr, "finch clever: give --run or --model-file, not both\n"); return 2; }
    CleverConfig cfg = clever_defaults(p);
    cfg.batches = batches;
    cfg.samples = samples;
    cfg.chunk = chunk;
    cfg.sampling = strcmp(sampling, "uniform-ball") == 0 ? CLEVER_SAMPLE_BALL : CLEVER_SAMPLE_REFERENCE;
    if (radius > 0) cfg.radius = radius;
    char model_path[1100];
    if (run) { snprintf(model_path, sizeof model_path, "%s/model.safetensors", run); file = model_path; }
    Device dev;
    if (!cli_device("clever", device, &dev)) return 2;
    run_set_threads(threads);
    Splits data;
    Model *m = run_load_model("clever", file, &d, dev, &data, &rc);
    if (!m) return rc;
    int K = m->num_classes;
    if (!clever_target_ok(target, K)) {
        fprintf(stderr, "finch clever: --target %s: the model has classes 0..%d\n", target, K - 1);
        model_free(m);
        splits_free(&data);
        return 2;
    }
    char dir[1024], json[1100], mdpath[1100];
    snprintf(dir, sizeof dir, "%s", out ? out : file);
    if (!out) { char *slash = strrchr(dir, '/'); if (slash) *slash = 0; else snprintf(dir, sizeof dir, "."); }
    snprintf(json, sizeof json, "%s/clever.json", dir);
    snprintf(mdpath, sizeof mdpath, "%s/clever.md", dir);
    if (make_dirs(dir) != 0) { fprintf(stderr, "finch clever: %s\n", ft_last_error()); model_free(m); splits_free(&data); return 1; }

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model_file", file);
    int n = 0, fallbacks = 0, total = 0;
    double seconds = 0, mean = run_clever(m, &data.test, limit, &cfg, target, (uint64_t)seed, quiet, doc, &n, &fallbacks, &total, &seconds);
    char title[1400];
    snprintf(title, sizeof title, "%s (%s), %d test images, L%s, %d x %d samples, R %g, %s sampling, target %s", m->arch, file, n,
             norm_name(p), batches, samples, cfg.radius, sampling, target);
    char *md = markdown(doc, title, mean, fallbacks, total);
    bool writer = ft_dist_rank() == 0;   /* several processes: rank 0 writes */
    rc = writer && run_write_json("clever", json, doc) ? 1 : 0;
    if (!rc && writer && write_file_atomic(mdpath, md, strlen(md)) != 0) { fprintf(stderr, "finch clever: %s\n", ft_last_error()); rc = 1; }
    printf("%s\n", md);
    if (!rc) printf("written: %s, %s (%.1f s)\n", json, mdpath, seconds);
    free(md);
    cJSON_Delete(doc);
    model_free(m);
    splits_free(&data);
    return rc;
}
