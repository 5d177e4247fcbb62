/* The per-op profiler (core/profile.c): calls, bytes and times per op, forward and backward; and
 * finch --profile's table and JSON. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"

static const ProfileRow *find(const ProfileRow *r, int n, const char *op) {
    for (int i = 0; i < n; i++)
        if (strcmp(r[i].op, op) == 0) return &r[i];
    return NULL;
}

TEST(profile_counts_each_op_forward_and_backward_with_its_tape_bytes) {
    ft_profile_reset();
    ft_profile_enable(true);
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(1000), FT_CPU);
    x->requires_grad = true;
    ft_backward(tp, ft_sum(tp, ft_add(tp, ft_mul(tp, x, x), x), FT_ALL_DIMS, false));
    ft_no_grad_begin(tp);
    ft_mul(tp, x, x);   /* an op that records nothing is profiled all the same */
    ft_no_grad_end(tp);
    ft_profile_enable(false);
    ft_mul(tp, x, x);   /* off: not counted */
    ProfileRow *r;
    int n = ft_profile_rows(&r);
    const ProfileRow *mul = find(r, n, "mul"), *add = find(r, n, "add"), *sum = find(r, n, "sum");
    CHECK(n == 3 && mul && add && sum, "%d rows", n);
    if (mul && add && sum) {
        CHECK(mul->forward_calls == 2 && mul->backward_calls == 1 && add->forward_calls == 1 && add->backward_calls == 1 &&
              sum->backward_calls == 1, "calls: mul %lld/%lld add %lld/%lld sum %lld", (long long)mul->forward_calls,
              (long long)mul->backward_calls, (long long)add->forward_calls, (long long)add->backward_calls, (long long)sum->backward_calls);
        /* each mul allocates its 1000-double output on the tape, the sum one double */
        CHECK(mul->bytes == 2 * 8000 && add->bytes == 8000 && sum->bytes == 8, "bytes: mul %g add %g sum %g", mul->bytes, add->bytes,
              sum->bytes);
        CHECK(mul->forward_s >= 0 && mul->backward_s >= 0 && r[0].forward_s + r[0].backward_s >= r[n - 1].forward_s + r[n - 1].backward_s,
              "times not sorted");
    }
    free(r);
    ft_profile_reset();
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(cli_profile_prints_the_table_and_writes_json) {
    REQUIRE_FINCH();
    char a[2048], out[16384], json[600];
    snprintf(json, sizeof json, "%s/profile.json", test_tmpdir());
    for (int flag = 0; flag < 2; flag++) {
        unlink(json);
        snprintf(a, sizeof a, "FINCH_PROFILE_JSON=%s %s %s train --data synthetic --limit 128 --batch 64 --epochs 1 --width 4 --quiet "
                 "--overwrite --out %s/prof %s", json, flag ? "" : "FINCH_PROFILE=1", finch_bin(), test_tmpdir(), flag ? "--profile" : "");
        const char *cmd = a;
        CHECK(command_run(cmd, out, sizeof out) == 0 && strstr(out, "profile (per op") && strstr(out, "conv2d"), "%s:\n%s", cmd, out);
        size_t n;
        char *text = read_file(json, &n);
        cJSON *doc = text ? cJSON_Parse(text) : NULL, *op;
        free(text);
        bool conv = false;
        cJSON_ArrayForEach(op, cJSON_GetObjectItem(doc, "ops"))
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(op, "op")), "conv2d") == 0)
                conv = cJSON_GetNumberValue(cJSON_GetObjectItem(op, "forward_calls")) > 0 &&
                       cJSON_GetNumberValue(cJSON_GetObjectItem(op, "backward_calls")) > 0;
        CHECK(conv, "%s: no conv2d row with forward and backward calls", json);
        cJSON_Delete(doc);
    }
}
