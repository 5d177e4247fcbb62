/* dist.h's engines: none (one process) and MPI; NCCL's half lives in nccl.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dist.h"
#include "nccl_engine.h"
#include "core/backend.h"
#include "core/error.h"

static int g_state;            /* 0: not started, 1: running, 2: finalized */
static int g_rank, g_size = 1;
static bool g_mpi, g_nccl;
static double g_timeout = 600;

int ft_dist_rank(void) { return g_rank; }
int ft_dist_size(void) { return g_size; }
const char *ft_dist_engine(void) { return !g_mpi ? "none" : g_nccl ? "mpi+nccl" : "mpi"; }

const char *ft_dist_built(void) {
#if defined(FINCH_MPI) && defined(FINCH_NCCL)
    return "mpi,nccl";
#elif defined(FINCH_MPI)
    return "mpi";
#else
    return "";
#endif
}

/* Launched by an MPI launcher? (Open MPI, MPICH/Hydra or Slurm's PMI, PMIx.) */
static bool launched(void) {
    const char *vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK" };
    for (int i = 0; i < 3; i++)
        if (getenv(vars[i])) return true;
    return false;
}

static int check_dtype(const Tensor *t, const char *what) {
    if (t->dtype != FT_F32 && t->dtype != FT_F64)
        return ft_error("%s: %s tensors cannot be summed across ranks (float32 or float64)", what, ft_dtype_name(t->dtype));
    return 0;
}

#ifdef FINCH_MPI
#include <mpi.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct DistReq {
    MPI_Request mpi;
    NcclReq *nccl;
    Tensor *t;
    double t0;
};

static void start_nccl(void);

static void mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "finch: error (rank %d of %d): %s: %s; ending the job\n", g_rank, g_size, what, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* MPI_Test until done; past the timeout, a peer is gone: say so and end the whole job. Every test
 * moves the transfer along (a large sum goes in many pieces), so the first second polls without
 * pause, as MPI_Wait would; a wait longer than that sleeps between tests. */
static void wait_request(MPI_Request *rq, const char *what, int64_t n, double t0) {
    double start = now_s();
    for (long spins = 0;; spins++) {
        int done = 0, rc = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) mpi_fail(rc, what);
        if (done) return;
        if (spins % 1024) continue;
        double t = now_s();
        if (t - t0 > g_timeout) {
            fprintf(stderr, "finch: error (rank %d of %d): %s of %lld values did not complete within %.0f s "
                    "(FINCH_DIST_TIMEOUT): another rank has died or hangs; ending the job\n", g_rank, g_size, what,
                    (long long)n, g_timeout);
            MPI_Abort(MPI_COMM_WORLD, 1);
            exit(1);
        }
        if (t - start > 1) nanosleep(&(struct timespec){ 0, 100000 }, NULL);
    }
}

static int mpi_start(void) {
    int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return ft_error("MPI_Init_thread failed (code %d)", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_mpi = true;
    return 0;
}

static MPI_Datatype mpi_type(const Tensor *t) { return t->dtype == FT_F64 ? MPI_DOUBLE : MPI_FLOAT; }

DistReq *ft_dist_iallreduce(Tensor *t) {
    DistReq *r = ft_xcalloc(1, sizeof *r);
    r->t = t;
    r->t0 = now_s();
    r->mpi = MPI_REQUEST_NULL;
    if (g_size == 1) return r;
    if (t->storage->device == FT_CUDA) {
        start_nccl();
        r->nccl = nccl_iallreduce(t);
        return r;
    }
    int rc = MPI_Iallreduce(MPI_IN_PLACE, ft_ptr(t), (int)t->numel, mpi_type(t), MPI_SUM, MPI_COMM_WORLD, &r->mpi);
    if (rc != MPI_SUCCESS) mpi_fail(rc, "all-reduce");
    return r;
}

bool ft_dist_test(DistReq *r) {
    if (r->nccl) return nccl_test(r->nccl);
    if (r->mpi == MPI_REQUEST_NULL) return true;
    int done = 0, rc = MPI_Test(&r->mpi, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) mpi_fail(rc, "all-reduce");
    return done;
}

int ft_dist_wait(DistReq *r) {
    if (!r) return 0;
    if (r->nccl) nccl_wait(r->nccl, g_timeout);
    else if (r->mpi != MPI_REQUEST_NULL) wait_request(&r->mpi, "an all-reduce", r->t->numel, r->t0);
    free(r);
    return 0;
}

int ft_dist_allreduce_f64(double *v, int n) {
    if (g_size == 1) return 0;
    MPI_Request rq;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &rq);
    if (rc != MPI_SUCCESS) mpi_fail(rc, "all-reduce");
    wait_request(&rq, "an all-reduce", n, now_s());
    return 0;
}

