/* conv2d through cuDNN (float32): forward, backward-data, backward-filter and bias gradient.
 *
 * Descriptors and algorithms are set up once per (geometry, TF32 mode) and cached; the algorithm
 * is cuDNN's first heuristic choice whose workspace fits under WORKSPACE_CAP, and all
 * convolutions share one workspace buffer. Without TF32 the math mode is CUDNN_FMA_MATH, so
 * results are exact float32 (cuDNN's default mode may use TF32 tensor cores on Ampere and later). */
#include <cudnn.h>
#include <string.h>
#include <string>
#include <unordered_map>
#include "common.cuh"

#define CUDNN_CHECK(call) do { \
        cudnnStatus_t s_ = (call); \
        if (s_ != CUDNN_STATUS_SUCCESS) ft_fatal_at(__FILE__, __LINE__, "%s failed: %s", #call, cudnnGetErrorString(s_)); \
    } while (0)

#define WORKSPACE_CAP ((size_t)512 << 20)
#define MAX_PLANS 1024

typedef struct {
    ConvGeom g;
    bool tf32;
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t workspace;   /* the most any of the three needs */
} Plan;

static cudnnHandle_t handle(void) {
    static cudnnHandle_t h;
    if (!h) CUDNN_CHECK(cudnnCreate(&h));
    return h;
}

size_t cuda_cudnn_version(void) { return cudnnGetVersion(); }

/* heuristic candidates in cuDNN's order of preference; the first that runs within the cap */
#define PICK(kind, perf_t, get_fn, ws_fn, ...) do { \
        perf_t perf[16]; \
        int n = 0; \
        CUDNN_CHECK(get_fn(handle(), __VA_ARGS__, 16, &n, perf)); \
        bool found = false; \
        for (int i = 0; i < n && !found; i++) { \
            size_t ws = 0; \
            if (perf[i].status != CUDNN_STATUS_SUCCESS || ws_fn(handle(), __VA_ARGS__, perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS || \
                ws > WORKSPACE_CAP) continue; \
            p->kind = perf[i].algo; \
            if (ws > p->workspace) p->workspace = ws; \
            found = true; \
        } \
        if (!found) ft_fatal("cuDNN offers no " #kind " algorithm for this convolution within %zu MiB of workspace", \
                             WORKSPACE_CAP >> 20); \
    } while (0)

static void plan_init(Plan *p, const ConvGeom *g, bool tf32) {
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->tf32 = tf32;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->b));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->N, g->C, g->H, g->W));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g->N, g->O, g->OH, g->OW));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, g->O, 1, 1));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->O, g->C, g->kh, g->kw));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw, CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT));
    /* as PyTorch: the default mode permits TF32 tensor cores; FMA math keeps exact float32 */
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int n, c, h, w;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
    FT_CHECK(n == g->N && c == g->O && h == g->OH && w == g->OW, "cuDNN computes a %dx%dx%dx%d output, finch %dx%dx%dx%d",
             n, c, h, w, g->N, g->O, g->OH, g->OW);
    PICK(fwd, cudnnConvolutionFwdAlgoPerf_t, cudnnGetConvolutionForwardAlgorithm_v7,
         cudnnGetConvolutionForwardWorkspaceSize, p->x, p->w, p->conv, p->y);
    PICK(bwd_data, cudnnConvolutionBwdDataAlgoPerf_t, cudnnGetConvolutionBackwardDataAlgorithm_v7,
         cudnnGetConvolutionBackwardDataWorkspaceSize, p->w, p->y, p->conv, p->x);
    PICK(bwd_filter, cudnnConvolutionBwdFilterAlgoPerf_t, cudnnGetConvolutionBackwardFilterAlgorithm_v7,
         cudnnGetConvolutionBackwardFilterWorkspaceSize, p->x, p->y, p->conv, p->w);
}

static void plan_destroy(Plan *p) {
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(p->x));
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(p->y));
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(p->b));
    CUDNN_CHECK(cudnnDestroyFilterDescriptor(p->w));
    CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(p->conv));
    delete p;
}

/* The cached plan for this geometry, made on first use. Plans are keyed by the geometry's bytes
 * and the math mode. A run that sees more than MAX_PLANS shapes (many batch sizes, say) drops
 * the whole cache and starts over: a plan is only used within the call that looked it up. */
static const Plan *plan_for(const ConvGeom *g) {
    static std::unordered_map<std::string, Plan *> plans;
    bool tf32 = cuda_tf32();
    std::string key((const char *)g, sizeof *g);
    key.push_back(tf32 ? 1 : 0);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    if (plans.size() >= MAX_PLANS) {
        for (auto &kv : plans) plan_destroy(kv.second);
        plans.clear();
    }
    Plan *p = new Plan;
    plan_init(p, g, tf32);
    plans[key] = p;
    return p;
}

static void *workspace(const Plan *p) { return p->workspace ? cuda_scratch(1, p->workspace) : NULL; }

void cudnn_conv2d(const ConvArgs *a) {
    const Plan *p = plan_for(&a->g);
    const float one = 1, zero = 0;
    CUDNN_CHECK(cudnnConvolutionForward(handle(), &one, p->x, a->x, p->w, a->w, p->conv, p->fwd, workspace(p), p->workspace,
                                        &zero, p->y, a->y));
    if (a->b) CUDNN_CHECK(cudnnAddTensor(handle(), &one, p->b, a->b, &one, p->y, a->y));
}

/* every gradient accumulates (beta = 1), as the backend contract says */
void cudnn_conv2d_grad(const ConvGradArgs *a) {
    const Plan *p = plan_for(&a->g);
    const float one = 1;
    if (a->gx)
        CUDNN_CHECK(cudnnConvolutionBackwardData(handle(), &one, p->w, a->w, p->y, a->gy, p->conv, p->bwd_data, workspace(p),
                                                 p->workspace, &one, p->x, a->gx));
    if (a->gw)
        CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle(), &one, p->x, a->x, p->y, a->gy, p->conv, p->bwd_filter,
                                                   workspace(p), p->workspace, &one, p->w, a->gw));
    if (a->gb) CUDNN_CHECK(cudnnConvolutionBackwardBias(handle(), &one, p->y, a->gy, &one, p->b, a->gb));
}
