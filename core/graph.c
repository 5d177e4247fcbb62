/* The recorded graph as Graphviz DOT (graph.h). */
#include "graph.h"
#include <stdlib.h>
#include "error.h"

/* the trace node that produced t, or -1 */
static int producer(const Tape *tp, const Tensor *t, int before) {
    for (int i = before - 1; i >= 0; i--)
        if (tp->trace[i]->out == t) return i;
    return -1;
}

static const GraphLeaf *leaf_of(const Tensor *t, const GraphLeaf *leaves, int n) {
    for (int i = 0; i < n; i++)
        if (leaves[i].t == t) return &leaves[i];
    return NULL;
}

int ft_graph_dot(const Tape *tp, FILE *f, const GraphLeaf *leaves, int n_leaves, bool after_backward) {
    fprintf(f, "digraph finch {\n  rankdir=TB;\n  node [fontname=\"sans\", fontsize=10];\n  edge [color=\"#555555\"];\n");
    size_t inputs = 1;
    for (int i = 0; i < tp->n_trace; i++) inputs += (size_t)tp->trace[i]->n_in;
    const Tensor **seen = ft_xmalloc(inputs * sizeof *seen);
    int n_seen = 0;
    for (int i = 0; i < tp->n_trace; i++) {
        const Node *n = tp->trace[i];
        const char *style = "filled", *fill = "#dbe9f6";   /* before a backward: every op alike */
        if (after_backward) {
            if (n->traced_only) { style = "dashed"; fill = "white"; }
            else if (n->visited) fill = "#cdebc5";         /* visited */
            else fill = "#e0e0e0";                          /* on the tape, off the loss's path */
        }
        fprintf(f, "  op%d [shape=box, style=\"%s\", fillcolor=\"%s\", label=\"%s\\n%s\"];\n", i, style, fill, n->op,
                FT_SHAPE_STR(n->out->shape));
        for (int k = 0; k < n->n_in; k++) {
            const Tensor *t = n->in[k];
            int from = producer(tp, t, i);
            if (from >= 0) { fprintf(f, "  op%d -> op%d;\n", from, i); continue; }
            int j = 0;   /* a leaf: drawn once, then referred to */
            while (j < n_seen && seen[j] != t) j++;
            if (j == n_seen) {
                seen[n_seen++] = t;
                const GraphLeaf *l = leaf_of(t, leaves, n_leaves);
                if (l && l->is_input) fprintf(f, "  leaf%d [shape=invhouse, style=filled, fillcolor=\"#fde4c8\", label=\"%s\\n%s\"];\n", j,
                                              l->name, FT_SHAPE_STR(t->shape));
                else if (l) fprintf(f, "  leaf%d [shape=ellipse, style=filled, fillcolor=\"%s\", label=\"%s\\n%s\"];\n", j,
                                    t->requires_grad && !(tp->params_frozen && t->is_param) ? "#fff2b3" : "#eeeeee", l->name,
                                    FT_SHAPE_STR(t->shape));
                else fprintf(f, "  leaf%d [shape=note, fontsize=8, label=\"constant\\n%s\"];\n", j, FT_SHAPE_STR(t->shape));
            }
            fprintf(f, "  leaf%d -> op%d%s;\n", j, i, n->needs[k] ? "" : " [style=dotted]");
        }
    }
    fprintf(f, "}\n");
    free(seen);
    return tp->n_trace;
}
