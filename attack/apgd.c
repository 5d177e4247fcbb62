/* Auto-PGD (Croce & Hein, ICML 2020): PGD with momentum 0.75 whose step, 2 eps at first, halves
 * for an example at a checkpoint when its loss rose in fewer than rho = 75% of the steps since the
 * last one, or when the step was not halved last time and the best loss has not improved since;
 * it then restarts from its best point. The first checkpoint comes after 22% of the steps, the
 * next ones 3% of the steps sooner each time, never less than 6% apart (AutoAttack's schedule).
 *
 * Losses per example: cross entropy; DLR, -(Z_y - max_{i != y} Z_i) / (Z_pi1 - Z_pi3); and the
 * targeted DLR toward t, -(Z_y - Z_t) / (Z_pi1 - (Z_pi3 + Z_pi4) / 2) (pi: the logits in
 * decreasing order), each summed over the model's heads. APGD-T runs the targeted DLR toward each
 * of the clean logits' 2nd, 3rd, ... most likely classes in turn, on the examples not yet fooled.
 *
 * One deliberate difference from AutoAttack's and torchattacks' code: at the first checkpoint the
 * count of rising steps compares the first step's loss with the starting point's, where theirs
 * compares it with an unfilled row of zeros (a negative index).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"

ApgdAttack attack_apgd_defaults(ApgdLoss loss, double eps, int steps, Norm norm) {
    return (ApgdAttack){ .eps = eps, .steps = steps, .norm = norm, .loss = loss, .restarts = 1, .target_classes = 9, .rho = 0.75, .momentum = 0.75 };
}

/* One-hot [n, k] of host classes, on z's device. */
static Tensor *onehot(Tape *tp, const Tensor *z, const int32_t *cls) {
    int n = z->shape.d[0], k = z->shape.d[1];
    Tensor *h = ft_tensor_new(z->dtype, z->shape, FT_CPU);
    for (int i = 0; i < n; i++) ft_set(h, (int64_t)i * k + cls[i], 1.0);
    Tensor *t = ft_new_like(tp, z);
    ft_copy_(t, h);
    ft_tensor_free(h);
    return t;
}

/* Z's entries at the one-hot positions: [n] */
static Tensor *pick(Tape *tp, Tensor *z, Tensor *mask) { return ft_sum(tp, ft_mul(tp, z, mask), FT_DIM(1), false); }

/* The per-example loss of one head, to be maximised. */
static Tensor *head_loss(Tape *tp, Tensor *z, ApgdLoss kind, const int32_t *y, const int32_t *t) {
    int n = z->shape.d[0], k = z->shape.d[1];
    Tensor *my = onehot(tp, z, y);
    if (kind == APGD_CE) {   /* untargeted: CE(y); targeted (t given): -CE(t) */
        Tensor *logp = ft_log_softmax(tp, z, 1);
        return t ? pick(tp, logp, onehot(tp, z, t)) : ft_neg(tp, pick(tp, logp, my));
    }
    /* the classes in decreasing order of the logits, four deep (at least 4 classes: checked by the caller) */
    float *h = ft_xmalloc((size_t)n * k * sizeof *h);
    ft_to_floats(z, h, (int64_t)n * k);
    int32_t *ord = ft_xmalloc((size_t)4 * n * sizeof *ord);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < 4; r++) {
            int best = -1;
            for (int j = 0; j < k; j++) {
                bool used = false;
                for (int q = 0; q < r; q++) used |= ord[q * n + i] == j;
                if (!used && (best < 0 || h[i * k + j] > h[i * k + best])) best = j;
            }
            ord[r * n + i] = best;
        }
    Tensor *p1 = pick(tp, z, onehot(tp, z, ord)), *p3 = pick(tp, z, onehot(tp, z, ord + 2 * n));
    Tensor *zy = pick(tp, z, my), *num, *den;
    if (kind == APGD_DLR && !t) {   /* Z_y minus the largest other logit */
        int32_t *other = ft_xmalloc((size_t)n * sizeof *other);
        for (int i = 0; i < n; i++) other[i] = ord[i] == y[i] ? ord[n + i] : ord[i];
        num = ft_sub(tp, zy, pick(tp, z, onehot(tp, z, other)));
        den = ft_sub(tp, p1, p3);
        free(other);
    } else {                        /* toward t */
        Tensor *p4 = pick(tp, z, onehot(tp, z, ord + 3 * n));
        num = ft_sub(tp, zy, pick(tp, z, onehot(tp, z, t)));
        den = ft_sub(tp, p1, ft_affine(tp, ft_add(tp, p3, p4), 0.5, 0));
    }
    free(h);
    free(ord);
    return ft_neg(tp, ft_div(tp, num, ft_affine(tp, den, 1, 1e-12)));
}

