/* Files are never left half-written: write to a temporary name beside the target, fsync, rename. */
#ifndef FINCH_FILEIO_H
#define FINCH_FILEIO_H

#include <stdbool.h>
#include <stdio.h>

typedef struct { FILE *f; char tmp[1024], path[1024]; } AtomicFile;

int atomic_open(AtomicFile *a, const char *path);
/* Commits when ok (and every write succeeded), else removes the temporary file. 0 on success. */
int atomic_close(AtomicFile *a, bool ok);
int write_file_atomic(const char *path, const void *data, size_t n);
/* mkdir -p; 0 on success */
int make_dirs(const char *path);

#endif
