#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_sf_gamma.h>
#include "clever.h"

CleverConfig clever_defaults(Norm p) {
    return (CleverConfig){ p, 500, 1024, p == NORM_L2 ? 3.0 : p == NORM_L1 ? 30.0 : 0.1, CLEVER_SAMPLE_REFERENCE, 256 };
}

/* --- sampling --- */

void clever_sample(const CleverConfig *c, const float *x0, int64_t n, int count, Rng *rng, float *out) {
    Tensor *t = ft_tensor_new(FT_F32, SHAPE(count, n), FT_CPU);
    if (c->norm == NORM_INF) rng_uniform_(rng, t, -c->radius, c->radius);   /* uniform in the cube: both samplers */
    else if (c->norm == NORM_L2) rng_normal_(rng, t, 0, 1);
    else rng_uniform_(rng, t, 0, 1);
    float *v = ft_f32(t);
    for (int i = 0; i < count; i++) {
        float *row = v + (int64_t)i * n;
        double f = 1;
        if (c->norm == NORM_L2) {          /* a Gaussian scaled to be uniform in the unit ball (randsphere's l2_samples) */
            double s2 = 0;
            for (int64_t k = 0; k < n; k++) s2 += (double)row[k] * row[k];
            f = pow(gsl_sf_gamma_inc_P(n / 2.0, s2 / 2), 1.0 / n) / sqrt(s2 > 0 ? s2 : 1);
        } else if (c->norm == NORM_L1) {   /* normalised exponentials with random signs: uniform on the unit L1 sphere */
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += row[k] = (float)-log1p(-(double)row[k]);
            f = 1 / (s > 0 ? s : 1);
            for (int64_t k = 0; k < n; k++) if (rng_u32(rng) & 1) row[k] = -row[k];
        }
        if (c->norm != NORM_INF) {         /* the reference: a radius uniform in [0, R]; the ball: R U^(1/n) on the sphere */
            double u = rng_double(rng);
            if (c->norm == NORM_L1 && c->sampling == CLEVER_SAMPLE_BALL) f *= c->radius * pow(u, 1.0 / n);
            else if (c->sampling == CLEVER_SAMPLE_BALL) f *= c->radius;   /* the L2 point is uniform in the unit ball already */
            else f *= c->radius * u;
        }
        for (int64_t k = 0; k < n; k++) {
            double x = x0[k] + f * row[k];
            out[(int64_t)i * n + k] = (float)(x < 0 ? 0 : x > 1 ? 1 : x);
        }
    }
    ft_tensor_free(t);
}

double clever_dual_norm(Norm p, const float *v, int64_t n) {
    double s = 0;
    for (int64_t k = 0; k < n; k++) {
        double a = fabs((double)v[k]);
        if (p == NORM_L2) s += a * a;
        else if (p == NORM_INF) s += a;    /* q = 1 */
        else if (a > s) s = a;             /* p = 1: q = inf */
    }
    return p == NORM_L2 ? sqrt(s) : s;
}

/* --- the batch maxima of the gradient norms --- */

void clever_gradient_norms(Model *m, Tape *tp, Tensor *x, int c, int j, Norm p, double *norms) {
    int k = x->shape.d[0], K = m->num_classes;
    int64_t n = x->numel / k;
    FT_CHECK(c != j && c >= 0 && j >= 0 && c < K && j < K, "clever: classes %d and %d of %d", c, j, K);
    bool frozen = tp->params_frozen, had_grad = x->requires_grad;
    tp->params_frozen = true;
    float *sel = ft_xcalloc((size_t)k * K, sizeof *sel), *g = ft_xmalloc((size_t)k * n * sizeof *g);
    for (int r = 0; r < k; r++) { sel[r * K + c] = 1; sel[r * K + j] = -1; }   /* sum(logits * sel) = the sum of g */
    Tensor *w = ft_new(tp, x->dtype, SHAPE(k, K));
    ft_from_floats(w, sel, (int64_t)k * K);
    x->requires_grad = true;
    ft_backward(tp, ft_sum(tp, ft_mul(tp, m->forward(m, tp, x), w), FT_ALL_DIMS, false));
    ft_to_floats(x->grad, g, (int64_t)k * n);
    for (int r = 0; r < k; r++) norms[r] = clever_dual_norm(p, g + (int64_t)r * n, n);
    x->requires_grad = had_grad;
    ft_tape_reset(tp);
    tp->params_frozen = frozen;
    free(sel);
    free(g);
}

