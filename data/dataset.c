#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"

void dataset_free(Dataset *ds) {
    ft_tensor_free(ds->images);
    ft_tensor_free(ds->labels);
    free(ds->owned);
    memset(ds, 0, sizeof *ds);
}

void dataset_batch(const Dataset *ds, const int32_t *idx, int n, Tensor *x, Tensor *y) {
    int64_t per = ds->images->numel / dataset_size(ds);
    FT_CHECK(x->dtype == FT_F32 && x->numel == n * per && y->dtype == FT_I32 && y->numel == n,
             "dataset_batch: %d samples of %lld values into x %s and y %s", n, (long long)per,
             FT_SHAPE_STR(x->shape), FT_SHAPE_STR(y->shape));
    for (int i = 0; i < n; i++)
        FT_CHECK(idx[i] >= 0 && idx[i] < dataset_size(ds), "sample %d of a dataset of %d", idx[i], dataset_size(ds));
    /* gather and scale on the host, straight into x when it lives there */
    bool host = x->storage->device == FT_CPU;
    Tensor *xs = host ? x : ft_tensor_new(FT_F32, x->shape, FT_CPU);
    Tensor *ys = host ? y : ft_tensor_new(FT_I32, y->shape, FT_CPU);
    const uint8_t *src = ft_u8(ds->images);
    float *dst = ft_f32(xs);
    #pragma omp parallel for schedule(static) if (n * per > 65536)
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < per; k++) dst[i * per + k] = src[idx[i] * per + k] * (1.0f / 255.0f);
    for (int i = 0; i < n; i++) ft_i32(ys)[i] = ft_i32(ds->labels)[idx[i]];
    if (!host) {
        ft_upload_(x, xs);
        ft_upload_(y, ys);
        ft_tensor_free(xs);
        ft_tensor_free(ys);
    }
}

void dataset_set_names(Dataset *ds, const char (*names)[96]) {
    free(ds->owned);
    int k = ds->num_classes;
    /* one block: k pointers, then the names they point at */
    char **ptrs = ft_xmalloc((size_t)k * (sizeof(char *) + 96) + 1);
    char (*copy)[96] = (char (*)[96])(ptrs + k);
    for (int c = 0; c < k; c++) { snprintf(copy[c], 96, "%s", names[c]); ptrs[c] = copy[c]; }
    ds->owned = ptrs;
    ds->class_names = (const char *const *)ptrs;
}
