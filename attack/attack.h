/* White-box L-inf attacks driven by the framework's own backward pass.
 *
 * Each step is a forward of the model on the current adversarial pixels (in [0, 1]; the model
 * normalises internally), the attack loss, ft_backward with the parameters frozen (so no weight
 * gradient is computed, only dL/dx), then x <- clip(x + alpha * sign(dL/dx)) onto the eps-ball
 * around the clean image and onto [0, 1]. The caller chooses the model's mode (eval for
 * evaluation: batch norm on running statistics, dropout off).
 *
 *   FGSM:    1 step of eps, no random start (FGSM-RS: random start, step 1.25 eps)
 *   PGD-k:   k steps of alpha with a uniform random start in the eps-ball
 *   BIM-k:   k steps of eps / k from the clean image
 *   MIM-k:   BIM whose step follows the sign of g <- mu g + grad / |grad|_1 (per example)
 */
#ifndef FINCH_ATTACK_H
#define FINCH_ATTACK_H

#include "models/model.h"
#include "data/dataset.h"

typedef struct {
    double eps, alpha;
    int steps;
    bool random_start;
    double momentum;     /* MIM's mu; 0: plain signed gradient steps */
} LinfAttack;

LinfAttack attack_fgsm(double eps);
LinfAttack attack_fgsm_rs(double eps, double alpha);
LinfAttack attack_pgd(double eps, double alpha, int steps);
LinfAttack attack_bim(double eps, int steps);
LinfAttack attack_mim(double eps, int steps, double momentum);

/* Writes the adversarial batch into x_adv (persistent, x's shape and device). With keep_best,
 * each example keeps the first iterate that the model misclassifies (the worst case over the
 * iterates); otherwise the last iterate. Returns how many examples are misclassified at the
 * returned iterate when keep_best is set, else -1. The attack runs its steps on tp and resets
 * it: whatever tp held before the call is released. */
int attack_linf(Model *m, Tape *tp, Tensor *x, Tensor *y, const LinfAttack *a, Rng *rng, Tensor *x_adv,
                bool keep_best);

/* Robust accuracy on the first n samples of ds (all if n <= 0): accuracy on clean images and
 * on their adversarial versions, the model in eval mode. */
typedef struct { int total, clean_correct, adv_correct; double seconds; } RobustResult;
RobustResult robust_accuracy(Model *m, const Dataset *ds, int n, int batch, const LinfAttack *a,
                             uint64_t seed, bool quiet);

/* The robust paper's evaluation (Nakka & Salzmann): at each eps, FGSM (random start, one step of
 * eps), BIM-10 (eps / 10), PGD-10 (random start; step 1/255 at eps 2/255, 2/255 at 8/255, eps / 4
 * otherwise) and MIM-10 (eps / 10, mu 1), each keeping every example's first fooling iterate;
 * "worst" counts the examples that survive all four. The attack loss is the model's own
 * (model_loss: both cross entropies for Ours-FR). suite.c. */
#define SUITE_ATTACKS 4
typedef struct { const char *name; LinfAttack a; } NamedAttack;
void suite_paper_attacks(double eps, NamedAttack out[SUITE_ATTACKS]);
typedef struct { double eps; int total, clean, robust[SUITE_ATTACKS], worst; double seconds; } SuiteRow;
SuiteRow robust_suite(Model *m, const Dataset *ds, int n, int batch, double eps, uint64_t seed, bool quiet);

/* PNG of clean images, adversarial images and perturbations with predicted classes (visualize.c).
 * x and x_adv: host float32 [n, C, H, W]. */
int adv_grid_png(const char *path, const Tensor *x, const Tensor *x_adv, const int32_t *labels,
                 const int32_t *pred_clean, const int32_t *pred_adv, int n, double eps);

#endif
