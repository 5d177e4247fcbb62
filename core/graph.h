/* The recorded graph as a picture: what a traced tape (ft_tape_trace) saw of a forward and a loss,
 * written as Graphviz DOT. One node per op with its name and output shape; the tensors no op
 * produced (parameters, the input, constants) as leaves; an edge per op input. After a backward,
 * it can also show which ops the backward visited and which it skipped: ops that needed no
 * gradient (no-grad, frozen parameters, constant inputs) and ops off the loss's path. */
#ifndef FINCH_GRAPH_H
#define FINCH_GRAPH_H

#include <stdio.h>
#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A tensor to name in the picture: a parameter ("conv1.weight"), the input image, ... */
typedef struct {
    const Tensor *t;
    const char *name;
    bool is_input;   /* drawn as the input (a house), else as a parameter (an ellipse) */
} GraphLeaf;

/* DOT of tp's trace into f. after_backward: colour the ops by whether ft_backward visited them
 * (green), skipped them though they were on the tape (grey: off the loss's path), or never saw
 * them (white, dashed: no gradient was needed). Returns the number of ops drawn. */
int ft_graph_dot(const Tape *tp, FILE *f, const GraphLeaf *leaves, int n_leaves, bool after_backward);

#ifdef __cplusplus
}
#endif

#endif