int ft_dist_broadcast(void *buf, size_t bytes, int root) {
    if (g_size == 1) return 0;
    if (bytes > (size_t)INT32_MAX) return ft_error("broadcast of %zu bytes: at most 2 GiB at once", bytes);
    MPI_Request rq;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &rq);
    if (rc != MPI_SUCCESS) mpi_fail(rc, "broadcast");
    wait_request(&rq, "a broadcast", (int64_t)bytes, now_s());
    return 0;
}

int ft_dist_barrier(void) {
    if (g_size == 1) return 0;
    MPI_Request rq;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    if (rc != MPI_SUCCESS) mpi_fail(rc, "barrier");
    wait_request(&rq, "a barrier", 0, now_s());
    return 0;
}

int ft_dist_allgather(const void *send, size_t bytes, void *recv) {
    if (g_size == 1) { memcpy(recv, send, bytes); return 0; }
    if (bytes > (size_t)INT32_MAX) return ft_error("all-gather of %zu bytes per rank: at most 2 GiB", bytes);
    MPI_Request rq;
    int rc = MPI_Iallgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &rq);
    if (rc != MPI_SUCCESS) mpi_fail(rc, "all-gather");
    wait_request(&rq, "an all-gather", (int64_t)bytes, now_s());
    return 0;
}

static void mpi_stop(int rc) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return;
    if (rc == 0 || rc >= 128 || g_size == 1) MPI_Finalize();
    else MPI_Abort(MPI_COMM_WORLD, rc);
}

static void mpi_broadcast_id(void *id, size_t bytes) { ft_dist_broadcast(id, bytes, 0); }

/* NCCL starts at the first collective on CUDA tensors (every rank reaches it at the same point). */
static void start_nccl(void) {
    if (g_nccl) return;
    if (nccl_start(g_rank, g_size, mpi_broadcast_id) != 0) {
        fprintf(stderr, "finch: error (rank %d of %d): %s; ending the job\n", g_rank, g_size, ft_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
        exit(1);
    }
    g_nccl = true;
}

#else   /* no MPI in this build: one process */

struct DistReq { int unused; };
static int mpi_start(void) {
    return ft_error("this process was started by an MPI launcher, but finch was built without MPI "
                    "(install libopenmpi-dev and rebuild)");
}
static void mpi_stop(int rc) { (void)rc; }
static void start_nccl(void) {}
DistReq *ft_dist_iallreduce(Tensor *t) { (void)t; return ft_xcalloc(1, sizeof(DistReq)); }
bool ft_dist_test(DistReq *r) { (void)r; return true; }
int ft_dist_wait(DistReq *r) { free(r); return 0; }
int ft_dist_allreduce_f64(double *v, int n) { (void)v; (void)n; return 0; }
int ft_dist_broadcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; return 0; }
int ft_dist_barrier(void) { return 0; }
int ft_dist_allgather(const void *send, size_t bytes, void *recv) { memcpy(recv, send, bytes); return 0; }
#endif

