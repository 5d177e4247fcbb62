/* Seeded, counter-based random numbers (Philox): a fill consumes a block of counters, so the
 * same seed gives the same numbers on any device and any thread count. */
#ifndef FINCH_RNG_H
#define FINCH_RNG_H

#include <stdint.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { uint64_t seed, counter; } Rng;

static inline Rng rng_new(uint64_t seed) { return (Rng){ seed, 0 }; }
void rng_uniform_(Rng *r, Tensor *t, double lo, double hi);
void rng_normal_(Rng *r, Tensor *t, double mean, double std);
/* Host-side draws (shuffles, choices). */
uint32_t rng_u32(Rng *r);
double rng_double(Rng *r);                          /* [0, 1) */
void rng_shuffle(Rng *r, int32_t *a, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
