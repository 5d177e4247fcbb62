#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "backend.h"
#include "error.h"

struct ArenaBlock {
    ArenaBlock *next;
    char *base;          /* data (device memory for data blocks, host for meta blocks) */
    size_t size, used;
};

#define DATA_ALIGN 256
#define META_ALIGN 16
#define MIN_BLOCK (1u << 20)

static ArenaBlock *block_new(Device dev, size_t size, bool host) {
    ArenaBlock *b = ft_xcalloc(1, sizeof *b);
    b->size = size;
    b->base = host ? ft_xmalloc(size) : ft_backend(dev)->alloc(size);
    return b;
}

static void blocks_free(Device dev, ArenaBlock *b, bool host) {
    while (b) {
        ArenaBlock *next = b->next;
        if (host) free(b->base); else ft_backend(dev)->free(b->base);
        free(b);
        b = next;
    }
}

Arena *arena_new(Device dev) {
    Arena *a = ft_xcalloc(1, sizeof *a);
    a->device = dev;
    return a;
}

void arena_free(Arena *a) {
    if (!a) return;
    blocks_free(a->device, a->blocks, false);
    blocks_free(a->device, a->meta, true);
    free(a);
}

static size_t total_size(const ArenaBlock *b) {
    size_t s = 0;
    for (; b; b = b->next) s += b->size;
    return s;
}

/* Keep a single block big enough for everything the last step used. */
static ArenaBlock *consolidate(Device dev, ArenaBlock *b, bool host) {
    if (!b) return NULL;
    if (!b->next) { b->used = 0; return b; }
    size_t total = total_size(b);
    blocks_free(dev, b, host);
    return block_new(dev, total, host);
}

void arena_reset(Arena *a) {
    a->blocks = consolidate(a->device, a->blocks, false);
    a->meta = consolidate(a->device, a->meta, true);
    a->used = 0;
}

static void *bump(Arena *a, ArenaBlock **head, size_t bytes, size_t align, bool host) {
    bytes = (bytes + align - 1) / align * align;
    ArenaBlock *b = *head;
    if (!b || b->used + bytes > b->size) {
        size_t want = b ? 2 * b->size : MIN_BLOCK;
        if (want < bytes) want = bytes;
        ArenaBlock *nb = block_new(a->device, want, host);
        nb->next = b;
        *head = b = nb;
    }
    void *p = b->base + b->used;
    b->used += bytes;
    return p;
}

void *arena_alloc_data(Arena *a, size_t bytes) {
    void *p = bump(a, &a->blocks, bytes, DATA_ALIGN, false);
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void arena_poison(Arena *a) {
    for (ArenaBlock *b = a->blocks; b; b = b->next) ft_backend(a->device)->fill(FT_U8, (int64_t)b->size, 255, b->base);
}

int arena_block_count(const Arena *a) {
    int n = 0;
    for (const ArenaBlock *b = a->blocks; b; b = b->next) n++;
    return n;
}

void *arena_alloc_meta(Arena *a, size_t bytes) {
    void *p = bump(a, &a->meta, bytes, META_ALIGN, true);
    memset(p, 0, bytes);
    return p;
}