void ft_dist_end(int rc) {
    if (g_state != 1) return;
    g_state = 2;
    nccl_stop();
    if (g_mpi) mpi_stop(rc);
}

static void at_exit(void) { ft_dist_end(1); }   /* reached only by an exit() that skipped ft_dist_end */

int ft_dist_init(void) {
    if (g_state) return 0;
    g_state = 1;
    const char *t = getenv("FINCH_DIST_TIMEOUT");
    if (t) {
        char *end;
        double v = strtod(t, &end);
        if (end == t || *end || !(v > 0)) return ft_error("FINCH_DIST_TIMEOUT='%s': expected seconds > 0", t);
        g_timeout = v;
    }
    if (!launched()) return 0;
    if (mpi_start() != 0) return -1;
    atexit(at_exit);
    if (g_size > 1) ft_set_error_label("rank %d of %d", g_rank, g_size);
    return 0;
}

int ft_dist_allreduce(Tensor *t) {
    if (check_dtype(t, "all-reduce") != 0) return -1;
    if (g_size == 1) return 0;
    if (t->storage->device == FT_CUDA && !strstr(ft_dist_built(), "nccl"))
        return ft_error("all-reduce of a CUDA tensor across %d ranks needs NCCL, which this build lacks", g_size);
    return ft_dist_wait(ft_dist_iallreduce(t));
}

int ft_dist_allgather_var(const void *send, size_t bytes, char **out, size_t *lens) {
    if (ft_dist_allgather(&bytes, sizeof bytes, lens) != 0) return -1;
    size_t max = 0, total = 0;
    for (int r = 0; r < g_size; r++) { max = lens[r] > max ? lens[r] : max; total += lens[r]; }
    char *mine = ft_xcalloc(max + 1, 1), *all = ft_xmalloc((size_t)g_size * (max + 1));
    if (bytes) memcpy(mine, send, bytes);
    int rc = ft_dist_allgather(mine, max + 1, all);   /* padded to the longest */
    *out = ft_xmalloc(total + 1);
    size_t at = 0;
    for (int r = 0; rc == 0 && r < g_size; r++) {
        memcpy(*out + at, all + (size_t)r * (max + 1), lens[r]);
        at += lens[r];
    }
    (*out)[at] = 0;
    free(mine);
    free(all);
    return rc;
}

void ft_dist_share(int n, int batch, int *lo, int *hi) {
    if (batch < 1) batch = 1;
    int64_t nb = (n + (int64_t)batch - 1) / batch, a = nb * g_rank / g_size * batch, b = nb * (g_rank + 1) / g_size * batch;
    *lo = (int)(a < n ? a : n);
    *hi = (int)(b < n ? b : n);
}

int ft_dist_gather_rows(void *buf, size_t row_bytes, int n, int batch) {
    if (g_size == 1) return 0;
    int lo, hi;
    ft_dist_share(n, batch, &lo, &hi);
    char *all;
    size_t *lens = ft_xmalloc((size_t)g_size * sizeof *lens);
    int rc = ft_dist_allgather_var((char *)buf + (size_t)lo * row_bytes, (size_t)(hi - lo) * row_bytes, &all, lens);
    if (rc == 0) memcpy(buf, all, (size_t)n * row_bytes);   /* the shares, in rank order, are the rows in order */
    free(all);
    free(lens);
    return rc;
}

int ft_dist_broadcast_tensor(Tensor *t, int root) {
    if (g_size == 1) return 0;
    if (t->storage->device == FT_CUDA) {
        if (!strstr(ft_dist_built(), "nccl"))
            return ft_error("broadcast of a CUDA tensor across %d ranks needs NCCL, which this build lacks", g_size);
        start_nccl();
        return nccl_broadcast(t, root, g_timeout);
    }
    return ft_dist_broadcast(ft_ptr(t), (size_t)t->numel * ft_dtype_size(t->dtype), root);
}
