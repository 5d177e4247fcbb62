#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tensor.h"
#include "arena.h"
#include "backend.h"
#include "error.h"

size_t ft_dtype_size(DType dt) {
    switch (dt) {
    case FT_F32: return 4;
    case FT_F64: return 8;
    case FT_U8: return 1;
    case FT_I32: return 4;
    }
    return 0;
}

const char *ft_dtype_name(DType dt) {
    static const char *names[] = { "float32", "float64", "uint8", "int32" };
    return names[dt];
}

const char *ft_device_name(Device dev) { return dev == FT_CPU ? "cpu" : "cuda"; }

int64_t ft_shape_numel(Shape s) {
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= s.d[i];
    return n;
}

bool ft_shape_eq(Shape a, Shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++) if (a.d[i] != b.d[i]) return false;
    return true;
}

char *ft_shape_str(Shape s, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < s.ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", s.d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static void check_shape(Shape s) {
    FT_CHECK(s.ndim >= 0 && s.ndim <= FT_MAX_DIMS, "tensor rank %d, expected 0..%d", s.ndim, FT_MAX_DIMS);
    for (int i = 0; i < s.ndim; i++)
        FT_CHECK(s.d[i] >= 0, "negative size %d in dimension %d of shape %s", s.d[i], i, FT_SHAPE_STR(s));
}

static Tensor *tensor_over(DType dt, Shape s, Storage *st) {
    check_shape(s);
    Tensor *t = ft_xcalloc(1, sizeof *t);
    t->dtype = dt;
    t->shape = s;
    t->numel = ft_shape_numel(s);
    st->bytes = (size_t)t->numel * ft_dtype_size(dt);
    st->refs = 1;
    t->storage = st;
    return t;
}

Tensor *ft_tensor_wrap(DType dt, Shape s, void *data, void (*release)(void *ctx), void *ctx) {
    Storage *st = ft_xcalloc(1, sizeof *st);
    *st = (Storage){ .data = data, .device = FT_CPU, .external = true, .release = release, .release_ctx = ctx };
    return tensor_over(dt, s, st);
}

Tensor *ft_tensor_new_pinned(DType dt, Shape s) {
    Storage *st = ft_xcalloc(1, sizeof *st);
    Tensor *t = tensor_over(dt, s, st);
    st->device = FT_CPU;
    const Backend *cuda = ft_cuda_available() ? ft_backend(FT_CUDA) : NULL;
    st->pinned = cuda && cuda->host_alloc;
    st->data = st->pinned ? cuda->host_alloc(st->bytes) : ft_cpu_backend()->alloc(st->bytes);
    ft_zero_(t);
    return t;
}

Tensor *ft_tensor_new(DType dt, Shape s, Device dev) {
    Storage *st = ft_xcalloc(1, sizeof *st);
    Tensor *t = tensor_over(dt, s, st);
    st->device = dev;
    st->data = ft_backend(dev)->alloc(st->bytes);
    ft_zero_(t);
    return t;
}

static void storage_release(Storage *st) {
    if (st->in_arena || --st->refs > 0) return;
    if (st->external) { if (st->release) st->release(st->release_ctx); }
    else if (st->pinned) ft_backend(FT_CUDA)->host_free(st->data);
    else ft_backend(st->device)->free(st->data);
    free(st);
}

void ft_tensor_free(Tensor *t) {
    if (!t) return;
    FT_CHECK(!t->arena, "ft_tensor_free on a tensor owned by an arena (it is released by the tape reset)");
    if (t->grad) ft_tensor_free(t->grad);
    storage_release(t->storage);
    free(t);
}

Tensor *ft_tensor_view(Tensor *t, int64_t offset, Shape s) {
    check_shape(s);
    FT_CHECK(offset >= 0 && offset + ft_shape_numel(s) <= t->numel, "view of %s as %s at offset %lld: out of range",
             FT_SHAPE_STR(t->shape), FT_SHAPE_STR(s), (long long)offset);
    FT_CHECK(!t->arena, "persistent view of an arena tensor");
    Tensor *v = ft_xcalloc(1, sizeof *v);
    *v = *t;
    v->shape = s;
    v->numel = ft_shape_numel(s);
    v->offset = t->offset + offset;
    v->grad = NULL;
    v->node = NULL;
    t->storage->refs++;
    return v;
}

