/* Feature-space attacks (attack/feature.c): ODFA against a PyTorch reference
 * (tools/odfa_reference.py) and its own promises. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "attack/feature.h"
#include "core/safetensors.h"
#include "models/model_io.h"

static Tensor *fixture(SafeTensors *st, const char *name, DType dt) {
    const StEntry *e = st_find(st, name);
    if (!e) return NULL;
    Tensor *t = ft_tensor_new(dt, e->shape, FT_CPU);
    if (st_read_into(st, e, t) != 0) { ft_tensor_free(t); return NULL; }
    return t;
}

/* The loss and its input gradient, single- and multi-scale, at a point near the clean images (at
 * them the gradient is zero up to rounding; feature.h) */
TEST(odfa_loss_and_gradient_match_a_pytorch_reference_single_and_multi_scale) {
    SafeTensors st;
    CHECK(st_open("tests/fixtures/odfa.safetensors", &st) == 0, "%s", ft_last_error());
    Model *m = model_load("tests/fixtures/attack_model.safetensors", FT_CPU, NULL);
    CHECK(m, "%s", ft_last_error());
    m->training = false;
    Tensor *x0 = fixture(&st, "x0", FT_F32), *xp = fixture(&st, "xp", FT_F32);
    Tape *tp = ft_tape_new(FT_CPU);
    tp->params_frozen = true;
    const char *names[2][2] = { { "loss_single", "grad_single" }, { "loss_multi", "grad_multi" } };
    for (int ms = 0; ms < 2; ms++) {
        OdfaAttack a = attack_odfa_defaults("pooled", 8.0 / 255, ms);
        CHECK(a.steps == 10 && fabs(a.alpha - 1.0 / 255) < 1e-15, "U-turn's defaults at 8/255: %d steps of %g", a.steps, a.alpha);
        Tensor *target = odfa_target(m, tp, x0, "pooled");
        ft_tape_reset(tp);
        xp->requires_grad = true;
        Tensor *loss = odfa_loss(m, tp, xp, target, &a);
        double l = ft_item(loss);
        ft_backward(tp, loss);
        Tensor *want_loss = fixture(&st, names[ms][0], FT_F64), *want = fixture(&st, names[ms][1], FT_F32);
        CHECK(fabs(l - ft_f64(want_loss)[0]) < 1e-5 * fabs(ft_f64(want_loss)[0]), "%s: %.7f, PyTorch %.7f", names[ms][0], l,
              ft_f64(want_loss)[0]);
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < xp->numel; i++) {
            worst = fmax(worst, fabs(ft_f32(xp->grad)[i] - ft_f32(want)[i]));
            scale = fmax(scale, fabs(ft_f32(want)[i]));
        }
        CHECK(scale > 0 && worst < 1e-3 * scale, "%s: largest difference %g, largest component %g", names[ms][1], worst, scale);
        ft_zero_(xp->grad);
        xp->requires_grad = false;
        ft_tape_reset(tp);
        ft_tensor_free(target);
        ft_tensor_free(want_loss);
        ft_tensor_free(want);
    }
    ft_tensor_free(x0);
    ft_tensor_free(xp);
    ft_tape_free(tp);
    model_free(m);
    st_close(&st);
}

/* On the fixture's trained model at U-turn's largest radius: the loss falls, the features turn
 * away from their clean direction (ReLU features are non-negative, so their cosine cannot go
 * below 0; PyTorch's reference reaches 0.957 at 8/255), the images stay in the eps-ball and in
 * [0, 1]. */
TEST(odfa_turns_the_feature_away_within_the_ball) {
    SafeTensors st;
    CHECK(st_open("tests/fixtures/odfa.safetensors", &st) == 0, "%s", ft_last_error());
    Model *m = model_load("tests/fixtures/attack_model.safetensors", FT_CPU, NULL);
    CHECK(m, "%s", ft_last_error());
    m->training = false;
    Tensor *x = fixture(&st, "x0", FT_F32), *xa = ft_tensor_new(FT_F32, x->shape, FT_CPU);
    st_close(&st);
    Tape *tp = ft_tape_new(FT_CPU);
    OdfaAttack a = attack_odfa_defaults("pooled", 16.0 / 255, false);
    CHECK(a.steps == 20, "U-turn's 20 steps at 16/255, got %d", a.steps);
    double trace[20];
    CHECK(attack_odfa(m, tp, x, &a, xa, trace) == 0, "%s", ft_last_error());
    double worst = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = ft_f32(xa)[i];
        CHECK(v >= 0 && v <= 1, "pixel %g outside [0, 1]", v);
        worst = fmax(worst, fabs(v - ft_f32(x)[i]));
    }
    CHECK(worst <= 16.0 / 255 + 1e-6, "moved %g past eps", worst);
    /* |u + u0|^2 = 2 + 2 u.u0 for unit vectors: the mean cosine to the clean feature after the last step */
    Tensor *target = odfa_target(m, tp, x, "pooled");
    ft_no_grad_begin(tp);
    double last = ft_item(odfa_loss(m, tp, xa, target, &a)), n = x->shape.d[0], cos = last / (2 * n) - 1;
    ft_no_grad_end(tp);
    CHECK(trace[0] > 4 * n - 1e-3 && last < trace[1] && last < 4 * n * 0.95, "the loss went %g, %g, ..., %g", trace[0], trace[1], last);
    CHECK(cos < 0.9, "the features stayed near their clean direction: mean cosine %g", cos);
    OdfaAttack bad = a;
    bad.layer = "layer9";
    CHECK(attack_odfa(m, tp, x, &bad, xa, NULL) == -1 && strstr(ft_last_error(), "no layer 'layer9'"), "%s", ft_last_error());
    ft_tensor_free(target);
    ft_tensor_free(x);
    ft_tensor_free(xa);
    ft_tape_free(tp);
    model_free(m);
}