/* The loss summed over the heads [n], and head 0's predictions into pred. */
static Tensor *apgd_loss(Model *m, Tape *tp, Tensor *x, ApgdLoss kind, const int32_t *y, const int32_t *t, int32_t *pred) {
    Tensor *z[MODEL_MAX_HEADS];
    int heads = model_heads(m, tp, x, z);
    model_predict(z[0], pred);
    Tensor *l = head_loss(tp, z[0], kind, y, t);
    for (int h = 1; h < heads; h++) l = ft_add(tp, l, head_loss(tp, z[h], kind, y, t));
    return l;
}

/* v projected onto the eps-ball around x0 and onto [0, 1]. */
static Tensor *project(Tape *tp, Tensor *v, Tensor *x0, double eps, Norm norm) {
    Tensor *d = ft_sub(tp, v, x0);
    if (norm == NORM_INF) d = ft_clamp(tp, d, -eps, eps);
    else {
        Tensor *len = attack_row_norms(tp, d);
        d = ft_mul(tp, ft_div(tp, d, ft_affine(tp, len, 1, 1e-12)), ft_clamp(tp, len, 0, eps));
    }
    return ft_clamp(tp, ft_add(tp, x0, d), 0, 1);
}

typedef struct {
    bool *fooled;        /* per example: an iterate was misclassified (untargeted) or reached t */
    int *halvings;       /* per example: how often its step was halved */
} RunOut;

/* One APGD run on batch x (n examples) with labels y, the loss toward targets t (NULL: away from
 * y), success when reaching `reach` (NULL: leaving y), from a random point on the eps-sphere.
 * x_adv: each example's first successful iterate, else its best-loss iterate. */
