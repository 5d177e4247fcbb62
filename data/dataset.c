#include <stdlib.h>
#include <string.h>
#include "dataset.h"

void dataset_free(Dataset *ds) {
    ft_tensor_free(ds->images);
    ft_tensor_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void dataset_batch(const Dataset *ds, const int32_t *idx, int n, Tensor *x, Tensor *y) {
    int64_t per = ds->images->numel / dataset_size(ds);
    FT_CHECK(x->dtype == FT_F32 && x->numel == n * per && y->dtype == FT_I32 && y->numel == n,
             "dataset_batch: %d samples of %lld values into x %s and y %s", n, (long long)per,
             FT_SHAPE_STR(x->shape), FT_SHAPE_STR(y->shape));
    Tensor *xb = ft_tensor_new(FT_U8, SHAPE(n, (int)per), FT_CPU);
    Tensor *yb = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int i = 0; i < n; i++) {
        FT_CHECK(idx[i] >= 0 && idx[i] < dataset_size(ds), "sample %d of %d", idx[i], dataset_size(ds));
        memcpy(ft_u8(xb) + i * per, ft_u8(ds->images) + idx[i] * per, (size_t)per);
        ft_i32(yb)[i] = ft_i32(ds->labels)[idx[i]];
    }
    /* convert on the host, then one copy to wherever x lives */
    Tensor *xf = x->storage->device == FT_CPU ? x : ft_tensor_new(FT_F32, x->shape, FT_CPU);
    ft_cpu_backend()->convert(&(ConvertArgs){ FT_U8, FT_F32, xb->numel, 1.0 / 255.0, ft_ptr(xb), ft_ptr(xf) });
    if (xf != x) { ft_copy_(x, xf); ft_tensor_free(xf); }
    ft_copy_(y, yb);
    ft_tensor_free(xb);
    ft_tensor_free(yb);
}
