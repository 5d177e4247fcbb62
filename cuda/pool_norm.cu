/* Pooling, batch norm and bilinear upsampling: one thread per output element for the forwards;
 * the backwards of pooling and upsampling scatter with atomic adds (windows overlap); batch norm
 * uses one block per channel. Window rules match the CPU kernels (and PyTorch). */
#include "common.cuh"
#include <math.h>

template <typename T> __global__ void max_pool_k(PoolGeom g, const T *x, T *y, int32_t *idx) {
    FOR_EACH(o, (int64_t)g.N * g.C * g.OH * g.OW) {
        int64_t nc = o / ((int64_t)g.OH * g.OW);
        int oh = (int)(o / g.OW % g.OH), ow = (int)(o % g.OW);
        const T *xp = x + nc * g.H * g.W;
        int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw, arg = -1;
        T best = 0;
        for (int i = h0; i < h0 + g.kh; i++)
            for (int j = w0; j < w0 + g.kw; j++) {
                if (i < 0 || i >= g.H || j < 0 || j >= g.W) continue;
                T v = xp[i * g.W + j];
                if (arg < 0 || v > best || v != v) { best = v; arg = i * g.W + j; }
            }
        y[o] = best;
        idx[o] = arg;
    }
}

void cuda_max_pool(const MaxPoolArgs *p) {
    int64_t n = (int64_t)p->g.N * p->g.C * p->g.OH * p->g.OW;
    DISPATCH_REAL(p->dt, "max_pool", max_pool_k<T><<<grid_for(n), THREADS>>>(p->g, (const T *)p->x, (T *)p->y, p->idx));
    LAUNCH_CHECK();
}

template <typename T> __global__ void max_pool_grad_k(PoolGeom g, const T *gy, const int32_t *idx, T *gx) {
    int64_t per = (int64_t)g.OH * g.OW;
    FOR_EACH(o, (int64_t)g.N * g.C * per)
        if (idx[o] >= 0) atomicAdd(gx + (o / per) * g.H * g.W + idx[o], gy[o]);
}

void cuda_max_pool_grad(const MaxPoolGradArgs *p) {
    int64_t n = (int64_t)p->g.N * p->g.C * p->g.OH * p->g.OW;
    DISPATCH_REAL(p->dt, "max_pool_grad", max_pool_grad_k<T><<<grid_for(n), THREADS>>>(p->g, (const T *)p->gy, p->idx, (T *)p->gx));
    LAUNCH_CHECK();
}

/* the window clipped to the input, and its divisor (as the CPU's avg_window) */
__device__ static inline int avg_window(const PoolGeom &g, int oh, int ow, int *h0, int *h1, int *w0, int *w1) {
    *h0 = oh * g.sh - g.ph; *w0 = ow * g.sw - g.pw;
    *h1 = *h0 + g.kh; *w1 = *w0 + g.kw;
    int full = (min(*h1, g.H + g.ph) - *h0) * (min(*w1, g.W + g.pw) - *w0);
    *h0 = max(*h0, 0); *w0 = max(*w0, 0);
    *h1 = min(*h1, g.H); *w1 = min(*w1, g.W);
    return g.count_include_pad ? full : (*h1 - *h0) * (*w1 - *w0);
}

template <typename T> __global__ void avg_pool_k(PoolGeom g, const T *x, T *y) {
    FOR_EACH(o, (int64_t)g.N * g.C * g.OH * g.OW) {
        int64_t nc = o / ((int64_t)g.OH * g.OW);
        int h0, h1, w0, w1, div = avg_window(g, (int)(o / g.OW % g.OH), (int)(o % g.OW), &h0, &h1, &w0, &w1);
        const T *xp = x + nc * g.H * g.W;
        T s = 0;
        for (int i = h0; i < h1; i++)
            for (int j = w0; j < w1; j++) s += xp[i * g.W + j];
        y[o] = s / div;
    }
}

void cuda_avg_pool(const AvgPoolArgs *p) {
    int64_t n = (int64_t)p->g.N * p->g.C * p->g.OH * p->g.OW;
    DISPATCH_REAL(p->dt, "avg_pool", avg_pool_k<T><<<grid_for(n), THREADS>>>(p->g, (const T *)p->x, (T *)p->y));
    LAUNCH_CHECK();
}

template <typename T> __global__ void avg_pool_grad_k(PoolGeom g, const T *gy, T *gx) {
    FOR_EACH(o, (int64_t)g.N * g.C * g.OH * g.OW) {
        int64_t nc = o / ((int64_t)g.OH * g.OW);
        int h0, h1, w0, w1, div = avg_window(g, (int)(o / g.OW % g.OH), (int)(o % g.OW), &h0, &h1, &w0, &w1);
        T v = gy[o] / div;
        for (int i = h0; i < h1; i++)
            for (int j = w0; j < w1; j++) atomicAdd(gx + nc * g.H * g.W + i * g.W + j, v);
    }
}

