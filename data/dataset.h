/* In-memory labelled image datasets and batching. */
#ifndef FINCH_DATASET_H
#define FINCH_DATASET_H

#include "core/finch.h"

#define DATASET_MAX_CLASSES 1000

typedef struct {
    Tensor *images;        /* uint8 [N, C, H, W], host */
    Tensor *labels;        /* int32 [N], host */
    int num_classes;
    char name[64];
    const char *const *class_names;   /* num_classes entries, or NULL */
} Dataset;

void dataset_free(Dataset *ds);
static inline int dataset_size(const Dataset *ds) { return ds->images ? ds->images->shape.d[0] : 0; }

/* Gather the samples idx[0..n) into x (float32 [n, C, H, W], pixels / 255, any device) and
 * y (int32 [n], same device). */
void dataset_batch(const Dataset *ds, const int32_t *idx, int n, Tensor *x, Tensor *y);

/* Image files decoded into a dataset on all cores: each optionally cropped to a box (x, y, w, h;
 * up to one pixel past the image edge is clipped, more is an error naming the image), resized
 * to size x size (bilinear, aspect not kept), into uint8 [N, 3, size, size]. */
typedef struct { char path[1024]; int label; const float *box; } ImageSource;
int decode_dataset(const ImageSource *src, int n, int num_classes, int size, const char *name, Dataset *out);
/* Bilinear resize of the w0 x h0 region at (x0, y0) of an RGB image into size x size, CHW. */
void image_resize_region(const uint8_t *rgb, int width, float x0, float y0, float w0, float h0, int size, uint8_t *chw);

/* root/<class>/<image>.{jpg,jpeg,png} with classes sorted by name. split_file (may be NULL)
 * lists every image once as "<class>/<file> 1" (train) or "0" (test); without one, both
 * splits hold every image. */
int folder_dataset(const char *root, const char *split_file, bool train, int size, Dataset *out);

/* The IDX format of (Fashion-)MNIST, gzip-compressed or plain: unsigned bytes with `ndims`
 * dimensions. 0 on success; -1 with ft_last_error() naming the file and the problem. */
int idx_read(const char *path, int ndims, Tensor **out);

/* Fashion-MNIST from dir (train-images-idx3-ubyte.gz, ...; the Debian package
 * dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist). */
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
int fashion_mnist_load(const char *dir, bool train, Dataset *ds);
extern const char *const fashion_mnist_classes[10];

#endif
