#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "cache.h"
#include "cub.h"
#include "core/fileio.h"

_Static_assert(sizeof(CacheHeader) == 2160, "CacheHeader is written as it lies in memory: no padding");

bool cache_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static uint32_t crc_of(uint32_t crc, const void *p, size_t n) {
    while (n > 0) {   /* zlib takes at most 4 GiB per call */
        uInt k = n > (1u << 30) ? 1u << 30 : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p = (const char *)p + k;
        n -= k;
    }
    return crc;
}

/* The CRC32 of the header with meta_crc as 0, the names and the records. */
static uint32_t meta_crc(const CacheHeader *h, const void *names, const CacheRecord *rec) {
    CacheHeader z = *h;
    z.meta_crc = 0;
    uint32_t crc = crc_of(0, &z, sizeof z);
    crc = crc_of(crc, names, (size_t)h->num_classes * 96);
    return crc_of(crc, rec, (size_t)(h->n_train + h->n_test) * sizeof *rec);
}

/* CRC32 of each of n images into crc[] (all cores). */
static void image_crcs(const uint8_t *pixels, int64_t n, size_t per, uint32_t *crc) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) crc[i] = crc_of(0, pixels + i * per, per);
}

static int put_at(int fd, const void *p, size_t n, uint64_t off, const char *path) {
    for (size_t done = 0; done < n; ) {
        ssize_t k = pwrite(fd, (const char *)p + done, n - done, (off_t)(off + done));
        if (k <= 0) return ft_error("%s: write failed: %s", path, strerror(errno));
        done += (size_t)k;
    }
    return 0;
}

/* Decodes one split chunk by chunk, each written where it belongs; the images' CRCs go to
 * crc_plain[i] and crc_aug[i * copies + k]. */
static int write_split(const SourceList *s, const int *idx, int n, const DecodeOpts *o, int fd, uint64_t plain_off,
                       uint64_t aug_off, uint32_t *crc_plain, uint32_t *crc_aug, const char *path, Progress *p) {
    size_t per = (size_t)3 * o->size * o->size;
    int chunk = o->copies ? 64 : 512;
    uint8_t *plain = ft_xmalloc(chunk * per), *aug = o->copies ? ft_xmalloc((size_t)chunk * o->copies * per) : NULL;
    int rc = 0;
    for (int at = 0; rc == 0 && at < n; at += chunk) {
        int m = n - at < chunk ? n - at : chunk;
        rc = decode_items(s, idx + at, m, o, plain, aug, p);
        if (rc != 0) break;
        image_crcs(plain, m, per, crc_plain + at);
        rc = put_at(fd, plain, m * per, plain_off + at * per, path);
        if (rc == 0 && aug) {
            image_crcs(aug, (int64_t)m * o->copies, per, crc_aug + (int64_t)at * o->copies);
            rc = put_at(fd, aug, (size_t)m * o->copies * per, aug_off + (uint64_t)at * o->copies * per, path);
        }
    }
    free(plain);
    free(aug);
    return rc;
}

