/* finch report: the attack-suite results of several runs side by side, seeds of one model as mean
 * and spread (study_report.h); report.md, report.json and report.png (robust accuracy against eps). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "plot.h"
#include "run.h"
#include "study_report.h"
#include "core/fileio.h"

#define MAX_MODELS 32

/* dir/name read and parsed; 0, 1 (missing or not a suite result: printed when required), */
static int read_suite(const char *dir, const char *name, bool required, SuiteResult *r) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n;
    char *text = read_file(path, &n);
    bool ok = report_suite_parse(text, r);
    free(text);
    if (!ok && required) fprintf(stderr, "finch report: %s is missing or is not an attack suite's result (finch attack --suite)\n", path);
    return ok ? 0 : 1;
}

/* The run's numbers into model m (its next seed), radii matched to eps[0..n_eps) (the first run's). */
static int add_run(const char *dir, ReportModel *m, double *eps, int *n_eps) {
    SuiteResult paper, strong;
    if (read_suite(dir, "robustness.json", true, &paper)) return 1;
    bool has_strong = read_suite(dir, "strong/robustness.json", false, &strong) == 0;
    if (*n_eps == 0) {
        *n_eps = paper.n_eps;
        memcpy(eps, paper.eps, sizeof paper.eps);
    }
    if (m->runs == REPORT_SEEDS) { fprintf(stderr, "finch report: %s: more than %d runs of %s\n", dir, REPORT_SEEDS, m->label); return 2; }
    int k = m->runs++;
    char path[1200];
    snprintf(path, sizeof path, "%s/train.json", dir);
    size_t n;
    char *text = read_file(path, &n);
    m->test_acc[k] = report_train_acc(text);
    free(text);
    m->clean_attacked[k] = paper.clean[0];
    for (int e = 0; e < *n_eps; e++) {
        m->paper[k][e] = m->strong[k][e] = NAN;
        for (int i = 0; i < paper.n_eps; i++)
            if (fabs(paper.eps[i] - eps[e]) < 1e-9) m->paper[k][e] = paper.worst[i];
        for (int i = 0; has_strong && i < strong.n_eps; i++)
            if (fabs(strong.eps[i] - eps[e]) < 1e-9) m->strong[k][e] = strong.worst[i];
    }
    m->warnings += paper.warnings + (has_strong ? strong.warnings : 0);
    return 0;
}

/* Robust accuracy against eps (clean at 0), one line a model (report_series). */
static int draw(const char *png, const ReportModel *m, int n_models, const double *eps, int n_eps) {
    int n = n_eps + 1;
    double *x = ft_xmalloc((size_t)n * sizeof *x), *y = ft_xmalloc((size_t)n_models * n * sizeof *y),
           *err = ft_xmalloc((size_t)n_models * n * sizeof *err);
    char (*names)[200] = ft_xmalloc((size_t)n_models * sizeof *names);
    const char **name_ptr = ft_xmalloc((size_t)n_models * sizeof *name_ptr);
    x[0] = 0;
    for (int e = 0; e < n_eps; e++) x[e + 1] = eps[e];
    for (int i = 0; i < n_models; i++) {
        report_series(&m[i], n_eps, &y[i * n], &err[i * n], names[i], sizeof names[i]);
        name_ptr[i] = names[i];
    }
    int rc = plot_lines(png, "Robust accuracy (per-example worst case) against eps", n_models, n, x, y, err, name_ptr,
                        "eps (L-inf, [0, 1] pixels; 0: clean)", "accuracy (%)");
    free(x); free(y); free(err); free(names); free(name_ptr);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *runs = NULL, *out = NULL, *title = "Robustness study";
    const CliArg args[] = {
        { "runs", ARG_STRING, &runs, 0, 0, "run directories, comma-separated, each with robustness.json (and strong/robustness.json)" },
        { "out", ARG_STRING, &out, 0, 0, "directory for report.md, report.json and report.png (required)" },
        { "title", ARG_STRING, &title, 0, 0, "the report's heading" },
    };
    int rc = cli_parse("report", "The attack-suite results of several runs side by side: clean accuracy and the per-example worst\n"
                       "case of finch attack --suite paper (robustness.json) and --suite strong (strong/robustness.json)\n"
                       "at every eps. Runs whose directory names differ only by a trailing -s<N> are seeds of one model:\n"
                       "mean ± sample standard deviation. report.md, report.json, report.png (accuracy against eps).",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!runs || !out) { fprintf(stderr, "finch report: --runs and --out are required\n"); return 2; }
    ReportModel *m = ft_xmalloc(MAX_MODELS * sizeof *m);
    int n_models = 0, n_eps = 0;
    double eps[REPORT_EPS];
    char *list = strdup(runs), *save = NULL;
    for (char *dir = strtok_r(list, ",", &save); dir && rc == 0; dir = strtok_r(NULL, ",", &save)) {
        char label[128];
        report_label(dir, label, sizeof label);
        int i = 0;
        while (i < n_models && strcmp(m[i].label, label) != 0) i++;
        if (i == n_models) {
            if (n_models == MAX_MODELS) { fprintf(stderr, "finch report: --runs: more than %d models\n", MAX_MODELS); rc = 2; break; }
            memset(&m[n_models], 0, sizeof m[n_models]);
            snprintf(m[n_models++].label, sizeof m->label, "%s", label);
        }
        rc = add_run(dir, &m[i], eps, &n_eps);
    }
    free(list);
    if (rc == 0 && n_models == 0) { fprintf(stderr, "finch report: --runs names no run\n"); rc = 2; }
    if (rc == 0 && make_dirs(out) != 0) { fprintf(stderr, "finch report: %s\n", ft_last_error()); rc = 1; }
    if (rc == 0) {
        char *table = report_markdown(m, n_models, eps, n_eps), path[1200];
        size_t len = strlen(title) + strlen(table) + 16;
        char *md = ft_xmalloc(len);
        snprintf(md, len, "# %s\n\n%s", title, table);
        printf("%s", md);
        snprintf(path, sizeof path, "%s/report.md", out);
        if (write_file_atomic(path, md, strlen(md)) != 0) { fprintf(stderr, "finch report: %s\n", ft_last_error()); rc = 1; }
        cJSON *doc = report_json(m, n_models, eps, n_eps);
        cJSON_AddStringToObject(doc, "title", title);
        snprintf(path, sizeof path, "%s/report.json", out);
        if (rc == 0) rc = run_write_json("report", path, doc) ? 1 : 0;
        cJSON_Delete(doc);
        snprintf(path, sizeof path, "%s/report.png", out);
        if (rc == 0 && draw(path, m, n_models, eps, n_eps) != 0) fprintf(stderr, "finch report: warning: no plot: %s\n", ft_last_error());
        if (rc == 0) printf("\nwritten: %s/report.md, report.json and report.png\n", out);
        free(table);
        free(md);
    }
    free(m);
    return rc;
}
