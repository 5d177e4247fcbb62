/* Errors.
 *
 * Two kinds, kept apart on purpose:
 *  - programming errors inside the library (two tensors whose shapes cannot meet, an op asked
 *    of a device that cannot run it): FT_CHECK prints the op, the values and what was expected,
 *    with file:line, and exits with status 1. They are bugs in the calling code, like a
 *    Python exception nobody catches.
 *  - user input (files, flags, datasets): functions return an int status (0 = ok) and leave a
 *    message in ft_last_error(); the command line prints it and exits non-zero.
 */
#ifndef FINCH_ERROR_H
#define FINCH_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
#define FT_NORETURN [[noreturn]]
#else
#define FT_NORETURN _Noreturn
#endif

FT_NORETURN void ft_fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ft_fatal(...) ft_fatal_at(__FILE__, __LINE__, __VA_ARGS__)
#define FT_CHECK(cond, ...) do { if (!(cond)) ft_fatal_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Record a user-facing error message; always returns -1 so callers can `return ft_error(...)`. */
int ft_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ft_last_error(void);

/* malloc that reports how much it failed to get instead of returning NULL. */
void *ft_xmalloc(size_t bytes);
void *ft_xcalloc(size_t n, size_t size);
void *ft_xrealloc(void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
