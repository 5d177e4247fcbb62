/* VGG (Simonyan & Zisserman 2015) exactly as torchvision builds it, names included:
 *
 *   x [N, 3, H, W] -> normalise (ImageNet mean / std)
 *   features: per cfg entry a 3x3 conv (pad 1, bias) [+ BN] + ReLU, or a 2x2 max-pool ("M");
 *             torchvision numbers the Sequential's modules: features.0 (conv), features.1 (BN or
 *             ReLU), ...                                          -> trunk [N, 512, H/32, W/32]
 *   avgpool: adaptive to 7x7, flatten                              -> [N, 25088]
 *   classifier.0 (25088 -> 4096) + ReLU + dropout 0.5, classifier.3 (4096 -> 4096) + ReLU +
 *   dropout 0.5, classifier.6 (4096 -> K)                          -> logits [N, K]
 * A width w != 64 scales every channel count by w / 64 (and the hidden layers with it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"

#define POOL 0
#define VGG_MAX_LAYERS MODEL_MAX_VGG_CFG

typedef struct {
    Model base;
    int cfg[VGG_MAX_LAYERS], n_cfg;
    int index[VGG_MAX_LAYERS];    /* torchvision's module number of entry i's conv or pool */
    bool bn;
    Conv2d conv[VGG_MAX_LAYERS];
    BatchNorm norm[VGG_MAX_LAYERS];
    Linear fc[3];
} VGG;

/* torchvision's cfgs "A", "B", "D", "E" (channel counts, 0 = max-pool) */
static const int cfg11[] = { 64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL };
static const int cfg13[] = { 64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL };
static const int cfg16[] = { 64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL };
static const int cfg19[] = { 64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
                             512, 512, 512, 512, POOL };

/* x as the output of module `prefix`.index (taps only) */
static Tensor *tap(Model *m, const char *prefix, int index, Tensor *x) {
    if (!m->taps) return x;
    char name[32];
    snprintf(name, sizeof name, "%s.%d", prefix, index);
    return model_tap(m, name, x);
}

static Tensor *trunk(Model *m, Tape *tp, Tensor *x) {
    VGG *v = (VGG *)m;
    Tensor *h = model_normalize(m, tp, x);
    if (!h) return NULL;   /* a refused input: ft_last_error() says why */
    for (int i = 0; i < v->n_cfg; i++) {
        int k = v->index[i];
        if (v->cfg[i] == POOL) { h = tap(m, "features", k, ft_max_pool2d(tp, h, 2, 2, 0)); continue; }
        h = tap(m, "features", k, conv2d_forward(tp, &v->conv[i], h));
        if (v->bn && !m->taps) { h = batchnorm_relu_forward(tp, &v->norm[i], h, model_bn_training(m)); continue; }
        if (v->bn) h = tap(m, "features", ++k, batchnorm_forward(tp, &v->norm[i], h, model_bn_training(m)));
        h = tap(m, "features", ++k, ft_relu(tp, h));
    }
    return h;
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    VGG *v = (VGG *)m;
    Tensor *h = ft_flatten(tp, model_tap(m, "avgpool", ft_adaptive_avg_pool2d(tp, trunk(m, tp, x), 7, 7)));
    for (int i = 0; i < 2; i++) {
        h = tap(m, "classifier", 3 * i, linear_forward(tp, &v->fc[i], h));
        h = tap(m, "classifier", 3 * i + 1, ft_relu(tp, h));
        if (i == 1) model_tap(m, "pooled", h);
        h = ft_dropout(tp, h, 0.5, m->training && !m->dropout_off, &m->rng);
    }
    return tap(m, "classifier", 6, linear_forward(tp, &v->fc[2], h));
}

static void destroy(Model *m) { free(m); }

static const float imagenet_mean[] = { 0.485f, 0.456f, 0.406f }, imagenet_std[] = { 0.229f, 0.224f, 0.225f };

/* cfg->vgg_cfg, when given, replaces the depth's configuration (channels as given; the width
 * then scales only the hidden layers). */
Model *vgg_create(const char *arch, int depth, bool bn, const ModelConfig *cfg) {
    const int *c = depth == 11 ? cfg11 : depth == 13 ? cfg13 : depth == 16 ? cfg16 : cfg19;
    int n = depth == 11 ? 13 : depth == 13 ? 15 : depth == 16 ? 18 : 21;
    bool custom = cfg->n_vgg_cfg > 0;
    if (custom) { c = cfg->vgg_cfg; n = cfg->n_vgg_cfg; }
    VGG *v = ft_xcalloc(1, sizeof *v);
    Model *m = &v->base;
    model_setup(m, arch, 3, 0, 0, imagenet_mean, imagenet_std, cfg);
    m->forward = forward;
    m->trunk = trunk;
    m->destroy = destroy;
    m->min_size = 1;    /* doubled for every max-pool below */
    v->bn = bn;
    v->n_cfg = n;
    int w = cfg->width > 0 ? cfg->width : 64, in = 3, index = 0;
    Rng rng = rng_new(cfg->seed);
    char name[32];
    for (int i = 0; i < n; i++) {
        v->cfg[i] = c[i] == POOL || custom ? c[i] : c[i] * w / 64;
        v->index[i] = index;
        if (v->cfg[i] == POOL) { model_add_rf_layer(m, 2, 2, 0); index++; m->min_size *= 2; continue; }
        snprintf(name, sizeof name, "features.%d", index++);
        v->conv[i] = conv2d_make(&m->params, name, in, v->cfg[i], 3, 1, 1, true);
        init_kaiming_normal(v->conv[i].weight, true, &rng);   /* torchvision: kaiming fan_out, zero bias */
        if (bn) {
            snprintf(name, sizeof name, "features.%d", index++);
            v->norm[i] = batchnorm_make(&m->params, name, v->cfg[i]);
        }
        index++;   /* the ReLU */
        model_add_rf_layer(m, 3, 1, 1);
        in = v->cfg[i];
    }
    m->trunk_channels = in;
    int hidden = 4096 * w / 64, dims[] = { in * 49, hidden, hidden, cfg->num_classes };
    for (int i = 0; i < 3 && !cfg->trunk_only; i++) {
        snprintf(name, sizeof name, "classifier.%d", 3 * i);
        v->fc[i] = linear_make(&m->params, name, dims[i], dims[i + 1], true);
        rng_normal_(&rng, v->fc[i].weight, 0, 0.01);           /* torchvision: normal(0, 0.01), zero bias */
    }
    model_finish(m, cfg);
    return m;
}
