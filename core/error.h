/* Errors.
 *
 * Three kinds, kept apart on purpose:
 *  - user input (files, flags, datasets, names): functions return an int status (0 = ok) or
 *    NULL and leave a message in ft_last_error(); the command line prints it and exits non-zero.
 *  - bad arguments to an op (two tensors whose shapes cannot meet, a label outside the classes,
 *    a backward from a tensor no op produced): the op returns NULL (ft_backward -1) with the op,
 *    the values and what was expected in ft_last_error(), and every op given a NULL input
 *    returns NULL too, so a program may check only the result it uses (FT_ARG). With
 *    ft_strict_ops set, as the finch program and its tests set it, the first one instead ends
 *    the process with the message and file:line, as a bug in the calling code should.
 *  - broken invariants inside the library (an arena asked for another device's tensor, a
 *    tensor index out of range, memory exhausted): FT_CHECK prints and exits with status 1.
 */
#ifndef FINCH_ERROR_H
#define FINCH_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
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

/* Ops: bad arguments end the process (true) or make the op return NULL (false, the default). */
extern bool ft_strict_ops;
/* An op's argument error: recorded for ft_last_error(), or fatal under ft_strict_ops. */
void ft_op_error_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* In an op returning a tensor: the condition on its arguments, else the op returns NULL. */
#define FT_ARG(cond, ...) do { if (!(cond)) { ft_op_error_at(__FILE__, __LINE__, __VA_ARGS__); return NULL; } } while (0)
/* In an op: an input that is NULL (an earlier op failed) makes this op return NULL as well. */
#define FT_INPUT(t) do { if (!(t)) return NULL; } while (0)

/* A label for fatal messages ("finch: error (LABEL): ..."), such as a process's rank among
 * several (set by dist/); empty by default. */
void ft_set_error_label(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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
