/* The robustness benchmark's result files (one per model and step, under finch benchmark's --out)
 * and its summary: what a re-run reads back, kept apart from the command so that it can be fuzzed
 * (fuzz/fuzz_benchmark.c). */
#ifndef FINCH_BENCH_REPORT_H
#define FINCH_BENCH_REPORT_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* One model's row: NAN where a result file lacks the number. */
typedef struct { double acc, test_images, params, clever2, clever_inf, success[4], l2[4], linf[4]; } BenchRow;

/* The steps of one model, each a result file <step>.json: clean accuracy, the four attacks, CLEVER. */
enum { BENCH_CLEAN, BENCH_FGSM, BENCH_IFGSM, BENCH_CW, BENCH_EAD, BENCH_CLEVER2, BENCH_CLEVER_INF, BENCH_STEPS };
extern const char *const bench_step_names[BENCH_STEPS];

/* A result file's text, parsed, when it records these settings (the caller deletes it); else NULL
 * (missing, not JSON, another benchmark's). */
cJSON *bench_result_parse(const char *text, const char *settings);

/* dir/<step>.json read with bench_result_parse. */
cJSON *bench_result_read(const char *dir, int step, const char *settings);

/* The numbers of one step's result document into row. */
void bench_result_take(const cJSON *doc, int step, BenchRow *row);

/* benchmark.md: the table, what its columns mean, then transfer_md (NULL: nothing). malloc'd. */
char *bench_summary(int n, const char *const *names, const BenchRow *rows, const char *settings, const char *transfer_md);

/* The plot's x for a row: log(classification error), an error of 0 at half a test image. */
double bench_log_error(const BenchRow *r);

#endif
