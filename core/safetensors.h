/* safetensors files (github.com/huggingface/safetensors): an 8-byte little-endian header length,
 * a JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the raw little-endian data. finch writes F32 and I32 and reads F64, F32, F16, BF16 (into float
 * tensors) and I64, I32 (into int32 tensors). The file is memory-mapped; every offset and size is
 * checked against it before anything is read. */
#ifndef FINCH_SAFETENSORS_H
#define FINCH_SAFETENSORS_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char name[128];
    char dtype[8];
    Shape shape;
    size_t begin, end;     /* byte range within the data section */
} StEntry;

typedef struct {
    char path[512];
    unsigned char *file;   /* the whole file, memory-mapped (or the caller's buffer) */
    bool mapped;
    size_t size, data_start;
    StEntry *entries;      /* in the header's order */
    int n;
    int *by_name;          /* entries' indices sorted by name */
    char **meta_keys, **meta_values;
    int n_meta;
} SafeTensors;

/* 0 on success; -1 with ft_last_error() naming the file and what is wrong. */
int st_open(const char *path, SafeTensors *st);
/* The same over a buffer the caller keeps alive until st_close (name: for messages). */
int st_open_memory(const void *data, size_t n, const char *name, SafeTensors *st);
void st_close(SafeTensors *st);
const StEntry *st_find(const SafeTensors *st, const char *name);
const char *st_meta(const SafeTensors *st, const char *key);   /* NULL if absent */
/* Copy an entry into t (same numel, any device), converting floats to t's float dtype and
 * integers to int32 (range-checked). */
int st_read_into(const SafeTensors *st, const StEntry *e, Tensor *t);

/* Write tensors (float32 or int32, any device) and string metadata atomically: a temporary file, fsync,
 * rename. */
int st_write(const char *path, int n, const char *const *names, Tensor *const *tensors,
             int n_meta, const char *const *meta_keys, const char *const *meta_values);

#ifdef __cplusplus
}
#endif

#endif
