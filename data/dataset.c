#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "image.h"

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

void image_resize_region(const uint8_t *rgb, int width, float x0, float y0, float w0, float h0, int size, uint8_t *chw) {
    int xl = (int)x0, yl = (int)y0, xr = (int)(x0 + w0) - 1, yr = (int)(y0 + h0) - 1;   /* the region's pixels */
    for (int y = 0; y < size; y++) {
        float sy = y0 + (y + 0.5f) * h0 / size - 0.5f;   /* PyTorch / PIL's pixel-centre convention */
        int iy = (int)floorf(sy);
        float ty = sy - iy;
        int ya = iy < yl ? yl : iy > yr ? yr : iy, yb = iy + 1 > yr ? yr : iy + 1 < yl ? yl : iy + 1;
        for (int x = 0; x < size; x++) {
            float sx = x0 + (x + 0.5f) * w0 / size - 0.5f;
            int ix = (int)floorf(sx);
            float tx = sx - ix;
            int xa = ix < xl ? xl : ix > xr ? xr : ix, xb = ix + 1 > xr ? xr : ix + 1 < xl ? xl : ix + 1;
            for (int c = 0; c < 3; c++) {
                float v = (1 - ty) * ((1 - tx) * rgb[((size_t)ya * width + xa) * 3 + c] + tx * rgb[((size_t)ya * width + xb) * 3 + c]) +
                          ty * ((1 - tx) * rgb[((size_t)yb * width + xa) * 3 + c] + tx * rgb[((size_t)yb * width + xb) * 3 + c]);
                chw[((size_t)c * size + y) * size + x] = (uint8_t)(v + 0.5f);
            }
        }
    }
}

int decode_dataset(const ImageSource *src, int n, int num_classes, int size, const char *name, Dataset *out) {
    memset(out, 0, sizeof *out);
    Tensor *images = ft_tensor_new(FT_U8, SHAPE(n, 3, size, size), FT_CPU);
    int failed = 0;
    char error[2048] = "";
    #pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < n; k++) {
        if (failed) continue;
        Image img;
        const char *why = image_read(src[k].path, &img) != 0 ? ft_last_error() : NULL;
        float x = 0, y = 0, w = img.width, h = img.height;
        if (!why && src[k].box) {
            const float *b = src[k].box;
            if (b[0] + b[2] > img.width + 1 || b[1] + b[3] > img.height + 1) why = "its bounding box lies outside the image";
            x = b[0]; y = b[1];
            w = fminf(b[2], img.width - x);
            h = fminf(b[3], img.height - y);
            if (!why && (w < 1 || h < 1)) why = "its bounding box lies outside the image";
        }
        if (!why) image_resize_region(img.rgb, img.width, x, y, w, h, size, ft_u8(images) + (size_t)k * 3 * size * size);
        if (why) {
            #pragma omp critical
            if (!failed) {
                failed = 1;
                snprintf(error, sizeof error, "%s (%dx%d)%s: %s", src[k].path, img.width, img.height,
                         src[k].box ? " with its bounding box" : "", why);
            }
        }
        image_free(&img);
    }
    if (failed) { ft_tensor_free(images); return ft_error("%s", error); }
    out->images = images;
    out->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int k = 0; k < n; k++) ft_i32(out->labels)[k] = src[k].label;
    out->num_classes = num_classes;
    snprintf(out->name, sizeof out->name, "%s", name);
    return 0;
}
