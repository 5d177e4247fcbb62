/* The robustness benchmark's commands end to end: finch clever, finch transfer, finch benchmark. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "models/model_io.h"

/* finch clever on a small trained model: scores for every image, and bad settings refused with
 * the flag named before any file is written. */
TEST(cli_clever_scores_a_model_and_refuses_bad_settings) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char a[1024], out[16384], json[700];
    snprintf(a, sizeof a, "train --data synthetic --limit 512 --batch 64 --epochs 1 --out %s/cl_model --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(json, sizeof json, "%s/cl_out/clever.json", d);
    const char *bad[][2] = { { "--radius 0", "--radius must be above 0" }, { "--batches 0", "--batches" }, { "--samples 0", "--samples" },
                             { "--norm 3", "--norm must be 2, inf or 1" }, { "--target 7", "--target 7: the model has classes 0..3" },
                             { "--target top-1", "--target must be top-K" }, { "--sampling sphere", "--sampling must be" } };
    for (int i = 0; i < 7; i++) {
        snprintf(a, sizeof a, "clever --data synthetic --model-file %s/cl_model/model.safetensors --out %s/cl_out %s", d, d, bad[i][0]);
        EXPECT(a, 2, bad[i][1]);
        CHECK(access(json, F_OK) != 0, "%s left %s behind", bad[i][0], json);
    }
    snprintf(a, sizeof a, "clever --data synthetic --model-file %s/nowhere.safetensors --out %s/cl_out", d, d);
    EXPECT(a, 1, "nowhere.safetensors");
    snprintf(a, sizeof a, "clever --data synthetic --model-file %s/cl_model/model.safetensors --out %s/cl_out --limit 2 --batches 10 "
             "--samples 32 --target untargeted --norm inf --quiet", d, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "Mean score over the images"), "finch %s:\n%s", a, out);
    size_t n;
    char *text = read_file(json, &n);
    cJSON *doc = text ? cJSON_Parse(text) : NULL, *im;
    int images = 0, targets = 0;
    cJSON_ArrayForEach(im, cJSON_GetObjectItemCaseSensitive(doc, "images")) {
        images++;
        double s = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(im, "score"));
        CHECK(s > 0 && s <= 0.1, "image %d: score %g, expected in (0, R = 0.1]", images - 1, s);
        targets += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(im, "targets"));
    }
    CHECK(images == 2 && targets == 6, "%d images with %d targets in clever.json, expected 2 with 3 each", images, targets);
    cJSON_Delete(doc);
    free(text);
}

/* finch transfer between two small trained models: one matrix and one heatmap per iteration
 * count, the examples saved; models that cannot be compared, and bad settings, are refused
 * before any result file is written. Then finch benchmark over them, and again (reused). */
