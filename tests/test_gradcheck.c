/* Finite-difference gradient checks for every op, in double precision.
 *
 * For each case: L(inputs) = sum(op(inputs) * R) with R a fixed random tensor. The analytic
 * gradient from ft_backward is compared with the central difference (L(x+h) - L(x-h)) / 2h for
 * every element of every input, h = 1e-6; error = |analytic - numeric| / max(1, |numeric|).
 * Inputs of ops with kinks (relu, abs, clamp, max, pooling) are kept away from the kinks: far
 * from 0 or the clamp bounds, or distinct values on a grid so that no perturbation can change
 * which element wins. Each case also runs its float32 kernels against the float64 result. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "core/cpu/cpu_common.h"

#include "op_cases.h"

#define H 1e-6
#define GRAD_TOL 1e-6
#define F32_TOL 2e-4

void fill_inputs(Tensor *t, Values v, Rng *rng) {
    double *p = ft_f64(t);
    rng_uniform_(rng, t, -1, 1);
    for (int64_t i = 0; i < t->numel; i++) {
        switch (v) {
        case VALUES_ANY: break;
        case VALUES_AWAY_FROM_ZERO: p[i] = p[i] < 0 ? p[i] - 0.1 : p[i] + 0.1; break;
        case VALUES_POSITIVE: p[i] = 0.5 + fabs(p[i]); break;
        case VALUES_AWAY_FROM_CLAMP:   /* clamp bounds are -0.5, 0.5 */
            if (fabs(fabs(p[i]) - 0.5) < 0.05) p[i] += 0.1;
            break;
        case VALUES_DISTINCT: p[i] = -1 + 2.0 * (double)i / (double)t->numel; break;
        }
    }
    if (v == VALUES_DISTINCT) {   /* shuffle the grid */
        for (int64_t i = t->numel - 1; i > 0; i--) {
            int64_t j = (int64_t)(rng_double(rng) * (double)(i + 1));
            double s = p[i]; p[i] = p[j]; p[j] = s;
        }
    }
}

static Tensor *to_dtype(Tensor *t, DType dt) {
    Tensor *c = ft_tensor_new(dt, t->shape, FT_CPU);
    for (int64_t i = 0; i < t->numel; i++) ft_set(c, i, ft_get(t, i));
    return c;
}

/* L = sum(op(x) * R), or the op's output itself if R is NULL (to learn its shape) */
static Tensor *loss_of(Tape *tp, const Case *c, Tensor **x, Tensor *R) {
    Tensor *y = c->fn(tp, x, c);
    return R ? ft_sum(tp, ft_mul(tp, y, R), FT_ALL_DIMS, false) : y;
}

static double max_rel(const Tensor *a, const Tensor *b) {
    double worst = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double e = fabs(ft_get(a, i) - ft_get(b, i)) / fmax(1.0, fabs(ft_get(b, i)));
        if (e > worst || e != e) worst = e;
    }
    return worst;
}

static Tensor *case_fn(Tape *tp, Tensor *const *in, void *ctx) {
    const Case *c = ctx;
    return c->fn(tp, (Tensor **)in, c);
}

double gradcheck_case(const Case *c, double *f32_err) {
    Rng rng = rng_new(1234);
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x[MAX_IN], *xf[MAX_IN], *ga[MAX_IN];
    for (int i = 0; i < c->n_in; i++) {
        x[i] = ft_tensor_new(FT_F64, c->in[i], FT_CPU);
        fill_inputs(x[i], c->values, &rng);
        x[i]->requires_grad = true;
    }
    Tensor *y = loss_of(tp, c, x, NULL);
    Tensor *R = ft_tensor_new(FT_F64, y->shape, FT_CPU);
    rng_uniform_(&rng, R, -1, 1);
    ft_tape_reset(tp);

    Tensor *L = loss_of(tp, c, x, R);
    ft_backward(tp, L);
    for (int i = 0; i < c->n_in; i++) { ga[i] = x[i]->grad; x[i]->grad = NULL; }
    ft_tape_reset(tp);

    double worst = ft_gradcheck(case_fn, (void *)c, c->n_in, x, H, 1234, NULL);

    /* the float32 kernels: same inputs, outputs and gradients against float64 */
    for (int i = 0; i < c->n_in; i++) { xf[i] = to_dtype(x[i], FT_F32); xf[i]->requires_grad = true; }
    Tensor *Rf = to_dtype(R, FT_F32);
    Tensor *y64 = to_dtype(loss_of(tp, c, x, NULL), FT_F64);
    ft_tape_reset(tp);
    Tensor *yf = loss_of(tp, c, xf, NULL);
    *f32_err = max_rel(yf, y64);
    ft_tape_reset(tp);
    ft_backward(tp, loss_of(tp, c, xf, Rf));
    for (int i = 0; i < c->n_in; i++) {
        double e = max_rel(xf[i]->grad, ga[i]);
        if (e > *f32_err || e != e) *f32_err = e;
    }

    for (int i = 0; i < c->n_in; i++) { ft_tensor_free(x[i]); ft_tensor_free(xf[i]); ft_tensor_free(ga[i]); }
    ft_tensor_free(R);
    ft_tensor_free(Rf);
    ft_tensor_free(y64);
    ft_tape_free(tp);
    return worst;
}

