#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "optim.h"
#include "core/backend.h"

Optimizer *optim_new(OptKind kind, ParamSet *ps, double lr, double weight_decay) {
    FT_CHECK(ps->flat, "optimizer over a parameter set that was not finalized");
    FT_CHECK(ps->dtype == FT_F32, "optimizers update float32 parameters, these are %s", ft_dtype_name(ps->dtype));
    Optimizer *o = ft_xcalloc(1, sizeof *o);
    o->kind = kind;
    o->ps = ps;
    o->momentum = kind == OPT_SGD ? 0.9 : 0;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->groups[0] = (ParamGroup){ lr, lr, weight_decay };
    o->n_groups = 1;
    o->state1 = ft_tensor_new(FT_F32, ps->flat->shape, ps->device);
    if (kind != OPT_SGD) o->state2 = ft_tensor_new(FT_F32, ps->flat->shape, ps->device);
    return o;
}

int optim_add_group(Optimizer *o, double lr, double weight_decay) {
    FT_CHECK(o->n_groups < OPT_MAX_GROUPS, "more than %d parameter groups", OPT_MAX_GROUPS);
    o->groups[o->n_groups] = (ParamGroup){ lr, lr, weight_decay };
    return o->n_groups++;
}

void optim_free(Optimizer *o) {
    if (!o) return;
    ft_tensor_free(o->state1);
    ft_tensor_free(o->state2);
    free(o);
}

void optim_step(Optimizer *o) {
    o->step++;
    Device dev = o->ps->device;
    float *w0 = ft_ptr(o->ps->flat), *g0 = ft_ptr(o->ps->flat_grad), *s1 = ft_ptr(o->state1);
    float *s2 = o->state2 ? ft_ptr(o->state2) : NULL;
    for (int i = 0; i < o->ps->n; i++) {
        Param *p = &o->ps->items[i];
        if (!p->trainable || !p->t->requires_grad) continue;
        FT_CHECK(p->group >= 0 && p->group < o->n_groups, "parameter %s is in group %d; the optimizer has %d",
                 p->name, p->group, o->n_groups);
        const ParamGroup *g = &o->groups[p->group];
        int64_t off = p->t->offset, n = p->t->numel;
        if (o->kind == OPT_SGD)
            FT_KERNEL(dev, sgd, (&(SgdArgs){ n, w0 + off, g0 + off, s1 + off, g->lr, o->momentum, g->weight_decay,
                                             o->nesterov, o->step == 1 }));
        else
            FT_KERNEL(dev, adam, (&(AdamArgs){ n, w0 + off, g0 + off, s1 + off, s2 + off, g->lr, o->beta1, o->beta2,
                                               o->eps, g->weight_decay, o->kind == OPT_ADAMW, o->step }));
    }
}

void optim_scale_lr(Optimizer *o, double factor) {
    for (int i = 0; i < o->n_groups; i++) o->groups[i].lr = o->groups[i].base_lr * factor;
}

int optim_parse_kind(const char *s) {
    if (strcmp(s, "sgd") == 0) return OPT_SGD;
    if (strcmp(s, "adam") == 0) return OPT_ADAM;
    if (strcmp(s, "adamw") == 0) return OPT_ADAMW;
    return -1;
}

double schedule_factor(const Schedule *s, int epoch) {
    epoch += s->offset;
    if (epoch < 0) epoch = 0;
    switch (s->kind) {
    case SCHED_CONSTANT: return 1.0;
    case SCHED_STEP: return pow(s->gamma, s->step_size > 0 ? epoch / s->step_size : 0);
    case SCHED_COSINE: {
        double t = s->total > 0 ? fmin((double)epoch / s->total, 1.0) : 1.0;
        return s->min_factor + (1 - s->min_factor) * 0.5 * (1 + cos(M_PI * t));
    }
    }
    return 1.0;
}
