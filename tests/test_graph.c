/* The tape drawn as a graph (core/graph.c, finch graph): the DOT of docs/AUTOGRAD.md's three-line
 * example written out in full, and the small CNN's nodes and edges through the command. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"

static char *dot_of(const Tape *tp, const GraphLeaf *leaves, int n, bool after) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ft_graph_dot(tp, f, leaves, n, after);
    fclose(f);
    return text;
}

TEST(graph_of_the_three_line_tape_has_every_op_leaf_and_edge) {
    Tape *tp = ft_tape_new(FT_CPU);
    ft_tape_trace(tp, true);
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(3), FT_CPU);
    x->requires_grad = true;
    Tensor *L = ft_sum(tp, ft_add(tp, ft_mul(tp, x, x), x), FT_ALL_DIMS, false);
    ft_backward(tp, L);
    GraphLeaf leaf = { x, "x", true };
    char *dot = dot_of(tp, &leaf, 1, true);
    const char *expected =
        "digraph finch {\n  rankdir=TB;\n  node [fontname=\"sans\", fontsize=10];\n  edge [color=\"#555555\"];\n"
        "  op0 [shape=box, style=\"filled\", fillcolor=\"#cdebc5\", label=\"mul\\n[3]\"];\n"
        "  leaf0 [shape=invhouse, style=filled, fillcolor=\"#fde4c8\", label=\"x\\n[3]\"];\n"
        "  leaf0 -> op0;\n  leaf0 -> op0;\n"
        "  op1 [shape=box, style=\"filled\", fillcolor=\"#cdebc5\", label=\"add\\n[3]\"];\n"
        "  op0 -> op1;\n  leaf0 -> op1;\n"
        "  op2 [shape=box, style=\"filled\", fillcolor=\"#cdebc5\", label=\"sum\\n[]\"];\n"
        "  op1 -> op2;\n}\n";
    CHECK(strcmp(dot, expected) == 0, "the DOT:\n%s\nexpected:\n%s", dot, expected);
    free(dot);
    /* an op under no-grad is noted (dashed) but never reaches the tape or the backward */
    ft_tape_reset(tp);
    ft_no_grad_begin(tp);
    ft_mul(tp, x, x);
    ft_no_grad_end(tp);
    CHECK(tp->n_trace == 1 && tp->n_nodes == 0 && tp->trace[0]->traced_only, "trace %d, tape %d", tp->n_trace, tp->n_nodes);
    dot = dot_of(tp, &leaf, 1, true);
    CHECK(strstr(dot, "op0 [shape=box, style=\"dashed\"") && strstr(dot, "leaf0 -> op0 [style=dotted];"), "%s", dot);
    free(dot);
    /* untraced, nothing is noted */
    ft_tape_reset(tp);
    ft_tape_trace(tp, false);
    ft_mul(tp, x, x);
    CHECK(tp->n_trace == 0 && tp->n_nodes == 1, "trace %d, tape %d", tp->n_trace, tp->n_nodes);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

/* the id ("op3", "leaf2") of the first DOT node whose label starts with label */
static const char *node_id(const char *dot, const char *label, char *id, size_t n) {
    char needle[128];
    snprintf(needle, sizeof needle, "label=\"%s", label);
    const char *at = strstr(dot, needle);
    if (!at) return NULL;
    const char *line = at;
    while (line > dot && line[-1] != '\n') line--;
    while (*line == ' ') line++;
    size_t k = strcspn(line, " ");
    snprintf(id, n, "%.*s", (int)(k < n ? k : n - 1), line);
    return id;
}

static bool has_edge(const char *dot, const char *from, const char *to, const char *attr) {
    char e[128];
    snprintf(e, sizeof e, "  %s -> %s%s;\n", from, to, attr);
    return strstr(dot, e) != NULL;
}

TEST(cli_graph_of_the_small_cnn_has_its_layers_and_their_edges) {
    REQUIRE_FINCH();
    char a[1024], out[4096], path[700];
    snprintf(path, sizeof path, "%s/graph.dot", test_tmpdir());
    for (int attack = 0; attack < 2; attack++) {
        snprintf(a, sizeof a, "graph --model small_cnn --backward %s --out %s", attack ? "--attack" : "", path);
        /* training: 14 ops (dropout's mask multiply among them; each batch norm and its ReLU one op), the input's
         * normalisation off the tape; attack: no dropout, every op on the tape (the input wants its gradient) */
        CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, attack ? "13 ops, 13 on the tape" : "14 ops, 12 on the tape"),
              "finch %s:\n%s", a, out);
        size_t n;
        char *dot = read_file(path, &n), conv[32], w[32], img[32], bn[32], ce[32], fc2[32], fc2w[32];
        CHECK(dot && node_id(dot, "conv2d\\n[1, 16, 28, 28]", conv, 32) && node_id(dot, "conv1.weight\\n[16, 1, 3, 3]", w, 32) &&
              node_id(dot, "input image\\n[1, 1, 28, 28]", img, 32) && node_id(dot, "batch_norm_relu\\n[1, 16, 28, 28]", bn, 32) &&
              node_id(dot, "cross_entropy", ce, 32) && node_id(dot, "linear\\n[1, 10]", fc2, 32) &&
              node_id(dot, "fc2.weight", fc2w, 32), "nodes missing:\n%s", dot);
        if (dot) {
            /* the weight feeds the first convolution; in an attack step no gradient flows into it */
            CHECK(has_edge(dot, w, conv, attack ? " [style=dotted]" : ""), "no edge %s -> %s (attack %d)", w, conv, attack);
            CHECK(has_edge(dot, fc2w, fc2, attack ? " [style=dotted]" : ""), "no edge %s -> %s (attack %d)", fc2w, fc2, attack);
            CHECK(has_edge(dot, conv, bn, ""), "no edge %s -> %s", conv, bn);
            CHECK(has_edge(dot, fc2, ce, ""), "no edge %s -> %s", fc2, ce);
            /* the input's normalisation needs a gradient only when the input does (the attack) */
            CHECK(strstr(dot, attack ? "label=\"sub\\n" : "style=\"dashed\", fillcolor=\"white\", label=\"sub\\n"), "sub:\n%s", dot);
        }
        free(dot);
    }
    EXPECT("graph --model small_cnn", 2, "--out is required");
    EXPECT("graph --model nosuch --out x.dot", 2, "nosuch");
    EXPECT("graph --model small_cnn --input-size 32 --out x.dot", 2, "--input-size 32: small_cnn takes 28x28 images");
}
