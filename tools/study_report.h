/* finch report: the attack-suite results of several runs side by side, the seeds of one model
 * (run directories named alike but for a trailing -s<N>) as mean and spread. The readers of the
 * result files are kept apart from the command so that they can be fuzzed (fuzz/fuzz_report.c). */
#ifndef FINCH_STUDY_REPORT_H
#define FINCH_STUDY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define REPORT_EPS 8

/* One suite result (robustness.json of finch attack --suite): per radius the attacked images, the
 * clean accuracy on them and the per-example worst case; NAN where the file lacks a number. */
typedef struct {
    int n_eps;
    double eps[REPORT_EPS], images[REPORT_EPS], clean[REPORT_EPS], worst[REPORT_EPS];
    int warnings;   /* the self-checks' warnings */
} SuiteResult;

/* The text of a robustness.json into r; false when it is not one (not JSON, no rows). */
bool report_suite_parse(const char *text, SuiteResult *r);

/* The test accuracy recorded in a train.json's text; NAN when there is none. */
double report_train_acc(const char *text);

/* A run directory's model name: its last path component less a trailing -s<digits>. */
void report_label(const char *dir, char *out, size_t n);

/* One model: its runs' numbers (seeds), over the radii eps[0..n_eps). */
#define REPORT_SEEDS 16
typedef struct {
    char label[128];
    int runs;
    double test_acc[REPORT_SEEDS];
    double paper[REPORT_SEEDS][REPORT_EPS], strong[REPORT_SEEDS][REPORT_EPS];   /* worst case; NAN: not run */
    double clean_attacked[REPORT_SEEDS];
    int warnings;
} ReportModel;

/* Mean and sample standard deviation of the finite values of v[0..n) (stride apart); their count. */
int report_mean_sd(const double *v, int n, int stride, double *mean, double *sd);

/* The plot's line of model m (n_eps + 1 points: the clean accuracy of the attacked images at eps
 * 0, then the worst case at eps[e]), in %, mean over runs with the sample sd as err (NAN with one
 * run): the strong suite's, over the runs that have it at every eps, where any does; else the
 * paper suite's over every run. Its name says which suite and how many runs: "a (strong, 1 of 3
 * runs)". */
void report_series(const ReportModel *m, int n_eps, double *y, double *err, char *name, size_t n_name);

/* report.md: the table and what its columns mean. malloc'd. */
char *report_markdown(const ReportModel *m, int n_models, const double *eps, int n_eps);

/* report.json. */
cJSON *report_json(const ReportModel *m, int n_models, const double *eps, int n_eps);

#endif
