/* Feature-space attacks (feature.h). */
#include "feature.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lbfgsb.h"

OdfaAttack attack_odfa_defaults(const char *layer, double eps, bool multi_scale) {
    double e = 255 * eps;
    long steps = lround(fmin(1.25 * e, e + 4));
    return (OdfaAttack){ layer, eps, 1.0 / 255, steps < 1 ? 1 : (int)steps, multi_scale };   /* eps 0: one (null) step */
}

/* layer(x) flattened and divided by its L2 norm per row; NULL for an unknown layer. */
static Tensor *unit_feature(Model *m, Tape *tp, Tensor *x, const char *layer) {
    Tensor *f = model_layer(m, tp, x, layer);
    if (!f) return NULL;
    f = ft_flatten(tp, f);
    return ft_div(tp, f, ft_affine(tp, attack_row_norms(tp, f), 1, 1e-12));
}

/* x at scale s (bilinear), back up to the model's input size when it has one. */
static Tensor *rescale(Model *m, Tape *tp, Tensor *x, double s) {
    if (s == 1) return x;
    int h = x->shape.d[2], w = x->shape.d[3];
    int sh = (int)floor(h * s), sw = (int)floor(w * s);   /* F.interpolate(scale_factor=s)'s size */
    if (sh < 1) sh = 1;
    if (sw < 1) sw = 1;
    Tensor *y = ft_upsample_bilinear(tp, x, sh, sw, false);
    return m->height ? ft_upsample_bilinear(tp, y, h, w, false) : y;
}

Tensor *odfa_target(Model *m, Tape *tp, Tensor *x, const char *layer) {
    ft_no_grad_begin(tp);
    Tensor *f0 = unit_feature(m, tp, x, layer), *t = NULL;
    if (f0) {   /* |f + f0|^2 is |f - (-f0)|^2: the target is kept as +f0 */
        t = ft_tensor_new(f0->dtype, f0->shape, f0->storage->device);
        ft_copy_(t, f0);
    }
    ft_no_grad_end(tp);
    return t;
}

Tensor *odfa_loss(Model *m, Tape *tp, Tensor *xa, Tensor *target, const OdfaAttack *a) {
    static const double scales[3] = { 1, 0.70710678118654752, 0.5 };
    int n_scales = a->multi_scale ? 3 : 1;
    Tensor *loss = NULL;
    for (int k = 0; k < n_scales; k++) {
        Tensor *f = unit_feature(m, tp, rescale(m, tp, xa, scales[k]), a->layer);
        if (!f) return NULL;
        Tensor *d = ft_add(tp, f, target);
        Tensor *l = ft_sum(tp, ft_mul(tp, d, d), FT_ALL_DIMS, false);
        loss = loss ? ft_add(tp, loss, l) : l;
    }
    return ft_affine(tp, loss, 1.0 / n_scales, 0);
}

int attack_odfa(Model *m, Tape *tp, Tensor *x, const OdfaAttack *a, Tensor *x_adv, double *trace_loss) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape) && x->shape.ndim == 4, "odfa: x_adv %s does not match x %s",
             FT_SHAPE_STR(x_adv->shape), FT_SHAPE_STR(x->shape));
    FT_CHECK(a->eps >= 0 && a->alpha >= 0 && a->steps >= 1, "odfa: eps %g, alpha %g, steps %d", a->eps, a->alpha, a->steps);
    bool frozen = tp->params_frozen, had_grad = x_adv->requires_grad;
    tp->params_frozen = true;
    ft_tape_reset(tp);
    Tensor *target = odfa_target(m, tp, x, a->layer);
    ft_tape_reset(tp);
    if (!target) { tp->params_frozen = frozen; return -1; }
    ft_copy_(x_adv, x);
    x_adv->requires_grad = true;
    for (int s = 0; s < a->steps; s++) {
        Tensor *loss = odfa_loss(m, tp, x_adv, target, a);
        if (trace_loss) trace_loss[s] = ft_item(loss);
        ft_backward(tp, loss);
        attack_linf_step(x_adv, x, x_adv->grad, -a->alpha, a->eps);   /* descend */
        ft_zero_(x_adv->grad);
        ft_tape_reset(tp);
    }
    x_adv->requires_grad = had_grad;
    tp->params_frozen = frozen;
    ft_tensor_free(target);
    return 0;
}

FeatureAdvAttack attack_feature_adv_defaults(const char *layer) { return (FeatureAdvAttack){ layer, 10.0 / 255, 10, 500, 1e7, 1e-5 }; }

/* rows idx[0..k) of host (float32 [n, per]) gathered into a tensor of shape s (its first dimension
 * made k), type dt, on dev */
static Tensor *gather_rows(Shape s, DType dt, Device dev, const float *host, const int *idx, int k, int64_t per) {
    s.d[0] = k;
    Tensor *t = ft_tensor_new(dt, s, dev);
    float *buf = ft_xmalloc((size_t)k * per * sizeof *buf);
    for (int r = 0; r < k; r++) memcpy(buf + r * per, host + idx[r] * per, (size_t)per * sizeof *buf);
    ft_from_floats(t, buf, (int64_t)k * per);
    free(buf);
    return t;
}