Tensor *ft_arena_tensor(Arena *a, DType dt, Shape s, Device dev) {
    check_shape(s);
    FT_CHECK(dev == a->device, "arena on %s asked for a %s tensor", ft_device_name(a->device), ft_device_name(dev));
    Tensor *t = arena_alloc_meta(a, sizeof *t);
    Storage *st = arena_alloc_meta(a, sizeof *st);
    t->dtype = dt;
    t->shape = s;
    t->numel = ft_shape_numel(s);
    t->arena = a;
    st->bytes = (size_t)t->numel * ft_dtype_size(dt);
    st->device = dev;
    st->in_arena = true;
    st->data = arena_alloc_data(a, st->bytes);
    t->storage = st;
    return t;
}

static void *host_ptr(const Tensor *t, DType want) {
    FT_CHECK(t->dtype == want, "expected a %s tensor, got %s", ft_dtype_name(want), ft_dtype_name(t->dtype));
    FT_CHECK(t->storage->device == FT_CPU, "host access to a tensor on %s: copy it to the cpu first",
             ft_device_name(t->storage->device));
    return ft_ptr(t);
}
float *ft_f32(const Tensor *t) { return host_ptr(t, FT_F32); }
double *ft_f64(const Tensor *t) { return host_ptr(t, FT_F64); }
int32_t *ft_i32(const Tensor *t) { return host_ptr(t, FT_I32); }
uint8_t *ft_u8(const Tensor *t) { return host_ptr(t, FT_U8); }

void ft_copy_(Tensor *dst, const Tensor *src) {
    FT_CHECK(dst->dtype == src->dtype && dst->numel == src->numel,
             "copy of %s %s into %s %s", ft_dtype_name(src->dtype), FT_SHAPE_STR(src->shape),
             ft_dtype_name(dst->dtype), FT_SHAPE_STR(dst->shape));
    size_t bytes = (size_t)src->numel * ft_dtype_size(src->dtype);
    Device sd = src->storage->device, dd = dst->storage->device;
    if (sd == FT_CPU && dd == FT_CPU) memmove(ft_ptr(dst), ft_ptr(src), bytes);
    else if (sd == FT_CPU) ft_backend(dd)->from_host(ft_ptr(dst), ft_ptr(src), bytes);
    else if (dd == FT_CPU) ft_backend(sd)->to_host(ft_ptr(dst), ft_ptr(src), bytes);
    else ft_backend(dd)->copy(ft_ptr(dst), ft_ptr(src), bytes);
}

void ft_add_(Tensor *dst, const Tensor *src) {
    FT_CHECK(dst->dtype == src->dtype && dst->numel == src->numel && dst->storage->device == src->storage->device &&
             (dst->dtype == FT_F32 || dst->dtype == FT_F64), "add of %s %s on %s into %s %s on %s", ft_dtype_name(src->dtype),
             FT_SHAPE_STR(src->shape), ft_device_name(src->storage->device), ft_dtype_name(dst->dtype),
             FT_SHAPE_STR(dst->shape), ft_device_name(dst->storage->device));
    ft_backend(dst->storage->device)->copy_strided(&(CopyArgs){ dst->dtype, 1, { (int)src->numel }, ft_ptr(src), { 1 },
                                                                 ft_ptr(dst), { 1 }, true });
}

void ft_upload_(Tensor *dst, const Tensor *host_src) {
    const Backend *be = ft_backend(dst->storage->device);
    FT_CHECK(host_src->storage->device == FT_CPU, "ft_upload_ from a %s tensor", ft_device_name(host_src->storage->device));
    if (dst->storage->device == FT_CPU || !be->upload_async) { ft_copy_(dst, host_src); return; }
    FT_CHECK(dst->dtype == host_src->dtype && dst->numel == host_src->numel, "upload of %s %s into %s %s",
             ft_dtype_name(host_src->dtype), FT_SHAPE_STR(host_src->shape), ft_dtype_name(dst->dtype), FT_SHAPE_STR(dst->shape));
    size_t bytes = (size_t)dst->numel * ft_dtype_size(dst->dtype);
    if (host_src->storage->pinned && be->upload_pinned) be->upload_pinned(ft_ptr(dst), ft_ptr(host_src), bytes);
    else be->upload_async(ft_ptr(dst), ft_ptr(host_src), bytes);
}

