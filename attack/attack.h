/* White-box attacks driven by the framework's own backward pass, and the goals they pursue.
 *
 * Each step is a forward of the model on the current adversarial pixels (in [0, 1]; the model
 * normalises internally), the attack loss (summed over the model's heads: model_heads), then
 * ft_backward with the parameters frozen (so no weight gradient is computed, only dL/dx). The
 * caller chooses the model's mode (eval for evaluation: batch norm on running statistics,
 * dropout off). Every attack can be untargeted (leave the true class) or targeted (reach a
 * class: a given one, a random other one, or the clean logits' least likely; Goal).
 *
 * Step attacks (steps.c), x <- proj(x + alpha * dir(grad)), targeted ones descending the target's
 * cross entropy; dir is sign(g) under L-inf and g / |g|_2 under L2, proj onto the eps-ball
 * around the clean image and onto [0, 1]:
 *   FGSM:    1 step of eps, no random start (FGSM-RS: random start, step 1.25 eps)
 *   PGD-k:   k steps of alpha with a random start in the eps-ball (L-inf or L2)
 *   BIM-k:   k steps of eps / k from the clean image (I-FGSM)
 *   MIM-k:   BIM whose step follows the sign of g <- mu g + grad / |grad|_1 (per example)
 * Optimisation attacks (cw.c): C&W-L2 and EAD, each with a per-example binary search over c.
 * Auto-PGD (apgd.c), and the score-based Square attack (square.c), which needs no gradient.
 */
#ifndef FINCH_ATTACK_H
#define FINCH_ATTACK_H

#include "models/model.h"
#include "data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- goals (goal.c) --- */
typedef enum { TARGET_UNTARGETED, TARGET_CLASS, TARGET_RANDOM, TARGET_LEAST_LIKELY } TargetMode;
typedef struct { TargetMode mode; int cls; } Target;
/* "untargeted" | "random" | "least-likely" | a class number; false if none of these. */
bool target_parse(const char *s, Target *t);
const char *target_name(const Target *t, char *buf, size_t n);

/* One batch's goal. targets is NULL for an untargeted attack. */
typedef struct {
    int n, k;                    /* examples, classes */
    int32_t *labels, *targets;   /* host */
    Tensor *cls;                 /* [n] int32 on the model's device: targets, or labels */
    Tensor *onehot;              /* [n, k] float on the model's device: one-hot of cls */
} Goal;
/* labels: n host labels. A random target is drawn from rng among the classes other than the
 * label; a least-likely one is the argmin of the clean logits of x (head 0). */
void goal_make(Goal *g, Model *m, Tape *tp, Tensor *x, const int32_t *labels, const Target *t, Rng *rng);
/* The goal of g's examples rows[0..n), in that order, into *out (goal_free it). */
void goal_rows(const Goal *g, const int *rows, int n, Goal *out);
void goal_free(Goal *g);
/* Head 0's logits of x without a gradient, on the host ([n, k] floats; the caller frees). */
float *attack_clean_logits(Model *m, Tape *tp, Tensor *x);
/* Whether example i, predicted as pred, meets the goal. */
static inline bool goal_met(const Goal *g, int i, int32_t pred) {
    return g->targets ? pred == g->targets[i] : pred != g->labels[i];
}
/* C&W's success test on one row of host logits: the goal is met with a margin of kappa. */
bool goal_met_by(const Goal *g, int i, const float *z, double kappa);
/* Per-example losses [n] on logits z [n, k], to be minimised:
 * C&W's f: untargeted max(Z_y - max_{i != y} Z_i, -kappa), targeted max(max_{i != t} Z_i - Z_t, -kappa). */
Tensor *goal_margin(Tape *tp, Tensor *z, const Goal *g, double kappa);
/* Summed over heads z[0..heads) (model_heads' output). */
Tensor *goal_margin_sum(Tape *tp, Tensor *const z[], int heads, const Goal *g, double kappa);
/* Summed over the model's heads at x; *logits (optional) receives head 0's. */
Tensor *goal_margin_heads(Model *m, Tape *tp, Tensor *x, const Goal *g, double kappa, Tensor **logits);
/* The step attacks' scalar loss to ascend: the model's own loss (untargeted), or minus the
 * target's cross entropy summed over the heads (targeted). */
