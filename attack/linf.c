#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"

LinfAttack attack_fgsm(double eps) { return (LinfAttack){ eps, eps, 1, false, 0 }; }
LinfAttack attack_fgsm_rs(double eps, double alpha) { return (LinfAttack){ eps, alpha, 1, true, 0 }; }
LinfAttack attack_pgd(double eps, double alpha, int steps) { return (LinfAttack){ eps, alpha, steps, true, 0 }; }
LinfAttack attack_bim(double eps, int steps) { return (LinfAttack){ eps, eps / steps, steps, false, 0 }; }
LinfAttack attack_mim(double eps, int steps, double momentum) { return (LinfAttack){ eps, eps / steps, steps, false, momentum }; }

/* MIM: g <- mu g + grad / |grad|_1, the L1 norm per example (guarded against a zero gradient). */
static void momentum_update(Tape *tp, Tensor *g, Tensor *grad, double mu) {
    unsigned rest = 0;
    for (int d = 1; d < grad->shape.ndim; d++) rest |= FT_DIM(d);
    ft_no_grad_begin(tp);
    Tensor *norm = ft_clamp(tp, ft_sum(tp, ft_abs(tp, grad), rest, true), 1e-12, INFINITY);
    ft_copy_(g, ft_add(tp, ft_affine(tp, g, mu, 0), ft_div(tp, grad, norm)));
    ft_no_grad_end(tp);
}

static void linf_step(Tensor *x, Tensor *x0, Tensor *g, double alpha, double eps) {
    FT_KERNEL(x->storage->device, linf_step, (&(LinfStepArgs){ x->dtype, x->numel, ft_ptr(x), ft_ptr(x0),
              g ? ft_ptr(g) : NULL, alpha, eps, 0.0, 1.0 }));
}

/* Copy row i of src into row i of dst for every row whose flag is set. */
static void copy_rows(Tensor *dst, Tensor *src, const bool *rows) {
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

/* Keeps, for every example, the first iterate the model misclassifies (Carlini et al.: report
 * the per-example worst case, not just the last iterate). */
typedef struct {
    int n;
    int32_t *labels;
    bool *fooled, *fresh;   /* misclassified at some iterate so far; newly at the last observed */
    Tensor *best;
} BestIterate;

static void best_init(BestIterate *b, Tensor *x, Tensor *y) {
    b->n = x->shape.d[0];
    b->labels = ft_xmalloc((size_t)b->n * sizeof *b->labels);
    Tensor *yh = ft_tensor_new(FT_I32, y->shape, FT_CPU);
    ft_copy_(yh, y);
    memcpy(b->labels, ft_i32(yh), (size_t)b->n * sizeof *b->labels);
    ft_tensor_free(yh);
    b->fooled = ft_xcalloc((size_t)b->n, sizeof *b->fooled);
    b->fresh = ft_xcalloc((size_t)b->n, sizeof *b->fresh);
    b->best = ft_tensor_new(x->dtype, x->shape, x->storage->device);
}

/* The model's logits on iterate x_adv: remember the examples it fools for the first time. */
static void best_observe(BestIterate *b, Tensor *logits, Tensor *x_adv) {
    int32_t *pred = ft_xmalloc((size_t)b->n * sizeof *pred);
    model_predict(logits, pred);
    bool any = false;
    for (int i = 0; i < b->n; i++) {
        b->fresh[i] = !b->fooled[i] && pred[i] != b->labels[i];
        b->fooled[i] |= b->fresh[i];
        any |= b->fresh[i];
    }
    free(pred);
    if (any) copy_rows(b->best, x_adv, b->fresh);
}

/* After observing the last iterate: put each example's first fooling iterate into x_adv (the
 * others keep the last one). Returns how many are fooled. */
static int best_finish(BestIterate *b, Tensor *x_adv) {
    int fooled = 0;
    for (int i = 0; i < b->n; i++) {
        fooled += b->fooled[i];
        b->fresh[i] = b->fooled[i] && !b->fresh[i];   /* fooled before the last iterate */
    }
    copy_rows(x_adv, b->best, b->fresh);
    free(b->labels); free(b->fooled); free(b->fresh);
    ft_tensor_free(b->best);
    return fooled;
}

int attack_linf(Model *m, Tape *tp, Tensor *x, Tensor *y, const LinfAttack *a, Rng *rng, Tensor *x_adv,
                bool keep_best) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape), "attack: x_adv %s does not match x %s",
             FT_SHAPE_STR(x_adv->shape), FT_SHAPE_STR(x->shape));
    FT_CHECK(a->eps >= 0 && a->alpha >= 0 && a->steps >= 1, "attack: eps %g, alpha %g, steps %d", a->eps, a->alpha, a->steps);
    bool frozen = tp->params_frozen, had_grad = x_adv->requires_grad;
    tp->params_frozen = true;   /* only dL/dx is computed */
    ft_tape_reset(tp);
    ft_copy_(x_adv, x);
    if (a->random_start) {      /* uniform in the eps-ball, then back into [0, 1] */
        Tensor *noise = ft_new_like(tp, x);
        rng_uniform_(rng, noise, -a->eps, a->eps);
        ft_copy_(x_adv, ft_add(tp, x_adv, noise));
        linf_step(x_adv, x, NULL, 0, a->eps);
        ft_tape_reset(tp);
    }
    BestIterate best;
    if (keep_best) best_init(&best, x, y);
    Tensor *g = a->momentum > 0 ? ft_tensor_new(x->dtype, x->shape, x->storage->device) : NULL;
    x_adv->requires_grad = true;
    for (int s = 0; s < a->steps; s++) {
        Tensor *logits;
        Tensor *loss = model_loss(m, tp, x_adv, y, &logits);
        if (keep_best) best_observe(&best, logits, x_adv);
        ft_backward(tp, loss);
        if (g) momentum_update(tp, g, x_adv->grad, a->momentum);
        linf_step(x_adv, x, g ? g : x_adv->grad, a->alpha, a->eps);
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