void cuda_avg_pool_grad(const AvgPoolGradArgs *p) {
    int64_t n = (int64_t)p->g.N * p->g.C * p->g.OH * p->g.OW;
    DISPATCH_REAL(p->dt, "avg_pool_grad", avg_pool_grad_k<T><<<grid_for(n), THREADS>>>(p->g, (const T *)p->gy, (T *)p->gx));
    LAUNCH_CHECK();
}

/* adaptive windows [floor(i H / OH), ceil((i + 1) H / OH)) */
template <typename T> __global__ void adaptive_k(int N, int C, int H, int W, int OH, int OW, const T *x, T *y, T *gx, const T *gy) {
    FOR_EACH(o, (int64_t)N * C * OH * OW) {
        int64_t nc = o / ((int64_t)OH * OW);
        int oh = (int)(o / OW % OH), ow = (int)(o % OW);
        int h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH, w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        T div = (T)((h1 - h0) * (w1 - w0));
        if (y) {
            T s = 0;
            for (int i = h0; i < h1; i++)
                for (int j = w0; j < w1; j++) s += x[nc * H * W + i * W + j];
            y[o] = s / div;
        } else {
            for (int i = h0; i < h1; i++)
                for (int j = w0; j < w1; j++) atomicAdd(gx + nc * H * W + i * W + j, gy[o] / div);
        }
    }
}

void cuda_adaptive_pool(const AdaptivePoolArgs *p) {
    int64_t n = (int64_t)p->N * p->C * p->OH * p->OW;
    DISPATCH_REAL(p->dt, "adaptive_pool", adaptive_k<T><<<grid_for(n), THREADS>>>(p->N, p->C, p->H, p->W, p->OH, p->OW,
                  (const T *)p->x, (T *)p->y, (T *)NULL, (const T *)NULL));
    LAUNCH_CHECK();
}

void cuda_adaptive_pool_grad(const AdaptivePoolGradArgs *p) {
    int64_t n = (int64_t)p->N * p->C * p->OH * p->OW;
    DISPATCH_REAL(p->dt, "adaptive_pool_grad", adaptive_k<T><<<grid_for(n), THREADS>>>(p->N, p->C, p->H, p->W, p->OH, p->OW,
                  (const T *)NULL, (T *)NULL, (T *)p->gx, (const T *)p->gy));
    LAUNCH_CHECK();
}

/* sum over the block of one value per thread; every thread gets the total */
template <typename T> __device__ static T block_sum(T v, T *s) {
    s[threadIdx.x] = v;
    __syncthreads();
    for (int m = blockDim.x / 2; m > 0; m /= 2) {
        if (threadIdx.x < m) s[threadIdx.x] += s[threadIdx.x + m];
        __syncthreads();
    }
    T total = s[0];
    __syncthreads();
    return total;
}

/* one block per channel: statistics (two passes), running-statistics update, normalisation */
template <typename T> __global__ void batch_norm_k(BatchNormArgs a) {
    __shared__ T s[THREADS];
    const T *x = (const T *)a.x, *gamma = (const T *)a.gamma, *beta = (const T *)a.beta;
    T *y = (T *)a.y, *rm = (T *)a.running_mean, *rv = (T *)a.running_var;
    int64_t M = (int64_t)a.N * a.HW;
    for (int c = blockIdx.x; c < a.C; c += gridDim.x) {
        T mu, is;
        if (a.training) {
            T v = 0;
            for (int64_t k = threadIdx.x; k < M; k += blockDim.x) v += x[((k / a.HW) * a.C + c) * a.HW + k % a.HW];
            mu = block_sum(v, s) / M;
            v = 0;
            for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
                T d = x[((k / a.HW) * a.C + c) * a.HW + k % a.HW] - mu;
                v += d * d;
            }
            T ss = block_sum(v, s), var = ss / M;
            is = 1 / sqrt(var + (T)a.eps);
            if (threadIdx.x == 0) {
                if (rm) rm[c] = (T)(1 - a.momentum) * rm[c] + (T)a.momentum * mu;
                if (rv) rv[c] = (T)(1 - a.momentum) * rv[c] + (T)a.momentum * (M > 1 ? ss / (M - 1) : var);
            }
        } else {
            mu = rm[c];
            is = 1 / sqrt(rv[c] + (T)a.eps);
        }
        if (threadIdx.x == 0) { ((T *)a.mean)[c] = mu; ((T *)a.invstd)[c] = is; }
        T sc = (gamma ? gamma[c] : (T)1) * is, sh = (beta ? beta[c] : (T)0) - mu * sc;
        for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
            int64_t off = ((k / a.HW) * a.C + c) * a.HW + k % a.HW;
            T v = x[off] * sc + sh;
            y[off] = a.relu ? (v > 0 ? v : (T)0) : v;
        }
    }
}

