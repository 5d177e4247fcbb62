/* C&W-L2, EAD, target modes and the distortion metrics: properties that hold for any model
 * (on the small CNN of test_attack.c). The comparisons with PyTorch references are in
 * test_attack_ref.c. */
#include <math.h>
#include <string.h>
#include "test.h"
#include "attack/attack.h"

Model *test_attack_model(Dataset *ds);

#define N 24

typedef struct {
    Model *m;
    Dataset ds;
    Tape *tp;
    Tensor *x, *xa;
    int32_t labels[N];
} Bench;

static void bench_init(Bench *b) {
    b->m = test_attack_model(&b->ds);
    b->tp = ft_tape_new(FT_CPU);
    b->x = ft_tensor_new(FT_F32, SHAPE(N, 1, 28, 28), FT_CPU);
    b->xa = ft_tensor_new(FT_F32, b->x->shape, FT_CPU);
    Tensor *y = ft_tensor_new(FT_I32, SHAPE(N), FT_CPU);
    int32_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    dataset_batch(&b->ds, idx, N, b->x, y);
    memcpy(b->labels, ft_i32(y), sizeof b->labels);
    ft_tensor_free(y);
}

static void bench_free(Bench *b) {
    ft_tensor_free(b->x);
    ft_tensor_free(b->xa);
    ft_tape_free(b->tp);
    model_free(b->m);
    dataset_free(&b->ds);
}

/* Head-0 logits of x into z [N, k]. */
static void logits_of(Bench *b, Tensor *x, float *z) {
    ft_no_grad_begin(b->tp);
    Tensor *l = b->m->forward(b->m, b->tp, x);
    ft_to_floats(l, z, l->numel);
    ft_no_grad_end(b->tp);
    ft_tape_reset(b->tp);
}

/* What every optimisation attack must give: success flags that the model confirms (with the
 * margin kappa), unsuccessful examples returned unchanged, every pixel in [0, 1]. Returns the
 * number of failures found (and prints the first). */
static int check_returned(Bench *b, const Goal *g, const bool *ok, double kappa, const char *what) {
    float z[N * 4];
    logits_of(b, b->xa, z);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const float *x0 = ft_f32(b->x) + i * 784, *xa = ft_f32(b->xa) + i * 784;
        bool in_box = true, same = true;
        for (int j = 0; j < 784; j++) { in_box &= xa[j] >= 0 && xa[j] <= 1; same &= xa[j] == x0[j]; }
        /* the margin, recomputed from the returned image's logits (float rounding: 1e-4) */
        int c = g->targets ? g->targets[i] : g->labels[i];
        float other = -INFINITY;
        for (int k = 0; k < 4; k++) if (k != c) other = fmaxf(other, z[i * 4 + k]);
        double margin = g->targets ? z[i * 4 + c] - other : other - z[i * 4 + c];
        bool good = in_box && (ok[i] ? margin >= kappa - 1e-4 : same);
        if (!good && bad++ == 0)
            printf("\n    %s: example %d: success %d, margin %.5f (kappa %g), in [0, 1] %d, unchanged %d\n", what, i, ok[i],
                   margin, kappa, in_box, same);
    }
    return bad;
}

static double l2_of(const Bench *b, int i) {
    Distortion d = attack_distortion(ft_f32(b->x) + i * 784, ft_f32(b->xa) + i * 784, 784);
    return d.l2;
}

