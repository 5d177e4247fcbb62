#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "cli_run.h"

const char *finch_bin(void) {
    const char *b = getenv("FINCH_BIN");
    return b ? b : "build/finch";
}

int finch_run(const char *args, char *out, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s", finch_bin(), args);
    return command_run(cmd, out, n);
}

int command_run(const char *command, char *out, size_t n) {
    char cmd[2100];
    snprintf(cmd, sizeof cmd, "%s 2>&1", command);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t len = 0, cap = 1 << 16;
    char *all = malloc(cap);
    for (size_t k; (k = fread(all + len, 1, cap - len, p)) > 0; ) {
        len += k;
        if (len == cap) all = realloc(all, cap *= 2);
    }
    size_t keep = len < n - 1 ? len : n - 1;
    memcpy(out, all + len - keep, keep);
    out[keep] = 0;
    free(all);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *cli_training_missing(void) {
    static char why[256];
    FILE *f = fopen(finch_bin(), "r");
    if (!f) { snprintf(why, sizeof why, "%s is not built", finch_bin()); return why; }
    fclose(f);
    if (!(f = fopen("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", "r")))
        return "Fashion-MNIST is not installed (make test installs dataset-fashion-mnist)";
    fclose(f);
    return NULL;
}
