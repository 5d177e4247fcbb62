/* Single-threaded cblas_sgemm on the shapes finch's CPU convolutions ask for (core/cpu/conv.inc,
 * winograd.inc), in GFLOP/s: one line per shape. Built twice by tools/bench_blas.sh, against
 * OpenBLAS and against BLIS, which runs the two alternately; no finch code is linked. finch calls
 * the BLAS from inside its own OpenMP regions, one thread per call, so one thread is what counts.
 *
 *   bench_blas [seconds per shape]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { const char *name; int ta, tb, M, N, K; } Shape;

static const Shape shapes[] = {
    { "fwd im2col 64ch 3x3, tile 256", 0, 0, 64, 256, 576 },
    { "fwd im2col 128ch 3x3, tile 256", 0, 0, 128, 256, 1152 },
    { "fwd im2col 256ch 3x3 at 14x14", 0, 0, 256, 196, 2304 },
    { "fwd im2col 512ch 3x3 at 7x7", 0, 0, 512, 49, 4608 },
    { "weight grad 64ch 3x3, tile 1024", 0, 1, 64, 576, 1024 },
    { "weight grad 256ch 3x3 at 14x14", 0, 1, 256, 2304, 196 },
    { "input grad 64ch 3x3, tile 256", 1, 0, 576, 256, 64 },
    { "input grad 512ch 3x3 at 7x7", 1, 0, 4608, 49, 512 },
    { "winograd product 64ch, 256 tiles", 0, 0, 64, 256, 64 },
    { "winograd product 32 <- 128ch (DenseNet)", 0, 0, 32, 1024, 128 },
    { "1x1 conv 256 -> 128ch, tile 256", 0, 0, 128, 256, 256 },
    { "demo CNN fc1, batch 256", 0, 1, 256, 128, 1568 },
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *filled(size_t n) {
    float *p = malloc(n * sizeof *p);
    if (!p) { fprintf(stderr, "bench_blas: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    double budget = argc > 1 ? atof(argv[1]) : 0.3;
    if (!(budget > 0 && budget < 60)) { fprintf(stderr, "bench_blas: seconds per shape must be in (0, 60), got '%s'\n", argv[1]); return 2; }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const Shape *h = &shapes[s];
        float *a = filled((size_t)h->M * h->K), *b = filled((size_t)h->K * h->N), *c = filled((size_t)h->M * h->N);
        int lda = h->ta ? h->M : h->K, ldb = h->tb ? h->K : h->N;
        double best = 1e30;
        for (double start = now(); now() - start < budget;) {   /* the best of as many calls as fit */
            double t = now();
            cblas_sgemm(CblasRowMajor, h->ta ? CblasTrans : CblasNoTrans, h->tb ? CblasTrans : CblasNoTrans, h->M, h->N, h->K,
                        1.0f, a, lda, b, ldb, 0.0f, c, h->N);
            t = now() - t;
            if (t < best) best = t;
        }
        printf("%s (%d x %d x %d)\t%.1f\n", h->name, h->M, h->N, h->K, 2.0 * h->M * h->N * h->K / best * 1e-9);
        free(a); free(b); free(c);
    }
    return 0;
}
