#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "safetensors.h"
#include "error.h"
#include "fileio.h"

#define MAX_HEADER (100u << 20)

static int read_file(const char *path, unsigned char **buf, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return ft_error("%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) { fclose(f); return ft_error("%s: cannot determine its size", path); }
    *buf = ft_xmalloc((size_t)n + 1);
    size_t got = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) { free(*buf); return ft_error("%s: read %zu of %ld bytes", path, got, n); }
    *size = (size_t)n;
    return 0;
}

static int parse_entry(SafeTensors *st, const cJSON *item, StEntry *e) {
    const char *path = st->path;
    size_t data_size = st->size - st->data_start;
    snprintf(e->name, sizeof e->name, "%s", item->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return ft_error("%s: tensor '%s' lacks a dtype string, a shape list or two data_offsets", path, e->name);
    snprintf(e->dtype, sizeof e->dtype, "%s", dt->valuestring);
    size_t esize = strcmp(e->dtype, "F32") == 0 || strcmp(e->dtype, "I32") == 0 ? 4
                 : strcmp(e->dtype, "F16") == 0 || strcmp(e->dtype, "BF16") == 0 ? 2 : 0;
    if (!esize) return ft_error("%s: tensor '%s' has dtype %s (supported: F32, I32, F16, BF16)", path, e->name, e->dtype);
    e->shape.ndim = cJSON_GetArraySize(shape);
    if (e->shape.ndim > FT_MAX_DIMS) return ft_error("%s: tensor '%s' has %d dims (at most %d)", path, e->name, e->shape.ndim, FT_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < e->shape.ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 2147483647.0 || d->valuedouble != (int)d->valuedouble)
            return ft_error("%s: tensor '%s' has a bad size in dimension %d", path, e->name, i);
        e->shape.d[i] = (int)d->valuedouble;
        numel *= (size_t)e->shape.d[i];
    }
    double b = cJSON_GetArrayItem(offs, 0)->valuedouble, en = cJSON_GetArrayItem(offs, 1)->valuedouble;
    if (!(b >= 0 && en >= b && en <= (double)data_size))
        return ft_error("%s: tensor '%s' has data_offsets [%.0f, %.0f] outside the %zu bytes of data", path, e->name, b, en, data_size);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    if (e->end - e->begin != numel * esize)
        return ft_error("%s: tensor '%s' of shape %s and dtype %s needs %zu bytes, its offsets span %zu", path,
                        e->name, FT_SHAPE_STR(e->shape), e->dtype, numel * esize, e->end - e->begin);
    return 0;
}

static int parse(SafeTensors *st) {
    const char *path = st->path;
    if (st->size < 8) return ft_error("%s: %zu bytes is too short for a safetensors file", path, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | st->file[i];
    if (hlen > MAX_HEADER || hlen > st->size - 8)
        return ft_error("%s: header length %llu does not fit in the file of %zu bytes (truncated?)", path,
                        (unsigned long long)hlen, st->size);
    st->data_start = 8 + (size_t)hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)st->file + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return ft_error("%s: the header is not a JSON object", path); }
    int count = cJSON_GetArraySize(root), rc = 0;
    st->entries = ft_xcalloc((size_t)count, sizeof *st->entries);
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            int m = cJSON_GetArraySize(item);
            st->meta_keys = ft_xcalloc((size_t)m, sizeof(char *));
            st->meta_values = ft_xcalloc((size_t)m, sizeof(char *));
            const cJSON *kv;
            cJSON_ArrayForEach(kv, item) {
                if (!cJSON_IsString(kv)) { rc = ft_error("%s: metadata '%s' is not a string", path, kv->string); break; }
                st->meta_keys[st->n_meta] = strdup(kv->string);
                st->meta_values[st->n_meta++] = strdup(kv->valuestring);
            }
        } else if (rc == 0) {
            rc = parse_entry(st, item, &st->entries[st->n]);
            if (rc == 0) st->n++;
        }
        if (rc) break;
    }
    cJSON_Delete(root);
    /* no two tensors may share bytes */
    for (int i = 0; rc == 0 && i < st->n; i++)
        for (int j = i + 1; j < st->n; j++) {
            const StEntry *a = &st->entries[i], *b = &st->entries[j];
            if (a->begin < b->end && b->begin < a->end && a->end > a->begin && b->end > b->begin) {
                rc = ft_error("%s: tensors '%s' and '%s' overlap in the data section", path, a->name, b->name);
                break;
            }
        }
    return rc;
}

int st_open(const char *path, SafeTensors *st) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", path);
    if (read_file(path, &st->file, &st->size) != 0) return -1;
    if (parse(st) != 0) { st_close(st); return -1; }
    return 0;
}

void st_close(SafeTensors *st) {
    free(st->file);
    free(st->entries);
    for (int i = 0; i < st->n_meta; i++) { free(st->meta_keys[i]); free(st->meta_values[i]); }
    free(st->meta_keys);
    free(st->meta_values);
    memset(st, 0, sizeof *st);
}

const StEntry *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n; i++) if (strcmp(st->entries[i].name, name) == 0) return &st->entries[i];
    return NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++) if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

int st_read_into(const SafeTensors *st, const StEntry *e, Tensor *t) {
    DType dt = strcmp(e->dtype, "F32") == 0 ? FT_F32 : FT_I32;
    if (strcmp(e->dtype, "F32") != 0 && strcmp(e->dtype, "I32") != 0)
        return ft_error("%s: tensor '%s' is %s; this build reads F32 and I32 only", st->path, e->name, e->dtype);
    if ((int64_t)((e->end - e->begin) / 4) != t->numel || t->dtype != dt)
        return ft_error("%s: tensor '%s' holds %zu %s values, expected %lld %s", st->path, e->name,
                        (e->end - e->begin) / 4, e->dtype, (long long)t->numel, ft_dtype_name(t->dtype));
    Tensor *h = ft_tensor_new(dt, SHAPE((int)t->numel), FT_CPU);
    memcpy(ft_ptr(h), st->file + st->data_start + e->begin, e->end - e->begin);   /* little-endian host */
    ft_copy_(t, h);
    ft_tensor_free(h);
    return 0;
}

int st_write(const char *path, int n, const char *const *names, Tensor *const *tensors,
             int n_meta, const char *const *meta_keys, const char *const *meta_values) {
    cJSON *root = cJSON_CreateObject();
    if (n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(meta, meta_keys[i], meta_values[i]);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        FT_CHECK(tensors[i]->dtype == FT_F32, "st_write: %s is %s (float32 only)", names[i], ft_dtype_name(tensors[i]->dtype));
        cJSON *e = cJSON_AddObjectToObject(root, names[i]);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < tensors[i]->shape.ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber(tensors[i]->shape.d[d]));
        size_t bytes = (size_t)tensors[i]->numel * 4;
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        off += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;   /* data starts 8-byte aligned */

    AtomicFile a;
    if (atomic_open(&a, path) != 0) { free(json); return -1; }
    FILE *f = a.f;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(json, 1, jlen, f) == jlen;
    for (size_t i = jlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    free(json);
    for (int i = 0; ok && i < n; i++) {
        Tensor *h = ft_tensor_new(FT_F32, tensors[i]->shape, FT_CPU);
        ft_copy_(h, tensors[i]);
        ok = fwrite(ft_f32(h), 4, (size_t)h->numel, f) == (size_t)h->numel;
        ft_tensor_free(h);
    }
    return atomic_close(&a, ok);
}
