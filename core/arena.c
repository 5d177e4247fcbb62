#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "backend.h"
#include "error.h"

/* Under AddressSanitizer a handed-back chunk is poisoned until it is handed out again, so code
 * that still reads a released gradient fails loudly instead of reading the next one's data. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(a, p, n) do { if ((a)->device == FT_CPU) ASAN_POISON_MEMORY_REGION(p, n); } while (0)
#define UNPOISON(a, p, n) do { if ((a)->device == FT_CPU) ASAN_UNPOISON_MEMORY_REGION(p, n); } while (0)
#else
#define POISON(a, p, n) ((void)0)
#define UNPOISON(a, p, n) ((void)0)
#endif

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

/* (handed-back chunks and the space above a lowered top may be poisoned) */
static void unpoison_blocks(Arena *a) {
    for (ArenaBlock *b = a->blocks; b; b = b->next) UNPOISON(a, b->base, b->size);
    (void)a;
}

Arena *arena_new(Device dev) {
    Arena *a = ft_xcalloc(1, sizeof *a);
    a->device = dev;
    return a;
}

void arena_free(Arena *a) {
    if (!a) return;
    unpoison_blocks(a);
    blocks_free(a->device, a->blocks, false);
    blocks_free(a->device, a->meta, true);
    free(a->spare);
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
    unpoison_blocks(a);
    a->blocks = consolidate(a->device, a->blocks, false);
    a->meta = consolidate(a->device, a->meta, true);
    a->used = 0;
    a->n_spare = 0;
}

static size_t rounded(size_t bytes, size_t align) { return (bytes + align - 1) / align * align; }

static void *bump(Arena *a, ArenaBlock **head, size_t bytes, size_t align, bool host) {
    bytes = rounded(bytes, align);
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
    size_t need = rounded(bytes, DATA_ALIGN);
    int best = -1;   /* the smallest spare chunk that fits */
    for (int i = 0; i < a->n_spare; i++)
        if (a->spare[i].bytes >= need && (best < 0 || a->spare[i].bytes < a->spare[best].bytes)) best = i;
    void *p;
    if (best >= 0) {   /* its tail past `need` stays spare */
        p = a->spare[best].p;
        UNPOISON(a, p, need);
        a->spare[best].p += need;
        a->spare[best].bytes -= need;
        if (a->spare[best].bytes == 0) a->spare[best] = a->spare[--a->n_spare];
    } else {
        p = bump(a, &a->blocks, need, DATA_ALIGN, false);
        UNPOISON(a, p, need);
    }
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

static ArenaBlock *block_of(const Arena *a, const char *p) {
    for (ArenaBlock *b = a->blocks; b; b = b->next)
        if (p >= b->base && p < b->base + b->size) return b;
    return NULL;
}

/* The chunk is merged with handed-back neighbours in its block, and one that reaches the top of
 * the block being bumped lowers its top instead: without this, a step that frees a large
 * activation and then asks for several smaller ones grows the block past what it ever holds at
 * once (VGG11-BN's step by a quarter of its activations). */
void arena_release_data(Arena *a, void *p, size_t bytes) {
    size_t n = rounded(bytes, DATA_ALIGN);
    POISON(a, p, n);
    a->used -= n;
    char *lo = p, *hi = lo + n;
    ArenaBlock *b = block_of(a, lo);
    for (int i = 0; i < a->n_spare; ) {
        struct ArenaChunk *c = &a->spare[i];
        bool below = c->p + c->bytes == lo, above = c->p == hi;
        if ((below || above) && block_of(a, c->p) == b) {
            if (below) lo = c->p; else hi += c->bytes;
            *c = a->spare[--a->n_spare];
        } else {
            i++;
        }
    }
    if (b && b == a->blocks && hi == b->base + b->used) { b->used = (size_t)(lo - b->base); return; }
    if (a->n_spare == a->spare_cap) {
        a->spare_cap = a->spare_cap ? 2 * a->spare_cap : 64;
        a->spare = ft_xrealloc(a->spare, (size_t)a->spare_cap * sizeof *a->spare);
    }
    a->spare[a->n_spare++] = (struct ArenaChunk){ lo, (size_t)(hi - lo) };
}

void arena_poison(Arena *a) {
    unpoison_blocks(a);   /* (ASan's poison, not this one's) */
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
