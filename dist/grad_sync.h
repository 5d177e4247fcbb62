/* Data-parallel gradients: each process computes the gradient of its share of the batch, and
 * grad_sync_backward leaves the average over all processes in every parameter's gradient, as if
 * one process had computed the whole batch.
 *
 * The flat gradient buffer (layers/params.h) is cut into contiguous buckets on parameter
 * boundaries (about bucket_mib MiB each, as PyTorch DDP's 25). Parameters are registered in the
 * order the forward uses them, so the backward finishes the last bucket first: each bucket's sum
 * across processes starts the moment the backward has passed the last op that uses one of its
 * parameters, and runs while the backward goes on (the tape's after_node hook also progresses
 * the sums in flight). The average is taken after the last one has arrived. */
#ifndef FINCH_GRAD_SYNC_H
#define FINCH_GRAD_SYNC_H

#include "core/autograd.h"
#include "layers/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct GradSync GradSync;

/* For ps (finalized). bucket_mib <= 0: 25. */
GradSync *grad_sync_new(ParamSet *ps, double bucket_mib);
void grad_sync_free(GradSync *g);
/* ft_backward(tp, loss) with the gradients averaged across processes (with one process, exactly
 * ft_backward). 0, or -1 with ft_last_error(). */
int grad_sync_backward(GradSync *g, Tape *tp, Tensor *loss);
int grad_sync_buckets(const GradSync *g);
/* Seconds spent after the backward waiting for the last sums so far (the part the overlap did not hide). */
double grad_sync_wait_seconds(const GradSync *g);
/* For tests and reports: plan the buckets for the backward of tp's tape (grad_sync_backward does
 * this itself); then bucket b's slice of the flat gradient, and the index of the tape node after
 * whose backward it is final (-1: no node touches it). */
void grad_sync_plan(GradSync *g, const Tape *tp);
Tensor *grad_sync_bucket(const GradSync *g, int b);
int grad_sync_ready_at(const GradSync *g, int b);
/* Every process's parameters and buffers (running statistics) set to rank 0's. */
int params_broadcast(ParamSet *ps);

#ifdef __cplusplus
}
#endif

#endif
