/* Example 3: a new op written outside the library, and checked like finch's own.
 *
 * An op is two functions. The forward computes its output now and, through ft_record(), leaves a
 * node on the tape naming its inputs and its backward. The backward reads the gradient that
 * arrived at the output (n->out->grad) and ADDS its contribution into each input's gradient
 * (ft_grad() creates it, zero-filled, on first use); adding, never assigning, is what lets a tensor
 * feed several ops. ft_gradcheck() then compares that backward with central differences of the
 * forward, which is how every op inside finch is tested (tests/test_gradcheck.c).
 *
 * The op: softplus(x) = log(1 + e^x), whose derivative is the logistic sigmoid 1 / (1 + e^-x).
 *
 *   make examples && build/examples/03_custom_op
 */
#include <math.h>
#include <stdio.h>
#include "core/finch.h"

/* backward: dL/dx += dL/dy * sigmoid(x), element by element */
static void softplus_backward(Tape *tp, Node *n) {
    Tensor *x = n->in[0], *dy = n->out->grad;
    if (!n->needs[0]) return;   /* x wants no gradient (a frozen parameter, say) */
    Tensor *dx = ft_grad(tp, x);
    for (int64_t i = 0; i < x->numel; i++) {
        double s = 1 / (1 + exp(-ft_get(x, i)));
        ft_set(dx, i, ft_get(dx, i) + ft_get(dy, i) * s);
    }
}

/* a mistake to be caught: the sigmoid forgotten (dL/dx += dL/dy) */
static void wrong_backward(Tape *tp, Node *n) {
    if (!n->needs[0]) return;
    Tensor *dx = ft_grad(tp, n->in[0]);
    for (int64_t i = 0; i < dx->numel; i++) ft_set(dx, i, ft_get(dx, i) + ft_get(n->out->grad, i));
}

/* forward: y = log(1 + e^x), computed stably, then recorded with the given backward (nothing is
 * recorded when no input needs a gradient, so evaluation costs no memory for the backward). CPU
 * tensors only: a real op would call a device kernel, as core/ops_elementwise.c does. */
static Tensor *softplus(Tape *tp, Tensor *x, BackwardFn backward) {
    FT_INPUT(x);   /* an op before this one failed: pass the NULL on, as finch's own ops do */
    Tensor *y = ft_new_like(tp, x);
    for (int64_t i = 0; i < x->numel; i++) {
        double v = ft_get(x, i);
        ft_set(y, i, v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)));
    }
    ft_record(tp, "softplus", backward, y, 1, &x, 0);
    return y;
}

/* what ft_gradcheck differentiates: softplus of the first input times the second, so that the
 * new op meets a library op on the tape; ctx: which backward softplus records */
static Tensor *f(Tape *tp, Tensor *const *in, void *ctx) {
    return ft_mul(tp, softplus(tp, in[0], *(BackwardFn *)ctx), in[1]);
}

int main(void) {
    Rng rng = rng_new(7);
    Tensor *in[2] = { ft_tensor_new(FT_F64, SHAPE(2, 5), FT_CPU), ft_tensor_new(FT_F64, SHAPE(2, 5), FT_CPU) };
    rng_uniform_(&rng, in[0], -3, 3);
    rng_uniform_(&rng, in[1], -1, 1);
    BackwardFn right = softplus_backward, wrong = wrong_backward;
    GradcheckWorst w;
    double err = ft_gradcheck(f, &right, 2, in, 1e-6, 1, &w);
    printf("softplus(x) * y: worst gradient error %.2e (input %d, element %lld: backward %.9f, central difference %.9f)\n",
           err, w.input, (long long)w.element, w.analytic, w.numeric);
    double err_wrong = ft_gradcheck(f, &wrong, 2, in, 1e-6, 1, &w);
    printf("the same with the sigmoid forgotten: worst error %.2e (input %d, element %lld: backward %.6f, central difference "
           "%.6f)\n", err_wrong, w.input, (long long)w.element, w.analytic, w.numeric);
    int ok = err < 1e-6 && err_wrong > 1e-2;
    printf("%s\n", ok ? "the checker passes the right backward and catches the wrong one" : "WRONG");
    ft_tensor_free(in[0]);
    ft_tensor_free(in[1]);
    return ok ? 0 : 1;
}
