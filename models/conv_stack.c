/* A ResNet-like stack for benchmarks: the shape of ResNet's first stage without the shortcuts.
 *
 *   x [N, 64, 56, 56] (no input normalisation: mean 0, std 1)
 *   4 x (conv 3x3, 64 -> 64, pad 1, no bias + BN + ReLU)     -> [N, 64, 56, 56]
 *   global average pool, linear 64 -> K                        -> logits [N, K]
 * Parameter names follow torchvision's style (blocks.0.conv.weight, blocks.0.bn.running_mean). */
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

#define STACK_DEPTH 4
#define STACK_CHANNELS 64

typedef struct {
    Model base;
    Conv2d conv[STACK_DEPTH];
    BatchNorm bn[STACK_DEPTH];
    Linear fc;
} ConvStack;

static Tensor *trunk(Model *m, Tape *tp, Tensor *x) {
    ConvStack *s = (ConvStack *)m;
    Tensor *h = model_normalize(m, tp, x);
    if (!h) return NULL;   /* a refused input: ft_last_error() says why */
    static const char *const names[STACK_DEPTH] = { "blocks.0", "blocks.1", "blocks.2", "blocks.3" };
    for (int i = 0; i < STACK_DEPTH; i++)
        h = model_tap(m, names[i], batchnorm_relu_forward(tp, &s->bn[i], conv2d_forward(tp, &s->conv[i], h), model_bn_training(m)));
    return h;
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    ConvStack *s = (ConvStack *)m;
    Tensor *h = model_tap(m, "pooled", ft_flatten(tp, ft_adaptive_avg_pool2d(tp, trunk(m, tp, x), 1, 1)));
    return model_tap(m, "fc", linear_forward(tp, &s->fc, h));
}

static void destroy(Model *m) { free(m); }

Model *conv_stack_create(const ModelConfig *cfg) {
    ConvStack *s = ft_xcalloc(1, sizeof *s);
    Model *m = &s->base;
    float mean[STACK_CHANNELS] = { 0 }, std[STACK_CHANNELS];
    for (int i = 0; i < STACK_CHANNELS; i++) std[i] = 1;
    model_setup(m, "conv_stack", STACK_CHANNELS, 56, 56, mean, std, cfg);
    m->forward = forward;
    m->trunk = trunk;
    m->destroy = destroy;
    Rng rng = rng_new(cfg->seed);
    for (int i = 0; i < STACK_DEPTH; i++) {
        char name[32];
        snprintf(name, sizeof name, "blocks.%d.conv", i);
        s->conv[i] = conv2d_make(&m->params, name, STACK_CHANNELS, STACK_CHANNELS, 3, 1, 1, false);
        init_kaiming_normal(s->conv[i].weight, true, &rng);
        snprintf(name, sizeof name, "blocks.%d.bn", i);
        s->bn[i] = batchnorm_make(&m->params, name, STACK_CHANNELS);
        model_add_rf_layer(m, 3, 1, 1);
    }
    m->trunk_channels = STACK_CHANNELS;
    if (!cfg->trunk_only) {
        s->fc = linear_make(&m->params, "fc", STACK_CHANNELS, cfg->num_classes, true);
        init_torch_default(s->fc.weight, s->fc.bias, &rng);
    }
    model_finish(m, cfg);
    return m;
}
