/* The CPU's broadcasting elementwise kernels, reductions and transcendental loops against direct
 * loops written here: the fast paths (merged dimensions, row loops, reductions over one run of
 * dimensions, glibc's vector logf and expf) must give what the element-by-element definition
 * gives, bit for bit where the arithmetic is the same, within glibc's bounds where it is not. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "core/rng.h"

/* linear index into a tensor of shape s (right-aligned against out's ndim, size-1 dims broadcast)
 * of the output element at multi-index idx */
static int64_t bcast_index(Shape s, int ndim, const int *idx) {
    int64_t k = 0;
    for (int d = 0; d < s.ndim; d++) {
        int od = d + ndim - s.ndim;
        k = k * s.d[d] + (s.d[d] == 1 ? 0 : idx[od]);
    }
    return k;
}

static void unravel(int64_t i, Shape s, int *idx) {
    for (int d = s.ndim - 1; d >= 0; d--) { idx[d] = (int)(i % s.d[d]); i /= s.d[d]; }
}

static Tensor *random_tensor(Shape s, Rng *rng, float lo, float hi) {
    Tensor *t = ft_tensor_new(FT_F32, s, FT_CPU);
    for (int64_t i = 0; i < t->numel; i++) ft_f32(t)[i] = lo + (hi - lo) * (float)rng_double(rng);
    return t;
}

typedef Tensor *(*BinFn)(Tape *, Tensor *, Tensor *);

/* out = a op b and the gradients of sum(out * w), against the definition */
static bool check_pair(Shape sa, Shape sb, int op, Rng *rng, char *why, size_t why_n) {
    static const BinFn fns[] = { ft_add, ft_sub, ft_mul, ft_div };
    static const char *names[] = { "add", "sub", "mul", "div" };
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *a = random_tensor(sa, rng, -2, 2), *b = random_tensor(sb, rng, 0.5f, 2);   /* b away from 0: div */
    a->requires_grad = b->requires_grad = true;
    Tensor *y = fns[op](tp, a, b);
    Tensor *w = random_tensor(y->shape, rng, -1, 1);
    ft_backward(tp, ft_sum(tp, ft_mul(tp, y, w), FT_ALL_DIMS, false));
    double *ga = calloc((size_t)a->numel, sizeof *ga), *gb = calloc((size_t)b->numel, sizeof *gb);
    double *sa_abs = calloc((size_t)a->numel, sizeof *sa_abs), *sb_abs = calloc((size_t)b->numel, sizeof *sb_abs);
    int idx[FT_MAX_DIMS];
    int64_t wrong = 0;
    for (int64_t i = 0; i < y->numel; i++) {
        unravel(i, y->shape, idx);
        int64_t ia = bcast_index(sa, y->shape.ndim, idx), ib = bcast_index(sb, y->shape.ndim, idx);
        float x = ft_f32(a)[ia], v = ft_f32(b)[ib];
        float want = op == 0 ? x + v : op == 1 ? x - v : op == 2 ? x * v : x / v;
        wrong += memcmp(&want, &ft_f32(y)[i], sizeof want) != 0;
        double g = ft_f32(w)[i];
        double da = op == 0 || op == 1 ? g : op == 2 ? g * v : g / v;
        double db = op == 0 ? g : op == 1 ? -g : op == 2 ? g * x : -g * x / ((double)v * v);
        ga[ia] += da; gb[ib] += db;
        sa_abs[ia] += fabs(da); sb_abs[ib] += fabs(db);
    }
    bool ok = wrong == 0;
    if (!ok) snprintf(why, why_n, "%s %s %s: %lld of %lld outputs differ from a op b", names[op], FT_SHAPE_STR(sa),
                      FT_SHAPE_STR(sb), (long long)wrong, (long long)y->numel);
    for (int64_t i = 0; ok && i < a->numel; i++)
        if (fabs(ft_f32(a->grad)[i] - ga[i]) > 1e-5 * (sa_abs[i] + 1e-6)) {
            snprintf(why, why_n, "%s %s %s: d/da[%lld] = %.9g, expected %.9g", names[op], FT_SHAPE_STR(sa), FT_SHAPE_STR(sb),
                     (long long)i, ft_f32(a->grad)[i], ga[i]);
            ok = false;
        }
    for (int64_t i = 0; ok && i < b->numel; i++)
        if (fabs(ft_f32(b->grad)[i] - gb[i]) > 1e-5 * (sb_abs[i] + 1e-6)) {
            snprintf(why, why_n, "%s %s %s: d/db[%lld] = %.9g, expected %.9g", names[op], FT_SHAPE_STR(sa), FT_SHAPE_STR(sb),
                     (long long)i, ft_f32(b->grad)[i], gb[i]);
            ok = false;
        }
    free(ga); free(gb); free(sa_abs); free(sb_abs);
    ft_tensor_free(a); ft_tensor_free(b); ft_tensor_free(w);
    ft_tape_free(tp);
    return ok;
}

