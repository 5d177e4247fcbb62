/* Prototype-network layers and losses: finite-difference checks (the same checker as every op),
 * the last layer's init and L1 mask, the attention normalisation on an all-zero map, and a
 * directional-derivative check of the whole training loss of tiny ProtoPNet and Ours-FR models. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "op_cases.h"
#include "train/proto_loss.h"

static const int cls6[6] = { 0, 0, 1, 1, 2, 2 };   /* 3 classes, 2 prototypes each */
static const int32_t labels3[3] = { 2, 0, 1 };

static Conv2d conv1x1(Tensor *w) { return (Conv2d){ w, NULL, 1, 0, 1 }; }

static Tensor *op_distances(Tape *tp, Tensor **x, const Case *c) { (void)c; return proto_distances(tp, x[0], x[1]); }
static Tensor *op_log_similarity(Tape *tp, Tensor **x, const Case *c) { (void)c; return proto_log_similarity(tp, x[0]); }
static Tensor *op_addon(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    AddOn a = { conv1x1(x[1]), conv1x1(x[2]) };
    return addon_forward(tp, &a, x[0]);
}
static Tensor *op_attention_logits(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    Attention a = { conv1x1(x[1]), conv1x1(x[2]), 0.8 };
    return attention_forward(tp, &a, x[0], false, NULL, NULL, NULL);
}
static Tensor *op_attention_spatial(Tape *tp, Tensor **x, const Case *c) { (void)c; return attention_spatial(tp, x[0]); }
static Tensor *op_l1(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    Tensor *off = ft_new(tp, x[0]->dtype, SHAPE(3, 6));
    last_layer_off_class_mask(off, cls6);
    return last_layer_l1(tp, x[0], off);
}
static Tensor *op_min_by_class(Tape *tp, Tensor **x, const Case *c) { return proto_min_by_class(tp, x[0], cls6, labels3, c->iarg[0]); }
static Tensor *op_attention_weighted(Tape *tp, Tensor **x, const Case *c) { (void)c; return proto_attention_weighted(tp, x[0], x[1]); }

const Case layer_cases[] = {
    { "proto_distances", 2, { SHAPE(2, 5, 3, 2), SHAPE(4, 5, 1, 1) }, VALUES_ANY, op_distances, {0}, {0} },
    { "proto_log_similarity", 1, { SHAPE(2, 4, 3, 3) }, VALUES_POSITIVE, op_log_similarity, {0}, {0} },
    { "addon", 3, { SHAPE(2, 3, 2, 3), SHAPE(4, 3, 1, 1), SHAPE(4, 4, 1, 1) }, VALUES_AWAY_FROM_ZERO, op_addon, {0}, {0} },
    { "attention_logits", 3, { SHAPE(2, 4, 3, 3), SHAPE(1, 4, 1, 1), SHAPE(3, 4, 1, 1) }, VALUES_ANY, op_attention_logits, {0}, {0} },
    { "attention_spatial", 1, { SHAPE(2, 3, 3, 2) }, VALUES_DISTINCT, op_attention_spatial, {0}, {0} },
    { "last_layer_l1", 1, { SHAPE(3, 6) }, VALUES_AWAY_FROM_ZERO, op_l1, {0}, {0} },
    { "min_own_class", 1, { SHAPE(3, 6, 2, 2) }, VALUES_DISTINCT, op_min_by_class, { 1 }, {0} },
    { "min_other_class", 1, { SHAPE(3, 6) }, VALUES_DISTINCT, op_min_by_class, { 0 }, {0} },
    { "attention_weighted", 2, { SHAPE(3, 1, 2, 2), SHAPE(3, 2, 2) }, VALUES_ANY, op_attention_weighted, {0}, {0} },
};
const int n_layer_cases = (int)(sizeof layer_cases / sizeof layer_cases[0]);

TEST(gradcheck_prototype_layers_and_losses) {
    int bad = 0;
    printf("\n    %-26s %12s %12s\n", "layer", "grad err", "f32 err");
    for (int i = 0; i < n_layer_cases; i++) {
        double f32 = 0, e = gradcheck_case(&layer_cases[i], &f32);
        bool ok = e <= 1e-6 && f32 <= 2e-4;
        printf("    %-26s %12.2e %12.2e%s\n", layer_cases[i].name, e, f32, ok ? "" : "   <-- FAIL");
        bad += !ok;
    }
    CHECK(bad == 0, "%d of %d prototype layers failed the gradient check", bad, n_layer_cases);
}

