/* Files are never left half-written: write to a temporary name beside the target, fsync, rename. */
#ifndef FINCH_FILEIO_H
#define FINCH_FILEIO_H

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { FILE *f; char tmp[1024], path[1024]; } AtomicFile;

int atomic_open(AtomicFile *a, const char *path);
/* Commits when ok (and every write succeeded), else removes the temporary file. 0 on success;
 * then path.tmp.PID files left by writers that were killed are removed too. */
int atomic_close(AtomicFile *a, bool ok);
int write_file_atomic(const char *path, const void *data, size_t n);
/* doc, indented, written atomically; 0, or -1 with ft_last_error(). */
struct cJSON;
int write_json_atomic(const char *path, const struct cJSON *doc);
/* Opens path read-only when it is a regular file; a FIFO, a device or a directory is refused
 * without blocking (reading one could hang or never end). The descriptor (its size in *size when
 * size is not NULL), or -1 with ft_last_error() naming the file. */
int open_regular(const char *path, size_t *size);
/* The same as a stdio stream ("rb"), or NULL with ft_last_error(). */
FILE *fopen_regular(const char *path);
/* The whole file, NUL-terminated (malloc'd; its length in *n when n is not NULL), or NULL with
 * ft_last_error() naming it. */
char *read_file(const char *path, size_t *n);
/* dst (written atomically) = src's bytes; 0, or -1 with ft_last_error(). */
int copy_file(const char *src, const char *dst);
/* mkdir -p; 0 on success */
int make_dirs(const char *path);

#ifdef __cplusplus
}
#endif

#endif
