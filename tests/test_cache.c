/* The prepared cache: it holds exactly what decoding gives, and refuses a foreign, truncated,
 * damaged, old or stale file with the reason; a failed prepare leaves nothing behind. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "test.h"
#include "core/fileio.h"
#include "data/cache.h"
#include "data/cub.h"
#include "data/image.h"

const char *make_cub(const char *name);   /* test_cub.c */

static bool same(const Dataset *a, const Dataset *b) {
    return a->images && b->images && ft_shape_eq(a->images->shape, b->images->shape) &&
           memcmp(ft_u8(a->images), ft_u8(b->images), (size_t)a->images->numel) == 0 &&
           memcmp(ft_i32(a->labels), ft_i32(b->labels), (size_t)a->labels->numel * 4) == 0;
}

static char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    char *p = malloc((size_t)*n);
    *n = (long)fread(p, 1, (size_t)*n, f);
    fclose(f);
    return p;
}

/* cache_open refuses path, with an error containing needle */
static bool refused(const char *path, const char *needle) {
    Splits s;
    int rc = cache_open(path, &s, NULL);
    if (rc == 0) splits_free(&s);
    bool ok = rc != 0 && strstr(ft_last_error(), needle);
    if (!ok) printf("    expected an error containing \"%s\", got: %s\n", needle, rc ? ft_last_error() : "success");
    return ok;
}

TEST(cache_round_trip_holds_what_decoding_gives) {
    const char *dir = make_cub("cache_src");
    SourceList src;
    CHECK(cub_sources(dir, &src) == 0, "%s", ft_last_error());
    DecodeOpts o = { .size = 12, .crop = true, .copies = 3, .seed = 4, .quiet = true };
    Splits mem, disk;
    CHECK(decode_splits(&src, &o, &mem) == 0, "%s", ft_last_error());
    char *path = test_path("cub.fds");
    CHECK(cache_prepare(&src, &o, path) == 0, "%s", ft_last_error());
    CacheHeader h;
    CHECK(cache_open(path, &disk, &h) == 0, "%s", ft_last_error());
    CHECK(h.n_train == 3 && h.n_test == 3 && h.copies == 3 && h.size == 12 && h.crop && strcmp(h.kind, "cub") == 0,
          "header: %u train, %u test, %u copies, size %u", h.n_train, h.n_test, h.copies, h.size);
    CHECK(same(&mem.train, &disk.train) && same(&mem.test, &disk.test) && same(&mem.augmented, &disk.augmented),
          "the cache differs from decoding in memory");
    CHECK(dataset_size(&disk.augmented) == 9 && ft_i32(disk.augmented.labels)[5] == 1, "3 copies of each training image, labelled");
    CHECK(strcmp(disk.test.class_names[1], "002.B") == 0 && disk.test.num_classes == 3, "class names from the cache");
    const uint8_t *b1 = ft_u8(disk.train.images) + 432, *copies = ft_u8(disk.augmented.images) + 3 * 432;   /* the gradient */
    CHECK(memcmp(copies, b1, 432) || memcmp(copies + 432, b1, 432) || memcmp(copies + 864, b1, 432), "no copy was augmented");
    splits_free(&disk);
    splits_free(&mem);
    sources_free(&src);
    char moved[600];
    snprintf(moved, sizeof moved, "%s.moved", dir);
    CHECK(rename(dir, moved) == 0, "rename the source");
    CHECK(cache_open(path, &disk, NULL) == 0, "a cache whose source is gone still opens: %s", ft_last_error());
    splits_free(&disk);
    rename(moved, dir);
}

TEST(cache_refuses_foreign_damaged_old_and_stale_files) {
    const char *dir = make_cub("cache_bad");
    SourceList src;
    CHECK(cub_sources(dir, &src) == 0, "%s", ft_last_error());
    DecodeOpts o = { .size = 8, .crop = true, .quiet = true };
    char *path = test_path("bad.fds"), *copy = test_path("copy.fds");
    CHECK(cache_prepare(&src, &o, path) == 0, "%s", ft_last_error());
    long n;
    char *bytes = slurp(path, &n);
    write_file_atomic(copy, "P6\n8 8\n255\n", 11);
    CHECK(refused(copy, "is not a finch dataset cache"), "a foreign file");
    write_file_atomic(copy, bytes, (size_t)n - 100);
    CHECK(refused(copy, "is truncated or damaged"), "a truncated cache");
    bytes[n - 7] ^= 0x40;
    write_file_atomic(copy, bytes, (size_t)n);
    CHECK(refused(copy, "pixel checksum mismatch"), "a flipped pixel bit");
    bytes[n - 7] ^= 0x40;
    bytes[sizeof(CacheHeader) + 3] ^= 1;   /* a class name */
    write_file_atomic(copy, bytes, (size_t)n);
    CHECK(refused(copy, "header checksum mismatch"), "a changed class name");
    bytes[sizeof(CacheHeader) + 3] ^= 1;
    ((CacheHeader *)bytes)->version = CACHE_VERSION + 1;
    write_file_atomic(copy, bytes, (size_t)n);
    CHECK(refused(copy, "this finch reads format"), "another format version");
    free(bytes);
    char img[700];
    snprintf(img, sizeof img, "%s/images/003.C/c2.jpg", dir);
    uint8_t rgb[40 * 30 * 3] = { 0 };
    CHECK(jpeg_write_rgb(img, rgb, 40, 30, 80) == 0, "%s", ft_last_error());   /* a re-encoded image */
    CHECK(refused(path, "has changed since it was prepared"), "a modified source image");
    sources_free(&src);
    remove(img);
    CHECK(refused(path, "is stale"), "a source that lost an image");
    CHECK(refused(test_path("none.fds"), "cannot open"), "a missing cache");
}