static void apgd_run(Model *m, Tape *tp, Tensor *x, const int32_t *y, const int32_t *t, const int32_t *reach, ApgdLoss kind,
                     const ApgdAttack *a, Rng *rng, Tensor *x_adv, RunOut *out, int *checkpoints) {
    int n = x->shape.d[0], steps = a->steps;
    Device dev = x->storage->device;
    Shape col = x->shape;
    for (int d = 1; d < col.ndim; d++) col.d[d] = 1;
    Tensor *xa = ft_tensor_new(x->dtype, x->shape, dev), *x_old = ft_tensor_new(x->dtype, x->shape, dev);
    Tensor *x_best = ft_tensor_new(x->dtype, x->shape, dev), *grad = ft_tensor_new(x->dtype, x->shape, dev);
    Tensor *grad_best = ft_tensor_new(x->dtype, x->shape, dev), *step = ft_tensor_new(x->dtype, col, dev);
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    float *loss = ft_xmalloc((size_t)(steps + 1) * n * sizeof *loss);   /* row 0: the start, row i + 1: step i */
    float *best = ft_xmalloc((size_t)n * sizeof *best), *best_at_check = ft_xmalloc((size_t)n * sizeof *best_at_check);
    bool *improved = ft_xmalloc((size_t)n * sizeof *improved), *halve = ft_xmalloc((size_t)n * sizeof *halve);
    bool *halved_last = ft_xmalloc((size_t)n * sizeof *halved_last), *fresh = ft_xmalloc((size_t)n * sizeof *fresh);
    {   /* a random point on the eps-sphere, clipped to [0, 1] */
        Tensor *r = ft_new_like(tp, x);
        if (a->norm == NORM_INF) {
            rng_uniform_(rng, r, -1, 1);
            unsigned rest = 0;
            for (int d = 1; d < x->shape.ndim; d++) rest |= FT_DIM(d);
            r = ft_div(tp, r, ft_max(tp, ft_abs(tp, r), rest, true, NULL));
        } else {
            rng_normal_(rng, r, 0, 1);
            r = ft_div(tp, r, ft_affine(tp, attack_row_norms(tp, r), 1, 1e-12));
        }
        ft_copy_(xa, ft_clamp(tp, ft_add(tp, x, ft_affine(tp, r, a->eps, 0)), 0, 1));
        ft_tape_reset(tp);
    }
    ft_fill_(step, 2 * a->eps);
    /* the gradient and loss at the start */
    xa->requires_grad = true;
    Tensor *l = apgd_loss(m, tp, xa, kind, y, t, pred);
    ft_backward(tp, ft_sum(tp, l, FT_ALL_DIMS, false));
    ft_to_floats(l, loss, n);
    ft_copy_(grad, xa->grad);
    ft_zero_(xa->grad);
    ft_tape_reset(tp);
    xa->requires_grad = false;
    ft_copy_(grad_best, grad);
    ft_copy_(x_best, xa);
    ft_copy_(x_adv, xa);
    ft_copy_(x_old, xa);
    for (int i = 0; i < n; i++) {
        out->fooled[i] = reach ? pred[i] == reach[i] : pred[i] != y[i];
        out->halvings[i] = 0;
        best[i] = best_at_check[i] = loss[i];
        halved_last[i] = true;   /* as AutoAttack: no "no improvement" halving at the first checkpoint */
    }
    int k = (int)(0.22 * steps) > 1 ? (int)(0.22 * steps) : 1, k_min = (int)(0.06 * steps) > 1 ? (int)(0.06 * steps) : 1;
    int decr = (int)(0.03 * steps) > 1 ? (int)(0.03 * steps) : 1, since = 0, n_checks = 0;
    for (int it = 0; it < steps; it++) {
        /* the step: along the gradient (its sign, or its direction under L2), then momentum */
        ft_no_grad_begin(tp);
        double mom = it > 0 ? a->momentum : 1.0;
        Tensor *dir = a->norm == NORM_INF ? ft_sign(tp, grad) : ft_div(tp, grad, ft_affine(tp, attack_row_norms(tp, grad), 1, 1e-12));
        Tensor *z1 = project(tp, ft_add(tp, xa, ft_mul(tp, dir, step)), x, a->eps, a->norm);
        Tensor *prev = ft_sub(tp, xa, x_old);
        ft_copy_(x_old, xa);
        Tensor *mix = ft_add(tp, xa, ft_add(tp, ft_affine(tp, ft_sub(tp, z1, xa), mom, 0), ft_affine(tp, prev, 1 - mom, 0)));
        ft_copy_(xa, project(tp, mix, x, a->eps, a->norm));
        ft_no_grad_end(tp);
        ft_tape_reset(tp);
        /* its loss and gradient */
        xa->requires_grad = true;
        l = apgd_loss(m, tp, xa, kind, y, t, pred);
        ft_backward(tp, ft_sum(tp, l, FT_ALL_DIMS, false));
        float *li = loss + (size_t)(it + 1) * n;
        ft_to_floats(l, li, n);
        ft_copy_(grad, xa->grad);
        ft_zero_(xa->grad);
        ft_tape_reset(tp);
        xa->requires_grad = false;
        bool any_fresh = false, any_better = false;
        for (int i = 0; i < n; i++) {
            fresh[i] = !out->fooled[i] && (reach ? pred[i] == reach[i] : pred[i] != y[i]);
            out->fooled[i] |= fresh[i];
            any_fresh |= fresh[i];
            improved[i] = li[i] > best[i];
            if (improved[i]) best[i] = li[i];
            any_better |= improved[i];
        }
        if (any_fresh) attack_copy_rows(x_adv, xa, fresh);
        if (any_better) { attack_copy_rows(x_best, xa, improved); attack_copy_rows(grad_best, grad, improved); }
        if (++since < k) continue;
        /* a checkpoint: halve the step of the examples that oscillate or stopped improving */
        if (checkpoints && n_checks < APGD_MAX_CHECKPOINTS) checkpoints[n_checks] = it;
        n_checks++;
        bool any = false;
        for (int i = 0; i < n; i++) {
            int rises = 0;
            for (int c = 0; c < k; c++) rises += loss[(size_t)(it + 1 - c) * n + i] > loss[(size_t)(it - c) * n + i];
            bool oscillates = rises <= k * a->rho, stuck = !halved_last[i] && best_at_check[i] >= best[i];
            halve[i] = oscillates || stuck;
            halved_last[i] = halve[i];
            best_at_check[i] = best[i];
            out->halvings[i] += halve[i];
            any |= halve[i];
        }
        if (any) {
            Tensor *h = ft_tensor_new(x->dtype, col, FT_CPU);
            ft_copy_(h, step);
            for (int i = 0; i < n; i++) if (halve[i]) ft_set(h, i, ft_get(h, i) / 2);
            ft_copy_(step, h);
            ft_tensor_free(h);
            attack_copy_rows(xa, x_best, halve);
            attack_copy_rows(grad, grad_best, halve);
        }
        since = 0;
        k = k - decr > k_min ? k - decr : k_min;
    }
    if (checkpoints) checkpoints[n_checks < APGD_MAX_CHECKPOINTS ? n_checks : APGD_MAX_CHECKPOINTS] = -1;
    for (int i = 0; i < n; i++) fresh[i] = !out->fooled[i];
    attack_copy_rows(x_adv, x_best, fresh);   /* not fooled: the best-loss point */
    Tensor *ts[] = { xa, x_old, x_best, grad, grad_best, step };
    for (int i = 0; i < 6; i++) ft_tensor_free(ts[i]);
    free(pred); free(loss); free(best); free(best_at_check); free(improved); free(halve); free(halved_last); free(fresh);
}

