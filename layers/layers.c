#include "layers.h"

Conv2d conv2d_make(ParamSet *ps, const char *prefix, int in, int out, int k, int stride, int pad, bool bias) {
    Conv2d c = { params_add(ps, prefix, "weight", SHAPE(out, in, k, k)), NULL, stride, pad, 1 };
    if (bias) c.bias = params_add(ps, prefix, "bias", SHAPE(out));
    return c;
}

Tensor *conv2d_forward(Tape *tp, const Conv2d *c, Tensor *x) {
    return ft_conv2d(tp, x, c->weight, c->bias, c->stride, c->pad, c->dilation);
}

Linear linear_make(ParamSet *ps, const char *prefix, int in, int out, bool bias) {
    Linear l = { params_add(ps, prefix, "weight", SHAPE(out, in)), NULL };
    if (bias) l.bias = params_add(ps, prefix, "bias", SHAPE(out));
    return l;
}

Tensor *linear_forward(Tape *tp, const Linear *l, Tensor *x) { return ft_linear(tp, x, l->weight, l->bias); }

BatchNorm batchnorm_make(ParamSet *ps, const char *prefix, int channels) {
    BatchNorm bn = {
        params_add(ps, prefix, "weight", SHAPE(channels)),
        params_add(ps, prefix, "bias", SHAPE(channels)),
        params_add_buffer(ps, prefix, "running_mean", SHAPE(channels)),
        params_add_buffer(ps, prefix, "running_var", SHAPE(channels)),
        0.1, 1e-5,
    };
    ft_fill_(bn.weight, 1);
    ft_fill_(bn.running_var, 1);
    return bn;
}

BatchNormSync batchnorm_sync;

/* Per channel, the sums of d = x - K and d^2 over every process's batch, K the running mean (the
 * same in every process; it keeps the variance E[d^2] - E[d]^2 from cancelling), then the usual
 * normalisation and the running statistics' update (unbiased variance, as ft_batch_norm). */
static Tensor *batchnorm_synced(Tape *tp, const BatchNorm *bn, Tensor *x) {
    FT_INPUT(x);
    FT_ARG(x->shape.ndim >= 2, "batch_norm: expected [N, C, ...], got %s", FT_SHAPE_STR(x->shape));
    Shape cs = x->shape;   /* [1, C, 1, ...] */
    unsigned dims = FT_DIM(0);
    cs.d[0] = 1;
    for (int i = 2; i < cs.ndim; i++) { cs.d[i] = 1; dims |= FT_DIM(i); }
    int C = x->shape.d[1];
    double count = (double)x->numel / C * batchnorm_sync.ranks;
    Tensor *shift = bn->running_mean ? ft_reshape(tp, bn->running_mean, cs) : NULL;
    Tensor *d = shift ? ft_sub(tp, x, shift) : x;
    Tensor *sums = batchnorm_sync.sum(tp, ft_concat(tp, (Tensor *[]){ ft_sum(tp, d, dims, true), ft_sum(tp, ft_mul(tp, d, d), dims, true) },
                                                    2, 0));
    Tensor *md = ft_affine(tp, ft_slice_batch(tp, sums, 0, 1), 1 / count, 0);    /* E[d] */
    Tensor *var = ft_sub(tp, ft_affine(tp, ft_slice_batch(tp, sums, 1, 1), 1 / count, 0), ft_mul(tp, md, md));
    Tensor *y = ft_mul(tp, ft_sub(tp, d, md), ft_pow(tp, ft_affine(tp, var, 1, bn->eps), -0.5));
    if (bn->weight) y = ft_mul(tp, y, ft_reshape(tp, bn->weight, cs));
    if (bn->bias) y = ft_add(tp, y, ft_reshape(tp, bn->bias, cs));
    if (y && bn->running_mean && bn->running_var) {
        ft_no_grad_begin(tp);
        double m = bn->momentum;
        Tensor *rm = ft_add(tp, shift, ft_affine(tp, md, m, 0));   /* (1 - m) K + m (K + E[d]) */
        Tensor *rv = ft_add(tp, ft_affine(tp, ft_reshape(tp, bn->running_var, cs), 1 - m, 0),
                            ft_affine(tp, var, m * count / (count > 1 ? count - 1 : 1), 0));
        ft_copy_(bn->running_mean, rm);
        ft_copy_(bn->running_var, rv);
        ft_no_grad_end(tp);
    }
    return y;
}

Tensor *batchnorm_forward(Tape *tp, const BatchNorm *bn, Tensor *x, bool training) {
    if (training && batchnorm_sync.sum) return batchnorm_synced(tp, bn, x);
    return ft_batch_norm(tp, x, bn->weight, bn->bias, bn->running_mean, bn->running_var, training,
                         bn->momentum, bn->eps);
}

Tensor *batchnorm_relu_forward(Tape *tp, const BatchNorm *bn, Tensor *x, bool training) {
    if (training && batchnorm_sync.sum) return ft_relu(tp, batchnorm_synced(tp, bn, x));
    return ft_batch_norm_relu(tp, x, bn->weight, bn->bias, bn->running_mean, bn->running_var, training,
                              bn->momentum, bn->eps);
}