TEST(cw_returns_only_successful_examples_and_gets_closer_with_more_search_steps) {
    Bench b;
    bench_init(&b);
    Goal g;
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_UNTARGETED, -1 }, NULL);
    OptAttack a = attack_cw_defaults();
    a.steps = 40;
    a.lr = 5e-2;
    a.c0 = 0.1;   /* the default 1e-3 needs several search steps before anything succeeds */
    bool ok[N];
    double l2[3][N];
    int found[3], searches[3] = { 1, 2, 4 };
    for (int r = 0; r < 3; r++) {
        a.search_steps = searches[r];
        found[r] = attack_cw(b.m, b.tp, b.x, &g, &a, b.xa, ok);
        CHECK(check_returned(&b, &g, ok, 0, "C&W") == 0, "C&W with %d search steps returned a bad example", searches[r]);
        for (int i = 0; i < N; i++) l2[r][i] = ok[i] ? l2_of(&b, i) : INFINITY;
    }
    /* the first runs of a longer search are the shorter search's (same c sequence), and each example
     * keeps the smallest successful distance over all runs: never larger with more search steps */
    int worse = 0;
    for (int r = 1; r < 3; r++)
        for (int i = 0; i < N; i++) worse += l2[r][i] > l2[r - 1][i] * (1 + 1e-6);
    double mean[3];
    for (int r = 0; r < 3; r++) {
        mean[r] = 0;
        for (int i = 0; i < N; i++) mean[r] += isfinite(l2[r][i]) ? l2[r][i] : 0;
        mean[r] /= found[r] > 0 ? found[r] : 1;
    }
    printf("\n    C&W on %d examples: search steps 1/2/4 succeed on %d/%d/%d, mean L2 %.4f/%.4f/%.4f\n", N, found[0],
           found[1], found[2], mean[0], mean[1], mean[2]);
    CHECK(worse == 0, "%d examples got a larger L2 with more search steps", worse);
    CHECK(found[2] >= found[1] && found[1] >= found[0], "more search steps found fewer examples");
    CHECK(found[2] >= N * 3 / 4, "C&W with 4 search steps succeeded on only %d of %d", found[2], N);
    bool smaller = false;
    for (int i = 0; i < N; i++) smaller |= l2[2][i] < l2[0][i] * 0.99;
    CHECK(smaller, "4 search steps improved no example's L2 over 1 (the search does nothing)");

    /* a margin: every returned example meets the goal by kappa */
    a.search_steps = 2;
    a.kappa = 2;
    int k = attack_cw(b.m, b.tp, b.x, &g, &a, b.xa, ok);
    CHECK(check_returned(&b, &g, ok, 2, "C&W, kappa 2") == 0, "C&W with kappa 2 returned a bad example");
    CHECK(k > 0, "C&W with kappa 2 succeeded nowhere");
    goal_free(&g);

    /* targeted at the least likely class */
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_LEAST_LIKELY, -1 }, NULL);
    a.kappa = 0;
    k = attack_cw(b.m, b.tp, b.x, &g, &a, b.xa, ok);
    CHECK(check_returned(&b, &g, ok, 0, "C&W, least likely") == 0, "targeted C&W returned a bad example");
    CHECK(k >= N / 2, "targeted C&W reached the least likely class on only %d of %d", k, N);
    goal_free(&g);
    bench_free(&b);
}

TEST(ead_rules_keep_the_smallest_distance_of_the_same_iterates) {
    Bench b;
    bench_init(&b);
    Goal g;
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_UNTARGETED, -1 }, NULL);
    OptAttack a = attack_ead_defaults();
    a.steps = 40;
    a.search_steps = 3;
    a.beta = 1e-2;
    a.c0 = 0.1;
    bool ok_en[N], ok_l1[N];
    Tensor *x_en = ft_tensor_new(FT_F32, b.x->shape, FT_CPU);
    int k_en = attack_ead(b.m, b.tp, b.x, &g, &a, b.xa, ok_en);
    CHECK(check_returned(&b, &g, ok_en, 0, "EAD-EN") == 0, "EAD (EN) returned a bad example");
    ft_copy_(x_en, b.xa);
    a.rule = EAD_RULE_L1;
    int k_l1 = attack_ead(b.m, b.tp, b.x, &g, &a, b.xa, ok_l1);
    CHECK(check_returned(&b, &g, ok_l1, 0, "EAD-L1") == 0, "EAD (L1) returned a bad example");
    /* the rule only chooses among the same iterates (the search over c does not depend on it) */
    CHECK(k_en == k_l1, "EN found %d, L1 %d: the rules changed the iterates", k_en, k_l1);
    int bad = 0;
    double l1_en = 0, l1_l1 = 0, en_en = 0, en_l1 = 0;
    for (int i = 0; i < N; i++) {
        if (!ok_en[i]) continue;
        Distortion de = attack_distortion(ft_f32(b.x) + i * 784, ft_f32(x_en) + i * 784, 784);
        Distortion dl = attack_distortion(ft_f32(b.x) + i * 784, ft_f32(b.xa) + i * 784, 784);
        double ee = de.l2 * de.l2 + a.beta * de.l1, el = dl.l2 * dl.l2 + a.beta * dl.l1;
        bad += dl.l1 > de.l1 * (1 + 1e-5) || ee > el * (1 + 1e-5);
        l1_en += de.l1; l1_l1 += dl.l1; en_en += ee; en_l1 += el;
    }
    printf("\n    EAD on %d examples (beta %g): %d succeed; mean L1 %.3f (EN rule) / %.3f (L1 rule), "
           "elastic-net %.4f / %.4f\n", N, a.beta, k_en, l1_en / k_en, l1_l1 / k_en, en_en / k_en, en_l1 / k_en);
    CHECK(bad == 0, "%d examples: the L1 rule kept a larger L1, or the EN rule a larger elastic-net distance", bad);
    CHECK(k_en >= N * 3 / 4, "EAD succeeded on only %d of %d", k_en, N);
    ft_tensor_free(x_en);
    goal_free(&g);
    bench_free(&b);
}

