/* Feature-space attacks: they move a layer's output (models/model.h's taps), not the labels.
 *
 * ODFA (U-turn, Zheng et al., IJCV 2022): the query's L2-normalised feature f is pushed toward the
 * opposite of its clean direction, -f0 / |f0|, by descending |f(x') / |f(x')| + f0 / |f0||^2 with
 * sign steps of alpha, each followed by the projection onto the L-inf eps-ball around the clean
 * image and onto [0, 1]. Multi-scale ODFA averages that loss over copies of x' resized (bilinear)
 * to 1, 1/sqrt(2) and 1/2 of its size; a model with a fixed input size gets each copy resized
 * back up to it, any other takes the small copy as it is. The sizes are floor(s H) x floor(s W)
 * and the resize uses the size ratio (F.interpolate(size=...), not scale_factor=).
 *
 * At the clean image the loss is at its maximum, a stationary point: the first step follows the
 * signs of a gradient that is rounding noise, in effect a random start (any implementation that
 * starts at the clean image, as the paper describes, does the same). */
#ifndef FINCH_FEATURE_ATTACK_H
#define FINCH_FEATURE_ATTACK_H

#include "attack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *layer;   /* the feature layer (a tap name; "pooled" for retrieval models) */
    double eps, alpha;   /* on [0, 1] pixels */
    int steps;
    bool multi_scale;
} OdfaAttack;

/* U-turn's settings at eps: alpha 1/255 and round(min(1.25 e, e + 4)) steps (at least 1), e = 255 eps. */
OdfaAttack attack_odfa_defaults(const char *layer, double eps, bool multi_scale);

/* The attack's target for clean images x: their unit features (persistent; the caller frees it),
 * computed without a gradient. NULL with ft_last_error() for an unknown layer. */
Tensor *odfa_target(Model *m, Tape *tp, Tensor *x, const char *layer);
/* ODFA's loss at xa, summed over the batch and averaged over the scales, on tp (differentiable
 * in xa). NULL for an unknown layer. */
Tensor *odfa_loss(Model *m, Tape *tp, Tensor *xa, Tensor *target, const OdfaAttack *a);

/* ODFA on batch x (the model's float type, [0, 1] pixels) into x_adv (x's shape). The model's mode
 * is the caller's (eval for an evaluation). Returns 0, or -1 with ft_last_error() (an unknown
 * layer). tp is reset. Optional: the loss (summed over the batch) before each step, steps entries. */
int attack_odfa(Model *m, Tape *tp, Tensor *x, const OdfaAttack *a, Tensor *x_adv, double *trace_loss);

/* Feature adversaries (Sabour, Cao, Faghri and Fleet, ICLR 2016): an image whose layer-k
 * representation mimics a guide's while it stays within delta of the source, by minimising
 * |phi_k(I) - phi_k(Ig)|^2 over the box [max(0, Is - delta), min(1, Is + delta)] with L-BFGS-B
 * (attack/lbfgsb.h): one solver per image, the images that ask for an evaluation in one batched
 * forward and backward. */
typedef struct {
    const char *layer;
    double delta;        /* on [0, 1] pixels: 10/255, the paper's */
    int memory;          /* L-BFGS-B's m */
    int max_iters;
    double factr, pgtol; /* L-BFGS-B's stopping tests (SciPy's defaults: 1e7, 1e-5) */
} FeatureAdvAttack;
FeatureAdvAttack attack_feature_adv_defaults(const char *layer);
/* Per image: the iterations run and the solver's last word. */
typedef struct { int iters, evals; char status[64]; } FeatureAdvResult;
/* Feature adversaries of the sources toward the guides (the same shape, the model's float type)
 * into x_adv. The model's mode is the caller's. res (optional): one entry per image. Returns 0, or
 * -1 with ft_last_error() (an unknown layer). tp is reset. */
int attack_feature_adv(Model *m, Tape *tp, Tensor *src, Tensor *guide, const FeatureAdvAttack *a, Tensor *x_adv,
                       FeatureAdvResult *res);

#ifdef __cplusplus
}
#endif

#endif