TEST(broadcast_ops_match_the_definition_forward_and_backward) {
    const Shape pairs[][2] = {
        { SHAPE(2, 1, 3, 5), SHAPE(2, 4, 3, 5) },   /* a prototype distance's |z|^2 - 2 z.p: rows of 15 */
        { SHAPE(2, 4, 3, 5), SHAPE(1, 4, 1, 1) },   /* + |p|^2: the second operand constant along a row */
        { SHAPE(3, 1), SHAPE(2, 3, 6) },            /* the first constant along a row */
        { SHAPE(5), SHAPE(3, 5) },
        { SHAPE(4, 1), SHAPE(1, 6) },               /* an outer product's shape */
        { SHAPE(1), SHAPE(7, 9) },                  /* a scalar: everything merges into one row */
        { SHAPE(2, 3, 2), SHAPE(2, 1, 2) },         /* rows of 2: the element-by-element loop */
        { SHAPE(3, 1, 5), SHAPE(1, 4, 1) },         /* neither operand merges */
    };
    Rng rng = rng_new(7);
    char why[256];
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        for (int op = 0; op < 4; op++) {
            CHECK(check_pair(pairs[p][0], pairs[p][1], op, &rng, why, sizeof why), "%s", why);
            CHECK(check_pair(pairs[p][1], pairs[p][0], op, &rng, why, sizeof why), "%s", why);
        }
}

/* Sums in the order of the reduced elements (so bit for bit), max and min with the first of tied
 * winners and a NaN winning, over every kind of dimension set. */
TEST(reductions_match_the_definition_over_any_dimensions) {
    const Shape s = SHAPE(3, 4, 5, 6);
    Tensor *x = ft_tensor_new(FT_F32, s, FT_CPU);
    for (int64_t i = 0; i < x->numel; i++) ft_f32(x)[i] = (float)((i * 7919) % 11) / 4 - 1;   /* many ties */
    ft_f32(x)[2 * 120 + 3 * 30 + 4 * 6 + 5] = NAN;
    const unsigned masks[] = { FT_DIM(1), FT_DIM(2) | FT_DIM(3), FT_DIM(0), FT_DIM(1) | FT_DIM(2), FT_DIM(3),
                               FT_DIM(0) | FT_DIM(2), FT_DIM(1) | FT_DIM(3), FT_ALL_DIMS };
    Tape *tp = ft_tape_new(FT_CPU);
    for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++) {
        unsigned mask = masks[m] == FT_ALL_DIMS ? 15u : masks[m];
        Tensor *arg_max, *arg_min;
        Tensor *sum = ft_sum(tp, x, masks[m], false), *mx = ft_max(tp, x, masks[m], false, &arg_max),
               *mn = ft_min(tp, x, masks[m], false, &arg_min);
        int kshape[4], rshape[4], nk = 0, nr = 0;
        for (int d = 0; d < 4; d++) { if (mask >> d & 1) rshape[nr++] = s.d[d]; else kshape[nk++] = s.d[d]; }
        int64_t n_out = sum->numel, n_red = x->numel / n_out;
        int64_t bad = 0;
        for (int64_t o = 0; o < n_out; o++) {
            int kidx[4] = { 0 }, ridx[4], idx[4];
            for (int64_t t = o, d = nk - 1; d >= 0; d--) { kidx[d] = (int)(t % kshape[d]); t /= kshape[d]; }
            float acc = 0, best[2] = { 0, 0 };
            int win[2] = { -1, -1 };
            for (int64_t r = 0; r < n_red; r++) {
                for (int64_t t = r, d = nr - 1; d >= 0; d--) { ridx[d] = (int)(t % rshape[d]); t /= rshape[d]; }
                for (int d = 0, ki = 0, ri = 0; d < 4; d++) idx[d] = mask >> d & 1 ? ridx[ri++] : kidx[ki++];
                float v = ft_f32(x)[((idx[0] * 4 + idx[1]) * 5 + idx[2]) * 6 + idx[3]];
                acc += v;
                for (int k = 0; k < 2; k++) {
                    bool take = win[k] < 0 || (best[k] == best[k] && (v != v || (k == 0 ? v > best[k] : v < best[k])));
                    if (take) { best[k] = v; win[k] = (int)r; }
                }
            }
            bad += memcmp(&acc, &ft_f32(sum)[o], sizeof acc) != 0;
            float got[2] = { ft_f32(mx)[o], ft_f32(mn)[o] };
            int got_arg[2] = { ft_i32(arg_max)[o], ft_i32(arg_min)[o] };
            for (int k = 0; k < 2; k++)
                bad += !((got[k] == best[k] || (got[k] != got[k] && best[k] != best[k])) && got_arg[k] == win[k]);
        }
        CHECK(bad == 0, "dims mask 0x%x: %lld of %lld outputs (sum, max, min, argmax, argmin) differ from the definition",
              mask, (long long)bad, (long long)n_out);
        ft_tape_reset(tp);
    }
    ft_tape_free(tp);
    ft_tensor_free(x);
}

