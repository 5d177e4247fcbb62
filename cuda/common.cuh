/* Shared by the CUDA backend's files: error checks that report file:line and the library's own
 * message, library handles, launch helpers, and float/double dispatch. */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
#include "core/error.h"
#include "core/philox.h"
}

#define CUDA_CHECK(call) do { \
        cudaError_t e_ = (call); \
        if (e_ != cudaSuccess) ft_fatal_at(__FILE__, __LINE__, "%s failed: %s", #call, cudaGetErrorString(e_)); \
    } while (0)
#define CUBLAS_CHECK(call) do { \
        cublasStatus_t s_ = (call); \
        if (s_ != CUBLAS_STATUS_SUCCESS) ft_fatal_at(__FILE__, __LINE__, "%s failed: %s", #call, cublasGetStatusString(s_)); \
    } while (0)
/* after every launch: a bad configuration is reported where it happened */
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

#define THREADS 256
/* grid-stride loop over [0, n) */
#define FOR_EACH(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

static inline unsigned grid_for(int64_t n) {
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 * 8 ? 65535 * 8 : b);
}

/* Run `body` with T = float or double according to dt. */
#define DISPATCH_REAL(dt, what, ...) do { \
        if ((dt) == FT_F32) { typedef float T; __VA_ARGS__; } \
        else if ((dt) == FT_F64) { typedef double T; __VA_ARGS__; } \
        else ft_fatal("cuda %s: %s tensors are not supported (float32 or float64)", what, ft_dtype_name(dt)); \
    } while (0)

cublasHandle_t cuda_cublas(void);
size_t cuda_cudnn_version(void);   /* conv_cudnn.cu */
bool cuda_tf32(void);

/* Device memory from the caching allocator (allocator.cu). */
void *cuda_alloc(size_t bytes);
void cuda_free(void *p);
/* Scratch space for one kernel call at a time (im2col columns), grown on demand. */
void *cuda_scratch(int slot, size_t bytes);

/* The kernels, by file; each matches the Backend entry of the same name. */
void cuda_binary(const BinaryArgs *);
void cuda_binary_grad(const BinaryGradArgs *);
void cuda_unary(const UnaryArgs *);
void cuda_unary_grad(const UnaryGradArgs *);
void cuda_axpy(const AxpyArgs *);
void cuda_scatter_add(const ScatterAddArgs *);
void cuda_copy_strided(const CopyArgs *);
void cuda_random(const RandomArgs *);
void cuda_convert(const ConvertArgs *);
void cuda_linf_step(const LinfStepArgs *);
void cuda_sgd(const SgdArgs *);
void cuda_adam(const AdamArgs *);
void cuda_reduce(const ReduceArgs *);
void cuda_softmax(const SoftmaxArgs *);
void cuda_softmax_grad(const SoftmaxGradArgs *);
void cuda_cross_entropy(const CrossEntropyArgs *);
void cuda_cross_entropy_grad(const CrossEntropyGradArgs *);
void cuda_gemm(const GemmArgs *);
void cuda_conv2d(const ConvArgs *);
void cudnn_conv2d(const ConvArgs *);          /* float32, conv_cudnn.cu */
void cudnn_conv2d_grad(const ConvGradArgs *);
void cuda_conv2d_grad(const ConvGradArgs *);
void cuda_max_pool(const MaxPoolArgs *);
void cuda_max_pool_grad(const MaxPoolGradArgs *);
void cuda_avg_pool(const AvgPoolArgs *);
void cuda_avg_pool_grad(const AvgPoolGradArgs *);
void cuda_adaptive_pool(const AdaptivePoolArgs *);
void cuda_adaptive_pool_grad(const AdaptivePoolGradArgs *);
void cuda_batch_norm(const BatchNormArgs *);
void cuda_batch_norm_grad(const BatchNormGradArgs *);
void cuda_upsample(const UpsampleArgs *);
void cuda_upsample_grad(const UpsampleGradArgs *);
