/* Elementwise kernels, strided copies, random fills, conversions, optimizer and attack updates.
 * One thread per element (grid-stride); float and double through templates. */
#include "common.cuh"
#include <math.h>

#define FT_FN __device__ static inline
#define real float
#define SUF(name) name##_f32
#include "core/elementwise_math.inc"
#undef real
#undef SUF
#define real double
#define SUF(name) name##_f64
#include "core/elementwise_math.inc"
#undef real
#undef SUF

/* overloads so templates can call the formula for their T */
__device__ static inline float bin_apply(BinaryOp o, float a, float b) { return bin_apply_f32(o, a, b); }
__device__ static inline double bin_apply(BinaryOp o, double a, double b) { return bin_apply_f64(o, a, b); }
__device__ static inline float bin_grad(BinaryOp o, int w, float g, float a, float b) { return bin_grad_f32(o, w, g, a, b); }
__device__ static inline double bin_grad(BinaryOp o, int w, double g, double a, double b) { return bin_grad_f64(o, w, g, a, b); }
__device__ static inline float un_apply(UnaryOp o, float x, float p0, float p1) { return un_apply_f32(o, x, p0, p1); }
__device__ static inline double un_apply(UnaryOp o, double x, double p0, double p1) { return un_apply_f64(o, x, p0, p1); }
__device__ static inline float un_deriv(UnaryOp o, float x, float y, float p0, float p1) { return un_deriv_f32(o, x, y, p0, p1); }
__device__ static inline double un_deriv(UnaryOp o, double x, double y, double p0, double p1) { return un_deriv_f64(o, x, y, p0, p1); }

/* offsets of linear index i of the broadcast shape in a and b */
__device__ static inline void bcast_offsets(const Bcast &g, int64_t i, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int d = g.ndim - 1; d >= 0; d--) {
        int64_t k = i % g.shape[d];
        i /= g.shape[d];
        a += k * g.sa[d];
        b += k * g.sb[d];
    }
    *oa = a;
    *ob = b;
}

template <typename T> __global__ void binary_k(BinaryOp op, Bcast g, int64_t n, const T *a, const T *b, T *out) {
    FOR_EACH(i, n) {
        int64_t oa = i, ob = i;
        if (!g.plain) bcast_offsets(g, i, &oa, &ob);
        out[i] = bin_apply(op, a[oa], b[ob]);
    }
}

void cuda_binary(const BinaryArgs *p) {
    DISPATCH_REAL(p->dt, "binary", binary_k<T><<<grid_for(p->n), THREADS>>>(p->op, p->geo, p->n, (const T *)p->a,
                                                                             (const T *)p->b, (T *)p->out));
    LAUNCH_CHECK();
}

template <typename T>
__global__ void binary_grad_k(BinaryOp op, int which, Bcast g, int64_t n, const T *gr, const T *a, const T *b, T *out,
                              bool acc) {
    FOR_EACH(i, n) {
        int64_t oa = i, ob = i;
        if (!g.plain) bcast_offsets(g, i, &oa, &ob);
        T v = bin_grad(op, which, gr[i], a[oa], b[ob]);
        out[i] = acc ? out[i] + v : v;
    }
}

void cuda_binary_grad(const BinaryGradArgs *p) {
    DISPATCH_REAL(p->dt, "binary_grad", binary_grad_k<T><<<grid_for(p->n), THREADS>>>(p->op, p->which, p->geo, p->n,
                  (const T *)p->g, (const T *)p->a, (const T *)p->b, (T *)p->out, p->accumulate));
    LAUNCH_CHECK();
}

template <typename T> __global__ void unary_k(UnaryOp op, int64_t n, const T *x, T *y, T p0, T p1) {
    FOR_EACH(i, n) y[i] = un_apply(op, x[i], p0, p1);
}

