/* The prepared cache: a dataset decoded, cropped, resized (and optionally augmented offline) once
 * by `finch prepare`, in one file read back by memory mapping, so that training never waits on
 * JPEG decoding.
 *
 * Layout, little-endian: a CacheHeader; the class names (num_classes x 96 bytes); one
 * CacheRecord per training then per test image; zeros up to pixel_offset (a multiple of 4096);
 * then uint8 CHW pixels: the training images, their augmented copies (copy k of training image
 * i at i * copies + k), the test images. meta_crc covers the header (meta_crc read as 0), names
 * and records; pixel_crc is the CRC32 of the per-image CRC32s in file order. */
#ifndef FINCH_CACHE_H
#define FINCH_CACHE_H

#include "sources.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CACHE_MAGIC "FINCHDS\x1a"
#define CACHE_VERSION 1
#define CACHE_MAX_COPIES 10000   /* offline augmented copies of each training image */

typedef struct {
    char magic[8];
    uint32_t version, size, channels, num_classes;
    uint32_t n_train, n_test, copies, crop, keep_aspect, reserved0;
    uint64_t seed, pixel_offset, file_bytes;
    int64_t created;                  /* unix seconds */
    uint32_t source_crc;              /* sources_fingerprint of what it was made from */
    uint32_t meta_crc, pixel_crc, reserved1;
    char kind[16];                    /* "cub" | "folder" */
    char root[1024], split_file[1024];
} CacheHeader;

typedef struct { int32_t id, label; } CacheRecord;   /* id: the image's 1-based place in its source list */

/* Decodes every image of s with o (all cores, a progress line) straight into `path`, written
 * atomically. 0 on success; -1 with ft_last_error() naming the image or the file. */
int cache_prepare(const SourceList *s, const DecodeOpts *o, const char *path);

/* Maps a cache and checks it: a foreign or truncated file, another format version, a checksum
 * that does not match, or a source directory that has changed since (when it still exists) is
 * refused with the reason. The datasets view the mapping, which lives until the last is freed. */
int cache_open(const char *path, Splits *out, CacheHeader *info);

/* Is path a regular file (a cache) rather than a directory? */
bool cache_is_file(const char *path);

#ifdef __cplusplus
}
#endif

#endif
