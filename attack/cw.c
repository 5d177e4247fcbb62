/* The optimisation attacks: C&W-L2 (Carlini & Wagner, S&P 2017) and EAD (Chen et al., AAAI 2018).
 *
 * Both minimise  dist(x, x0) + c * f(x)  with f the logit margin of the goal (goal_margin, summed
 * over the model's heads), for a constant c that every example searches for itself: after each
 * run of `steps` iterations, c halves the gap to the smallest c that succeeded (or grows tenfold
 * while none has), as the authors' code does. Each example keeps, over all runs, the successful
 * iterate with the smallest distance (success judged with the margin kappa).
 *
 * C&W works in tanh space, x = (tanh(w) + 1) / 2, with w0 = atanh((2 x0 - 1)(1 - 1e-6)) (the
 * authors' box scaling: pixels at exactly 0 or 1 can move), dist = |x - x0|_2^2, Adam on w.
 * EAD works on pixels: FISTA on c f(y) + |y - x0|_2^2, then the shrinkage-thresholding of beta
 * |x - x0|_1 and a projection onto [0, 1], the step size decaying as lr sqrt(1 - k / steps); the
 * kept example is the one with the smallest elastic-net distance (rule EN) or L1 distance (L1).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"

OptAttack attack_cw_defaults(void) {
    return (OptAttack){ .kappa = 0, .c0 = 1e-3, .lr = 1e-2, .steps = 1000, .search_steps = 9, .abort_early = true };
}

OptAttack attack_ead_defaults(void) {
    OptAttack a = attack_cw_defaults();
    a.beta = 1e-3;
    a.rule = EAD_RULE_EN;
    return a;
}

/* The per-example binary search over c and the best iterates found. */
typedef struct {
    int n;
    double *c, *lo, *hi, *best_run, *best;
    bool *found_run, *found, *keep;
    Tensor *c_dev;                 /* c on the model's device, for the loss */
} Search;

static void search_init(Search *s, int n, double c0, const Tensor *like) {
    *s = (Search){ .n = n };
    double **d[] = { &s->c, &s->lo, &s->hi, &s->best_run, &s->best };
    for (int i = 0; i < 5; i++) *d[i] = ft_xmalloc((size_t)n * sizeof(double));
    s->found_run = ft_xcalloc((size_t)n, sizeof *s->found_run);
    s->found = ft_xcalloc((size_t)n, sizeof *s->found);
    s->keep = ft_xcalloc((size_t)n, sizeof *s->keep);
    for (int i = 0; i < n; i++) { s->c[i] = c0; s->lo[i] = 0; s->hi[i] = 1e10; s->best[i] = INFINITY; }
    s->c_dev = ft_tensor_new(like->dtype, SHAPE(n), like->storage->device);
}

static void search_run_begin(Search *s) {
    float *c = ft_xmalloc((size_t)s->n * sizeof *c);
    for (int i = 0; i < s->n; i++) { s->best_run[i] = INFINITY; s->found_run[i] = false; c[i] = (float)s->c[i]; }
    ft_from_floats(s->c_dev, c, s->n);
    free(c);
}

/* One iterate's distances and head-0 logits (host): marks in s->keep the examples for which it
 * is the best successful iterate so far; returns whether any is. */
static bool search_observe(Search *s, const Goal *g, const float *dist, const float *z, double kappa) {
    bool any = false;
    for (int i = 0; i < s->n; i++) {
        s->keep[i] = false;
        if (!goal_met_by(g, i, z + (size_t)i * g->k, kappa)) continue;
        if (dist[i] < s->best_run[i]) { s->best_run[i] = dist[i]; s->found_run[i] = true; }
        if (dist[i] < s->best[i]) { s->best[i] = dist[i]; s->found[i] = s->keep[i] = any = true; }
    }
    return any;
}

static void search_run_end(Search *s) {
    for (int i = 0; i < s->n; i++) {
        if (s->found_run[i]) s->hi[i] = fmin(s->hi[i], s->c[i]);
        else s->lo[i] = fmax(s->lo[i], s->c[i]);
        s->c[i] = s->hi[i] < 1e9 ? (s->lo[i] + s->hi[i]) / 2 : s->c[i] * 10;
    }
}

static int search_finish(Search *s, bool *success) {
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        k += s->found[i];
        if (success) success[i] = s->found[i];
    }
    free(s->c); free(s->lo); free(s->hi); free(s->best_run); free(s->best);
    free(s->found_run); free(s->found); free(s->keep);
    ft_tensor_free(s->c_dev);
    return k;
}

/* Per-example sums of x [n, ...] -> [n]. */
static Tensor *row_sums(Tape *tp, Tensor *x) {
    unsigned rest = 0;
    for (int d = 1; d < x->shape.ndim; d++) rest |= FT_DIM(d);
    return ft_sum(tp, x, rest, false);
}

/* Checks the arguments and starts an attack: parameters frozen (returns their old state), the
 * tape reset, x_adv = x. */