/* ---- the ops under test ---- */

Tensor *op_add(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_add(tp, x[0], x[1]); }
static Tensor *op_sub(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_sub(tp, x[0], x[1]); }
static Tensor *op_mul(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_mul(tp, x[0], x[1]); }
static Tensor *op_div(Tape *tp, Tensor **x, const Case *c) {
    (void)c;   /* keep the divisor away from zero */
    return ft_div(tp, x[0], ft_affine(tp, x[1], 0.5, 1.5));
}
static Tensor *op_neg(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_neg(tp, x[0]); }
static Tensor *op_exp(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_exp(tp, x[0]); }
static Tensor *op_log(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_log(tp, x[0]); }
static Tensor *op_sqrt(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_sqrt(tp, x[0]); }
static Tensor *op_pow(Tape *tp, Tensor **x, const Case *c) { return ft_pow(tp, x[0], c->darg[0]); }
static Tensor *op_abs(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_abs(tp, x[0]); }
static Tensor *op_sign(Tape *tp, Tensor **x, const Case *c) {
    (void)c;   /* sign has zero gradient: multiply by x so the check sees a non-trivial path */
    return ft_mul(tp, ft_sign(tp, x[0]), x[0]);
}
static Tensor *op_clamp(Tape *tp, Tensor **x, const Case *c) { return ft_clamp(tp, x[0], c->darg[0], c->darg[1]); }
static Tensor *op_relu(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_relu(tp, x[0]); }
Tensor *op_add_relu(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_add_relu(tp, x[0], x[1]); }
static Tensor *op_sigmoid(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_sigmoid(tp, ft_affine(tp, x[0], 4, 0)); }
static Tensor *op_tanh(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_tanh(tp, ft_affine(tp, x[0], 2, 0)); }
Tensor *op_sum(Tape *tp, Tensor **x, const Case *c) { return ft_sum(tp, x[0], (unsigned)c->iarg[0], c->iarg[1]); }
static Tensor *op_mean(Tape *tp, Tensor **x, const Case *c) { return ft_mean(tp, x[0], (unsigned)c->iarg[0], c->iarg[1]); }
Tensor *op_max(Tape *tp, Tensor **x, const Case *c) { return ft_max(tp, x[0], (unsigned)c->iarg[0], c->iarg[1], NULL); }
static Tensor *op_min(Tape *tp, Tensor **x, const Case *c) { return ft_min(tp, x[0], (unsigned)c->iarg[0], c->iarg[1], NULL); }
Tensor *op_softmax(Tape *tp, Tensor **x, const Case *c) { return ft_softmax(tp, x[0], c->iarg[0]); }
static Tensor *op_log_softmax(Tape *tp, Tensor **x, const Case *c) { return ft_log_softmax(tp, x[0], c->iarg[0]); }
Tensor *op_cross_entropy(Tape *tp, Tensor **x, const Case *c) {
    (void)c;   /* labels made on the host, then moved to the tape's device */
    int N = x[0]->shape.d[0];
    Tensor *host = ft_tensor_new(FT_I32, SHAPE(N), FT_CPU), *labels = ft_new(tp, FT_I32, SHAPE(N));
    for (int i = 0; i < N; i++) ft_i32(host)[i] = (i * 3 + 1) % x[0]->shape.d[1];
    ft_copy_(labels, host);
    ft_tensor_free(host);
    return ft_cross_entropy(tp, x[0], labels);
}
static Tensor *op_mse(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_mse(tp, x[0], x[1]); }
Tensor *op_matmul(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_matmul(tp, x[0], x[1]); }
static Tensor *op_linear(Tape *tp, Tensor **x, const Case *c) { return ft_linear(tp, x[0], x[1], c->n_in > 2 ? x[2] : NULL); }
Tensor *op_conv2d(Tape *tp, Tensor **x, const Case *c) {
    return ft_conv2d(tp, x[0], x[1], c->n_in > 2 ? x[2] : NULL, c->iarg[0], c->iarg[1], c->iarg[2]);
}
Tensor *op_max_pool(Tape *tp, Tensor **x, const Case *c) { return ft_max_pool2d(tp, x[0], c->iarg[0], c->iarg[1], c->iarg[2]); }
static Tensor *op_avg_pool(Tape *tp, Tensor **x, const Case *c) {
    return ft_avg_pool2d(tp, x[0], c->iarg[0], c->iarg[1], c->iarg[2], c->iarg[3]);
}
static Tensor *op_adaptive(Tape *tp, Tensor **x, const Case *c) { return ft_adaptive_avg_pool2d(tp, x[0], c->iarg[0], c->iarg[1]); }
Tensor *op_bn_train(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    return ft_batch_norm(tp, x[0], x[1], x[2], NULL, NULL, true, 0.1, 1e-5);
}
/* running statistics as constants for the eval-mode cases: mean 0.1, var 0.8 */
static void eval_stats(Tape *tp, const Tensor *x, Tensor **rm, Tensor **rv) {
    int C = x->shape.d[1];
    *rm = ft_new(tp, x->dtype, SHAPE(C));
    *rv = ft_new(tp, x->dtype, SHAPE(C));
    ft_fill_(*rm, 0.1);
    ft_fill_(*rv, 0.8);
}
static Tensor *op_bn_eval(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    Tensor *rm, *rv;
    eval_stats(tp, x[0], &rm, &rv);
    return ft_batch_norm(tp, x[0], x[1], x[2], rm, rv, false, 0.1, 1e-5);
}
Tensor *op_bn_relu_train(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    return ft_batch_norm_relu(tp, x[0], x[1], x[2], NULL, NULL, true, 0.1, 1e-5);
}
static Tensor *op_bn_relu_eval(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    Tensor *rm, *rv;
    eval_stats(tp, x[0], &rm, &rv);
    return ft_batch_norm_relu(tp, x[0], x[1], x[2], rm, rv, false, 0.1, 1e-5);
}
static Tensor *op_dropout(Tape *tp, Tensor **x, const Case *c) {
    Rng r = rng_new(99);   /* the same mask every evaluation */
    return ft_dropout(tp, x[0], c->darg[0], true, &r);
}
static Tensor *op_reshape(Tape *tp, Tensor **x, const Case *c) {
    (void)c;
    return ft_mul(tp, ft_reshape(tp, x[0], SHAPE(3, -1)), ft_reshape(tp, x[0], SHAPE(3, -1)));
}
static Tensor *op_flatten(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_flatten(tp, x[0]); }
static Tensor *op_permute(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_permute(tp, x[0], (int[]){ 2, 0, 3, 1 }); }
static Tensor *op_transpose(Tape *tp, Tensor **x, const Case *c) { (void)c; return ft_transpose(tp, x[0], 0, -1); }
static Tensor *op_concat(Tape *tp, Tensor **x, const Case *c) { return ft_concat(tp, x, c->n_in, c->iarg[0]); }
static Tensor *op_pad(Tape *tp, Tensor **x, const Case *c) {
    return ft_pad2d(tp, x[0], c->iarg[0], c->iarg[1], c->iarg[2], c->iarg[3], c->darg[0]);
}
Tensor *op_upsample(Tape *tp, Tensor **x, const Case *c) {
    return ft_upsample_bilinear(tp, x[0], c->iarg[0], c->iarg[1], c->iarg[2]);
}
static Tensor *op_slice(Tape *tp, Tensor **x, const Case *c) { return ft_slice_batch(tp, x[0], c->iarg[0], c->iarg[1]); }

