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

Tensor *batchnorm_forward(Tape *tp, const BatchNorm *bn, Tensor *x, bool training) {
    return ft_batch_norm(tp, x, bn->weight, bn->bias, bn->running_mean, bn->running_var, training,
                         bn->momentum, bn->eps);
}