Tensor *goal_ce_ascent(Model *m, Tape *tp, Tensor *x, const Goal *g, Tensor **logits);

typedef enum { NORM_INF = 0, NORM_L1 = 1, NORM_L2 = 2 } Norm;   /* L1: CLEVER only (clever.h) */
typedef struct {
    double eps, alpha;
    int steps;
    bool random_start;   /* L-inf: uniform in the cube; L2: a uniform direction times a uniform radius */
    double momentum;     /* MIM's mu; 0: plain gradient steps */
    Norm norm;
} StepAttack;

StepAttack attack_fgsm(double eps);
StepAttack attack_fgsm_rs(double eps, double alpha);
StepAttack attack_pgd(double eps, double alpha, int steps);
StepAttack attack_bim(double eps, int steps);
StepAttack attack_mim(double eps, int steps, double momentum);
StepAttack attack_pgd_l2(double eps, double alpha, int steps);

/* Writes the adversarial batch into x_adv (persistent, x's shape and device). With keep_best,
 * each example keeps the first iterate that meets the goal (the worst case over the iterates);
 * otherwise the last iterate. Returns how many examples meet the goal at the returned iterate
 * when keep_best is set, else -1. The attack runs its steps on tp and resets it: whatever tp
 * held before the call is released. */
int attack_steps_goal(Model *m, Tape *tp, Tensor *x, const Goal *g, const StepAttack *a, Rng *rng, Tensor *x_adv,
                      bool keep_best);
/* The same, untargeted, with labels y (int32 [n] on the model's device). */
int attack_steps(Model *m, Tape *tp, Tensor *x, Tensor *y, const StepAttack *a, Rng *rng, Tensor *x_adv,
                 bool keep_best);

/* C&W-L2 and EAD (cw.c). */
typedef enum { EAD_RULE_EN, EAD_RULE_L1 } EadRule;
typedef struct {
    double kappa;        /* success needs the goal met by this logit margin */
    double c0, lr;       /* the first constant of every example's search; Adam's rate (C&W), the first step (EAD) */
    int steps, search_steps;
    bool abort_early;    /* stop a run when its loss fell by less than 0.01% (EAD: 0.0001%) over a tenth of the steps */
    double beta;         /* EAD: weight of the L1 distance */
    EadRule rule;        /* EAD: keep the successful example with the smallest elastic-net or L1 distance */
    /* Optional, for checks and plots: the first run's loss at every iteration (steps entries; C&W:
     * before its Adam step, EAD: at the new iterate) and its last iterate (x's shape). */
    double *trace_loss;
    Tensor *trace_last;
} OptAttack;
/* The papers' defaults: kappa 0, c 1e-3, lr 1e-2, 1,000 steps, 9 search steps, early abort;
 * EAD: beta 1e-3, rule EN. */
OptAttack attack_cw_defaults(void);
OptAttack attack_ead_defaults(void);
/* Runs the attack on batch x (the model's float type) toward goal g. x_adv receives each example's best
 * successful iterate, or the clean image where none succeeded; success[i] (optional) says which.
 * Returns how many succeeded. tp is reset, as by attack_steps_goal. */
int attack_cw(Model *m, Tape *tp, Tensor *x, const Goal *g, const OptAttack *a, Tensor *x_adv, bool *success);
int attack_ead(Model *m, Tape *tp, Tensor *x, const Goal *g, const OptAttack *a, Tensor *x_adv, bool *success);

