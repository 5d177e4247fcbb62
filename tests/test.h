/* A small test harness: TEST(name) { ... CHECK(cond, "fmt", ...); } registers itself; the runner
 * (tests/main.c) runs every test, or those whose name contains argv[1], and ends with
 * "N passed, N failed, N skipped". SKIP says why a test did not run; it never counts as a pass. */
#ifndef FINCH_TEST_H
#define FINCH_TEST_H

#include <stdio.h>
#include "core/finch.h"
#include "core/safetensors.h"

typedef void (*TestFn)(void);
void test_register(const char *name, const char *file, TestFn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs fn(arg) in a child process; true when it exits non-zero and its stderr contains `needle`. */
bool test_dies_with(void (*fn)(void *), void *arg, const char *needle);
/* The same, for code that must start in a fresh process (CUDA cannot be used in a child forked
 * after the parent has used it): runs this test binary again, where it calls only the function
 * registered with CHILD(name). */
bool test_child_dies_with(const char *name, const char *needle);
void test_register_child(const char *name, TestFn fn);
#define CHILD(name) \
    static void child_##name(void); \
    __attribute__((constructor)) static void register_child_##name(void) { test_register_child(#name, child_##name); } \
    static void child_##name(void)

/* A fixture tensor by name as a host tensor (int32 for I32 entries, else float32); NULL if absent
 * or unreadable. */
Tensor *test_fixture_tensor(const SafeTensors *st, const char *name);

/* A fresh temporary directory for this test run (removed at exit). */
const char *test_tmpdir(void);
/* test_tmpdir()/name, in one of 8 rotating buffers (so a few can be held at once). */
char *test_path(const char *name);
/* An IDX file of unsigned bytes: header (ndims dims) then `count` data bytes i % 10 (the count may
 * differ from the header's), gzip-compressed or plain. */
void test_write_idx(const char *path, int ndims, const int *dims, int count, bool gz);

#define TEST(name) \
    static void test_##name(void); \
    __attribute__((constructor)) static void register_##name(void) { test_register(#name, __FILE__, test_##name); } \
    static void test_##name(void)

#define CHECK(cond, ...) do { if (!(cond)) { test_fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
        CHECK(fabs(a_ - b_) <= (tol), "%s = %.9g, expected %s = %.9g (tolerance %g)", #a, a_, #b, b_, (double)(tol)); \
    } while (0)
#define SKIP(...) do { test_skip(__VA_ARGS__); return; } while (0)

#endif
