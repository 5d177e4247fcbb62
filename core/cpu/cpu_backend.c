#include <unistd.h>
#include <strings.h>
/* The CPU backend table: dtype dispatch to the float/double kernels, memory, and the
 * float32-only kernels (optimizer updates, conversions). */
#include <tgmath.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_common.h"
#include "cpu_kernels.h"
#include "../error.h"

void cpu_thread_range(int64_t n, int64_t *begin, int64_t *end) {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    *begin = t * chunk < n ? t * chunk : n;
    *end = *begin + chunk < n ? *begin + chunk : n;
}

typedef struct { void *p; size_t size; } Scratch;

static void *grow(Scratch *s, size_t bytes) {
    if (s->size < bytes) {
        free(s->p);
        s->p = ft_xmalloc(bytes);
        s->size = bytes;
    }
    return s->p;
}

void *cpu_scratch(int slot, size_t bytes) {
    static Scratch slots[3];
    FT_CHECK(slot >= 0 && slot < 3, "scratch slot %d", slot);
    return grow(&slots[slot], bytes);
}

#define MAX_THREADS 256
void *cpu_thread_scratch(int slot, size_t bytes) {
    static Scratch slots[MAX_THREADS][3];
    int t = omp_get_thread_num();
    FT_CHECK(slot >= 0 && slot < 3 && t < MAX_THREADS, "thread scratch slot %d of thread %d", slot, t);
    return grow(&slots[t][slot], bytes);
}

#define FT_CPU_DISPATCH(name, T) \
    static void cpu_##name(const T *a) { \
        if (a->dt == FT_F64) { name##_f64(a); return; } \
        FT_CHECK(a->dt == FT_F32, "cpu kernel %s: %s tensors are not supported (float32 or float64)", \
                 #name, ft_dtype_name(a->dt)); \
        name##_f32(a); \
    }
FT_CPU_GENERIC_KERNELS(FT_CPU_DISPATCH)

static void *cpu_alloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!p) ft_fatal("out of host memory: asked for %zu bytes", bytes);
    return p;
}
static void cpu_free(void *p) { free(p); }
static void cpu_memcpy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }

static void cpu_fill(DType dt, int64_t n, double v, void *p) {
    switch (dt) {
    case FT_F32: for (int64_t i = 0; i < n; i++) ((float *)p)[i] = (float)v; break;
    case FT_F64: for (int64_t i = 0; i < n; i++) ((double *)p)[i] = v; break;
    case FT_U8: memset(p, (int)v, (size_t)n); break;
    case FT_I32: for (int64_t i = 0; i < n; i++) ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

static double load(DType dt, const void *p, int64_t i) {
    switch (dt) {
    case FT_F32: return ((const float *)p)[i];
    case FT_F64: return ((const double *)p)[i];
    case FT_U8: return ((const uint8_t *)p)[i];
    case FT_I32: return ((const int32_t *)p)[i];
    }
    return 0;
}

static void cpu_convert(const ConvertArgs *a) {
    if (a->src_dt == FT_U8 && a->dst_dt == FT_F32) {   /* the hot case: image batches */
        const uint8_t *s = a->src;
        float *d = a->dst;
        float k = (float)a->scale;
        #pragma omp parallel for schedule(static) if (a->n > 32768)
        for (int64_t i = 0; i < a->n; i++) d[i] = s[i] * k;
        return;
    }
    for (int64_t i = 0; i < a->n; i++) {
        double v = load(a->src_dt, a->src, i) * a->scale;
        switch (a->dst_dt) {
        case FT_F32: ((float *)a->dst)[i] = (float)v; break;
        case FT_F64: ((double *)a->dst)[i] = v; break;
        case FT_U8: ((uint8_t *)a->dst)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v)); break;
        case FT_I32: ((int32_t *)a->dst)[i] = (int32_t)lrint(v); break;
        }
    }
}

/* The optimizer updates are float32 only; their per-element formulas are shared with CUDA. */
#define FT_FN static inline
#define real float
#define SUF(name) name##_f32
#include "../elementwise_math.inc"
#undef real
#undef SUF