void clever_gradient_maxima(Model *m, Tape *tp, Tensor *x0, int c, int j, const CleverConfig *cfg, Rng *rng,
                            double *maxima, double *g0, void (*progress)(void *ctx), void *ctx) {
    FT_CHECK(x0->shape.d[0] == 1 && cfg->chunk > 0, "clever: image %s, chunk %d", FT_SHAPE_STR(x0->shape), cfg->chunk);
    int64_t n = x0->numel;
    int chunk = cfg->chunk < cfg->samples ? cfg->chunk : cfg->samples;
    float *x0h = ft_xmalloc((size_t)n * sizeof *x0h), *h = ft_xmalloc((size_t)chunk * n * sizeof *h);
    double *norms = ft_xmalloc((size_t)chunk * sizeof *norms);
    ft_to_floats(x0, x0h, n);
    float *z = attack_clean_logits(m, tp, x0);
    *g0 = (double)z[c] - z[j];
    free(z);
    Shape s = x0->shape;
    for (int b = 0; b < cfg->batches; b++) {
        double best = 0;
        for (int done = 0; done < cfg->samples; ) {
            int k = cfg->samples - done < chunk ? cfg->samples - done : chunk;
            clever_sample(cfg, x0h, n, k, rng, h);
            s.d[0] = k;
            Tensor *x = ft_new(tp, x0->dtype, s);
            ft_from_floats(x, h, (int64_t)k * n);
            clever_gradient_norms(m, tp, x, c, j, cfg->norm, norms);   /* resets tp, x with it */
            for (int r = 0; r < k; r++) best = fmax(best, norms[r]);
            done += k;
        }
        maxima[b] = best;
        if (progress) progress(ctx);
    }
    free(x0h); free(h); free(norms);
}

/* --- the reverse Weibull fit --- */

typedef struct { const double *x; int n; } FitData;

/* scipy's penalised negative log-likelihood of weibull_min (c, loc, scale) at the data (points
 * outside the support cost 100 log(DBL_MAX) each), plus clever.py's regulariser 0.01 theta[2]^2:
 * its comment calls theta[2] the shape, but in scipy's (c, loc, scale) it is the scale, and so it
 * is here. Infinite values are returned as 1e300, which the simplex treats alike. */
static double weibull_objective(const gsl_vector *v, void *params) {
    const FitData *d = params;
    double c = gsl_vector_get(v, 0), loc = gsl_vector_get(v, 1), scale = gsl_vector_get(v, 2);
    if (!(c > 0) || !(scale > 0) || !isfinite(c) || !isfinite(loc) || !isfinite(scale)) return 1e300;
    double sum = 0;
    int bad = 0;
    for (int i = 0; i < d->n; i++) {
        double z = (d->x[i] - loc) / scale;
        double lp = z > 0 && isfinite(z) ? log(c) + (c - 1) * log(z) - pow(z, c) : NAN;
        if (isfinite(lp)) sum -= lp;
        else bad++;
    }
    double f = sum + bad * log(DBL_MAX) * 100 + d->n * log(scale) + 0.01 * scale * scale;
    return isfinite(f) ? f : 1e300;
}

/* scipy's starting loc and scale (rv_continuous._fit_loc_scale_support at shape 1): the moments of
 * an exponential, or just left of the data when those leave data outside the support. */
static void start_loc_scale(const double *x, int n, double *loc, double *scale) {
    double mean = 0, var = 0, lo = x[0], hi = x[0];
    for (int i = 0; i < n; i++) { mean += x[i]; lo = fmin(lo, x[i]); hi = fmax(hi, x[i]); }
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(var / n);
    *scale = isfinite(sd) && sd > 0 ? sd : 1;
    *loc = mean - *scale;
    if (!isfinite(*loc)) *loc = 0;
    if (!(*loc < lo)) { *loc = lo - 0.1 * (hi - lo); *scale = 1; }
}

/* Nelder-Mead (GSL's simplex) from (c0, loc, scale) with scipy fmin's first simplex (5% of each
 * nonzero coordinate, 0.00025 for a zero one), up to its 600 iterations, to a simplex size of 1e-4. */
static void nelder_mead(FitData *d, double c0, double loc, double scale, double out[3]) {
    gsl_multimin_function f = { weibull_objective, 3, d };
    gsl_vector *x = gsl_vector_alloc(3), *step = gsl_vector_alloc(3);
    double x0[3] = { c0, loc, scale };
    for (int k = 0; k < 3; k++) {
        gsl_vector_set(x, k, x0[k]);
        gsl_vector_set(step, k, x0[k] != 0 ? 0.05 * x0[k] : 0.00025);
    }
    gsl_multimin_fminimizer *s = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, 3);
    gsl_multimin_fminimizer_set(s, &f, x, step);
    for (int it = 0; it < 6000; it++)
        if (gsl_multimin_fminimizer_iterate(s) != GSL_SUCCESS || gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-8) == GSL_SUCCESS)
            break;
    for (int k = 0; k < 3; k++) out[k] = gsl_vector_get(s->x, k);
    gsl_multimin_fminimizer_free(s);
    gsl_vector_free(x);
    gsl_vector_free(step);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double clever_ks_statistic(const double *y, int n, double shape, double loc, double scale) {
    double d = 0;
    for (int i = 0; i < n; i++) {
        double z = (y[i] - loc) / scale, F = z > 0 ? -expm1(-pow(z, shape)) : 0;
        d = fmax(d, fmax((i + 1.0) / n - F, F - (double)i / n));
    }
    return d;
}