/* Auto-PGD (apgd.c). */
typedef enum { APGD_CE, APGD_DLR, APGD_DLR_TARGETED } ApgdLoss;
#define APGD_MAX_CHECKPOINTS 64
typedef struct {
    double eps;
    int steps;
    Norm norm;
    ApgdLoss loss;       /* APGD_DLR_TARGETED: APGD-T, the targeted DLR toward the clean logits' 2nd, 3rd, ... classes */
    int restarts;        /* random restarts on the examples not fooled yet */
    int target_classes;  /* APGD-T: how many runner-up classes it targets in turn (9) */
    double rho;          /* a checkpoint halves the step when the loss rose in at most this fraction of the steps (0.75) */
    double momentum;     /* weight of the new step against the last move (0.75) */
    /* Optional, for checks: what the first run did: the iterations (0-based) of its checkpoints,
     * ending with -1 (APGD_MAX_CHECKPOINTS + 1 entries), and each example's count of step halvings
     * (n entries; -1 for the examples not attacked, whose clean image meets the goal). */
    int *trace_checkpoints, *trace_halvings;
} ApgdAttack;
/* The paper's settings for a loss, eps, steps and norm (1 restart, 9 target classes, rho and momentum 0.75). */
ApgdAttack attack_apgd_defaults(ApgdLoss loss, double eps, int steps, Norm norm);
/* APGD on batch x toward goal g (untargeted, or toward g's targets with CE or DLR; APGD-T needs
 * an untargeted goal and succeeds on any misclassification). x_adv: each example's first
 * successful iterate, else its highest-loss one. Returns how many succeed. */
int attack_apgd(Model *m, Tape *tp, Tensor *x, const Goal *g, const ApgdAttack *a, Rng *rng, Tensor *x_adv);

/* The Square attack under L-inf (square.c): score-based, no gradients. */
typedef struct { double eps; int queries; double p_init; } SquareAttack;   /* the authors': 5,000 queries, p 0.8 */
/* Returns how many examples meet goal g; x_adv: the last accepted point of each. */
int attack_square(Model *m, Tape *tp, Tensor *x, const Goal *g, const SquareAttack *a, Rng *rng, Tensor *x_adv);

/* One attack over a dataset (evaluate.c). */
typedef enum { ATTACK_STEPS, ATTACK_CW, ATTACK_EAD, ATTACK_APGD, ATTACK_SQUARE } AttackKind;
const char *attack_kind_name(AttackKind k);
typedef struct {
    AttackKind kind;
    StepAttack step;     /* ATTACK_STEPS (each example keeps its first successful iterate) */
    OptAttack opt;       /* ATTACK_CW, ATTACK_EAD */
    ApgdAttack apgd;     /* ATTACK_APGD */
    SquareAttack square; /* ATTACK_SQUARE */
    Target target;
} AttackSpec;

/* Distances between an image and its adversarial version on the 0..1 scale; L0 counts the
 * elements changed by more than half a grey level (1/510). */
typedef struct { double l0, l1, l2, linf; } Distortion;
Distortion attack_distortion(const float *x, const float *x_adv, int64_t n);

typedef struct { double mean, median; } Stat;   /* NAN when there is nothing to measure */
typedef struct {
    int total, clean_correct, adv_correct;
    int success;         /* the goal is met at the adversarial image (untargeted: misclassified) */
    int success_8bit;    /* ... and still after rounding it to 8-bit pixels */
    int needed;          /* examples whose clean image does not meet the goal already */
    int measured;        /* the successful ones among those: the distortion statistics' examples */
    Stat l0, l1, l2, linf;
    double seconds;
} AttackStats;

/* Head-0 predictions of x without a gradient (eval mode is the caller's); tp is reset. */
void attack_predict(Model *m, Tape *tp, Tensor *x, int32_t *pred);
/* Runs attack a on one batch toward goal g into xa (each kind's own function). */
void attack_run_batch(Model *m, Tape *tp, Tensor *x, const Goal *g, const AttackSpec *a, Rng *rng, Tensor *xa);
/* Called after each batch with its clean and adversarial images (the model's device), its goal
 * and the head-0 predictions on both, for pictures and saved examples. */
typedef void (*AttackBatchFn)(void *ctx, int start, int n, Tensor *x, Tensor *x_adv, const Goal *g,
                              const int32_t *pred_clean, const int32_t *pred_adv);