static double ulps(float got, double want) {
    if (isnan(want)) return isnan(got) ? 0 : INFINITY;
    float w = (float)want;   /* overflows to inf where float does */
    if (isinf(w)) return got == w ? 0 : INFINITY;
    double ulp = fabs((double)nextafterf(w, INFINITY) - w);
    if (ulp == 0 || isinf(ulp)) ulp = 1e-45;
    return fabs(got - want) / ulp;
}

/* a float gradient against its closed form in double: float's rounding, or float's overflow */
static bool grad_near(float got, double want) {
    if (isnan(want)) return true;   /* inf / inf at the range's end: nothing to compare */
    float w = (float)want;
    if (isinf(w)) return got == w;
    return fabs(got - want) <= 4e-7 * fabs(want) + 1e-37;
}

/* log, exp and sigmoid in float within 4 ulp of double precision (glibc's bound for its vector
 * variants; measured on AVX2: logf 3.8, expf 2.6; the scalar ones are within 1), from the
 * denormals to overflow, and their gradients. */
TEST(log_exp_and_sigmoid_are_within_four_ulp_of_double_precision) {
    const int n = 4099;   /* not a multiple of a vector's width: the tail runs too */
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(n), FT_CPU), *pos = ft_tensor_new(FT_F32, SHAPE(n), FT_CPU);
    for (int i = 0; i < n; i++) {
        double t = (double)i / (n - 1);
        ft_f32(x)[i] = (float)(-120 + 240 * t);                  /* exp over- and underflows at the ends */
        ft_f32(pos)[i] = (float)exp(-100 + 190 * t);             /* 3.7e-44 .. 1e39 -> inf: log's whole range */
    }
    ft_f32(pos)[0] = 0;
    x->requires_grad = pos->requires_grad = true;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *ex = ft_exp(tp, x), *sg = ft_sigmoid(tp, x), *lg = ft_log(tp, pos);
    double worst[3] = { 0 };
    int at[3] = { 0 };
    for (int i = 0; i < n; i++) {
        double v = ft_f32(x)[i], p = ft_f32(pos)[i];
        double e[3] = { ulps(ft_f32(ex)[i], exp(v)), ulps(ft_f32(sg)[i], 1 / (1 + exp(-v))), ulps(ft_f32(lg)[i], log(p)) };
        for (int k = 0; k < 3; k++) if (e[k] > worst[k]) { worst[k] = e[k]; at[k] = i; }
    }
    CHECK(worst[0] <= 4, "exp(%.9g): %g ulp from double precision", ft_f32(x)[at[0]], worst[0]);
    CHECK(worst[1] <= 4, "sigmoid(%.9g): %g ulp from double precision", ft_f32(x)[at[1]], worst[1]);
    CHECK(worst[2] <= 4, "log(%.9g): %g ulp from double precision", ft_f32(pos)[at[2]], worst[2]);
    /* gradients of sum(exp(x) + sigmoid(x)) and sum(log(pos)): exp(x) + s(1 - s) and 1 / pos */
    ft_backward(tp, ft_add(tp, ft_sum(tp, ft_add(tp, ex, sg), FT_ALL_DIMS, false), ft_sum(tp, ft_mul(tp, lg, lg), FT_ALL_DIMS, false)));
    int bad = 0;
    for (int i = 1; i < n; i++) {
        double s = ft_f32(sg)[i], want = (double)ft_f32(ex)[i] + s * (1 - s), lw = 2.0 * ft_f32(lg)[i] / ft_f32(pos)[i];
        bad += !grad_near(ft_f32(x->grad)[i], want);
        bad += !grad_near(ft_f32(pos->grad)[i], lw);
    }
    CHECK(bad == 0, "%d gradients of exp, sigmoid or log differ from the closed form", bad);
    ft_tape_free(tp);
    ft_tensor_free(x);
    ft_tensor_free(pos);
}
