/* nccl_engine.h: NCCL for CUDA tensors, on a stream of its own ordered against finch's default
 * stream by events, so that a bucket's sum overlaps the rest of the backward. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "nccl_engine.h"
#include "core/error.h"

#ifdef FINCH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

struct NcclReq { cudaEvent_t done; int64_t n; };

static ncclComm_t comm;
static cudaStream_t stream;
static bool started;

#define CUDA_OK(call) do { cudaError_t e_ = (call); \
    if (e_ != cudaSuccess) ft_fatal_at(__FILE__, __LINE__, "%s: %s", #call, cudaGetErrorString(e_)); } while (0)
#define NCCL_OK(call) do { ncclResult_t r_ = (call); \
    if (r_ != ncclSuccess) ft_fatal_at(__FILE__, __LINE__, "%s: %s", #call, ncclGetErrorString(r_)); } while (0)

static ncclDataType_t nccl_type(const Tensor *t) { return t->dtype == FT_F64 ? ncclFloat64 : ncclFloat32; }

int nccl_start(int rank, int size, void (*bcast_id)(void *id, size_t bytes)) {
    if (started) return 0;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) return ft_error("NCCL: this rank sees no GPU");
    /* one GPU per rank on a node: the launcher's local rank picks it (before finch's first use of it) */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (local) CUDA_OK(cudaSetDevice(atoi(local) % count));
    ncclUniqueId id;
    if (rank == 0) NCCL_OK(ncclGetUniqueId(&id));
    bcast_id(&id, sizeof id);
    NCCL_OK(ncclCommInitRank(&comm, size, id, rank));
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    started = true;
    return 0;
}

void nccl_stop(void) {
    if (!started) return;
    ncclCommDestroy(comm);
    cudaStreamDestroy(stream);
    started = false;
}

/* Make `to` wait for the work queued so far on `from`. */
static void order(cudaStream_t from, cudaStream_t to) {
    cudaEvent_t e;
    CUDA_OK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    CUDA_OK(cudaEventRecord(e, from));
    CUDA_OK(cudaStreamWaitEvent(to, e, 0));
    CUDA_OK(cudaEventDestroy(e));   /* released once it has fired */
}

/* An in-place sum (root < 0) or broadcast from root of t, on NCCL's stream after the work queued so far. */
static NcclReq *launch(Tensor *t, int root) {
    NcclReq *r = ft_xcalloc(1, sizeof *r);
    r->n = t->numel;
    order(cudaStreamLegacy, stream);
    if (root < 0) NCCL_OK(ncclAllReduce(ft_ptr(t), ft_ptr(t), (size_t)t->numel, nccl_type(t), ncclSum, comm, stream));
    else NCCL_OK(ncclBroadcast(ft_ptr(t), ft_ptr(t), (size_t)t->numel, nccl_type(t), root, comm, stream));
    CUDA_OK(cudaEventCreateWithFlags(&r->done, cudaEventDisableTiming));
    CUDA_OK(cudaEventRecord(r->done, stream));
    return r;
}

NcclReq *nccl_iallreduce(Tensor *t) { return launch(t, -1); }

bool nccl_test(NcclReq *r) { return cudaEventQuery(r->done) == cudaSuccess; }

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void nccl_wait(NcclReq *r, double timeout_s) {
    double t0 = now_s();
    while (cudaEventQuery(r->done) == cudaErrorNotReady) {
        if (now_s() - t0 > timeout_s) {
            ncclCommAbort(comm);
            ft_fatal("an NCCL all-reduce of %lld values did not complete within %.0f s (FINCH_DIST_TIMEOUT): another "
                     "rank has died or hangs", (long long)r->n, timeout_s);
        }
        nanosleep(&(struct timespec){ 0, 20000 }, NULL);
    }
    CUDA_OK(cudaEventDestroy(r->done));
    free(r);
}

int nccl_broadcast(Tensor *t, int root, double timeout_s) {
    nccl_wait(launch(t, root), timeout_s);
    return 0;
}

#else   /* no NCCL in this build */

struct NcclReq { int unused; };
static int missing(void) { return ft_error("CUDA tensors across ranks need NCCL, which this build lacks (nccl.h not found)"); }
int nccl_start(int rank, int size, void (*bcast_id)(void *id, size_t bytes)) { (void)rank; (void)size; (void)bcast_id; return missing(); }
void nccl_stop(void) {}
NcclReq *nccl_iallreduce(Tensor *t) { (void)t; ft_fatal("%s", (missing(), ft_last_error())); }
bool nccl_test(NcclReq *r) { (void)r; return true; }
void nccl_wait(NcclReq *r, double timeout_s) { (void)timeout_s; free(r); }
int nccl_broadcast(Tensor *t, int root, double timeout_s) { (void)t; (void)root; (void)timeout_s; return missing(); }
#endif
