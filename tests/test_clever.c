/* CLEVER: the Kolmogorov-Smirnov distribution and statistic against closed forms and SciPy, the
 * samplers against the distributions they claim, the reverse Weibull fit against clever.py's,
 * and the whole estimate against a function whose largest gradient norm is known. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "attack/clever.h"
#include "models/model_io.h"

TEST(ks_pvalue_matches_closed_forms_and_scipy) {
    /* n = 1: P(D < d) = 2d - 1 on [1/2, 1]; 1/(2n) <= d <= 1/n: P(D < d) = n! (2d - 1/n)^n */
    for (double d = 0.55; d < 1; d += 0.1) CHECK(fabs(clever_ks_pvalue(1, d) - (2 - 2 * d)) < 1e-12, "n 1, d %g", d);
    CHECK(fabs(clever_ks_pvalue(5, 0.15) - (1 - 120 * pow(0.1, 5))) < 1e-12, "n 5, d 0.15: %.15g", clever_ks_pvalue(5, 0.15));
    CHECK(clever_ks_pvalue(10, 0.04) == 1 && clever_ks_pvalue(10, 1.0) == 0, "the ends of the range");
    /* scipy.stats.kstwo.sf(d, n), SciPy 1.17.1, which past n 140 uses Simard and L'Ecuyer's
     * approximations (good to about 1e-7 here); this is the exact distribution */
    const struct { int n; double d, sf; } ref[] = {
        { 20, 0.25, 0.13762569836717486 }, { 100, 0.1, 0.2526927570063874 }, { 500, 0.05, 0.15866260223815387 },
        { 500, 0.08, 0.0031305058199356268 }, { 500, 0.03, 0.7473166700457021 }, { 1000, 0.02, 0.8108971656895577 },
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        double p = clever_ks_pvalue(ref[i].n, ref[i].d);
        CHECK(fabs(p - ref[i].sf) < (ref[i].n <= 140 ? 1e-12 : 1e-6 * ref[i].sf), "n %d, d %g: %.15g, SciPy %.15g", ref[i].n, ref[i].d, p, ref[i].sf);
    }
}

/* Weibull quantiles: the sample at the midpoints of n equal slices of the CDF has D = 1/(2n). */
TEST(ks_statistic_of_exact_quantiles_is_half_a_step) {
    enum { N = 200 };
    double y[N], c = 2.5, loc = -1, scale = 0.3;
    for (int i = 0; i < N; i++) y[i] = loc + scale * pow(-log1p(-(i + 0.5) / N), 1 / c);
    double d = clever_ks_statistic(y, N, c, loc, scale);
    CHECK(fabs(d - 0.5 / N) < 1e-12, "D %.15g, expected %.15g", d, 0.5 / N);
    CHECK(clever_ks_statistic(y, N, c, loc + 0.2, scale) > 0.2, "a shifted distribution is far");
}

/* Maxima L - W with W Weibull (c 3, scale 0.4) at its quantiles. clever.py's fit (SciPy's
 * weibull_min.fit with fmin and its regulariser, 7 starting shapes; tools/clever_reference.py)
 * stops at location 2.496227577471672 (fmin's tolerances of 1e-4); the same objective minimised by
 * SciPy to 1e-10 has its optimum at 2.49623035925 (shape 2.970013107, scale 0.3959399515), where
 * finch's fit, run to a simplex of 1e-8, lands. */
