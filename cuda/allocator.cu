/* A caching allocator for device memory. Freed blocks go back to a free list of their size class
 * instead of to cudaFree, so a training loop that allocates the same sizes every step stops
 * calling cudaMalloc after its first step. Size classes: multiples of 512 B below 1 MiB,
 * multiples of 2 MiB above. When cudaMalloc runs out of memory, the cache is released and the call
 * retried once; if it fails again the error says what was asked for, in use and cached. Any other
 * cudaMalloc error is reported as itself. */
#include <mutex>
#include <unordered_map>
#include <vector>
#include "common.cuh"

namespace {
std::mutex lock;
std::unordered_map<size_t, std::vector<void *>> free_lists;   /* size class -> blocks */
std::unordered_map<void *, size_t> live;                       /* block -> its size class */
CudaMemoryStats stats;

size_t size_class(size_t bytes) {
    const size_t small = 512, large = 2u << 20;
    if (bytes == 0) bytes = 1;
    return bytes < (1u << 20) ? (bytes + small - 1) / small * small : (bytes + large - 1) / large * large;
}

void release_cache() {
    for (auto &kv : free_lists)
        for (void *p : kv.second) CUDA_CHECK(cudaFree(p));
    free_lists.clear();
    stats.cached = 0;
}
}

void *cuda_alloc(size_t bytes) {
    std::lock_guard<std::mutex> g(lock);
    size_t s = size_class(bytes);
    void *p = NULL;
    auto it = free_lists.find(s);
    if (it != free_lists.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        stats.cached -= s;
    } else {
        cudaError_t e = cudaMalloc(&p, s);
        if (e == cudaErrorMemoryAllocation) {   /* out of memory: give the cache back and try once more */
            cudaGetLastError();
            release_cache();
            e = cudaMalloc(&p, s);
        }
        /* anything else (a sticky error from an earlier kernel, a lost device) is not a memory shortage */
        if (e != cudaSuccess && e != cudaErrorMemoryAllocation)
            ft_fatal("cudaMalloc of %zu bytes failed: %s (%s); an earlier kernel or copy may have failed", bytes,
                     cudaGetErrorString(e), cudaGetErrorName(e));
        if (e != cudaSuccess) {
            size_t free_b = 0, total = 0;
            cudaMemGetInfo(&free_b, &total);
            ft_fatal("out of GPU memory: asked for %zu bytes; finch has %zu in use and %zu cached; the device has %zu "
                     "of %zu free (%s)", bytes, stats.in_use, stats.cached, free_b, total, cudaGetErrorString(e));
        }
        stats.device_mallocs++;
    }
    live[p] = s;
    stats.in_use += s;
    if (stats.in_use > stats.peak) stats.peak = stats.in_use;
    return p;
}

void cuda_free(void *p) {
    if (!p) return;
    std::lock_guard<std::mutex> g(lock);
    auto it = live.find(p);
    if (it == live.end()) ft_fatal("cuda_free of %p, which the allocator did not hand out", p);
    size_t s = it->second;
    live.erase(it);
    free_lists[s].push_back(p);
    stats.in_use -= s;
    stats.cached += s;
}

extern "C" CudaMemoryStats ft_cuda_memory(void) {
    std::lock_guard<std::mutex> g(lock);
    return stats;
}

void *cuda_scratch(int slot, size_t bytes) {
    static void *p[2];
    static size_t size[2];
    FT_CHECK(slot >= 0 && slot < 2, "cuda scratch slot %d", slot);
    if (size[slot] < bytes) {
        cuda_free(p[slot]);
        p[slot] = cuda_alloc(bytes);
        size[slot] = bytes;
    }
    return p[slot];
}
