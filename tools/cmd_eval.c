/* finch eval and finch attack on saved models. */
#include <stdio.h>
#include <string.h>
#include "run.h"
#include "core/fileio.h"
#include "models/model_io.h"

/* Shared by eval and attack: load --model-file and the test set; NULL with the exit status in *rc. */
static Model *load(const char *cmd, const char *file, const DataOpts *d, Device dev, Splits *data, int *rc) {
    *rc = 2;
    if (!file) { fprintf(stderr, "finch %s: --model-file is required (a model.safetensors written by finch train)\n", cmd); return NULL; }
    *rc = 1;
    Model *m = model_load(file, dev, NULL);
    if (!m) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return NULL; }
    if ((*rc = run_load_data(cmd, d, false, data)) != 0) { model_free(m); return NULL; }
    if ((*rc = run_check_input(cmd, m, &data->test, d->data)) != 0) {
        model_free(m);
        splits_free(data);
        return NULL;
    }
    *rc = 1;
    if (data->test.num_classes > m->num_classes) {
        fprintf(stderr, "finch %s: %s has %d classes, the model %d\n", cmd, d->data, data->test.num_classes, m->num_classes);
        model_free(m);
        splits_free(data);
        return NULL;
    }
    return m;
}

int cmd_eval(int argc, char **argv) {
    const char *file = NULL, *device = "cpu";
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 0, batch = 500, threads = 0;
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        DATA_ARGS(d),
        { "limit", ARG_INT, &limit, 0, 2147483647, "first N test images only (0: all)" },
        { "batch", ARG_INT, &batch, 1, 65536, "batch size" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
    };
    int rc = cli_parse("eval", "Clean test accuracy of a saved model.", argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    Device dev;
    if (!cli_device("eval", device, &dev)) return 2;
    run_set_threads(threads);
    Splits data;
    Model *m = load("eval", file, &d, dev, &data, &rc);
    if (!m) return rc;
    RobustResult r = robust_accuracy(m, &data.test, limit, batch, NULL, 0, false);
    printf("%s: accuracy %.2f%% (%d of %d test images)\n", file, 100.0 * r.clean_correct / r.total, r.clean_correct, r.total);
    model_free(m);
    splits_free(&data);
    return 0;
}

/* The suite's table: Markdown into md (a buffer of n bytes), rows into the JSON array. */
static void suite_table(const SuiteRow *rows, int n_rows, const char *title, char *md, size_t n, cJSON *list) {
    NamedAttack atk[SUITE_ATTACKS];
    suite_paper_attacks(rows[0].eps, atk);
    size_t k = (size_t)snprintf(md, n, "# %s\n\n| eps | images | clean |", title);
    for (int a = 0; a < SUITE_ATTACKS; a++) k += (size_t)snprintf(md + k, n - k, " %s |", atk[a].name);
    k += (size_t)snprintf(md + k, n - k, " worst case |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        const SuiteRow *r = &rows[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(list, j);
        cJSON_AddNumberToObject(j, "eps", r->eps);
        cJSON_AddNumberToObject(j, "images", r->total);
        cJSON_AddNumberToObject(j, "clean_acc", (double)r->clean / r->total);
        k += (size_t)snprintf(md + k, n - k, "| %.4g (%.1f/255) | %d | %.2f |", r->eps, r->eps * 255, r->total, 100.0 * r->clean / r->total);
        for (int a = 0; a < SUITE_ATTACKS; a++) {
            cJSON_AddNumberToObject(j, atk[a].name, (double)r->robust[a] / r->total);
            k += (size_t)snprintf(md + k, n - k, " %.2f |", 100.0 * r->robust[a] / r->total);
        }
        cJSON_AddNumberToObject(j, "worst_case", (double)r->worst / r->total);
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        k += (size_t)snprintf(md + k, n - k, " %.2f |\n", 100.0 * r->worst / r->total);
    }
}

/* finch attack --suite paper: every attack of the robust paper at every eps of eps_list. */
static int run_suite(Model *m, const char *model_file, const Dataset *test, const char *eps_list, int limit, int batch,
                     uint64_t seed, bool quiet, const char *dir) {
    SuiteRow rows[8];
    double eps[8];
    int n_rows = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", eps_list);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n_rows == 8 || !cli_parse_eps(tok, &eps[n_rows]) || eps[n_rows] < 0 || eps[n_rows] > 1) {
            fprintf(stderr, "finch attack: --eps-list '%s': expected up to 8 radii like 2/255 or 0.05, comma separated\n", eps_list);
            return 2;
        }
        n_rows++;
    }
    if (n_rows == 0) { fprintf(stderr, "finch attack: --eps-list is empty\n"); return 2; }
    for (int i = 0; i < n_rows; i++) rows[i] = robust_suite(m, test, limit, batch, eps[i], seed, quiet);
    char title[1200], md[4096], path[1100];
    snprintf(title, sizeof title, "Robustness of %s (%s), %s", m->arch, model_file, test->name);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model_file", model_file);
    cJSON_AddStringToObject(doc, "suite", "paper");
    suite_table(rows, n_rows, title, md, sizeof md, cJSON_AddArrayToObject(doc, "rows"));
    printf("%s", md);
    snprintf(path, sizeof path, "%s/robustness.json", dir);
    int rc = run_write_json("attack", path, doc);
    cJSON_Delete(doc);
    snprintf(path, sizeof path, "%s/robustness.md", dir);
    if (!rc && (rc = write_file_atomic(path, md, strlen(md))) != 0) fprintf(stderr, "finch attack: %s\n", ft_last_error());
    if (!rc) printf("\nwritten: %s/robustness.json and %s\n", dir, path);
    return rc ? 1 : 0;
}

