/* Tensor: a typed, shaped view of reference-counted storage on one device.
 *
 * A tensor is contiguous (row-major) starting at `offset` elements into its storage; views that
 * keep contiguity (reshape, a slice of the batch dimension) share storage instead of copying.
 * Tensors come from one of two places:
 *   - persistent: ft_tensor_new()/ft_tensor_free(); parameters, datasets, attack images;
 *   - the step arena of a Tape (autograd.h): every op output; all released by ft_tape_reset().
 * float64 exists for the CPU only, so that gradient checks run in double precision.
 */
#ifndef FINCH_TENSOR_H
#define FINCH_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FT_MAX_DIMS 6

typedef enum { FT_F32, FT_F64, FT_U8, FT_I32 } DType;
typedef enum { FT_CPU, FT_CUDA } Device;

typedef struct { int ndim; int d[FT_MAX_DIMS]; } Shape;

/* SHAPE(2, 3, 4) builds a Shape literal. */
#define FT_NARGS_(a, b, c, d, e, f, n, ...) n
#define FT_NARGS(...) FT_NARGS_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define SHAPE(...) ((Shape){ .ndim = FT_NARGS(__VA_ARGS__), .d = { __VA_ARGS__ } })

typedef struct Arena Arena;
typedef struct Node Node;

typedef struct Storage {
    void *data;
    size_t bytes;
    int refs;          /* persistent tensors viewing it; arena storage is not counted */
    Device device;
    bool in_arena;     /* memory belongs to an arena: released by its reset, never freed alone */
    bool pinned;       /* page-locked host memory: the GPU copies straight from it */
    bool external;     /* memory finch does not own (a file mapping): release(ctx) instead of free */
    void (*release)(void *ctx);
    void *release_ctx;
} Storage;

typedef struct Tensor {
    DType dtype;
    Shape shape;
    int64_t numel;
    Storage *storage;
    int64_t offset;            /* in elements */
    struct Tensor *grad;       /* same shape, allocated on first use by backward */
    Node *node;                /* the op that produced it (NULL for leaves and untracked results) */
    Arena *arena;              /* NULL: persistent */
    bool requires_grad;
    bool is_param;             /* trainable parameter: frozen in input-gradient-only mode */
} Tensor;

size_t ft_dtype_size(DType dt);
const char *ft_dtype_name(DType dt);
const char *ft_device_name(Device dev);
int64_t ft_shape_numel(Shape s);
bool ft_shape_eq(Shape a, Shape b);
/* "[2, 3, 4]" into buf; returns buf. */
char *ft_shape_str(Shape s, char *buf, size_t n);
#define FT_SHAPE_STR(s) ft_shape_str((s), (char[64]){0}, 64)

/* Persistent tensors (zero-filled). */
Tensor *ft_tensor_new(DType dt, Shape s, Device dev);
void ft_tensor_free(Tensor *t);
/* A host tensor over memory finch did not allocate (a memory-mapped file): release(ctx) runs
 * when the last tensor viewing it is freed (release may be NULL). The data is not zeroed. */
Tensor *ft_tensor_wrap(DType dt, Shape s, void *data, void (*release)(void *ctx), void *ctx);
/* A host tensor in page-locked memory when a CUDA device is usable (plain memory otherwise), so
 * that ft_upload_ from it is a direct asynchronous copy. */
Tensor *ft_tensor_new_pinned(DType dt, Shape s);
/* A persistent view sharing t's storage: shape s starting `offset` elements into t. */
Tensor *ft_tensor_view(Tensor *t, int64_t offset, Shape s);

/* Tensors in an arena (uninitialised data). */
Tensor *ft_arena_tensor(Arena *a, DType dt, Shape s, Device dev);

static inline void *ft_ptr(const Tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * ft_dtype_size(t->dtype);
}
/* Host pointers with a dtype and device check. */
float *ft_f32(const Tensor *t);
double *ft_f64(const Tensor *t);
int32_t *ft_i32(const Tensor *t);
uint8_t *ft_u8(const Tensor *t);

/* Data movement (any device, same dtype and numel). */
void ft_copy_(Tensor *dst, const Tensor *src);
void ft_fill_(Tensor *t, double v);
/* dst += src, element by element (same device, dtype and numel; float tensors). */
void ft_add_(Tensor *dst, const Tensor *src);
void ft_zero_(Tensor *t);
/* dst = src * scale, converting dtypes (same device and numel): uint8 pixels to floats. */
void ft_convert_(Tensor *dst, const Tensor *src, double scale);
/* Copy a host tensor into dst (same dtype and numel) without waiting for a device copy to
 * finish: batches go to the GPU while it still works on the previous step. A plain host source
 * is staged and may be reused at once; a pinned one (ft_tensor_new_pinned) is copied from
 * directly and must not change before the next ft_synchronize. */
void ft_upload_(Tensor *dst, const Tensor *host_src);
/* Host <-> tensor copies of float data, converting to the tensor's dtype. */
void ft_from_floats(Tensor *t, const float *src, int64_t n);
void ft_to_floats(const Tensor *t, float *dst, int64_t n);
/* Read element i of a float tensor as double (tests, printing); single-element loss values. */
double ft_get(const Tensor *t, int64_t i);
void ft_set(Tensor *t, int64_t i, double v);
double ft_item(const Tensor *t);   /* NAN for NULL (a failed op's result) */

#ifdef __cplusplus
}
#endif

#endif
