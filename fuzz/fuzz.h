/* Shared by the libFuzzer harnesses (make fuzz; docs/RELIABILITY.md). Readers that take a path get
 * the input through a memory file (memfd), so they run exactly as finch calls them. */
#ifndef FINCH_FUZZ_H
#define FINCH_FUZZ_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct { int fd; char path[64]; } MemFile;

/* The bytes as a file at m->path (/proc/self/fd/N); release with memfile_close. */
static inline MemFile memfile_open(const uint8_t *data, size_t n) {
    MemFile m = { memfd_create("fuzz", 0), "" };
    if (m.fd < 0) { perror("memfd_create"); abort(); }
    for (size_t done = 0; done < n; ) {
        ssize_t k = write(m.fd, data + done, n - done);
        if (k <= 0) { perror("write"); abort(); }
        done += (size_t)k;
    }
    snprintf(m.path, sizeof m.path, "/proc/self/fd/%d", m.fd);
    return m;
}

static inline void memfile_close(MemFile *m) { close(m->fd); }

/* Splits data at each "\n--\n" into up to max parts (the rest goes into the last). */
static inline int split_parts(const uint8_t *data, size_t n, const uint8_t **part, size_t *len, int max) {
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i + 4 <= n && k < max - 1; i++)
        if (data[i] == '\n' && data[i + 1] == '-' && data[i + 2] == '-' && data[i + 3] == '\n') {
            part[k] = data + start;
            len[k++] = i - start;
            start = i + 4;
            i += 3;
        }
    part[k] = data + start;
    len[k++] = n - start;
    return k;
}

#endif
