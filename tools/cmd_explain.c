/* finch explain: why a prototype network classified one image as it did ("this looks like
 * that"). For the top prototypes by similarity: the score, the last-layer weights, where in the
 * image the prototype is most active (its receptive field and the box around the 95th
 * percentile of its upsampled similarity map), the heatmap overlay, and the training patch the
 * prototype was pushed onto. An attention network without prototypes (Ours-A) is explained by
 * its class maps instead: each class's logit is the mean of its map A[k], so the top classes'
 * maps show where its evidence lies. With attention (Ours-A, Ours-FR), the spatial attention a
 * too. Pictures, explain.json and explain.html. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "explain.h"
#include "core/fileio.h"
#include "data/augment.h"
#include "data/draw.h"
#include "data/image.h"
#include "data/sources.h"
#include "train/push.h"

/* FILE decoded, squashed to S x S (PIL's bilinear, as the datasets are), with C channels (grey:
 * PIL's luminance). 0 or 1 (printed). */
static int load_image(const char *path, int C, int S, uint8_t *chw) {
    Image im;
    if (image_read(path, &im) != 0) { fprintf(stderr, "finch explain: --image: %s\n", ft_last_error()); return 1; }
    uint8_t *rgb = ft_xmalloc((size_t)3 * S * S);
    resize_bilinear_pil(view_hwc(im.rgb, im.width, im.height), (float[4]){ 0, 0, (float)im.width, (float)im.height }, rgb, S);
    image_free(&im);
    for (int i = 0; i < S * S; i++) {
        if (C == 3) for (int c = 0; c < 3; c++) chw[c * S * S + i] = rgb[c * S * S + i];
        else chw[i] = image_luma(rgb[i], rgb[S * S + i], rgb[2 * S * S + i]);
    }
    free(rgb);
    return 0;
}

/* Test image `index` of the run's data. 0, or the exit status (printed). */
static int load_test_image(const RunDir *r, int index, int C, int S, uint8_t *chw, int *label) {
    Splits data;
    int rc = run_load_data("explain", &r->data, false, &data);
    if (rc) return rc;
    Shape s = data.test.images->shape;
    int n = dataset_size(&data.test);
    if (index >= n) { fprintf(stderr, "finch explain: --index %d: the test set has %d images (0..%d)\n", index, n, n - 1); rc = 2; }
    else if (!(s.d[1] == C || (s.d[1] == 1 && C == 3)) || s.d[2] != S || s.d[3] != S) {
        fprintf(stderr, "finch explain: the test images are %dx%dx%d, the run's model takes %dx%dx%d (pass the run's --data-dir?)\n",
                s.d[1], s.d[2], s.d[3], C, S, S);
        rc = 1;
    } else {   /* grey images for an RGB trunk: the plane three times, as the model's input does it */
        int c = s.d[1];
        for (int k = 0; k < C; k++)
            memcpy(chw + (size_t)k * S * S, ft_u8(data.test.images) + ((size_t)index * c + k % c) * S * S, (size_t)S * S);
        *label = ft_i32(data.test.labels)[index];
    }
    splits_free(&data);
    return rc;
}

static int cmp_score(const void *a, const void *b) {
    const ExplainRow *x = a, *y = b;
    int i = x->prototype >= 0 ? x->prototype : x->cls, j = y->prototype >= 0 ? y->prototype : y->cls;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : i - j;
}

/* e->probs and e->pred from probs [1, K]; e->rows (malloc'd) with one row per map of maps
 * [1, M, h, w]: its peak and where, and score = the peak (prototypes) or the mean (class maps). */
static void rank_maps(Tensor *probs, Tensor *maps, bool by_mean, Explanation *e) {
    int M = maps->shape.d[1], K = probs->shape.d[1], hw = maps->shape.d[2] * maps->shape.d[3], w = maps->shape.d[3];
    float *v = ft_xmalloc((size_t)M * hw * sizeof *v);
    ft_to_floats(maps, v, (int64_t)M * hw);
    e->probs = ft_xmalloc((size_t)K * sizeof *e->probs);
    ft_to_floats(probs, e->probs, K);
    e->pred = 0;
    for (int k = 1; k < K; k++) if (e->probs[k] > e->probs[e->pred]) e->pred = k;
    e->rows = ft_xmalloc((size_t)M * sizeof *e->rows);
    for (int j = 0; j < M; j++) {
        ExplainRow *row = &e->rows[j];
        double sum = 0;
        *row = (ExplainRow){ .prototype = by_mean ? -1 : j, .cls = j, .peak = -INFINITY };
        for (int c = 0; c < hw; c++) {
            double x = v[(int64_t)j * hw + c];
            sum += x;
            if (x > row->peak) { row->peak = x; row->h = c / w; row->w = c % w; }
        }
        row->score = by_mean ? sum / hw : row->peak;
    }
    free(v);
}

