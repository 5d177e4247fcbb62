/* The answers to docs/AUTOGRAD.md's exercises, checked. */
#include <math.h>
#include "test.h"

/* Exercise 1: sigmoid's backward. The forward saves nothing extra: the output s is on the node,
 * and ds/dx = s (1 - s). */
static void sigmoid_backward(Tape *tp, Node *n) {
    if (!n->needs[0]) return;
    Tensor *gx = ft_grad(tp, n->in[0]);
    for (int64_t i = 0; i < gx->numel; i++) {
        double s = ft_get(n->out, i);
        ft_set(gx, i, ft_get(gx, i) + ft_get(n->out->grad, i) * s * (1 - s));
    }
}

static Tensor *my_sigmoid(Tape *tp, Tensor *x) {
    Tensor *y = ft_new_like(tp, x);
    for (int64_t i = 0; i < x->numel; i++) ft_set(y, i, 1 / (1 + exp(-ft_get(x, i))));
    ft_record(tp, "my_sigmoid", sigmoid_backward, y, 1, &x, 0);
    return y;
}

static Tensor *f_mine(Tape *tp, Tensor *const *in, void *ctx) { (void)ctx; return my_sigmoid(tp, in[0]); }

TEST(exercise_sigmoid_backward_agrees_with_finite_differences_and_the_library) {
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(4, 6), FT_CPU);
    Rng r = rng_new(3);
    rng_uniform_(&r, x, -4, 4);
    double err = ft_gradcheck(f_mine, NULL, 1, &x, 1e-6, 1, NULL);
    CHECK(err < 1e-8, "the answer's backward: error %.3g against central differences", err);
    /* and the same gradient as finch's own ft_sigmoid */
    Tape *tp = ft_tape_new(FT_CPU);
    x->requires_grad = true;
    ft_backward(tp, ft_sum(tp, my_sigmoid(tp, x), FT_ALL_DIMS, false));
    Tensor *mine = x->grad;
    x->grad = NULL;
    ft_tape_reset(tp);
    ft_backward(tp, ft_sum(tp, ft_sigmoid(tp, x), FT_ALL_DIMS, false));
    double worst = 0;
    for (int64_t i = 0; i < x->numel; i++) worst = fmax(worst, fabs(ft_get(mine, i) - ft_get(x->grad, i)));
    CHECK(worst < 1e-12, "the answer and ft_sigmoid differ by %.3g", worst);
    ft_tensor_free(mine);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

/* Exercise 2: why += ? A backward that assigns (=) instead of adding loses every use of a tensor
 * but the last one it visits: for y = x * x it gives dL/dx = x, not 2x. */
static void mul_backward_assigning(Tape *tp, Node *n) {
    for (int k = 0; k < 2; k++) {
        if (!n->needs[k]) continue;
        Tensor *g = ft_grad(tp, n->in[k]), *other = n->in[1 - k];
        for (int64_t i = 0; i < g->numel; i++) ft_set(g, i, ft_get(n->out->grad, i) * ft_get(other, i));   /* = : the bug */
    }
}

TEST(exercise_a_tensor_used_twice_needs_plus_equals) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(3), FT_CPU);
    for (int i = 0; i < 3; i++) ft_set(x, i, i + 1);
    x->requires_grad = true;
    Tensor *y = ft_new_like(tp, x);
    for (int i = 0; i < 3; i++) ft_set(y, i, ft_get(x, i) * ft_get(x, i));
    ft_record(tp, "mul_assigning", mul_backward_assigning, y, 2, (Tensor *[]){ x, x }, 0);
    ft_backward(tp, ft_sum(tp, y, FT_ALL_DIMS, false));
    CHECK(ft_get(x->grad, 2) == 3, "the assigning backward gave %g at x = 3 (the answer says x, not 2x = 6)", ft_get(x->grad, 2));
    ft_zero_(x->grad);
    ft_tape_reset(tp);
    ft_backward(tp, ft_sum(tp, ft_mul(tp, x, x), FT_ALL_DIMS, false));
    CHECK(ft_get(x->grad, 2) == 6, "ft_mul's backward gave %g at x = 3, expected 2x = 6", ft_get(x->grad, 2));
    ft_tensor_free(x);
    ft_tape_free(tp);
}