int cache_prepare(const SourceList *s, const DecodeOpts *o, const char *path) {
    int *train = ft_xmalloc((size_t)s->n * sizeof *train), *test = ft_xmalloc((size_t)s->n * sizeof *test);
    int nt = sources_split(s, true, train), ne = sources_split(s, false, test);
    size_t per = (size_t)3 * o->size * o->size;
    CacheHeader h = { .version = CACHE_VERSION, .size = (uint32_t)o->size, .channels = 3, .num_classes = (uint32_t)s->num_classes,
                      .n_train = (uint32_t)nt, .n_test = (uint32_t)ne, .copies = (uint32_t)o->copies, .crop = o->crop,
                      .keep_aspect = o->keep_aspect, .seed = o->seed, .created = (int64_t)time(NULL),
                      .source_crc = sources_fingerprint(s) };
    memcpy(h.magic, CACHE_MAGIC, 8);
    snprintf(h.kind, sizeof h.kind, "%s", s->kind);
    snprintf(h.root, sizeof h.root, "%s", s->root);
    snprintf(h.split_file, sizeof h.split_file, "%s", s->split_file);
    CacheRecord *rec = ft_xmalloc((size_t)(nt + ne + 1) * sizeof *rec);
    for (int k = 0; k < nt + ne; k++) {
        int i = k < nt ? train[k] : test[k - nt];
        rec[k] = (CacheRecord){ i + 1, s->items[i].label };
    }
    uint64_t meta = sizeof h + (uint64_t)s->num_classes * 96 + (uint64_t)(nt + ne) * sizeof *rec;
    int64_t images = (int64_t)nt * (1 + o->copies) + ne;
    h.pixel_offset = (meta + 4095) / 4096 * 4096;
    h.file_bytes = h.pixel_offset + (uint64_t)images * per;
    AtomicFile a;
    int rc = nt == 0 || ne == 0 ? ft_error("%s: no %s images", s->root, nt ? "test" : "training") : atomic_open(&a, path);
    if (rc == 0) {
        int fd = fileno(a.f);
        Progress p;
        progress_start(&p, "preparing", nt + ne, o->quiet);
        DecodeOpts test_opts = *o;
        test_opts.copies = 0;
        uint64_t aug_off = h.pixel_offset + (uint64_t)nt * per;
        int64_t test_at = (int64_t)nt * (1 + o->copies);   /* file order of the images */
        uint32_t *crc = ft_xmalloc((size_t)images * sizeof *crc);
        rc = write_split(s, train, nt, o, fd, h.pixel_offset, aug_off, crc, crc + nt, path, &p);
        if (rc == 0) rc = write_split(s, test, ne, &test_opts, fd, h.pixel_offset + test_at * per, 0, crc + test_at, NULL, path, &p);
        progress_finish(&p, NULL);
        if (rc == 0) {
            h.pixel_crc = crc_of(0, crc, (size_t)images * sizeof *crc);
            h.meta_crc = meta_crc(&h, s->class_names, rec);
            rc = put_at(fd, &h, sizeof h, 0, path);
        }
        if (rc == 0) rc = put_at(fd, s->class_names, (size_t)s->num_classes * 96, sizeof h, path);
        if (rc == 0) rc = put_at(fd, rec, (size_t)(nt + ne) * sizeof *rec, sizeof h + (uint64_t)s->num_classes * 96, path);
        free(crc);
        if (rc == 0) rc = atomic_close(&a, true);
        else {   /* keep the first error, not the removal's */
            char why[2048];
            snprintf(why, sizeof why, "%s", ft_last_error());
            atomic_close(&a, false);
            ft_error("%s", why);
        }
    }
    free(rec); free(train); free(test);
    return rc;
}

typedef struct { void *p; size_t n; } Mapping;
static void unmap(void *ctx) {
    Mapping *m = ctx;
    munmap(m->p, m->n);
    free(m);
}

