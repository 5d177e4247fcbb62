/* finch model info ARCH: parameter count, every tensor's name and shape, and the trunk's
 * receptive field at an input size. finch model layers ARCH: the layers that can be tapped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "run.h"
#include "models/model_io.h"

static void with_commas(int64_t v, char *buf, size_t n) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    size_t len = strlen(raw), k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        if (i && (len - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
}

/* finch model layers: every tappable layer's name and output shape for one input. */
static int list_layers(Model *m, int size) {
    int S = m->height ? m->height : size;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_new(tp, FT_F32, SHAPE(1, m->in_channels, S, S));
    ft_fill_(x, 0.5);
    m->training = false;
    ModelTaps *t = ft_xcalloc(1, sizeof *t);
    model_list_layers(m, tp, x, t);
    printf("%s at %dx%d, %d channel(s): %d layers\n", m->arch, S, S, m->in_channels, t->n);
    for (int i = 0; i < t->n; i++) printf("  %-44s %s\n", t->names[i], FT_SHAPE_STR(t->shapes[i]));
    free(t);
    ft_tape_free(tp);
    return 0;
}

static void print_info(Model *m, const char *arch, int size) {
    int64_t params = 0, buffers = 0;
    for (int i = 0; i < m->params.n; i++) {
        const Param *p = &m->params.items[i];
        printf("%-64s %-20s %s\n", p->name, FT_SHAPE_STR(p->t->shape), p->trainable ? "" : "buffer");
        if (p->trainable) params += p->t->numel; else buffers += p->t->numel;
    }
    char pc[32], bc[32];
    with_commas(params, pc, sizeof pc);
    with_commas(buffers, bc, sizeof bc);
    printf("\n%s: %s parameters in %d tensors, %s buffer values\n", arch, pc, m->params.n, bc);
    if (m->height == 0 || m->height == size) {
        ReceptiveField r = model_receptive_field(m, size);
        printf("trunk at %dx%d: %dx%d output, jump %g, receptive field %g, first centre %g\n", size, size, r.n, r.n,
               r.jump, r.rf, r.start);
    }
}

int cmd_model(int argc, char **argv) {
    bool info = argc >= 3 && strcmp(argv[1], "info") == 0, layers = argc >= 3 && strcmp(argv[1], "layers") == 0;
    if (!info && !layers) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: finch model info ARCH [options]\n       finch model layers ARCH [options]\n\narchitectures: %s\n",
                   model_arch_list());
            return 0;
        }
        fprintf(stderr, "finch model: usage: finch model info|layers ARCH [--classes K] [--width W] [--size S] "
                        "(architectures: %s)\n", model_arch_list());
        return 2;
    }
    const char *arch = argv[2], *sub = info ? "model info" : "model layers";
    if (strcmp(arch, "--help") == 0 || strcmp(arch, "-h") == 0) {
        printf("usage: finch %s ARCH [--classes K] [--width W] [--size S] [--blocks a,b,c,d] [--stem N] [--vgg-cfg ...]\n\n%s\n"
               "architectures: %s\n", sub, info ? "Parameters, every tensor's name and shape, and the receptive field."
               : "Every layer whose output can be tapped (feature attacks, retrieval), with its output shape.", model_arch_list());
        return 0;
    }
    int classes = 1000, width = 0, size = 224, stem = 0;
    const char *blocks = NULL, *vgg_cfg = NULL;
    const CliArg args[] = {
        { "classes", ARG_INT, &classes, 1, 100000, "classes of the classifier" },
        { "width", ARG_INT, &width, 0, 4096, "reduced width (0: the standard model)" },
        { "size", ARG_INT, &size, 1, 4096, "input size (the receptive-field table; the layers' shapes)" },
        { "blocks", ARG_STRING, &blocks, 0, 0, "ResNet blocks per stage / DenseNet layers per block, e.g. 2,2,2,2" },
        { "stem", ARG_INT, &stem, 0, 4096, "DenseNet initial features (0: twice the growth rate)" },
        { "vgg-cfg", ARG_STRING, &vgg_cfg, 0, 0, "VGG channels per conv, M for a max-pool, e.g. 64,M,128,M" },
    };
    int rc = cli_parse(sub, info ? "Parameter count, every tensor's name and shape, and the receptive field of the\n"
                                   "trunk's output cells."
                                 : "Every layer whose output can be tapped, with its output shape for one input of --size.",
                       argc - 2, argv + 2, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    ModelConfig mc = { .num_classes = classes, .width = width, .seed = 0, .device = FT_CPU };
    if (!run_model_config(sub, blocks, stem, vgg_cfg, &mc)) return 2;
    Model *m = model_create(arch, &mc);
    if (!m) { fprintf(stderr, "finch %s: %s\n", sub, ft_last_error()); return 2; }
    if (layers && m->height && !cli_given(argc - 2, argv + 2, "size")) size = m->height;   /* a fixed input size */
    if (layers && !model_accepts(m, m->in_channels, size, size)) {
        fprintf(stderr, "finch model layers: --size %d: %s takes %dx%d images\n", size, arch, m->height, m->width);
        model_free(m);
        return 2;
    }
    if (info) print_info(m, arch, size);
    else list_layers(m, size);
    model_free(m);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *file = NULL, *out = NULL;
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        { "out", ARG_STRING, &out, 0, 0, "where to write the weights for PyTorch" },
    };
    int rc = cli_parse("export", "Write a model's weights for PyTorch: torchvision's names, loadable with\n"
                       "safetensors.torch.load_file and load_state_dict.", argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!file || !out) { fprintf(stderr, "finch export: --model-file and --out are required\n"); return 2; }
    Model *m = model_load(file, FT_CPU, NULL);
    if (!m) { fprintf(stderr, "finch export: %s\n", ft_last_error()); return 1; }
    rc = model_export(m, out);
    if (rc) fprintf(stderr, "finch export: %s\n", ft_last_error());
    else printf("wrote %s: %d tensors of %s\n", out, m->params.n, m->arch);
    model_free(m);
    return rc ? 1 : 0;
}
