/* Reductions (one block per output, a tree in shared memory), softmax and cross entropy.
 * Max/min follow the CPU's rules exactly: the first winner in row-major order, NaN wins. */
#include "common.cuh"
#include <math.h>

typedef struct {
    int nk, nr;
    int kshape[FT_MAX_DIMS], rshape[FT_MAX_DIMS];
    int64_t kstride[FT_MAX_DIMS], rstride[FT_MAX_DIMS];
    int64_t n_out, n_red;
} ReduceGeom;

__device__ static inline int64_t offset_of(int64_t i, int n, const int *shape, const int64_t *stride) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; d--) {
        off += (i % shape[d]) * stride[d];
        i /= shape[d];
    }
    return off;
}

/* is (v, r) a better max/min than (b, br)? ties go to the earlier element, NaN beats numbers */
template <typename T> __device__ static inline bool better(ReduceOp op, T v, int64_t r, T b, int64_t br) {
    bool vn = v != v, bn = b != b;
    if (vn || bn) return vn && (!bn || r < br);
    if (v == b) return r < br;
    return op == RED_MAX ? v > b : v < b;
}

template <typename T>
__global__ void reduce_k(ReduceOp op, ReduceGeom g, const T *x, T *y, int64_t *arg, int32_t *arg_local, T scale, bool acc) {
    __shared__ T sv[THREADS];
    __shared__ int64_t sr[THREADS];
    for (int64_t o = blockIdx.x; o < g.n_out; o += gridDim.x) {
        int64_t base = offset_of(o, g.nk, g.kshape, g.kstride);
        T v = op == RED_SUM ? (T)0 : x[base];
        int64_t br = 0;
        for (int64_t r = threadIdx.x; r < g.n_red; r += blockDim.x) {
            T e = x[base + offset_of(r, g.nr, g.rshape, g.rstride)];
            if (op == RED_SUM) v += e;
            else if (r == (int64_t)threadIdx.x || better(op, e, r, v, br)) { v = e; br = r; }
        }
        if (op != RED_SUM && threadIdx.x >= g.n_red) br = INT64_MAX;   /* a thread that saw nothing */
        sv[threadIdx.x] = v;
        sr[threadIdx.x] = br;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s /= 2) {
            if (threadIdx.x < s) {
                int k = threadIdx.x + s;
                if (op == RED_SUM) sv[threadIdx.x] += sv[k];
                else if (sr[k] != INT64_MAX && (sr[threadIdx.x] == INT64_MAX || better(op, sv[k], sr[k], sv[threadIdx.x], sr[threadIdx.x]))) {
                    sv[threadIdx.x] = sv[k];
                    sr[threadIdx.x] = sr[k];
                }
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            T out = sv[0] * scale;
            y[o] = acc ? y[o] + out : out;
            if (arg) arg[o] = base + offset_of(sr[0], g.nr, g.rshape, g.rstride);
            if (arg_local) arg_local[o] = (int32_t)sr[0];
        }
        __syncthreads();
    }
}

void cuda_reduce(const ReduceArgs *p) {
    ReduceGeom g = {};
    int64_t stride[FT_MAX_DIMS], st = 1;
    for (int d = p->ndim - 1; d >= 0; d--) { stride[d] = st; st *= p->shape[d]; }
    g.n_out = g.n_red = 1;
    for (int d = 0; d < p->ndim; d++) {
        if (p->mask >> d & 1) { g.rshape[g.nr] = p->shape[d]; g.rstride[g.nr++] = stride[d]; g.n_red *= p->shape[d]; }
        else { g.kshape[g.nk] = p->shape[d]; g.kstride[g.nk++] = stride[d]; g.n_out *= p->shape[d]; }
    }
    if (g.n_out == 0) return;
    unsigned blocks = (unsigned)(g.n_out < 65535 * 8 ? g.n_out : 65535 * 8);
    DISPATCH_REAL(p->dt, "reduce", reduce_k<T><<<blocks, THREADS>>>(p->op, g, (const T *)p->x, (T *)p->y, p->arg,
                  p->arg_local, (T)p->scale, p->accumulate));
    LAUNCH_CHECK();
}

