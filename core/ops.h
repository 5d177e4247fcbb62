/* finch ops: every differentiable operation, forward and backward.
 *
 * Each op takes the Tape that owns its output (and records the node when a gradient is wanted),
 * computes at once, and returns a tensor in the tape's arena. Shapes are given per op below and
 * at the top of each implementation file. `dims` arguments are bit masks: FT_DIM(1) | FT_DIM(2).
 */
#ifndef FINCH_OPS_H
#define FINCH_OPS_H

#include "autograd.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FT_DIM(i) (1u << (i))
#define FT_ALL_DIMS 0xffffffffu

/* ops_elementwise.c: any shapes that broadcast (NumPy rules) -> the broadcast shape */
Tensor *ft_add(Tape *tp, Tensor *a, Tensor *b);
Tensor *ft_sub(Tape *tp, Tensor *a, Tensor *b);
Tensor *ft_mul(Tape *tp, Tensor *a, Tensor *b);
Tensor *ft_div(Tape *tp, Tensor *a, Tensor *b);
/* x -> same shape */
Tensor *ft_neg(Tape *tp, Tensor *x);
Tensor *ft_exp(Tape *tp, Tensor *x);
Tensor *ft_log(Tape *tp, Tensor *x);
Tensor *ft_sqrt(Tape *tp, Tensor *x);
Tensor *ft_abs(Tape *tp, Tensor *x);
Tensor *ft_sign(Tape *tp, Tensor *x);
Tensor *ft_relu(Tape *tp, Tensor *x);
/* ft_relu(ft_add(a, b)) in one op, bit-equal to the pair, for a and b of one shape (a residual
 * block's end): one tensor on the tape instead of two */
Tensor *ft_add_relu(Tape *tp, Tensor *a, Tensor *b);
Tensor *ft_sigmoid(Tape *tp, Tensor *x);
Tensor *ft_tanh(Tape *tp, Tensor *x);
Tensor *ft_pow(Tape *tp, Tensor *x, double p);
Tensor *ft_clamp(Tape *tp, Tensor *x, double lo, double hi);
Tensor *ft_affine(Tape *tp, Tensor *x, double scale, double shift);   /* scale * x + shift */

/* ops_reduce.c: reduce over the dims in the mask; keepdim keeps them as size 1.
 * max/min: if arg is given, it receives an int32 tensor of the output's shape holding each
 * winner's row-major index within the reduced dims (its position along the dim, for one dim). */
Tensor *ft_sum(Tape *tp, Tensor *x, unsigned dims, bool keepdim);
Tensor *ft_mean(Tape *tp, Tensor *x, unsigned dims, bool keepdim);
Tensor *ft_max(Tape *tp, Tensor *x, unsigned dims, bool keepdim, Tensor **arg);
Tensor *ft_min(Tape *tp, Tensor *x, unsigned dims, bool keepdim, Tensor **arg);
/* softmax over one dim (negative counts from the end) -> same shape */
Tensor *ft_softmax(Tape *tp, Tensor *x, int dim);
Tensor *ft_log_softmax(Tape *tp, Tensor *x, int dim);

/* ops_loss.c: logits [N, C], labels int32 [N] in 0..C-1 -> [] mean over the batch */
Tensor *ft_cross_entropy(Tape *tp, Tensor *logits, Tensor *labels);
/* a, b same shape -> [] mean of squared differences */
Tensor *ft_mse(Tape *tp, Tensor *a, Tensor *b);

/* ops_linalg.c: a [..., M, K] @ b [..., K, N] -> [..., M, N]; b may also be [K, N] (shared) */
Tensor *ft_matmul(Tape *tp, Tensor *a, Tensor *b);
/* x [N, in], w [out, in], b [out] or NULL -> [N, out] (PyTorch's layout) */
Tensor *ft_linear(Tape *tp, Tensor *x, Tensor *w, Tensor *b);

/* ops_conv.c: x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL -> [N, O, OH, OW] */
Tensor *ft_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int stride, int pad, int dilation);

/* ops_pool.c: x [N, C, H, W] -> [N, C, OH, OW], OH = (H + 2 pad - k) / stride + 1 */
Tensor *ft_max_pool2d(Tape *tp, Tensor *x, int k, int stride, int pad);
Tensor *ft_avg_pool2d(Tape *tp, Tensor *x, int k, int stride, int pad, bool count_include_pad);
Tensor *ft_adaptive_avg_pool2d(Tape *tp, Tensor *x, int oh, int ow);

/* ops_norm.c: x [N, C, ...]; gamma, beta, running_mean, running_var [C] (gamma/beta may be
 * NULL). Training uses and returns batch statistics and updates the running ones (when given). */
Tensor *ft_batch_norm(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                      Tensor *running_var, bool training, double momentum, double eps);
/* ft_relu(ft_batch_norm(...)) in one op, bit-equal to the pair: one pass over the data and one
 * tensor on the tape instead of two (ResNet's, VGG's and DenseNet's BN -> ReLU pairs) */
Tensor *ft_batch_norm_relu(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                           Tensor *running_var, bool training, double momentum, double eps);
/* zeroes each element with probability p and scales the rest by 1/(1-p); identity in eval */
Tensor *ft_dropout(Tape *tp, Tensor *x, double p, bool training, Rng *rng);

/* ops_shape.c */
Tensor *ft_reshape(Tape *tp, Tensor *x, Shape s);      /* a view; one -1 is inferred */
Tensor *ft_flatten(Tape *tp, Tensor *x);               /* [N, ...] -> [N, rest] */
Tensor *ft_permute(Tape *tp, Tensor *x, const int *perm);
Tensor *ft_transpose(Tape *tp, Tensor *x, int d0, int d1);
Tensor *ft_concat(Tape *tp, Tensor *const *xs, int n, int dim);
/* pads the last two dims: [.., H, W] -> [.., H + top + bottom, W + left + right] with value */
Tensor *ft_pad2d(Tape *tp, Tensor *x, int left, int right, int top, int bottom, double value);
/* [N, C, H, W] -> [N, C, oh, ow], PyTorch's bilinear interpolation */
Tensor *ft_upsample_bilinear(Tape *tp, Tensor *x, int oh, int ow, bool align_corners);
/* rows [start, start + count) of the first dim: a view */
Tensor *ft_slice_batch(Tape *tp, Tensor *x, int start, int count);

/* Internal to the op files: add g (in the op output's shape) into x's gradient, summing over
 * the dims along which x was broadcast. */
void ft_accumulate_grad(Tape *tp, Tensor *x, Tensor *g);
/* For ops: the device every (non-NULL) input lives on into *dev, else false with an op error. */
bool ft_device_of(const char *op, int n, Tensor *const *ts, Device *dev);
/* For ops: whether t is float32 or float64, else an op error. */
bool ft_check_float(const char *op, const Tensor *t);

#ifdef __cplusplus
}
#endif

#endif
