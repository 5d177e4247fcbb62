/* The backend seam: a table of kernels per device.
 *
 * An op (core/ops_*.c) checks shapes, allocates outputs and records the tape; the numbers are
 * computed by the kernels of the device its tensors live on. Kernels take plain argument structs
 * of raw pointers and sizes, so the CPU (core/cpu/) and CUDA (cuda/) implement the same table.
 * A NULL entry means "this backend does not support the op": ft_backend_kernel() reports it.
 * Kernels that produce gradients accumulate (+=) into them; forward kernels overwrite.
 */
#ifndef FINCH_BACKEND_H
#define FINCH_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Broadcast geometry: an output shape and, for each operand, element strides (0 where broadcast). */
typedef struct {
    int ndim;
    int shape[FT_MAX_DIMS];
    int64_t sa[FT_MAX_DIMS], sb[FT_MAX_DIMS];
    bool plain;               /* both operands have exactly the output's shape */
} Bcast;

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } BinaryOp;
typedef enum {
    UN_NEG, UN_EXP, UN_LOG, UN_SQRT, UN_ABS, UN_SIGN, UN_RELU, UN_SIGMOID, UN_TANH,
    UN_POW,    /* x^p0 */
    UN_CLAMP,  /* min(max(x, p0), p1) */
    UN_AFFINE, /* p0 * x + p1 */
    UN_THRESHOLD, /* x >= p0 ? p1 : 0 (a mask; no gradient) */
} UnaryOp;
typedef enum { RED_SUM, RED_MAX, RED_MIN } ReduceOp;

typedef struct { DType dt; BinaryOp op; Bcast geo; int64_t n; const void *a, *b; void *out; } BinaryArgs;
/* d(a op b)/d(operand `which`) * g, in the output's shape; `accumulate`: out += instead of out = */
typedef struct {
    DType dt; BinaryOp op; int which; Bcast geo; int64_t n;
    const void *g, *a, *b; void *out; bool accumulate;
} BinaryGradArgs;
typedef struct { DType dt; UnaryOp op; int64_t n; const void *x; void *y; double p0, p1; } UnaryArgs;
/* gx += dy/dx * g; y is the forward output (used by exp, sqrt, sigmoid, tanh) */
typedef struct {
    DType dt; UnaryOp op; int64_t n; const void *g, *x, *y; void *gx; double p0, p1;
} UnaryGradArgs;

/* Reduce x (shape `shape`) over the dims whose bit is set in `mask`, into y (kept dims only,
 * in order). For MAX/MIN, optionally: arg receives the flat offset into x of each winner (for
 * the backward), arg_local its row-major index within the reduced dims (what users see). */
typedef struct {
    DType dt; ReduceOp op; int ndim; int shape[FT_MAX_DIMS]; unsigned mask;
    const void *x; void *y; int64_t *arg; int32_t *arg_local; double scale; bool accumulate;
} ReduceArgs;
/* y += alpha * x, x broadcast into y's shape (geo.sa: y strides, geo.sb: x strides) */
typedef struct { DType dt; Bcast geo; int64_t n; double alpha; const void *x; void *y; } AxpyArgs;
/* gx[idx[i]] += g[i] */
typedef struct { DType dt; int64_t n; const void *g; const int64_t *idx; void *gx; } ScatterAddArgs;

/* Softmax over the middle axis of [outer, dim, inner]. */
typedef struct { DType dt; bool log; int64_t outer, dim, inner; const void *x; void *y; } SoftmaxArgs;
typedef struct {
    DType dt; bool log; int64_t outer, dim, inner; const void *g, *y; void *gx;
} SoftmaxGradArgs;
/* Mean cross entropy of logits [N, C] against labels; logp [N, C] is saved for the backward. */
typedef struct {
    DType dt; int N, C; const void *logits; const int32_t *labels; void *logp; void *loss;
} CrossEntropyArgs;
typedef struct {
    DType dt; int N, C; const void *g; const void *logp; const int32_t *labels; void *gx;
} CrossEntropyGradArgs;

/* C = alpha * op(A) op(B) + beta * C, row-major, `batch` times with the given element strides. */
typedef struct {
    DType dt; bool ta, tb; int M, N, K; double alpha, beta;
    const void *A; int lda; int64_t sA;
    const void *B; int ldb; int64_t sB;
    void *C; int ldc; int64_t sC;
    int batch;
} GemmArgs;

typedef struct {
    int N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
} ConvGeom;
typedef struct { DType dt; ConvGeom g; const void *x, *w, *b; void *y; } ConvArgs;
/* Any of gx, gw, gb may be NULL: that gradient is not computed. */
typedef struct {
    DType dt; ConvGeom g; const void *gy, *x, *w; void *gx, *gw, *gb;
} ConvGradArgs;

