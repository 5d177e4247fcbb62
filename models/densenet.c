/* DenseNet-BC (Huang et al. 2017) exactly as torchvision builds it, names included:
 *
 *   x [N, 3, H, W] -> normalise
 *   features.conv0 7x7/2 + norm0 + ReLU + pool0 (max 3x3/2)           -> [N, 2k, H/4, W/4]
 *   features.denseblock{b}.denselayer{l}: on the concatenation of the block's input and every
 *     earlier layer's output: norm1 + ReLU + conv1 (1x1 -> 4k) + norm2 + ReLU + conv2 (3x3 -> k)
 *   features.transition{b} (between blocks): norm + ReLU + conv (1x1, halves the channels) +
 *     2x2 average pool
 *   features.norm5, then ReLU (ProtoPNet's trunk ends here)         -> trunk [N, C, H/32, W/32]
 *   adaptive average pool to 1x1, classifier (C -> K)                 -> logits [N, K]
 * k is the growth rate (32; 48 for densenet161, whose stem has 96 channels instead of 64). A
 * width w sets k = w and the stem to 2w. */
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

#define DENSE_MAX_LAYERS 48

typedef struct { BatchNorm norm1, norm2; Conv2d conv1, conv2; } DenseLayer;
typedef struct { BatchNorm norm; Conv2d conv; } Transition;

typedef struct {
    Model base;
    Conv2d conv0;
    BatchNorm norm0, norm5;
    DenseLayer layers[4][DENSE_MAX_LAYERS];
    int n_layers[4];
    Transition trans[3];
    Linear classifier;
} DenseNet;

static Tensor *bn_relu_conv(Tape *tp, const BatchNorm *bn, const Conv2d *c, Tensor *x, bool training) {
    return conv2d_forward(tp, c, batchnorm_relu_forward(tp, bn, x, training));
}

/* x as features.<what><k> (taps only) */
static Tensor *tap(Model *m, const char *what, int k, Tensor *x) {
    if (!m->taps) return x;
    char name[48];
    snprintf(name, sizeof name, "features.%s%d", what, k);
    return model_tap(m, name, x);
}

static Tensor *trunk(Model *m, Tape *tp, Tensor *x) {
    DenseNet *d = (DenseNet *)m;
    Tensor *h = model_normalize(m, tp, x);
    if (!h) return NULL;   /* a refused input: ft_last_error() says why */
    h = model_tap(m, "features.conv0", conv2d_forward(tp, &d->conv0, h));
    h = model_bn_relu(m, tp, &d->norm0, h, "features.norm0", "features.relu0");
    h = model_tap(m, "features.pool0", ft_max_pool2d(tp, h, 3, 2, 1));
    for (int b = 0; b < 4; b++) {
        Tensor *feats[DENSE_MAX_LAYERS + 1] = { h };
        for (int l = 0; l < d->n_layers[b]; l++) {
            const DenseLayer *L = &d->layers[b][l];
            Tensor *in = l == 0 ? h : ft_concat(tp, feats, l + 1, 1);
            Tensor *y = bn_relu_conv(tp, &L->norm1, &L->conv1, in, model_bn_training(m));
            feats[l + 1] = bn_relu_conv(tp, &L->norm2, &L->conv2, y, model_bn_training(m));
        }
        h = tap(m, "denseblock", b + 1, ft_concat(tp, feats, d->n_layers[b] + 1, 1));
        if (b < 3) {
            h = bn_relu_conv(tp, &d->trans[b].norm, &d->trans[b].conv, h, model_bn_training(m));
            h = tap(m, "transition", b + 1, ft_avg_pool2d(tp, h, 2, 2, 0, true));
        }
    }
    return model_bn_relu(m, tp, &d->norm5, h, "features.norm5", "features.relu5");   /* torchvision applies this ReLU in forward(); finch names it */
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    DenseNet *d = (DenseNet *)m;
    Tensor *h = model_tap(m, "pooled", ft_flatten(tp, ft_adaptive_avg_pool2d(tp, trunk(m, tp, x), 1, 1)));
    return model_tap(m, "classifier", linear_forward(tp, &d->classifier, h));
}