static bool begin_attack(Tape *tp, Tensor *x, Tensor *x_adv, const OptAttack *a) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape), "attack: x_adv %s does not match x %s",
             FT_SHAPE_STR(x_adv->shape), FT_SHAPE_STR(x->shape));
    FT_CHECK(x->dtype == x_adv->dtype, "attack: x_adv is %s, x %s", ft_dtype_name(x_adv->dtype), ft_dtype_name(x->dtype));
    FT_CHECK(a->steps >= 1 && a->search_steps >= 1 && a->kappa >= 0 && a->beta >= 0 && a->c0 > 0 && a->lr > 0,
             "attack: steps %d, search steps %d, kappa %g, beta %g, c %g, lr %g", a->steps, a->search_steps, a->kappa,
             a->beta, a->c0, a->lr);
    bool frozen = tp->params_frozen;
    tp->params_frozen = true;
    ft_tape_reset(tp);
    ft_copy_(x_adv, x);
    return frozen;
}

/* Whether the early abort stops this run: every tenth of the steps, the loss must have fallen by
 * the factor since the last check (prev: the loss at the last check). */
static bool abort_now(const OptAttack *a, int it, double loss, double factor, double *prev) {
    if (!a->abort_early || it % (a->steps / 10 > 0 ? a->steps / 10 : 1) != 0) return false;
    if (loss > *prev * factor) return true;
    *prev = loss;
    return false;
}

/* w0 = atanh((2 x - 1)(1 - 1e-6)), computed on the host. */
static void tanh_space(const Tensor *x, Tensor *w0) {
    Tensor *h = ft_tensor_new(x->dtype, x->shape, FT_CPU);
    ft_copy_(h, x);
    for (int64_t i = 0; i < h->numel; i++) ft_set(h, i, atanh((2.0 * ft_get(h, i) - 1.0) * (1 - 1e-6)));
    ft_copy_(w0, h);
    ft_tensor_free(h);
}

/* Adam (PyTorch's and the authors': betas 0.9 and 0.999, eps 1e-8) on w from its gradient, with
 * tensor ops so that it runs in any float type on any device: m, v its moments, t the step (1-based). */
static void adam_step(Tape *tp, Tensor *w, Tensor *m, Tensor *v, double lr, int t) {
    const double b1 = 0.9, b2 = 0.999;
    Tensor *g = w->grad;
    ft_no_grad_begin(tp);
    ft_copy_(m, ft_add(tp, ft_affine(tp, m, b1, 0), ft_affine(tp, g, 1 - b1, 0)));
    ft_copy_(v, ft_add(tp, ft_affine(tp, v, b2, 0), ft_affine(tp, ft_mul(tp, g, g), 1 - b2, 0)));
    Tensor *denom = ft_affine(tp, ft_sqrt(tp, ft_affine(tp, v, 1 / (1 - pow(b2, t)), 0)), 1, 1e-8);
    ft_copy_(w, ft_sub(tp, w, ft_affine(tp, ft_div(tp, m, denom), lr / (1 - pow(b1, t)), 0)));
    ft_no_grad_end(tp);
}

int attack_cw(Model *m, Tape *tp, Tensor *x, const Goal *g, const OptAttack *a, Tensor *x_adv, bool *success) {
    bool frozen = begin_attack(tp, x, x_adv, a);
    int n = x->shape.d[0];
    Device dev = x->storage->device;
    Tensor *w0 = ft_tensor_new(x->dtype, x->shape, dev), *w = ft_tensor_new(x->dtype, x->shape, dev);
    Tensor *am = ft_tensor_new(x->dtype, x->shape, dev), *av = ft_tensor_new(x->dtype, x->shape, dev);
    tanh_space(x, w0);
    float *l2 = ft_xmalloc((size_t)n * sizeof *l2), *z = ft_xmalloc((size_t)n * g->k * sizeof *z);
    Search s;
    search_init(&s, n, a->c0, x);
    w->requires_grad = true;
    for (int run = 0; run < a->search_steps; run++) {
        search_run_begin(&s);
        ft_copy_(w, w0);
        ft_zero_(am);
        ft_zero_(av);
        double prev = 1e6;
        for (int it = 0; it < a->steps; it++) {
            Tensor *logits, *xa = ft_affine(tp, ft_tanh(tp, w), 0.5, 0.5);
            Tensor *f = goal_margin_heads(m, tp, xa, g, a->kappa, &logits);
            Tensor *d = ft_sub(tp, xa, x), *dist = row_sums(tp, ft_mul(tp, d, d));
            Tensor *loss = ft_add(tp, ft_sum(tp, dist, FT_ALL_DIMS, false), ft_sum(tp, ft_mul(tp, s.c_dev, f), FT_ALL_DIMS, false));
            ft_backward(tp, loss);
            if (run == 0 && a->trace_loss) a->trace_loss[it] = ft_item(loss);
            if (abort_now(a, it, ft_item(loss), 0.9999, &prev)) { ft_tape_reset(tp); break; }   /* as the authors': before judging */
            ft_to_floats(dist, l2, n);
            ft_to_floats(logits, z, (int64_t)n * g->k);
            if (search_observe(&s, g, l2, z, a->kappa)) attack_copy_rows(x_adv, xa, s.keep);
            adam_step(tp, w, am, av, a->lr, it + 1);
            ft_zero_(w->grad);
            ft_tape_reset(tp);
            if (run == 0 && a->trace_last) {
                ft_no_grad_begin(tp);
                ft_copy_(a->trace_last, ft_affine(tp, ft_tanh(tp, w), 0.5, 0.5));
                ft_no_grad_end(tp);
                ft_tape_reset(tp);
            }
        }
        search_run_end(&s);
    }
    free(l2); free(z);
    ft_tensor_free(w0); ft_tensor_free(w); ft_tensor_free(am); ft_tensor_free(av);
    tp->params_frozen = frozen;
    return search_finish(&s, success);
}

