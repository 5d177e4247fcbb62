#define _GNU_SOURCE   /* qsort_r */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "safetensors.h"
#include "error.h"
#include "fileio.h"

#define MAX_HEADER (100u << 20)

/* The whole file, memory-mapped read-only: only the pages of the tensors read are touched. */
static int map_file(const char *path, unsigned char **buf, size_t *size) {
    int fd = open_regular(path, size);
    if (fd < 0) return -1;
    *buf = NULL;
    if (*size > 0) {
        void *p = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) { close(fd); return ft_error("%s: cannot map: %s", path, strerror(errno)); }
        *buf = p;
    }
    close(fd);
    return 0;
}

/* bytes per element of the dtypes finch reads; 0 for any other */
static size_t dtype_bytes(const char *dt) {
    static const struct { const char *name; size_t bytes; } known[] = {
        { "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) if (strcmp(dt, known[i].name) == 0) return known[i].bytes;
    return 0;
}

static int parse_entry(SafeTensors *st, const cJSON *item, StEntry *e) {
    const char *path = st->path;
    size_t data_size = st->size - st->data_start;
    if (strlen(item->string) >= sizeof e->name)
        return ft_error("%s: a tensor name of %zu characters (at most %zu): '%.60s...'", path, strlen(item->string), sizeof e->name - 1, item->string);
    snprintf(e->name, sizeof e->name, "%s", item->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return ft_error("%s: tensor '%s' lacks a dtype string, a shape list or two data_offsets", path, e->name);
    snprintf(e->dtype, sizeof e->dtype, "%s", dt->valuestring);
    size_t esize = dtype_bytes(e->dtype);
    if (!esize) return ft_error("%s: tensor '%s' has dtype %s (supported: F64, F32, F16, BF16, I64, I32)", path, e->name, e->dtype);
    e->shape.ndim = cJSON_GetArraySize(shape);
    if (e->shape.ndim > FT_MAX_DIMS) return ft_error("%s: tensor '%s' has %d dims (at most %d)", path, e->name, e->shape.ndim, FT_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < e->shape.ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 2147483647.0 || d->valuedouble != (int)d->valuedouble)
            return ft_error("%s: tensor '%s' has a bad size in dimension %d", path, e->name, i);
        e->shape.d[i] = (int)d->valuedouble;
        numel *= (size_t)e->shape.d[i];
        if (numel > data_size) numel = data_size + 1;   /* cannot fit either way; no overflow */
    }
    const cJSON *ob = cJSON_GetArrayItem(offs, 0), *oe = cJSON_GetArrayItem(offs, 1);
    double b = cJSON_IsNumber(ob) ? ob->valuedouble : -1, en = cJSON_IsNumber(oe) ? oe->valuedouble : -1;
    if (b != floor(b) || en != floor(en) || !(b >= 0 && en >= b && en <= (double)data_size))
        return ft_error("%s: tensor '%s' has data_offsets [%.0f, %.0f] outside the %zu bytes of data", path, e->name, b, en, data_size);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    if (e->end - e->begin != numel * esize)
        return ft_error("%s: tensor '%s' of shape %s and dtype %s needs %zu bytes, its offsets span %zu", path,
                        e->name, FT_SHAPE_STR(e->shape), e->dtype, numel * esize, e->end - e->begin);
    return 0;
}

static int by_name(const void *a, const void *b, void *entries) {
    const StEntry *e = entries;
    return strcmp(e[*(const int *)a].name, e[*(const int *)b].name);
}
static int by_begin(const void *a, const void *b, void *entries) {
    const StEntry *x = (const StEntry *)entries + *(const int *)a, *y = (const StEntry *)entries + *(const int *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* No name twice and no two tensors sharing bytes (sorted, so a header of a million entries is
 * checked in n log n); leaves st->by_name for st_find. */
static int check_entries(SafeTensors *st) {
    int n = st->n, rc = 0, *order = ft_xmalloc((size_t)(n ? n : 1) * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_begin, st->entries);
    const StEntry *last = NULL;   /* the non-empty tensor reaching furthest so far */
    for (int i = 0; rc == 0 && i < n; i++) {
        const StEntry *e = &st->entries[order[i]];
        if (e->end == e->begin) continue;
        if (last && e->begin < last->end) rc = ft_error("%s: tensors '%s' and '%s' overlap in the data section", st->path, last->name, e->name);
        if (!last || e->end > last->end) last = e;
    }
    qsort_r(order, (size_t)n, sizeof *order, by_name, st->entries);
    for (int i = 1; rc == 0 && i < n; i++)
        if (strcmp(st->entries[order[i]].name, st->entries[order[i - 1]].name) == 0)
            rc = ft_error("%s: the header names tensor '%s' twice", st->path, st->entries[order[i]].name);
    st->by_name = order;
    return rc;
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
            if (st->meta_keys) { rc = ft_error("%s: the header has __metadata__ twice", path); break; }
            if (!cJSON_IsObject(item)) { rc = ft_error("%s: __metadata__ is not an object of strings", path); break; }
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
    if (rc == 0) rc = check_entries(st);
    return rc;
}

int st_open(const char *path, SafeTensors *st) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", path);
    if (map_file(path, &st->file, &st->size) != 0) return -1;
    st->mapped = true;
    if (parse(st) != 0) { st_close(st); return -1; }
    return 0;
}

int st_open_memory(const void *data, size_t n, const char *name, SafeTensors *st) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", name);
    st->file = (unsigned char *)data;
    st->size = n;
    if (parse(st) != 0) { st_close(st); return -1; }
    return 0;
}

void st_close(SafeTensors *st) {
    if (st->file && st->mapped) munmap(st->file, st->size);
    free(st->entries);
    free(st->by_name);
    for (int i = 0; i < st->n_meta; i++) { free(st->meta_keys[i]); free(st->meta_values[i]); }
    free(st->meta_keys);
    free(st->meta_values);
    memset(st, 0, sizeof *st);
}

const StEntry *st_find(const SafeTensors *st, const char *name) {
    for (int lo = 0, hi = st->n - 1; lo <= hi; ) {
        int mid = lo + (hi - lo) / 2, c = strcmp(st->entries[st->by_name[mid]].name, name);
        if (c == 0) return &st->entries[st->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++) if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

/* IEEE half -> float, subnormals, infinities and NaN included */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | man << 13;
    else if (exp != 0) bits = sign | (exp + 112) << 23 | man << 13;
    else if (man == 0) bits = sign;
    else {   /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* element i of a little-endian entry as double */
static double entry_value(const char *dt, const unsigned char *p, int64_t i) {
    if (strcmp(dt, "F32") == 0) { float v; memcpy(&v, p + 4 * i, 4); return v; }
    if (strcmp(dt, "F64") == 0) { double v; memcpy(&v, p + 8 * i, 8); return v; }
    if (strcmp(dt, "I32") == 0) { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    if (strcmp(dt, "I64") == 0) { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    if (strcmp(dt, "F16") == 0) return half_to_float(h);
    uint32_t bits = (uint32_t)h << 16;   /* BF16: the top half of a float */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int st_read_into(const SafeTensors *st, const StEntry *e, Tensor *t) {
    int64_t n = (int64_t)((e->end - e->begin) / dtype_bytes(e->dtype));
    bool to_float = t->dtype == FT_F32 || t->dtype == FT_F64, from_float = e->dtype[0] != 'I';
    if (n != t->numel || to_float != from_float || t->dtype == FT_U8)
        return ft_error("%s: tensor '%s' holds %lld %s values, expected %lld %s", st->path, e->name, (long long)n,
                        e->dtype, (long long)t->numel, ft_dtype_name(t->dtype));
    const unsigned char *src = st->file + st->data_start + e->begin;
    Tensor *h = ft_tensor_new(t->dtype, t->shape, FT_CPU);
    if ((t->dtype == FT_F32 && strcmp(e->dtype, "F32") == 0) || (t->dtype == FT_I32 && strcmp(e->dtype, "I32") == 0) ||
        (t->dtype == FT_F64 && strcmp(e->dtype, "F64") == 0)) {
        memcpy(ft_ptr(h), src, e->end - e->begin);   /* little-endian host */
    } else {
        for (int64_t i = 0; i < n; i++) {
            double v = entry_value(e->dtype, src, i);
            if (t->dtype == FT_I32 && (v < INT32_MIN || v > INT32_MAX)) {
                ft_tensor_free(h);
                return ft_error("%s: tensor '%s' element %lld is %.0f, outside int32", st->path, e->name, (long long)i, v);
            }
            ft_set(h, i, v);
        }
    }
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
        DType dt = tensors[i]->dtype;
        FT_CHECK(dt == FT_F32 || dt == FT_I32, "st_write: %s is %s (float32 or int32 only)", names[i], ft_dtype_name(dt));
        cJSON *e = cJSON_AddObjectToObject(root, names[i]);
        cJSON_AddStringToObject(e, "dtype", dt == FT_F32 ? "F32" : "I32");
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
        Tensor *h = ft_tensor_new(tensors[i]->dtype, tensors[i]->shape, FT_CPU);
        ft_copy_(h, tensors[i]);
        ok = fwrite(ft_ptr(h), 4, (size_t)h->numel, f) == (size_t)h->numel;
        ft_tensor_free(h);
    }
    return atomic_close(&a, ok);
}
