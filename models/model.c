#include <stdlib.h>
#include <string.h>
#include "model.h"

Model *small_cnn_create(const ModelConfig *cfg);
Model *conv_stack_create(const ModelConfig *cfg);

static const struct { const char *name; Model *(*create)(const ModelConfig *); } registry[] = {
    { "small_cnn", small_cnn_create },
    { "conv_stack", conv_stack_create },
};

const char *model_arch_list(void) { return "small_cnn, conv_stack"; }

Model *model_create(const char *arch, const ModelConfig *cfg) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(arch, registry[i].name) == 0) return registry[i].create(cfg);
    ft_error("unknown model '%s' (available: %s)", arch, model_arch_list());
    return NULL;
}

void model_free(Model *m) {
    if (!m) return;
    params_free(&m->params);
    ft_tensor_free(m->mean);
    ft_tensor_free(m->std);
    m->destroy(m);
}

void model_setup(Model *m, const char *arch, int channels, int height, int width, int num_classes,
                 const float *mean, const float *std, Device dev, uint64_t seed) {
    m->arch = arch;
    m->in_channels = channels;
    m->height = height;
    m->width = width;
    m->num_classes = num_classes;
    m->rng = rng_new(seed ^ 0x5eedd509u);
    params_init(&m->params, dev);
    m->mean = ft_tensor_new(FT_F32, SHAPE(1, channels, 1, 1), dev);
    m->std = ft_tensor_new(FT_F32, SHAPE(1, channels, 1, 1), dev);
    ft_from_floats(m->mean, mean, channels);
    ft_from_floats(m->std, std, channels);
}

Tensor *model_normalize(Model *m, Tape *tp, Tensor *x) {
    FT_CHECK(x->shape.ndim == 4 && x->shape.d[1] == m->in_channels && x->shape.d[2] == m->height &&
             x->shape.d[3] == m->width, "%s expects input [N, %d, %d, %d], got %s", m->arch,
             m->in_channels, m->height, m->width, FT_SHAPE_STR(x->shape));
    return ft_div(tp, ft_sub(tp, x, m->mean), m->std);
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