/* The prototypes' classes and last-layer weights into the rows (before they are sorted). */
static void add_weights(ProtoNet *p, Explanation *e) {
    int M = p->n_protos, K = p->base.num_classes;
    float *weights = ft_xmalloc((size_t)K * M * sizeof *weights);
    ft_to_floats(p->last.weight, weights, (int64_t)K * M);
    for (int j = 0; j < M; j++) {
        ExplainRow *row = &e->rows[j];
        row->cls = p->cls[j];
        row->weight_pred = weights[(int64_t)e->pred * M + j];
        row->weight_own = weights[(int64_t)row->cls * M + j];
    }
    free(weights);
}

/* image.png, attention.png (spatial, when not NULL) and the pictures of the shown rows, of maps
 * [1, M, h, w] (their boxes filled in on the way); 0 or -1. */
static int draw_rows(const RunDir *r, Tape *tp, Tensor *maps, Tensor *spatial, const uint8_t *chw, int C, int S, Explanation *e,
                     const char *out) {
    ReceptiveField rf = model_receptive_field(r->model, S);
    uint8_t *rgb = ft_xmalloc((size_t)S * S * 3), *pic = ft_xmalloc((size_t)S * S * 3);
    double *heat = ft_xmalloc((size_t)S * S * sizeof *heat);
    draw_chw_to_rgb(chw, C, S, S, rgb);
    char path[1400], src[1400];
    snprintf(path, sizeof path, "%s/image.png", out);
    int rc = png_write_rgb(path, rgb, S, S);
    if (spatial && rc == 0) {
        proto_upsample_map(tp, spatial, 0, 0, S, S, heat);
        draw_heat_overlay(rgb, heat, S, S, pic);
        snprintf(path, sizeof path, "%s/attention.png", out);
        rc = png_write_rgb(path, pic, S, S);
    }
    for (int i = 0; i < e->n_rows && rc == 0; i++) {
        ExplainRow *row = &e->rows[i];
        proto_upsample_map(tp, maps, 0, row->prototype >= 0 ? row->prototype : row->cls, S, S, heat);
        proto_rf_box(&rf, S, row->h, row->w, row->rf_box);
        draw_percentile_box(heat, S, S, 95, row->act_box);
        memcpy(pic, rgb, (size_t)S * S * 3);
        draw_box(pic, S, S, row->rf_box[0], row->rf_box[1], row->rf_box[2], row->rf_box[3], (uint8_t[3]){ 255, 255, 0 }, 1);
        draw_box(pic, S, S, row->act_box[0], row->act_box[1], row->act_box[2], row->act_box[3], (uint8_t[3]){ 255, 0, 0 }, 1);
        snprintf(path, sizeof path, "%s/rank-%d-box.png", out, i + 1);
        rc = png_write_rgb(path, pic, S, S);
        draw_heat_overlay(rgb, heat, S, S, pic);
        snprintf(path, sizeof path, "%s/rank-%d-heat.png", out, i + 1);
        if (rc == 0) rc = png_write_rgb(path, pic, S, S);
        snprintf(path, sizeof path, "%s/rank-%d-patch.png", out, i + 1);
        if (rc == 0) rc = draw_write_crop(path, rgb, S, S, row->act_box);
        const char *theirs[] = { "patch", "heat" };   /* the prototype's side, from the push report */
        for (int k = 0; k < 2 && rc == 0 && row->prototype >= 0; k++) {
            snprintf(src, sizeof src, "%s/prototype-%d-%s.png", r->push_dir, row->prototype, theirs[k]);
            snprintf(path, sizeof path, "%s/rank-%d-prototype-%s.png", out, i + 1, theirs[k]);
            rc = copy_file(src, path);
        }
    }
    free(rgb);
    free(pic);
    free(heat);
    return rc;
}

/* One forward (eval mode), the ranking (of the prototypes, or of an attention network's classes),
 * the pictures. 0 or -1 with ft_last_error(). */
static int explain(RunDir *r, const uint8_t *chw, int C, int S, Explanation *e, const char *out) {
    ProtoNet *p = r->p;
    p->base.training = false;
    Tape *tp = ft_tape_new(p->base.params.device);
    ft_no_grad_begin(tp);
    float *host = ft_xmalloc((size_t)C * S * S * sizeof *host);
    for (int i = 0; i < C * S * S; i++) host[i] = chw[i] / 255.0f;
    Tensor *x = ft_new(tp, FT_F32, SHAPE(1, C, S, S));
    ft_from_floats(x, host, (int64_t)C * S * S);
    free(host);
    ProtoOut o;
    Tensor *probs = ft_softmax(tp, protonet_forward(p, tp, x, &o), 1);
    Tensor *maps = p->has_prototypes ? proto_similarity_maps(tp, &o) : o.att_maps;
    Tensor *spatial = o.attention ? o.attention : o.att_maps ? attention_spatial(tp, o.att_maps) : NULL;
    int shown = e->n_rows;
    e->by_class = !p->has_prototypes;
    rank_maps(probs, maps, e->by_class, e);
    if (p->has_prototypes) add_weights(p, e);
    e->n_rows = maps->shape.d[1];
    qsort(e->rows, (size_t)e->n_rows, sizeof *e->rows, cmp_score);
    if (e->n_rows > shown) e->n_rows = shown;
    e->attention = spatial != NULL;
    int rc = draw_rows(r, tp, maps, spatial, chw, C, S, e, out);
    ft_tape_free(tp);
    return rc;
}

