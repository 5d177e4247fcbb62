/* CLEVER (Weng et al., ICLR 2018): an attack-agnostic robustness score from the local Lipschitz
 * constant of the margin g(x) = Z_c(x) - Z_j(x) between the predicted class c and a target j.
 *
 * Around an image x0, N_b batches of N_s points are drawn in a ball of radius R of the
 * perturbation's norm p (and clipped to the pixel box [0, 1]); at each point the dual norm q of
 * grad g is computed by the model's backward (1/p + 1/q = 1: p = 2 -> q = 2, p = inf -> q = 1,
 * p = 1 -> q = inf), and each batch keeps its largest. The batch maxima follow a reverse Weibull
 * distribution whose location estimates the largest gradient norm in the ball, L; the score is
 * min(g(x0) / L, R): no perturbation of p-norm below it changes the class (if L is right).
 *
 * Sampling as the reference implementation (huanzhang12/CLEVER, randsphere.py) does it: L2, a
 * point uniform in the unit ball times a radius uniform in [0, R]; L1, a point uniform on the
 * unit L1 sphere times a radius uniform in [0, R]; L-inf, a point uniform in the cube of half-width
 * R. CLEVER_SAMPLE_BALL draws uniformly in the ball instead, as the paper describes. The fit is
 * the reference's too (clever.py): a 3-parameter Weibull by maximum likelihood on the rescaled
 * negated maxima, with its small regulariser, from 7 starting shapes, keeping the fit with
 * the best Kolmogorov-Smirnov p-value, and the largest sample itself when that p < 0.001. */
#ifndef FINCH_CLEVER_H
#define FINCH_CLEVER_H

#include "attack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CLEVER_SAMPLE_REFERENCE, CLEVER_SAMPLE_BALL } CleverSampling;

typedef struct {
    Norm norm;               /* p: NORM_L2, NORM_INF or NORM_L1 */
    int batches, samples;    /* N_b, N_s */
    double radius;           /* R */
    CleverSampling sampling;
    int chunk;               /* samples per forward and backward */
} CleverConfig;

/* The reference's settings for norm p: 500 batches of 1,024 samples; R 3 (L2), 30 (L1), 0.1 (L-inf). */
CleverConfig clever_defaults(Norm p);
/* Writes count points around x0 (n values in [0, 1]), each clipped to [0, 1], into out (count x n). */
void clever_sample(const CleverConfig *c, const float *x0, int64_t n, int count, Rng *rng, float *out);
/* The q-norm of v (q the dual of p). */
double clever_dual_norm(Norm p, const float *v, int64_t n);

/* |grad g|_q (q the dual of p) at each of the k points x ([k, C, H, W], on the tape or not),
 * through one forward and backward; tp is reset. */
void clever_gradient_norms(Model *m, Tape *tp, Tensor *x, int c, int j, Norm p, double *norms);
/* For image x0 ([1, C, H, W], the model's device and type) and classes c != j: maxima[b] = the
 * largest |grad g|_q of batch b (cfg->batches entries), *g0 = g(x0). The model is used as it is
 * (eval mode is the caller's); tp is reset. progress (may be NULL) is called after every batch. */
void clever_gradient_maxima(Model *m, Tape *tp, Tensor *x0, int c, int j, const CleverConfig *cfg, Rng *rng,
                            double *maxima, double *g0, void (*progress)(void *ctx), void *ctx);

typedef struct {
    double lipschitz;        /* L: the fit's location, or the largest sample when it fell back */
    double shape, loc, scale;   /* the Weibull of the negated maxima (scipy's weibull_min c, loc, scale) */
    double ks, p_value;      /* of the fit kept */
    bool fallback;           /* no fit reached p 0.001: L is the largest sample */
} WeibullFit;
/* Fits the n batch maxima (n >= 2). */
WeibullFit clever_fit(const double *maxima, int n);

/* The Kolmogorov-Smirnov statistic of sorted samples y[0..n) against the Weibull (shape, loc,
 * scale) of scipy's weibull_min, and P(D_n >= d) for n samples (exact: Marsaglia, Tsang and Wang 2003). */
double clever_ks_statistic(const double *sorted, int n, double shape, double loc, double scale);
double clever_ks_pvalue(int n, double d);

#ifdef __cplusplus
}
#endif

#endif
