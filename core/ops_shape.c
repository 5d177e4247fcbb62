/* Shape ops: views where the data stays contiguous, strided copies otherwise.
 *   reshape/flatten/slice_batch: views (no copy); permute/transpose/concat/pad2d: copies
 *   upsample_bilinear: [N, C, H, W] -> [N, C, oh, ow] */
#include <string.h>
#include "ops.h"
#include "backend.h"
#include "error.h"

static void contiguous_strides(Shape s, int64_t *st) {
    int64_t k = 1;
    for (int d = s.ndim - 1; d >= 0; d--) { st[d] = k; k *= s.d[d]; }
}

static void copy_strided(Device dev, DType dt, Shape shape, const void *src, const int64_t *ss, void *dst,
                         const int64_t *ds, bool accumulate) {
    CopyArgs c = { .dt = dt, .ndim = shape.ndim, .src = src, .dst = dst, .accumulate = accumulate };
    memcpy(c.shape, shape.d, sizeof c.shape);
    memcpy(c.ss, ss, sizeof c.ss);
    memcpy(c.ds, ds, sizeof c.ds);
    FT_KERNEL(dev, copy_strided, &c);
}

/* ---- views ---- */

static void add_into(Tensor *dst, int64_t offset, Tensor *g) {
    Bcast geo = { .plain = true };
    void *y = (char *)ft_ptr(dst) + (size_t)offset * ft_dtype_size(dst->dtype);
    FT_KERNEL(g->storage->device, axpy, (&(AxpyArgs){ g->dtype, geo, g->numel, 1.0, ft_ptr(g), y }));
}

static void view_backward(Tape *tp, Node *n) {
    int64_t *offset = n->ctx;   /* where the view starts inside its input */
    add_into(ft_grad(tp, n->in[0]), *offset, n->out->grad);
}

static Tensor *view(Tape *tp, const char *name, Tensor *x, Shape s, int64_t offset) {
    Tensor *v = arena_alloc_meta(tp->arena, sizeof *v);
    *v = *x;
    v->shape = s;
    v->numel = ft_shape_numel(s);
    v->offset = x->offset + offset;
    v->grad = NULL;
    v->node = NULL;
    v->arena = tp->arena;
    v->requires_grad = false;
    v->is_param = false;
    Node *n = ft_record(tp, name, view_backward, v, 1, &x, sizeof(int64_t));
    if (n) *(int64_t *)n->ctx = offset;
    return v;
}

Tensor *ft_reshape(Tape *tp, Tensor *x, Shape s) {
    FT_INPUT(x);
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < s.ndim; d++) {
        if (s.d[d] == -1) { FT_ARG(infer < 0, "reshape: more than one -1 in %s", FT_SHAPE_STR(s)); infer = d; }
        else known *= s.d[d];
    }
    if (infer >= 0 && known > 0 && x->numel % known == 0) s.d[infer] = (int)(x->numel / known);
    FT_ARG(ft_shape_numel(s) == x->numel && (infer < 0 || s.d[infer] >= 0),
             "reshape: %s has %lld elements, cannot view it as %s", FT_SHAPE_STR(x->shape),
             (long long)x->numel, FT_SHAPE_STR(s));
    return view(tp, "reshape", x, s, 0);
}

Tensor *ft_flatten(Tape *tp, Tensor *x) {
    FT_INPUT(x);
    FT_ARG(x->shape.ndim >= 1, "flatten of a scalar");
    return ft_reshape(tp, x, SHAPE(x->shape.d[0], -1));
}

Tensor *ft_slice_batch(Tape *tp, Tensor *x, int start, int count) {
    FT_INPUT(x);
    FT_ARG(x->shape.ndim >= 1 && start >= 0 && count >= 0 && start + count <= x->shape.d[0],
             "slice_batch: rows [%d, %d) of %s", start, start + count, FT_SHAPE_STR(x->shape));
    Shape s = x->shape;
    s.d[0] = count;
    int64_t inner = x->shape.d[0] ? x->numel / x->shape.d[0] : 0;
    return view(tp, "slice_batch", x, s, start * inner);
}

/* ---- permute ---- */

typedef struct { int perm[FT_MAX_DIMS]; } PermuteCtx;

static void permuted_strides(const Tensor *x, const int *perm, int64_t *out) {
    int64_t st[FT_MAX_DIMS];
    contiguous_strides(x->shape, st);
    for (int d = 0; d < x->shape.ndim; d++) out[d] = st[perm[d]];
}

