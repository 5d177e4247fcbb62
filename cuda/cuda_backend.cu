/* The CUDA backend: device checks, library handles, memory movement, and the kernel table that
 * core/ dispatches to. Everything runs on the default stream, so kernels, copies and the
 * caching allocator's reuse of freed blocks are ordered without further synchronisation. */
#include <stdio.h>
#include <string.h>
#include "common.cuh"

static cublasHandle_t cublas;
static bool tf32;

cublasHandle_t cuda_cublas(void) {
    if (!cublas) {
        CUBLAS_CHECK(cublasCreate(&cublas));
        CUBLAS_CHECK(cublasSetMathMode(cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    }
    return cublas;
}

bool cuda_tf32(void) { return tf32; }

extern "C" void ft_cuda_set_tf32(bool on) {
    tf32 = on;
    if (cublas) CUBLAS_CHECK(cublasSetMathMode(cublas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

/* cudaGetDeviceCount's answer, asked once: the error it gave, or the device count */
static cudaError_t device_count(int *n) {
    static cudaError_t e = cudaErrorUnknown;
    static int count = -1;
    if (count < 0) {
        count = 0;
        e = cudaGetDeviceCount(&count);
        if (e != cudaSuccess) count = 0;
        cudaGetLastError();   /* a failed query leaves a sticky error otherwise */
    }
    *n = count;
    return e;
}

extern "C" bool ft_cuda_available(void) {
    int n;
    return device_count(&n) == cudaSuccess && n > 0;
}

extern "C" const char *ft_cuda_describe(void) {
    static char line[512];
    int n, driver = 0, runtime = 0;
    cudaError_t e = device_count(&n);
    if (e != cudaSuccess) {
        snprintf(line, sizeof line, "no CUDA device: cudaGetDeviceCount failed: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return line;
    }
    if (n == 0) return "no CUDA device: cudaGetDeviceCount found 0 devices";
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
        snprintf(line, sizeof line, "CUDA device 0 unreadable: %s", cudaGetErrorString(e));
        return line;
    }
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    snprintf(line, sizeof line, "%s (sm_%d%d, %d SMs, %.1f GiB), CUDA driver %d.%d, runtime %d.%d, cuDNN %zu", p.name,
             p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, driver / 1000, driver % 1000 / 10,
             runtime / 1000, runtime % 1000 / 10, cuda_cudnn_version());
    return line;
}

static void to_host(void *dst, const void *src, size_t n) { CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost)); }
static void from_host(void *dst, const void *src, size_t n) { CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice)); }
static void copy(void *dst, const void *src, size_t n) { CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice)); }

template <typename T> __global__ void fill_k(T *p, int64_t n, T v) { FOR_EACH(i, n) p[i] = v; }

static void fill(DType dt, int64_t n, double v, void *p) {
    if (n == 0) return;
    if (v == 0) { CUDA_CHECK(cudaMemset(p, 0, (size_t)n * ft_dtype_size(dt))); return; }
    switch (dt) {
    case FT_F32: fill_k<<<grid_for(n), THREADS>>>((float *)p, n, (float)v); break;
    case FT_F64: fill_k<<<grid_for(n), THREADS>>>((double *)p, n, v); break;
    case FT_U8: fill_k<<<grid_for(n), THREADS>>>((uint8_t *)p, n, (uint8_t)v); break;
    case FT_I32: fill_k<<<grid_for(n), THREADS>>>((int32_t *)p, n, (int32_t)v); break;
    }
    LAUNCH_CHECK();
}

static void synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

/* Two pinned staging buffers used in turn; each one's event says when its last copy has left,
 * so the host never overwrites a copy in flight. */
static void upload_async(void *dst, const void *src, size_t n) {
    static void *pinned[2];
    static size_t size[2];
    static cudaEvent_t done[2];
    static int k;
    if (!done[k]) CUDA_CHECK(cudaEventCreateWithFlags(&done[k], cudaEventDisableTiming));
    CUDA_CHECK(cudaEventSynchronize(done[k]));
    if (size[k] < n) {
        if (pinned[k]) CUDA_CHECK(cudaFreeHost(pinned[k]));
        CUDA_CHECK(cudaMallocHost(&pinned[k], n));
        size[k] = n;
    }
    memcpy(pinned[k], src, n);
    CUDA_CHECK(cudaMemcpyAsync(dst, pinned[k], n, cudaMemcpyHostToDevice, 0));
    CUDA_CHECK(cudaEventRecord(done[k], 0));
    k ^= 1;
}

static void *host_alloc(size_t n) {
    void *p;
    CUDA_CHECK(cudaMallocHost(&p, n ? n : 1));
    return p;
}
static void host_free(void *p) { CUDA_CHECK(cudaFreeHost(p)); }
static void upload_pinned(void *dst, const void *src, size_t n) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, 0));
}

static void *event_record(void) {
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreate(&e));
    CUDA_CHECK(cudaEventRecord(e, 0));
    return (void *)e;
}
static double event_ms(void *start, void *end) {
    float ms = 0;
    CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)end));
    CUDA_CHECK(cudaEventElapsedTime(&ms, (cudaEvent_t)start, (cudaEvent_t)end));
    return ms;
}
static void event_free(void *e) { CUDA_CHECK(cudaEventDestroy((cudaEvent_t)e)); }

static Backend make_table(void) {
    Backend b = {};
    b.name = "cuda";
    b.alloc = cuda_alloc;
    b.free = cuda_free;
    b.to_host = to_host;
    b.from_host = from_host;
    b.copy = copy;
    b.fill = fill;
    b.synchronize = synchronize;
    b.upload_async = upload_async;
    b.host_alloc = host_alloc;
    b.host_free = host_free;
    b.upload_pinned = upload_pinned;
    b.event_record = event_record;
    b.event_ms = event_ms;
    b.event_free = event_free;
#define ENTRY(name) b.name = cuda_##name;
    ENTRY(binary) ENTRY(binary_grad) ENTRY(unary) ENTRY(unary_grad) ENTRY(reduce) ENTRY(axpy) ENTRY(scatter_add)
    ENTRY(softmax) ENTRY(softmax_grad) ENTRY(cross_entropy) ENTRY(cross_entropy_grad) ENTRY(gemm) ENTRY(conv2d)
    ENTRY(conv2d_grad) ENTRY(max_pool) ENTRY(max_pool_grad) ENTRY(avg_pool) ENTRY(avg_pool_grad) ENTRY(adaptive_pool)
    ENTRY(adaptive_pool_grad) ENTRY(batch_norm) ENTRY(batch_norm_grad) ENTRY(copy_strided) ENTRY(upsample)
    ENTRY(upsample_grad) ENTRY(random) ENTRY(convert) ENTRY(sgd) ENTRY(adam) ENTRY(linf_step)
#undef ENTRY
    return b;
}

extern "C" const Backend *ft_cuda_backend(void) {
    static Backend table;
    static bool ready;
    if (!ready) {
        if (!ft_cuda_available()) ft_fatal("%s; run with --device cpu", ft_cuda_describe());
        table = make_table();
        ready = true;
    }
    return &table;
}
