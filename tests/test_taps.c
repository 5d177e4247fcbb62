/* Layer taps (models/model.h): every model lists its layers, each one can be asked for by name,
 * the tapped tensors are the ones the forward computes, and their gradient reaches the input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "models/protonet.h"

typedef struct { const char *arch; ModelConfig mc; int size; const char *expect[4]; } TapCase;

/* reduced versions of every family; expect: layers that must be among the listed ones */
static const TapCase cases[] = {
    { "small_cnn", { .num_classes = 5, .width = 4 }, 28, { "conv1", "pool2", "fc1", "pooled" } },
    { "vgg11_bn", { .num_classes = 5, .vgg_cfg = { 8, 0, 8 }, .n_vgg_cfg = 3, .width = 4 }, 28,
      { "features.0", "features.3", "features.6", "classifier.6" } },
    { "resnet18", { .num_classes = 5, .width = 4, .blocks = { 1, 1, 1, 1 } }, 32, { "maxpool", "layer3", "layer4.0", "pooled" } },
    { "densenet121", { .num_classes = 5, .width = 4, .blocks = { 1, 1, 1, 1 } }, 32,
      { "features.denseblock3", "features.transition1", "features.norm5", "classifier" } },
    { "conv_stack", { .num_classes = 5 }, 56, { "blocks.0", "blocks.3", "pooled", "fc" } },
    { "protopnet-small_cnn", { .num_classes = 3, .width = 4, .prototypes_per_class = 2, .proto_depth = 8 }, 28,
      { "features.conv2", "add_on_layers", "prototype_distances", "prototype_similarities" } },
    { "ours-fr-vgg11_bn", { .num_classes = 3, .vgg_cfg = { 8, 0, 8 }, .n_vgg_cfg = 3, .width = 4, .prototypes_per_class = 2,
      .proto_depth = 8 }, 28, { "features.features.4", "attention", "attention_map", "last_layer" } },
    { "ap-resnet18", { .num_classes = 3, .width = 4, .blocks = { 1, 1, 1, 1 } }, 32, { "features.layer2", "features", "attention" } },
};

static Model *make(const TapCase *c, DType dt) {
    ModelConfig mc = c->mc;
    mc.seed = 3;
    mc.device = FT_CPU;
    mc.dtype = dt;
    Model *m = model_create(c->arch, &mc);
    if (m) m->training = false;
    return m;
}

static Tensor *input(const Model *m, int size, DType dt, uint64_t seed) {
    Tensor *x = ft_tensor_new(dt, SHAPE(1, m->in_channels, size, size), FT_CPU);
    Rng r = rng_new(seed);
    rng_uniform_(&r, x, 0.1, 0.9);
    return x;
}

TEST(every_model_lists_its_layers_and_each_can_be_tapped_by_name) {
    Tape *tp = ft_tape_new(FT_CPU);
    ModelTaps *t = ft_xcalloc(1, sizeof *t);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const TapCase *c = &cases[i];
        Model *m = make(c, FT_F32);
        CHECK(m, "%s: %s", c->arch, ft_last_error());
        Tensor *x = input(m, c->size, FT_F32, 1);
        model_list_layers(m, tp, x, t);
        CHECK(t->n >= 4 && m->taps == NULL, "%s: %d layers listed", c->arch, t->n);
        for (int k = 0; k < 4 && c->expect[k]; k++) {
            bool found = false;
            for (int j = 0; j < t->n; j++) found |= strcmp(t->names[j], c->expect[k]) == 0;
            CHECK(found, "%s: no layer '%s' listed", c->arch, c->expect[k]);
        }
        for (int j = 0; j < t->n; j++) {
            for (int k = 0; k < j; k++) CHECK(strcmp(t->names[j], t->names[k]) != 0, "%s: '%s' listed twice", c->arch, t->names[j]);
            Tensor *y = model_layer(m, tp, x, t->names[j]);
            CHECK(y && ft_shape_eq(y->shape, t->shapes[j]), "%s: layer '%s' %s, listed as %s", c->arch, t->names[j],
                  y ? FT_SHAPE_STR(y->shape) : "missing", FT_SHAPE_STR(t->shapes[j]));
        }
        /* the classifier's output is the tapped last layer */
        Tensor *logits = m->forward(m, tp, x), *last = model_layer(m, tp, x, t->names[t->n - 1]);
        CHECK(ft_shape_eq(logits->shape, last->shape), "%s: the last layer listed is not the logits", c->arch);
        for (int64_t k = 0; k < logits->numel; k++)
            CHECK(ft_f32(logits)[k] == ft_f32(last)[k], "%s: logit %lld %g, tapped %g", c->arch, (long long)k, ft_f32(logits)[k],
                  ft_f32(last)[k]);
        CHECK(!model_layer(m, tp, x, "layer9") && strstr(ft_last_error(), "has no layer 'layer9'") &&
              strstr(ft_last_error(), t->names[0]), "%s: an unknown layer: %s", c->arch, ft_last_error());
        ft_tensor_free(x);
        ft_tape_reset(tp);
        model_free(m);
    }
    free(t);
    ft_tape_free(tp);
}

