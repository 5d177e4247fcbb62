#include <limits.h>
#include <string.h>
#include "backend.h"
#include "error.h"

const Backend *ft_backend(Device dev) { return dev == FT_CPU ? ft_cpu_backend() : ft_cuda_backend(); }

void ft_synchronize(Device dev) {
    const Backend *b = ft_backend(dev);
    if (b->synchronize) b->synchronize();
}

#ifndef FINCH_CUDA
bool ft_cuda_available(void) { return false; }
const char *ft_cuda_describe(void) { return "no CUDA: this finch was built without it (CUDA=0 or no nvcc at build time)"; }
void ft_cuda_set_tf32(bool on) { (void)on; }
CudaMemoryStats ft_cuda_memory(void) { return (CudaMemoryStats){ 0 }; }

const Backend *ft_cuda_backend(void) {
    ft_fatal("this finch was built without CUDA (CUDA=0 or no nvcc found at build time); "
             "rebuild with 'make CUDA=1' on a machine with the CUDA toolkit to use --device cuda");
}
#endif

Bcast ft_broadcast(const char *op, Shape sa, Shape sb, Shape *out) {
    Bcast g = { 0 };
    int nd = sa.ndim > sb.ndim ? sa.ndim : sb.ndim;
    g.ndim = nd;
    int64_t stride_a = 1, stride_b = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ia = i - (nd - sa.ndim), ib = i - (nd - sb.ndim);
        int da = ia >= 0 ? sa.d[ia] : 1, db = ib >= 0 ? sb.d[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            ft_op_error_at(__FILE__, __LINE__, "%s: shapes %s and %s cannot be broadcast (dimension %d: %d vs %d)", op,
                           FT_SHAPE_STR(sa), FT_SHAPE_STR(sb), i, da, db);
            out->ndim = -1;
            return g;
        }
        g.shape[i] = da > db ? da : db;
        if (da == 0 || db == 0) g.shape[i] = 0;
        g.sa[i] = da == 1 ? 0 : stride_a;
        g.sb[i] = db == 1 ? 0 : stride_b;
        stride_a *= da;
        stride_b *= db;
    }
    out->ndim = nd;
    for (int i = 0; i < nd; i++) out->d[i] = g.shape[i];
    g.plain = ft_shape_eq(sa, *out) && ft_shape_eq(sb, *out);
    /* Merge each dimension into the one inside it where both operands continue contiguously (or
     * both stay broadcast): [N, 1, H, W] against [N, M, H, W] iterates as [N, M, H * W], whose
     * rows the kernels run as plain loops. The output's shape (*out) keeps every dimension. */
    if (nd < 2) return g;
    int k = nd - 1;
    for (int i = nd - 2; i >= 0; i--) {
        if (g.sa[i] == g.sa[k] * g.shape[k] && g.sb[i] == g.sb[k] * g.shape[k] &&
            (int64_t)g.shape[k] * g.shape[i] <= INT_MAX) {
            g.shape[k] *= g.shape[i];
            continue;
        }
        k--;
        g.shape[k] = g.shape[i]; g.sa[k] = g.sa[i]; g.sb[k] = g.sb[i];
    }
    g.ndim = nd - k;
    memmove(g.shape, g.shape + k, (size_t)g.ndim * sizeof g.shape[0]);
    memmove(g.sa, g.sa + k, (size_t)g.ndim * sizeof g.sa[0]);
    memmove(g.sb, g.sb + k, (size_t)g.ndim * sizeof g.sb[0]);
    return g;
}
