#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"

static _Thread_local char last_error[1024];
static char error_label[64];

void ft_set_error_label(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_label, sizeof error_label, fmt, ap);
    va_end(ap);
}

void ft_fatal_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (error_label[0]) fprintf(stderr, "finch: error (%s): ", error_label);
    else fprintf(stderr, "finch: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    va_end(ap);
    exit(1);
}

bool ft_strict_ops = false;

void ft_op_error_at(const char *file, int line, const char *fmt, ...) {
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ft_strict_ops) ft_fatal_at(file, line, "%s", msg);
    memcpy(last_error, msg, sizeof last_error);
}

/* Formatted into a scratch buffer first: an argument may be ft_last_error() itself (a message that
 * wraps the one before it), which vsnprintf must not read while it writes over it. */
int ft_error(const char *fmt, ...) {
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof last_error);
    return -1;
}

const char *ft_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

void *ft_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ft_fatal("out of host memory: asked for %zu bytes", bytes);
    return p;
}

void *ft_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) ft_fatal("out of host memory: asked for %zu x %zu bytes", n, size);
    return p;
}

void *ft_xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) ft_fatal("out of host memory: asked to grow a block to %zu bytes", bytes);
    return q;
}
