/* dist.c's NCCL half: sums and broadcasts of CUDA tensors between ranks that each drive one GPU.
 * Compiled in full when the build finds nccl.h beside CUDA (FINCH_NCCL); otherwise every entry
 * fails with a message saying so. Private to dist/. */
#ifndef FINCH_NCCL_ENGINE_H
#define FINCH_NCCL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include "core/tensor.h"

typedef struct NcclReq NcclReq;

/* One communicator over all ranks; bcast_id sends rank 0's unique id to every rank. 0 or -1. */
int nccl_start(int rank, int size, void (*bcast_id)(void *id, size_t bytes));
void nccl_stop(void);
/* The sum runs on NCCL's own stream after the work queued so far; nccl_wait makes the work queued
 * after it wait for the sum (it does not block the host unless the timeout check needs to). */
NcclReq *nccl_iallreduce(Tensor *t);
bool nccl_test(NcclReq *r);
void nccl_wait(NcclReq *r, double timeout_s);
int nccl_broadcast(Tensor *t, int root, double timeout_s);

#endif