TEST(cli_transfer_and_benchmark_write_their_results_and_refuse_mismatched_models) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char a[2048], out[16384], path[800];
    for (int k = 0; k < 2; k++) {
        snprintf(a, sizeof a, "train --data synthetic --limit 512 --batch 64 --epochs 1 --seed %d --width %d --out %s/tr_m%d --quiet",
                 k + 1, 4 + 4 * k, d, k);
        CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    }
    /* an untrained model with 3 classes */
    ModelConfig mc = { .num_classes = 3, .width = 2 };
    Model *m3 = model_create("small_cnn", &mc);
    snprintf(path, sizeof path, "%s/three.safetensors", d);
    CHECK(m3 && model_save(m3, &mc, path) == 0, "%s", ft_last_error());
    model_free(m3);
    const char *bad[][3] = {
        { "--models %s/tr_m0,%s/three.safetensors", "2", "has 3 classes" }, { "--models %s/tr_m0,%s/nowhere.safetensors", "1", "nowhere.safetensors" },
        { "--models %s/tr_m0,%s/tr_m1 --attack pgd", "2", "--attack must be fgsm, ifgsm, cw or ead" },
        { "--models %s/tr_m0,%s/tr_m1 --attack cw --steps-list 1,2", "2", "--steps-list is for --attack ifgsm" },
        { "--models %s/tr_m0,%s/tr_m1 --steps-list 1,0", "2", "--steps-list must be positive" },
        { "--models %s/tr_m0,%s/tr_m1 --target 9", "2", "--target 9: the models have classes 0..3" },
    };
    for (int i = 0; i < 6; i++) {
        char models[1200];
        snprintf(models, sizeof models, bad[i][0], d, d);
        snprintf(a, sizeof a, "transfer --data synthetic %s --out %s/tr_out", models, d);
        int rc = finch_run(a, out, sizeof out);
        CHECK(rc == atoi(bad[i][1]) && strstr(out, bad[i][2]), "finch %s: exit %d (expected %s), output should name '%s':\n%s", a, rc,
              bad[i][1], bad[i][2], out);
        snprintf(path, sizeof path, "%s/tr_out/transfer.json", d);
        CHECK(access(path, F_OK) != 0, "%s: a result file was written", bad[i][0]);
    }
    snprintf(a, sizeof a, "transfer --data synthetic --models %s/tr_m0,%s/tr_m1 --limit 40 --steps-list 1,3 --eps 0.2 --out %s/tr_out "
             "--quiet", d, d, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "| tr_m0 | **"), "finch %s:\n%s", a, out);
    const char *files[] = { "transfer.json", "transfer.md", "transfer-steps-1.png", "transfer-steps-3.png",
                            "adv-tr_m0-steps-1.safetensors", "adv-tr_m1-steps-3.safetensors" };
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/tr_out/%s", d, files[i]);
        size_t n = 0;
        char *text = read_file(path, &n);
        CHECK(text && n > 100, "%s: missing or nearly empty (%zu bytes)", files[i], n);
        if (i >= 2 && i < 4) CHECK(n > 8 && memcmp(text, "\x89PNG", 4) == 0, "%s is not a PNG", files[i]);
        free(text);
    }
    snprintf(path, sizeof path, "%s/tr_out/transfer.json", d);
    char *text = read_file(path, NULL);
    cJSON *doc = cJSON_Parse(text), *mat;
    int matrices = 0;
    cJSON_ArrayForEach(mat, cJSON_GetObjectItemCaseSensitive(doc, "matrices")) {
        cJSON *rows = cJSON_GetObjectItemCaseSensitive(mat, "rate");
        CHECK(cJSON_GetArraySize(rows) == 2 && cJSON_GetArraySize(cJSON_GetArrayItem(rows, 0)) == 2, "a 2 x 2 matrix");
        double white = cJSON_GetArrayItem(cJSON_GetArrayItem(rows, 0), 0)->valuedouble;
        CHECK(white > 0 && white <= 1, "white-box error rate %g at eps 0.2", white);
        matrices++;
    }
    CHECK(matrices == 2 && cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "images")) >= 1, "%d matrices", matrices);
    cJSON_Delete(doc);
    free(text);
    /* finch benchmark over the same two models, tiny settings; a re-run reuses every result */
    const char *tiny = "--limit 16 --cw-steps 20 --search-steps 6 --clever-limit 1 --batches 5 --samples 16 --transfer-limit 20";
    snprintf(a, sizeof a, "benchmark --data synthetic --models %s/tr_m0,%s/three.safetensors --out %s/bm %s", d, d, d, tiny);
    EXPECT(a, 2, "has 3 classes");
    snprintf(path, sizeof path, "%s/bm/benchmark.json", d);
    CHECK(access(path, F_OK) != 0, "a refused benchmark wrote benchmark.json");
    snprintf(a, sizeof a, "benchmark --data synthetic --models %s/tr_m0,%s/tr_m1 --out %s/bm %s", d, d, d, tiny);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "| tr_m1 |") && strstr(out, "15 of 15 steps done"), "finch %s:\n%s", a, out);
    const char *bfiles[] = { "benchmark.json", "benchmark.md", "benchmark.png", "tr_m0/cw.json", "tr_m1/clever-inf.json",
                             "transfer/transfer.json" };
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/bm/%s", d, bfiles[i]);
        size_t n = 0;
        char *t = read_file(path, &n);
        CHECK(t && n > 100, "benchmark: %s missing or nearly empty (%zu bytes)", bfiles[i], n);
        if (i == 2) CHECK(memcmp(t, "\x89PNG", 4) == 0, "benchmark.png is not a PNG");
        free(t);
    }
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "tr_m1: ead, reused") && strstr(out, "transfer matrix, reused"),
          "a re-run with the same settings should reuse the results:\n%s", out);
    /* CLEVER against the runner-up alone is another setting: recomputed, and said so in the file */
    char b2[1400];
    snprintf(b2, sizeof b2, "benchmark --data synthetic --models %s/tr_m0,%s/tr_m1 --out %s/bm2 %s --clever-target top-2", d, d, d, tiny);
    EXPECT("benchmark --models x --out y --clever-target 3", 2, "--clever-target must be untargeted or top-K");
    CHECK(finch_run(b2, out, sizeof out) == 0 && !strstr(out, "reused"), "finch %s:\n%s", b2, out);
    snprintf(path, sizeof path, "%s/bm2/tr_m1/clever-2.json", d);
    text = read_file(path, NULL);
    CHECK(text && strstr(text, "\"target\":\t\"top-2\"") && strstr(text, "top-2, transfer"), "%s does not say top-2:\n%s", path,
          text ? text : "(missing)");
    free(text);
    /* a result file that keeps its settings but not its numbers (edited by hand, damaged): read back as not measured */
    snprintf(path, sizeof path, "%s/bm/tr_m0/cw.json", d);
    text = read_file(path, NULL);
    doc = text ? cJSON_Parse(text) : NULL;
    CHECK(doc, "%s is not JSON", path);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "success_rate", cJSON_CreateString("half"));
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "distortion", cJSON_CreateNumber(-1));
    char *edited = cJSON_Print(doc);
    CHECK(write_file_atomic(path, edited, strlen(edited)) == 0, "%s", ft_last_error());
    free(edited);
    cJSON_Delete(doc);
    free(text);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "tr_m0: cw, reused"), "finch %s:\n%s", a, out);
    const char *row = strstr(out, "| tr_m0 |");
    int dashes = 0;
    for (const char *c = row; c && *c && *c != '\n'; c++) dashes += c[0] == '|' && c[1] == ' ' && c[2] == '-' && c[3] == ' ';
    CHECK(dashes == 2, "the damaged C&W result should leave its two cells (success, L2) empty:\n%s", out);
}

