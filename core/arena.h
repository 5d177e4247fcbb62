/* Arena: bump allocation for everything one step creates (op outputs, tape nodes, gradients of
 * intermediates), released in one go by arena_reset(). After a reset the arena keeps one block
 * as large as the whole previous step needed, so a warm training loop allocates nothing. */
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
    size_t used, peak;    /* bytes handed out since the last reset, and the most ever */
    ArenaBlock *meta;     /* host memory for Tensor/Node/Storage structs (always on the CPU) */
};

Arena *arena_new(Device dev);
void arena_free(Arena *a);
void arena_reset(Arena *a);
/* Device memory for tensor data, 256-byte aligned. */
void *arena_alloc_data(Arena *a, size_t bytes);
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
