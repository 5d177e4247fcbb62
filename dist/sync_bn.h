/* Synchronised batch norm for data-parallel training: statistics over every process's batch.
 *
 * ft_dist_sum_op is the one collective on the tape: y = the sum of x over the processes, whose
 * backward sums dL/dy over the processes the same way. Batch norm built on it (layers/ does,
 * when batchnorm_sync is set) normalises each process's share by the whole batch's mean and
 * variance, with the whole batch's gradient: what one process with the whole batch computes. */
#ifndef FINCH_SYNC_BN_H
#define FINCH_SYNC_BN_H

#include "core/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

Tensor *ft_dist_sum_op(Tape *tp, Tensor *x);
/* Turn synchronised batch norm on (for the processes of this job) or off. */
void dist_sync_batchnorm(bool on);

#ifdef __cplusplus
}
#endif

#endif
