/* The background loader: worker threads fill a ring of ready batches (uint8 NCHW, in pinned
 * memory for a GPU) while the model trains on the previous ones.
 *
 * The order of an epoch is a shuffle drawn from (seed, epoch) and each sample's augmentation
 * from (seed, epoch, its position in the epoch), so a run is the same whatever the thread count
 * and however the workers are scheduled. */
#ifndef FINCH_LOADER_H
#define FINCH_LOADER_H

#include "dataset.h"
#include "augment.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int batch;
    uint64_t seed;
    bool shuffle;              /* false: dataset order */
    bool drop_last;            /* drop the last partial batch (else it comes shorter) */
    int limit;                 /* use the first `limit` samples only (0: all) */
    const int32_t *subset;     /* draw from these dataset indices only (copied; NULL: all) */
    int n_subset;
    int workers;               /* background threads; 0: each batch is filled by loader_next itself */
    int depth;                 /* ring slots (0: 2 per worker, at least 2) */
    const AugmentConfig *augment;   /* NULL: images as stored */
    int size;                  /* output side with augmentation (0: the dataset's) */
    bool pinned;               /* batches in page-locked memory (for a GPU; plain memory without one) */
    /* Data parallelism: with shards > 1 (and drop_last), `batch` is the global batch and this
     * loader hands out only part `shard` of each: batch / shards samples at that offset in it,
     * with the augmentation the whole batch would have had there. 0 or 1: the whole batch. */
    int shard, shards;
} LoaderConfig;

typedef struct {
    Tensor *images;            /* uint8 [n, 3, size, size], host (pinned when asked and a GPU is usable) */
    Tensor *labels;            /* int32 [n], host */
    const int32_t *index;      /* the dataset samples in it */
    int n, number;             /* samples (this shard's); which batch of the epoch */
} Batch;

typedef struct Loader Loader;

Loader *loader_new(const Dataset *ds, const LoaderConfig *c);
void loader_free(Loader *L);
/* Starts an epoch (abandoning what is left of the previous one); returns its batch count. */
int loader_epoch(Loader *L, int epoch);
/* The same, its first `first` batches skipped (a stopped epoch resumed): batch k is still the
 * epoch's k-th, with the same samples and augmentation. */
int loader_epoch_at(Loader *L, int epoch, int first);
/* The batches of every epoch. */
int loader_batches(const Loader *L);
/* The next batch of the epoch, waiting for it if needed; NULL at the end. Hand it back with
 * loader_release once its images have been consumed (on a GPU: copied; release waits for that). */
Batch *loader_next(Loader *L);
void loader_release(Loader *L, Batch *b);

/* x = images / 255 as float32 and y = labels on x's and y's device (shapes [b->n, ...]). */
void batch_to_device(const Batch *b, Tensor *x, Tensor *y);

#ifdef __cplusplus
}
#endif

#endif
