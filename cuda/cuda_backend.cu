/* The CUDA backend: device selection, memory, and the kernel table that core/ dispatches to.
 *
 * This file is the seam the CUDA work fills in: memory movement and fills run on the GPU now;
 * every compute entry is still NULL, so asking for one on --device cuda stops with
 * "op '<name>' is not supported on the cuda backend" instead of computing anything wrong. */
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
#include "core/error.h"
}

#define CUDA_CHECK(call) do { \
        cudaError_t e_ = (call); \
        if (e_ != cudaSuccess) ft_fatal_at(__FILE__, __LINE__, "%s failed: %s", #call, cudaGetErrorString(e_)); \
    } while (0)

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        size_t free_b = 0, total = 0;
        cudaMemGetInfo(&free_b, &total);
        ft_fatal("out of GPU memory: asked for %zu bytes, %zu of %zu free (%s)", bytes, free_b, total,
                 cudaGetErrorString(e));
    }
    return p;
}

static void cuda_free(void *p) { CUDA_CHECK(cudaFree(p)); }
static void cuda_to_host(void *dst, const void *src, size_t n) { CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost)); }
static void cuda_from_host(void *dst, const void *src, size_t n) { CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice)); }
static void cuda_copy(void *dst, const void *src, size_t n) { CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice)); }

template <typename T> __global__ void fill_kernel(T *p, int64_t n, T v) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] = v;
}

static void cuda_fill(DType dt, int64_t n, double v, void *p) {
    if (n == 0) return;
    if (v == 0) { CUDA_CHECK(cudaMemset(p, 0, (size_t)n * ft_dtype_size(dt))); return; }
    unsigned blocks = (unsigned)((n + 255) / 256);
    switch (dt) {
    case FT_F32: fill_kernel<<<blocks, 256>>>((float *)p, n, (float)v); break;
    case FT_F64: fill_kernel<<<blocks, 256>>>((double *)p, n, v); break;
    case FT_U8: fill_kernel<<<blocks, 256>>>((uint8_t *)p, n, (uint8_t)v); break;
    case FT_I32: fill_kernel<<<blocks, 256>>>((int32_t *)p, n, (int32_t)v); break;
    }
    CUDA_CHECK(cudaGetLastError());
}

static Backend make_table(void) {
    Backend b = {};
    b.name = "cuda";
    b.alloc = cuda_alloc;
    b.free = cuda_free;
    b.to_host = cuda_to_host;
    b.from_host = cuda_from_host;
    b.copy = cuda_copy;
    b.fill = cuda_fill;
    return b;
}

extern "C" const Backend *ft_cuda_backend(void) {
    static Backend table;
    static int ready = 0;
    if (!ready) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess || n == 0)
            ft_fatal("no CUDA device found (cudaGetDeviceCount: %s); run with --device cpu",
                     e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        table = make_table();
        ready = 1;
    }
    return &table;
}
