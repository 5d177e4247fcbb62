/* Pooling.
 *   max_pool2d, avg_pool2d: x [N, C, H, W] -> [N, C, OH, OW], OH = (H + 2 pad - k) / stride + 1
 *   adaptive_avg_pool2d:    x [N, C, H, W] -> [N, C, oh, ow] */
#include "ops.h"
#include "backend.h"
#include "error.h"

typedef struct { PoolGeom g; int32_t *idx; } PoolCtx;

/* The window's geometry over x into *g; false (an op error) when x or the window is wrong. */
static bool pool_geom(const char *op, const Tensor *x, int k, int stride, int pad, PoolGeom *g) {
    if (!x || !ft_check_float(op, x)) return false;
    if (x->shape.ndim != 4) {
        ft_op_error_at(__FILE__, __LINE__, "%s: expected [N, C, H, W], got %s", op, FT_SHAPE_STR(x->shape));
        return false;
    }
    if (!(k >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= k)) {
        ft_op_error_at(__FILE__, __LINE__, "%s: kernel %d, stride %d, pad %d (pad must be at most half the kernel)", op, k, stride, pad);
        return false;
    }
    *g = (PoolGeom){ x->shape.d[0], x->shape.d[1], x->shape.d[2], x->shape.d[3], k, k, stride, stride, pad, pad, 0, 0, true };
    g->OH = (g->H + 2 * pad - k) / stride + 1;
    g->OW = (g->W + 2 * pad - k) / stride + 1;
    if (g->OH > 0 && g->OW > 0) return true;
    ft_op_error_at(__FILE__, __LINE__, "%s: a %d window does not fit %s", op, k, FT_SHAPE_STR(x->shape));
    return false;
}

static void max_pool_backward(Tape *tp, Node *n) {
    PoolCtx *c = n->ctx;
    Tensor *gy = n->out->grad;
    FT_KERNEL(gy->storage->device, max_pool_grad, (&(MaxPoolGradArgs){ gy->dtype, c->g, ft_ptr(gy), c->idx,
              ft_ptr(ft_grad(tp, n->in[0])) }));
}

Tensor *ft_max_pool2d(Tape *tp, Tensor *x, int k, int stride, int pad) {
    PoolGeom g;
    if (!pool_geom("max_pool2d", x, k, stride, pad, &g)) return NULL;
    Tensor *y = ft_new(tp, x->dtype, SHAPE(g.N, g.C, g.OH, g.OW));
    int32_t *idx = arena_alloc_data(tp->arena, (size_t)y->numel * sizeof(int32_t));
    FT_KERNEL(x->storage->device, max_pool, (&(MaxPoolArgs){ x->dtype, g, ft_ptr(x), ft_ptr(y), idx }));
    Node *n = ft_record(tp, "max_pool2d", max_pool_backward, y, 1, &x, sizeof(PoolCtx));
    if (n) *(PoolCtx *)n->ctx = (PoolCtx){ g, idx };
    return y;
}

static void avg_pool_backward(Tape *tp, Node *n) {
    PoolCtx *c = n->ctx;
    Tensor *gy = n->out->grad;
    FT_KERNEL(gy->storage->device, avg_pool_grad, (&(AvgPoolGradArgs){ gy->dtype, c->g, ft_ptr(gy),
              ft_ptr(ft_grad(tp, n->in[0])) }));
}

Tensor *ft_avg_pool2d(Tape *tp, Tensor *x, int k, int stride, int pad, bool count_include_pad) {
    PoolGeom g;
    if (!pool_geom("avg_pool2d", x, k, stride, pad, &g)) return NULL;
    g.count_include_pad = count_include_pad;
    Tensor *y = ft_new(tp, x->dtype, SHAPE(g.N, g.C, g.OH, g.OW));
    FT_KERNEL(x->storage->device, avg_pool, (&(AvgPoolArgs){ x->dtype, g, ft_ptr(x), ft_ptr(y) }));
    Node *n = ft_record(tp, "avg_pool2d", avg_pool_backward, y, 1, &x, sizeof(PoolCtx));
    if (n) *(PoolCtx *)n->ctx = (PoolCtx){ g, NULL };
    return y;
}

static void adaptive_backward(Tape *tp, Node *n) {
    Tensor *gy = n->out->grad, *x = n->in[0];
    FT_KERNEL(gy->storage->device, adaptive_pool_grad, (&(AdaptivePoolGradArgs){ gy->dtype, x->shape.d[0],
              x->shape.d[1], x->shape.d[2], x->shape.d[3], gy->shape.d[2], gy->shape.d[3], ft_ptr(gy),
              ft_ptr(ft_grad(tp, x)) }));
}

Tensor *ft_adaptive_avg_pool2d(Tape *tp, Tensor *x, int oh, int ow) {
    FT_INPUT(x);
    if (!ft_check_float("adaptive_avg_pool2d", x)) return NULL;
    FT_ARG(x->shape.ndim == 4 && oh >= 1 && ow >= 1, "adaptive_avg_pool2d: x %s to %dx%d (expected [N, C, H, W])",
             FT_SHAPE_STR(x->shape), oh, ow);
    int N = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    Tensor *y = ft_new(tp, x->dtype, SHAPE(N, C, oh, ow));
    FT_KERNEL(x->storage->device, adaptive_pool, (&(AdaptivePoolArgs){ x->dtype, N, C, H, W, oh, ow, ft_ptr(x), ft_ptr(y) }));
    ft_record(tp, "adaptive_avg_pool2d", adaptive_backward, y, 1, &x, 0);
    return y;
}