/* Sabour et al.'s feature adversaries on the fixture's small CNN (28 x 28 grey images, so the
 * box is tight): within the box around each source, the layer's representation comes nearer the
 * guide's than the source's was, much nearer as the box grows; every result stays in its box. */
TEST(feature_adversaries_move_the_representation_to_the_guide_within_the_box) {
    SafeTensors st;
    CHECK(st_open("tests/fixtures/odfa.safetensors", &st) == 0, "%s", ft_last_error());
    Model *m = model_load("tests/fixtures/attack_model.safetensors", FT_CPU, NULL);
    CHECK(m, "%s", ft_last_error());
    m->training = false;
    Tensor *all = fixture(&st, "x0", FT_F32);
    st_close(&st);
    Tensor *src = ft_tensor_new(FT_F32, SHAPE(4, 1, 28, 28), FT_CPU), *guide = ft_tensor_new(FT_F32, src->shape, FT_CPU);
    Tensor *xa = ft_tensor_new(FT_F32, src->shape, FT_CPU);
    memcpy(ft_f32(src), ft_f32(all), (size_t)src->numel * sizeof(float));
    memcpy(ft_f32(guide), ft_f32(all) + src->numel, (size_t)src->numel * sizeof(float));
    Tape *tp = ft_tape_new(FT_CPU);
    const char *layers[2] = { "fc1", "pool2" };
    const double deltas[2] = { 10.0 / 255, 0.25 }, bound[2][2] = { { 0.9, 0.9 }, { 0.35, 0.55 } };   /* [delta][layer] */
    double ratio[2][2][4];
    for (int D = 0; D < 2; D++)
        for (int L = 0; L < 2; L++) {
            FeatureAdvAttack a = attack_feature_adv_defaults(layers[L]);
            a.delta = deltas[D];
            FeatureAdvResult res[4];
            CHECK(attack_feature_adv(m, tp, src, guide, &a, xa, res) == 0, "%s", ft_last_error());
            for (int64_t i = 0; i < src->numel; i++) {
                float v = ft_f32(xa)[i], s = ft_f32(src)[i];
                CHECK(v >= 0 && v <= 1 && fabsf(v - s) <= (float)a.delta + 1e-6f, "pixel %lld: %g from source %g", (long long)i, v, s);
            }
            ft_no_grad_begin(tp);
            Tensor *fs = ft_flatten(tp, model_layer(m, tp, src, layers[L])), *fg = ft_flatten(tp, model_layer(m, tp, guide, layers[L]));
            Tensor *fa = ft_flatten(tp, model_layer(m, tp, xa, layers[L]));
            ft_no_grad_end(tp);
            int d = fs->shape.d[1];
            for (int i = 0; i < 4; i++) {
                double before = 0, after = 0;
                for (int k = 0; k < d; k++) {
                    double g = ft_f32(fg)[i * d + k];
                    before += pow(ft_f32(fs)[i * d + k] - g, 2);
                    after += pow(ft_f32(fa)[i * d + k] - g, 2);
                }
                ratio[D][L][i] = sqrt(after / before);
                CHECK(ratio[D][L][i] < bound[D][L] && res[i].iters >= 1, "%s, delta %.3g, image %d: distance ratio %.3f after %d "
                      "iterations (%s)", layers[L], deltas[D], i, ratio[D][L][i], res[i].iters, res[i].status);
                if (D == 1) CHECK(ratio[1][L][i] < ratio[0][L][i], "%s, image %d: a larger box gave a larger ratio", layers[L], i);
            }
            ft_tape_reset(tp);
        }
    FeatureAdvAttack bad = attack_feature_adv_defaults("layer9");
    CHECK(attack_feature_adv(m, tp, src, guide, &bad, xa, NULL) == -1 && strstr(ft_last_error(), "no layer 'layer9'"), "%s",
          ft_last_error());
    ft_tensor_free(all); ft_tensor_free(src); ft_tensor_free(guide); ft_tensor_free(xa);
    ft_tape_free(tp);
    model_free(m);
}
