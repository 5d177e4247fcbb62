/* Autograd: a define-by-run tape.
 *
 * Every op called with a Tape computes its output at once and, if any input needs a gradient,
 * appends a Node to the tape: the op's backward function, its inputs and whatever it saved.
 * The nodes are appended in the order the ops ran, which is already a topological order, so
 * ft_backward() only has to walk the tape in reverse and call each node's backward, which adds
 * (+=) into its inputs' gradients. A tensor used twice gets both contributions.
 *
 * The tape also owns the step's memory: op outputs, nodes and intermediate gradients live in its
 * arena and are released together by ft_tape_reset(). An intermediate tensor's gradient is
 * complete once its producer's turn comes (every consumer ran before it), so ft_backward hands
 * its memory back to the arena right after that node's backward, for the next gradients to
 * reuse: at most a few intermediate gradients are alive at once, not one per op. Leaves
 * (inputs, parameters) keep theirs.
 */
#ifndef FINCH_AUTOGRAD_H
#define FINCH_AUTOGRAD_H

#include "tensor.h"
#include "arena.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Tape Tape;
typedef void (*BackwardFn)(Tape *tp, Node *n);

struct Node {
    const char *op;                  /* name, for debugging and docs */
    BackwardFn backward;
    Tensor *out;
    int n_in;
    Tensor **in;                     /* the op's inputs, in order */
    bool *needs;                     /* which of them want a gradient */
    void *ctx;                       /* op-specific saved state, in the arena */
    bool traced_only;                /* a trace's note of an op that needed no gradient: never on the tape */
    /* what the backward never reads (set by the op; false, the safe default, for most): the
     * output's data, the inputs' data. ft_tape_release may hand such a tensor back. */
    bool out_unread, ins_unread;
    bool visited;                    /* the last ft_backward ran this node's backward */
};

struct Tape {
    Arena *arena;
    Device device;
    Node **nodes;
    int n_nodes, cap;
    int no_grad;          /* > 0: nothing is recorded (nestable) */
    bool params_frozen;   /* input-gradient-only mode: parameters are treated as constants */
    /* ft_tape_trace(): every op is also noted here in the order it ran, those that need no gradient
     * (no-grad, frozen or constant inputs) as traced_only nodes that the backward never sees */
    bool tracing;
    Node **trace;
    int n_trace, trace_cap;
    /* Called by ft_backward after node i's turn (i from n_nodes - 1 down to 0, nodes off the
     * loss's path included): data-parallel training sends a bucket of gradients to the other
     * processes as soon as its last contribution is in (dist/grad_sync.h). NULL: nothing. */
    void (*after_node)(Tape *tp, int i, void *ctx);
    void *after_node_ctx;
};

Tape *ft_tape_new(Device dev);
void ft_tape_free(Tape *tp);
/* Release every node, op output and intermediate gradient of the step. */
void ft_tape_reset(Tape *tp);

/* Note every op from now on (core/graph.h draws the notes); off by default, and then free. */
static inline void ft_tape_trace(Tape *tp, bool on) { tp->tracing = on; }

static inline void ft_no_grad_begin(Tape *tp) { tp->no_grad++; }
static inline void ft_no_grad_end(Tape *tp) { tp->no_grad--; }

/* Would a gradient flow into t if it were used by an op now? */
bool ft_needs_grad(const Tape *tp, const Tensor *t);

/* For ops: record a node producing `out` from `in` if any input needs a gradient.
 * Returns the node (ctx zeroed, ctx_bytes large) or NULL when nothing was recorded. */
Node *ft_record(Tape *tp, const char *op, BackwardFn fn, Tensor *out,
                int n_in, Tensor *const *in, size_t ctx_bytes);

/* Backpropagate from a one-element `loss` (seed gradient 1): leaves' gradients accumulate (+=);
 * intermediate tensors' gradients are released as the walk passes their producers (their ->grad
 * is NULL afterwards; Node.visited says which nodes ran). 0, or -1 with ft_last_error() when
 * loss is NULL (an op before it failed), not one element, or produced by no recorded op (an op
 * error: fatal under ft_strict_ops). */
int ft_backward(Tape *tp, Tensor *loss);

/* For backward functions: t's gradient, created zero-filled on first use (in the arena for
 * step tensors, persistent for leaves). */
Tensor *ft_grad(Tape *tp, Tensor *t);

/* A tape-owned output tensor on the tape's device. */
Tensor *ft_new(Tape *tp, DType dt, Shape s);
Tensor *ft_new_like(Tape *tp, const Tensor *t);
/* Hands t's data back to the tape's arena for the rest of the step (later ops reuse it), for a
 * step tensor that only fed the next op and that the caller will not read again, such as
 * model_normalize's x - mean or a residual block's last batch norm output once added. Does
 * nothing when a recorded backward may read its data (its producer's, unless out_unread; a
 * consumer's, unless ins_unread), when it is persistent or a view, or while the tape is tracing
 * (the graph shows it). */
void ft_tape_release(Tape *tp, Tensor *t);

#ifdef __cplusplus
}
#endif

#endif
