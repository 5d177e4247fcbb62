#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

bool cli_parse_eps(const char *s, double *out) {
    char *end;
    errno = 0;
    double a = strtod(s, &end);
    if (end == s || errno) return false;
    if (*end == '/') {
        const char *d = end + 1;
        double b = strtod(d, &end);
        if (end == d || *end || b == 0) return false;
        *out = a / b;
        return true;
    }
    if (*end) return false;
    *out = a;
    return true;
}

int cli_parse_eps_list(const char *cmd, const char *flag, const char *s, double *eps, int max) {
    char list[512];
    int n = 0;
    snprintf(list, sizeof list, "%s", s);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max || !cli_parse_eps(tok, &eps[n]) || !(eps[n] >= 0 && eps[n] <= 1)) {
            fprintf(stderr, "finch %s: --%s '%s': expected up to %d radii in [0, 1] like 2/255 or 0.05, comma separated\n", cmd,
                    flag, s, max);
            return -1;
        }
        n++;
    }
    if (n == 0) fprintf(stderr, "finch %s: --%s is empty\n", cmd, flag);
    return n ? n : -1;
}

static void show_default(const CliArg *a) {
    switch (a->type) {
    case ARG_INT: if (*(int *)a->dst >= a->min) printf(" (default %d)", *(int *)a->dst); break;   /* below: unset */
    case ARG_DOUBLE: printf(" (default %g)", *(double *)a->dst); break;
    case ARG_EPS: printf(" (default %.6g = %.2f/255)", *(double *)a->dst, *(double *)a->dst * 255); break;
    case ARG_STRING: if (*(const char **)a->dst) printf(" (default %s)", *(const char **)a->dst); break;
    case ARG_FLAG: break;
    }
}

static void usage(const char *cmd, const char *summary, const CliArg *args, int n) {
    printf("usage: finch %s [options]\n\n%s\n\noptions:\n", cmd, summary);
    for (int i = 0; i < n; i++) {
        const char *meta = args[i].type == ARG_INT ? " N" : args[i].type == ARG_DOUBLE ? " X"
                         : args[i].type == ARG_EPS ? " EPS" : args[i].type == ARG_STRING ? " S" : "";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", args[i].name, meta);
        printf("  %-22s %s", left, args[i].help);
        show_default(&args[i]);
        printf("\n");
    }
    printf("  %-22s %s\n", "-h, --help", "show this help");
}

static int bad(const char *cmd, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "finch %s: ", cmd);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see finch %s --help)\n", cmd);
    return 2;
}

int cli_parse(const char *cmd, const char *summary, int argc, char **argv, const CliArg *args, int n) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) { usage(cmd, summary, args, n); return 1; }
        if (strncmp(s, "--", 2) != 0) return bad(cmd, "unexpected argument '%s'%s", s, "");
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const CliArg *a = NULL;
        for (int k = 0; k < n; k++)
            if (strlen(args[k].name) == len && strncmp(args[k].name, name, len) == 0) a = &args[k];
        if (!a) return bad(cmd, "unknown option '%s'%s", s, "");
        if (a->type == ARG_FLAG) {
            if (eq) return bad(cmd, "option '--%s' takes no value%s", a->name, "");
            *(bool *)a->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return bad(cmd, "option '--%s' needs a value%s", a->name, "");
        char *end;
        double x = 0;
        switch (a->type) {
        case ARG_INT:
            errno = 0;
            x = (double)strtol(v, &end, 10);
            if (*v == 0 || *end || errno) return bad(cmd, "--%s expects an integer, got '%s'", a->name, v);
            break;
        case ARG_DOUBLE:
            errno = 0;
            x = strtod(v, &end);
            if (*v == 0 || *end || errno) return bad(cmd, "--%s expects a number, got '%s'", a->name, v);
            break;
        case ARG_EPS:
            if (!cli_parse_eps(v, &x)) return bad(cmd, "--%s expects a number or a fraction like 8/255, got '%s'", a->name, v);
            break;
        default:
            *(const char **)a->dst = v;
            continue;
        }
        if (!isfinite(x)) return bad(cmd, "--%s expects a finite number, got '%s'", a->name, v);
        if (!(x >= a->min && x <= a->max)) {
            char range[96];
            snprintf(range, sizeof range, "%s (expected %g..%g)", v, a->min, a->max);
            return bad(cmd, "--%s is out of range: %s", a->name, range);
        }
        if (a->type == ARG_INT) *(int *)a->dst = (int)x;
        else *(double *)a->dst = x;
    }
    return 0;
}

bool cli_device(const char *cmd, const char *s, Device *dev) {
    if (strcmp(s, "cpu") == 0) { *dev = FT_CPU; return true; }
    if (strcmp(s, "cuda") == 0) { *dev = FT_CUDA; return true; }
    fprintf(stderr, "finch %s: --device must be cpu or cuda, got '%s'\n", cmd, s);
    return false;
}
