/* Running the finch binary from the CLI tests (test_cli*.c). */
#ifndef FINCH_TESTS_CLI_RUN_H
#define FINCH_TESTS_CLI_RUN_H

#include <stdio.h>
#include <string.h>

/* $FINCH_BIN, or build/finch. */
const char *finch_bin(void);
/* Runs `finch args`; returns the exit code and leaves the last n - 1 bytes of stdout+stderr in
 * out (the whole output is read, so a long listing never dies of a closed pipe). */
int finch_run(const char *args, char *out, size_t n);
/* The same for any command line (a shell's). */
int command_run(const char *command, char *out, size_t n);

/* Why a CLI test that trains on Fashion-MNIST cannot run here (no finch binary, no dataset), or NULL. */
const char *cli_training_missing(void);

/* skips the test when the finch binary is not built */
#define REQUIRE_FINCH() do { \
        FILE *f_ = fopen(finch_bin(), "r"); \
        if (!f_) SKIP("%s is not built", finch_bin()); \
        fclose(f_); \
    } while (0)

#define EXPECT(args, code, needle) do { \
        char out_[8192]; \
        int rc_ = finch_run(args, out_, sizeof out_); \
        CHECK(rc_ == (code) && strstr(out_, needle), "finch %s: exit %d (expected %d), output lacks \"%s\":\n%s", \
              args, rc_, code, needle, out_); \
    } while (0)

#endif
