/* Timing helpers shared by the benchmark commands. */
#ifndef FINCH_BENCH_H
#define FINCH_BENCH_H

#include "core/finch.h"

/* Median seconds of reps calls of fn(ctx) after `warmup` calls, the device synchronised around
 * each timed call so queued GPU work is counted. */
double bench_median(void (*fn)(void *), void *ctx, int warmup, int reps, Device dev);
/* finch bench --models: training steps and attack throughput of whole networks (only: the rows
 * whose name contains it; NULL: all). */
int bench_models(Device dev, bool tf32, int reps, const char *only, const char *json);
/* finch bench --attacks: C&W-L2's throughput on the demo CNN. */
int bench_attacks(Device dev, int reps, const char *json);
/* finch bench --loader: prepare and loader throughput (workers 0: one per core). */
int bench_loader(int workers, const char *json);
/* finch bench --push: one push of 2000 prototypes over 6,000 images at 7x7 latents. */
int bench_push(Device dev, int reps, const char *json);
/* That push as a job bench_median can time (the push row of bench_models shares it). */
#define PUSH_BENCH_IMAGES 6000
#define PUSH_BENCH_CLASSES 200
#define PUSH_BENCH_BATCH 100
typedef struct PushBench PushBench;
PushBench *push_bench_new(Device dev);
void push_bench_run(void *push_bench);
void push_bench_free(PushBench *b);

#endif