int attack_feature_adv(Model *m, Tape *tp, Tensor *src, Tensor *guide, const FeatureAdvAttack *a, Tensor *x_adv,
                       FeatureAdvResult *res) {
    FT_CHECK(ft_shape_eq(src->shape, guide->shape) && ft_shape_eq(src->shape, x_adv->shape) && src->shape.ndim == 4,
             "feature adversaries: source %s, guide %s, output %s", FT_SHAPE_STR(src->shape), FT_SHAPE_STR(guide->shape),
             FT_SHAPE_STR(x_adv->shape));
    FT_CHECK(a->delta > 0 && a->memory >= 1 && a->max_iters >= 1, "feature adversaries: delta %g, memory %d, iterations %d", a->delta,
             a->memory, a->max_iters);
    int n = src->shape.d[0];
    int64_t per = src->numel / n;
    bool frozen = tp->params_frozen;
    tp->params_frozen = true;
    ft_tape_reset(tp);
    /* the guides' features, once */
    ft_no_grad_begin(tp);
    Tensor *gf = model_layer(m, tp, guide, a->layer);
    ft_no_grad_end(tp);
    if (!gf) { ft_tape_reset(tp); tp->params_frozen = frozen; return -1; }
    int64_t dim = gf->numel / n;
    Shape fshape = gf->shape;   /* gf lives on the tape, released below */
    float *target = ft_xmalloc((size_t)gf->numel * sizeof *target), *xs = ft_xmalloc((size_t)src->numel * sizeof *xs);
    ft_to_floats(gf, target, gf->numel);
    ft_to_floats(src, xs, src->numel);
    ft_tape_reset(tp);
    Lbfgsb *s = ft_xcalloc((size_t)n, sizeof *s);
    double *x0 = ft_xmalloc((size_t)per * sizeof *x0), *lo = ft_xmalloc((size_t)per * sizeof *lo), *hi = ft_xmalloc((size_t)per * sizeof *hi);
    int *want = ft_xmalloc((size_t)n * sizeof *want), k = 0;
    for (int i = 0; i < n; i++) {
        for (int64_t j = 0; j < per; j++) {
            double v = xs[i * per + j];
            x0[j] = v;
            lo[j] = fmax(0, v - a->delta);
            hi[j] = fmin(1, v + a->delta);
        }
        lbfgsb_init(&s[i], (int)per, a->memory, x0, lo, hi, a->factr, a->pgtol);
        if (lbfgsb_next(&s[i], a->max_iters)) want[k++] = i;
    }
    float *cur = ft_xmalloc((size_t)src->numel * sizeof *cur), *g = ft_xmalloc((size_t)n * per * sizeof *g);
    float *feat = ft_xmalloc((size_t)n * dim * sizeof *feat);
    while (k > 0) {   /* one batched evaluation of the images whose solvers asked for one */
        for (int r = 0; r < k; r++)
            for (int64_t j = 0; j < per; j++) cur[want[r] * per + j] = (float)s[want[r]].x[j];
        Device dev = src->storage->device;
        Tensor *x = gather_rows(src->shape, src->dtype, dev, cur, want, k, per);
        Tensor *t = gather_rows(fshape, src->dtype, dev, target, want, k, dim);
        x->requires_grad = true;
        Tensor *d = ft_sub(tp, ft_flatten(tp, model_layer(m, tp, x, a->layer)), ft_flatten(tp, t));
        Tensor *sq = ft_mul(tp, d, d);
        ft_backward(tp, ft_sum(tp, sq, FT_ALL_DIMS, false));
        ft_to_floats(ft_sum(tp, sq, FT_DIM(1), false), feat, k);   /* per-image losses */
        ft_to_floats(x->grad, g, (int64_t)k * per);
        ft_tape_reset(tp);
        ft_tensor_free(x);
        ft_tensor_free(t);
        int next = 0;
        for (int r = 0; r < k; r++) {
            Lbfgsb *q = &s[want[r]];
            q->f = feat[r];
            for (int64_t j = 0; j < per; j++) q->g[j] = g[r * per + j];
            if (lbfgsb_next(q, a->max_iters)) want[next++] = want[r];
        }
        k = next;
    }
    for (int i = 0; i < n; i++) {
        for (int64_t j = 0; j < per; j++) cur[i * per + j] = (float)s[i].x[j];
        if (res) {
            res[i] = (FeatureAdvResult){ s[i].iters, s[i].evals, "" };
            snprintf(res[i].status, sizeof res[i].status, "%s", s[i].status);
        }
        lbfgsb_free(&s[i]);
    }
    ft_from_floats(x_adv, cur, x_adv->numel);
    free(s); free(x0); free(lo); free(hi); free(want); free(cur); free(g); free(feat); free(target); free(xs);
    tp->params_frozen = frozen;
    return 0;
}
