/* finch report (tools/study_report.c) on run directories written by hand, whose means and
 * standard deviations are known. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"

/* dir/name holding text, the directories made on the way */
static void put(const char *dir, const char *name, const char *text) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = 0;
    make_dirs(path);
    *slash = '/';
    write_file_atomic(path, text, strlen(text));
}

static void suite_file(const char *dir, const char *name, double worst05, double worst10, int warnings) {
    char text[1024];
    snprintf(text, sizeof text, "{\"suite\": \"paper\", \"rows\": [{\"eps\": 0.05, \"images\": 100, \"clean_acc\": 0.9, \"worst_case\": %g},"
             " {\"eps\": 0.1, \"images\": 100, \"clean_acc\": 0.9, \"worst_case\": %g}], \"warnings\": [%s]}", worst05, worst10,
             warnings ? "\"a warning\"" : "");
    put(dir, name, text);
}

TEST(cli_report_gives_each_model_the_mean_and_spread_of_its_seeds) {
    REQUIRE_FINCH();
    char d[600], dir[800], a[4096], out[8192];
    snprintf(d, sizeof d, "%s/report-runs", test_tmpdir());
    /* model "a": three seeds (test accuracy 90, 80, 85; paper worst case 10/20/30 and 0/0/30), one with
     * a strong result and a self-check warning; model "b": one run */
    const double acc[3] = { 0.9, 0.8, 0.85 }, w05[3] = { 0.1, 0.2, 0.3 }, w10[3] = { 0, 0, 0.3 };
    for (int s = 0; s < 3; s++) {
        snprintf(dir, sizeof dir, "%s/a-s%d", d, s + 1);
        suite_file(dir, "robustness.json", w05[s], w10[s], s == 1);
        char train[128];
        snprintf(train, sizeof train, "{\"test_acc\": %g}", acc[s]);
        put(dir, "train.json", train);
    }
    snprintf(dir, sizeof dir, "%s/a-s1", d);
    suite_file(dir, "strong/robustness.json", 0.05, 0, 0);
    snprintf(dir, sizeof dir, "%s/b", d);
    suite_file(dir, "robustness.json", 0.5, 0.25, 0);
    snprintf(a, sizeof a, "report --runs %s/a-s1,%s/a-s2,%s/a-s3,%s/b --out %s/rep --title Study", d, d, d, d, d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    CHECK(strstr(out, "| a | 3 | 85.00 ± 5.00 | 90.00 ± 0.00 | 20.00 ± 10.00 | 10.00 ± 17.32 | 5.00 | 0.00 | 1 |"), "row a:\n%s", out);
    CHECK(strstr(out, "| b | 1 | - | 90.00 | 50.00 | 25.00 | - | - | 0 |"), "row b:\n%s", out);
    char path[1200];
    snprintf(path, sizeof path, "%s/rep/report.json", d);
    size_t n;
    char *text = read_file(path, &n);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "models"), 0);
    const cJSON *p10 = cJSON_GetArrayItem(cJSON_GetObjectItem(m0, "paper_worst"), 1);
    double sd = cJSON_GetNumberValue(cJSON_GetObjectItem(p10, "sd"));
    CHECK(fabs(sd - sqrt(0.03)) < 1e-12, "report.json: a's eps 0.1 sd %.15g, expected sqrt(0.03)", sd);
    /* report.png's lines: a's from its one run with the strong suite (clean 90, 5, 0), named so; b's from the paper suite */
    const char *want_name[2] = { "a (strong, 1 of 3 runs)", "b (paper, 1 run)" };
    const double want[2][3] = { { 90, 5, 0 }, { 90, 50, 25 } };
    for (int i = 0; i < 2; i++) {
        const cJSON *line = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "models"), i), "plot");
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(line, "name"));
        CHECK(name && strcmp(name, want_name[i]) == 0, "report.json: line %d named '%s', expected '%s'", i, name ? name : "(none)",
              want_name[i]);
        for (int e = 0; e < 3; e++) {
            double y = cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(line, "accuracy"), e));
            CHECK(fabs(y - want[i][e]) < 1e-9, "report.json: line %s point %d is %g, expected %g", want_name[i], e, y, want[i][e]);
            CHECK(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetObjectItem(line, "sd"), e)), "report.json: a one-run line has an sd");
        }
    }
    cJSON_Delete(doc);
    snprintf(path, sizeof path, "%s/rep/report.md", d);
    CHECK(access(path, F_OK) == 0, "no %s", path);
    /* a run without a suite result: named, nothing written */
    snprintf(dir, sizeof dir, "%s/c", d);
    put(dir, "train.json", "{}");
    snprintf(a, sizeof a, "report --runs %s/b,%s/c --out %s/rep2", d, d, d);
    EXPECT(a, 1, "c/robustness.json is missing or is not an attack suite's result");
    snprintf(path, sizeof path, "%s/rep2", d);
    CHECK(access(path, F_OK) != 0, "a refused report created %s", path);
    EXPECT("report --out x", 2, "--runs and --out are required");
}