/* finch retrieval and finch attack --retrieval on a small model trained on synthetic data: the
 * tables and files, a large radius that hurts retrieval, and bad requests refused before any file
 * is written. */
TEST(cli_retrieval_attacks_rank_adversarial_queries_against_the_clean_gallery) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char a[2048], out[16384], path[800];
    snprintf(a, sizeof a, "train --data synthetic --limit 512 --batch 64 --epochs 2 --width 4 --out %s/rt --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "retrieval --run %s/rt --quiet", d);
    EXPECT(a, 0, "Protocol: the test images, classes as identities");
    for (int k = 0; k < 2; k++) {
        snprintf(a, sizeof a, "attack --retrieval --run %s/rt --attack %s --limit 24 --gallery 200 --eps-list 2/255,0.5 "
                 "--out %s/rt/%s --quiet", d, k ? "mim" : "odfa-ms", d, k ? "mim" : "odfa");
        CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "| clean |"), "finch %s:\n%s", a, out);
        snprintf(path, sizeof path, "%s/rt/%s/retrieval-attack.json", d, k ? "mim" : "odfa");
        char *text = read_file(path, NULL);
        cJSON *doc = text ? cJSON_Parse(text) : NULL;
        free(text);
        CHECK(doc, "no %s", path);
        double clean = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "clean"), "map")->valuedouble;
        cJSON *rows = cJSON_GetObjectItem(doc, "rows");
        double big = cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 1), "map")->valuedouble;
        int steps = (int)cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "steps")->valuedouble;
        CHECK(cJSON_GetArraySize(rows) == 2 && steps == 3 && big < clean, "%s: mAP %g clean, %g at eps 0.5; %d steps at 2/255",
              path, clean, big, steps);
        cJSON_Delete(doc);
        snprintf(path, sizeof path, "%s/rt/%s/retrieval-attack.png", d, k ? "mim" : "odfa");
        size_t n = 0;
        char *png = read_file(path, &n);
        CHECK(png && n > 1000 && memcmp(png, "\x89PNG", 4) == 0, "%s: no picture (%zu bytes)", path, n);
        free(png);
    }
    /* a 2-D linear feature layer: the features drawn before and after; --feature-dim is the small CNN's alone */
    snprintf(a, sizeof a, "train --data synthetic --limit 512 --batch 64 --epochs 1 --width 4 --feature-dim 2 --out %s/rt2d --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "attack --retrieval --run %s/rt2d --layer fc1 --limit 24 --gallery 100 --eps-list 8/255 --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "retrieval-features.png"), "finch %s:\n%s", a, out);
    snprintf(path, sizeof path, "%s/rt2d/retrieval-features.png", d);
    CHECK(access(path, F_OK) == 0, "no %s", path);
    EXPECT("train --model resnet18 --feature-dim 2", 2, "--feature-dim does nothing for a model that is not the small CNN classifier");
    /* black box: queries made on another model, through JPEG at quality 75 */
    snprintf(a, sizeof a, "train --data synthetic --limit 512 --batch 64 --epochs 1 --width 8 --seed 2 --out %s/rt2 --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "attack --retrieval --model-file %s/rt2/model.safetensors --eval-model %s/rt/model.safetensors --data "
             "synthetic --limit 24 --gallery 200 --eps-list 8/255 --jpeg-quality 75 --out %s/rt/bb --quiet", d, d, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "ranked by") && strstr(out, "JPEG round trip at quality 75"),
          "finch %s:\n%s", a, out);
    const char *bad[][3] = { { "--attack pgd", "2", "--attack must be odfa, odfa-ms, bim, ifgsm or mim" },
                             { "--eps-list nan", "2", "--eps-list 'nan'" }, { "--layer layer9", "2", "has no layer 'layer9'" },
                             { "--split test", "2", "--split is for cub: data only" } };
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "attack --retrieval --run %s/rt %s --limit 4 --out %s/rt-bad --quiet", d, bad[i][0], d);
        EXPECT(a, atoi(bad[i][1]), bad[i][2]);
        snprintf(path, sizeof path, "%s/rt-bad", d);
        CHECK(access(path, F_OK) != 0, "a refused attack created %s (%s)", path, bad[i][0]);
    }
}

