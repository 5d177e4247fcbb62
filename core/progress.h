/* A progress line for long work: done/total, items per second, ETA, and a caller's note.
 * On a terminal it redraws one line; otherwise (logs, CI) it prints a line every few seconds. */
#ifndef FINCH_PROGRESS_H
#define FINCH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char label[64];
    int64_t total, done;
    double start, last_print;
    bool tty, quiet;
} Progress;

double ft_now(void);   /* monotonic seconds */

/* After ft_catch_stop_signals, SIGINT and SIGTERM only ask long work to stop: loops check
 * ft_stop_requested() where stopping loses nothing (between batches) and end there. A second
 * signal ends the process at once. ft_stop_signal() is the signal that asked (0: none). */
void ft_catch_stop_signals(void);
bool ft_stop_requested(void);
int ft_stop_signal(void);
void progress_start(Progress *p, const char *label, int64_t total, bool quiet);
/* Advance by n items; note (may be NULL) is appended, e.g. "loss 0.41 acc 85.2%". */
void progress_update(Progress *p, int64_t n, const char *note);
/* Print the final line; returns the elapsed seconds. */
double progress_finish(Progress *p, const char *note);

#ifdef __cplusplus
}
#endif

#endif
