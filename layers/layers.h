/* Layers that own parameters. Each registers its tensors in a ParamSet under torchvision's names
 * (prefix.weight, prefix.bias, prefix.running_mean, ...) and has a forward built from ops; the
 * backward comes from the ops' own. */
#ifndef FINCH_LAYERS_H
#define FINCH_LAYERS_H

#include "params.h"
#include "init.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { Tensor *weight, *bias; int stride, pad, dilation; } Conv2d;
typedef struct { Tensor *weight, *bias; } Linear;
typedef struct { Tensor *weight, *bias, *running_mean, *running_var; double momentum, eps; } BatchNorm;

/* weight [out, in, k, k], bias [out] when `bias` */
Conv2d conv2d_make(ParamSet *ps, const char *prefix, int in, int out, int k, int stride, int pad, bool bias);
Tensor *conv2d_forward(Tape *tp, const Conv2d *c, Tensor *x);

/* weight [out, in], bias [out] */
Linear linear_make(ParamSet *ps, const char *prefix, int in, int out, bool bias);
Tensor *linear_forward(Tape *tp, const Linear *l, Tensor *x);

/* weight (gamma) 1, bias (beta) 0, running_mean 0, running_var 1; momentum 0.1, eps 1e-5 */
BatchNorm batchnorm_make(ParamSet *ps, const char *prefix, int channels);
Tensor *batchnorm_forward(Tape *tp, const BatchNorm *bn, Tensor *x, bool training);
/* relu(batchnorm_forward(...)), fused into one op (ft_batch_norm_relu) unless the batch norm is
 * synchronised across processes */
Tensor *batchnorm_relu_forward(Tape *tp, const BatchNorm *bn, Tensor *x, bool training);
/* Synchronised batch norm (data-parallel training, dist/sync_bn.h): when `sum` is set, batch norm
 * in training mode normalises by the statistics of the batches of all `ranks` processes (of equal
 * size), summed across them on the tape by `sum`, whose backward sums the gradient likewise.
 * Unset (the default): each process's own batch, as PyTorch's DDP. */
typedef struct { Tensor *(*sum)(Tape *tp, Tensor *x); int ranks; } BatchNormSync;
extern BatchNormSync batchnorm_sync;

#ifdef __cplusplus
}
#endif

#endif
