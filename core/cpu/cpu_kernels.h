/* The CPU kernels that exist in a float and a double flavour (kernels_f32.c, kernels_f64.c
 * instantiate the same *.inc sources with `real` = float / double). */
#ifndef FINCH_CPU_KERNELS_H
#define FINCH_CPU_KERNELS_H

#include "../backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FT_CPU_GENERIC_KERNELS(X) \
    X(binary, BinaryArgs) X(binary_grad, BinaryGradArgs) X(unary, UnaryArgs) \
    X(unary_grad, UnaryGradArgs) X(reduce, ReduceArgs) X(axpy, AxpyArgs) \
    X(scatter_add, ScatterAddArgs) X(softmax, SoftmaxArgs) X(softmax_grad, SoftmaxGradArgs) \
    X(cross_entropy, CrossEntropyArgs) X(cross_entropy_grad, CrossEntropyGradArgs) \
    X(gemm, GemmArgs) X(conv2d, ConvArgs) X(conv2d_grad, ConvGradArgs) \
    X(max_pool, MaxPoolArgs) X(max_pool_grad, MaxPoolGradArgs) X(avg_pool, AvgPoolArgs) \
    X(avg_pool_grad, AvgPoolGradArgs) X(adaptive_pool, AdaptivePoolArgs) \
    X(adaptive_pool_grad, AdaptivePoolGradArgs) X(batch_norm, BatchNormArgs) \
    X(batch_norm_grad, BatchNormGradArgs) X(copy_strided, CopyArgs) X(upsample, UpsampleArgs) \
    X(upsample_grad, UpsampleGradArgs) X(random, RandomArgs) X(linf_step, LinfStepArgs)

#define FT_DECLARE_CPU_KERNEL(name, T) void name##_f32(const T *); void name##_f64(const T *);
FT_CPU_GENERIC_KERNELS(FT_DECLARE_CPU_KERNEL)

#ifdef __cplusplus
}
#endif

#endif