void ft_convert_(Tensor *dst, const Tensor *src, double scale) {
    FT_CHECK(dst->numel == src->numel && dst->storage->device == src->storage->device,
             "convert of %s %s on %s into %s %s on %s", ft_dtype_name(src->dtype), FT_SHAPE_STR(src->shape),
             ft_device_name(src->storage->device), ft_dtype_name(dst->dtype), FT_SHAPE_STR(dst->shape),
             ft_device_name(dst->storage->device));
    ft_backend(dst->storage->device)->convert(&(ConvertArgs){ src->dtype, dst->dtype, dst->numel, scale, ft_ptr(src), ft_ptr(dst) });
}

void ft_fill_(Tensor *t, double v) { ft_backend(t->storage->device)->fill(t->dtype, t->numel, v, ft_ptr(t)); }
void ft_zero_(Tensor *t) { ft_fill_(t, 0.0); }

/* Stage through a host float buffer when the tensor is not a host float32 tensor. */
void ft_from_floats(Tensor *t, const float *src, int64_t n) {
    FT_CHECK(n == t->numel, "ft_from_floats: %lld values for a tensor of %lld", (long long)n, (long long)t->numel);
    Tensor *h = ft_tensor_new(FT_F32, SHAPE((int)n), FT_CPU);
    memcpy(ft_f32(h), src, (size_t)n * sizeof(float));
    if (t->dtype == FT_F32) { ft_copy_(t, h); ft_tensor_free(h); return; }
    Tensor *c = ft_tensor_new(t->dtype, SHAPE((int)n), FT_CPU);
    ft_cpu_backend()->convert(&(ConvertArgs){ FT_F32, t->dtype, n, 1.0, ft_ptr(h), ft_ptr(c) });
    ft_copy_(t, c);
    ft_tensor_free(h);
    ft_tensor_free(c);
}

void ft_to_floats(const Tensor *t, float *dst, int64_t n) {
    FT_CHECK(n == t->numel, "ft_to_floats: %lld values from a tensor of %lld", (long long)n, (long long)t->numel);
    Tensor *h = ft_tensor_new(t->dtype, SHAPE((int)n), FT_CPU);
    ft_copy_(h, t);
    ft_cpu_backend()->convert(&(ConvertArgs){ t->dtype, FT_F32, n, 1.0, ft_ptr(h), dst });
    ft_tensor_free(h);
}

double ft_get(const Tensor *t, int64_t i) {
    FT_CHECK(i >= 0 && i < t->numel, "index %lld out of range (%lld elements)", (long long)i, (long long)t->numel);
    FT_CHECK(t->storage->device == FT_CPU, "ft_get on a %s tensor", ft_device_name(t->storage->device));
    switch (t->dtype) {
    case FT_F32: return ft_f32(t)[i];
    case FT_F64: return ft_f64(t)[i];
    case FT_U8: return ft_u8(t)[i];
    case FT_I32: return ft_i32(t)[i];
    }
    return 0;
}

void ft_set(Tensor *t, int64_t i, double v) {
    FT_CHECK(i >= 0 && i < t->numel, "index %lld out of range (%lld elements)", (long long)i, (long long)t->numel);
    switch (t->dtype) {
    case FT_F32: ft_f32(t)[i] = (float)v; break;
    case FT_F64: ft_f64(t)[i] = v; break;
    case FT_U8: ft_u8(t)[i] = (uint8_t)v; break;
    case FT_I32: ft_i32(t)[i] = (int32_t)v; break;
    }
}

double ft_item(const Tensor *t) {
    if (!t) return NAN;   /* the result of a failed op (ft_last_error() says why) */
    FT_CHECK(t->numel == 1, "ft_item on a tensor of shape %s (expected one element)", FT_SHAPE_STR(t->shape));
    if (t->storage->device == FT_CPU) return ft_get(t, 0);
    float v;
    ft_to_floats(t, &v, 1);
    return v;
}
