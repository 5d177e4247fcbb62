/* Elementwise ops.
 *   binary: a [broadcastable], b [broadcastable] -> out [broadcast shape]
 *   unary:  x [any] -> y [same]
 * The backward of a broadcast operand sums the gradient over the dims it was stretched along. */
#include "ops.h"
#include "backend.h"
#include "error.h"

bool ft_device_of(const char *op, int n, Tensor *const *ts, Device *dev) {
    *dev = ts[0]->storage->device;
    for (int i = 1; i < n; i++)
        if (ts[i] && ts[i]->storage->device != *dev) {
            ft_op_error_at(__FILE__, __LINE__, "%s: inputs live on different devices (%s and %s)", op, ft_device_name(*dev),
                           ft_device_name(ts[i]->storage->device));
            return false;
        }
    return true;
}

bool ft_check_float(const char *op, const Tensor *t) {
    if (t->dtype == FT_F32 || t->dtype == FT_F64) return true;
    ft_op_error_at(__FILE__, __LINE__, "%s: expected a float tensor, got %s %s", op, ft_dtype_name(t->dtype), FT_SHAPE_STR(t->shape));
    return false;
}

void ft_accumulate_grad(Tape *tp, Tensor *x, Tensor *g) {
    Tensor *gx = ft_grad(tp, x);
    Device dev = g->storage->device;
    if (ft_shape_eq(x->shape, g->shape)) {
        Bcast geo = { .plain = true };
        FT_KERNEL(dev, axpy, (&(AxpyArgs){ g->dtype, geo, g->numel, 1.0, ft_ptr(g), ft_ptr(gx) }));
        return;
    }
    /* x's shape, right-aligned against g's: sum g over the dims where x has size 1 (or none) */
    ReduceArgs r = { .dt = g->dtype, .op = RED_SUM, .ndim = g->shape.ndim, .x = ft_ptr(g),
                     .y = ft_ptr(gx), .scale = 1.0, .accumulate = true };
    int lead = g->shape.ndim - x->shape.ndim;
    for (int d = 0; d < g->shape.ndim; d++) {
        r.shape[d] = g->shape.d[d];
        int xd = d < lead ? 1 : x->shape.d[d - lead];
        if (xd == 1 && g->shape.d[d] != 1) r.mask |= 1u << d;
    }
    FT_KERNEL(dev, reduce, &r);
}

/* ---- binary ---- */

typedef struct { BinaryOp op; Bcast geo; } BinaryCtx;

static void binary_backward(Tape *tp, Node *n) {
    BinaryCtx *c = n->ctx;
    Tensor *g = n->out->grad, *a = n->in[0], *b = n->in[1];
    Device dev = g->storage->device;
    for (int which = 0; which < 2; which++) {
        if (!n->needs[which]) continue;
        Tensor *x = n->in[which];
        bool direct = ft_shape_eq(x->shape, g->shape);
        Tensor *dst = direct ? ft_grad(tp, x) : ft_new_like(tp, g);
        FT_KERNEL(dev, binary_grad, (&(BinaryGradArgs){ g->dtype, c->op, which, c->geo, g->numel,
                  ft_ptr(g), ft_ptr(a), ft_ptr(b), ft_ptr(dst), direct }));
        if (!direct) ft_accumulate_grad(tp, x, dst);
    }
}

static Tensor *binary(Tape *tp, const char *name, BinaryOp op, Tensor *a, Tensor *b) {
    FT_INPUT(a);
    FT_INPUT(b);
    Device dev;
    if (!ft_device_of(name, 2, (Tensor *[]){ a, b }, &dev) || !ft_check_float(name, a)) return NULL;
    FT_ARG(a->dtype == b->dtype, "%s: dtypes differ (%s and %s)", name, ft_dtype_name(a->dtype), ft_dtype_name(b->dtype));
    Shape s;
    Bcast geo = ft_broadcast(name, a->shape, b->shape, &s);
    if (s.ndim < 0) return NULL;
    Tensor *out = ft_new(tp, a->dtype, s);
    FT_KERNEL(dev, binary, (&(BinaryArgs){ a->dtype, op, geo, out->numel, ft_ptr(a), ft_ptr(b), ft_ptr(out) }));
    Node *n = ft_record(tp, name, binary_backward, out, 2, (Tensor *[]){ a, b }, sizeof(BinaryCtx));
    if (n) *(BinaryCtx *)n->ctx = (BinaryCtx){ op, geo };
    return out;
}

Tensor *ft_add(Tape *tp, Tensor *a, Tensor *b) { return binary(tp, "add", BIN_ADD, a, b); }
Tensor *ft_sub(Tape *tp, Tensor *a, Tensor *b) { return binary(tp, "sub", BIN_SUB, a, b); }
Tensor *ft_mul(Tape *tp, Tensor *a, Tensor *b) { return binary(tp, "mul", BIN_MUL, a, b); }
Tensor *ft_div(Tape *tp, Tensor *a, Tensor *b) { return binary(tp, "div", BIN_DIV, a, b); }

