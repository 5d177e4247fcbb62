/* Matrix products through cuBLAS, and conv2d: float32 through cuDNN (conv_cudnn.cu), float64
 * (used by no training path, kept so every op runs in both precisions) as im2col + GEMM per image.
 *
 * cuBLAS is column-major: a row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T,
 * so each call passes B before A with the same leading dimensions. */
#include "common.cuh"

template <typename T> static void gemm_t(const GemmArgs *p);

template <> void gemm_t<float>(const GemmArgs *p) {
    float alpha = (float)p->alpha, beta = (float)p->beta;
    CUBLAS_CHECK(cublasSgemmStridedBatched(cuda_cublas(), p->tb ? CUBLAS_OP_T : CUBLAS_OP_N, p->ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                 p->N, p->M, p->K, &alpha, (const float *)p->B, p->ldb, p->sB, (const float *)p->A, p->lda, p->sA,
                 &beta, (float *)p->C, p->ldc, p->sC, p->batch));
}

template <> void gemm_t<double>(const GemmArgs *p) {
    CUBLAS_CHECK(cublasDgemmStridedBatched(cuda_cublas(), p->tb ? CUBLAS_OP_T : CUBLAS_OP_N, p->ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                 p->N, p->M, p->K, &p->alpha, (const double *)p->B, p->ldb, p->sB, (const double *)p->A, p->lda, p->sA,
                 &p->beta, (double *)p->C, p->ldc, p->sC, p->batch));
}

void cuda_gemm(const GemmArgs *p) {
    FT_CHECK(p->batch == 1 || p->sC != 0, "cuda gemm: a batch accumulating into one C would race");
    DISPATCH_REAL(p->dt, "gemm", gemm_t<T>(p));
}

static void gemm(DType dt, bool ta, bool tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb,
                 double beta, void *C, int ldc) {
    GemmArgs a = { dt, ta, tb, M, N, K, 1.0, beta, A, lda, 0, B, ldb, 0, C, ldc, 0, 1 };
    cuda_gemm(&a);
}

/* col[r][p] for one image, r = (c kh + i) kw + j, p = oh OW + ow */
template <typename T> __global__ void im2col_k(ConvGeom g, const T *x, T *col) {
    int64_t ohw = (int64_t)g.OH * g.OW;
    FOR_EACH(k, (int64_t)g.C * g.kh * g.kw * ohw) {
        int64_t r = k / ohw, p = k % ohw;
        int c = (int)(r / (g.kh * g.kw)), i = (int)(r / g.kw % g.kh), j = (int)(r % g.kw);
        int ih = (int)(p / g.OW) * g.sh - g.ph + i * g.dh, iw = (int)(p % g.OW) * g.sw - g.pw + j * g.dw;
        col[k] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[((int64_t)c * g.H + ih) * g.W + iw] : (T)0;
    }
}

/* gx[c][h][w] += the col entries that read it: a gather, one thread per input element, so the
 * result is deterministic */
template <typename T> __global__ void col2im_k(ConvGeom g, const T *col, T *gx) {
    int64_t ohw = (int64_t)g.OH * g.OW;
    FOR_EACH(k, (int64_t)g.C * g.H * g.W) {
        int c = (int)(k / ((int64_t)g.H * g.W)), h = (int)(k / g.W % g.H), w = (int)(k % g.W);
        T s = 0;
        for (int i = 0; i < g.kh; i++) {
            int t = h + g.ph - i * g.dh;
            if (t < 0 || t % g.sh) continue;
            int oh = t / g.sh;
            if (oh >= g.OH) continue;
            for (int j = 0; j < g.kw; j++) {
                int u = w + g.pw - j * g.dw;
                if (u < 0 || u % g.sw) continue;
                int ow = u / g.sw;
                if (ow >= g.OW) continue;
                s += col[(((int64_t)c * g.kh + i) * g.kw + j) * ohw + (int64_t)oh * g.OW + ow];
            }
        }
        gx[k] += s;
    }
}

