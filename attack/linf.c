#include <stdlib.h>
#include <string.h>
#include "attack.h"

LinfAttack attack_fgsm(double eps) { return (LinfAttack){ eps, eps, 1, false }; }
LinfAttack attack_fgsm_rs(double eps, double alpha) { return (LinfAttack){ eps, alpha, 1, true }; }
LinfAttack attack_pgd(double eps, double alpha, int steps) { return (LinfAttack){ eps, alpha, steps, true }; }

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

/* Marks rows misclassified by logits that are not yet marked; returns how many were new. */
static int mark_fooled(Tensor *logits, const int32_t *labels, bool *fooled, bool *fresh) {
    int n = logits->shape.d[0], k = 0;
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    model_predict(logits, pred);
    for (int i = 0; i < n; i++) {
        fresh[i] = !fooled[i] && pred[i] != labels[i];
        fooled[i] |= fresh[i];
        k += fresh[i];
    }
    free(pred);
    return k;
}

int attack_linf(Model *m, Tape *tp, Tensor *x, Tensor *y, const LinfAttack *a, Rng *rng, Tensor *x_adv,
                bool keep_best) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape), "attack: x_adv %s does not match x %s",
             FT_SHAPE_STR(x_adv->shape), FT_SHAPE_STR(x->shape));
    FT_CHECK(a->eps >= 0 && a->alpha >= 0 && a->steps >= 1, "attack: eps %g, alpha %g, steps %d", a->eps, a->alpha, a->steps);
    int n = x->shape.d[0];
    bool frozen = tp->params_frozen, had_grad = x_adv->requires_grad;
    tp->params_frozen = true;
    ft_copy_(x_adv, x);
    if (a->random_start) {
        Tensor *noise = ft_new_like(tp, x);
        rng_uniform_(rng, noise, -a->eps, a->eps);
        Tensor *start = ft_add(tp, x_adv, noise);
        ft_copy_(x_adv, start);
        linf_step(x_adv, x, NULL, 0, a->eps);
        ft_tape_reset(tp);
    }
    int32_t *labels = NULL;
    bool *fooled = NULL, *fresh = NULL;
    Tensor *best = NULL;
    if (keep_best) {
        labels = ft_xmalloc((size_t)n * sizeof *labels);
        Tensor *yh = ft_tensor_new(FT_I32, y->shape, FT_CPU);
        ft_copy_(yh, y);
        memcpy(labels, ft_i32(yh), (size_t)n * sizeof *labels);
        ft_tensor_free(yh);
        fooled = ft_xcalloc((size_t)n, sizeof *fooled);
        fresh = ft_xcalloc((size_t)n, sizeof *fresh);
        best = ft_tensor_new(x->dtype, x->shape, x->storage->device);
    }
    x_adv->requires_grad = true;
    for (int s = 0; s < a->steps; s++) {
        Tensor *logits = m->forward(m, tp, x_adv);
        if (keep_best && mark_fooled(logits, labels, fooled, fresh)) copy_rows(best, x_adv, fresh);
        ft_backward(tp, ft_cross_entropy(tp, logits, y));
        linf_step(x_adv, x, x_adv->grad, a->alpha, a->eps);
        ft_zero_(x_adv->grad);
        ft_tape_reset(tp);
    }
    x_adv->requires_grad = had_grad;
    int result = -1;
    if (keep_best) {   /* the last iterate, then every example's first misclassified iterate */
        ft_no_grad_begin(tp);
        mark_fooled(m->forward(m, tp, x_adv), labels, fooled, fresh);
        ft_no_grad_end(tp);
        ft_tape_reset(tp);
        bool *earlier = ft_xcalloc((size_t)n, sizeof *earlier);
        result = 0;
        for (int i = 0; i < n; i++) { earlier[i] = fooled[i] && !fresh[i]; result += fooled[i]; }
        copy_rows(x_adv, best, earlier);
        free(earlier);
        free(labels); free(fooled); free(fresh);
        ft_tensor_free(best);
    }
    tp->params_frozen = frozen;
    return result;
}