/* relu(a + b) for a residual block's end: the sum, then ReLU in place over it; the backward
 * masks the gradient by out > 0 (as ReLU's backward masks it by a + b > 0) straight into both
 * inputs' gradients. */
static void add_relu_backward(Tape *tp, Node *n) {
    Tensor *g = n->out->grad;
    for (int which = 0; which < 2; which++)
        if (n->needs[which])
            FT_KERNEL(g->storage->device, unary_grad, (&(UnaryGradArgs){ g->dtype, UN_RELU, g->numel, ft_ptr(g),
                      ft_ptr(n->out), NULL, ft_ptr(ft_grad(tp, n->in[which])), 0, 0 }));
}

Tensor *ft_add_relu(Tape *tp, Tensor *a, Tensor *b) {
    FT_INPUT(a);
    FT_INPUT(b);
    Device dev;
    if (!ft_device_of("add_relu", 2, (Tensor *[]){ a, b }, &dev) || !ft_check_float("add_relu", a)) return NULL;
    FT_ARG(a->dtype == b->dtype && ft_shape_eq(a->shape, b->shape), "add_relu: expected two tensors of one dtype and shape, got %s %s and %s %s",
           ft_dtype_name(a->dtype), FT_SHAPE_STR(a->shape), ft_dtype_name(b->dtype), FT_SHAPE_STR(b->shape));
    Tensor *out = ft_new_like(tp, a);
    FT_KERNEL(dev, binary, (&(BinaryArgs){ a->dtype, BIN_ADD, { .plain = true }, out->numel, ft_ptr(a), ft_ptr(b), ft_ptr(out) }));
    FT_KERNEL(dev, unary, (&(UnaryArgs){ a->dtype, UN_RELU, out->numel, ft_ptr(out), ft_ptr(out), 0, 0 }));
    Node *n = ft_record(tp, "add_relu", add_relu_backward, out, 2, (Tensor *[]){ a, b }, 0);
    if (n) n->ins_unread = true;   /* the backward's mask comes from out */
    return out;
}

/* ---- unary ---- */

typedef struct { UnaryOp op; double p0, p1; } UnaryCtx;

static void unary_backward(Tape *tp, Node *n) {
    UnaryCtx *c = n->ctx;
    Tensor *g = n->out->grad, *x = n->in[0];
    FT_KERNEL(g->storage->device, unary_grad, (&(UnaryGradArgs){ g->dtype, c->op, g->numel, ft_ptr(g),
              ft_ptr(x), ft_ptr(n->out), ft_ptr(ft_grad(tp, x)), c->p0, c->p1 }));
}

static Tensor *unary(Tape *tp, const char *name, UnaryOp op, Tensor *x, double p0, double p1) {
    FT_INPUT(x);
    if (!ft_check_float(name, x)) return NULL;
    Tensor *y = ft_new_like(tp, x);
    FT_KERNEL(x->storage->device, unary, (&(UnaryArgs){ x->dtype, op, x->numel, ft_ptr(x), ft_ptr(y), p0, p1 }));
    Node *n = ft_record(tp, name, unary_backward, y, 1, &x, sizeof(UnaryCtx));
    if (n) *(UnaryCtx *)n->ctx = (UnaryCtx){ op, p0, p1 };
    return y;
}

Tensor *ft_neg(Tape *tp, Tensor *x) { return unary(tp, "neg", UN_NEG, x, 0, 0); }
Tensor *ft_exp(Tape *tp, Tensor *x) { return unary(tp, "exp", UN_EXP, x, 0, 0); }
Tensor *ft_log(Tape *tp, Tensor *x) { return unary(tp, "log", UN_LOG, x, 0, 0); }
Tensor *ft_sqrt(Tape *tp, Tensor *x) { return unary(tp, "sqrt", UN_SQRT, x, 0, 0); }
Tensor *ft_abs(Tape *tp, Tensor *x) { return unary(tp, "abs", UN_ABS, x, 0, 0); }
Tensor *ft_sign(Tape *tp, Tensor *x) { return unary(tp, "sign", UN_SIGN, x, 0, 0); }
Tensor *ft_relu(Tape *tp, Tensor *x) { return unary(tp, "relu", UN_RELU, x, 0, 0); }
Tensor *ft_sigmoid(Tape *tp, Tensor *x) { return unary(tp, "sigmoid", UN_SIGMOID, x, 0, 0); }
Tensor *ft_tanh(Tape *tp, Tensor *x) { return unary(tp, "tanh", UN_TANH, x, 0, 0); }
Tensor *ft_pow(Tape *tp, Tensor *x, double p) { return unary(tp, "pow", UN_POW, x, p, 0); }
Tensor *ft_clamp(Tape *tp, Tensor *x, double lo, double hi) { return unary(tp, "clamp", UN_CLAMP, x, lo, hi); }
Tensor *ft_affine(Tape *tp, Tensor *x, double scale, double shift) { return unary(tp, "affine", UN_AFFINE, x, scale, shift); }
