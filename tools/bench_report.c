/* The robustness benchmark's result files and summary (bench_report.h). */
#include "bench_report.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fileio.h"

const char *const bench_step_names[BENCH_STEPS] = { "clean", "fgsm", "ifgsm", "cw", "ead", "clever-2", "clever-inf" };

cJSON *bench_result_parse(const char *text, const char *settings) {
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    const char *got = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "settings"));
    if (got && strcmp(got, settings) == 0) return doc;
    cJSON_Delete(doc);
    return NULL;
}

cJSON *bench_result_read(const char *dir, int step, const char *settings) {
    char path[1500];
    snprintf(path, sizeof path, "%s/%s.json", dir, bench_step_names[step]);
    size_t n;
    char *text = read_file(path, &n);
    cJSON *doc = bench_result_parse(text, settings);
    free(text);
    return doc;
}

static double number(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

void bench_result_take(const cJSON *doc, int step, BenchRow *row) {
    if (step == BENCH_CLEAN) {
        row->acc = number(doc, "clean_accuracy", NULL);
        row->test_images = number(doc, "test_images", NULL);
        row->params = number(doc, "parameters", NULL);
    } else if (step <= BENCH_EAD) {
        int k = step - BENCH_FGSM;
        const cJSON *dist = cJSON_GetObjectItemCaseSensitive(doc, "distortion");
        row->success[k] = number(doc, "success_rate", NULL);
        row->l2[k] = number(dist, "l2", "mean");
        row->linf[k] = number(dist, "linf", "mean");
    } else {
        *(step == BENCH_CLEVER2 ? &row->clever2 : &row->clever_inf) = number(doc, "mean_score", NULL);
    }
}

double bench_log_error(const BenchRow *r) {
    double floor = r->test_images >= 1 ? 0.5 / r->test_images : 0.5;
    return log(fmax(1 - r->acc, floor));
}

/* A number for the table, "-" when nothing was measured (or the file said nonsense). */
static const char *cell(char *buf, size_t n, const char *fmt, double v) {
    if (isfinite(v)) snprintf(buf, n, fmt, v);
    else snprintf(buf, n, "-");
    return buf;
}

char *bench_summary(int n, const char *const *names, const BenchRow *rows, const char *settings, const char *transfer_md) {
    char *md = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    fprintf(f, "# Robustness benchmark\n\nSettings: %s.\n\n| model | parameters | clean acc. | FGSM success | I-FGSM success | "
               "C&W success | C&W L2 | EAD success | EAD L2 | CLEVER L2 | CLEVER L-inf |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
            settings);
    for (int i = 0; i < n; i++) {
        const BenchRow *r = &rows[i];
        char c[11][32];
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", names[i], cell(c[0], 32, "%.0f", r->params),
                cell(c[1], 32, "%.2f", 100 * r->acc), cell(c[2], 32, "%.1f", 100 * r->success[0]),
                cell(c[3], 32, "%.1f", 100 * r->success[1]), cell(c[4], 32, "%.1f", 100 * r->success[2]),
                cell(c[5], 32, "%.4f", r->l2[2]), cell(c[6], 32, "%.1f", 100 * r->success[3]), cell(c[7], 32, "%.4f", r->l2[3]),
                cell(c[8], 32, "%.4f", r->clever2), cell(c[9], 32, "%.4f", r->clever_inf));
    }
    fprintf(f, "\nSuccess rates (%%) over the attacked test images; L2 distortions on [0, 1] pixels, the mean over "
               "successful examples; CLEVER: the mean over images of the score against the settings' targets (untargeted: the "
               "smallest over all other classes; top-K: over the 2nd to K-th most likely). "
               "benchmark.png plots the C&W L2 distortion against log(classification error), an error of 0 at half a test image.\n\n%s",
            transfer_md ? transfer_md : "");
    fclose(f);
    return md;
}
