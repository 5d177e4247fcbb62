/* finch eval on saved models, and the model loading that finch attack shares. */
#include <stdio.h>
#include <string.h>
#include "run.h"
#include "core/fileio.h"
#include "models/model_io.h"

Model *run_load_model(const char *cmd, const char *file, const DataOpts *d, Device dev, Splits *data, int *rc) {
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
    Model *m = run_load_model("eval", file, &d, dev, &data, &rc);
    if (!m) return rc;
    Accuracy r = clean_accuracy(m, &data.test, limit, batch, false);
    printf("%s: accuracy %.2f%% (%d of %d test images)\n", file, 100.0 * r.correct / r.total, r.correct, r.total);
    model_free(m);
    splits_free(&data);
    return 0;
}

