/* The attack-suite results of several runs side by side (study_report.h). */
#include "study_report.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fileio.h"

static double number(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

bool report_suite_parse(const char *text, SuiteResult *r) {
    *r = (SuiteResult){ 0 };
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(doc, "rows"), *row;
    bool ok = cJSON_IsArray(rows);
    cJSON_ArrayForEach(row, rows) {
        double eps = number(row, "eps");
        if (r->n_eps == REPORT_EPS || !isfinite(eps)) continue;
        r->eps[r->n_eps] = eps;
        r->images[r->n_eps] = number(row, "images");
        r->clean[r->n_eps] = number(row, "clean_acc");
        r->worst[r->n_eps++] = number(row, "worst_case");
    }
    r->warnings = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "warnings"));
    cJSON_Delete(doc);
    return ok && r->n_eps > 0;
}

double report_train_acc(const char *text) {
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    double acc = number(doc, "test_acc");
    cJSON_Delete(doc);
    return acc;
}

void report_label(const char *dir, char *out, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    size_t end = len, d = len;
    while (d > start && dir[d - 1] >= '0' && dir[d - 1] <= '9') d--;
    if (d < len && d >= start + 3 && dir[d - 1] == 's' && dir[d - 2] == '-') end = d - 2;   /* name-s12 -> name */
    snprintf(out, n, "%.*s", (int)(end - start), dir + start);
}

int report_mean_sd(const double *v, int n, int stride, double *mean, double *sd) {
    int k = 0;
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i * stride])) { s += v[i * stride]; k++; }
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i * stride])) ss += (v[i * stride] - *mean) * (v[i * stride] - *mean);
    *sd = k > 1 ? sqrt(ss / (k - 1)) : NAN;
    return k;
}

/* "mean ± sd" in percent, the mean alone for one value, "-" for none */
static const char *pct(char *buf, size_t n, const double *v, int runs, int stride) {
    double mean, sd;
    int k = report_mean_sd(v, runs, stride, &mean, &sd);
    if (k == 0) snprintf(buf, n, "-");
    else if (k == 1) snprintf(buf, n, "%.2f", 100 * mean);
    else snprintf(buf, n, "%.2f ± %.2f", 100 * mean, 100 * sd);
    return buf;
}

char *report_markdown(const ReportModel *m, int n_models, const double *eps, int n_eps) {
    char *md = NULL, b[64];
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    fprintf(f, "| model | runs | clean (test set) | clean (attacked images) |");
    for (int s = 0; s < 2; s++)
        for (int e = 0; e < n_eps; e++) fprintf(f, " %s, eps %.4g |", s ? "strong" : "paper", eps[e]);
    fprintf(f, " self-check warnings |\n|---|---|---|---|");
    for (int e = 0; e < 2 * n_eps; e++) fprintf(f, "---|");
    fprintf(f, "---|\n");
    for (int i = 0; i < n_models; i++) {
        const ReportModel *r = &m[i];
        fprintf(f, "| %s | %d | %s |", r->label, r->runs, pct(b, sizeof b, r->test_acc, r->runs, 1));
        fprintf(f, " %s |", pct(b, sizeof b, r->clean_attacked, r->runs, 1));
        for (int s = 0; s < 2; s++)
            for (int e = 0; e < n_eps; e++) fprintf(f, " %s |", pct(b, sizeof b, s ? &r->strong[0][e] : &r->paper[0][e], r->runs, REPORT_EPS));
        fprintf(f, " %d |\n", r->warnings);
    }
    fprintf(f, "\nAccuracies in percent: the mean over a model's runs (its seeds) ± their sample standard deviation, one\n"
               "number for one run. Robust columns: the per-example worst case over a suite's attacks (paper: FGSM,\n"
               "BIM-10, PGD-10, MIM-10; strong: APGD-CE, APGD-T and Square, then the paper's), each run's\n"
               "robustness.json and strong/robustness.json. \"-\": not run. Warnings: the suites' self-checks\n"
               "(symptoms of gradient masking or a broken attack), over all the model's runs.\n");
    fclose(f);
    return md;
}

