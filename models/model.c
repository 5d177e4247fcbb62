#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "protonet.h"

Model *small_cnn_create(const ModelConfig *cfg);
Model *conv_stack_create(const ModelConfig *cfg);
Model *vgg_create(const char *arch, int depth, bool bn, const ModelConfig *cfg);
Model *resnet_create(const char *arch, bool bottleneck, const int layers[4], const ModelConfig *cfg);
Model *densenet_create(const char *arch, int growth, const int blocks[4], int stem, const ModelConfig *cfg);

/* Every architecture by name; the numbers are torchvision's configurations. */
static const struct {
    const char *name;
    enum { SMALL_CNN, CONV_STACK, VGG, VGG_BN, RESNET_BASIC, RESNET_BOTTLENECK, DENSENET } kind;
    int depth_or_growth, stem, blocks[4];
} registry[] = {
    { "small_cnn", SMALL_CNN, 0, 0, { 0 } },
    { "conv_stack", CONV_STACK, 0, 0, { 0 } },
    { "vgg11", VGG, 11, 0, { 0 } }, { "vgg13", VGG, 13, 0, { 0 } },
    { "vgg16", VGG, 16, 0, { 0 } }, { "vgg19", VGG, 19, 0, { 0 } },
    { "vgg11_bn", VGG_BN, 11, 0, { 0 } }, { "vgg13_bn", VGG_BN, 13, 0, { 0 } },
    { "vgg16_bn", VGG_BN, 16, 0, { 0 } }, { "vgg19_bn", VGG_BN, 19, 0, { 0 } },
    { "resnet18", RESNET_BASIC, 0, 0, { 2, 2, 2, 2 } }, { "resnet34", RESNET_BASIC, 0, 0, { 3, 4, 6, 3 } },
    { "resnet50", RESNET_BOTTLENECK, 0, 0, { 3, 4, 6, 3 } }, { "resnet101", RESNET_BOTTLENECK, 0, 0, { 3, 4, 23, 3 } },
    { "resnet152", RESNET_BOTTLENECK, 0, 0, { 3, 8, 36, 3 } },
    { "densenet121", DENSENET, 32, 64, { 6, 12, 24, 16 } }, { "densenet161", DENSENET, 48, 96, { 6, 12, 36, 24 } },
    { "densenet169", DENSENET, 32, 64, { 6, 12, 32, 32 } }, { "densenet201", DENSENET, 32, 64, { 6, 12, 48, 32 } },
};

const char *model_arch_list(void) {
    static char list[512];
    if (!list[0])
        for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", registry[i].name);
    return list;
}

int model_parse_ints(const char *what, const char *s, int *out, int max, bool allow_pool) {
    int n = 0;
    for (const char *p = s; *p; ) {
        if (n == max) return ft_error("%s '%s': more than %d entries", what, s, max);
        char *end;
        if (allow_pool && *p == 'M') { out[n++] = 0; end = (char *)p + 1; }
        else {
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || v > 100000) return ft_error("%s '%s': expected positive integers separated by commas%s", what, s,
                                                                 allow_pool ? " (M for a max-pool)" : "");
            out[n++] = (int)v;
        }
        if (*end == ',') end++;
        else if (*end) return ft_error("%s '%s': unexpected '%c'", what, s, *end);
        p = end;
    }
    if (n == 0) return ft_error("%s: empty list", what);
    return n;
}

/* Sizes past these describe no network finch can train; refusing them keeps a crafted model file
 * from building one for minutes. */
static int check_config(const char *arch, const ModelConfig *c) {
    if (c->num_classes < 1 || c->num_classes > MODEL_MAX_CLASSES)
        return ft_error("%s: %d classes, expected 1..%d", arch, c->num_classes, MODEL_MAX_CLASSES);
    if (c->width < 0 || c->width > MODEL_MAX_WIDTH) return ft_error("%s: width %d, expected 0..%d", arch, c->width, MODEL_MAX_WIDTH);
    if (c->stem < 0 || c->stem > MODEL_MAX_WIDTH) return ft_error("%s: stem %d, expected 0..%d", arch, c->stem, MODEL_MAX_WIDTH);
    if (c->feature_dim < 0 || c->feature_dim > MODEL_MAX_WIDTH)
        return ft_error("%s: feature_dim %d, expected 0..%d", arch, c->feature_dim, MODEL_MAX_WIDTH);
    for (int i = 0; i < 4; i++)
        if (c->blocks[i] < 0 || c->blocks[i] > MODEL_MAX_BLOCKS)
            return ft_error("%s: %d blocks in stage %d, expected at most %d", arch, c->blocks[i], i + 1, MODEL_MAX_BLOCKS);
    for (int i = 0; i < c->n_vgg_cfg; i++)
        if (c->vgg_cfg[i] < 0 || c->vgg_cfg[i] > MODEL_MAX_WIDTH)
            return ft_error("%s: VGG layer %d has %d channels, expected at most %d", arch, i + 1, c->vgg_cfg[i], MODEL_MAX_WIDTH);
    if (c->proto_depth < 0 || c->proto_depth > MODEL_MAX_WIDTH)
        return ft_error("%s: prototype depth %d, expected 0..%d", arch, c->proto_depth, MODEL_MAX_WIDTH);
    return 0;
}

