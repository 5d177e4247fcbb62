#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"

StepAttack attack_fgsm(double eps) { return (StepAttack){ eps, eps, 1, false, 0, NORM_INF }; }
StepAttack attack_fgsm_rs(double eps, double alpha) { return (StepAttack){ eps, alpha, 1, true, 0, NORM_INF }; }
StepAttack attack_pgd(double eps, double alpha, int steps) { return (StepAttack){ eps, alpha, steps, true, 0, NORM_INF }; }
StepAttack attack_bim(double eps, int steps) { return (StepAttack){ eps, eps / steps, steps, false, 0, NORM_INF }; }
StepAttack attack_mim(double eps, int steps, double momentum) { return (StepAttack){ eps, eps / steps, steps, false, momentum, NORM_INF }; }

StepAttack attack_pgd_l2(double eps, double alpha, int steps) { return (StepAttack){ eps, alpha, steps, true, 0, NORM_L2 }; }

Tensor *attack_row_norms(Tape *tp, Tensor *x) {
    unsigned rest = 0;
    for (int d = 1; d < x->shape.ndim; d++) rest |= FT_DIM(d);
    return ft_sqrt(tp, ft_sum(tp, ft_mul(tp, x, x), rest, true));
}

/* MIM: g <- mu g + grad / |grad|_1, the L1 norm per example (guarded against a zero gradient). */
static void momentum_update(Tape *tp, Tensor *g, Tensor *grad, double mu) {
    unsigned rest = 0;
    for (int d = 1; d < grad->shape.ndim; d++) rest |= FT_DIM(d);
    ft_no_grad_begin(tp);
    Tensor *norm = ft_clamp(tp, ft_sum(tp, ft_abs(tp, grad), rest, true), 1e-12, INFINITY);
    ft_copy_(g, ft_add(tp, ft_affine(tp, g, mu, 0), ft_div(tp, grad, norm)));
    ft_no_grad_end(tp);
}

void attack_linf_step(Tensor *x, Tensor *x0, Tensor *g, double alpha, double eps) {
    FT_KERNEL(x->storage->device, linf_step, (&(LinfStepArgs){ x->dtype, x->numel, ft_ptr(x), ft_ptr(x0),
              g ? ft_ptr(g) : NULL, alpha, eps, 0.0, 1.0 }));
}

/* x <- x0 + delta with delta = x + alpha g / |g|_2 - x0 scaled into the L2 ball of eps, then
 * clipped to [0, 1] (torchattacks' PGDL2; g NULL: projection only). */
static void l2_step(Tape *tp, Tensor *x, Tensor *x0, Tensor *g, double alpha, double eps) {
    ft_no_grad_begin(tp);
    Tensor *y = x;
    if (g) y = ft_add(tp, x, ft_affine(tp, ft_div(tp, g, ft_affine(tp, attack_row_norms(tp, g), 1, 1e-10)), alpha, 0));
    Tensor *delta = ft_sub(tp, y, x0);
    Tensor *scale = ft_clamp(tp, ft_affine(tp, ft_pow(tp, ft_clamp(tp, attack_row_norms(tp, delta), 1e-12, INFINITY), -1), eps, 0), 0, 1);
    ft_copy_(x, ft_clamp(tp, ft_add(tp, x0, ft_mul(tp, delta, scale)), 0, 1));
    ft_no_grad_end(tp);
}

static void random_start(Tape *tp, const StepAttack *a, Tensor *x_adv, Tensor *x, Rng *rng) {
    Tensor *noise = ft_new_like(tp, x);
    if (a->norm == NORM_INF) {   /* uniform in the eps-ball, then back into [0, 1] */
        rng_uniform_(rng, noise, -a->eps, a->eps);
        ft_copy_(x_adv, ft_add(tp, x_adv, noise));
        attack_linf_step(x_adv, x, NULL, 0, a->eps);
    } else {                     /* a uniform direction times eps times a uniform factor (torchattacks) */
        rng_normal_(rng, noise, 0, 1);
        Tensor *r = ft_new_like(tp, attack_row_norms(tp, noise));
        rng_uniform_(rng, r, 0, 1);
        ft_copy_(x_adv, ft_clamp(tp, ft_add(tp, x, ft_mul(tp, ft_div(tp, noise, attack_row_norms(tp, noise)), ft_affine(tp, r, a->eps, 0))), 0, 1));
    }
    ft_tape_reset(tp);
}
void attack_copy_row(Tensor *dst, int b, const Tensor *src, int a) {
    int64_t per = src->numel / src->shape.d[0];
    Tensor d = *dst, s = *src;
    d.offset += b * per;
    s.offset += a * per;
    d.numel = s.numel = per;
    ft_copy_(&d, &s);
}