typedef struct {
    int N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW;
    bool count_include_pad;   /* avg pool: divide by the full window (PyTorch's default) */
} PoolGeom;
/* idx: for each output, the winner's offset within its H*W input plane */
typedef struct { DType dt; PoolGeom g; const void *x; void *y; int32_t *idx; } MaxPoolArgs;
typedef struct { DType dt; PoolGeom g; const void *gy; const int32_t *idx; void *gx; } MaxPoolGradArgs;
typedef struct { DType dt; PoolGeom g; const void *x; void *y; } AvgPoolArgs;
typedef struct { DType dt; PoolGeom g; const void *gy; void *gx; } AvgPoolGradArgs;
/* Adaptive average pooling: windows [floor(i*H/OH), ceil((i+1)*H/OH)) as PyTorch. */
typedef struct { DType dt; int N, C, H, W, OH, OW; const void *x; void *y; } AdaptivePoolArgs;
typedef struct { DType dt; int N, C, H, W, OH, OW; const void *gy; void *gx; } AdaptivePoolGradArgs;

/* Batch norm over [N, C, HW]. Training: batch statistics into mean/invstd and the running
 * statistics updated (unbiased variance); eval: running statistics are used as they are. With
 * relu, y = max(0, batch norm): the pair conv -> BN -> ReLU's last two in one pass. */
typedef struct {
    DType dt; int N, C, HW; bool training; double momentum, eps;
    const void *x, *gamma, *beta; void *y;
    void *mean, *invstd;            /* [C], saved for the backward */
    void *running_mean, *running_var;
    bool relu;
} BatchNormArgs;
/* y: the forward's output when it applied the ReLU (gy is then masked by y > 0, as ReLU's
 * backward would), else NULL. */
typedef struct {
    DType dt; int N, C, HW; bool training;
    const void *gy, *x, *gamma, *mean, *invstd;
    void *gx, *ggamma, *gbeta;      /* any may be NULL */
    const void *y;
} BatchNormGradArgs;

/* dst[...] (+)= src[...] over an N-d index space with arbitrary element strides on both sides:
 * permute, concat, pad and slice are all this one kernel. */
typedef struct {
    DType dt; int ndim; int shape[FT_MAX_DIMS];
    const void *src; int64_t ss[FT_MAX_DIMS];
    void *dst; int64_t ds[FT_MAX_DIMS];
    bool accumulate;
} CopyArgs;

typedef struct { DType dt; int N, C, H, W, OH, OW; bool align_corners; const void *x; void *y; } UpsampleArgs;
typedef struct { DType dt; int N, C, H, W, OH, OW; bool align_corners; const void *gy; void *gx; } UpsampleGradArgs;

/* Counter-based random numbers: element i depends only on (seed, counter, i). */
typedef struct {
    DType dt; int64_t n; uint64_t seed, counter; bool normal; double a, b; void *out;
} RandomArgs;
typedef struct { DType src_dt, dst_dt; int64_t n; double scale; const void *src; void *dst; } ConvertArgs;

/* Optimizer updates, float32, in place. wd: L2 added to the gradient (SGD, Adam) or decoupled
 * (AdamW: w -= lr * wd * w). */
typedef struct {
    int64_t n; float *w; const float *g; float *buf;
    double lr, momentum, wd; bool nesterov, first_step;
} SgdArgs;
typedef struct {
    int64_t n; float *w; const float *g; float *m, *v;
    double lr, beta1, beta2, eps, wd; bool decoupled; int64_t step;
} AdamArgs;
/* x = clamp(clamp(x + alpha * sign(g), x0 - eps, x0 + eps), lo, hi); g NULL: projection only */
typedef struct { DType dt; int64_t n; void *x; const void *x0, *g; double alpha, eps, lo, hi; } LinfStepArgs;

