/* Helpers shared by the float and double instantiations of the CPU kernels. */
#ifndef FINCH_CPU_COMMON_H
#define FINCH_CPU_COMMON_H

#include <stdint.h>
#include "../backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Walks an N-d index space in row-major order, keeping two strided offsets in step. */
typedef struct {
    int ndim;
    const int *shape;
    const int64_t *sa, *sb;
    int idx[FT_MAX_DIMS];
    int64_t oa, ob;
} NdIter;

static inline void nd_start(NdIter *it, int ndim, const int *shape, const int64_t *sa,
                            const int64_t *sb, int64_t linear) {
    it->ndim = ndim; it->shape = shape; it->sa = sa; it->sb = sb;
    it->oa = it->ob = 0;
    for (int d = ndim - 1; d >= 0; d--) {
        it->idx[d] = (int)(linear % shape[d]);
        linear /= shape[d];
        it->oa += it->idx[d] * sa[d];
        it->ob += it->idx[d] * sb[d];
    }
}

static inline void nd_next(NdIter *it) {
    for (int d = it->ndim - 1; d >= 0; d--) {
        it->oa += it->sa[d];
        it->ob += it->sb[d];
        if (++it->idx[d] < it->shape[d]) return;
        it->oa -= it->sa[d] * it->shape[d];
        it->ob -= it->sb[d] * it->shape[d];
        it->idx[d] = 0;
    }
}

/* [begin, end) of this thread's share of n items (inside an omp parallel region). */
void cpu_thread_range(int64_t n, int64_t *begin, int64_t *end);

/* Scratch buffers that grow and never shrink, so a warm training loop does not allocate:
 * cpu_scratch for one kernel call at a time (outside parallel regions; slots 0-2), cpu_thread_scratch for
 * the calling OpenMP thread (slots 0-2). */
void *cpu_scratch(int slot, size_t bytes);
void *cpu_thread_scratch(int slot, size_t bytes);

/* How 3x3 stride-1 convolutions run (winograd.inc): WINO_AUTO (the default) picks each layer's
 * Winograd tile by its plane, WINO_F2 and WINO_F4 use F(2x2, 3x3) or F(4x4, 3x3) everywhere,
 * WINO_OFF the im2col products. The environment's FINCH_CONV (im2col, winograd2, winograd4,
 * auto) sets it when the CPU backend starts; tests set it directly. */
enum { WINO_OFF, WINO_F2, WINO_F4, WINO_AUTO };
extern int cpu_winograd;

#ifdef __cplusplus
}
#endif

#endif
