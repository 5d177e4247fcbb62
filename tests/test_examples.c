/* The example programs (examples/, built by make examples next to the finch binary): each runs to
 * exit 0 and prints what it promises, so that none can rot. */
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"
#include "data/image.h"

/* dirname(finch binary)/examples/name, or NULL (the test skips) when it is not built */
static const char *example(const char *name, char *path, size_t n) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s", finch_bin());
    snprintf(path, n, "%s/examples/%s", dirname(bin), name);
    return access(path, X_OK) == 0 ? path : NULL;
}

#define RUN_EXAMPLE(name, args, needle) do { \
        char path_[600], cmd_[4096], out_[16384]; \
        if (!example(name, path_, sizeof path_)) SKIP("%s is not built (make examples)", path_); \
        snprintf(cmd_, sizeof cmd_, "%s %s", path_, args); \
        int rc_ = command_run(cmd_, out_, sizeof out_); \
        CHECK(rc_ == 0 && strstr(out_, needle), "%s: exit %d, output lacks \"%s\":\n%s", cmd_, rc_, needle, out_); \
    } while (0)

TEST(example_01_tape_prints_the_backward_walk) {
    RUN_EXAMPLE("01_tape", "", "node 0 (mul): receives d L / d out, adds into its 2 input(s)");
    RUN_EXAMPLE("01_tape", "", "dL/dx (expected 2x + 1) = [3, -3, 7]");
}

TEST(example_03_custom_op_passes_the_gradient_checker_and_a_wrong_one_fails) {
    RUN_EXAMPLE("03_custom_op", "", "the checker passes the right backward and catches the wrong one");
}

TEST(example_02_mlp_learns_the_two_spirals_and_draws_its_regions) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/spirals", test_tmpdir());
    mkdir(dir, 0755);
    RUN_EXAMPLE("02_mlp_spirals", dir, "after training: accuracy");   /* it exits 1 below 95% */
    const char *files[2] = { "spirals-before.png", "spirals-after.png" };
    for (int i = 0; i < 2; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(access(path, F_OK) == 0, "no %s", path);
    }
}

/* FGSM is deterministic: the hand-written one must leave exactly the images finch attack's does */
TEST(example_04_fgsm_by_hand_matches_finch_attack) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", F_OK) != 0)
        SKIP("Fashion-MNIST is not installed (make test installs dataset-fashion-mnist)");
    REQUIRE_FINCH();
    char a[2048], out[8192], model[700];
    snprintf(model, sizeof model, "%s/ex4/model.safetensors", test_tmpdir());
    snprintf(a, sizeof a, "train --limit 2048 --batch 64 --epochs 1 --width 8 --quiet --out %s/ex4", test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "attack --model-file %s --attack fgsm --eps 0.1 --limit 100 --out %s/ex4/fgsm --quiet", model, test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    char *row = strstr(out, "| fgsm | 100 | ");
    double clean = -1, robust = -1;
    CHECK(row && sscanf(row, "| fgsm | 100 | %lf | %lf |", &clean, &robust) == 2, "no FGSM row in:\n%s", out);
    char needle[160];
    snprintf(needle, sizeof needle, "100 test images: clean %d right, FGSM (eps 0.1) %d,", (int)lround(clean), (int)lround(robust));
    snprintf(a, sizeof a, "%s 100", model);
    RUN_EXAMPLE("04_fgsm_pgd", a, needle);
}

/* make install into a temporary prefix; examples built outside the tree with pkg-config, shared and
 * static; the headers parsed as C++ (tools/install_check.sh) */
TEST(make_install_gives_a_library_that_pkg_config_builds_against) {
    if (getenv("FINCH_BIN")) SKIP("FINCH_BIN is set (a sanitizer build): the install check runs on the default build");
    if (system("command -v pkg-config > /dev/null 2>&1 && command -v c++ > /dev/null 2>&1") != 0) SKIP("pkg-config or c++ is missing");
    char out[16384];
    int rc = command_run("sh tools/install_check.sh build", out, sizeof out);
    CHECK(rc == 0 && strstr(out, "matches 2x + 1") && strstr(out, "catches the wrong one") && strstr(out, "install check: ok"),
          "tools/install_check.sh: exit %d:\n%s", rc, out);
}

