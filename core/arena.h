/* Arena: bump allocation for everything one step creates (op outputs, tape nodes, gradients of
 * intermediates), released in one go by arena_reset(). After a reset the arena keeps one block
 * as large as the whole previous step needed, so a warm training loop allocates nothing.
 * A data allocation can also be handed back before the reset (arena_release_data: the backward
 * does it with each intermediate gradient once its node is done); later allocations reuse it. */
#ifndef FINCH_ARENA_H
#define FINCH_ARENA_H

#include <stddef.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ArenaBlock ArenaBlock;

struct Arena {
    Device device;        /* where the data blocks live */
    ArenaBlock *blocks;   /* newest first */
    size_t used, peak;    /* bytes in use (handed out, not handed back), and the most ever */
    ArenaBlock *meta;     /* host memory for Tensor/Node/Storage structs (always on the CPU) */
    struct ArenaChunk { char *p; size_t bytes; } *spare;   /* handed back, reusable until the reset */
    int n_spare, spare_cap;
};

Arena *arena_new(Device dev);
void arena_free(Arena *a);
void arena_reset(Arena *a);
/* Device memory for tensor data, 256-byte aligned: the smallest handed-back chunk that fits,
 * else new. */
void *arena_alloc_data(Arena *a, size_t bytes);
/* Hand back p, `bytes` long (as asked of arena_alloc_data): reusable by later allocations of
 * this step. Nothing may use it afterwards. */
void arena_release_data(Arena *a, void *p, size_t bytes);
int arena_block_count(const Arena *a);   /* data blocks held now */
/* Fill every data block with 0xFF bytes (NaN as floats): tests run an op twice, poisoning in
 * between, so an output element a kernel forgets to write shows up. */
void arena_poison(Arena *a);
/* Zero-filled host memory for bookkeeping structs. */
void *arena_alloc_meta(Arena *a, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
