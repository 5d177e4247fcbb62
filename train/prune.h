/* Pruning (ProtoPNet): a prototype whose k nearest training patches are mostly of other classes
 * (fewer than min_own of its own) stands for nothing specific to its class and is removed; the
 * last layer is then re-optimised (staged_last_layer).
 *
 * As ProtoPNet's find_nearest, each image contributes one patch per prototype, its nearest, and
 * the k nearest images are kept (ties: the earlier image). */
#ifndef FINCH_PRUNE_H
#define FINCH_PRUNE_H

#include "models/protonet.h"
#include "data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For every prototype j, the k images of ds (subset[0..n), all when subset is NULL) nearest to
 * it: image[j * k + i] (dataset index; -1 when n < k) and dist[j * k + i], nearest first. Model
 * in eval mode, batches on its device. */
void prune_nearest(ProtoNet *p, const Dataset *ds, const int32_t *subset, int n, int batch, int k, int *image, double *dist,
                   bool quiet);

/* keep[j] = at least min_own of prototype j's k nearest images are of its class; own[j] = how
 * many are. Returns the number kept. */
int prune_select(const ProtoNet *p, const Dataset *ds, const int *image, int k, int min_own, bool *keep, int *own);

#ifdef __cplusplus
}
#endif

#endif