Model *model_create(const char *arch, const ModelConfig *cfg) {
    if (check_config(arch, cfg) != 0) return NULL;
    if (protonet_parse_arch(arch, NULL, NULL)) return protonet_create(arch, cfg);
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        if (strcmp(arch, registry[i].name) != 0) continue;
        const char *name = registry[i].name;   /* static storage: the model keeps the pointer */
        switch (registry[i].kind) {
        case SMALL_CNN: return small_cnn_create(cfg);
        case CONV_STACK: return conv_stack_create(cfg);
        case VGG: return vgg_create(name, registry[i].depth_or_growth, false, cfg);
        case VGG_BN: return vgg_create(name, registry[i].depth_or_growth, true, cfg);
        case RESNET_BASIC: return resnet_create(name, false, cfg->blocks[0] ? cfg->blocks : registry[i].blocks, cfg);
        case RESNET_BOTTLENECK: return resnet_create(name, true, cfg->blocks[0] ? cfg->blocks : registry[i].blocks, cfg);
        case DENSENET:
            return densenet_create(name, registry[i].depth_or_growth, cfg->blocks[0] ? cfg->blocks : registry[i].blocks,
                                   registry[i].stem, cfg);
        }
    }
    ft_error("unknown model '%s' (available: %s; and protopnet-, ap- or ours-fr- before any of them)", arch,
             model_arch_list());
    return NULL;
}

void model_free(Model *m) {
    if (!m) return;
    params_free(&m->params);
    ft_tensor_free(m->mean);
    ft_tensor_free(m->std);
    m->destroy(m);
}

void model_setup(Model *m, const char *arch, int channels, int height, int width, const float *mean, const float *std,
                 const ModelConfig *cfg) {
    m->arch = arch;
    m->in_channels = channels;
    m->height = height;
    m->width = width;
    m->num_classes = cfg->num_classes;
    m->rng = rng_new(cfg->seed ^ 0x5eedd509u);
    params_init(&m->params, cfg->device, cfg->dtype);
    m->params.budget = cfg->param_budget;
    m->mean = ft_tensor_new(cfg->dtype, SHAPE(1, channels, 1, 1), cfg->device);
    m->std = ft_tensor_new(cfg->dtype, SHAPE(1, channels, 1, 1), cfg->device);
    if (mean) ft_from_floats(m->mean, mean, channels);
    else ft_fill_(m->mean, 0);
    if (std) ft_from_floats(m->std, std, channels);
    else ft_fill_(m->std, 1);
    m->norm_identity = true;
    for (int c = 0; c < channels; c++) m->norm_identity &= (!mean || mean[c] == 0) && (!std || std[c] == 1);
}

void model_tap_offer(ModelTaps *t, const char *name, Tensor *x) {
    if (!x) return;   /* the forward failed (a bad input): nothing to offer */
    char full[MODEL_TAP_NAME];
    snprintf(full, sizeof full, "%s%s", t->prefix ? t->prefix : "", name);
    if (t->want) {
        if (!t->got && strcmp(full, t->want) == 0) t->got = x;
    } else if (t->n < MODEL_MAX_TAPS) {
        snprintf(t->names[t->n], MODEL_TAP_NAME, "%s", full);
        t->shapes[t->n++] = x->shape;
    }
}

Tensor *model_bn_relu(Model *m, Tape *tp, const BatchNorm *bn, Tensor *x, const char *bn_name, const char *relu_name) {
    if (!m->taps) return batchnorm_relu_forward(tp, bn, x, model_bn_training(m));
    Tensor *y = model_tap(m, bn_name, batchnorm_forward(tp, bn, x, model_bn_training(m)));
    return model_tap(m, relu_name, ft_relu(tp, y));
}

void model_list_layers(Model *m, Tape *tp, Tensor *x, ModelTaps *t) {
    memset(t, 0, sizeof *t);
    m->taps = t;
    ft_no_grad_begin(tp);
    m->forward(m, tp, x);
    ft_no_grad_end(tp);
    m->taps = NULL;
}

