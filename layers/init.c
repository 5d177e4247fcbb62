#include <math.h>
#include "init.h"

int64_t init_fan(const Tensor *w, bool fan_out) {
    FT_CHECK(w->shape.ndim >= 2, "fan of a tensor with shape %s (expected at least 2 dims)", FT_SHAPE_STR(w->shape));
    if (w->numel == 0) return 1;   /* an empty tensor (ModelConfig.param_budget): nothing to draw */
    int64_t receptive = w->numel / ((int64_t)w->shape.d[0] * w->shape.d[1]);
    return (fan_out ? w->shape.d[0] : w->shape.d[1]) * receptive;
}

void init_kaiming_normal(Tensor *w, bool fan_out, Rng *rng) {
    rng_normal_(rng, w, 0, sqrt(2.0 / (double)init_fan(w, fan_out)));
}

void init_kaiming_uniform(Tensor *w, bool fan_out, Rng *rng) {
    double b = sqrt(6.0 / (double)init_fan(w, fan_out));
    rng_uniform_(rng, w, -b, b);
}

void init_torch_default(Tensor *w, Tensor *b, Rng *rng) {
    double bound = 1.0 / sqrt((double)init_fan(w, false));
    rng_uniform_(rng, w, -bound, bound);   /* kaiming_uniform with a = sqrt(5) reduces to this */
    if (b) rng_uniform_(rng, b, -bound, bound);
}

void init_uniform(Tensor *t, double lo, double hi, Rng *rng) { rng_uniform_(rng, t, lo, hi); }
