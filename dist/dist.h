/* Collectives for data-parallel work: one interface over the engine the process was launched with.
 *
 *   none  one process (no launcher, or a build without MPI): every collective is a no-op
 *   mpi   processes started by mpirun (Open MPI): sums and broadcasts of host buffers
 *   nccl  GPU buffers between processes that each drive one GPU, bootstrapped over MPI
 *         (compiled when nccl.h is found beside CUDA; chosen for CUDA tensors when there)
 *
 * ft_dist_init() looks at the environment: under mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK set) it starts MPI, otherwise the process is rank 0 of 1 and never touches MPI. Every
 * wait has a timeout (FINCH_DIST_TIMEOUT seconds, default 600): a peer that died or hangs makes
 * the others stop with a message naming the collective, then MPI_Abort ends the job, and mpirun
 * names the rank that failed. Collectives are called in the same order on every rank. */
#ifndef FINCH_DIST_H
#define FINCH_DIST_H

#include <stdbool.h>
#include <stdint.h>
#include "core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts the engine (idempotent); 0, or -1 with ft_last_error(). */
int ft_dist_init(void);
/* The end of this process's work with exit status rc. 0, or a stop by signal (128 + signal),
 * which every rank reaches together: the engine ends in order. Anything else is an error on this
 * rank: with several, the whole job is ended (MPI_Abort), so no rank waits for this one. An
 * exit() without it (a fatal error) ends the job the same way. */
void ft_dist_end(int rc);
int ft_dist_rank(void);
int ft_dist_size(void);
static inline bool ft_dist_active(void) { return ft_dist_size() > 1; }
/* "none", "mpi" (and "mpi+nccl" when NCCL is in the build) */
const char *ft_dist_engine(void);
/* Which engines this build has: "mpi", "nccl", both or none, comma separated ("" for none). */
const char *ft_dist_built(void);

/* This rank's contiguous share [*lo, *hi) of n items cut into batches of `batch` (the last may be
 * short): whole batches, rank r's from batch nb r / size to nb (r + 1) / size of the nb, so that
 * every batch is one a single process would have made (results that depend on a batch's
 * company, such as an attack's early stop, do not change with the rank count). */
void ft_dist_share(int n, int batch, int *lo, int *hi);
/* Rows of n: each rank holds its share's rows of buf (rows of row_bytes; shares by batch as
 * ft_dist_share); afterwards every rank holds all n, in order. */
int ft_dist_gather_rows(void *buf, size_t row_bytes, int n, int batch);

/* In-place sums over all ranks; blocking. t: a contiguous float32 or float64 tensor on any
 * device (CUDA tensors go through NCCL; without NCCL in the build they are refused). */
int ft_dist_allreduce(Tensor *t);
int ft_dist_allreduce_f64(double *v, int n);            /* host values */
/* Root's bytes to every rank (host memory). */
int ft_dist_broadcast(void *buf, size_t bytes, int root);
/* Root's tensor values to every rank (any device). */
int ft_dist_broadcast_tensor(Tensor *t, int root);
int ft_dist_barrier(void);
/* Every rank's `bytes` of send, in rank order, into recv (room for size x bytes) on every rank. */
int ft_dist_allgather(const void *send, size_t bytes, void *recv);
/* The same for pieces of any length: every rank's bytes in rank order in *out (allocated; the
 * caller frees it; one spare zero byte at the end), each rank's length in lens[rank]. */
int ft_dist_allgather_var(const void *send, size_t bytes, char **out, size_t *lens);

/* A started in-place sum of a tensor, progressed by ft_dist_test and finished by ft_dist_wait
 * (which frees it). Overlaps with computation: call ft_dist_test between pieces of work. */
typedef struct DistReq DistReq;
DistReq *ft_dist_iallreduce(Tensor *t);
bool ft_dist_test(DistReq *r);      /* true when done */
int ft_dist_wait(DistReq *r);       /* 0, or -1 (it timed out: the job is then aborted) */

#ifdef __cplusplus
}
#endif

#endif