static Model *tiny(const char *arch, DType dt) {
    ModelConfig mc = { .num_classes = 3, .width = 2, .prototypes_per_class = 2, .proto_depth = 4, .seed = 5, .dtype = dt };
    Model *m = model_create(arch, &mc);
    if (m) m->dropout_off = true;
    return m;
}

TEST(proto_last_layer_init_and_l1_mask) {
    Model *m = tiny("protopnet-small_cnn", FT_F32);
    CHECK(m, "%s", ft_last_error());
    ProtoNet *p = protonet_of(m);
    CHECK(p && p->n_protos == 6, "6 prototypes expected");
    const Tensor *w = p->last.weight;
    CHECK(w->shape.d[0] == 3 && w->shape.d[1] == 6, "last layer %s", FT_SHAPE_STR(w->shape));
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 6; j++) {
            bool own = j / 2 == k;
            CHECK(ft_get(w, k * 6 + j) == (own ? 1.0 : -0.5), "W[%d][%d] = %g", k, j, ft_get(w, k * 6 + j));
            CHECK(ft_get(p->off_class, k * 6 + j) == (own ? 0.0 : 1.0), "off mask [%d][%d]", k, j);
        }
    Tape *tp = ft_tape_new(FT_CPU);
    params_zero_grad(&m->params);
    Tensor *l1 = last_layer_l1(tp, p->last.weight, p->off_class);
    CHECK_NEAR(ft_item(l1), 0.5 * 12, 1e-6);   /* 12 off-class weights of -0.5 */
    ft_backward(tp, l1);
    for (int i = 0; i < 18; i++) {
        bool own = i % 6 / 2 == i / 6;
        CHECK(ft_get(w->grad, i) == (own ? 0.0 : -1.0), "dL1/dW[%d] = %g (own-class weights are not penalised)", i, ft_get(w->grad, i));
    }
    ft_tape_free(tp);
    model_free(m);
}

TEST(attention_normalisation_of_an_all_zero_map) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *A = ft_tensor_new(FT_F32, SHAPE(2, 3, 2, 2), FT_CPU);
    for (int i = 12; i < 24; i++) ft_set(A, i, -1.0 - i);   /* image 1: every class negative -> relu 0 */
    A->requires_grad = true;
    Tensor *a = attention_spatial(tp, A);
    for (int i = 0; i < 8; i++) CHECK(ft_get(a, i) == 0, "a[%d] = %g for an all-zero map (expected 0, not NaN)", i, ft_get(a, i));
    ft_backward(tp, ft_sum(tp, a, FT_ALL_DIMS, false));
    for (int i = 0; i < 24; i++) CHECK(isfinite(ft_get(A->grad, i)), "gradient %d is %g", i, ft_get(A->grad, i));
    ft_tape_reset(tp);
    ft_set(A, 5, 2.0);    /* image 0, class 1, location 1 */
    ft_set(A, 10, 0.5);   /* image 0, class 2, location 2 */
    a = attention_spatial(tp, A);
    CHECK(ft_get(a, 1) == 1 && ft_get(a, 2) == 0.25 && ft_get(a, 0) == 0 && ft_get(a, 3) == 0,
          "a = [%g %g %g %g], expected [0 1 0.25 0]", ft_get(a, 0), ft_get(a, 1), ft_get(a, 2), ft_get(a, 3));
    ft_tensor_free(A);
    ft_tape_free(tp);
}

/* L(theta + h v) - L(theta - h v) / 2h against grad . v, for a random direction v over every
 * parameter (float64, batch norm in training mode, dropout off). */
