/* Example 1: the three-line tape of docs/AUTOGRAD.md, with the backward pass written out.
 *
 * Every op called with a tape computes at once and appends a node (its name, its inputs, its
 * backward function) to the tape. ft_backward() walks the nodes from last to first and calls
 * each one's backward, which adds into its inputs' gradients. Here that walk is done by hand, so
 * that every node can be printed as it is visited.
 *
 *   make examples && build/examples/01_tape
 */
#include <stdio.h>
#include "core/finch.h"

static void print_values(const char *name, const Tensor *t) {
    printf("%s = [", name);
    for (int64_t i = 0; i < t->numel; i++) printf("%s%g", i ? ", " : "", ft_get(t, i));
    printf("]\n");
}

int main(void) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(3), FT_CPU);
    const double values[3] = { 1, -2, 3 };
    for (int i = 0; i < 3; i++) ft_set(x, i, values[i]);
    x->requires_grad = true;   /* a leaf we want the gradient of */

    Tensor *y = ft_mul(tp, x, x);                  /* line 1: y = x * x  */
    Tensor *z = ft_add(tp, y, x);                  /* line 2: z = y + x  */
    Tensor *L = ft_sum(tp, z, FT_ALL_DIMS, false); /* line 3: L = sum(z) */
    printf("forward: L = %g; the tape holds %d nodes, in the order the ops ran:\n", ft_item(L), tp->n_nodes);
    for (int i = 0; i < tp->n_nodes; i++) printf("  node %d: %s\n", i, tp->nodes[i]->op);

    /* What ft_backward(tp, L) does: seed dL/dL = 1, then visit the nodes in reverse. */
    ft_fill_(ft_grad(tp, L), 1.0);
    printf("backward:\n");
    for (int i = tp->n_nodes - 1; i >= 0; i--) {
        Node *n = tp->nodes[i];
        if (!n->out->grad) { printf("  node %d (%s): no gradient reached it, skipped\n", i, n->op); continue; }
        printf("  node %d (%s): receives d L / d out, adds into its %d input(s)\n", i, n->op, n->n_in);
        n->backward(tp, n);
    }
    print_values("x", x);
    print_values("dL/dx (expected 2x + 1)", x->grad);
    int ok = ft_get(x->grad, 0) == 3 && ft_get(x->grad, 1) == -3 && ft_get(x->grad, 2) == 7;
    printf("%s\n", ok ? "matches 2x + 1" : "WRONG");

    ft_tensor_free(x);   /* a persistent tensor: its gradient goes with it */
    ft_tape_free(tp);    /* every op output, node and intermediate gradient */
    return ok ? 0 : 1;
}
