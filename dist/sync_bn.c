#include "sync_bn.h"
#include "dist.h"
#include "core/error.h"
#include "layers/layers.h"

static void sum_backward(Tape *tp, Node *n) {
    Tensor *g = ft_new_like(tp, n->out->grad);
    ft_copy_(g, n->out->grad);
    FT_CHECK(ft_dist_allreduce(g) == 0, "%s", ft_last_error());
    ft_add_(ft_grad(tp, n->in[0]), g);
}

Tensor *ft_dist_sum_op(Tape *tp, Tensor *x) {
    FT_INPUT(x);
    Tensor *y = ft_new_like(tp, x);
    ft_copy_(y, x);
    if (ft_dist_allreduce(y) != 0) { ft_op_error_at(__FILE__, __LINE__, "dist_sum: %s", ft_last_error()); return NULL; }
    ft_record(tp, "dist_sum", sum_backward, y, 1, &x, 0);
    return y;
}

void dist_sync_batchnorm(bool on) {
    batchnorm_sync = on ? (BatchNormSync){ ft_dist_sum_op, ft_dist_size() } : (BatchNormSync){ 0 };
}
