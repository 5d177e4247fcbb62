#include <stdlib.h>
#include "autograd.h"
#include "error.h"
#include "profile.h"

Tape *ft_tape_new(Device dev) {
    ft_profile_check_env();   /* FINCH_PROFILE=1 */
    Tape *tp = ft_xcalloc(1, sizeof *tp);
    tp->device = dev;
    tp->arena = arena_new(dev);
    return tp;
}

void ft_tape_free(Tape *tp) {
    if (!tp) return;
    ft_profile_step_end();
    arena_free(tp->arena);
    free(tp->nodes);
    free(tp->trace);
    free(tp);
}

void ft_tape_reset(Tape *tp) {
    ft_profile_step_end();   /* (little to do unless CUDA spans are pending) */
    tp->n_nodes = tp->n_trace = 0;
    arena_reset(tp->arena);
}

static void push(Node ***list, int *n, int *cap, Node *node) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        *list = ft_xrealloc(*list, (size_t)*cap * sizeof **list);
    }
    (*list)[(*n)++] = node;
}

Tensor *ft_new(Tape *tp, DType dt, Shape s) {
    Tensor *t = ft_arena_tensor(tp->arena, dt, s, tp->device);
    if (ft_profile_on) ft_profile_alloc(tp->device, (size_t)t->numel * ft_dtype_size(dt));   /* an op's output or scratch */
    return t;
}
Tensor *ft_new_like(Tape *tp, const Tensor *t) { return ft_new(tp, t->dtype, t->shape); }

void ft_tape_release(Tape *tp, Tensor *t) {
    if (!t || !t->arena || t->arena != tp->arena || (t->node && !t->node->out_unread) || tp->tracing || t->offset != 0 ||
        t->storage->bytes != (size_t)t->numel * ft_dtype_size(t->dtype))
        return;
    for (int i = 0; i < tp->n_nodes; i++) {
        const Node *n = tp->nodes[i];
        if (n != t->node && n->out->storage == t->storage) return;
        for (int k = 0; k < n->n_in && !n->ins_unread; k++)
            if (n->in[k] && n->in[k]->storage == t->storage) return;
    }
    arena_release_data(tp->arena, t->storage->data, t->storage->bytes);
    t->storage->data = NULL;   /* a read after the release fails at once instead of reading another tensor's data */
}

bool ft_needs_grad(const Tape *tp, const Tensor *t) {
    if (tp->no_grad > 0 || !t) return false;
    if (t->node) return true;                      /* produced by a recorded op */
    if (!t->requires_grad) return false;
    return !(tp->params_frozen && t->is_param);
}

Node *ft_record(Tape *tp, const char *op, BackwardFn fn, Tensor *out,
                int n_in, Tensor *const *in, size_t ctx_bytes) {
    if (ft_profile_on) ft_profile_op_end(tp->device, op);   /* every op calls this once, last */
    bool any = false;
    for (int i = 0; i < n_in; i++) any |= ft_needs_grad(tp, in[i]);
    if (!any && !tp->tracing) return NULL;

    Node *n = arena_alloc_meta(tp->arena, sizeof *n);
    n->in = arena_alloc_meta(tp->arena, (size_t)n_in * sizeof *n->in);
    n->needs = arena_alloc_meta(tp->arena, (size_t)n_in * sizeof *n->needs);
    n->op = op;
    n->backward = fn;
    n->out = out;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) { n->in[i] = in[i]; n->needs[i] = ft_needs_grad(tp, in[i]); }
    n->traced_only = !any;
    if (tp->tracing) push(&tp->trace, &tp->n_trace, &tp->trace_cap, n);
    if (!any) return NULL;   /* noted for the trace, but no gradient flows through it */
    n->ctx = ctx_bytes ? arena_alloc_meta(tp->arena, ctx_bytes) : NULL;
    out->node = n;
    push(&tp->nodes, &tp->n_nodes, &tp->cap, n);
    return n;
}

Tensor *ft_grad(Tape *tp, Tensor *t) {
    if (!t->grad) {
        FT_CHECK(t->dtype == FT_F32 || t->dtype == FT_F64, "gradient of a %s tensor", ft_dtype_name(t->dtype));
        if (t->arena) {
            t->grad = ft_arena_tensor(t->arena, t->dtype, t->shape, t->storage->device);
            ft_zero_(t->grad);
        } else {
            t->grad = ft_tensor_new(t->dtype, t->shape, t->storage->device);
        }
    }
    (void)tp;
    return t->grad;
}

/* An op output's gradient back to its arena (a persistent output's is freed). */
static void release_grad(Tensor *t) {
    Tensor *g = t->grad;
    t->grad = NULL;
    if (g->arena) arena_release_data(g->arena, g->storage->data, g->storage->bytes);
    else ft_tensor_free(g);
}

int ft_backward(Tape *tp, Tensor *loss) {
    if (!loss) return -1;   /* an op before it failed: its message stands */
    if (loss->numel != 1) {
        ft_op_error_at(__FILE__, __LINE__, "backward from a tensor of shape %s: expected a single value (a loss)", FT_SHAPE_STR(loss->shape));
        return -1;
    }
    if (!loss->node) {
        ft_op_error_at(__FILE__, __LINE__, "backward from a tensor that no recorded op produced (does anything require grad?)");
        return -1;
    }
    for (int i = 0; i < tp->n_nodes; i++) tp->nodes[i]->visited = false;
    ft_fill_(ft_grad(tp, loss), 1.0);
    for (int i = tp->n_nodes - 1; i >= 0; i--) {
        Node *n = tp->nodes[i];
        if (!n->out->grad) {}   /* nodes off the loss's path received nothing */
        else if (!ft_profile_on) n->backward(tp, n);
        else {
            ProfileMark t0 = ft_profile_mark(tp->device);
            n->backward(tp, n);
            ft_profile_span(tp->device, n->op, true, t0, ft_profile_mark(tp->device));
        }
        if (n->out->grad) {   /* complete and passed on: its memory serves the next gradients */
            n->visited = true;
            release_grad(n->out);
        }
        if (tp->after_node) tp->after_node(tp, i, tp->after_node_ctx);
    }
    return 0;
}
