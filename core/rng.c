#include "rng.h"
#include "backend.h"
#include "philox.h"
#include "error.h"

static void fill(Rng *r, Tensor *t, bool normal, double a, double b) {
    FT_KERNEL(t->storage->device, random, (&(RandomArgs){ t->dtype, t->numel, r->seed, r->counter, normal, a, b,
              ft_ptr(t) }));
    r->counter += philox_blocks(t->numel, normal);
}

void rng_uniform_(Rng *r, Tensor *t, double lo, double hi) { fill(r, t, false, lo, hi); }
void rng_normal_(Rng *r, Tensor *t, double mean, double std) { fill(r, t, true, mean, std); }

uint32_t rng_u32(Rng *r) {
    uint32_t out[4];
    philox4x32(r->counter++, r->seed, out);
    return out[0];
}

double rng_double(Rng *r) {
    uint32_t out[4];
    philox4x32(r->counter++, r->seed, out);
    return ((uint64_t)out[0] << 21 ^ out[1] >> 11) * (1.0 / 9007199254740992.0);
}

/* Fisher-Yates with an unbiased bounded draw. */
void rng_shuffle(Rng *r, int32_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_double(r) * (double)(i + 1));
        int32_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}