static cJSON *stat_json(const double *v, int runs, int stride) {
    double mean, sd;
    int k = report_mean_sd(v, runs, stride, &mean, &sd);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "runs", k);
    if (k) cJSON_AddNumberToObject(o, "mean", mean);
    if (k > 1) cJSON_AddNumberToObject(o, "sd", sd);
    cJSON *all = cJSON_AddArrayToObject(o, "values");
    for (int i = 0; i < runs; i++)
        if (isfinite(v[i * stride])) cJSON_AddItemToArray(all, cJSON_CreateNumber(v[i * stride]));
    return o;
}

void report_series(const ReportModel *m, int n_eps, double *y, double *err, char *name, size_t n_name) {
    double clean[REPORT_SEEDS], worst[REPORT_SEEDS][REPORT_EPS];
    int k = 0;
    for (int r = 0; r < m->runs; r++) {   /* the runs with a strong result at every eps */
        bool all = true;
        for (int e = 0; e < n_eps; e++) all &= isfinite(m->strong[r][e]);
        if (!all) continue;
        clean[k] = m->clean_attacked[r];
        memcpy(worst[k++], m->strong[r], sizeof worst[0]);
    }
    bool strong = k > 0;
    if (!strong) {
        for (k = 0; k < m->runs; k++) { clean[k] = m->clean_attacked[k]; memcpy(worst[k], m->paper[k], sizeof worst[0]); }
    }
    report_mean_sd(clean, k, 1, &y[0], &err[0]);
    for (int e = 0; e < n_eps; e++) report_mean_sd(&worst[0][e], k, REPORT_EPS, &y[e + 1], &err[e + 1]);
    for (int e = 0; e <= n_eps; e++) { y[e] *= 100; err[e] *= 100; }
    if (k < m->runs) snprintf(name, n_name, "%s (%s, %d of %d runs)", m->label, strong ? "strong" : "paper", k, m->runs);
    else snprintf(name, n_name, "%s (%s, %d run%s)", m->label, strong ? "strong" : "paper", k, k > 1 ? "s" : "");
}

cJSON *report_json(const ReportModel *m, int n_models, const double *eps, int n_eps) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "eps", cJSON_CreateDoubleArray(eps, n_eps));
    cJSON *models = cJSON_AddArrayToObject(doc, "models");
    for (int i = 0; i < n_models; i++) {
        const ReportModel *r = &m[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(models, o);
        cJSON_AddStringToObject(o, "model", r->label);
        cJSON_AddItemToObject(o, "test_acc", stat_json(r->test_acc, r->runs, 1));
        cJSON_AddItemToObject(o, "clean_attacked", stat_json(r->clean_attacked, r->runs, 1));
        const char *keys[2] = { "paper_worst", "strong_worst" };
        for (int s = 0; s < 2; s++) {
            cJSON *arr = cJSON_AddArrayToObject(o, keys[s]);
            for (int e = 0; e < n_eps; e++) cJSON_AddItemToArray(arr, stat_json(s ? &r->strong[0][e] : &r->paper[0][e], r->runs, REPORT_EPS));
        }
        cJSON_AddNumberToObject(o, "warnings", r->warnings);
        double y[REPORT_EPS + 1], err[REPORT_EPS + 1];   /* report.png's line, as drawn */
        char name[200];
        report_series(r, n_eps, y, err, name, sizeof name);
        cJSON *line = cJSON_AddObjectToObject(o, "plot");
        cJSON_AddStringToObject(line, "name", name);
        cJSON *ys = cJSON_AddArrayToObject(line, "accuracy"), *es = cJSON_AddArrayToObject(line, "sd");
        for (int e = 0; e <= n_eps; e++) {
            cJSON_AddItemToArray(ys, isfinite(y[e]) ? cJSON_CreateNumber(y[e]) : cJSON_CreateNull());
            cJSON_AddItemToArray(es, isfinite(err[e]) ? cJSON_CreateNumber(err[e]) : cJSON_CreateNull());
        }
    }
    return doc;
}