static void cpu_sgd(const SgdArgs *a) {
    float lr = (float)a->lr, mom = (float)a->momentum, wd = (float)a->wd;
    #pragma omp parallel for schedule(static) if (a->n > 32768)
    for (int64_t i = 0; i < a->n; i++)
        a->w[i] = sgd_element_f32(a->w[i], a->g[i], &a->buf[i], lr, mom, wd, a->nesterov, a->first_step);
}

static void cpu_adam(const AdamArgs *a) {
    float lr = (float)a->lr, b1 = (float)a->beta1, b2 = (float)a->beta2, eps = (float)a->eps, wd = (float)a->wd;
    float c1 = (float)(1 - pow(a->beta1, (double)a->step)), c2 = (float)(1 - pow(a->beta2, (double)a->step));
    #pragma omp parallel for schedule(static) if (a->n > 32768)
    for (int64_t i = 0; i < a->n; i++)
        a->w[i] = adam_element_f32(a->w[i], a->g[i], &a->m[i], &a->v[i], lr, b1, b2, eps, wd, a->decoupled, c1, c2);
}

static const Backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc, .free = cpu_free,
    .to_host = cpu_memcpy, .from_host = cpu_memcpy, .copy = cpu_memcpy,
    .fill = cpu_fill, .convert = cpu_convert, .sgd = cpu_sgd, .adam = cpu_adam,
#define FT_CPU_ENTRY(name, T) .name = cpu_##name,
    FT_CPU_GENERIC_KERNELS(FT_CPU_ENTRY)
};

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

/* OpenBLAS picks its kernels by the CPU's model number; on a CPU it does not know (new models,
 * or a hypervisor that hides the model) it falls back to Prescott's SSE3 kernels, 3-4x slower
 * than AVX2's (docs/BENCHMARKS.md). Then the kernel the CPU's features allow is the one to ask for. */
const char *ft_blas_coretype_fix(void) {
    const char *core = openblas_get_corename(), *ok[] = { "haswell", "zen", "skylakex", "cooperlake", "sapphirerapids" };
    for (size_t i = 0; core && i < sizeof ok / sizeof ok[0]; i++)
        if (strcasecmp(core, ok[i]) == 0) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

const char *ft_blas_corename(void) { return openblas_get_corename(); }

void ft_blas_restart(char **argv) {
    const char *fix = ft_blas_coretype_fix();
    if (!fix || getenv("OPENBLAS_CORETYPE") || getenv("FINCH_BLAS_RESTARTED")) return;
    setenv("OPENBLAS_CORETYPE", fix, 1);
    setenv("FINCH_BLAS_RESTARTED", "1", 1);
    execv("/proc/self/exe", argv);   /* returns only on failure: carry on with the slow kernels */
}

/* 3x3 stride-1 convolutions by Winograd's minimal filtering (winograd.inc) unless FINCH_CONV
 * asks for one tile everywhere (winograd2, winograd4) or for the im2col products (im2col), to
 * compare. */
int cpu_winograd = WINO_AUTO;

/* OpenMP is finch's one thread pool: BLAS calls run single-threaded inside our parallel regions
 * (two pools on the same cores would oversubscribe them and spin against each other). */
const Backend *ft_cpu_backend(void) {
    static bool ready;
    if (!ready) {
        openblas_set_num_threads(1);
        const char *conv = getenv("FINCH_CONV");
        if (conv && strcmp(conv, "im2col") == 0) cpu_winograd = WINO_OFF;
        else if (conv && strcmp(conv, "winograd2") == 0) cpu_winograd = WINO_F2;
        else if (conv && strcmp(conv, "winograd4") == 0) cpu_winograd = WINO_F4;
        else if (conv && *conv && strcmp(conv, "auto") != 0)
            fprintf(stderr, "finch: FINCH_CONV=%s: expected im2col, winograd2, winograd4 or auto; using auto\n", conv);
        ready = true;
    }
    return &cpu_backend;
}