void cuda_unary(const UnaryArgs *p) {
    DISPATCH_REAL(p->dt, "unary", unary_k<T><<<grid_for(p->n), THREADS>>>(p->op, p->n, (const T *)p->x, (T *)p->y,
                                                                           (T)p->p0, (T)p->p1));
    LAUNCH_CHECK();
}

template <typename T>
__global__ void unary_grad_k(UnaryOp op, int64_t n, const T *g, const T *x, const T *y, T *gx, T p0, T p1) {
    FOR_EACH(i, n) gx[i] += g[i] * un_deriv(op, x ? x[i] : (T)0, y ? y[i] : (T)0, p0, p1);
}

void cuda_unary_grad(const UnaryGradArgs *p) {
    DISPATCH_REAL(p->dt, "unary_grad", unary_grad_k<T><<<grid_for(p->n), THREADS>>>(p->op, p->n, (const T *)p->g,
                  (const T *)p->x, (const T *)p->y, (T *)p->gx, (T)p->p0, (T)p->p1));
    LAUNCH_CHECK();
}

/* y += alpha x, x broadcast into y: each thread owns one element of y, so no races */
template <typename T> __global__ void axpy_k(Bcast g, int64_t n, T alpha, const T *x, T *y) {
    FOR_EACH(i, n) {
        int64_t oy = i, ox = i;
        if (!g.plain) bcast_offsets(g, i, &oy, &ox);
        y[oy] += alpha * x[ox];
    }
}

void cuda_axpy(const AxpyArgs *p) {
    DISPATCH_REAL(p->dt, "axpy", axpy_k<T><<<grid_for(p->n), THREADS>>>(p->geo, p->n, (T)p->alpha, (const T *)p->x, (T *)p->y));
    LAUNCH_CHECK();
}

/* indices may repeat (overlapping pooling windows): atomic adds */
template <typename T> __global__ void scatter_add_k(int64_t n, const T *g, const int64_t *idx, T *gx) {
    FOR_EACH(i, n) atomicAdd(gx + idx[i], g[i]);
}

void cuda_scatter_add(const ScatterAddArgs *p) {
    DISPATCH_REAL(p->dt, "scatter_add", scatter_add_k<T><<<grid_for(p->n), THREADS>>>(p->n, (const T *)p->g, p->idx, (T *)p->gx));
    LAUNCH_CHECK();
}

typedef struct { int ndim; int shape[FT_MAX_DIMS]; int64_t ss[FT_MAX_DIMS], ds[FT_MAX_DIMS]; } CopyGeom;

template <typename T> __global__ void copy_strided_k(CopyGeom g, int64_t n, const T *src, T *dst, bool acc) {
    FOR_EACH(i, n) {
        int64_t rest = i, so = 0, dof = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t k = rest % g.shape[d];
            rest /= g.shape[d];
            so += k * g.ss[d];
            dof += k * g.ds[d];
        }
        dst[dof] = acc ? dst[dof] + src[so] : src[so];
    }
}

void cuda_copy_strided(const CopyArgs *p) {
    CopyGeom g;
    g.ndim = p->ndim;
    int64_t n = 1;
    for (int d = 0; d < p->ndim; d++) { g.shape[d] = p->shape[d]; g.ss[d] = p->ss[d]; g.ds[d] = p->ds[d]; n *= p->shape[d]; }
    if (n == 0) return;
    DISPATCH_REAL(p->dt, "copy_strided", copy_strided_k<T><<<grid_for(n), THREADS>>>(g, n, (const T *)p->src, (T *)p->dst,
                                                                                      p->accumulate));
    LAUNCH_CHECK();
}

/* the same Philox streams as the CPU: bit-identical random numbers on both devices */
template <typename T> __global__ void random_k(int64_t n, uint64_t seed, uint64_t counter, bool normal, double a, double b, T *out) {
    FOR_EACH(i, n) {
        double u = normal ? philox_normal(seed, counter, i) : philox_uniform(seed, counter, i);
        out[i] = (T)(normal ? a + b * u : a + (b - a) * u);
    }
}

