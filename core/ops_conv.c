/* 2-D convolution (cross-correlation, as PyTorch).
 *   x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL -> y [N, O, OH, OW]
 *   OH = (H + 2 pad - dilation (kh - 1) - 1) / stride + 1, likewise OW
 * The backward computes only the gradients that are wanted: an attack with frozen weights
 * skips the weight-gradient product entirely. */
#include "ops.h"
#include "backend.h"
#include "error.h"

static void conv2d_backward(Tape *tp, Node *n) {
    ConvGeom *g = n->ctx;
    Tensor *gy = n->out->grad, *x = n->in[0], *w = n->in[1];
    Tensor *b = n->n_in > 2 ? n->in[2] : NULL;
    FT_KERNEL(gy->storage->device, conv2d_grad, (&(ConvGradArgs){ gy->dtype, *g, ft_ptr(gy), ft_ptr(x), ft_ptr(w),
              n->needs[0] ? ft_ptr(ft_grad(tp, x)) : NULL,
              n->needs[1] ? ft_ptr(ft_grad(tp, w)) : NULL,
              b && n->needs[2] ? ft_ptr(ft_grad(tp, b)) : NULL }));
}

Tensor *ft_conv2d(Tape *tp, Tensor *x, Tensor *w, Tensor *b, int stride, int pad, int dilation) {
    FT_INPUT(x);
    FT_INPUT(w);
    Device dev;
    if (!ft_device_of("conv2d", 3, (Tensor *[]){ x, w, b }, &dev)) return NULL;
    if (!ft_check_float("conv2d", x)) return NULL;
    FT_ARG(x->shape.ndim == 4 && w->shape.ndim == 4, "conv2d: expected x [N, C, H, W] and w [O, C, kh, kw], got %s and %s",
             FT_SHAPE_STR(x->shape), FT_SHAPE_STR(w->shape));
    FT_ARG(x->shape.d[1] == w->shape.d[1], "conv2d: input has %d channels, weight %s expects %d",
             x->shape.d[1], FT_SHAPE_STR(w->shape), w->shape.d[1]);
    FT_ARG(stride >= 1 && pad >= 0 && dilation >= 1, "conv2d: stride %d, pad %d, dilation %d", stride, pad, dilation);
    ConvGeom g = { x->shape.d[0], x->shape.d[1], x->shape.d[2], x->shape.d[3], w->shape.d[0], w->shape.d[2],
                   w->shape.d[3], stride, stride, pad, pad, dilation, dilation, 0, 0 };
    FT_ARG(!b || (b->shape.ndim == 1 && b->shape.d[0] == g.O), "conv2d: bias %s, expected [%d]",
             b ? FT_SHAPE_STR(b->shape) : "", g.O);
    g.OH = (g.H + 2 * pad - dilation * (g.kh - 1) - 1) / stride + 1;
    g.OW = (g.W + 2 * pad - dilation * (g.kw - 1) - 1) / stride + 1;
    FT_ARG(g.OH > 0 && g.OW > 0, "conv2d: a %dx%d kernel does not fit input %s with pad %d", g.kh, g.kw,
             FT_SHAPE_STR(x->shape), pad);
    Tensor *y = ft_new(tp, x->dtype, SHAPE(g.N, g.O, g.OH, g.OW));
    FT_KERNEL(dev, conv2d, (&(ConvArgs){ x->dtype, g, ft_ptr(x), ft_ptr(w), b ? ft_ptr(b) : NULL, ft_ptr(y) }));
    Node *n = ft_record(tp, "conv2d", conv2d_backward, y, b ? 3 : 2, (Tensor *[]){ x, w, b }, sizeof g);
    if (n) *(ConvGeom *)n->ctx = g;
    return y;
}
