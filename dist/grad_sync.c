#include <stdlib.h>
#include <time.h>
#include "grad_sync.h"
#include "dist.h"
#include "core/error.h"

struct GradSync {
    ParamSet *ps;
    int n;                  /* buckets */
    int64_t *start;         /* element offsets in flat_grad, n + 1 of them */
    Tensor **view;          /* each bucket's slice of flat_grad */
    int *ready_at;          /* the first tape node using one of its parameters (-1: none) */
    int *order;             /* buckets by ready_at, latest first */
    DistReq **req;
    int next;               /* order[next] is the next bucket to start */
    double waited;          /* seconds in ft_dist_wait after the backward */
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double grad_sync_wait_seconds(const GradSync *g) { return g->waited; }

GradSync *grad_sync_new(ParamSet *ps, double bucket_mib) {
    FT_CHECK(ps->flat_grad, "grad_sync_new: the parameter set is not finalized");
    int64_t total = ps->n_trainable, target = (int64_t)((bucket_mib > 0 ? bucket_mib : 25) * 1048576 / ft_dtype_size(ps->dtype));
    if (target < 1) target = 1;
    GradSync *g = ft_xcalloc(1, sizeof *g);
    g->ps = ps;
    g->start = ft_xmalloc(((size_t)ps->n + 2) * sizeof *g->start);
    g->start[0] = 0;
    int64_t base = ps->flat->offset;
    for (int i = 0; i < ps->n; i++) {   /* a bucket ends at the first parameter end past the target size */
        const Param *p = &ps->items[i];
        if (!p->trainable) continue;
        int64_t end = p->t->offset - base + p->t->numel;
        if (end - g->start[g->n] >= target && end < total) g->start[++g->n] = end;
    }
    g->start[++g->n] = total;
    g->view = ft_xcalloc((size_t)g->n, sizeof *g->view);
    g->ready_at = ft_xmalloc((size_t)g->n * sizeof *g->ready_at);
    g->order = ft_xmalloc((size_t)g->n * sizeof *g->order);
    g->req = ft_xcalloc((size_t)g->n, sizeof *g->req);
    for (int b = 0; b < g->n; b++)
        g->view[b] = ft_tensor_view(ps->flat_grad, g->start[b], SHAPE((int)(g->start[b + 1] - g->start[b])));
    return g;
}

void grad_sync_free(GradSync *g) {
    if (!g) return;
    for (int b = 0; b < g->n; b++) ft_tensor_free(g->view[b]);
    free(g->view); free(g->start); free(g->ready_at); free(g->order); free(g->req); free(g);
}

int grad_sync_buckets(const GradSync *g) { return g->n; }
Tensor *grad_sync_bucket(const GradSync *g, int b) { return g->view[b]; }
int grad_sync_ready_at(const GradSync *g, int b) { return g->ready_at[b]; }

static int bucket_of(const GradSync *g, int64_t off) {
    int lo = 0, hi = g->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (g->start[mid] <= off) lo = mid; else hi = mid - 1;
    }
    return lo;
}

/* Which node last touches each bucket in the backward (the first to use it in the forward). */
void grad_sync_plan(GradSync *g, const Tape *tp) {
    const Storage *flat = g->ps->flat->storage;
    int64_t base = g->ps->flat->offset;
    for (int b = 0; b < g->n; b++) g->ready_at[b] = -1;
    for (int i = tp->n_nodes - 1; i >= 0; i--) {
        const Node *nd = tp->nodes[i];
        for (int j = 0; j < nd->n_in; j++) {
            const Tensor *t = nd->in[j];
            if (!nd->needs[j] || !t || t->storage != flat) continue;
            int first = bucket_of(g, t->offset - base), last = bucket_of(g, t->offset - base + t->numel - 1);
            for (int b = first; b <= last; b++) g->ready_at[b] = i;   /* i falls: the smallest index wins */
        }
    }
    for (int b = 0; b < g->n; b++) g->order[b] = b;
    for (int a = 1; a < g->n; a++)   /* insertion sort, latest ready first (few buckets) */
        for (int b = a; b > 0 && g->ready_at[g->order[b]] > g->ready_at[g->order[b - 1]]; b--) {
            int t = g->order[b]; g->order[b] = g->order[b - 1]; g->order[b - 1] = t;
        }
    g->next = 0;
}

static void after_node(Tape *tp, int i, void *ctx) {
    (void)tp;
    GradSync *g = ctx;
    for (; g->next < g->n && g->ready_at[g->order[g->next]] >= i; g->next++) {
        int b = g->order[g->next];
        g->req[b] = ft_dist_iallreduce(g->view[b]);
    }
    for (int k = 0; k < g->next; k++)   /* MPI moves a sum along only inside MPI calls */
        ft_dist_test(g->req[g->order[k]]);
}

int grad_sync_backward(GradSync *g, Tape *tp, Tensor *loss) {
    if (!ft_dist_active()) return ft_backward(tp, loss);
    grad_sync_plan(g, tp);
    tp->after_node = after_node;
    tp->after_node_ctx = g;
    int rc = ft_backward(tp, loss);
    tp->after_node = NULL;
    tp->after_node_ctx = NULL;
    if (rc != 0) FT_CHECK(g->next == 0, "a backward failed after it had started summing gradients: %s", ft_last_error());
    if (rc != 0) return rc;
    after_node(tp, -1, g);   /* buckets no op used: their zeros, so every process takes part in the same sums */
    double t0 = now_s();
    for (int b = 0; b < g->n; b++) {
        ft_dist_wait(g->req[b]);
        g->req[b] = NULL;
    }
    g->waited += now_s() - t0;
    ft_convert_(g->ps->flat_grad, g->ps->flat_grad, 1.0 / ft_dist_size());
    return 0;
}

int params_broadcast(ParamSet *ps) {
    if (!ft_dist_active()) return 0;
    if (ft_dist_broadcast_tensor(ps->flat, 0) != 0) return -1;
    for (int i = 0; i < ps->n; i++)
        if (!ps->items[i].trainable && ft_dist_broadcast_tensor(ps->items[i].t, 0) != 0) return -1;
    return 0;
}