static void permute_backward(Tape *tp, Node *n) {
    PermuteCtx *c = n->ctx;
    Tensor *g = n->out->grad, *x = n->in[0];
    int64_t gs[FT_MAX_DIMS], xs[FT_MAX_DIMS];
    contiguous_strides(g->shape, gs);
    permuted_strides(x, c->perm, xs);
    copy_strided(g->storage->device, g->dtype, g->shape, ft_ptr(g), gs, ft_ptr(ft_grad(tp, x)), xs, true);
}

Tensor *ft_permute(Tape *tp, Tensor *x, const int *perm) {
    FT_INPUT(x);
    int nd = x->shape.ndim;
    Shape s = { .ndim = nd };
    unsigned seen = 0;
    for (int d = 0; d < nd; d++) {
        FT_ARG(perm[d] >= 0 && perm[d] < nd && !(seen >> perm[d] & 1), "permute: not a permutation of %d dims", nd);
        seen |= 1u << perm[d];
        s.d[d] = x->shape.d[perm[d]];
    }
    Tensor *y = ft_new(tp, x->dtype, s);
    int64_t xs[FT_MAX_DIMS], ys[FT_MAX_DIMS];
    permuted_strides(x, perm, xs);
    contiguous_strides(s, ys);
    copy_strided(x->storage->device, x->dtype, s, ft_ptr(x), xs, ft_ptr(y), ys, false);
    Node *n = ft_record(tp, "permute", permute_backward, y, 1, &x, sizeof(PermuteCtx));
    if (n) memcpy(((PermuteCtx *)n->ctx)->perm, perm, (size_t)nd * sizeof(int));
    return y;
}

Tensor *ft_transpose(Tape *tp, Tensor *x, int d0, int d1) {
    FT_INPUT(x);
    int nd = x->shape.ndim, perm[FT_MAX_DIMS];
    if (d0 < 0) d0 += nd;
    if (d1 < 0) d1 += nd;
    FT_ARG(d0 >= 0 && d0 < nd && d1 >= 0 && d1 < nd, "transpose: dims out of range for %s", FT_SHAPE_STR(x->shape));
    for (int d = 0; d < nd; d++) perm[d] = d;
    perm[d0] = d1;
    perm[d1] = d0;
    return ft_permute(tp, x, perm);
}

/* ---- concat and pad: a copy of each input into a window of the output ---- */

typedef struct { int dim; int pos[64]; } ConcatCtx;   /* where each input starts along dim */

/* Copy between `small` and the window of `big` of shape `window` that starts at `offset`. */
static void window_copy(Tensor *big, Shape window, int64_t offset, Tensor *small, bool into_big, bool accumulate) {
    int64_t bs[FT_MAX_DIMS], ss[FT_MAX_DIMS];
    contiguous_strides(big->shape, bs);
    contiguous_strides(small->shape, ss);
    char *bp = (char *)ft_ptr(big) + (size_t)offset * ft_dtype_size(big->dtype);
    if (into_big) copy_strided(big->storage->device, big->dtype, window, ft_ptr(small), ss, bp, bs, accumulate);
    else copy_strided(big->storage->device, big->dtype, window, bp, bs, ft_ptr(small), ss, accumulate);
}

static int64_t dim_offset(const Tensor *t, int dim, int pos) {
    int64_t st[FT_MAX_DIMS];
    contiguous_strides(t->shape, st);
    return pos * st[dim];
}

static void concat_backward(Tape *tp, Node *n) {
    ConcatCtx *c = n->ctx;
    Tensor *g = n->out->grad;
    for (int i = 0; i < n->n_in; i++)
        if (n->needs[i])
            window_copy(g, n->in[i]->shape, dim_offset(g, c->dim, c->pos[i]), ft_grad(tp, n->in[i]), false, true);
}