static void destroy(Model *m) { free(m); }

static const float imagenet_mean[] = { 0.485f, 0.456f, 0.406f }, imagenet_std[] = { 0.229f, 0.224f, 0.225f };

static Conv2d conv(Model *m, const char *name, int in, int out, int k, Rng *rng) {
    Conv2d c = conv2d_make(&m->params, name, in, out, k, 1, k / 2, false);
    init_kaiming_normal(c.weight, false, rng);   /* torchvision: kaiming_normal_ with fan_in */
    return c;
}

Model *densenet_create(const char *arch, int growth, const int blocks[4], int stem, const ModelConfig *cfg) {
    DenseNet *d = ft_xcalloc(1, sizeof *d);
    Model *m = &d->base;
    model_setup(m, arch, 3, 0, 0, imagenet_mean, imagenet_std, cfg);
    m->forward = forward;
    m->trunk = trunk;
    m->destroy = destroy;
    m->min_size = 32;   /* five stride-2 stages */
    if (cfg->width > 0) { growth = cfg->width; stem = 2 * cfg->width; }
    if (cfg->stem > 0) stem = cfg->stem;
    Rng rng = rng_new(cfg->seed);
    d->conv0 = conv2d_make(&m->params, "features.conv0", 3, stem, 7, 2, 3, false);
    init_kaiming_normal(d->conv0.weight, false, &rng);
    d->norm0 = batchnorm_make(&m->params, "features.norm0", stem);
    model_add_rf_layer(m, 7, 2, 3);
    model_add_rf_layer(m, 3, 2, 1);
    int c = stem;
    char name[96];
    for (int b = 0; b < 4; b++) {
        FT_CHECK(blocks[b] <= DENSE_MAX_LAYERS, "%s: %d layers in a block (at most %d)", arch, blocks[b], DENSE_MAX_LAYERS);
        d->n_layers[b] = blocks[b];
        for (int l = 0; l < blocks[b]; l++) {
            DenseLayer *L = &d->layers[b][l];
            int in = c + l * growth;
            snprintf(name, sizeof name, "features.denseblock%d.denselayer%d.norm1", b + 1, l + 1);
            L->norm1 = batchnorm_make(&m->params, name, in);
            snprintf(name, sizeof name, "features.denseblock%d.denselayer%d.conv1", b + 1, l + 1);
            L->conv1 = conv(m, name, in, 4 * growth, 1, &rng);
            snprintf(name, sizeof name, "features.denseblock%d.denselayer%d.norm2", b + 1, l + 1);
            L->norm2 = batchnorm_make(&m->params, name, 4 * growth);
            snprintf(name, sizeof name, "features.denseblock%d.denselayer%d.conv2", b + 1, l + 1);
            L->conv2 = conv(m, name, 4 * growth, growth, 3, &rng);
            model_add_rf_layer(m, 1, 1, 0);
            model_add_rf_layer(m, 3, 1, 1);
        }
        c += blocks[b] * growth;
        if (b < 3) {
            snprintf(name, sizeof name, "features.transition%d.norm", b + 1);
            d->trans[b].norm = batchnorm_make(&m->params, name, c);
            snprintf(name, sizeof name, "features.transition%d.conv", b + 1);
            d->trans[b].conv = conv(m, name, c, c / 2, 1, &rng);
            c /= 2;
            model_add_rf_layer(m, 1, 1, 0);
            model_add_rf_layer(m, 2, 2, 0);
        }
    }
    d->norm5 = batchnorm_make(&m->params, "features.norm5", c);
    m->trunk_channels = c;
    if (!cfg->trunk_only) {
        d->classifier = linear_make(&m->params, "classifier", c, cfg->num_classes, true);
        init_torch_default(d->classifier.weight, NULL, &rng);   /* torchvision: default weight, zero bias */
    }
    model_finish(m, cfg);
    return m;
}