/* Attack the first n samples of ds (all if n <= 0) in batches, the model in eval mode. */
AttackStats attack_evaluate(Model *m, const Dataset *ds, int n, int batch, const AttackSpec *a, uint64_t seed,
                            bool quiet, AttackBatchFn on_batch, void *ctx);

/* Per-example L2 norms of x [n, ...] as [n, 1, ..., 1], for broadcasting back (steps.c). */
Tensor *attack_row_norms(Tape *tp, Tensor *x);
/* x <- clip(x0 + clip(x + alpha sign(g) - x0, -eps, eps), 0, 1) elementwise (g NULL: the
 * projection only; a negative alpha descends) (steps.c). */
void attack_linf_step(Tensor *x, Tensor *x0, Tensor *g, double alpha, double eps);
/* Copy row i of src into row i of dst for every row whose flag is set (steps.c). */
void attack_copy_rows(Tensor *dst, Tensor *src, const bool *rows);
/* Row a of src into row b of dst. */
void attack_copy_row(Tensor *dst, int b, const Tensor *src, int a);

/* This process's share of n images in batches of `batch` under data parallelism (whole batches:
 * ft_dist_share): [lo, hi), and a value to mix into the attack's seed so that every process draws
 * its own random starts (0 for rank 0: one process's). */
typedef struct { int lo, hi, rank; uint64_t stream; } Share;
Share share_of(int n, int batch);

/* Clean accuracy on the first n samples of ds (all if n <= 0), the model in eval mode (robustness.c). */
typedef struct { int total, correct; double seconds; } Accuracy;
Accuracy clean_accuracy(Model *m, const Dataset *ds, int n, int batch, bool quiet);

/* Suites (suite.c), run at each eps with a per-example worst case ("worst" counts the examples
 * that survive every attack of the suite):
 *   paper:  the robust paper's evaluation (Nakka & Salzmann): FGSM (random start, one step of eps),
 *           BIM-10 (eps / 10), PGD-10 (random start; step 1/255 at eps 2/255, 2/255 at 8/255,
 *           eps / 4 otherwise) and MIM-10 (eps / 10, mu 1), each keeping every example's first
 *           fooling iterate; the loss is the model's own (both cross entropies for Ours-FR);
 *   strong: APGD-CE and APGD-T (100 steps), Square (5,000 queries), then the paper's four. */
#define SUITE_MAX 8
typedef struct { const char *name; AttackSpec a; bool gradient_free, single_step; } NamedAttack;
/* The attacks of suite "paper" or "strong" at eps: their count, or 0 for an unknown suite. */
int suite_attacks(const char *suite, double eps, NamedAttack out[SUITE_MAX]);
typedef struct { double eps; int n_attacks, total, clean, robust[SUITE_MAX], worst; double seconds; } SuiteRow;
SuiteRow robust_suite(Model *m, const Dataset *ds, int n, int batch, const char *suite, double eps, uint64_t seed, bool quiet);
/* The symptoms of gradient masking or a broken attack in a suite's rows (Carlini et al., "On
 * evaluating adversarial robustness"): an iterative attack worse than a single-step one, robust
 * accuracy (the worst case, or any one attack's) rising with eps, anything surviving eps >= 1,
 * the 100-step APGD-CE worse than
 * PGD-10, Square (no gradients) better than every gradient attack. Writes one line per finding
 * into warnings (up to max lines of 256 bytes each); returns the count. */
int suite_checks(const char *suite, const SuiteRow *rows, int n_rows, char (*warnings)[256], int max);

/* PNG of clean images, adversarial images and perturbations with predicted classes (visualize.c).
 * x and x_adv: host float32 [n, C, H, W]. */
int adv_grid_png(const char *path, const Tensor *x, const Tensor *x_adv, const int32_t *labels,
                 const int32_t *pred_clean, const int32_t *pred_adv, int n, double eps);

#ifdef __cplusplus
}
#endif

#endif
