/* Optimizers over a finalized ParamSet: SGD (momentum, Nesterov, L2 weight decay) and Adam /
 * AdamW, with parameter groups that each have their own learning rate and weight decay, exactly
 * as torch.optim defines them. Frozen parameters (requires_grad false) are skipped. */
#ifndef FINCH_OPTIM_H
#define FINCH_OPTIM_H

#include "layers/params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OPT_MAX_GROUPS 8

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;

typedef struct { double lr, base_lr, weight_decay; } ParamGroup;

typedef struct {
    OptKind kind;
    double momentum, beta1, beta2, eps;
    bool nesterov;
    ParamGroup groups[OPT_MAX_GROUPS];
    int n_groups;
    ParamSet *ps;
    Tensor *state1, *state2;   /* flat like the parameters: SGD momentum buffer / Adam m and v */
    int64_t step;
} Optimizer;

/* Group 0 gets lr and weight_decay; add more with optim_add_group. Defaults: momentum 0.9 for SGD
 * (set 0 for plain SGD), betas (0.9, 0.999) and eps 1e-8 for Adam. */
Optimizer *optim_new(OptKind kind, ParamSet *ps, double lr, double weight_decay);
int optim_add_group(Optimizer *o, double lr, double weight_decay);
void optim_free(Optimizer *o);
void optim_step(Optimizer *o);
/* Set every group's lr to its base lr times `factor` (what a schedule returns). */
void optim_scale_lr(Optimizer *o, double factor);
/* "sgd" | "adam" | "adamw" -> kind; -1 if unknown */
int optim_parse_kind(const char *s);

/* Learning-rate schedules, as a factor of the base lr for a 0-based epoch. */
typedef enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE } SchedKind;
typedef struct {
    SchedKind kind;
    int step_size;      /* step: multiply by gamma every step_size epochs */
    double gamma;
    int total;          /* cosine: epochs from the base lr down to min_factor */
    double min_factor;
    int offset;         /* the schedule sees epoch + offset (a stage that starts later) */
} Schedule;
double schedule_factor(const Schedule *s, int epoch);

#ifdef __cplusplus
}
#endif

#endif
