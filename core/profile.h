/* A per-op profiler: time and tape memory per op name, forward and backward apart.
 *
 * On when FINCH_PROFILE=1 is in the environment (read at the first op) or after
 * ft_profile_enable(true) (finch --profile). Then every op's forward is timed from its first tape
 * allocation to its ft_record call (so a user's own code between ops is not charged to them),
 * every node's backward by ft_backward, and the bytes of the tape tensors each op allocates are
 * added up. At exit the table goes to stderr, sorted by time, and to FINCH_PROFILE_JSON (default
 * finch-profile.json). On CUDA every op boundary is a CUDA event on the queue, read back in batches,
 * so an op is charged its kernels' time rather than their launch without stalling the queue (a
 * backend without events is synchronised at every boundary instead). Off, the cost is one test of
 * a flag per op. Not thread-safe: profile one thread's ops. */
#ifndef FINCH_PROFILE_H
#define FINCH_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char op[32];
    double forward_s, backward_s;
    int64_t forward_calls, backward_calls;
    double bytes;   /* tape memory allocated by the op's forward */
} ProfileRow;

extern bool ft_profile_on;
void ft_profile_enable(bool on);
void ft_profile_reset(void);
/* The rows, sorted by forward + backward time, in a malloc'd array; their count. */
int ft_profile_rows(ProfileRow **rows);
void ft_profile_print(FILE *f);
/* 0, or -1 with ft_last_error(). */
int ft_profile_write_json(const char *path);

/* hooks for the tape (core/autograd.c): a point in the device's time (host seconds on the CPU, an
 * event on CUDA), and the time between two of them charged to an op */
typedef struct { double t; void *event; } ProfileMark;
ProfileMark ft_profile_mark(Device dev);
void ft_profile_span(Device dev, const char *op, bool backward, ProfileMark start, ProfileMark end);
void ft_profile_alloc(Device dev, size_t bytes);
void ft_profile_op_end(Device dev, const char *op);
void ft_profile_check_env(void);
/* The CUDA spans not read yet, read. */
void ft_profile_settle(void);
/* At every tape reset and free: the spans read (none is left for exit, when the CUDA runtime may
 * be gone) and an op left open (one that failed before it ended) dropped. */
void ft_profile_step_end(void);

#ifdef __cplusplus
}
#endif

#endif
