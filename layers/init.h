/* Weight initialisers (PyTorch's definitions). fan_in = in_channels * kh * kw (or in_features),
 * fan_out = out_channels * kh * kw. */
#ifndef FINCH_INIT_H
#define FINCH_INIT_H

#include "core/finch.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kaiming/He normal for ReLU: std = sqrt(2 / fan) with fan = fan_in or fan_out. */
void init_kaiming_normal(Tensor *w, bool fan_out, Rng *rng);
/* Kaiming uniform for ReLU: bound = sqrt(6 / fan). */
void init_kaiming_uniform(Tensor *w, bool fan_out, Rng *rng);
/* PyTorch's default for nn.Conv2d / nn.Linear: weight and bias uniform on +-1/sqrt(fan_in). */
void init_torch_default(Tensor *w, Tensor *b, Rng *rng);
void init_uniform(Tensor *t, double lo, double hi, Rng *rng);
int64_t init_fan(const Tensor *w, bool fan_out);

#ifdef __cplusplus
}
#endif

#endif