/* Re-signs a cache's bytes after its header was edited: meta_crc and pixel_crc as finch computes
 * them (data/cache.h), over the images the header now counts. */
static void resign(char *bytes) {
    CacheHeader *h = (CacheHeader *)bytes;
    size_t per = (size_t)3 * h->size * h->size, images = (size_t)h->n_train * (1 + h->copies) + h->n_test;
    uint32_t *crc = malloc(images * sizeof *crc);
    for (size_t i = 0; i < images; i++) crc[i] = (uint32_t)crc32(0, (const Bytef *)bytes + h->pixel_offset + i * per, (uInt)per);
    h->pixel_crc = (uint32_t)crc32(0, (const Bytef *)crc, (uInt)(images * sizeof *crc));
    free(crc);
    h->meta_crc = 0;
    uLong c = crc32(0, (const Bytef *)h, sizeof *h);
    c = crc32(c, (const Bytef *)bytes + sizeof *h, (uInt)h->num_classes * 96);
    c = crc32(c, (const Bytef *)bytes + sizeof *h + (size_t)h->num_classes * 96, (uInt)((h->n_train + h->n_test) * sizeof(CacheRecord)));
    h->meta_crc = (uint32_t)c;
}

/* Caches crafted with correct checksums but counts finch never writes: an empty test split (which
 * crashed `prepare info` and made eval report -nan%) and a copy count that wrapped 1 + copies to 0. */
TEST(cache_refuses_crafted_counts) {
    const char *dir = make_cub("cache_crafted");
    SourceList src;
    CHECK(cub_sources(dir, &src) == 0, "%s", ft_last_error());
    DecodeOpts o = { .size = 8, .crop = true, .quiet = true };
    char *path = test_path("crafted.fds"), *copy = test_path("crafted-copy.fds");
    CHECK(cache_prepare(&src, &o, path) == 0, "%s", ft_last_error());
    sources_free(&src);
    long n;
    char *bytes = slurp(path, &n);
    CacheHeader *h = (CacheHeader *)bytes, keep = *h;
    CHECK(h->n_test > 0 && h->copies == 0, "the fixture has test images and no copies");
    size_t per = (size_t)3 * h->size * h->size;
    h->file_bytes -= h->n_test * per;
    h->n_test = 0;
    resign(bytes);
    write_file_atomic(copy, bytes, (size_t)h->file_bytes);
    CHECK(refused(copy, "has no test images"), "an empty test split");
    *h = keep;
    h->copies = 0xffffffffu;   /* 1 + copies wraps to 0 in 32 bits: the sizes would add up */
    h->file_bytes = keep.pixel_offset + (uint64_t)h->n_test * per;
    resign(bytes);
    write_file_atomic(copy, bytes, (size_t)h->file_bytes);
    CHECK(refused(copy, "inconsistent header"), "a wrapping copy count");
    free(bytes);
}

TEST(a_failed_prepare_leaves_nothing_behind) {
    const char *dir = make_cub("cache_broken");
    char img[700];
    snprintf(img, sizeof img, "%s/images/002.B/b2.png", dir);
    write_file_atomic(img, "\x89PNG\r\n\x1a\n broken", 16);
    SourceList src;
    CHECK(cub_sources(dir, &src) == 0, "%s", ft_last_error());
    char *path = test_path("broken.fds");
    int rc = cache_prepare(&src, &(DecodeOpts){ .size = 8, .crop = true, .quiet = true }, path);
    CHECK(rc != 0 && strstr(ft_last_error(), "b2.png"), "the broken image is named: %s", rc ? ft_last_error() : "success");
    CHECK(access(path, F_OK) != 0, "a half-written cache exists after a failed prepare");
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK(access(tmp, F_OK) != 0, "the temporary file was left behind");
    sources_free(&src);
}