void cuda_batch_norm(const BatchNormArgs *p) {
    DISPATCH_REAL(p->dt, "batch_norm", batch_norm_k<T><<<p->C < 4096 ? p->C : 4096, THREADS>>>(*p));
    LAUNCH_CHECK();
}

template <typename T> __global__ void batch_norm_grad_k(BatchNormGradArgs a) {
    __shared__ T s[THREADS];
    const T *gy = (const T *)a.gy, *x = (const T *)a.x, *gamma = (const T *)a.gamma;
    const T *mean = (const T *)a.mean, *invstd = (const T *)a.invstd, *ym = (const T *)a.y;
    int64_t M = (int64_t)a.N * a.HW;
    /* after a fused ReLU, the gradient that reaches the batch norm is gy * (y > 0) */
    #define BN_G(off) (ym ? gy[off] * (ym[off] > 0 ? (T)1 : (T)0) : gy[off])
    for (int c = blockIdx.x; c < a.C; c += gridDim.x) {
        T sg = 0, sgx = 0;
        for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
            int64_t off = ((k / a.HW) * a.C + c) * a.HW + k % a.HW;
            T g = BN_G(off);
            sg += g;
            sgx += g * (x[off] - mean[c]) * invstd[c];
        }
        sg = block_sum(sg, s);
        sgx = block_sum(sgx, s);
        if (threadIdx.x == 0) {
            if (a.gbeta) ((T *)a.gbeta)[c] += sg;
            if (a.ggamma) ((T *)a.ggamma)[c] += sgx;
        }
        if (!a.gx) continue;
        T gm = gamma ? gamma[c] : (T)1;
        for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
            int64_t off = ((k / a.HW) * a.C + c) * a.HW + k % a.HW;
            T v = BN_G(off);
            if (a.training) v = v - sg / M - (x[off] - mean[c]) * invstd[c] * sgx / M;
            ((T *)a.gx)[off] += gm * invstd[c] * v;
        }
    }
    #undef BN_G
}

void cuda_batch_norm_grad(const BatchNormGradArgs *p) {
    DISPATCH_REAL(p->dt, "batch_norm_grad", batch_norm_grad_k<T><<<p->C < 4096 ? p->C : 4096, THREADS>>>(*p));
    LAUNCH_CHECK();
}

/* PyTorch's source coordinate for output index o along an axis of in -> out samples */
template <typename T> __device__ static inline void bilinear_src(int o, int in, int out, bool align, int *i0, int *i1, T *t) {
    T s;
    if (align) s = out > 1 ? (T)o * (in - 1) / (out - 1) : (T)0;
    else { s = ((T)o + (T)0.5) * in / out - (T)0.5; if (s < 0) s = 0; }
    *i0 = min((int)s, in - 1);
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *t = s - *i0;
}

template <typename T> __global__ void upsample_k(UpsampleArgs a, T *gx, const T *gy) {
    FOR_EACH(o, (int64_t)a.N * a.C * a.OH * a.OW) {
        int64_t nc = o / ((int64_t)a.OH * a.OW);
        int h0, h1, w0, w1;
        T th, tw;
        bilinear_src<T>((int)(o / a.OW % a.OH), a.H, a.OH, a.align_corners, &h0, &h1, &th);
        bilinear_src<T>((int)(o % a.OW), a.W, a.OW, a.align_corners, &w0, &w1, &tw);
        int64_t base = nc * a.H * a.W;
        if (!gx) {
            const T *xp = (const T *)a.x + base;
            ((T *)a.y)[o] = (1 - th) * ((1 - tw) * xp[h0 * a.W + w0] + tw * xp[h0 * a.W + w1]) +
                            th * ((1 - tw) * xp[h1 * a.W + w0] + tw * xp[h1 * a.W + w1]);
        } else {
            T g = gy[o];
            atomicAdd(gx + base + h0 * a.W + w0, (1 - th) * (1 - tw) * g);
            atomicAdd(gx + base + h0 * a.W + w1, (1 - th) * tw * g);
            atomicAdd(gx + base + h1 * a.W + w0, th * (1 - tw) * g);
            atomicAdd(gx + base + h1 * a.W + w1, th * tw * g);
        }
    }
}

void cuda_upsample(const UpsampleArgs *p) {
    int64_t n = (int64_t)p->N * p->C * p->OH * p->OW;
    DISPATCH_REAL(p->dt, "upsample", upsample_k<T><<<grid_for(n), THREADS>>>(*p, (T *)NULL, (const T *)NULL));
    LAUNCH_CHECK();
}

void cuda_upsample_grad(const UpsampleGradArgs *p) {
    UpsampleArgs a = { p->dt, p->N, p->C, p->H, p->W, p->OH, p->OW, p->align_corners, NULL, NULL };
    int64_t n = (int64_t)p->N * p->C * p->OH * p->OW;
    DISPATCH_REAL(p->dt, "upsample_grad", upsample_k<T><<<grid_for(n), THREADS>>>(a, (T *)p->gx, (const T *)p->gy));
    LAUNCH_CHECK();
}
