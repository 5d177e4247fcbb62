/* Optimizers, schedules, initialisers, and training end to end. */
#include <string.h>
#include "test.h"
#include "train/trainer.h"
#include "data/synthetic.h"

/* One parameter vector w = [1, -2], gradient set by hand each step. */
static void setup(ParamSet *ps, Tensor **w) {
    params_init(ps, FT_CPU, FT_F32);
    *w = params_add(ps, "", "w", SHAPE(2));
    ft_f32(*w)[0] = 1; ft_f32(*w)[1] = -2;
    params_finalize(ps);
}

TEST(sgd_momentum_nesterov_weight_decay_match_torch_formulas) {
    ParamSet ps;
    Tensor *w;
    setup(&ps, &w);
    Optimizer *o = optim_new(OPT_SGD, &ps, 0.1, 0.01);
    o->momentum = 0.9;
    o->nesterov = true;
    double ref[2] = { 1, -2 }, buf[2] = { 0, 0 };
    const double grads[3][2] = { { 0.5, -1 }, { 0.25, 2 }, { -1, 0 } };
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 2; i++) {
            ft_f32(w->grad)[i] = (float)grads[s][i];
            double g = grads[s][i] + 0.01 * ref[i];            /* L2 weight decay */
            buf[i] = s == 0 ? g : 0.9 * buf[i] + g;             /* momentum buffer */
            ref[i] -= 0.1 * (g + 0.9 * buf[i]);                 /* Nesterov */
        }
        optim_step(o);
        for (int i = 0; i < 2; i++) CHECK_NEAR(ft_f32(w)[i], ref[i], 1e-6);
    }
    optim_free(o);
    params_free(&ps);
}

TEST(adam_and_adamw_match_torch_formulas) {
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        ParamSet ps;
        Tensor *w;
        setup(&ps, &w);
        Optimizer *o = optim_new(decoupled ? OPT_ADAMW : OPT_ADAM, &ps, 0.01, 0.1);
        double ref[2] = { 1, -2 }, m[2] = { 0 }, v[2] = { 0 };
        const double grads[3][2] = { { 0.5, -1 }, { 0.25, 2 }, { -1, 0.125 } };
        for (int s = 1; s <= 3; s++) {
            for (int i = 0; i < 2; i++) {
                ft_f32(w->grad)[i] = (float)grads[s - 1][i];
                double g = grads[s - 1][i];
                if (decoupled) ref[i] -= 0.01 * 0.1 * ref[i];
                else g += 0.1 * ref[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                double mh = m[i] / (1 - pow(0.9, s)), vh = v[i] / (1 - pow(0.999, s));
                ref[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
            }
            optim_step(o);
            for (int i = 0; i < 2; i++) CHECK_NEAR(ft_f32(w)[i], ref[i], 1e-6);
        }
        optim_free(o);
        params_free(&ps);
    }
}

TEST(parameter_groups_and_frozen_parameters) {
    ParamSet ps;
    params_init(&ps, FT_CPU, FT_F32);
    Tensor *a = params_add(&ps, "head", "weight", SHAPE(1)), *b = params_add(&ps, "trunk", "weight", SHAPE(1));
    Tensor *c = params_add(&ps, "frozen", "weight", SHAPE(1));
    params_finalize(&ps);
    Optimizer *o = optim_new(OPT_SGD, &ps, 0.1, 0);
    o->momentum = 0;
    params_set_group(&ps, "trunk", optim_add_group(o, 0.01, 0));
    params_set_requires_grad(&ps, "frozen", false);
    ft_fill_(ps.flat_grad, 1);
    optim_step(o);
    CHECK_NEAR(ft_f32(a)[0], -0.1, 1e-7);
    CHECK_NEAR(ft_f32(b)[0], -0.01, 1e-7);
    CHECK(ft_f32(c)[0] == 0, "a frozen parameter moved to %g", ft_f32(c)[0]);
    optim_free(o);
    params_free(&ps);
}

TEST(schedules) {
    Schedule cos = { .kind = SCHED_COSINE, .total = 10, .min_factor = 0.1 }, step = { .kind = SCHED_STEP, .step_size = 3, .gamma = 0.5 };
    /* ProtoPNet's joint stage after 5 warm-up epochs: the k-th joint epoch runs at gamma^((k + 1) / 5) */
    Schedule joint = { .kind = SCHED_STEP, .step_size = 5, .gamma = 0.1, .offset = 1 - 5 };
    CHECK_NEAR(schedule_factor(&joint, 5), 1.0, 1e-12);
    CHECK_NEAR(schedule_factor(&joint, 8), 1.0, 1e-12);
    CHECK_NEAR(schedule_factor(&joint, 9), 0.1, 1e-12);
    CHECK_NEAR(schedule_factor(&joint, 14), 0.01, 1e-12);
    CHECK_NEAR(schedule_factor(&cos, 0), 1.0, 1e-12);
    CHECK_NEAR(schedule_factor(&cos, 5), 0.55, 1e-12);
    CHECK_NEAR(schedule_factor(&cos, 10), 0.1, 1e-12);
    CHECK_NEAR(schedule_factor(&step, 2), 1.0, 1e-12);
    CHECK_NEAR(schedule_factor(&step, 3), 0.5, 1e-12);
    CHECK_NEAR(schedule_factor(&step, 7), 0.25, 1e-12);
}

TEST(initialisers_have_the_documented_spread) {
    Rng r = rng_new(3);
    Tensor *w = ft_tensor_new(FT_F32, SHAPE(64, 32, 3, 3), FT_CPU);
    init_kaiming_normal(w, true, &r);   /* std sqrt(2 / (64 * 9)) */
    double ss = 0;
    for (int i = 0; i < w->numel; i++) ss += ft_f32(w)[i] * ft_f32(w)[i];
    CHECK_NEAR(sqrt(ss / w->numel), sqrt(2.0 / 576), 0.002);
    init_torch_default(w, NULL, &r);    /* uniform on +-1/sqrt(32 * 9) */
    float mx = 0;
    for (int i = 0; i < w->numel; i++) mx = fmaxf(mx, fabsf(ft_f32(w)[i]));
    CHECK(mx <= 1 / sqrt(288.0) && mx > 0.95 / sqrt(288.0), "max |w| %g for bound %g", mx, 1 / sqrt(288.0));
    init_kaiming_uniform(w, false, &r);   /* bound sqrt(6 / (32 * 9)) */
    mx = 0;
    for (int i = 0; i < w->numel; i++) mx = fmaxf(mx, fabsf(ft_f32(w)[i]));
    CHECK(mx <= sqrt(6.0 / 288) && mx > 0.95 * sqrt(6.0 / 288), "kaiming uniform: max |w| %g for bound %g", mx, sqrt(6.0 / 288));
    init_uniform(w, 0, 1, &r);            /* ProtoPNet's prototypes: uniform on [0, 1) */
    double sum = 0;
    float mn = 1;
    for (int i = 0; i < w->numel; i++) { sum += ft_f32(w)[i]; mn = fminf(mn, ft_f32(w)[i]); }
    CHECK(mn >= 0 && fabs(sum / w->numel - 0.5) < 0.01, "uniform [0, 1): min %g, mean %g", mn, sum / w->numel);
    ft_tensor_free(w);
}

static void train_steps(float *losses, int steps) {
    Dataset ds;
    synthetic_quadrants(&ds, 64 * steps, 5, 60, 40, 90);
    ModelConfig mc = { .num_classes = 4, .width = 4, .seed = 11, .device = FT_CPU };
    Model *m = model_create("small_cnn", &mc);
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 1e-3, 0);
    TrainOpts t = { .epochs = 1, .batch = 64, .seed = 9, .quiet = true, .adv = ADV_FGSM_RS,
                    .attack = attack_fgsm_rs(0.05, 0.0625) };
    Loader *L = train_loader_new(&ds, &t, FT_CPU);
    train_epoch(m, o, L, &t, 0, NULL, losses);
    loader_free(L);
    optim_free(o);
    model_free(m);
    dataset_free(&ds);
}

