/* The test runner. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "test.h"

typedef struct { const char *name, *file; TestFn fn; } Test;
static Test tests[512];
static int n_tests;
static enum { RUNNING, FAILED, SKIPPED } state;
static char tmpdir[256];
static pid_t runner_pid;   /* children forked by test_dies_with exit too: only the runner cleans up */

void test_register(const char *name, const char *file, TestFn fn) {
    if (n_tests < 512) tests[n_tests++] = (Test){ name, file, fn };
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    state = FAILED;
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    skipped: ");
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    state = SKIPPED;
}

bool test_dies_with(void (*fn)(void *), void *arg, const char *needle) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
    buf[n] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool died = WIFEXITED(status) && WEXITSTATUS(status) != 0;
    if (!died || !strstr(buf, needle)) printf("    child %s; its stderr: %s\n", died ? "failed" : "did not fail", buf);
    return died && strstr(buf, needle);
}

static Test children[16];
static int n_children;

void test_register_child(const char *name, TestFn fn) {
    if (n_children < 16) children[n_children++] = (Test){ name, NULL, fn };
}

bool test_child_dies_with(const char *name, const char *needle) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "FINCH_TEST_CHILD='%s' /proc/%d/exe 2>&1", name, (int)getpid());
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int status = pclose(p);
    bool died = WIFEXITED(status) && WEXITSTATUS(status) != 0;
    if (!died || !strstr(buf, needle)) printf("    child %s %s; its output: %s\n", name, died ? "failed" : "did not fail", buf);
    return died && strstr(buf, needle);
}

const char *test_tmpdir(void) { return tmpdir; }

char *test_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

void test_write_idx(const char *path, int ndims, const int *dims, int count, bool gz) {
    unsigned char hdr[4 + 4 * 3] = { 0, 0, 8, (unsigned char)ndims };
    for (int i = 0; i < ndims; i++)
        for (int b = 0; b < 4; b++) hdr[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    unsigned char *data = malloc((size_t)count + 1);
    for (int i = 0; i < count; i++) data[i] = (unsigned char)(i % 10);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, hdr, 4 + 4 * (unsigned)ndims);
        if (count) gzwrite(f, data, (unsigned)count);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(hdr, 1, 4 + 4 * (size_t)ndims, f);
        fwrite(data, 1, (size_t)count, f);
        fclose(f);
    }
    free(data);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void remove_tmpdir(void) {
    if (getpid() != runner_pid) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv) {
    ft_blas_restart(argv);   /* OpenBLAS's generic kernels on a CPU it does not know: 3-4x slower tests */
    const char *filter = argc > 1 ? argv[1] : NULL, *child = getenv("FINCH_TEST_CHILD");
    for (int i = 0; child && i < n_children; i++)
        if (strcmp(children[i].name, child) == 0) { children[i].fn(); return 0; }
    if (child) { fprintf(stderr, "no test child named %s\n", child); return 3; }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/finch-tests-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    runner_pid = getpid();
    atexit(remove_tmpdir);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        state = RUNNING;
        double t0 = now();
        printf("%-44s ", tests[i].name);
        fflush(stdout);
        tests[i].fn();
        const char *verdict = state == FAILED ? "FAIL" : state == SKIPPED ? "SKIP" : "ok";
        if (state == RUNNING) printf("ok   (%.2fs)\n", now() - t0);
        else printf("%s  %s\n", verdict, tests[i].file);
        passed += state == RUNNING;
        failed += state == FAILED;
        skipped += state == SKIPPED;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

Tensor *test_fixture_tensor(const SafeTensors *st, const char *name) {
    const StEntry *e = st_find(st, name);
    if (!e) return NULL;
    Tensor *t = ft_tensor_new(strcmp(e->dtype, "I32") == 0 ? FT_I32 : FT_F32, e->shape, FT_CPU);
    if (st_read_into(st, e, t) != 0) { ft_tensor_free(t); return NULL; }
    return t;
}
