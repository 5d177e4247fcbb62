/* The finch command line: option tables, parsing and the subcommands. */
#ifndef FINCH_CLI_H
#define FINCH_CLI_H

#include <stdbool.h>
#include "core/finch.h"

typedef enum { ARG_INT, ARG_DOUBLE, ARG_EPS, ARG_STRING, ARG_FLAG } ArgType;

typedef struct {
    const char *name;      /* without the leading "--" */
    ArgType type;
    void *dst;             /* int*, double*, const char**, bool* */
    double min, max;       /* numeric range (inclusive) */
    const char *help;
} CliArg;

/* Parses argv[1..] against args. Returns 0 to run, 1 after printing --help (exit 0), 2 after
 * printing an error naming the flag (exit 2). Defaults are whatever dst holds beforehand. */
int cli_parse(const char *cmd, const char *summary, int argc, char **argv, const CliArg *args, int n);
/* "8/255" or "0.0314" -> value; false if neither */
bool cli_parse_eps(const char *s, double *out);
/* "2/255,8/255,0.1" -> up to max radii in [0, 1]; their count, or -1 after printing the problem
 * (naming --flag). */
int cli_parse_eps_list(const char *cmd, const char *flag, const char *s, double *eps, int max);
/* Whether --name (or --name=...) is on the command line itself. */
bool cli_given(int argc, char **argv, const char *name);
/* finch train's flags that would do nothing for the model and --adv given: prints which and why
 * and returns 2; else 0. */
int cli_unused_train_flags(int argc, char **argv, const char *model, const char *adv);
/* The same for finch attack (--steps with FGSM, --eps with --suite, ...). */
int cli_unused_attack_flags(int argc, char **argv, const char *attack, bool suite);
/* --device cpu|cuda -> Device; prints an error naming the flag and returns false otherwise */
bool cli_device(const char *cmd, const char *s, Device *dev);

int cmd_demo(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_attack_retrieval(int argc, char **argv);
int cmd_clever(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_transfer(int argc, char **argv);
int cmd_benchmark(int argc, char **argv);
int cmd_retrieval(int argc, char **argv);
int cmd_feature_adv(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_prune(int argc, char **argv);

#endif