Tensor *ft_concat(Tape *tp, Tensor *const *xs, int n, int dim) {
    FT_ARG(n >= 1 && n <= 64, "concat of %d tensors (1..64 supported)", n);
    for (int i = 0; i < n; i++) FT_INPUT(xs[i]);
    Device dev;
    if (!ft_device_of("concat", n, xs, &dev)) return NULL;
    int nd = xs[0]->shape.ndim;
    if (dim < 0) dim += nd;
    FT_ARG(dim >= 0 && dim < nd, "concat: dim out of range for %s", FT_SHAPE_STR(xs[0]->shape));
    ConcatCtx c = { .dim = dim };
    Shape s = xs[0]->shape;
    s.d[dim] = 0;
    for (int i = 0; i < n; i++) {
        FT_ARG(xs[i]->shape.ndim == nd && xs[i]->dtype == xs[0]->dtype, "concat: input %d is %s %s, input 0 is %s %s", i,
                 ft_dtype_name(xs[i]->dtype), FT_SHAPE_STR(xs[i]->shape), ft_dtype_name(xs[0]->dtype), FT_SHAPE_STR(xs[0]->shape));
        for (int d = 0; d < nd; d++)
            FT_ARG(d == dim || xs[i]->shape.d[d] == s.d[d], "concat along %d: input %d is %s, input 0 is %s", dim, i,
                     FT_SHAPE_STR(xs[i]->shape), FT_SHAPE_STR(xs[0]->shape));
        c.pos[i] = s.d[dim];
        s.d[dim] += xs[i]->shape.d[dim];
    }
    Tensor *y = ft_new(tp, xs[0]->dtype, s);
    for (int i = 0; i < n; i++) window_copy(y, xs[i]->shape, dim_offset(y, dim, c.pos[i]), xs[i], true, false);
    Node *node = ft_record(tp, "concat", concat_backward, y, n, xs, sizeof c);
    if (node) *(ConcatCtx *)node->ctx = c;
    return y;
}

typedef struct { int64_t offset; } PadCtx;

static void pad_backward(Tape *tp, Node *n) {
    PadCtx *c = n->ctx;
    window_copy(n->out->grad, n->in[0]->shape, c->offset, ft_grad(tp, n->in[0]), false, true);
}

Tensor *ft_pad2d(Tape *tp, Tensor *x, int left, int right, int top, int bottom, double value) {
    FT_INPUT(x);
    int nd = x->shape.ndim;
    FT_ARG(nd >= 2 && left >= 0 && right >= 0 && top >= 0 && bottom >= 0,
             "pad2d: pads %d %d %d %d of %s (non-negative, at least 2 dims)", left, right, top, bottom, FT_SHAPE_STR(x->shape));
    Shape s = x->shape;
    s.d[nd - 2] += top + bottom;
    s.d[nd - 1] += left + right;
    Tensor *y = ft_new(tp, x->dtype, s);
    ft_fill_(y, value);
    PadCtx c = { dim_offset(y, nd - 2, top) + left };
    window_copy(y, x->shape, c.offset, x, true, false);
    Node *n = ft_record(tp, "pad2d", pad_backward, y, 1, &x, sizeof c);
    if (n) *(PadCtx *)n->ctx = c;
    return y;
}

/* ---- bilinear upsampling ---- */

static void upsample_backward(Tape *tp, Node *n) {
    Tensor *gy = n->out->grad, *x = n->in[0];
    bool *align = n->ctx;
    FT_KERNEL(gy->storage->device, upsample_grad, (&(UpsampleGradArgs){ gy->dtype, x->shape.d[0], x->shape.d[1],
              x->shape.d[2], x->shape.d[3], gy->shape.d[2], gy->shape.d[3], *align, ft_ptr(gy), ft_ptr(ft_grad(tp, x)) }));
}

Tensor *ft_upsample_bilinear(Tape *tp, Tensor *x, int oh, int ow, bool align_corners) {
    FT_INPUT(x);
    if (!ft_check_float("upsample_bilinear", x)) return NULL;
    FT_ARG(x->shape.ndim == 4 && oh >= 1 && ow >= 1, "upsample_bilinear: %s to %dx%d (expected [N, C, H, W])",
             FT_SHAPE_STR(x->shape), oh, ow);
    int N = x->shape.d[0], C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    Tensor *y = ft_new(tp, x->dtype, SHAPE(N, C, oh, ow));
    FT_KERNEL(x->storage->device, upsample, (&(UpsampleArgs){ x->dtype, N, C, H, W, oh, ow, align_corners, ft_ptr(x), ft_ptr(y) }));
    Node *n = ft_record(tp, "upsample_bilinear", upsample_backward, y, 1, &x, sizeof(bool));
    if (n) *(bool *)n->ctx = align_corners;
    return y;
}
