/* The small CNN of the Fashion-MNIST demo, sized to train on two CPU cores in minutes:
 *
 *   x [N, 1, 28, 28] -> normalise
 *   conv1 3x3 (1 -> w) + BN + ReLU + maxpool 2     -> [N, w, 14, 14]
 *   conv2 3x3 (w -> 2w) + BN + ReLU + maxpool 2    -> [N, 2w, 7, 7]
 *   flatten, fc1 (98w -> 128) + ReLU + dropout 0.25, fc2 (128 -> K) -> logits [N, K]
 * With the config's feature_dim F: fc1 (98w -> F), fc2 (F -> K), no ReLU or dropout between
 * them: a linear F-dimensional feature (F = 2 can be drawn in the plane, as the metric-learning
 * literature's 2-D feature plots). 
 */
#include <stdlib.h>
#include "model.h"

typedef struct {
    Model base;
    Conv2d conv1, conv2;
    BatchNorm bn1, bn2;
    Linear fc1, fc2;
    bool linear_feature;   /* feature_dim given: fc1's output is the feature, no ReLU, no dropout */
} SmallCNN;

/* block i (0, 1); its layers tapped as conv1, bn1, relu1, pool1 (conv2, ...) */
static Tensor *block(Model *m, Tape *tp, const Conv2d *c, const BatchNorm *bn, Tensor *x, int i) {
    static const char *const names[2][4] = { { "conv1", "bn1", "relu1", "pool1" }, { "conv2", "bn2", "relu2", "pool2" } };
    Tensor *y = model_tap(m, names[i][0], conv2d_forward(tp, c, x));
    y = model_bn_relu(m, tp, bn, y, names[i][1], names[i][2]);
    return model_tap(m, names[i][3], ft_max_pool2d(tp, y, 2, 2, 0));
}

/* x -> [N, 2w, 7, 7] */
static Tensor *trunk(Model *m, Tape *tp, Tensor *x) {
    SmallCNN *s = (SmallCNN *)m;
    Tensor *h = model_normalize(m, tp, x);
    if (!h) return NULL;   /* a refused input: ft_last_error() says why */
    h = block(m, tp, &s->conv1, &s->bn1, h, 0);
    return block(m, tp, &s->conv2, &s->bn2, h, 1);
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    SmallCNN *s = (SmallCNN *)m;
    Tensor *h = model_tap(m, "fc1", linear_forward(tp, &s->fc1, ft_flatten(tp, trunk(m, tp, x))));
    if (s->linear_feature) h = model_tap(m, "pooled", h);
    else {
        h = model_tap(m, "pooled", ft_relu(tp, h));
        h = ft_dropout(tp, h, 0.25, m->training && !m->dropout_off, &m->rng);
    }
    return model_tap(m, "fc2", linear_forward(tp, &s->fc2, h));
}

static void destroy(Model *m) { free(m); }

Model *small_cnn_create(const ModelConfig *cfg) {
    SmallCNN *s = ft_xcalloc(1, sizeof *s);
    Model *m = &s->base;
    int w = cfg->width > 0 ? cfg->width : 16;
    const float mean[] = { 0.2860f }, std[] = { 0.3530f };   /* Fashion-MNIST training set */
    model_setup(m, "small_cnn", 1, 28, 28, mean, std, cfg);
    m->forward = forward;
    m->trunk = trunk;
    m->destroy = destroy;
    for (int i = 0; i < 2; i++) { model_add_rf_layer(m, 3, 1, 1); model_add_rf_layer(m, 2, 2, 0); }
    ParamSet *ps = &m->params;
    s->conv1 = conv2d_make(ps, "conv1", 1, w, 3, 1, 1, false);
    s->bn1 = batchnorm_make(ps, "bn1", w);
    s->conv2 = conv2d_make(ps, "conv2", w, 2 * w, 3, 1, 1, false);
    s->bn2 = batchnorm_make(ps, "bn2", 2 * w);
    Rng rng = rng_new(cfg->seed);
    init_kaiming_normal(s->conv1.weight, true, &rng);
    init_kaiming_normal(s->conv2.weight, true, &rng);
    m->trunk_channels = 2 * w;
    int feat = cfg->feature_dim > 0 ? cfg->feature_dim : 128;
    s->linear_feature = cfg->feature_dim > 0;
    if (!cfg->trunk_only) {
        s->fc1 = linear_make(ps, "fc1", 2 * w * 7 * 7, feat, true);
        s->fc2 = linear_make(ps, "fc2", feat, cfg->num_classes, true);
        init_torch_default(s->fc1.weight, s->fc1.bias, &rng);
        init_torch_default(s->fc2.weight, s->fc2.bias, &rng);
    }
    model_finish(m, cfg);
    return m;
}
