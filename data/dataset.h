/* In-memory labelled image datasets and batching. */
#ifndef FINCH_DATASET_H
#define FINCH_DATASET_H

#include "core/finch.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DATASET_MAX_CLASSES 1000

typedef struct {
    Tensor *images;        /* uint8 [N, C, H, W], host */
    Tensor *labels;        /* int32 [N], host */
    int num_classes;
    char name[64];
    const char *const *class_names;   /* num_classes entries, or NULL */
    void *owned;                      /* memory behind class_names that dataset_free releases */
} Dataset;

void dataset_free(Dataset *ds);
static inline int dataset_size(const Dataset *ds) { return ds->images ? ds->images->shape.d[0] : 0; }

/* Gather the samples idx[0..n) into x (float32 [n, C, H, W], pixels / 255, any device) and
 * y (int32 [n], same device). */
void dataset_batch(const Dataset *ds, const int32_t *idx, int n, Tensor *x, Tensor *y);

/* Copies names (num_classes of them, each up to 95 characters) into ds->class_names. */
void dataset_set_names(Dataset *ds, const char (*names)[96]);

/* The IDX format of (Fashion-)MNIST, gzip-compressed or plain: unsigned bytes with `ndims`
 * dimensions. 0 on success; -1 with ft_last_error() naming the file and the problem. */
int idx_read(const char *path, int ndims, Tensor **out);

/* Fashion-MNIST from dir (train-images-idx3-ubyte.gz, ...; the Debian package
 * dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist). */
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
int fashion_mnist_load(const char *dir, bool train, Dataset *ds);
extern const char *const fashion_mnist_classes[10];

#ifdef __cplusplus
}
#endif

#endif