template <typename T> __global__ void add_bias_k(int64_t n, int O, int64_t ohw, const T *b, T *y) {
    FOR_EACH(k, n) y[k] += b[(k / ohw) % O];
}

/* gb[o] += sum over images and positions of gy */
template <typename T> __global__ void bias_grad_k(int N, int O, int64_t ohw, const T *gy, T *gb) {
    __shared__ T s[THREADS];
    for (int o = blockIdx.x; o < O; o += gridDim.x) {
        T v = 0;
        for (int64_t k = threadIdx.x; k < N * ohw; k += blockDim.x) v += gy[((k / ohw) * O + o) * ohw + k % ohw];
        s[threadIdx.x] = v;
        __syncthreads();
        for (int m = blockDim.x / 2; m > 0; m /= 2) {
            if (threadIdx.x < m) s[threadIdx.x] += s[threadIdx.x + m];
            __syncthreads();
        }
        if (threadIdx.x == 0) gb[o] += s[0];
        __syncthreads();
    }
}

template <typename T> static void conv_fwd(const ConvArgs *p) {
    const ConvGeom &g = p->g;
    int K = g.C * g.kh * g.kw;
    int64_t ohw = (int64_t)g.OH * g.OW;
    T *col = (T *)cuda_scratch(0, (size_t)K * ohw * sizeof(T));
    for (int n = 0; n < g.N; n++) {
        im2col_k<T><<<grid_for((int64_t)K * ohw), THREADS>>>(g, (const T *)p->x + (int64_t)n * g.C * g.H * g.W, col);
        LAUNCH_CHECK();
        gemm(p->dt, false, false, g.O, (int)ohw, K, p->w, K, col, (int)ohw, 0.0, (T *)p->y + n * g.O * ohw, (int)ohw);
    }
    if (p->b) {
        int64_t n = (int64_t)g.N * g.O * ohw;
        add_bias_k<T><<<grid_for(n), THREADS>>>(n, g.O, ohw, (const T *)p->b, (T *)p->y);
        LAUNCH_CHECK();
    }
}

void cuda_conv2d(const ConvArgs *p) {
    if (p->dt == FT_F32) cudnn_conv2d(p);
    else DISPATCH_REAL(p->dt, "conv2d", conv_fwd<T>(p));
}

template <typename T> static void conv_bwd(const ConvGradArgs *p) {
    const ConvGeom &g = p->g;
    int K = g.C * g.kh * g.kw;
    int64_t ohw = (int64_t)g.OH * g.OW;
    T *col = (T *)cuda_scratch(0, (size_t)K * ohw * sizeof(T));
    for (int n = 0; n < g.N; n++) {
        const T *gy = (const T *)p->gy + n * g.O * ohw;
        if (p->gw) {   /* gw[O, K] += gy[O, OHW] col^T */
            im2col_k<T><<<grid_for((int64_t)K * ohw), THREADS>>>(g, (const T *)p->x + (int64_t)n * g.C * g.H * g.W, col);
            LAUNCH_CHECK();
            gemm(p->dt, false, true, g.O, K, (int)ohw, gy, (int)ohw, col, (int)ohw, 1.0, p->gw, K);
        }
        if (p->gx) {   /* col = w^T gy, gathered into gx */
            gemm(p->dt, true, false, K, (int)ohw, g.O, p->w, K, gy, (int)ohw, 0.0, col, (int)ohw);
            col2im_k<T><<<grid_for((int64_t)g.C * g.H * g.W), THREADS>>>(g, col, (T *)p->gx + (int64_t)n * g.C * g.H * g.W);
            LAUNCH_CHECK();
        }
    }
    if (p->gb) {
        bias_grad_k<T><<<g.O < 1024 ? g.O : 1024, THREADS>>>(g.N, g.O, ohw, (const T *)p->gy, (T *)p->gb);
        LAUNCH_CHECK();
    }
}

void cuda_conv2d_grad(const ConvGradArgs *p) {
    if (p->dt == FT_F32) cudnn_conv2d_grad(p);
    else DISPATCH_REAL(p->dt, "conv2d_grad", conv_bwd<T>(p));
}