void attack_copy_rows(Tensor *dst, Tensor *src, const bool *rows) {
    int n = src->shape.d[0];
    int64_t per = src->numel / n;
    for (int i = 0; i < n; i++) {
        if (!rows[i]) continue;
        Tensor d = *dst, s = *src;
        d.offset += i * per; s.offset += i * per;
        d.numel = s.numel = per;
        ft_copy_(&d, &s);
    }
}

/* Keeps, for every example, the first iterate that meets the goal (Carlini et al.: report the
 * per-example worst case, not just the last iterate). */
typedef struct {
    const Goal *goal;
    bool *met, *fresh;   /* met at some iterate so far; newly at the last observed */
    Tensor *best;
} BestIterate;

static void best_init(BestIterate *b, const Goal *g, Tensor *x) {
    b->goal = g;
    b->met = ft_xcalloc((size_t)g->n, sizeof *b->met);
    b->fresh = ft_xcalloc((size_t)g->n, sizeof *b->fresh);
    b->best = ft_tensor_new(x->dtype, x->shape, x->storage->device);
}

/* The model's logits on iterate x_adv: remember the examples that meet the goal for the first time. */
static void best_observe(BestIterate *b, Tensor *logits, Tensor *x_adv) {
    int n = b->goal->n;
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    model_predict(logits, pred);
    bool any = false;
    for (int i = 0; i < n; i++) {
        b->fresh[i] = !b->met[i] && goal_met(b->goal, i, pred[i]);
        b->met[i] |= b->fresh[i];
        any |= b->fresh[i];
    }
    free(pred);
    if (any) attack_copy_rows(b->best, x_adv, b->fresh);
}

/* After observing the last iterate: put each example's first successful iterate into x_adv (the
 * others keep the last one). Returns how many succeed. */
static int best_finish(BestIterate *b, Tensor *x_adv) {
    int met = 0;
    for (int i = 0; i < b->goal->n; i++) {
        met += b->met[i];
        b->fresh[i] = b->met[i] && !b->fresh[i];   /* met before the last iterate */
    }
    attack_copy_rows(x_adv, b->best, b->fresh);
    free(b->met); free(b->fresh);
    ft_tensor_free(b->best);
    return met;
}

int attack_steps_goal(Model *m, Tape *tp, Tensor *x, const Goal *goal, const StepAttack *a, Rng *rng, Tensor *x_adv,
                      bool keep_best) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape), "attack: x_adv %s does not match x %s",
             FT_SHAPE_STR(x_adv->shape), FT_SHAPE_STR(x->shape));
    FT_CHECK(a->eps >= 0 && a->alpha >= 0 && a->steps >= 1, "attack: eps %g, alpha %g, steps %d", a->eps, a->alpha, a->steps);
    FT_CHECK(a->norm == NORM_INF || a->momentum == 0, "attack: momentum is an L-inf attack's");
    bool frozen = tp->params_frozen, had_grad = x_adv->requires_grad;
    tp->params_frozen = true;   /* only dL/dx is computed */
    ft_tape_reset(tp);
    ft_copy_(x_adv, x);
    if (a->random_start) random_start(tp, a, x_adv, x, rng);
    BestIterate best;
    if (keep_best) best_init(&best, goal, x);
    Tensor *g = a->momentum > 0 ? ft_tensor_new(x->dtype, x->shape, x->storage->device) : NULL;
    x_adv->requires_grad = true;
    for (int s = 0; s < a->steps; s++) {
        Tensor *logits;
        Tensor *loss = goal_ce_ascent(m, tp, x_adv, goal, &logits);
        if (keep_best) best_observe(&best, logits, x_adv);
        ft_backward(tp, loss);
        if (g) momentum_update(tp, g, x_adv->grad, a->momentum);
        if (a->norm == NORM_INF) attack_linf_step(x_adv, x, g ? g : x_adv->grad, a->alpha, a->eps);
        else l2_step(tp, x_adv, x, x_adv->grad, a->alpha, a->eps);
        ft_zero_(x_adv->grad);
        ft_tape_reset(tp);
    }
    x_adv->requires_grad = had_grad;
    ft_tensor_free(g);
    int result = -1;
    if (keep_best) {
        ft_no_grad_begin(tp);
        best_observe(&best, m->forward(m, tp, x_adv), x_adv);
        ft_no_grad_end(tp);
        ft_tape_reset(tp);
        result = best_finish(&best, x_adv);
    }
    tp->params_frozen = frozen;
    return result;
}

int attack_steps(Model *m, Tape *tp, Tensor *x, Tensor *y, const StepAttack *a, Rng *rng, Tensor *x_adv,
                 bool keep_best) {
    Tensor *yh = ft_tensor_new(FT_I32, y->shape, FT_CPU);
    ft_copy_(yh, y);
    Goal g;
    goal_make(&g, m, tp, x, ft_i32(yh), NULL, rng);
    ft_tensor_free(yh);
    int r = attack_steps_goal(m, tp, x, &g, a, rng, x_adv, keep_best);
    goal_free(&g);
    return r;
}
