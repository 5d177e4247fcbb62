/* finch report's readers (tools/study_report.c): the input's first part as a run's robustness.json,
 * its second as its train.json; then the table and the JSON written from what was read, the run
 * counted twice (as two seeds) so that the spread is computed too. */
#include "fuzz.h"
#include <math.h>
#include <string.h>
#include "tools/study_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[2];
    size_t len[2];
    int k = split_parts(data, n, part, len, 2);
    char *text[2] = { NULL, NULL };
    for (int i = 0; i < k; i++) {
        text[i] = malloc(len[i] + 1);
        memcpy(text[i], part[i], len[i]);
        text[i][len[i]] = 0;
    }
    SuiteResult r;
    if (report_suite_parse(text[0], &r)) {
        if (r.n_eps < 1 || r.n_eps > REPORT_EPS) abort();
        ReportModel *m = calloc(1, sizeof *m);
        snprintf(m->label, sizeof m->label, "m");
        m->runs = 2;
        for (int s = 0; s < 2; s++) {
            m->test_acc[s] = report_train_acc(text[1]);
            m->clean_attacked[s] = r.clean[0];
            for (int e = 0; e < REPORT_EPS; e++) m->paper[s][e] = m->strong[s][e] = e < r.n_eps ? r.worst[e] : NAN;
        }
        m->warnings = r.warnings;
        char *md = report_markdown(m, 1, r.eps, r.n_eps);
        if (!md || !strstr(md, "| m | 2 |")) abort();
        cJSON *doc = report_json(m, 1, r.eps, r.n_eps);
        char *json = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        free(json);
        free(md);
        free(m);
    }
    free(text[0]);
    free(text[1]);
    return 0;
}
