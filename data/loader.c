#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "loader.h"
#include "core/backend.h"

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_TAKEN } SlotState;

typedef struct {
    Batch b;
    Tensor *full, *part;        /* images [batch, ...] and, for a short last batch, a view of its start */
    int32_t *index;
    SlotState state;
} Slot;

struct Loader {
    const Dataset *ds;
    LoaderConfig c;
    int n, in_size, size, channels;
    int local;                 /* samples of each batch this loader hands out (its shard's) */
    int32_t *order;
    int32_t *subset;           /* the dataset indices drawn from (NULL: all) */
    int epoch, batches, next_fill, next_take;
    Slot *slots;
    int depth;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* Everything a slot holds for batch k of the current epoch; runs without the lock (the order
 * and epoch do not change while any slot is being filled). */
static void fill(Loader *L, Slot *s, int k) {
    int first = k * L->c.batch + L->c.shard * L->local, m = L->n - first < L->local ? L->n - first : L->local;
    size_t per_in = (size_t)L->channels * L->in_size * L->in_size, per_out = (size_t)L->channels * L->size * L->size;
    const uint8_t *src = ft_u8(L->ds->images);
    uint8_t *dst = ft_u8(s->full);
    for (int i = 0; i < m; i++) {
        int32_t j = L->order[first + i];
        s->index[i] = j;
        ft_i32(s->b.labels)[i] = ft_i32(L->ds->labels)[j];
        if (L->c.augment) {
            Rng r = { L->c.seed ^ ((uint64_t)L->epoch + 1) * 0xD1B54A32D192ED03ull, (uint64_t)(first + i) << 16 };
            augment_image(L->c.augment, &r, view_chw(src + j * per_in, L->in_size, L->in_size), dst + i * per_out, L->size);
        } else {
            memcpy(dst + i * per_out, src + j * per_in, per_in);
        }
    }
    s->b.images = m == L->local ? s->full : s->part;
    s->b.n = m;
    s->b.number = k;
}

static void *worker(void *arg) {
    Loader *L = arg;
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        int k = L->next_fill;
        Slot *s = k < L->batches ? &L->slots[k % L->depth] : NULL;
        if (!s || s->state != SLOT_FREE) { pthread_cond_wait(&L->cv, &L->mu); continue; }
        s->state = SLOT_FILLING;
        L->next_fill++;
        pthread_mutex_unlock(&L->mu);
        fill(L, s, k);
        pthread_mutex_lock(&L->mu);
        s->state = SLOT_READY;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

Loader *loader_new(const Dataset *ds, const LoaderConfig *c) {
    Shape s = ds->images->shape;
    FT_CHECK(s.ndim == 4 && s.d[2] == s.d[3], "the loader takes square images [N, C, S, S], got %s", FT_SHAPE_STR(s));
    FT_CHECK(!c->augment || s.d[1] == 3, "augmentation needs RGB images; %s has %d channel(s)", ds->name, s.d[1]);
    FT_CHECK(c->batch > 0, "batch size %d", c->batch);
    int shards = c->shards > 1 ? c->shards : 1;
    FT_CHECK(shards == 1 || (c->drop_last && c->batch % shards == 0 && c->shard >= 0 && c->shard < shards),
             "loader shard %d of %d of batches of %d (sharded loaders drop the last batch)", c->shard, shards, c->batch);
    Loader *L = ft_xcalloc(1, sizeof *L);
    L->ds = ds;
    L->c = *c;
    L->c.shard = shards > 1 ? c->shard : 0;
    L->local = c->batch / shards;
    L->n = c->subset ? c->n_subset : dataset_size(ds);
    if (c->limit > 0 && c->limit < L->n) L->n = c->limit;
    if (c->subset) {
        L->subset = ft_xmalloc((size_t)(L->n ? L->n : 1) * sizeof *L->subset);
        for (int i = 0; i < L->n; i++) {
            FT_CHECK(c->subset[i] >= 0 && c->subset[i] < dataset_size(ds), "loader subset index %d outside %s (%d samples)",
                     c->subset[i], ds->name, dataset_size(ds));
            L->subset[i] = c->subset[i];
        }
        L->c.subset = L->subset;
    }
    L->channels = s.d[1];
    L->in_size = s.d[2];
    L->size = c->augment && c->size > 0 ? c->size : L->in_size;
    L->order = ft_xmalloc((size_t)(L->n ? L->n : 1) * sizeof *L->order);
    L->depth = c->depth > 0 ? c->depth : c->workers > 1 ? 2 * c->workers : 2;
    L->slots = ft_xcalloc((size_t)L->depth, sizeof *L->slots);
    int rest = shards > 1 ? 0 : L->n % c->batch;
    for (int i = 0; i < L->depth; i++) {
        Slot *sl = &L->slots[i];
        Shape bs = SHAPE(L->local, L->channels, L->size, L->size);
        sl->full = c->pinned ? ft_tensor_new_pinned(FT_U8, bs) : ft_tensor_new(FT_U8, bs, FT_CPU);
        if (rest) sl->part = ft_tensor_view(sl->full, 0, SHAPE(rest, L->channels, L->size, L->size));
        sl->b.labels = ft_tensor_new(FT_I32, SHAPE(L->local), FT_CPU);
        sl->index = ft_xmalloc((size_t)L->local * sizeof *sl->index);
        sl->b.index = sl->index;
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    L->threads = ft_xcalloc((size_t)(c->workers > 0 ? c->workers : 1), sizeof *L->threads);
    for (int i = 0; i < c->workers; i++)
        FT_CHECK(pthread_create(&L->threads[i], NULL, worker, L) == 0, "cannot start loader thread %d", i);
    return L;
}

void loader_free(Loader *L) {
    if (!L) return;
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->c.workers; i++) pthread_join(L->threads[i], NULL);
    for (int i = 0; i < L->depth; i++) {
        ft_tensor_free(L->slots[i].part);
        ft_tensor_free(L->slots[i].full);
        ft_tensor_free(L->slots[i].b.labels);
        free(L->slots[i].index);
    }
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    free(L->slots); free(L->threads); free(L->order); free(L->subset); free(L);
}

int loader_batches(const Loader *L) { return L->c.drop_last ? L->n / L->c.batch : (L->n + L->c.batch - 1) / L->c.batch; }

int loader_epoch(Loader *L, int epoch) { return loader_epoch_at(L, epoch, 0); }

int loader_epoch_at(Loader *L, int epoch, int first) {
    FT_CHECK(first >= 0, "loader_epoch_at: batch %d", first);
    pthread_mutex_lock(&L->mu);
    for (;;) {   /* let the workers finish what they are filling */
        bool busy = false;
        for (int i = 0; i < L->depth; i++) {
            FT_CHECK(L->slots[i].state != SLOT_TAKEN, "loader_epoch while batch %d is still held: release it first",
                     L->slots[i].b.number);
            busy |= L->slots[i].state == SLOT_FILLING;
        }
        if (!busy) break;
        pthread_cond_wait(&L->cv, &L->mu);
    }
    for (int i = 0; i < L->n; i++) L->order[i] = L->subset ? L->subset[i] : i;
    if (L->c.shuffle) {
        Rng rng = rng_new(L->c.seed * 1000003u + (uint64_t)epoch);
        rng_shuffle(&rng, L->order, L->n);
    }
    for (int i = 0; i < L->depth; i++) L->slots[i].state = SLOT_FREE;
    L->epoch = epoch;
    L->batches = loader_batches(L);
    L->next_fill = L->next_take = first < L->batches ? first : L->batches;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    return L->batches;
}

Batch *loader_next(Loader *L) {
    pthread_mutex_lock(&L->mu);
    int k = L->next_take;
    Slot *s = k < L->batches ? &L->slots[k % L->depth] : NULL;
    if (s && L->c.workers == 0) {
        FT_CHECK(s->state == SLOT_FREE, "loader_next: batch %d is still held: release each batch before the next", s->b.number);
        L->next_fill++;
        fill(L, s, k);
    }
    while (s && L->c.workers > 0 && !(s->state == SLOT_READY && s->b.number == k)) pthread_cond_wait(&L->cv, &L->mu);
    if (s) { s->state = SLOT_TAKEN; L->next_take++; }
    pthread_mutex_unlock(&L->mu);
    return s ? &s->b : NULL;
}

void loader_release(Loader *L, Batch *b) {
    Slot *s = (Slot *)b;   /* b is the first member of its slot */
    if (s->full->storage->pinned) ft_synchronize(FT_CUDA);   /* a direct copy may still read it */
    pthread_mutex_lock(&L->mu);
    s->state = SLOT_FREE;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
}

void batch_to_device(const Batch *b, Tensor *x, Tensor *y) {
    FT_CHECK(x->dtype == FT_F32 && x->numel == b->images->numel && y->numel == b->n,
             "batch of %s into x %s and y %s", FT_SHAPE_STR(b->images->shape), FT_SHAPE_STR(x->shape), FT_SHAPE_STR(y->shape));
    Device dev = x->storage->device;
    if (dev == FT_CPU) ft_convert_(x, b->images, 1.0 / 255);
    else {   /* a quarter of the bytes cross the bus; the GPU scales them */
        Tensor *u = ft_tensor_new(FT_U8, b->images->shape, dev);
        ft_upload_(u, b->images);
        ft_convert_(x, u, 1.0 / 255);
        ft_tensor_free(u);
    }
    Tensor *lab = ft_tensor_view(b->labels, 0, SHAPE(b->n));
    ft_upload_(y, lab);
    ft_tensor_free(lab);
}