static double directional_error(const char *arch) {
    Model *m = tiny(arch, FT_F64);
    ProtoNet *p = protonet_of(m);
    m->training = true;
    Rng rng = rng_new(9);
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(3, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(3), FT_CPU);
    rng_uniform_(&rng, x, 0, 1);
    for (int i = 0; i < 3; i++) ft_i32(y)[i] = labels3[i];
    ProtoCoefs c = proto_coefs_default(p->kind);
    Tape *tp = ft_tape_new(FT_CPU);
    params_zero_grad(&m->params);
    ft_backward(tp, proto_loss(p, tp, x, y, labels3, &c, NULL, NULL));
    ft_tape_reset(tp);
    Tensor *theta = m->params.flat, *v = ft_tensor_new(FT_F64, theta->shape, FT_CPU);
    rng_uniform_(&rng, v, -1, 1);
    double analytic = 0, h = 1e-6, L[2];
    for (int64_t i = 0; i < v->numel; i++) analytic += ft_f64(m->params.flat_grad)[i] * ft_f64(v)[i];
    ft_no_grad_begin(tp);
    for (int s = 0; s < 2; s++) {
        for (int64_t i = 0; i < v->numel; i++) ft_f64(theta)[i] += (s ? -2 : 1) * h * ft_f64(v)[i];
        L[s] = ft_item(proto_loss(p, tp, x, y, labels3, &c, NULL, NULL));
        ft_tape_reset(tp);
    }
    ft_no_grad_end(tp);
    double numeric = (L[0] - L[1]) / (2 * h);
    printf("    %-22s grad.v %.9g, finite difference %.9g\n", arch, analytic, numeric);
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(v);
    ft_tape_free(tp);
    model_free(m);
    return fabs(analytic - numeric) / fmax(1, fabs(numeric));
}

TEST(proto_training_losses_match_finite_differences) {
    printf("\n");
    const char *archs[] = { "protopnet-small_cnn", "ap-small_cnn", "ours-fr-small_cnn" };
    for (int i = 0; i < 3; i++) {
        double e = directional_error(archs[i]);
        CHECK(e < 1e-6, "%s: directional derivative off by %.3g (relative)", archs[i], e);
    }
}

TEST(proto_models_build_on_every_trunk_kind) {
    const char *archs[] = { "protopnet-small_cnn", "ap-small_cnn", "ours-fr-small_cnn", "protopnet-resnet18", "ours-fr-vgg11",
                            "ap-densenet121", "protopnet-conv_stack" };   /* conv_stack: 64 input channels (fuzz_model found
                                                                           * the wrapper reading 64 means from an array of 3) */
    for (int i = 0; i < 7; i++) {
        ModelConfig mc = { .num_classes = 3, .width = 4, .prototypes_per_class = 2, .proto_depth = 8, .seed = 1 };
        if (strstr(archs[i], "densenet")) { mc.blocks[0] = mc.blocks[1] = mc.blocks[2] = mc.blocks[3] = 1; }
        if (strstr(archs[i], "resnet")) { mc.blocks[0] = mc.blocks[1] = mc.blocks[2] = mc.blocks[3] = 1; }
        Model *m = model_create(archs[i], &mc);
        CHECK(m, "%s: %s", archs[i], ft_last_error());
        int size = m->height ? m->height : 64;
        Tensor *x = ft_tensor_new(FT_F32, SHAPE(2, m->in_channels, size, size), FT_CPU);
        ft_fill_(x, 0.5);
        Tape *tp = ft_tape_new(FT_CPU);
        ProtoOut o;
        Tensor *logits = protonet_forward(protonet_of(m), tp, x, &o);
        CHECK(logits->shape.ndim == 2 && logits->shape.d[0] == 2 && logits->shape.d[1] == 3, "%s: logits %s", archs[i],
              FT_SHAPE_STR(logits->shape));
        bool protos = !strstr(archs[i], "ap-"), att = !strstr(archs[i], "protopnet-");
        CHECK(protos == (o.dist != NULL) && att == (o.att_logits != NULL), "%s: heads present", archs[i]);
        CHECK(!protos || o.dist->shape.d[1] == 6, "%s: distances %s", archs[i], FT_SHAPE_STR(o.dist->shape));
        CHECK(params_find(&m->params, "features.conv1.weight") || params_find(&m->params, "features.features.0.weight") ||
              params_find(&m->params, "features.features.conv0.weight") || params_find(&m->params, "features.blocks.0.conv.weight"),
              "%s: trunk parameters under features.", archs[i]);
        CHECK(m->mean->numel == m->in_channels && m->std->numel == m->in_channels, "%s: mean / std per input channel", archs[i]);
        ft_tape_free(tp);
        ft_tensor_free(x);
        model_free(m);
    }
    CHECK(!model_create("protopnet-ap-small_cnn", &(ModelConfig){ .num_classes = 3 }), "a prototype trunk was accepted");
    CHECK(!model_create("ours-fr-nonet", &(ModelConfig){ .num_classes = 3 }), "an unknown trunk was accepted");
}