WeibullFit clever_fit(const double *maxima, int n) {
    double hi = maxima[0], lo = maxima[0];
    for (int i = 0; i < n; i++) { hi = fmax(hi, maxima[i]); lo = fmin(lo, maxima[i]); }
    WeibullFit best = { hi, -1, -1, -1, -1, -1, true };
    double range = hi - lo;
    if (n < 2 || !(range > 0) || !isfinite(range)) return best;   /* nothing to fit: the largest sample */
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    double *x = ft_xmalloc((size_t)n * sizeof *x), *y = ft_xmalloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++) {
        x[i] = (hi - maxima[i]) / range;   /* the negated maxima, shifted and rescaled to [0, 1] */
        y[i] = -maxima[i];
    }
    qsort(y, (size_t)n, sizeof *y, cmp_double);
    FitData d = { x, n };
    double loc0, scale0, p_best = -1;
    start_loc_scale(x, n, &loc0, &scale0);
    static const double c_init[] = { 0.1, 1, 5, 10, 20, 50, 100 };
    for (size_t k = 0; k < sizeof c_init / sizeof c_init[0]; k++) {
        double t[3];
        nelder_mead(&d, c_init[k], loc0, scale0, t);
        double loc = -hi + t[1] * range, scale = t[2] * range;   /* back on the scale of the negated maxima */
        double ks = clever_ks_statistic(y, n, t[0], loc, scale), p = clever_ks_pvalue(n, ks);
        if (isfinite(p) && p > p_best) {
            p_best = p;
            best = (WeibullFit){ -loc, t[0], loc, scale, ks, p, false };
        }
    }
    if (!(p_best >= 0.001)) {   /* ill-conditioned: the largest sample, as clever.py */
        best.lipschitz = hi;
        best.fallback = true;
    }
    free(x);
    free(y);
    gsl_set_error_handler(old);
    return best;
}

/* --- the Kolmogorov distribution --- */

/* C = A B for m x m matrices. */
static void mat_mul(const double *A, const double *B, double *C, int m) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int k = 0; k < m; k++) s += A[i * m + k] * B[k * m + j];
            C[i * m + j] = s;
        }
}

/* V 10^e = A^p, rescaled as it grows (Marsaglia, Tsang and Wang's mPower). */
static void mat_pow(const double *A, double *V, int *e, int m, int p) {
    if (p == 1) {
        memcpy(V, A, (size_t)m * m * sizeof *V);
        *e = 0;
        return;
    }
    mat_pow(A, V, e, m, p / 2);
    double *B = ft_xmalloc((size_t)m * m * sizeof *B);
    mat_mul(V, V, B, m);
    *e *= 2;
    if (p % 2 == 0) memcpy(V, B, (size_t)m * m * sizeof *V);
    else mat_mul(A, B, V, m);
    free(B);
    if (V[(m / 2) * m + m / 2] > 1e140) {
        for (int i = 0; i < m * m; i++) V[i] *= 1e-140;
        *e += 140;
    }
}

/* P(D_n < d): Marsaglia, Tsang and Wang, "Evaluating Kolmogorov's distribution" (J. Stat. Softw.
 * 8(18), 2003), with their closed form for the far tail (n d^2 > 7.24, or > 3.76 past 99 samples),
 * where P(D_n >= d) is below 1e-6. */
static double ks_cdf(int n, double d) {
    if (d <= 0.5 / n) return 0;
    if (d >= 1) return 1;
    double s = d * d * n;
    if (s > 7.24 || (s > 3.76 && n > 99)) return 1 - 2 * exp(-(2.000071 + 0.331 / sqrt(n) + 1.409 / n) * s);
    int k = (int)(n * d) + 1, m = 2 * k - 1, e;
    double h = k - n * d;
    double *H = ft_xmalloc((size_t)m * m * sizeof *H), *Q = ft_xmalloc((size_t)m * m * sizeof *Q);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) H[i * m + j] = i - j + 1 < 0 ? 0 : 1;
    for (int i = 0; i < m; i++) {
        H[i * m] -= pow(h, i + 1);
        H[(m - 1) * m + i] -= pow(h, m - i);
    }
    H[(m - 1) * m] += 2 * h - 1 > 0 ? pow(2 * h - 1, m) : 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            for (int g = 1; g <= i - j + 1; g++) H[i * m + j] /= g;
    mat_pow(H, Q, &e, m, n);
    s = Q[(k - 1) * m + k - 1];
    for (int i = 1; i <= n; i++) {
        s = s * i / n;
        if (s < 1e-140) { s *= 1e140; e -= 140; }
    }
    free(H);
    free(Q);
    return s * pow(10.0, e);
}

double clever_ks_pvalue(int n, double d) {
    double p = 1 - ks_cdf(n, d);
    return p < 0 ? 0 : p > 1 ? 1 : p;
}
