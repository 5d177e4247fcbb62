/* Matrix products.
 *   matmul: a [..., M, K] @ b [..., K, N] -> [..., M, N] (same leading dims), or b [K, N] shared
 *   linear: x [N, in], w [out, in], b [out] or NULL -> [N, out] = x w^T + b */
#include "ops.h"
#include "backend.h"
#include "error.h"

typedef struct { int batch, M, K, N; bool shared_b; } MatmulCtx;

static void gemm(Device dev, DType dt, bool ta, bool tb, int M, int N, int K, const Tensor *A, int lda,
                 int64_t sA, const Tensor *B, int ldb, int64_t sB, Tensor *C, int ldc, int64_t sC,
                 int batch, double beta) {
    FT_KERNEL(dev, gemm, (&(GemmArgs){ dt, ta, tb, M, N, K, 1.0, beta, ft_ptr(A), lda, sA, ft_ptr(B), ldb, sB,
              ft_ptr(C), ldc, sC, batch }));
}

static void matmul_backward(Tape *tp, Node *n) {
    MatmulCtx *c = n->ctx;
    Tensor *g = n->out->grad, *a = n->in[0], *b = n->in[1];
    Device dev = g->storage->device;
    int B = c->batch, M = c->M, K = c->K, N = c->N;
    int64_t sA = (int64_t)M * K, sB = c->shared_b ? 0 : (int64_t)K * N, sC = (int64_t)M * N;
    if (n->needs[0])   /* gA += g b^T */
        gemm(dev, g->dtype, false, true, M, K, N, g, N, sC, b, N, sB, ft_grad(tp, a), K, sA, B, 1.0);
    if (n->needs[1]) { /* gB += a^T g; with a shared b the batch folds into the rows */
        if (c->shared_b) gemm(dev, g->dtype, true, false, K, N, B * M, a, K, 0, g, N, 0, ft_grad(tp, b), N, 0, 1, 1.0);
        else gemm(dev, g->dtype, true, false, K, N, M, a, K, sA, g, N, sC, ft_grad(tp, b), N, sB, B, 1.0);
    }
}

Tensor *ft_matmul(Tape *tp, Tensor *a, Tensor *b) {
    FT_INPUT(a);
    FT_INPUT(b);
    Device dev;
    if (!ft_device_of("matmul", 2, (Tensor *[]){ a, b }, &dev)) return NULL;
    if (!ft_check_float("matmul", a)) return NULL;
    FT_ARG(a->dtype == b->dtype, "matmul: dtypes differ");
    int na = a->shape.ndim, nb = b->shape.ndim;
    FT_ARG(na >= 2 && nb >= 2, "matmul: both operands need at least 2 dims, got %s and %s",
             FT_SHAPE_STR(a->shape), FT_SHAPE_STR(b->shape));
    MatmulCtx c = { 1, a->shape.d[na - 2], a->shape.d[na - 1], b->shape.d[nb - 1], nb == 2 };
    FT_ARG(b->shape.d[nb - 2] == c.K, "matmul: inner sizes differ: %s @ %s", FT_SHAPE_STR(a->shape),
             FT_SHAPE_STR(b->shape));
    FT_ARG(c.shared_b || na == nb, "matmul: leading dims of %s and %s differ", FT_SHAPE_STR(a->shape), FT_SHAPE_STR(b->shape));
    Shape s = a->shape;
    s.d[na - 1] = c.N;
    for (int d = 0; d < na - 2; d++) {
        FT_ARG(c.shared_b || a->shape.d[d] == b->shape.d[d], "matmul: leading dims of %s and %s differ",
                 FT_SHAPE_STR(a->shape), FT_SHAPE_STR(b->shape));
        c.batch *= a->shape.d[d];
    }
    Tensor *y = ft_new(tp, a->dtype, s);
    if (c.shared_b)
        gemm(dev, a->dtype, false, false, c.batch * c.M, c.N, c.K, a, c.K, 0, b, c.N, 0, y, c.N, 0, 1, 0.0);
    else
        gemm(dev, a->dtype, false, false, c.M, c.N, c.K, a, c.K, (int64_t)c.M * c.K, b, c.N,
             (int64_t)c.K * c.N, y, c.N, (int64_t)c.M * c.N, c.batch, 0.0);
    Node *n = ft_record(tp, "matmul", matmul_backward, y, 2, (Tensor *[]){ a, b }, sizeof c);
    if (n) *(MatmulCtx *)n->ctx = c;
    return y;
}

static void linear_backward(Tape *tp, Node *n) {
    Tensor *g = n->out->grad, *x = n->in[0], *w = n->in[1];
    Device dev = g->storage->device;
    int N = x->shape.d[0], in = x->shape.d[1], out = w->shape.d[0];
    if (n->needs[0]) gemm(dev, g->dtype, false, false, N, in, out, g, out, 0, w, in, 0, ft_grad(tp, x), in, 0, 1, 1.0);
    if (n->needs[1]) gemm(dev, g->dtype, true, false, out, in, N, g, out, 0, x, in, 0, ft_grad(tp, w), in, 0, 1, 1.0);
    if (n->n_in > 2 && n->needs[2]) ft_accumulate_grad(tp, n->in[2], g);
}

Tensor *ft_linear(Tape *tp, Tensor *x, Tensor *w, Tensor *b) {
    FT_INPUT(x);
    FT_INPUT(w);
    Device dev;
    if (!ft_device_of("linear", 3, (Tensor *[]){ x, w, b }, &dev)) return NULL;
    if (!ft_check_float("linear", x)) return NULL;
    FT_ARG(x->shape.ndim == 2 && w->shape.ndim == 2 && x->shape.d[1] == w->shape.d[1],
             "linear: input %s does not fit weight %s (expected [N, %d])", FT_SHAPE_STR(x->shape),
             FT_SHAPE_STR(w->shape), w->shape.ndim == 2 ? w->shape.d[1] : -1);
    int N = x->shape.d[0], in = x->shape.d[1], out = w->shape.d[0];
    FT_ARG(!b || (b->shape.ndim == 1 && b->shape.d[0] == out), "linear: bias %s, expected [%d]",
             b ? FT_SHAPE_STR(b->shape) : "", out);
    Tensor *y = ft_new(tp, x->dtype, SHAPE(N, out));
    gemm(dev, x->dtype, false, true, N, out, in, x, in, 0, w, in, 0, y, out, 0, 1, 0.0);
    if (b) {
        Shape s;
        Bcast geo = ft_broadcast("linear bias", y->shape, b->shape, &s);
        FT_KERNEL(dev, axpy, (&(AxpyArgs){ y->dtype, geo, y->numel, 1.0, ft_ptr(b), ft_ptr(y) }));
    }
    ft_record(tp, "linear", linear_backward, y, b ? 3 : 2, (Tensor *[]){ x, w, b }, 0);
    return y;
}