/* EAD's shrinkage-thresholding and projection: x0 + S_beta(y - x0), clipped to [0, 1]. */
static Tensor *shrink(Tape *tp, Tensor *y, Tensor *x0, double beta) {
    Tensor *d = ft_sub(tp, y, x0);
    Tensor *mag = ft_relu(tp, ft_affine(tp, ft_abs(tp, d), 1, -beta));
    return ft_clamp(tp, ft_add(tp, x0, ft_mul(tp, ft_sign(tp, d), mag)), 0, 1);
}

int attack_ead(Model *m, Tape *tp, Tensor *x, const Goal *g, const OptAttack *a, Tensor *x_adv, bool *success) {
    bool frozen = begin_attack(tp, x, x_adv, a);
    int n = x->shape.d[0];
    Device dev = x->storage->device;
    Tensor *xk = ft_tensor_new(x->dtype, x->shape, dev), *yk = ft_tensor_new(x->dtype, x->shape, dev);
    float *dist = ft_xmalloc((size_t)n * sizeof *dist), *l1 = ft_xmalloc((size_t)n * sizeof *l1);
    float *z = ft_xmalloc((size_t)n * g->k * sizeof *z);
    Search s;
    search_init(&s, n, a->c0, x);
    for (int run = 0; run < a->search_steps; run++) {
        search_run_begin(&s);
        ft_copy_(xk, x);
        ft_copy_(yk, x);
        double prev = 1e6;
        for (int it = 0; it < a->steps; it++) {
            /* the gradient step on the smooth part at the slack point y */
            yk->requires_grad = true;
            Tensor *f = goal_margin_heads(m, tp, yk, g, a->kappa, NULL), *d = ft_sub(tp, yk, x);
            Tensor *loss = ft_add(tp, ft_sum(tp, ft_mul(tp, d, d), FT_ALL_DIMS, false), ft_sum(tp, ft_mul(tp, s.c_dev, f), FT_ALL_DIMS, false));
            ft_backward(tp, loss);
            yk->requires_grad = false;
            double lr = a->lr * sqrt(1.0 - (double)it / a->steps), zt = (it + 1.0) / (it + 4.0);
            ft_no_grad_begin(tp);
            Tensor *xn = shrink(tp, ft_sub(tp, yk, ft_affine(tp, yk->grad, lr, 0)), x, a->beta);
            ft_copy_(yk, ft_add(tp, xn, ft_affine(tp, ft_sub(tp, xn, xk), zt, 0)));   /* FISTA's momentum */
            ft_copy_(xk, xn);
            ft_zero_(yk->grad);
            /* the new iterate, judged with the whole objective */
            Tensor *logits[MODEL_MAX_HEADS];
            Tensor *fx = goal_margin_sum(tp, logits, model_heads(m, tp, xk, logits), g, a->kappa);
            Tensor *dx = ft_sub(tp, xk, x);
            Tensor *l2x = row_sums(tp, ft_mul(tp, dx, dx)), *l1x = row_sums(tp, ft_abs(tp, dx));
            double lv = ft_item(ft_add(tp, ft_sum(tp, ft_add(tp, l2x, ft_affine(tp, l1x, a->beta, 0)), FT_ALL_DIMS, false),
                                       ft_sum(tp, ft_mul(tp, s.c_dev, fx), FT_ALL_DIMS, false)));
            ft_to_floats(l2x, dist, n);
            ft_to_floats(l1x, l1, n);
            ft_to_floats(logits[0], z, (int64_t)n * g->k);
            ft_no_grad_end(tp);
            for (int i = 0; i < n; i++) dist[i] = a->rule == EAD_RULE_L1 ? l1[i] : dist[i] + (float)a->beta * l1[i];
            if (run == 0 && a->trace_loss) a->trace_loss[it] = lv;
            if (run == 0 && a->trace_last) ft_copy_(a->trace_last, xk);
            bool stop = abort_now(a, it, lv, 0.999999, &prev);
            if (!stop && search_observe(&s, g, dist, z, a->kappa)) attack_copy_rows(x_adv, xk, s.keep);
            ft_tape_reset(tp);
            if (stop) break;
        }
        search_run_end(&s);
    }
    free(dist); free(l1); free(z);
    ft_tensor_free(xk); ft_tensor_free(yk);
    tp->params_frozen = frozen;
    return search_finish(&s, success);
}