void cuda_random(const RandomArgs *p) {
    if (p->n == 0) return;
    DISPATCH_REAL(p->dt, "random", random_k<T><<<grid_for(p->n), THREADS>>>(p->n, p->seed, p->counter, p->normal, p->a, p->b,
                                                                             (T *)p->out));
    LAUNCH_CHECK();
}

__device__ static inline double load_any(DType dt, const void *p, int64_t i) {
    switch (dt) {
    case FT_F32: return ((const float *)p)[i];
    case FT_F64: return ((const double *)p)[i];
    case FT_U8: return ((const uint8_t *)p)[i];
    case FT_I32: return ((const int32_t *)p)[i];
    }
    return 0;
}

__global__ void convert_k(DType sdt, DType ddt, int64_t n, double scale, const void *src, void *dst) {
    FOR_EACH(i, n) {
        double v = load_any(sdt, src, i) * scale;
        switch (ddt) {
        case FT_F32: ((float *)dst)[i] = (float)v; break;
        case FT_F64: ((double *)dst)[i] = v; break;
        case FT_U8: ((uint8_t *)dst)[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : rint(v)); break;
        case FT_I32: ((int32_t *)dst)[i] = (int32_t)rint(v); break;
        }
    }
}

void cuda_convert(const ConvertArgs *p) {
    if (p->n == 0) return;
    convert_k<<<grid_for(p->n), THREADS>>>(p->src_dt, p->dst_dt, p->n, p->scale, p->src, p->dst);
    LAUNCH_CHECK();
}

template <typename T> __global__ void linf_step_k(int64_t n, T *x, const T *x0, const T *g, T alpha, T eps, T lo, T hi) {
    FOR_EACH(i, n) {
        T v = x[i];
        if (g) v += alpha * (T)((g[i] > 0) - (g[i] < 0));
        T a = x0[i] - eps, b = x0[i] + eps;
        v = v < a ? a : (v > b ? b : v);
        x[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}

void cuda_linf_step(const LinfStepArgs *p) {
    DISPATCH_REAL(p->dt, "linf_step", linf_step_k<T><<<grid_for(p->n), THREADS>>>(p->n, (T *)p->x, (const T *)p->x0,
                  (const T *)p->g, (T)p->alpha, (T)p->eps, (T)p->lo, (T)p->hi));
    LAUNCH_CHECK();
}

/* torch.optim.SGD, fused (the formula: core/elementwise_math.inc) */
__global__ void sgd_k(SgdArgs a) {
    float lr = (float)a.lr, mom = (float)a.momentum, wd = (float)a.wd;
    FOR_EACH(i, a.n) a.w[i] = sgd_element_f32(a.w[i], a.g[i], &a.buf[i], lr, mom, wd, a.nesterov, a.first_step);
}

void cuda_sgd(const SgdArgs *p) {
    if (p->n == 0) return;
    sgd_k<<<grid_for(p->n), THREADS>>>(*p);
    LAUNCH_CHECK();
}

/* torch.optim.Adam / AdamW, fused, with bias correction (the formula: core/elementwise_math.inc) */
__global__ void adam_k(AdamArgs a, float c1, float c2) {
    float lr = (float)a.lr, b1 = (float)a.beta1, b2 = (float)a.beta2, eps = (float)a.eps, wd = (float)a.wd;
    FOR_EACH(i, a.n) a.w[i] = adam_element_f32(a.w[i], a.g[i], &a.m[i], &a.v[i], lr, b1, b2, eps, wd, a.decoupled, c1, c2);
}

void cuda_adam(const AdamArgs *p) {
    if (p->n == 0) return;
    float c1 = (float)(1 - pow(p->beta1, (double)p->step)), c2 = (float)(1 - pow(p->beta2, (double)p->step));
    adam_k<<<grid_for(p->n), THREADS>>>(*p, c1, c2);
    LAUNCH_CHECK();
}