Tensor *model_layer(Model *m, Tape *tp, Tensor *x, const char *name) {
    ModelTaps *t = ft_xcalloc(1, sizeof *t);
    t->want = name;
    m->taps = t;
    Tensor *out = m->forward(m, tp, x);
    m->taps = NULL;
    Tensor *got = t->got;
    if (!got && out) {   /* (no output: the input was refused, and ft_last_error says why) */
        model_list_layers(m, tp, x, t);
        char list[4096] = "";
        size_t k = 0;
        for (int i = 0; i < t->n && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", t->names[i]);
        ft_error("%s has no layer '%s'; its layers: %s", m->arch, name, list);
    }
    free(t);
    return got;
}

bool model_accepts(const Model *m, int channels, int height, int width) {
    if (m->min_size > 0) {
        if (height < m->min_size) height = m->min_size;
        if (width < m->min_size) width = m->min_size;
    }
    return (channels == m->in_channels || (channels == 1 && m->in_channels == 3)) &&
           (m->height == 0 || (height == m->height && width == m->width));
}

/* Each intermediate here feeds only the next op: when no backward reads it (a training step,
 * where the input wants no gradient), its data goes back to the arena at once, so a batch of
 * images is not kept twice or three times over for the whole step. */
Tensor *model_normalize(Model *m, Tape *tp, Tensor *x) {
    FT_INPUT(x);
    Tensor *in = x;
    if (x->shape.ndim == 4 && x->shape.d[1] == 1 && m->in_channels == 3)
        x = ft_concat(tp, (Tensor *[]){ x, x, x }, 3, 1);
    if (x && x->shape.ndim == 4 && m->min_size > 0 && (x->shape.d[2] < m->min_size || x->shape.d[3] < m->min_size)) {
        Tensor *up = ft_upsample_bilinear(tp, x, x->shape.d[2] < m->min_size ? m->min_size : x->shape.d[2],
                                          x->shape.d[3] < m->min_size ? m->min_size : x->shape.d[3], false);
        if (x != in) ft_tape_release(tp, x);
        x = up;
    }
    FT_INPUT(x);
    FT_ARG(x->shape.ndim == 4 && x->shape.d[1] == m->in_channels &&
             (m->height == 0 || (x->shape.d[2] == m->height && x->shape.d[3] == m->width)),
             "%s expects input [N, %d, %d, %d], got %s", m->arch, m->in_channels, m->height, m->width,
             FT_SHAPE_STR(x->shape));
    if (m->norm_identity) return x;   /* (x - 0) / 1: no copy to keep for the first layer's backward */
    Tensor *centred = ft_sub(tp, x, m->mean);
    if (x != in) ft_tape_release(tp, x);
    Tensor *y = ft_div(tp, centred, m->std);
    ft_tape_release(tp, centred);
    return y;
}

int model_heads(Model *m, Tape *tp, Tensor *x, Tensor *out[MODEL_MAX_HEADS]) {
    if (m->heads) return m->heads(m, tp, x, out);
    out[0] = m->forward(m, tp, x);
    return 1;
}

Tensor *model_loss(Model *m, Tape *tp, Tensor *x, Tensor *y, Tensor **logits) {
    Tensor *z[MODEL_MAX_HEADS];
    int n = model_heads(m, tp, x, z);
    Tensor *loss = ft_cross_entropy(tp, z[0], y);
    for (int h = 1; h < n; h++) loss = ft_add(tp, loss, ft_cross_entropy(tp, z[h], y));
    if (logits) *logits = z[0];
    return loss;
}

void model_finish(Model *m, const ModelConfig *cfg) {
    if (cfg->trunk_only) m->forward = NULL;
    else params_finalize(&m->params);
}

void model_add_rf_layer(Model *m, int kernel, int stride, int pad) {
    FT_CHECK(m->n_rf_layers < MODEL_MAX_RF_LAYERS, "%s: more than %d layers on the trunk's path", m->arch, MODEL_MAX_RF_LAYERS);
    m->rf_layers[m->n_rf_layers++] = (LayerGeom){ kernel, stride, pad };
}

/* ProtoPNet's compute_layer_rf_info, layer by layer along the main path */
ReceptiveField model_receptive_field(const Model *m, int size) {
    ReceptiveField r = { size, 1, 1, 0.5 };
    for (int i = 0; i < m->n_rf_layers; i++) {
        const LayerGeom *l = &m->rf_layers[i];
        r.n = (r.n - l->kernel + 2 * l->pad) / l->stride + 1;
        r.start += ((l->kernel - 1) / 2.0 - l->pad) * r.jump;
        r.rf += (l->kernel - 1) * r.jump;
        r.jump *= l->stride;
    }
    return r;
}

void model_predict(Tensor *logits, int32_t *pred) {
    int N = logits->shape.d[0], K = logits->shape.d[1];
    float *h = ft_xmalloc((size_t)N * K * sizeof *h);
    ft_to_floats(logits, h, (int64_t)N * K);
    for (int n = 0; n < N; n++) {
        int best = 0;
        for (int k = 1; k < K; k++) if (h[n * K + k] > h[n * K + best]) best = k;
        pred[n] = best;
    }
    free(h);
}