/* The clean logits' r-th most likely class of every example (r = 1: the most likely). */
static void ranked_class(Model *m, Tape *tp, Tensor *x, int r, int32_t *out) {
    int n = x->shape.d[0], k = m->num_classes;
    float *h = attack_clean_logits(m, tp, x);
    for (int i = 0; i < n; i++) {
        int c = 0;
        for (int j = 0; j < k; j++) {   /* the class with exactly r - 1 classes above it (ties: lower index first) */
            int above = 0;
            for (int q = 0; q < k; q++) above += h[i * k + q] > h[i * k + j] || (h[i * k + q] == h[i * k + j] && q < j);
            if (above == r - 1) { c = j; break; }
        }
        out[i] = c;
    }
    free(h);
}

int attack_apgd(Model *m, Tape *tp, Tensor *x, const Goal *g, const ApgdAttack *a, Rng *rng, Tensor *x_adv) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape), "attack: x_adv %s does not match x %s",
             FT_SHAPE_STR(x_adv->shape), FT_SHAPE_STR(x->shape));
    FT_CHECK(a->eps >= 0 && a->steps >= 1 && a->restarts >= 1 && a->rho > 0 && a->rho <= 1, "attack: APGD eps %g, steps %d, restarts %d, rho %g",
             a->eps, a->steps, a->restarts, a->rho);
    FT_CHECK(a->loss == APGD_CE || g->k >= 4, "attack: the DLR loss needs 4 classes or more, the model has %d", g->k);
    FT_CHECK(a->loss != APGD_DLR_TARGETED || !g->targets, "attack: APGD-T picks its own targets (its goal is untargeted)");
    bool frozen = tp->params_frozen;
    tp->params_frozen = true;
    ft_tape_reset(tp);
    ft_copy_(x_adv, x);
    int n = g->n;
    bool *done = ft_xcalloc((size_t)n, sizeof *done);
    int *idx = ft_xmalloc((size_t)n * sizeof *idx), *halv = ft_xmalloc((size_t)n * sizeof *halv);
    int32_t *ys = ft_xmalloc((size_t)n * sizeof *ys), *ts = ft_xmalloc((size_t)n * sizeof *ts), *ranked = NULL;
    bool *fool = ft_xmalloc((size_t)n * sizeof *fool);
    if (a->loss == APGD_DLR_TARGETED) ranked = ft_xmalloc((size_t)n * sizeof *ranked);
    int rounds = a->loss == APGD_DLR_TARGETED ? (a->target_classes < g->k - 1 ? a->target_classes : g->k - 1) : 1;
    int fooled = 0;
    Device dev = x->storage->device;
    {   /* examples whose clean image meets the goal already are not attacked (as AutoAttack) */
        int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
        attack_predict(m, tp, x, pred);
        for (int i = 0; i < n; i++) {
            fooled += done[i] = goal_met(g, i, pred[i]);
            if (a->trace_halvings) a->trace_halvings[i] = -1;
        }
        free(pred);
    }
    for (int round = 0; round < rounds; round++) {
        if (ranked) ranked_class(m, tp, x, round + 2, ranked);
        for (int rs = 0; rs < a->restarts; rs++) {
            int left = 0;   /* the examples not fooled yet, in rows 0..left of the sub-batch */
            for (int i = 0; i < n; i++) if (!done[i]) idx[left++] = i;
            if (left == 0) break;
            bool first = round == 0 && rs == 0, last = round == rounds - 1 && rs == a->restarts - 1;
            Shape s = x->shape;
            s.d[0] = left;
            Tensor *xs = ft_tensor_new(x->dtype, s, dev), *as = ft_tensor_new(x->dtype, s, dev);
            for (int j = 0; j < left; j++) {
                attack_copy_row(xs, j, x, idx[j]);
                ys[j] = g->labels[idx[j]];
                ts[j] = ranked ? ranked[idx[j]] : g->targets ? g->targets[idx[j]] : 0;
            }
            RunOut out = { fool, halv };
            apgd_run(m, tp, xs, ys, ranked || g->targets ? ts : NULL, g->targets ? ts : NULL,
                     a->loss == APGD_DLR_TARGETED ? APGD_DLR : a->loss, a, rng, as, &out,
                     first ? a->trace_checkpoints : NULL);
            for (int j = 0; j < left; j++) {
                if (first && a->trace_halvings) a->trace_halvings[idx[j]] = halv[j];
                if (fool[j]) { done[idx[j]] = true; fooled++; }
                if (fool[j] || last) attack_copy_row(x_adv, idx[j], as, j);   /* the rest: their best-loss point, at the end */
            }
            ft_tensor_free(xs); ft_tensor_free(as);
        }
    }
    free(done); free(idx); free(halv); free(ys); free(ts); free(fool); free(ranked);
    tp->params_frozen = frozen;
    return fooled;
}