typedef struct Backend {
    const char *name;
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*to_host)(void *dst, const void *src, size_t bytes);
    void (*from_host)(void *dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*fill)(DType dt, int64_t n, double v, void *p);
    void (*synchronize)(void);   /* wait for queued work (NULL: everything is synchronous) */
    /* host -> device without making the host wait: src is staged in pinned memory and may be
     * reused as soon as the call returns (NULL: from_host is used) */
    void (*upload_async)(void *dst, const void *src, size_t bytes);
    /* page-locked host memory, and a copy straight from it that the host does not wait for:
     * src must not change before the next synchronize (NULL: no pinned memory) */
    void *(*host_alloc)(size_t bytes);
    void (*host_free)(void *p);
    void (*upload_pinned)(void *dst, const void *src, size_t bytes);
    /* timing marks on the device's queue (the profiler's CUDA events): a new mark recorded after the
     * work queued so far; the milliseconds between two marks, waiting for the later one; a mark
     * released (NULL: no marks, the profiler synchronises instead) */
    void *(*event_record)(void);
    double (*event_ms)(void *start, void *end);
    void (*event_free)(void *mark);

    void (*binary)(const BinaryArgs *);
    void (*binary_grad)(const BinaryGradArgs *);
    void (*unary)(const UnaryArgs *);
    void (*unary_grad)(const UnaryGradArgs *);
    void (*reduce)(const ReduceArgs *);
    void (*axpy)(const AxpyArgs *);
    void (*scatter_add)(const ScatterAddArgs *);
    void (*softmax)(const SoftmaxArgs *);
    void (*softmax_grad)(const SoftmaxGradArgs *);
    void (*cross_entropy)(const CrossEntropyArgs *);
    void (*cross_entropy_grad)(const CrossEntropyGradArgs *);
    void (*gemm)(const GemmArgs *);
    void (*conv2d)(const ConvArgs *);
    void (*conv2d_grad)(const ConvGradArgs *);
    void (*max_pool)(const MaxPoolArgs *);
    void (*max_pool_grad)(const MaxPoolGradArgs *);
    void (*avg_pool)(const AvgPoolArgs *);
    void (*avg_pool_grad)(const AvgPoolGradArgs *);
    void (*adaptive_pool)(const AdaptivePoolArgs *);
    void (*adaptive_pool_grad)(const AdaptivePoolGradArgs *);
    void (*batch_norm)(const BatchNormArgs *);
    void (*batch_norm_grad)(const BatchNormGradArgs *);
    void (*copy_strided)(const CopyArgs *);
    void (*upsample)(const UpsampleArgs *);
    void (*upsample_grad)(const UpsampleGradArgs *);
    void (*random)(const RandomArgs *);
    void (*convert)(const ConvertArgs *);
    void (*sgd)(const SgdArgs *);
    void (*adam)(const AdamArgs *);
    void (*linf_step)(const LinfStepArgs *);
} Backend;

/* Is a CUDA device usable? false in a CPU-only build or without a GPU; never stops. */
bool ft_cuda_available(void);
/* One line on the CUDA device: its name, compute capability, memory, driver and runtime versions
 * when one is usable, else why not (a CPU-only build, or cudaGetDeviceCount's own error). */
const char *ft_cuda_describe(void);
/* TF32 tensor cores for float32 matrix products on the GPU (off by default: exact fp32). */
void ft_cuda_set_tf32(bool on);
/* The device allocator's bookkeeping (all zero in a CPU-only build). */
typedef struct { size_t in_use, peak, cached; int64_t device_mallocs; } CudaMemoryStats;
CudaMemoryStats ft_cuda_memory(void);

/* Wait until the device has finished what was queued (for timing). */
void ft_synchronize(Device dev);

/* The table for a device; a CPU-only build asked for CUDA stops with a clear message. */
const Backend *ft_backend(Device dev);
const Backend *ft_cpu_backend(void);
/* The kernel family OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", ...), and the one to ask
 * for with OPENBLAS_CORETYPE (read when OpenBLAS loads) when it fell back to a generic kernel on a
 * CPU with AVX2 or AVX-512; NULL when its choice stands. finch's main() restarts itself with it. */
const char *ft_blas_corename(void);
const char *ft_blas_coretype_fix(void);
/* For a program's main(): when ft_blas_coretype_fix() has a kernel to ask for, start the program
 * again (execv of /proc/self/exe with argv) with OPENBLAS_CORETYPE set to it, once; returns when
 * there is nothing to do (or OPENBLAS_CORETYPE is already set, or the restart failed). */
void ft_blas_restart(char **argv);
const Backend *ft_cuda_backend(void);   /* cuda/ when built with CUDA=1, a clear error otherwise */

/* Call kernel `k` of the backend of device `dev`, or stop naming the op and device. */
#define FT_KERNEL(dev, k, args) do { \
        const Backend *be_ = ft_backend(dev); \
        if (!be_->k) ft_fatal("op '%s' is not supported on the %s backend", #k, be_->name); \
        be_->k(args); \
    } while (0)

/* Broadcast geometry of a (shape sa) and b (shape sb) into out; fails with both shapes shown. */
Bcast ft_broadcast(const char *op, Shape sa, Shape sb, Shape *out);   /* out->ndim -1: they cannot (an op error) */

#ifdef __cplusplus
}
#endif

#endif
