/* Feature-space attacks (feature.h). */
#include "feature.h"
#include <math.h>
#include <stdlib.h>

OdfaAttack attack_odfa_defaults(const char *layer, double eps, bool multi_scale) {
    double e = 255 * eps;
    return (OdfaAttack){ layer, eps, 1.0 / 255, (int)lround(fmin(1.25 * e, e + 4)), multi_scale };
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