const Case op_cases[] = {
    { "add", 2, { SHAPE(2, 3, 4), SHAPE(2, 3, 4) }, VALUES_ANY, op_add, {0}, {0} },
    { "sub", 2, { SHAPE(2, 3, 4), SHAPE(2, 3, 4) }, VALUES_ANY, op_sub, {0}, {0} },
    { "mul", 2, { SHAPE(2, 3, 4), SHAPE(2, 3, 4) }, VALUES_ANY, op_mul, {0}, {0} },
    { "add_broadcast", 2, { SHAPE(2, 3, 4), SHAPE(3, 1) }, VALUES_ANY, op_add, {0}, {0} },
    { "sub_broadcast", 2, { SHAPE(4, 1), SHAPE(2, 1, 5) }, VALUES_ANY, op_sub, {0}, {0} },
    { "mul_broadcast", 2, { SHAPE(2, 3, 4), SHAPE(1, 3, 1) }, VALUES_ANY, op_mul, {0}, {0} },
    { "div_broadcast", 2, { SHAPE(2, 3, 4), SHAPE(4) }, VALUES_ANY, op_div, {0}, {0} },
    { "neg", 1, { SHAPE(3, 5) }, VALUES_ANY, op_neg, {0}, {0} },
    { "exp", 1, { SHAPE(3, 5) }, VALUES_ANY, op_exp, {0}, {0} },
    { "log", 1, { SHAPE(3, 5) }, VALUES_POSITIVE, op_log, {0}, {0} },
    { "sqrt", 1, { SHAPE(3, 5) }, VALUES_POSITIVE, op_sqrt, {0}, {0} },
    { "pow", 1, { SHAPE(3, 5) }, VALUES_POSITIVE, op_pow, {0}, { 2.5 } },
    { "abs", 1, { SHAPE(3, 5) }, VALUES_AWAY_FROM_ZERO, op_abs, {0}, {0} },
    { "sign", 1, { SHAPE(3, 5) }, VALUES_AWAY_FROM_ZERO, op_sign, {0}, {0} },
    { "clamp", 1, { SHAPE(4, 6) }, VALUES_AWAY_FROM_CLAMP, op_clamp, {0}, { -0.5, 0.5 } },
    { "relu", 1, { SHAPE(3, 5) }, VALUES_AWAY_FROM_ZERO, op_relu, {0}, {0} },
    { "add_relu", 2, { SHAPE(2, 3, 4), SHAPE(2, 3, 4) }, VALUES_ANY, op_add_relu, {0}, {0} },
    { "sigmoid", 1, { SHAPE(3, 5) }, VALUES_ANY, op_sigmoid, {0}, {0} },
    { "tanh", 1, { SHAPE(3, 5) }, VALUES_ANY, op_tanh, {0}, {0} },
    { "sum_dim1", 1, { SHAPE(2, 3, 4) }, VALUES_ANY, op_sum, { FT_DIM(1), 0 }, {0} },
    { "sum_dims02_keep", 1, { SHAPE(2, 3, 4) }, VALUES_ANY, op_sum, { FT_DIM(0) | FT_DIM(2), 1 }, {0} },
    { "mean_all", 1, { SHAPE(2, 3, 4) }, VALUES_ANY, op_mean, { (int)FT_ALL_DIMS, 0 }, {0} },
    { "mean_dim2", 1, { SHAPE(2, 3, 4) }, VALUES_ANY, op_mean, { FT_DIM(2), 1 }, {0} },
    { "max_dim1", 1, { SHAPE(2, 5, 3) }, VALUES_DISTINCT, op_max, { FT_DIM(1), 0 }, {0} },
    { "min_dims02", 1, { SHAPE(3, 2, 4) }, VALUES_DISTINCT, op_min, { FT_DIM(0) | FT_DIM(2), 1 }, {0} },
    { "softmax_last", 1, { SHAPE(3, 6) }, VALUES_ANY, op_softmax, { -1 }, {0} },
    { "softmax_middle", 1, { SHAPE(2, 4, 3) }, VALUES_ANY, op_softmax, { 1 }, {0} },
    { "log_softmax", 1, { SHAPE(3, 6) }, VALUES_ANY, op_log_softmax, { 1 }, {0} },
    { "cross_entropy", 1, { SHAPE(5, 7) }, VALUES_ANY, op_cross_entropy, {0}, {0} },
    { "mse", 2, { SHAPE(3, 4), SHAPE(3, 4) }, VALUES_ANY, op_mse, {0}, {0} },
    { "matmul_2d", 2, { SHAPE(3, 4), SHAPE(4, 5) }, VALUES_ANY, op_matmul, {0}, {0} },
    { "matmul_batched", 2, { SHAPE(2, 3, 4), SHAPE(2, 4, 5) }, VALUES_ANY, op_matmul, {0}, {0} },
    { "matmul_shared_b", 2, { SHAPE(2, 3, 4), SHAPE(4, 5) }, VALUES_ANY, op_matmul, {0}, {0} },
    { "linear", 3, { SHAPE(4, 5), SHAPE(3, 5), SHAPE(3) }, VALUES_ANY, op_linear, {0}, {0} },
    { "linear_nobias", 2, { SHAPE(4, 5), SHAPE(3, 5) }, VALUES_ANY, op_linear, {0}, {0} },
    { "conv2d_pad1", 3, { SHAPE(2, 3, 7, 6), SHAPE(4, 3, 3, 3), SHAPE(4) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    { "conv2d_wide_pad1", 2, { SHAPE(1, 32, 4, 3), SHAPE(2, 32, 3, 3) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    { "conv2d_stride2_dil2", 2, { SHAPE(2, 2, 9, 8), SHAPE(3, 2, 3, 2) }, VALUES_ANY, op_conv2d, { 2, 0, 2 }, {0} },
    { "conv2d_3x2_pad1_wide", 2, { SHAPE(1, 32, 4, 5), SHAPE(2, 32, 3, 2) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    /* 3x3, stride 1, 32+ channels each way: Winograd (core/cpu/winograd.inc; gradcheck_every_op
     * runs them with F(2x2, 3x3) forced and with F(4x4, 3x3) forced) in the forward, the weight gradient and the
     * input gradient (a convolution of dL/dy by the flipped kernel); output sizes 5 x 6 and 4 x 3
     * cut the last tiles; padding 1 and 0 (the gradient's pad is 2) */
    { "conv2d_winograd_pad1", 3, { SHAPE(2, 32, 5, 6), SHAPE(32, 32, 3, 3), SHAPE(32) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    { "conv2d_winograd_pad0", 2, { SHAPE(1, 32, 6, 5), SHAPE(32, 32, 3, 3) }, VALUES_ANY, op_conv2d, { 1, 0, 1 }, {0} },
    /* three images: the weight and bias gradients summed over them, each image its own tiles */
    { "conv2d_three_images", 3, { SHAPE(3, 4, 10, 10), SHAPE(5, 4, 3, 3), SHAPE(5) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    { "conv2d_1x1_three_images", 2, { SHAPE(3, 3, 10, 10), SHAPE(2, 3, 1, 1) }, VALUES_ANY, op_conv2d, { 1, 0, 1 }, {0} },
    /* 1x1, stride 1, no padding: the products read x and write dx in place (no im2col); two tiles of
     * positions (17 x 16 > 256), and input channels below and at the stride-1 input gradient's
     * convolution path (32) */
    { "conv2d_1x1", 3, { SHAPE(2, 5, 4, 3), SHAPE(3, 5, 1, 1), SHAPE(3) }, VALUES_ANY, op_conv2d, { 1, 0, 1 }, {0} },
    { "conv2d_1x1_two_tiles", 2, { SHAPE(1, 3, 17, 16), SHAPE(2, 3, 1, 1) }, VALUES_ANY, op_conv2d, { 1, 0, 1 }, {0} },
    { "conv2d_1x1_wide", 2, { SHAPE(1, 32, 3, 3), SHAPE(2, 32, 1, 1) }, VALUES_ANY, op_conv2d, { 1, 0, 1 }, {0} },
    { "conv2d_1x1_pad1", 3, { SHAPE(1, 2, 4, 3), SHAPE(3, 2, 1, 1), SHAPE(3) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    { "conv2d_1x1_stride2_pad1", 3, { SHAPE(1, 3, 5, 5), SHAPE(2, 3, 1, 1), SHAPE(2) }, VALUES_ANY, op_conv2d, { 2, 1, 1 }, {0} },
    { "max_pool2d_k2", 1, { SHAPE(2, 2, 6, 4) }, VALUES_DISTINCT, op_max_pool, { 2, 2, 0 }, {0} },
    { "max_pool2d_k3s2p1", 1, { SHAPE(1, 2, 7, 6) }, VALUES_DISTINCT, op_max_pool, { 3, 2, 1 }, {0} },
    { "avg_pool2d_incl_pad", 1, { SHAPE(1, 2, 7, 6) }, VALUES_ANY, op_avg_pool, { 3, 2, 1, 1 }, {0} },
    { "avg_pool2d_excl_pad", 1, { SHAPE(2, 1, 5, 5) }, VALUES_ANY, op_avg_pool, { 3, 2, 1, 0 }, {0} },
    { "adaptive_avg_pool2d", 1, { SHAPE(2, 2, 5, 7) }, VALUES_ANY, op_adaptive, { 3, 4 }, {0} },
    { "batch_norm_train", 3, { SHAPE(3, 4, 2, 3), SHAPE(4), SHAPE(4) }, VALUES_ANY, op_bn_train, {0}, {0} },
    { "batch_norm_train_2d", 3, { SHAPE(6, 3), SHAPE(3), SHAPE(3) }, VALUES_ANY, op_bn_train, {0}, {0} },
    { "batch_norm_eval", 3, { SHAPE(2, 3, 2, 2), SHAPE(3), SHAPE(3) }, VALUES_ANY, op_bn_eval, {0}, {0} },
    { "batch_norm_relu_train", 3, { SHAPE(3, 4, 2, 3), SHAPE(4), SHAPE(4) }, VALUES_ANY, op_bn_relu_train, {0}, {0} },
    { "batch_norm_relu_eval", 3, { SHAPE(2, 3, 2, 2), SHAPE(3), SHAPE(3) }, VALUES_ANY, op_bn_relu_eval, {0}, {0} },
    { "dropout", 1, { SHAPE(4, 8) }, VALUES_ANY, op_dropout, {0}, { 0.3 } },
    { "reshape_twice", 1, { SHAPE(2, 3, 2) }, VALUES_ANY, op_reshape, {0}, {0} },
    { "flatten", 1, { SHAPE(2, 3, 2, 2) }, VALUES_ANY, op_flatten, {0}, {0} },
    { "permute", 1, { SHAPE(2, 3, 4, 5) }, VALUES_ANY, op_permute, {0}, {0} },
    { "transpose", 1, { SHAPE(3, 2, 4) }, VALUES_ANY, op_transpose, {0}, {0} },
    { "concat_channels", 3, { SHAPE(2, 1, 3, 2), SHAPE(2, 3, 3, 2), SHAPE(2, 2, 3, 2) }, VALUES_ANY, op_concat, { 1 }, {0} },
    { "concat_last", 2, { SHAPE(2, 3), SHAPE(2, 4) }, VALUES_ANY, op_concat, { -1 }, {0} },
    { "pad2d", 1, { SHAPE(2, 2, 3, 4) }, VALUES_ANY, op_pad, { 1, 2, 0, 3 }, { 0.25 } },
    { "upsample_bilinear", 1, { SHAPE(1, 2, 3, 4) }, VALUES_ANY, op_upsample, { 7, 5, 0 }, {0} },
    { "upsample_bilinear_align", 1, { SHAPE(2, 1, 4, 3) }, VALUES_ANY, op_upsample, { 6, 8, 1 }, {0} },
    { "upsample_bilinear_down", 1, { SHAPE(1, 1, 7, 7) }, VALUES_ANY, op_upsample, { 3, 2, 0 }, {0} },
    { "slice_batch", 1, { SHAPE(5, 2, 3) }, VALUES_ANY, op_slice, { 1, 3 }, {0} },
};

const int n_op_cases = (int)(sizeof op_cases / sizeof op_cases[0]);

TEST(gradcheck_every_op) {
    int n = n_op_cases;
    const Case *cases = op_cases;
    int bad = 0;
    printf("\n    %-26s %12s %12s\n", "op", "grad err", "f32 err");
    for (int i = 0; i < n; i++) {
        /* the Winograd cases run with each tile forced (on their few tiles the rule takes im2col) */
        bool wino = strncmp(cases[i].name, "conv2d_winograd", 15) == 0;
        for (int run = 0; run < 1 + wino; run++) {
            int saved = cpu_winograd;
            if (wino) cpu_winograd = run ? WINO_F4 : WINO_F2;
            double f32 = 0, e = gradcheck_case(&cases[i], &f32);
            cpu_winograd = saved;
            bool ok = e <= GRAD_TOL && f32 <= F32_TOL;
            printf("    %-26s %12.2e %12.2e%s\n", run ? "  ... with F(4x4, 3x3)" : cases[i].name, e, f32, ok ? "" : "   <-- FAIL");
            bad += !ok;
        }
    }
    CHECK(bad == 0, "%d of %d ops failed the gradient check (tolerance %g, float32 %g)", bad, n, GRAD_TOL, F32_TOL);
}