/* finch feature-adv on a small model trained on synthetic data: the table and files; bad requests
 * refused before anything is written. */
TEST(cli_feature_adversaries_report_ratios_ranks_and_labels) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char a[2048], out[16384], path[800];
    snprintf(a, sizeof a, "train --data synthetic --limit 512 --batch 64 --epochs 1 --width 4 --out %s/fa --quiet", d);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "feature-adv --model-file %s/fa/model.safetensors --data synthetic --layer pooled,conv2 --delta 10/255,0.2 "
             "--pairs 4 --neighbours 64 --out %s/fa/adv", d, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "| conv2 | 51/255 |"), "finch %s:\n%s", a, out);
    const char *files[] = { "feature-adv.json", "feature-adv.md", "feature-adv.png" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/fa/adv/%s", d, files[i]);
        CHECK(access(path, F_OK) == 0, "no %s", path);
    }
    /* one pair from files: two synthetic test-like images of different classes (noise and all: a
     * noiseless picture can sit where the pooled features have no gradient), and one 32x32 */
    Dataset syn;
    synthetic_quadrants(&syn, 16, 5, 60, 60, 40);
    int src_i = 0, guide_i = 1;
    while (ft_i32(syn.labels)[guide_i] == ft_i32(syn.labels)[src_i]) guide_i++;
    uint8_t px[32 * 32 * 3];
    for (int k = 0; k < 3; k++) {
        int side = k == 2 ? 32 : 28;
        const uint8_t *im = ft_u8(syn.images) + (size_t)(k == 1 ? guide_i : src_i) * 28 * 28;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) memset(px + (y * side + x) * 3, im[(y % 28) * 28 + x % 28], 3);
        snprintf(path, sizeof path, "%s/fa/%s.png", d, k == 0 ? "src" : k == 1 ? "guide" : "guide32");
        CHECK(png_write_rgb(path, px, side, side) == 0, "%s", ft_last_error());
    }
    dataset_free(&syn);
    snprintf(a, sizeof a, "feature-adv --model-file %s/fa/model.safetensors --data synthetic --source %s/fa/src.png --guide %s/fa/guide.png "
             "--layer pooled --delta 0.2 --memory 5 --iters 200 --neighbours 64 --out %s/fa/files", d, d, d, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "fa/src.png, guide") && strstr(out, "m 5, at most 200 iterations"),
          "finch %s:\n%s", a, out);
    snprintf(path, sizeof path, "%s/fa/files/feature-adv.json", d);
    size_t len;
    char *text = read_file(path, &len);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(doc != NULL, "no %s", path);
    if (doc) {
        cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "rows"), 0);
        double ratio = cJSON_GetNumberValue(cJSON_GetObjectItem(row, "ratio_mean"));
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "pairs")) == 1 && ratio < 0.5, "pairs %g, ratio %g",
              cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "pairs")), ratio);
        cJSON_Delete(doc);
    }
    char files_bad[4][600];
    snprintf(files_bad[0], sizeof files_bad[0], "--source %s/fa/src.png --guide %s/fa/guide32.png", d, d);
    snprintf(files_bad[1], sizeof files_bad[1], "--source %s/fa/src.png", d);
    snprintf(files_bad[2], sizeof files_bad[2], "--source %s/fa/guide32.png --guide %s/fa/guide32.png", d, d);
    snprintf(files_bad[3], sizeof files_bad[3], "--pairs 2 --source %s/fa/src.png --guide %s/fa/guide.png", d, d);
    const char *bad[][2] = { { "--delta 0", "--delta must be positive" }, { "--delta nan", "--delta 'nan'" },
                             { "--layer layer9", "has no layer 'layer9'; its layers: conv1" }, { "--memory 0", "--memory" },
                             { files_bad[0], "is 32x32, the source is 28x28" }, { files_bad[1], "--source and --guide go together" },
                             { files_bad[2], "takes 28x28 images" }, { files_bad[3], "not both" } };
    for (int i = 0; i < 8; i++) {
        snprintf(a, sizeof a, "feature-adv --model-file %s/fa/model.safetensors --data synthetic %s --out %s/fa-bad", d, bad[i][0], d);
        EXPECT(a, 2, bad[i][1]);
        snprintf(path, sizeof path, "%s/fa-bad", d);
        CHECK(access(path, F_OK) != 0, "a refused feature-adv created %s", path);
    }
}
