/* finch benchmark's result files as a re-run reads them back (tools/bench_report.c): the input's
 * first part is a result file, read as every step's, under the settings "fuzz"; its second part is
 * a transfer.md. Then the summary and the plot's coordinates from what was read. */
#include "fuzz.h"
#include <math.h>
#include <string.h>
#include "tools/bench_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[2];
    size_t len[2];
    int k = split_parts(data, n, part, len, 2);
    char *text = malloc(len[0] + 1), *md = k > 1 ? malloc(len[1] + 1) : NULL;
    memcpy(text, part[0], len[0]);
    text[len[0]] = 0;
    if (md) { memcpy(md, part[1], len[1]); md[len[1]] = 0; }
    BenchRow row;
    for (int i = 0; i < 4; i++) row.success[i] = row.l2[i] = row.linf[i] = NAN;
    row.acc = row.test_images = row.params = row.clever2 = row.clever_inf = NAN;
    for (int step = 0; step < BENCH_STEPS; step++) {
        cJSON *doc = bench_result_parse(text, "fuzz");
        if (doc) bench_result_take(doc, step, &row);
        cJSON_Delete(doc);
    }
    volatile double x = bench_log_error(&row);
    (void)x;
    const char *names[1] = { "m" };
    char *summary = bench_summary(1, names, &row, "fuzz", md);
    if (!summary || !strstr(summary, "| m |")) abort();
    free(summary);
    free(text);
    free(md);
    return 0;
}