/* The taps are the tensors the model's own pieces compute: the trunk's output, the pooled feature
 * before the classifier (ResNet: the average of the trunk's map), a prototype network's outputs. */
TEST(tapped_layers_are_the_tensors_the_forward_computes) {
    Tape *tp = ft_tape_new(FT_CPU);
    const TapCase *res = &cases[2], *pp = &cases[5];
    Model *m = make(res, FT_F32);
    Tensor *x = input(m, res->size, FT_F32, 2);
    Tensor *trunk = m->trunk(m, tp, x), *l4 = model_layer(m, tp, x, "layer4"), *pooled = model_layer(m, tp, x, "pooled");
    int64_t C = trunk->shape.d[1], HW = trunk->shape.d[2] * trunk->shape.d[3];
    for (int64_t c = 0; c < C; c++) {
        double mean = 0;
        for (int64_t k = 0; k < HW; k++) {
            CHECK(ft_f32(trunk)[c * HW + k] == ft_f32(l4)[c * HW + k], "layer4 differs from the trunk's output");
            mean += ft_f32(trunk)[c * HW + k] / HW;
        }
        CHECK(fabs(mean - ft_f32(pooled)[c]) < 1e-5, "pooled channel %lld: %g, the trunk's mean %g", (long long)c, ft_f32(pooled)[c], mean);
    }
    model_free(m);
    ft_tensor_free(x);
    ft_tape_reset(tp);
    m = make(pp, FT_F32);
    x = input(m, pp->size, FT_F32, 2);
    ProtoOut o;
    protonet_forward(protonet_of(m), tp, x, &o);
    const char *names[] = { "add_on_layers", "prototype_distances", "prototype_similarities", "last_layer" };
    Tensor *want[] = { o.latent, o.dist, o.pooled, o.logits };
    for (int i = 0; i < 4; i++) {
        Tensor *y = model_layer(m, tp, x, names[i]);
        CHECK(y && ft_shape_eq(y->shape, want[i]->shape), "%s: shape", names[i]);
        for (int64_t k = 0; k < y->numel; k++)
            CHECK(ft_f32(y)[k] == ft_f32(want[i])[k], "%s[%lld]: %g, the forward's %g", names[i], (long long)k, ft_f32(y)[k],
                  ft_f32(want[i])[k]);
    }
    model_free(m);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

/* d/dx of sum(r * layer(x)) by the backward against central differences, in float64, for a
 * mid-network layer of each family. */
TEST(tapped_layers_pass_gradients_to_the_input_as_finite_differences_say) {
    struct { int c; const char *layer; } picks[] = { { 0, "pool1" }, { 1, "features.5" }, { 2, "layer2" },
                                                      { 3, "features.transition1" }, { 5, "add_on_layers" },
                                                      { 5, "prototype_similarities" }, { 6, "attention_map" } };
    Tape *tp = ft_tape_new(FT_CPU);
    tp->params_frozen = true;
    for (size_t p = 0; p < sizeof picks / sizeof picks[0]; p++) {
        const TapCase *c = &cases[picks[p].c];
        Model *m = make(c, FT_F64);
        Tensor *x = input(m, c->size, FT_F64, 5);
        x->requires_grad = true;
        Tensor *y = model_layer(m, tp, x, picks[p].layer);
        CHECK(y, "%s: %s", c->arch, ft_last_error());
        Tensor *r = ft_tensor_new(FT_F64, y->shape, FT_CPU);
        Rng rng = rng_new(9);
        rng_uniform_(&rng, r, -1, 1);
        ft_backward(tp, ft_sum(tp, ft_mul(tp, y, r), FT_ALL_DIMS, false));
        double *g = ft_f64(x->grad), worst = 0, scale = 0;
        int64_t n = x->numel;
        int64_t top = 0;   /* the input with the largest gradient, and 7 spread over the image */
        for (int64_t i = 1; i < n; i++) if (fabs(g[i]) > fabs(g[top])) top = i;
        for (int k = 0; k < 8; k++) {
            int64_t i = k ? (int64_t)(k * 2654435761u % (uint64_t)n) : top;
            double saved = ft_f64(x)[i], f[2], h = 1e-6;
            for (int s = 0; s < 2; s++) {
                ft_f64(x)[i] = saved + (s ? -h : h);
                Tape *t2 = ft_tape_new(FT_CPU);
                ft_no_grad_begin(t2);
                Tensor *y2 = model_layer(m, t2, x, picks[p].layer);
                f[s] = 0;
                for (int64_t j = 0; j < y2->numel; j++) f[s] += ft_f64(y2)[j] * ft_f64(r)[j];
                ft_tape_free(t2);
            }
            ft_f64(x)[i] = saved;
            double fd = (f[0] - f[1]) / (2 * h);
            worst = fmax(worst, fabs(fd - g[i]));
            scale = fmax(scale, fabs(fd));
        }
        CHECK(scale > 0 && worst <= 1e-6 * fmax(1, scale), "%s %s: gradient error %g (largest derivative %g)", c->arch,
              picks[p].layer, worst, scale);
        ft_tensor_free(r);
        ft_tensor_free(x);
        ft_tape_reset(tp);
        model_free(m);
    }
    ft_tape_free(tp);
}