TEST(weibull_fit_matches_the_reference_implementation) {
    enum { N = 500 };
    double m[N];
    for (int i = 0; i < N; i++) m[i] = 2.5 - 0.4 * pow(-log1p(-(i + 0.5) / N), 1 / 3.0);
    WeibullFit f = clever_fit(m, N);
    CHECK(!f.fallback && fabs(f.lipschitz - 2.49623035925) < 1e-6 && fabs(f.shape - 2.970013107) < 1e-4 &&
          fabs(f.scale - 0.3959399515) < 1e-5 && f.p_value > 0.99 && fabs(f.lipschitz - 2.496227577471672) < 1e-5,
          "L %.10g shape %.8g scale %.8g ks %.4g p %.4g (fallback %d)", f.lipschitz, f.shape, f.scale, f.ks, f.p_value, f.fallback);
    double same[4] = { 1.5, 1.5, 1.5, 1.5 };
    f = clever_fit(same, 4);
    CHECK(f.fallback && f.lipschitz == 1.5, "equal maxima: the largest sample (%g)", f.lipschitz);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Radii and directions of the samplers, by KS tests (fixed seed) against their exact laws, in 3
 * dimensions (no clipping: x0 0.5, R 0.4). */
TEST(clever_samplers_draw_the_distributions_they_claim) {
    enum { N = 4000, D = 3 };
    float x0[D] = { 0.5f, 0.5f, 0.5f }, *s = malloc(sizeof(float) * N * D);
    double *r = malloc(sizeof(double) * N), *u = malloc(sizeof(double) * N), R = 0.4;
    const struct { Norm p; CleverSampling how; const char *what; } cases[] = {
        { NORM_L2, CLEVER_SAMPLE_REFERENCE, "L2, the reference" }, { NORM_L2, CLEVER_SAMPLE_BALL, "L2, uniform in the ball" },
        { NORM_L1, CLEVER_SAMPLE_REFERENCE, "L1, the reference" }, { NORM_L1, CLEVER_SAMPLE_BALL, "L1, uniform in the ball" },
        { NORM_INF, CLEVER_SAMPLE_REFERENCE, "L-inf" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        CleverConfig cfg = clever_defaults(cases[c].p);
        cfg.radius = R;
        cfg.sampling = cases[c].how;
        Rng rng = rng_new(7 + c);
        clever_sample(&cfg, x0, D, N, &rng, s);
        /* a: the radius over R, whose CDF F is known; the first coordinate's share, likewise */
        for (int i = 0; i < N; i++) {
            double d[D], n1 = 0, n2 = 0, ni = 0;
            for (int k = 0; k < D; k++) { d[k] = s[i * D + k] - 0.5; n1 += fabs(d[k]); n2 += d[k] * d[k]; ni = fmax(ni, fabs(d[k])); }
            n2 = sqrt(n2);
            r[i] = (cases[c].p == NORM_L2 ? n2 : cases[c].p == NORM_L1 ? n1 : ni) / R;
            u[i] = cases[c].p == NORM_L2 ? d[0] / n2 : cases[c].p == NORM_L1 ? fabs(d[0]) / n1 : d[0] / R;
        }
        double dr = 0, du = 0;
        qsort(r, N, sizeof *r, cmp_double);
        qsort(u, N, sizeof *u, cmp_double);
        for (int i = 0; i < N; i++) {
            double a = r[i], b = u[i], Fr, Fu;
            if (cases[c].p == NORM_INF) Fr = pow(a, D);   /* the largest of 3 uniform |coordinates| */
            else if (cases[c].how == CLEVER_SAMPLE_BALL) Fr = pow(a, D);
            else if (cases[c].p == NORM_L1) Fr = a;       /* on the unit L1 sphere times U[0, R] */
            else Fr = 1.5 * a - 0.5 * a * a * a;          /* uniform in the unit ball (radius t: t^3) times U[0, 1] */
            if (cases[c].p == NORM_L2) Fu = (b + 1) / 2;  /* on the 2-sphere a coordinate is uniform (Archimedes) */
            else if (cases[c].p == NORM_L1) Fu = 1 - pow(1 - b, D - 1);   /* a share of a Dirichlet(1, 1, 1): Beta(1, 2) */
            else Fu = (b + 1) / 2;                        /* uniform in [-R, R] */
            dr = fmax(dr, fmax((i + 1.0) / N - Fr, Fr - (double)i / N));
            du = fmax(du, fmax((i + 1.0) / N - Fu, Fu - (double)i / N));
        }
        CHECK(clever_ks_pvalue(N, dr) > 0.001 && clever_ks_pvalue(N, du) > 0.001,
              "%s: KS p-value %.3g for the radius (D %.4f), %.3g for the first coordinate (D %.4f)", cases[c].what,
              clever_ks_pvalue(N, dr), dr, clever_ks_pvalue(N, du), du);
    }
    /* samples are clipped to the pixel box */
    float corner[D] = { 0, 1, 0 };
    CleverConfig cfg = clever_defaults(NORM_L2);
    Rng rng = rng_new(3);
    clever_sample(&cfg, corner, D, N, &rng, s);
    bool inside = true;
    for (int i = 0; i < N * D; i++) inside &= s[i] >= 0 && s[i] <= 1;
    CHECK(inside, "a sample left [0, 1]");
    free(s); free(r); free(u);
}

/* g(x) = w.x + (a/2)|x - x0|^2 as a two-class "model" (logits g and 0), on 1 x 1 x 2 images. */
typedef struct { Model base; Tensor *w, *x0; double a; } Quadratic;

static Tensor *quadratic_forward(Model *m, Tape *tp, Tensor *x) {
    Quadratic *q = (Quadratic *)m;
    Tensor *f = ft_flatten(tp, x), *d = ft_sub(tp, f, q->x0);
    Tensor *g = ft_add(tp, ft_sum(tp, ft_mul(tp, f, q->w), FT_DIM(1), true),
                       ft_affine(tp, ft_sum(tp, ft_mul(tp, d, d), FT_DIM(1), true), q->a / 2, 0));
    Tensor *parts[2] = { g, ft_affine(tp, g, 0, 0) };
    return ft_concat(tp, parts, 2, 1);
}

static void quadratic_free(Model *m) {
    Quadratic *q = (Quadratic *)m;
    ft_tensor_free(q->w);
    ft_tensor_free(q->x0);
    free(q);
}

static Model *quadratic(const float w[2], double a) {
    Quadratic *q = ft_xcalloc(1, sizeof *q);
    ModelConfig mc = { .num_classes = 2 };
    model_setup(&q->base, "quadratic", 1, 1, 2, NULL, NULL, &mc);
    params_finalize(&q->base.params);
    q->base.forward = quadratic_forward;
    q->base.destroy = quadratic_free;
    q->w = ft_tensor_new(FT_F32, SHAPE(1, 2), FT_CPU);
    q->x0 = ft_tensor_new(FT_F32, SHAPE(1, 2), FT_CPU);
    ft_from_floats(q->w, w, 2);
    ft_fill_(q->x0, 0.5);
    q->a = a;
    return &q->base;
}

/* grad g = w + a (x - x0): on the L2 ball of radius R its largest norm is |w| + a R, on the L-inf
 * ball its largest L1 norm |w|_1 + 2 a R. The batch maxima equal the norms computed here from the
 * same samples (a last chunk shorter than the others included), and the fitted L is within 5%. */
TEST(clever_estimates_a_known_lipschitz_constant) {
    const float w[2] = { 0.6f, -0.8f };
    double a = 2, R = 0.4;
    Model *m = quadratic(w, a);
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x0 = ft_tensor_new(FT_F32, SHAPE(1, 1, 1, 2), FT_CPU);
    ft_fill_(x0, 0.5);
    const Norm norms[] = { NORM_L2, NORM_INF };
    for (int k = 0; k < 2; k++) {
        CleverConfig cfg = clever_defaults(norms[k]);
        cfg.radius = R;
        cfg.batches = 100;
        cfg.samples = 100;
        cfg.chunk = 32;   /* 32, 32, 32, 4 */
        Rng rng = rng_new(11), again = rng_new(11);
        double maxima[100], g0;
        clever_gradient_maxima(m, tp, x0, 0, 1, &cfg, &rng, maxima, &g0, NULL, NULL);
        CHECK(fabs(g0 - (0.6 * 0.5 - 0.8 * 0.5)) < 1e-6, "g(x0) %g", g0);
        float s[32 * 2], x0h[2] = { 0.5f, 0.5f };
        int off = 0;
        for (int b = 0; b < 100; b++) {
            double best = 0;
            for (int done = 0; done < 100; done += 32) {
                int n = 100 - done < 32 ? 100 - done : 32;
                clever_sample(&cfg, x0h, 2, n, &again, s);
                for (int i = 0; i < n; i++) {
                    float gr[2] = { (float)(w[0] + a * (s[2 * i] - 0.5)), (float)(w[1] + a * (s[2 * i + 1] - 0.5)) };
                    best = fmax(best, clever_dual_norm(norms[k], gr, 2));
                }
            }
            off += fabs(maxima[b] - best) > 1e-5 * best;
        }
        CHECK(off == 0, "%s: %d of 100 batch maxima differ from the norms of the same samples' gradients", k ? "L-inf" : "L2", off);
        double truth = k == 0 ? 1 + a * R : 1.4 + 2 * a * R;
        WeibullFit f = clever_fit(maxima, 100);
        CHECK(fabs(f.lipschitz - truth) < 0.05 * truth, "%s: L %.4f (shape %.3g, p %.3g, fallback %d), truth %.4f",
              k ? "L-inf" : "L2", f.lipschitz, f.shape, f.p_value, f.fallback, truth);
    }
    ft_tensor_free(x0);
    ft_tape_free(tp);
    model_free(m);
}

/* The gradient norms and batch maxima of PyTorch (tools/clever_reference.py) at the same 16
 * samples per norm (2 batches of 8), for the attack fixture's small CNN. */
TEST(clever_gradient_norms_match_pytorch) {
    SafeTensors st;
    CHECK(st_open("tests/fixtures/clever.safetensors", &st) == 0, "%s", ft_last_error());
    Model *m = model_load("tests/fixtures/attack_model.safetensors", FT_CPU, NULL);
    CHECK(m != NULL, "%s", ft_last_error());
    m->training = false;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *cls = test_fixture_tensor(&st, "classes"), *x0 = test_fixture_tensor(&st, "x0"), *g0 = test_fixture_tensor(&st, "g0");
    int c = ft_i32(cls)[0], j = ft_i32(cls)[1];
    float *z = attack_clean_logits(m, tp, x0);
    CHECK(fabs((z[c] - z[j]) - ft_f32(g0)[0]) < 1e-5, "g(x0) %.7g, PyTorch %.7g", z[c] - z[j], ft_f32(g0)[0]);
    free(z);
    const struct { const char *name; Norm p; } norms[] = { { "2", NORM_L2 }, { "inf", NORM_INF }, { "1", NORM_L1 } };
    for (int k = 0; k < 3; k++) {
        char a[32], b[32], mx[32];
        snprintf(a, sizeof a, "samples_%s", norms[k].name);
        snprintf(b, sizeof b, "norms_%s", norms[k].name);
        snprintf(mx, sizeof mx, "maxima_%s", norms[k].name);
        Tensor *x = test_fixture_tensor(&st, a), *want = test_fixture_tensor(&st, b), *wmax = test_fixture_tensor(&st, mx);
        double got[16], worst = 0;
        clever_gradient_norms(m, tp, x, c, j, norms[k].p, got);
        for (int i = 0; i < 16; i++) worst = fmax(worst, fabs(got[i] - ft_f32(want)[i]) / ft_f32(want)[i]);
        CHECK(worst < 1e-4, "L%s samples: gradient norms differ from PyTorch's by up to %.2g (relative)", norms[k].name, worst);
        for (int bt = 0; bt < 2; bt++) {
            double mm = 0;
            for (int i = 0; i < 8; i++) mm = fmax(mm, got[bt * 8 + i]);
            CHECK(fabs(mm - ft_f32(wmax)[bt]) < 1e-4 * ft_f32(wmax)[bt], "L%s batch %d: maximum %.7g, PyTorch %.7g", norms[k].name, bt,
                  mm, ft_f32(wmax)[bt]);
        }
        ft_tensor_free(x); ft_tensor_free(want); ft_tensor_free(wmax);
    }
    ft_tensor_free(cls); ft_tensor_free(x0); ft_tensor_free(g0);
    ft_tape_free(tp);
    model_free(m);
    st_close(&st);
}