TEST(training_is_bit_reproducible_on_the_cpu) {
    float a[12], b[12];
    train_steps(a, 12);
    train_steps(b, 12);
    CHECK(memcmp(a, b, sizeof a) == 0, "two runs from the same seed differ (first losses %.9g vs %.9g)", a[0], b[0]);
    CHECK(a[11] < a[0], "adversarial training on the synthetic task did not lower the loss (%g -> %g)", a[0], a[11]);
}

TEST(small_cnn_learns_fashion_mnist_subset) {
    Dataset train, test;
    if (fashion_mnist_load(FASHION_MNIST_DIR, true, &train) != 0)
        SKIP("Fashion-MNIST not installed (%s); make test installs dataset-fashion-mnist", ft_last_error());
    if (fashion_mnist_load(FASHION_MNIST_DIR, false, &test) != 0) { dataset_free(&train); SKIP("%s", ft_last_error()); }
    ModelConfig mc = { .num_classes = 10, .width = 8, .seed = 1, .device = FT_CPU };
    Model *m = model_create("small_cnn", &mc);
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 2e-3, 0);
    TrainOpts t = { .epochs = 1, .batch = 64, .seed = 1, .quiet = true, .limit = 6400 };
    Loader *L = train_loader_new(&train, &t, FT_CPU);
    EpochStats e = train_epoch(m, o, L, &t, 0, NULL, NULL);
    loader_free(L);
    Accuracy r = clean_accuracy(m, &test, 2000, 500, true);
    double acc = (double)r.correct / r.total;
    CHECK(acc > 0.72, "after 100 steps test accuracy is %.3f (train loss %.3f), expected > 0.72", acc, e.loss);
    optim_free(o);
    model_free(m);
    dataset_free(&train);
    dataset_free(&test);
}