/* A changed source directory makes the cache stale; a missing one is fine (the cache travels). */
static int check_source(const char *path, const CacheHeader *h) {
    struct stat sb;
    if (stat(h->root, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
    SourceList s;
    int rc = strcmp(h->kind, "cub") == 0 ? cub_sources(h->root, &s) : folder_sources(h->root, h->split_file[0] ? h->split_file : NULL, &s);
    if (rc != 0) return ft_error("%s is stale: its source %s no longer reads (%s); run finch prepare again", path, h->root, ft_last_error());
    uint32_t now = sources_fingerprint(&s);
    sources_free(&s);
    if (now != h->source_crc)
        return ft_error("%s is stale: %s has changed since it was prepared (images added, removed, relabelled or "
                        "modified); run finch prepare again", path, h->root);
    return 0;
}

static void make_split(Tensor *all, const CacheHeader *h, const char (*names)[96], const CacheRecord *rec, int64_t first,
                       int n, int copies, const char *name, Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    if (n == 0) return;
    int s = (int)h->size;
    int64_t per = 3LL * s * s;
    ds->images = ft_tensor_view(all, first * per, SHAPE(n, 3, s, s));
    ds->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int k = 0; k < n; k++) ft_i32(ds->labels)[k] = rec[k / copies].label;
    ds->num_classes = (int)h->num_classes;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    dataset_set_names(ds, names);
}

int cache_open(const char *path, Splits *out, CacheHeader *info) {
    memset(out, 0, sizeof *out);
    CacheHeader h;
    int fd = open_regular(path, NULL);
    if (fd < 0) return -1;
    struct stat sb;
    bool whole = fstat(fd, &sb) == 0 && pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h;
    if (!whole || memcmp(h.magic, CACHE_MAGIC, 8) != 0) {
        close(fd);
        return ft_error("%s is not a finch dataset cache (no %s header); make one with finch prepare", path, "FINCHDS");
    }
    size_t per = (size_t)3 * h.size * h.size;
    uint64_t images = (uint64_t)h.n_train * (1 + (uint64_t)h.copies) + h.n_test;
    int rc = 0;
    if (h.version != CACHE_VERSION)
        rc = ft_error("%s was made by cache format %u; this finch reads format %d: run finch prepare again", path, h.version, CACHE_VERSION);
    else if ((uint64_t)sb.st_size != h.file_bytes)
        rc = ft_error("%s is truncated or damaged: %lld bytes, its header says %llu", path, (long long)sb.st_size, (unsigned long long)h.file_bytes);
    else if (h.channels != 3 || h.size == 0 || h.size > 8192 || h.num_classes == 0 || h.num_classes > DATASET_MAX_CLASSES * 100 ||
             h.pixel_offset % 4096 || h.kind[15] || h.root[1023] || h.split_file[1023] ||
             h.pixel_offset < sizeof h + (uint64_t)h.num_classes * 96 + (uint64_t)(h.n_train + h.n_test) * sizeof(CacheRecord) ||
             h.copies > CACHE_MAX_COPIES || images > INT32_MAX || h.file_bytes != h.pixel_offset + images * per)
        rc = ft_error("%s: inconsistent header (sizes do not add up)", path);
    else if (h.n_train == 0 || h.n_test == 0)
        rc = ft_error("%s has no %s images; a cache holds both splits (finch prepare writes them)", path, h.n_train ? "test" : "training");
    uint8_t *map = MAP_FAILED;
    if (rc == 0 && (map = mmap(NULL, h.file_bytes, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
        rc = ft_error("%s: cannot map: %s", path, strerror(errno));
    close(fd);
    if (rc != 0) return rc;
    const char (*names)[96] = (const char (*)[96])(map + sizeof h);
    const CacheRecord *rec = (const CacheRecord *)(map + sizeof h + (size_t)h.num_classes * 96);
    if (meta_crc(&h, names, rec) != h.meta_crc) rc = ft_error("%s: header checksum mismatch (the file is damaged)", path);
    else {
        uint32_t *crc = ft_xmalloc((size_t)images * sizeof *crc);
        image_crcs(map + h.pixel_offset, (int64_t)images, per, crc);
        if (crc_of(0, crc, (size_t)images * sizeof *crc) != h.pixel_crc) rc = ft_error("%s: pixel checksum mismatch (the file is damaged)", path);
        free(crc);
    }
    for (uint32_t k = 0; rc == 0 && k < h.n_train + h.n_test; k++)
        if (rec[k].label < 0 || (uint32_t)rec[k].label >= h.num_classes) rc = ft_error("%s: record %u has label %d of %u classes", path, k, rec[k].label, h.num_classes);
    if (rc == 0) rc = check_source(path, &h);
    if (rc != 0) { munmap(map, h.file_bytes); return rc; }
    Mapping *m = ft_xmalloc(sizeof *m);
    *m = (Mapping){ map, h.file_bytes };
    Tensor *all = ft_tensor_wrap(FT_U8, SHAPE((int)images, (int)per), map + h.pixel_offset, unmap, m);
    char name[64];
    snprintf(name, sizeof name, "%s/train", h.kind);
    make_split(all, &h, names, rec, 0, (int)h.n_train, 1, name, &out->train);
    snprintf(name, sizeof name, "%s/train+augmented", h.kind);
    make_split(all, &h, names, rec, h.n_train, (int)(h.n_train * h.copies), (int)(h.copies ? h.copies : 1), name, &out->augmented);
    snprintf(name, sizeof name, "%s/test", h.kind);
    make_split(all, &h, names, rec + h.n_train, (int64_t)h.n_train * (1 + h.copies), (int)h.n_test, 1, name, &out->test);
    ft_tensor_free(all);
    if (info) *info = h;
    return 0;
}
