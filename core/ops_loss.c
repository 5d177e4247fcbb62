/* Losses.
 *   cross_entropy: logits [N, C], labels int32 [N] -> [] (mean over the batch), fused with
 *                  log_softmax so the backward is softmax - onehot
 *   mse: a, b [same shape] -> [] mean of squared differences */
#include <stdlib.h>
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

/* Every label in 0..C-1, on any device: a GPU's labels are read back first (N integers, one
 * synchronisation), since a kernel indexing with a bad label would read out of bounds. */
static bool check_labels(const Tensor *labels, int N, int C) {
    int32_t *host = NULL;
    const int32_t *lab;
    if (labels->storage->device == FT_CPU) lab = ft_i32(labels);
    else {
        host = ft_xmalloc((size_t)N * sizeof *host);
        ft_backend(labels->storage->device)->to_host(host, ft_ptr(labels), (size_t)N * sizeof *host);
        lab = host;
    }
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++)
        if (lab[i] < 0 || lab[i] >= C) bad = i;
    int32_t v = bad >= 0 ? lab[bad] : 0;
    free(host);
    if (bad >= 0) ft_op_error_at(__FILE__, __LINE__, "cross_entropy: label %d of sample %d is outside 0..%d", v, bad, C - 1);
    return bad < 0;
}

Tensor *ft_cross_entropy(Tape *tp, Tensor *logits, Tensor *labels) {
    FT_INPUT(logits);
    FT_INPUT(labels);
    if (!ft_check_float("cross_entropy", logits)) return NULL;
    Device dev;
    if (!ft_device_of("cross_entropy", 2, (Tensor *[]){ logits, labels }, &dev)) return NULL;
    FT_ARG(logits->shape.ndim == 2, "cross_entropy: logits must be [N, C], got %s", FT_SHAPE_STR(logits->shape));
    FT_ARG(labels->dtype == FT_I32 && labels->shape.ndim == 1 && labels->shape.d[0] == logits->shape.d[0],
             "cross_entropy: labels must be int32 [%d], got %s %s", logits->shape.d[0],
             ft_dtype_name(labels->dtype), FT_SHAPE_STR(labels->shape));
    int N = logits->shape.d[0], C = logits->shape.d[1];
    FT_ARG(N > 0, "cross_entropy of an empty batch");
    if (!check_labels(labels, N, C)) return NULL;
    Tensor *logp = ft_new_like(tp, logits);
    Tensor *loss = ft_new(tp, logits->dtype, (Shape){ 0 });
    FT_KERNEL(dev, cross_entropy, (&(CrossEntropyArgs){ logits->dtype, N, C, ft_ptr(logits), ft_ptr(labels),
              ft_ptr(logp), ft_ptr(loss) }));
    Node *n = ft_record(tp, "cross_entropy", cross_entropy_backward, loss, 1, &logits, sizeof(CrossEntropyCtx));
    if (n) *(CrossEntropyCtx *)n->ctx = (CrossEntropyCtx){ logp, labels };
    return loss;
}

Tensor *ft_mse(Tape *tp, Tensor *a, Tensor *b) {
    FT_INPUT(a);
    FT_INPUT(b);
    FT_ARG(ft_shape_eq(a->shape, b->shape), "mse: shapes %s and %s differ", FT_SHAPE_STR(a->shape),
             FT_SHAPE_STR(b->shape));
    Tensor *d = ft_sub(tp, a, b);
    return ft_mean(tp, ft_mul(tp, d, d), FT_ALL_DIMS, false);
}
