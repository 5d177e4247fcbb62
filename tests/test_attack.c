/* Attacks: the sanity checks careful evaluators ask for (Carlini et al.), on a small CNN trained
 * for a few steps on a synthetic task (no files needed). */
#include <string.h>
#include "test.h"
#include "train/trainer.h"
#include "data/synthetic.h"

/* A small CNN trained for two epochs on the synthetic quadrants task (shared with test_attack_opt.c). */
Model *test_attack_model(Dataset *ds) {
    synthetic_quadrants(ds, 1024, 21, 70, 60, 50);
    ModelConfig mc = { .num_classes = 4, .width = 4, .seed = 3, .device = FT_CPU };
    Model *m = model_create("small_cnn", &mc);
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 3e-3, 0);
    TrainOpts t = { .epochs = 2, .batch = 32, .seed = 1, .quiet = true };
    Loader *L = train_loader_new(ds, &t, FT_CPU);
    for (int e = 0; e < 2; e++) train_epoch(m, o, L, &t, e, NULL, NULL);
    loader_free(L);
    optim_free(o);
    m->training = false;
    return m;
}

static int fooled(Model *m, const Dataset *ds, int n, const StepAttack *a, uint64_t seed, double *max_dist) {
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(n, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    Tensor *xa = ft_tensor_new(FT_F32, x->shape, FT_CPU);
    int32_t idx[256];
    for (int i = 0; i < n; i++) idx[i] = i;
    dataset_batch(ds, idx, n, x, y);
    Tape *tp = ft_tape_new(FT_CPU);
    Rng r = rng_new(seed);
    int k = attack_steps(m, tp, x, y, a, &r, xa, true);
    *max_dist = 0;
    for (int i = 0; i < x->numel; i++) {
        float v = ft_f32(xa)[i];
        *max_dist = fmax(*max_dist, fabs(v - ft_f32(x)[i]));
        if (v < 0 || v > 1) { *max_dist = 1e9; break; }
    }
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    ft_tape_free(tp);
    return k;
}

TEST(attacks_pass_the_sanity_checks) {
    Dataset ds;
    Model *m = test_attack_model(&ds);
    int n = 128;
    Accuracy clean = clean_accuracy(m, &ds, n, 64, true);
    CHECK(clean.correct > 0.8 * n, "the test model only reaches %d/%d", clean.correct, n);
    double d;
    StepAttack zero = attack_pgd(0, 0.01, 5);
    int k0 = fooled(m, &ds, n, &zero, 1, &d);
    CHECK(k0 == n - clean.correct, "eps 0 fooled %d, but %d are misclassified clean", k0, n - clean.correct);

    int prev = -1;
    double eps_list[] = { 0.02, 0.05, 0.06, 0.07, 0.08, 0.3 };
    for (int i = 0; i < 6; i++) {   /* success rises with eps, every iterate stays in the ball and in [0, 1] */
        StepAttack a = attack_pgd(eps_list[i], eps_list[i] / 4, 10);
        int k = fooled(m, &ds, n, &a, 1, &d);
        CHECK(d <= eps_list[i] + 1e-6, "eps %g: an adversarial pixel is %g away (or outside [0, 1])", eps_list[i], d);
        CHECK(k >= prev, "eps %g fooled %d, fewer than %d at a smaller eps", eps_list[i], k, prev);
        printf("%s eps %g: %d", i ? "," : "\n    PGD-10 fooled of 128 at", eps_list[i], k);
        prev = k;
    }
    StepAttack unbounded = attack_pgd(1.0, 0.1, 30);
    CHECK(fooled(m, &ds, n, &unbounded, 1, &d) == n, "an unbounded attack did not fool every example");

    /* without a random start, the first k iterates of a 2k-step attack are the k-step attack's */
    /* at an eps where the model is partly fooled, so that the comparisons can fail */
    StepAttack bim5 = attack_bim(0.065, 5), bim10 = attack_bim(0.065, 10);
    bim5.alpha = bim10.alpha = 0.0065;
    int k5 = fooled(m, &ds, n, &bim5, 1, &d), k10 = fooled(m, &ds, n, &bim10, 1, &d);
    CHECK(k10 >= k5, "10 iterations fooled %d, 5 fooled %d", k10, k5);
    StepAttack fgsm = attack_fgsm(0.065), pgd = attack_pgd(0.065, 0.0065, 20);
    int kf = fooled(m, &ds, n, &fgsm, 1, &d), kp = fooled(m, &ds, n, &pgd, 1, &d);
    CHECK(kp >= kf, "PGD-20 fooled %d, FGSM %d: the iterative attack should be at least as strong", kp, kf);
    printf("\n    fooled of %d at eps 0.065: clean errors %d, FGSM %d, BIM-5 %d, BIM-10 %d, PGD-20 %d\n",
           n, k0, kf, k5, k10, kp);
    CHECK(kp > 0 && kf < n, "eps 0.065 does not sit between clean and fully fooled (FGSM %d, PGD %d)", kf, kp);
    model_free(m);
    dataset_free(&ds);
}

TEST(attack_leaves_weights_and_their_gradients_alone) {
    Dataset ds;
    Model *m = test_attack_model(&ds);
    Tensor *before = ft_tensor_new(FT_F32, m->params.flat->shape, FT_CPU);
    ft_copy_(before, m->params.flat);
    params_zero_grad(&m->params);
    double d;
    StepAttack a = attack_pgd(0.05, 0.01, 3);
    fooled(m, &ds, 32, &a, 2, &d);
    float gmax = 0;
    for (int i = 0; i < m->params.flat_grad->numel; i++) gmax = fmaxf(gmax, fabsf(ft_f32(m->params.flat_grad)[i]));
    CHECK(gmax == 0, "the attack left weight gradients of up to %g", gmax);
    CHECK(memcmp(ft_ptr(before), ft_ptr(m->params.flat), (size_t)before->numel * 4) == 0, "the attack changed the weights");
    ft_tensor_free(before);
    model_free(m);
    dataset_free(&ds);
}

TEST(fgsm_step_matches_the_sign_of_the_input_gradient) {
    Dataset ds;
    Model *m = test_attack_model(&ds);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(4, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(4), FT_CPU);
    Tensor *xa = ft_tensor_new(FT_F32, x->shape, FT_CPU);
    dataset_batch(&ds, (int32_t[]){ 0, 1, 2, 3 }, 4, x, y);
    Tape *tp = ft_tape_new(FT_CPU);
    x->requires_grad = true;
    ft_backward(tp, ft_cross_entropy(tp, m->forward(m, tp, x), y));
    ft_tape_reset(tp);
    Rng r = rng_new(0);
    StepAttack a = attack_fgsm(0.03);
    attack_steps(m, tp, x, y, &a, &r, xa, false);
    int bad = 0;
    for (int i = 0; i < x->numel; i++) {
        float g = ft_f32(x->grad)[i], x0 = ft_f32(x)[i];
        float want = fminf(1, fmaxf(0, x0 + 0.03f * (float)((g > 0) - (g < 0))));
        bad += fabsf(ft_f32(xa)[i] - want) > 1e-6f;
    }
    CHECK(bad == 0, "%d pixels differ from clip(x + eps * sign(dL/dx))", bad);
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    ft_tape_free(tp);
    model_free(m);
    dataset_free(&ds);
}

TEST(bim_mim_and_the_paper_suite) {
    Dataset ds;
    Model *m = test_attack_model(&ds);
    int n = 64;
    double d;
    /* MIM's first step is BIM's: g = grad / |grad|_1 has the gradient's sign */
    StepAttack bim1 = attack_bim(0.06, 10), mim1 = attack_mim(0.06, 10, 1.0);
    bim1.steps = mim1.steps = 1;
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(n, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    Tensor *xb = ft_tensor_new(FT_F32, x->shape, FT_CPU), *xm = ft_tensor_new(FT_F32, x->shape, FT_CPU);
    int32_t idx[64];
    for (int i = 0; i < n; i++) idx[i] = i;
    dataset_batch(&ds, idx, n, x, y);
    Tape *tp = ft_tape_new(FT_CPU);
    Rng r = rng_new(1);
    attack_steps(m, tp, x, y, &bim1, &r, xb, false);
    attack_steps(m, tp, x, y, &mim1, &r, xm, false);
    CHECK(memcmp(ft_f32(xb), ft_f32(xm), (size_t)x->numel * sizeof(float)) == 0, "MIM's first step differs from BIM's");
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xb); ft_tensor_free(xm);
    ft_tape_free(tp);
    StepAttack mim = attack_mim(0.06, 10, 1.0), bim = attack_bim(0.06, 10);
    int km = fooled(m, &ds, n, &mim, 1, &d);
    CHECK(d <= 0.06 + 1e-6, "MIM left the eps-ball or [0, 1] (%g)", d);
    int kb = fooled(m, &ds, n, &bim, 1, &d);
    CHECK(d <= 0.06 + 1e-6, "BIM left the eps-ball or [0, 1] (%g)", d);
    printf("\n    fooled of %d at eps 0.06: BIM-10 %d, MIM-10 %d\n", n, kb, km);
    SuiteRow s = robust_suite(m, &ds, n, 32, "paper", 0.06, 1, true);
    int lowest = s.clean;
    for (int k = 0; k < s.n_attacks; k++) lowest = s.robust[k] < lowest ? s.robust[k] : lowest;
    CHECK(s.total == n && s.worst <= lowest, "worst case %d above the weakest result %d", s.worst, lowest);
    CHECK(s.worst < s.clean, "the suite at eps 0.06 fooled nothing (clean %d, worst %d)", s.clean, s.worst);
    model_free(m);
    dataset_free(&ds);
}