/* the explanation through the library calls names the class finch explain names, and draws */
TEST(example_06_explains_a_prototype_network_as_finch_explain_does) {
    if (access("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", F_OK) != 0)
        SKIP("Fashion-MNIST is not installed (make test installs dataset-fashion-mnist)");
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char a[2048], out[8192];
    snprintf(a, sizeof a, "train --model protopnet-small_cnn --width 4 --prototypes-per-class 2 --proto-depth 8 --limit 256 --batch 64 "
             "--epochs 2 --warm-epochs 1 --push-start 1 --push-every 1 --last-iters 1 --val-fraction 0.01 --quiet --out %s/ex6", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "explain --run %s/ex6 --index 3 --top 1 --out %s/ex6/explain", d, d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    char *colon = strstr(out, "test-3: "), name[64] = "";
    CHECK(colon && sscanf(colon, "test-3: %63[^(]", name) == 1, "finch explain's output:\n%s", out);
    size_t len = strlen(name);
    while (len && name[len - 1] == ' ') name[--len] = 0;
    char needle[128];
    snprintf(needle, sizeof needle, "predicted %s\n", name);
    snprintf(a, sizeof a, "%s/ex6/model.safetensors 3 %s/ex6", d, d);
    RUN_EXAMPLE("06_explain", a, needle);
    snprintf(a, sizeof a, "%s/ex6/explain-heat.png", d);
    CHECK(access(a, F_OK) == 0, "no %s", a);
}

/* docs/API.md is generated from the public headers; a header changed without regenerating it fails here */
TEST(docs_api_md_is_what_the_headers_say) {
    size_t n, cap = 1 << 20;
    char *out = malloc(cap);
    int rc = command_run("sh tools/api_doc.sh", out, cap);
    char *doc = read_file("docs/API.md", &n);
    CHECK(rc == 0 && doc && strlen(out) < cap - 1 && strcmp(out, doc) == 0,
          "docs/API.md differs from what tools/api_doc.sh writes now: run sh tools/api_doc.sh > docs/API.md");
    free(doc);
    free(out);
}

/* torchvision-named weights (a reduced ResNet-18 trained and exported by finch, as make test cannot
 * download ImageNet weights) loaded strictly, a JPEG classified: all four classes listed, most
 * likely first, probabilities summing to 1; the wrong width refused by the strict load */
TEST(example_05_classifies_a_jpeg_with_exported_weights) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char a[2048], out[8192], path[700];
    snprintf(a, sizeof a, "train --model resnet18 --width 4 --blocks 1,1,1,1 --data synthetic --limit 256 --batch 64 --epochs 1 --quiet "
             "--out %s/ex5", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "export --model-file %s/ex5/model.safetensors --out %s/ex5/torchvision.safetensors", d, d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    uint8_t px[40 * 60 * 3];
    for (int i = 0; i < 40 * 60; i++) memset(px + 3 * i, (i / 60 < 20 && i % 60 < 30) ? 200 : 30, 3);
    snprintf(path, sizeof path, "%s/ex5/image.jpg", d);
    CHECK(jpeg_write_rgb(path, px, 60, 40, 90) == 0, "%s", ft_last_error());
    char ex[600], cmd[2048];
    if (!example("05_classify", ex, sizeof ex)) SKIP("%s is not built (make examples)", ex);
    snprintf(cmd, sizeof cmd, "%s resnet18 %s/ex5/torchvision.safetensors %s - 28 4 1,1,1,1", ex, d, path);
    CHECK(command_run(cmd, out, sizeof out) == 0 && strstr(out, "62 tensors loaded") && strstr(out, "top 4 of"), "%s:\n%s", cmd, out);
    double p[4] = { -1, -1, -1, -1 }, sum = 0;
    char *at = out;
    for (int t = 0; t < 4 && (at = strstr(at, "p = ")); t++, at += 4) p[t] = atof(at + 4);
    for (int t = 0; t < 4; t++) sum += p[t];
    CHECK(fabs(sum - 1) < 2e-4 && p[0] >= p[1] && p[1] >= p[2] && p[2] >= p[3] && p[3] >= 0, "probabilities %g %g %g %g", p[0], p[1],
          p[2], p[3]);
    snprintf(cmd, sizeof cmd, "%s resnet18 %s/ex5/torchvision.safetensors %s - 28 8 1,1,1,1", ex, d, path);
    CHECK(command_run(cmd, out, sizeof out) == 1, "the wrong width was not refused:\n%s", out);
}