TEST(target_modes_pick_the_classes_they_name) {
    Bench b;
    bench_init(&b);
    Goal g;
    Rng r = rng_new(5);
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_RANDOM, -1 }, &r);
    int seen[4] = { 0 };
    for (int i = 0; i < N; i++) {
        CHECK(g.targets[i] != b.labels[i] && g.targets[i] >= 0 && g.targets[i] < 4, "random target %d for label %d",
              g.targets[i], b.labels[i]);
        seen[g.targets[i]]++;
    }
    int classes = 0;
    for (int k = 0; k < 4; k++) classes += seen[k] > 0;
    CHECK(classes >= 3, "random targets used only %d classes", classes);
    goal_free(&g);
    float z[N * 4];
    logits_of(&b, b.x, z);
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_LEAST_LIKELY, -1 }, NULL);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 4; k++)
            CHECK(z[i * 4 + k] >= z[i * 4 + g.targets[i]], "example %d: class %d is less likely than target %d", i, k,
                  g.targets[i]);
    goal_free(&g);
    /* a targeted step attack reaches the class it is given, and stays in the eps-ball */
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_CLASS, 2 }, NULL);
    StepAttack pgd = attack_pgd(0.3, 0.02, 40);
    int k = attack_steps_goal(b.m, b.tp, b.x, &g, &pgd, &r, b.xa, true);
    int32_t pred[N];
    ft_no_grad_begin(b.tp);
    model_predict(b.m->forward(b.m, b.tp, b.xa), pred);
    ft_no_grad_end(b.tp);
    ft_tape_reset(b.tp);
    int hit = 0;
    for (int i = 0; i < N; i++) hit += pred[i] == 2;
    CHECK(hit == k && k >= N * 3 / 4, "targeted PGD reports %d, the model predicts class 2 for %d of %d", k, hit, N);
    goal_free(&g);
    bench_free(&b);
}

TEST(l2_pgd_stays_in_its_ball_and_distortion_metrics_count_right) {
    Bench b;
    bench_init(&b);
    Goal g;
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_UNTARGETED, -1 }, NULL);
    Rng r = rng_new(3);
    double worst = 0;
    int k[2];
    double eps[2] = { 0.5, 3.0 };
    for (int e = 0; e < 2; e++) {
        StepAttack a = attack_pgd_l2(eps[e], eps[e] / 5, 20);
        k[e] = attack_steps_goal(b.m, b.tp, b.x, &g, &a, &r, b.xa, true);
        for (int i = 0; i < N; i++) {
            worst = fmax(worst, l2_of(&b, i) / eps[e]);
            for (int j = 0; j < 784; j++) CHECK(ft_f32(b.xa)[i * 784 + j] >= 0 && ft_f32(b.xa)[i * 784 + j] <= 1, "pixel outside [0, 1]");
        }
    }
    CHECK(worst <= 1 + 1e-5, "an L2 PGD example is %g eps away", worst);
    CHECK(k[1] > k[0], "L2 PGD at eps 3 fooled %d, at 0.5 %d", k[1], k[0]);
    goal_free(&g);
    bench_free(&b);
    /* the metrics on a hand-made pair: changes of 0.001 (under half a grey level), 0.5 and -0.25 */
    float x[4] = { 0.2f, 0.2f, 0.5f, 0.9f }, xa[4] = { 0.201f, 0.7f, 0.25f, 0.9f };
    Distortion d = attack_distortion(x, xa, 4);
    CHECK(d.l0 == 2, "L0 %g, expected 2", d.l0);
    CHECK_NEAR(d.l1, 0.751, 1e-6);
    CHECK_NEAR(d.l2, sqrt(0.001 * 0.001 + 0.25 + 0.0625), 1e-6);
    CHECK_NEAR(d.linf, 0.5, 1e-6);
}

