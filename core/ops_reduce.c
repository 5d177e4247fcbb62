/* Reductions and softmax.
 *   sum/mean/max/min: x [d0..dk] -> the kept dims (reduced dims as size 1 with keepdim)
 *   softmax/log_softmax: x [any] -> same shape, normalised along one dim */
#include "ops.h"
#include "backend.h"
#include "error.h"

typedef struct { ReduceOp op; Shape kshape; double scale; int64_t *arg; } ReduceCtx;

static void reduce_backward(Tape *tp, Node *n) {
    ReduceCtx *c = n->ctx;
    Tensor *g = n->out->grad, *x = n->in[0], *gx = ft_grad(tp, x);
    Device dev = g->storage->device;
    if (c->op == RED_SUM) {   /* every input element receives scale * its output's gradient */
        Shape s;
        Bcast geo = ft_broadcast("sum backward", x->shape, c->kshape, &s);
        FT_KERNEL(dev, axpy, (&(AxpyArgs){ g->dtype, geo, x->numel, c->scale, ft_ptr(g), ft_ptr(gx) }));
    } else {                  /* only the winner receives it */
        FT_KERNEL(dev, scatter_add, (&(ScatterAddArgs){ g->dtype, g->numel, ft_ptr(g), c->arg, ft_ptr(gx) }));
    }
}

static Tensor *reduce(Tape *tp, const char *name, ReduceOp op, bool mean, Tensor *x, unsigned dims,
                      bool keepdim, Tensor **arg) {
    FT_INPUT(x);
    if (!ft_check_float(name, x)) return NULL;
    int nd = x->shape.ndim;
    unsigned mask = dims & (nd >= 32 ? ~0u : (1u << nd) - 1);
    FT_ARG(dims == FT_ALL_DIMS || mask == dims, "%s: dims mask 0x%x names dimensions beyond the rank of %s",
             name, dims, FT_SHAPE_STR(x->shape));
    Shape kshape = x->shape, out = { 0 };
    int64_t count = 1;
    for (int d = 0; d < nd; d++) {
        if (mask >> d & 1) {
            FT_ARG(x->shape.d[d] > 0 || op == RED_SUM, "%s over an empty dimension of %s", name, FT_SHAPE_STR(x->shape));
            count *= x->shape.d[d];
            kshape.d[d] = 1;
            if (keepdim) out.d[out.ndim++] = 1;
        } else {
            out.d[out.ndim++] = x->shape.d[d];
        }
    }
    Device dev = x->storage->device;
    Tensor *y = ft_new(tp, x->dtype, out);
    double scale = mean ? 1.0 / (double)count : 1.0;
    bool need = ft_needs_grad(tp, x) && op != RED_SUM;
    int64_t *flat = need ? arena_alloc_data(tp->arena, (size_t)y->numel * sizeof(int64_t)) : NULL;
    Tensor *local = arg ? ft_new(tp, FT_I32, out) : NULL;
    ReduceArgs r = { .dt = x->dtype, .op = op, .ndim = nd, .mask = mask, .x = ft_ptr(x), .y = ft_ptr(y),
                     .arg = flat, .arg_local = local ? ft_ptr(local) : NULL, .scale = scale };
    for (int d = 0; d < nd; d++) r.shape[d] = x->shape.d[d];
    FT_KERNEL(dev, reduce, &r);
    if (arg) *arg = local;
    Node *n = ft_record(tp, name, reduce_backward, y, 1, &x, sizeof(ReduceCtx));
    if (n) *(ReduceCtx *)n->ctx = (ReduceCtx){ op, kshape, scale, flat };
    return y;
}

Tensor *ft_sum(Tape *tp, Tensor *x, unsigned dims, bool keepdim) { return reduce(tp, "sum", RED_SUM, false, x, dims, keepdim, NULL); }
Tensor *ft_mean(Tape *tp, Tensor *x, unsigned dims, bool keepdim) { return reduce(tp, "mean", RED_SUM, true, x, dims, keepdim, NULL); }
Tensor *ft_max(Tape *tp, Tensor *x, unsigned dims, bool keepdim, Tensor **arg) { return reduce(tp, "max", RED_MAX, false, x, dims, keepdim, arg); }
Tensor *ft_min(Tape *tp, Tensor *x, unsigned dims, bool keepdim, Tensor **arg) { return reduce(tp, "min", RED_MIN, false, x, dims, keepdim, arg); }

/* ---- softmax ---- */

typedef struct { bool log; int64_t outer, dim, inner; } SoftmaxCtx;

static void softmax_backward(Tape *tp, Node *n) {
    SoftmaxCtx *c = n->ctx;
    Tensor *g = n->out->grad, *x = n->in[0];
    FT_KERNEL(g->storage->device, softmax_grad, (&(SoftmaxGradArgs){ g->dtype, c->log, c->outer, c->dim,
              c->inner, ft_ptr(g), ft_ptr(n->out), ft_ptr(ft_grad(tp, x)) }));
}

static Tensor *softmax(Tape *tp, const char *name, bool log, Tensor *x, int dim) {
    FT_INPUT(x);
    if (!ft_check_float(name, x)) return NULL;
    int nd = x->shape.ndim;
    if (dim < 0) dim += nd;
    FT_ARG(dim >= 0 && dim < nd, "%s: dim out of range for %s", name, FT_SHAPE_STR(x->shape));
    SoftmaxCtx c = { log, 1, x->shape.d[dim], 1 };
    for (int d = 0; d < dim; d++) c.outer *= x->shape.d[d];
    for (int d = dim + 1; d < nd; d++) c.inner *= x->shape.d[d];
    Tensor *y = ft_new_like(tp, x);
    FT_KERNEL(x->storage->device, softmax, (&(SoftmaxArgs){ x->dtype, log, c.outer, c.dim, c.inner, ft_ptr(x), ft_ptr(y) }));
    Node *n = ft_record(tp, name, softmax_backward, y, 1, &x, sizeof c);
    if (n) *(SoftmaxCtx *)n->ctx = c;
    return y;
}

Tensor *ft_softmax(Tape *tp, Tensor *x, int dim) { return softmax(tp, "softmax", false, x, dim); }
Tensor *ft_log_softmax(Tape *tp, Tensor *x, int dim) { return softmax(tp, "log_softmax", true, x, dim); }
