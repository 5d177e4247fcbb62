/* Losses.
 *   cross_entropy: logits [N, C], labels int32 [N] -> [] (mean over the batch), fused with
 *                  log_softmax so the backward is softmax - onehot
 *   mse: a, b [same shape] -> [] mean of squared differences */
#include "ops.h"
#include "backend.h"
#include "error.h"

typedef struct { Tensor *logp, *labels; } CrossEntropyCtx;

static void cross_entropy_backward(Tape *tp, Node *n) {
    CrossEntropyCtx *c = n->ctx;
    Tensor *g = n->out->grad, *x = n->in[0];
    FT_KERNEL(g->storage->device, cross_entropy_grad, (&(CrossEntropyGradArgs){ x->dtype, x->shape.d[0],
              x->shape.d[1], ft_ptr(g), ft_ptr(c->logp), ft_ptr(c->labels), ft_ptr(ft_grad(tp, x)) }));
}

Tensor *ft_cross_entropy(Tape *tp, Tensor *logits, Tensor *labels) {
    ft_check_float("cross_entropy", logits);
    Device dev = ft_device_of("cross_entropy", 2, (Tensor *[]){ logits, labels });
    FT_CHECK(logits->shape.ndim == 2, "cross_entropy: logits must be [N, C], got %s", FT_SHAPE_STR(logits->shape));
    FT_CHECK(labels->dtype == FT_I32 && labels->shape.ndim == 1 && labels->shape.d[0] == logits->shape.d[0],
             "cross_entropy: labels must be int32 [%d], got %s %s", logits->shape.d[0],
             ft_dtype_name(labels->dtype), FT_SHAPE_STR(labels->shape));
    int N = logits->shape.d[0], C = logits->shape.d[1];
    FT_CHECK(N > 0, "cross_entropy of an empty batch");
    if (dev == FT_CPU)
        for (int i = 0; i < N; i++)
            FT_CHECK(ft_i32(labels)[i] >= 0 && ft_i32(labels)[i] < C,
                     "cross_entropy: label %d of sample %d is outside 0..%d", ft_i32(labels)[i], i, C - 1);
    Tensor *logp = ft_new_like(tp, logits);
    Tensor *loss = ft_new(tp, logits->dtype, (Shape){ 0 });
    FT_KERNEL(dev, cross_entropy, (&(CrossEntropyArgs){ logits->dtype, N, C, ft_ptr(logits), ft_ptr(labels),
              ft_ptr(logp), ft_ptr(loss) }));
    Node *n = ft_record(tp, "cross_entropy", cross_entropy_backward, loss, 1, &logits, sizeof(CrossEntropyCtx));
    if (n) *(CrossEntropyCtx *)n->ctx = (CrossEntropyCtx){ logp, labels };
    return loss;
}

Tensor *ft_mse(Tape *tp, Tensor *a, Tensor *b) {
    FT_CHECK(ft_shape_eq(a->shape, b->shape), "mse: shapes %s and %s differ", FT_SHAPE_STR(a->shape),
             FT_SHAPE_STR(b->shape));
    Tensor *d = ft_sub(tp, a, b);
    return ft_mean(tp, ft_mul(tp, d, d), FT_ALL_DIMS, false);
}