/* The side of the run's square images: from the push report, else (an attention network) from
 * its test set. 0, or the exit status (printed). */
static int run_image_size(const RunDir *r, int *S) {
    if (r->protos) {
        double v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r->protos, "image_size"));   /* NAN when absent */
        *S = v >= 1 && v <= 8192 ? (int)v : 0;
        if (*S > 0) return 0;
        fprintf(stderr, "finch explain: %s/prototypes.json: no valid image_size\n", r->push_dir);
        return 1;
    }
    Splits data;
    int rc = run_load_data("explain", &r->data, false, &data);
    if (rc) return rc;
    Shape s = data.test.images->shape;
    *S = s.d[2];
    if (s.d[2] != s.d[3]) { fprintf(stderr, "finch explain: the run's test images are %dx%d, not square\n", s.d[2], s.d[3]); rc = 1; }
    splits_free(&data);
    return rc;
}

int cmd_explain(int argc, char **argv) {
    const char *run = NULL, *image = NULL, *out = NULL, *device = "cpu", *data_dir = NULL;
    int index = -1, top = 10, threads = 0;
    const CliArg args[] = {
        { "run", ARG_STRING, &run, 0, 0, "run directory of finch train (a protopnet-, ours-fr- or ap- network)" },
        { "image", ARG_STRING, &image, 0, 0, "the image to explain (PNG or JPEG; squashed to the run's image size)" },
        { "index", ARG_INT, &index, -1, 2147483647, "or: this test image of the run's data (-1: use --image)" },
        { "top", ARG_INT, &top, 1, 10000, "prototypes shown, most similar first (ap-: classes, highest logit first)" },
        { "out", ARG_STRING, &out, 0, 0, "output directory (default RUN/explain-<image name> or RUN/explain-test-N)" },
        { "data-dir", ARG_STRING, &data_dir, 0, 0, "Fashion-MNIST directory, for --index (default: the Debian package's)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
    };
    int rc = cli_parse("explain", "Explain one image's classification by a prototype network: its top prototypes, their scores\n"
                                  "and weights, where each is active in the image next to the training patch it stands for.\n"
                                  "An attention network without prototypes (ap-): its top classes' attention maps, whose\n"
                                  "means are the logits.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!run) { fprintf(stderr, "finch explain: --run is required (a run directory of finch train)\n"); return 2; }
    if ((image != NULL) == (index >= 0)) { fprintf(stderr, "finch explain: give exactly one of --image FILE and --index N\n"); return 2; }
    Device dev;
    if (!cli_device("explain", device, &dev)) return 2;
    run_set_threads(threads);
    RunDir r;
    if ((rc = run_dir_open("explain", run, data_dir, dev, true, &r)) != 0) { run_dir_close(&r); return rc; }
    int S = 0, C = r.model->in_channels;
    if ((rc = run_image_size(&r, &S)) != 0) { run_dir_close(&r); return rc; }
    uint8_t *chw = ft_xmalloc((size_t)C * S * S);
    Explanation e = { .label = -1, .n_rows = top, .source = image };
    char name[1100], dir[1200];
    if (image) {
        rc = load_image(image, C, S, chw);
        const char *base = strrchr(image, '/') ? strrchr(image, '/') + 1 : image;
        snprintf(name, sizeof name, "%.*s", (int)(strchr(base, '.') ? strchr(base, '.') - base : (long)strlen(base)), base);
    } else {
        rc = load_test_image(&r, index, C, S, chw, &e.label);
        snprintf(name, sizeof name, "test-%d", index);
        e.source = name;
    }
    snprintf(dir, sizeof dir, "%s/explain-%s", run, name);
    if (!out) out = dir;
    if (rc == 0 && (make_dirs(out) != 0 || explain(&r, chw, C, S, &e, out) != 0 || explain_write(&r, &e, out) != 0)) {
        fprintf(stderr, "finch explain: %s\n", ft_last_error());
        rc = 1;
    }
    if (rc == 0) explain_print(&r, &e, out);
    free(chw);
    free(e.rows);
    free(e.probs);
    run_dir_close(&r);
    return rc;
}
