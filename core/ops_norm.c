/* Normalisation and regularisation.
 *   batch_norm: x [N, C, *] with gamma, beta, running stats [C] -> same shape
 *   batch_norm_relu: relu(batch_norm(...)) as one op (one pass, one tensor on the tape)
 *   dropout:    x [any] -> same shape */
#include "ops.h"
#include "backend.h"
#include "error.h"

typedef struct { int N, C, HW; bool training, relu; Tensor *mean, *invstd; } BatchNormCtx;

static void batch_norm_backward(Tape *tp, Node *n) {
    BatchNormCtx *c = n->ctx;
    Tensor *gy = n->out->grad, *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    FT_KERNEL(gy->storage->device, batch_norm_grad, (&(BatchNormGradArgs){ gy->dtype, c->N, c->C, c->HW, c->training,
              ft_ptr(gy), ft_ptr(x), gamma ? ft_ptr(gamma) : NULL, ft_ptr(c->mean), ft_ptr(c->invstd),
              n->needs[0] ? ft_ptr(ft_grad(tp, x)) : NULL,
              gamma && n->needs[1] ? ft_ptr(ft_grad(tp, gamma)) : NULL,
              beta && n->needs[2] ? ft_ptr(ft_grad(tp, beta)) : NULL, c->relu ? ft_ptr(n->out) : NULL }));
}

static Tensor *batch_norm(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                          Tensor *running_var, bool training, double momentum, double eps, bool relu) {
    FT_INPUT(x);
    Device dev;
    if (!ft_device_of("batch_norm", 5, (Tensor *[]){ x, gamma, beta, running_mean, running_var }, &dev)) return NULL;
    if (!ft_check_float("batch_norm", x)) return NULL;
    FT_ARG(x->shape.ndim >= 2, "batch_norm: expected [N, C, ...], got %s", FT_SHAPE_STR(x->shape));
    int N = x->shape.d[0], C = x->shape.d[1];
    int HW = (int)(x->numel / ((int64_t)N * C > 0 ? (int64_t)N * C : 1));
    Tensor *params[] = { gamma, beta, running_mean, running_var };
    for (int i = 0; i < 4; i++)
        FT_ARG(!params[i] || (params[i]->numel == C && params[i]->dtype == x->dtype),
                 "batch_norm: parameter %d is %s %s, expected %s [%d]", i, ft_dtype_name(params[i]->dtype),
                 FT_SHAPE_STR(params[i]->shape), ft_dtype_name(x->dtype), C);
    FT_ARG(training || (running_mean && running_var), "batch_norm in eval mode needs running statistics");
    FT_ARG(!training || (int64_t)N * HW > 1, "batch_norm: training needs more than one value per channel, got %s",
             FT_SHAPE_STR(x->shape));
    Tensor *y = ft_new_like(tp, x);
    Tensor *mean = ft_new(tp, x->dtype, SHAPE(C)), *invstd = ft_new(tp, x->dtype, SHAPE(C));
    FT_KERNEL(dev, batch_norm, (&(BatchNormArgs){ x->dtype, N, C, HW, training, momentum, eps, ft_ptr(x),
              gamma ? ft_ptr(gamma) : NULL, beta ? ft_ptr(beta) : NULL, ft_ptr(y), ft_ptr(mean), ft_ptr(invstd),
              running_mean ? ft_ptr(running_mean) : NULL, running_var ? ft_ptr(running_var) : NULL, relu }));
    Node *n = ft_record(tp, relu ? "batch_norm_relu" : "batch_norm", batch_norm_backward, y, 3, (Tensor *[]){ x, gamma, beta },
                        sizeof(BatchNormCtx));
    if (n) {
        *(BatchNormCtx *)n->ctx = (BatchNormCtx){ N, C, HW, training, relu, mean, invstd };
        n->out_unread = !relu;   /* the backward reads x and the statistics; with relu, y for the mask */
    }
    return y;
}

Tensor *ft_batch_norm(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                      Tensor *running_var, bool training, double momentum, double eps) {
    return batch_norm(tp, x, gamma, beta, running_mean, running_var, training, momentum, eps, false);
}

Tensor *ft_batch_norm_relu(Tape *tp, Tensor *x, Tensor *gamma, Tensor *beta, Tensor *running_mean,
                           Tensor *running_var, bool training, double momentum, double eps) {
    return batch_norm(tp, x, gamma, beta, running_mean, running_var, training, momentum, eps, true);
}

Tensor *ft_dropout(Tape *tp, Tensor *x, double p, bool training, Rng *rng) {
    FT_INPUT(x);
    FT_ARG(p >= 0 && p < 1, "dropout: probability %g outside [0, 1)", p);
    if (!training || p == 0) return x;
    /* mask = (u >= p) / (1 - p) with u uniform on [0, 1); the backward is that of the product */
    Tensor *u = ft_new_like(tp, x), *mask = ft_new_like(tp, x);
    rng_uniform_(rng, u, 0, 1);
    FT_KERNEL(x->storage->device, unary, (&(UnaryArgs){ x->dtype, UN_THRESHOLD, x->numel, ft_ptr(u), ft_ptr(mask),
              p, 1 / (1 - p) }));
    return ft_mul(tp, x, mask);
}