/* Each self-check fires on the symptom it names and stays quiet on a sound evaluation. */
TEST(suite_self_checks_name_each_symptom) {
    char w[16][256];
    /* strong: APGD-CE, APGD-T, Square, FGSM, BIM-10, PGD-10, MIM-10 (of 1000 images) */
    SuiteRow sound[2] = { { .eps = 0.05, .n_attacks = 7, .total = 1000, .clean = 900, .robust = { 300, 280, 400, 600, 350, 340, 360 }, .worst = 270 },
                          { .eps = 0.1, .n_attacks = 7, .total = 1000, .clean = 900, .robust = { 50, 40, 100, 300, 60, 55, 70 }, .worst = 35 } };
    CHECK(suite_checks("strong", sound, 2, w, 16) == 0, "a sound evaluation drew a warning: %s", w[0]);
    struct { const char *what, *needle; int row, attack, value, worst; double eps; } cases[] = {
        { "BIM-10 weaker than FGSM", "weaker than one step", 0, 4, 650, -1, 0 },
        { "APGD-CE weaker than PGD-10", "more steps did worse", 0, 0, 345, -1, 0 },
        { "Square beats the gradients", "gradient masking", 1, 2, 20, 20, 0 },
        { "robust accuracy rises with eps", "rises with eps", 1, -1, 0, 280, 0 },
        { "FGSM leaves more at the larger eps", "does worse with more room", 1, 3, 650, -1, 0 },
        { "survivors at eps 1", "whole pixel box", 1, -1, 0, -1, 1.0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        SuiteRow rows[2] = { sound[0], sound[1] };
        if (cases[c].attack >= 0) rows[cases[c].row].robust[cases[c].attack] = cases[c].value;
        if (cases[c].worst >= 0) rows[cases[c].row].worst = cases[c].worst;
        if (cases[c].eps > 0) rows[cases[c].row].eps = cases[c].eps;
        int n = suite_checks("strong", rows, 2, w, 16);
        bool found = false;
        for (int i = 0; i < n && i < 16; i++) found |= strstr(w[i], cases[c].needle) != NULL;
        CHECK(found, "%s: no warning containing '%s' (%d warnings%s%s)", cases[c].what, cases[c].needle, n, n ? ": " : "", n ? w[0] : "");
    }
    /* one example in a thousand is sampling noise, not a finding */
    SuiteRow noisy = sound[0];
    noisy.robust[4] = 601;
    CHECK(suite_checks("strong", &noisy, 1, w, 16) == 0, "a difference of one example in 1000 drew: %s", w[0]);
}

/* A model that always says class 0 (its logits are the small CNN's times 0, plus 1 on class 0),
 * counting the rows it is asked to forward. */
static Tensor *(*real_forward)(Model *, Tape *, Tensor *);
static int64_t rows_forwarded;

static Tensor *says_class_0(Model *m, Tape *tp, Tensor *x) {
    rows_forwarded += x->shape.d[0];
    Tensor *z = ft_affine(tp, real_forward(m, tp, x), 0, 0);
    Tensor *bias = ft_new(tp, FT_F32, SHAPE(1, 4));
    ft_zero_(bias);
    ft_set(bias, 0, 1.0);
    return ft_add(tp, z, bias);
}

/* The examples labelled 0 are never fooled and the rest are fooled from the start, so the queries
 * after the start must forward only the former: the start's N rows, then one row each a query. */
TEST(square_forwards_only_the_examples_it_has_not_fooled) {
    Bench b;
    bench_init(&b);
    real_forward = b.m->forward;
    b.m->forward = says_class_0;
    int zeros = 0;
    for (int i = 0; i < N; i++) zeros += b.labels[i] == 0;
    CHECK(zeros > 0 && zeros < N, "the batch needs examples of class 0 and of others (%d of %d)", zeros, N);
    Goal g;
    goal_make(&g, b.m, b.tp, b.x, b.labels, &(Target){ TARGET_UNTARGETED, -1 }, NULL);
    Rng r = rng_new(3);
    const int queries = 40;
    rows_forwarded = 0;
    int met = attack_square(b.m, b.tp, b.x, &g, &(SquareAttack){ 0.1, queries, 0.8 }, &r, b.xa);
    CHECK(met == N - zeros, "Square reports %d fooled, expected %d", met, N - zeros);
    CHECK(rows_forwarded == N + (int64_t)queries * zeros, "Square forwarded %lld rows, expected %d + %d x %d",
          (long long)rows_forwarded, N, queries, zeros);
    for (int i = 0; i < N; i++) {   /* every point in the ball and the box */
        const float *x0 = ft_f32(b.x) + i * 784, *xa = ft_f32(b.xa) + i * 784;
        double worst = 0;
        for (int j = 0; j < 784; j++) {
            CHECK(xa[j] >= 0 && xa[j] <= 1, "example %d left [0, 1]", i);
            worst = fmax(worst, fabs(xa[j] - x0[j]));
        }
        CHECK(worst <= 0.1 + 1e-6, "example %d is %g from its image, beyond eps 0.1", i, worst);
    }
    b.m->forward = real_forward;
    goal_free(&g);
    bench_free(&b);
}
