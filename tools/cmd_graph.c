/* finch graph: the graph one forward and a cross-entropy loss record, as Graphviz DOT (and an SVG
 * when Graphviz's dot is installed); with --backward, which ops the backward visits and which it
 * skips. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "cli.h"
#include "run.h"
#include "core/fileio.h"
#include "models/model_io.h"

extern char **environ;

/* dot -Tsvg DOT -o SVG; 0, or -1 when dot is missing or fails */
static int render_svg(const char *dot, const char *svg) {
    char *argv[] = { "dot", "-Tsvg", (char *)dot, "-o", (char *)svg, NULL };
    pid_t pid;
    int status;
    if (posix_spawnp(&pid, "dot", NULL, NULL, argv, environ) != 0) return -1;
    return waitpid(pid, &status, 0) >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int cmd_graph(int argc, char **argv) {
    const char *arch = "small_cnn", *out = NULL, *blocks = NULL, *vgg_cfg = NULL;
    int classes = 10, width = 0, size = 0, stem = 0, batch = 1;
    bool backward = false, attack = false;
    const CliArg args[] = {
        { "model", ARG_STRING, &arch, 0, 0, "architecture (finch model --help lists them)" },
        { "classes", ARG_INT, &classes, 1, 100000, "classes of the classifier" },
        { "width", ARG_INT, &width, 0, 4096, "reduced width (0: the standard model)" },
        { "input-size", ARG_INT, &size, 0, 4096, "input size (0: the model's own, or 224)" },
        { "blocks", ARG_STRING, &blocks, 0, 0, "ResNet blocks per stage / DenseNet layers per block, e.g. 2,2,2,2" },
        { "stem", ARG_INT, &stem, 0, 4096, "DenseNet initial features (0: twice the growth rate)" },
        { "vgg-cfg", ARG_STRING, &vgg_cfg, 0, 0, "VGG channels per conv, M for a max-pool, e.g. 64,M,128,M" },
        { "batch", ARG_INT, &batch, 1, 64, "images in the batch" },
        { "backward", ARG_FLAG, &backward, 0, 0, "run the backward too: ops it visits green, on the tape but skipped grey, "
          "never recorded (no gradient needed) dashed" },
        { "attack", ARG_FLAG, &attack, 0, 0, "as an attack step records it: eval mode, parameters frozen, the input's gradient" },
        { "out", ARG_STRING, &out, 0, 0, "the DOT file (required); an SVG beside it when Graphviz's dot is installed" },
    };
    int rc = cli_parse("graph", "The graph that one forward and a cross-entropy loss record on the tape, as Graphviz DOT:\n"
                       "one box per op (its name, its output's shape), the parameters and the input image as leaves,\n"
                       "an edge per op input (dotted: no gradient flows along it).",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!out) { fprintf(stderr, "finch graph: --out is required\n"); return 2; }
    ModelConfig mc = { .num_classes = classes, .width = width, .seed = 1, .device = FT_CPU };
    if (!run_model_config("graph", blocks, stem, vgg_cfg, &mc)) return 2;
    Model *m = model_create(arch, &mc);
    if (!m) { fprintf(stderr, "finch graph: %s\n", ft_last_error()); return 2; }
    int S = size ? size : m->height ? m->height : 224;
    if (!model_accepts(m, m->in_channels, S, S)) {
        fprintf(stderr, "finch graph: --input-size %d: %s takes %dx%d images\n", S, arch, m->height, m->width);
        model_free(m);
        return 2;
    }
    Tape *tp = ft_tape_new(FT_CPU);
    ft_tape_trace(tp, true);
    m->training = !attack;
    tp->params_frozen = attack;
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(batch, m->in_channels, S, S), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(batch), FT_CPU);
    Rng r = rng_new(1);
    rng_uniform_(&r, x, 0, 1);
    for (int i = 0; i < batch; i++) ft_set(y, i, i % m->num_classes);
    x->requires_grad = attack;
    Tensor *loss = ft_cross_entropy(tp, m->forward(m, tp, x), y);
    if (backward) ft_backward(tp, loss);
    GraphLeaf *leaves = ft_xmalloc(((size_t)m->params.n + 3) * sizeof *leaves);
    int n_leaves = 0;
    leaves[n_leaves++] = (GraphLeaf){ x, "input image", true };
    if (m->mean) leaves[n_leaves++] = (GraphLeaf){ m->mean, "normalisation mean", false };
    if (m->std) leaves[n_leaves++] = (GraphLeaf){ m->std, "normalisation std", false };
    for (int i = 0; i < m->params.n; i++) leaves[n_leaves++] = (GraphLeaf){ m->params.items[i].t, m->params.items[i].name, false };
    AtomicFile a;
    int ops = 0;
    if (atomic_open(&a, out) != 0) rc = 1;
    else {
        ops = ft_graph_dot(tp, a.f, leaves, n_leaves, backward);
        if (atomic_close(&a, !ferror(a.f)) != 0) rc = 1;
    }
    if (rc) fprintf(stderr, "finch graph: %s\n", ft_last_error());
    else {
        int visited = 0, recorded = 0;
        for (int i = 0; i < tp->n_trace; i++) {
            recorded += !tp->trace[i]->traced_only;
            visited += !tp->trace[i]->traced_only && tp->trace[i]->visited;
        }
        printf("%s: %d ops, %d on the tape (needing a gradient)", out, ops, recorded);
        if (backward) printf(", %d visited by the backward", visited);
        char svg[1100];
        snprintf(svg, sizeof svg, "%.*s.svg", (int)(strlen(out) > 4 && strcmp(out + strlen(out) - 4, ".dot") == 0 ? strlen(out) - 4 : strlen(out)), out);
        if (render_svg(out, svg) == 0) printf("; drawn as %s", svg);
        else printf(" (no SVG: Graphviz's dot is not installed; apt-get install graphviz)");
        printf("\n");
    }
    free(leaves);
    ft_tensor_free(x);
    ft_tensor_free(y);
    ft_tape_free(tp);
    model_free(m);
    return rc;
}
