/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
 * a counter-based generator. Output depends only on (key, counter), so element i of a random
 * fill can be computed by any thread on any device, and a run is bit-reproducible. */
#ifndef FINCH_PHILOX_H
#define FINCH_PHILOX_H

#include <math.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __CUDACC__
#define FT_HD __host__ __device__
#else
#define FT_HD
#endif

static inline FT_HD void philox4x32(uint64_t counter, uint64_t seed, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1; c3 = (uint32_t)p0; c0 = n0; c2 = n2;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* Element i of a uniform fill on [0, 1): 24 random bits, so float and double fills agree. */
static inline FT_HD double philox_uniform(uint64_t seed, uint64_t counter, int64_t i) {
    uint32_t r[4];
    philox4x32(counter + (uint64_t)(i >> 2), seed, r);
    return (r[i & 3] >> 8) * (1.0 / 16777216.0);
}

/* Element i of a standard normal fill (Box-Muller on two words of its own). */
static inline FT_HD double philox_normal(uint64_t seed, uint64_t counter, int64_t i) {
    uint32_t r[4];
    philox4x32(counter + (uint64_t)(i >> 1), seed, r);
    int k = (int)(i & 1) * 2;
    double u1 = ((r[k] >> 8) + 1.0) * (1.0 / 16777217.0);   /* (0, 1): log is finite */
    double u2 = (r[k + 1] >> 8) * (1.0 / 16777216.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* How far a fill of n elements advances the counter. */
static inline FT_HD uint64_t philox_blocks(int64_t n, int normal) {
    return normal ? (uint64_t)(n + 1) / 2 : (uint64_t)(n + 3) / 4;
}

#ifdef __cplusplus
}
#endif

#endif
