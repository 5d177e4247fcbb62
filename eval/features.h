/* A layer's output as a feature vector per image: what retrieval ranks and feature attacks move. */
#ifndef FINCH_FEATURES_H
#define FINCH_FEATURES_H

#include "core/progress.h"
#include "data/dataset.h"
#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layer `layer` of m (models/model.h's taps; eval mode, no gradients) for the images idx[0..n)
 * of ds, in batches, each flattened: [n, *dim] floats (malloc'd). NULL with ft_last_error()
 * (an unknown layer's error lists the model's layers). p (may be NULL) advances by n. */
float *eval_features(Model *m, const Dataset *ds, const int32_t *idx, int n, const char *layer, int batch, int *dim, Progress *p);

#ifdef __cplusplus
}
#endif

#endif
