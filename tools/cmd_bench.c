/* finch bench: CPU kernel throughput. Each row is the median of several timed runs after a
 * warm-up, reported as GFLOP/s and as a fraction of cblas_sgemm on a 1024^3 product measured in
 * the same run (the ceiling an im2col + GEMM convolution can approach). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "bench.h"
#include "core/progress.h"

void openblas_set_num_threads(int);

typedef struct { const char *name; double flops, seconds; } Row;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(void (*fn)(void *), void *ctx, int warmup, int reps, Device dev) {
    double t[256];
    if (reps > 256) reps = 256;
    for (int i = 0; i < warmup; i++) fn(ctx);
    for (int i = 0; i < reps; i++) {
        ft_synchronize(dev);
        double t0 = ft_now();
        fn(ctx);
        ft_synchronize(dev);
        t[i] = ft_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return t[reps / 2];
}

static double median_time(void (*fn)(void *), void *ctx, int reps) { return bench_median(fn, ctx, 2, reps, FT_CPU); }

typedef struct { int M, N, K; float *A, *B, *C; } SgemmCtx;
static void run_sgemm(void *p) {
    SgemmCtx *c = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->M, c->N, c->K, 1, c->A, c->K, c->B, c->N, 0, c->C, c->N);
}
/* the same product through finch's gemm kernel (what ft_matmul and ft_linear run) */
static void run_finch_gemm(void *p) {
    SgemmCtx *c = p;
    ft_cpu_backend()->gemm(&(GemmArgs){ FT_F32, false, false, c->M, c->N, c->K, 1, 0, c->A, c->K, 0, c->B, c->N, 0,
                                        c->C, c->N, 0, 1 });
}

typedef struct { ConvArgs fwd; ConvGradArgs bwd; } ConvCtx;
static void run_max_pool(void *p) { ft_cpu_backend()->max_pool((const MaxPoolArgs *)p); }
static void run_conv_fwd(void *p) { ft_cpu_backend()->conv2d(&((ConvCtx *)p)->fwd); }
static void run_conv_bwd(void *p) { ft_cpu_backend()->conv2d_grad(&((ConvCtx *)p)->bwd); }

static float *randoms(size_t n, Rng *r) {
    Tensor *t = ft_tensor_new(FT_F32, SHAPE((int)n), FT_CPU);
    rng_uniform_(r, t, -1, 1);
    float *p = ft_xmalloc(n * sizeof *p);
    memcpy(p, ft_f32(t), n * sizeof *p);
    ft_tensor_free(t);
    return p;
}

/* Forward, and backward (input and weight gradients), of one convolution shape. */
static void bench_conv(const char *name, int N, int C, int H, int O, int k, int pad, int reps, Rng *r, Row *rows, int *n) {
    ConvGeom g = { N, C, H, H, O, k, k, 1, 1, pad, pad, 1, 1, H + 2 * pad - k + 1, H + 2 * pad - k + 1 };
    size_t nx = (size_t)N * C * H * H, nw = (size_t)O * C * k * k, ny = (size_t)N * O * g.OH * g.OW;
    float *x = randoms(nx, r), *w = randoms(nw, r), *b = randoms((size_t)O, r), *y = randoms(ny, r);
    float *gx = calloc(nx, 4), *gw = calloc(nw, 4), *gb = calloc((size_t)O, 4);
    ConvCtx c = { { FT_F32, g, x, w, b, y }, { FT_F32, g, y, x, w, gx, gw, gb } };
    double flops = 2.0 * N * O * g.OH * g.OW * C * k * k;
    char *fn = malloc(96), *bn = malloc(96);
    snprintf(fn, 96, "conv2d fwd %s", name);
    snprintf(bn, 96, "conv2d bwd %s", name);
    rows[(*n)++] = (Row){ fn, flops, median_time(run_conv_fwd, &c, reps) };
    rows[(*n)++] = (Row){ bn, 2 * flops, median_time(run_conv_bwd, &c, reps) };
    free(x); free(w); free(b); free(y); free(gx); free(gw); free(gb);
}

static void bench_gemm(const char *label, void (*fn)(void *), int M, int N, int K, int reps, Rng *r, Row *rows, int *n) {
    SgemmCtx s = { M, N, K, randoms((size_t)M * K, r), randoms((size_t)K * N, r), randoms((size_t)M * N, r) };
    rows[(*n)++] = (Row){ label, 2.0 * M * N * K, median_time(fn, &s, reps) };
    free(s.A); free(s.B); free(s.C);
}