int cmd_attack(int argc, char **argv) {
    const char *file = NULL, *kind = "pgd", *out = NULL, *device = "cpu", *run = NULL, *suite = NULL, *eps_list = "2/255,8/255";
    DataOpts d = { .data = "fashion-mnist" };
    int limit = 1000, batch = 250, steps = 20, seed = 1, threads = 0;
    double eps = 0.1, alpha = 0.01;
    bool quiet = false;
    const CliArg args[] = {
        { "model-file", ARG_STRING, &file, 0, 0, "model.safetensors written by finch train" },
        { "run", ARG_STRING, &run, 0, 0, "a run directory of finch train: its model.safetensors, results written there" },
        DATA_ARGS(d),
        { "attack", ARG_STRING, &kind, 0, 0, "fgsm | fgsm-rs | pgd | bim | mim" },
        { "suite", ARG_STRING, &suite, 0, 0, "paper: FGSM, BIM-10, PGD-10 and MIM-10 at every --eps-list radius" },
        { "eps-list", ARG_STRING, &eps_list, 0, 0, "radii of --suite" },
        { "eps", ARG_EPS, &eps, 0, 1, "L-inf radius on [0,1] pixels (8/255 or 0.0314)" },
        { "alpha", ARG_EPS, &alpha, 0, 1, "step size (pgd, fgsm-rs)" },
        { "steps", ARG_INT, &steps, 1, 100000, "iterations (pgd, bim, mim)" },
        { "limit", ARG_INT, &limit, 1, 2147483647, "first N test images" },
        { "batch", ARG_INT, &batch, 1, 65536, "batch size" },
        { "out", ARG_STRING, &out, 0, 0, "directory for attack.json and attack.png (default: the model's)" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed (random starts)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("attack", "White-box L-inf attack on a saved model: clean and robust accuracy, attack.json and\n"
                       "attack.png (clean images, adversarial images, perturbations, predicted classes).",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    StepAttack a;
    if (strcmp(kind, "fgsm") == 0) a = attack_fgsm(eps);
    else if (strcmp(kind, "fgsm-rs") == 0) a = attack_fgsm_rs(eps, alpha);
    else if (strcmp(kind, "pgd") == 0) a = attack_pgd(eps, alpha, steps);
    else if (strcmp(kind, "bim") == 0) a = attack_bim(eps, steps);
    else if (strcmp(kind, "mim") == 0) a = attack_mim(eps, steps, 1.0);
    else { fprintf(stderr, "finch attack: --attack must be fgsm, fgsm-rs, pgd, bim or mim, got '%s'\n", kind); return 2; }
    if (suite && strcmp(suite, "paper") != 0) { fprintf(stderr, "finch attack: --suite must be paper, got '%s'\n", suite); return 2; }
    if (run && file) { fprintf(stderr, "finch attack: give --run or --model-file, not both\n"); return 2; }
    if ((rc = cli_unused_attack_flags(argc, argv, kind, suite != NULL)) != 0) return rc;
    char model_path[1100];
    if (run) { snprintf(model_path, sizeof model_path, "%s/model.safetensors", run); file = model_path; }
    Device dev;
    if (!cli_device("attack", device, &dev)) return 2;
    run_set_threads(threads);
    Splits data;
    Model *m = load("attack", file, &d, dev, &data, &rc);
    if (!m) return rc;
    char dir[1024], png[1100], json[1100];
    snprintf(dir, sizeof dir, "%s", out ? out : file);
    if (!out) { char *slash = strrchr(dir, '/'); if (slash) *slash = 0; else snprintf(dir, sizeof dir, "."); }
    snprintf(png, sizeof png, "%s/attack.png", dir);
    snprintf(json, sizeof json, "%s/attack.json", dir);
    if (make_dirs(dir) != 0) { fprintf(stderr, "finch attack: %s\n", ft_last_error()); model_free(m); splits_free(&data); return 1; }
    if (suite) {
        rc = run_suite(m, file, &data.test, eps_list, limit, batch, (uint64_t)seed, quiet, dir);
        model_free(m);
        splits_free(&data);
        return rc;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model_file", file);
    cJSON_AddStringToObject(doc, "attack", kind);
    double robust = run_attack(m, &data.test, limit, batch, &a, (uint64_t)seed, png, quiet, doc);
    double clean = cJSON_GetObjectItem(doc, "clean_acc")->valuedouble;
    rc = run_write_json("attack", json, doc);
    printf("%s, eps %.4g (%.1f/255): clean accuracy %.2f%%, robust accuracy %.2f%% on %d images\n  %s, %s\n",
           kind, eps, eps * 255, 100 * clean, 100 * robust, (int)cJSON_GetObjectItem(doc, "images")->valuedouble, png, json);
    cJSON_Delete(doc);
    model_free(m);
    splits_free(&data);
    return rc ? 1 : 0;
}