/* one thread per (outer, inner) row of the softmax axis */
template <typename T> __global__ void softmax_k(bool lg, int64_t outer, int64_t D, int64_t In, const T *x, T *y) {
    FOR_EACH(row, outer * In) {
        int64_t base = (row / In) * D * In + row % In;
        T m = x[base];
        for (int64_t d = 1; d < D; d++) m = fmax(m, x[base + d * In]);
        T s = 0;
        for (int64_t d = 0; d < D; d++) s += exp(x[base + d * In] - m);
        T ls = log(s);
        for (int64_t d = 0; d < D; d++) {
            T v = x[base + d * In] - m;
            y[base + d * In] = lg ? v - ls : exp(v) / s;
        }
    }
}

void cuda_softmax(const SoftmaxArgs *p) {
    DISPATCH_REAL(p->dt, "softmax", softmax_k<T><<<grid_for(p->outer * p->inner), THREADS>>>(p->log, p->outer, p->dim,
                  p->inner, (const T *)p->x, (T *)p->y));
    LAUNCH_CHECK();
}

template <typename T> __global__ void softmax_grad_k(bool lg, int64_t outer, int64_t D, int64_t In, const T *g, const T *y, T *gx) {
    FOR_EACH(row, outer * In) {
        int64_t base = (row / In) * D * In + row % In;
        T s = 0;
        for (int64_t d = 0; d < D; d++) s += lg ? g[base + d * In] : g[base + d * In] * y[base + d * In];
        for (int64_t d = 0; d < D; d++) {
            int64_t k = base + d * In;
            gx[k] += lg ? g[k] - exp(y[k]) * s : y[k] * (g[k] - s);
        }
    }
}

void cuda_softmax_grad(const SoftmaxGradArgs *p) {
    DISPATCH_REAL(p->dt, "softmax_grad", softmax_grad_k<T><<<grid_for(p->outer * p->inner), THREADS>>>(p->log, p->outer,
                  p->dim, p->inner, (const T *)p->g, (const T *)p->y, (T *)p->gx));
    LAUNCH_CHECK();
}

/* loss = -mean logp[n, label n]; labels were range-checked by the op (core/ops_loss.c) */
template <typename T> __global__ void nll_k(int N, int C, const T *logp, const int32_t *labels, T *loss) {
    __shared__ T s[THREADS];
    T v = 0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        int32_t c = labels[n];
        v -= (c >= 0 && c < C) ? logp[(int64_t)n * C + c] : (T)NAN;
    }
    s[threadIdx.x] = v;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k /= 2) {
        if (threadIdx.x < k) s[threadIdx.x] += s[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = s[0] / N;
}

void cuda_cross_entropy(const CrossEntropyArgs *p) {
    SoftmaxArgs s = { p->dt, true, p->N, p->C, 1, p->logits, p->logp };
    cuda_softmax(&s);
    DISPATCH_REAL(p->dt, "cross_entropy", nll_k<T><<<1, THREADS>>>(p->N, p->C, (const T *)p->logp, p->labels, (T *)p->loss));
    LAUNCH_CHECK();
}

template <typename T> __global__ void cross_entropy_grad_k(int N, int C, const T *g, const T *logp, const int32_t *labels, T *gx) {
    T scale = *g / N;
    FOR_EACH(k, (int64_t)N * C) {
        int n = (int)(k / C), c = (int)(k % C);
        gx[k] += scale * (exp(logp[k]) - (c == labels[n] ? (T)1 : (T)0));
    }
}

void cuda_cross_entropy_grad(const CrossEntropyGradArgs *p) {
    DISPATCH_REAL(p->dt, "cross_entropy_grad", cross_entropy_grad_k<T><<<grid_for((int64_t)p->N * p->C), THREADS>>>(
                  p->N, p->C, (const T *)p->g, (const T *)p->logp, p->labels, (T *)p->gx));
    LAUNCH_CHECK();
}