int cmd_bench(int argc, char **argv) {
    const char *json = NULL, *device = "cpu", *row = NULL;
    int reps = 9, threads = 0;
    bool models = false, tf32 = false, loader = false, push = false, attacks = false;
    const CliArg args[] = {
        { "json", ARG_STRING, &json, 0, 0, "also write the table as JSON to this file" },
        { "reps", ARG_INT, &reps, 1, 256, "timed repetitions per row (median reported)" },
        { "models", ARG_FLAG, &models, 0, 0, "time whole networks instead: training steps and PGD-10 throughput" },
        { "attacks", ARG_FLAG, &attacks, 0, 0, "time the optimisation attacks instead: C&W-L2 on the demo CNN (tools/bench_attacks.py: vs torchattacks)" },
        { "loader", ARG_FLAG, &loader, 0, 0, "time the data path instead: finch prepare and the loader at 224x224" },
        { "push", ARG_FLAG, &push, 0, 0, "time a ProtoPNet push instead: 2000 prototypes over 6,000 images at 7x7" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda (with --models, --attacks or --push)" },
        { "row", ARG_STRING, &row, 0, 0, "with --models: only the rows whose name contains this text (e.g. ResNet-18)" },
        { "tf32", ARG_FLAG, &tf32, 0, 0, "TF32 tensor cores for float32 matrix products (cuda, with --models)" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores; with --loader, loader threads)" },
    };
    int rc = cli_parse("bench", "CPU kernel throughput: conv2d forward/backward and matrix products at the demo's\n"
                       "sizes and at ResNet-18's 3x3 sizes (batch 8), against cblas_sgemm on 1024^3. With --models: one\n"
                       "training step of the demo CNN (batch 256), of a ResNet-like conv stack (batch 64) and of\n"
                       "ResNet-18, DenseNet-121 and VGG11-BN at 224x224 (batch 16), ProtoPNet's joint step on the\n"
                       "demo CNN's trunk (batch 64) and on a one-block-a-stage ResNet-18 at 112x112 (batch 16), its\n"
                       "push (2000 prototypes over 6,000 images) and PGD-10 throughput on the demo CNN, on\n"
                       "--device, with each row's peak memory\n"
                       "(tools/bench_torch.py --cpu: vs PyTorch, for the rows PyTorch has).", argc, argv, args,
                       sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    run_set_threads(threads);
    Device dev;
    if (!cli_device("bench", device, &dev)) return 2;
    if (row && !models) { fprintf(stderr, "finch bench: --row goes with --models\n"); return 2; }
    if (models) return bench_models(dev, tf32, reps, row, json);
    if (loader) return bench_loader(threads, json);
    if (attacks) return bench_attacks(dev, reps < 3 ? reps : 3, json);
    if (push) return bench_push(dev, reps < 3 ? reps : 3, json);
    Rng r = rng_new(1);
    Row rows[24];   /* names of the first three are literals, the conv rows' are allocated */
    int n = 0;
    /* the reference: OpenBLAS's own threads on every core (finch keeps BLAS single-threaded
     * inside its OpenMP regions, see core/cpu/cpu_backend.c) */
    ft_cpu_backend();
    openblas_set_num_threads(omp_get_max_threads());
    bench_gemm("cblas_sgemm 1024x1024x1024", run_sgemm, 1024, 1024, 1024, reps, &r, rows, &n);
    openblas_set_num_threads(1);
    bench_gemm("matmul 1024x1024x1024", run_finch_gemm, 1024, 1024, 1024, reps, &r, rows, &n);
    bench_gemm("matmul demo fc1 128x128x1568", run_finch_gemm, 128, 128, 1568, reps, &r, rows, &n);
    bench_conv("demo conv1 128x1x28x28 -> 16, 3x3", 128, 1, 28, 16, 3, 1, reps, &r, rows, &n);
    bench_conv("demo conv2 128x16x14x14 -> 32, 3x3", 128, 16, 14, 32, 3, 1, reps, &r, rows, &n);
    bench_conv("resnet 8x64x56x56 -> 64, 3x3", 8, 64, 56, 64, 3, 1, reps, &r, rows, &n);
    /* ResNet's later stages: where Winograd's F(4x4) stops paying and F(2x2) takes over (winograd.inc) */
    bench_conv("resnet 8x128x28x28 -> 128, 3x3", 8, 128, 28, 128, 3, 1, reps, &r, rows, &n);
    bench_conv("resnet 8x256x14x14 -> 256, 3x3", 8, 256, 14, 256, 3, 1, reps, &r, rows, &n);
    bench_conv("resnet 8x512x7x7 -> 512, 3x3", 8, 512, 7, 512, 3, 1, reps, &r, rows, &n);
    bench_conv("bottleneck 8x256x28x28 -> 128, 1x1", 8, 256, 28, 128, 1, 0, reps, &r, rows, &n);
    {   /* the demo CNN's first max-pool at batch 256 (its "FLOPs": 3 comparisons per output) */
        PoolGeom g = { 256, 16, 28, 28, 2, 2, 2, 2, 0, 0, 14, 14, true };
        float *x = randoms((size_t)256 * 16 * 28 * 28, &r), *y = ft_xmalloc((size_t)256 * 16 * 14 * 14 * sizeof *y);
        int32_t *idx = ft_xmalloc((size_t)256 * 16 * 14 * 14 * sizeof *idx);
        MaxPoolArgs a = { FT_F32, g, x, y, idx };
        rows[n++] = (Row){ strdup("max_pool 2x2 256x16x28x28"), 3.0 * 256 * 16 * 14 * 14, median_time(run_max_pool, &a, reps) };
        free(x); free(y); free(idx);
    }
    double peak = rows[0].flops / rows[0].seconds;
    printf("%-44s %10s %10s %9s\n", "kernel", "ms", "GFLOP/s", "of sgemm");
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "rows");
    for (int i = 0; i < n; i++) {
        double rate = rows[i].flops / rows[i].seconds;
        printf("%-44s %10.3f %10.1f %8.0f%%\n", rows[i].name, 1e3 * rows[i].seconds, rate / 1e9, 100 * rate / peak);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "kernel", rows[i].name);
        cJSON_AddNumberToObject(j, "ms", 1e3 * rows[i].seconds);
        cJSON_AddNumberToObject(j, "gflops", rate / 1e9);
        cJSON_AddNumberToObject(j, "fraction_of_sgemm", rate / peak);
        cJSON_AddItemToArray(arr, j);
    }
    rc = json ? run_write_json("bench", json, doc) : 0;
    cJSON_Delete(doc);
    for (int i = 3; i < n; i++) free((char *)rows[i].name);
    return rc ? 1 : 0;
}
