/* finch: train robust classifiers and attack them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "cli.h"
#include "core/finch.h"
#include "dist/dist.h"

/* finch device: what finch can run on here; exit 0 when a CUDA device is usable, 1 otherwise */
static int cmd_device(int argc, char **argv) {
    bool help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    if (!help && argc > 1) { fprintf(stderr, "finch device: takes no options (got '%s'); see finch device --help\n", argv[1]); return 2; }
    if (help) {
        printf("usage: finch device\n\nThe devices finch can use here: CPU threads, and the GPU's name, "
                "memory, driver and cuDNN (or why there is none).\nExit status 0 when a CUDA device is usable, 1 otherwise.\n");
        return 0;
    }
    const char *env = getenv("OPENBLAS_CORETYPE");
    printf("cpu: %d threads, OpenBLAS kernels %s%s\ncuda: %s\n", omp_get_max_threads(), ft_blas_corename(),
           env && getenv("FINCH_BLAS_RESTARTED") ? " (chosen by finch: OpenBLAS did not recognise this CPU)" : "",
           ft_cuda_describe());
    return ft_cuda_available() ? 0 : 1;
}

/* Commands that share their work across processes under mpirun (docs/DISTRIBUTED.md); the others
 * are refused there rather than run once per process. */
static bool data_parallel(const char *name) {
    const char *shared[] = { "train", "eval", "attack", "clever", "transfer", "benchmark" };
    for (int i = 0; i < 6; i++)
        if (strcmp(name, shared[i]) == 0) return true;
    return false;
}

static const struct { const char *name; int (*run)(int, char **); const char *help; } commands[] = {
    { "demo", cmd_demo, "train a small CNN on Fashion-MNIST, attack it with PGD, train it adversarially" },
    { "prepare", cmd_prepare, "decode CUB-200-2011 or an image folder once into a cache file (info FILE: inspect one)" },
    { "train", cmd_train, "train a model (optionally adversarially) and save it" },
    { "eval", cmd_eval, "clean accuracy of a saved model" },
    { "attack", cmd_attack, "FGSM / PGD / the robust paper's suite on a saved model: robust accuracy, pictures" },
    { "graph", cmd_graph, "the graph a forward and a loss record on the tape, as Graphviz DOT (--backward: what it visits)" },
    { "report", cmd_report, "attack-suite results of several runs side by side: seeds as mean ± sd, a plot against eps" },
    { "clever", cmd_clever, "CLEVER robustness scores: local Lipschitz estimates from sampled gradients (Weng et al.)" },
    { "transfer", cmd_transfer, "the transferability matrix: every model's adversarial examples against every model" },
    { "benchmark", cmd_benchmark, "the robustness benchmark over many models: accuracy, size, attacks, CLEVER, transfer" },
    { "retrieval", cmd_retrieval, "retrieval with a layer's features: Recall@1/5/10 and mAP, every image against the others" },
    { "feature-adv", cmd_feature_adv, "feature adversaries (Sabour et al.): a source's look, a guide's representation, by L-BFGS-B" },
    { "explain", cmd_explain, "a prototype network's reasons for one image: top prototypes, heatmaps, a page" },
    { "prune", cmd_prune, "remove prototypes whose nearest training patches are mostly of other classes" },
    { "bench", cmd_bench, "CPU kernel throughput (conv2d, matmul) against the BLAS sgemm rate" },
    { "model", cmd_model, "model info ARCH: parameters, names and shapes, receptive field; model layers ARCH: the tappable layers" },
    { "export", cmd_export, "write a trained model's weights for PyTorch" },
    { "device", cmd_device, "the devices finch can use here (the GPU's name, memory, driver, cuDNN; or why none)" },
};

static void usage(FILE *f) {
    fprintf(f, "usage: finch <command> [options]\n\n"
               "finch trains fine-grained classifiers that resist adversarial attacks and attacks\n"
               "them white-box with its own backward pass.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'finch <command> --help' lists a command's options. --profile (any command; or FINCH_PROFILE=1):\n"
               "time and tape memory per op, forward and backward, printed at exit and written to finch-profile.json.\n");
}

int main(int argc, char **argv) {
    ft_blas_restart(argv);   /* the CPU's BLAS kernels, when OpenBLAS did not recognise it */
    ft_strict_ops = true;   /* an op's bad arguments here are finch's own bug: end with the message and file:line */
    int kept = 1;   /* --profile, anywhere: the per-op profile at exit (core/profile.h), as FINCH_PROFILE=1 */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--profile") == 0) ft_profile_enable(true);
        else argv[kept++] = argv[i];
    argc = kept;
    argv[argc] = NULL;
    if (argc < 2) { usage(stderr); return 2; }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (ft_dist_init() != 0) { fprintf(stderr, "finch: %s\n", ft_last_error()); return 1; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            if (ft_dist_active() && !data_parallel(argv[1])) {
                if (ft_dist_rank() == 0)
                    fprintf(stderr, "finch %s: does not share its work across processes yet (%d under %s); run one process "
                            "(train, eval, attack, clever, transfer and benchmark do)\n", argv[1], ft_dist_size(), ft_dist_engine());
                ft_dist_end(0);
                return 2;
            }
            if (ft_dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return 1;   /* results are rank 0's to print */
            int rc = commands[i].run(argc - 1, argv + 1);
            ft_dist_end(rc);
            return rc;
        }
    fprintf(stderr, "finch: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
