/* finch explain as a user meets it: the pages of a prototype network and of an attention
 * network, their pictures' shapes, bad requests; and finch prune, which reads the same runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"
#include "data/image.h"

static bool exists(const char *dir, const char *file) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Every <img> of dir/explain.html is drawn at its PNG's own aspect ratio (to the rounding of a
 * pixel) and at a size a reader can see: its longer side between 56 and 224 pixels. The number
 * of pictures checked, or -1 with *why. */
static int page_pictures_keep_their_shape(const char *dir, char *why, size_t n_why) {
    char path[1200];
    snprintf(path, sizeof path, "%s/explain.html", dir);
    size_t len;
    char *html = read_file(path, &len);
    if (!html) { snprintf(why, n_why, "no explain.html in %.400s", dir); return -1; }
    int n = 0;
    for (char *p = strstr(html, "<img "); p; p = strstr(p + 1, "<img ")) {
        char file[256];
        int W = 0, H = 0, w = 0, h = 0;
        if (sscanf(p, "<img src=\"%255[^\"]\" alt=\"%*[^\"]\" width=\"%d\" height=\"%d\"", file, &W, &H) != 3) {
            snprintf(why, n_why, "an <img> without both width and height: %.80s", p);
            n = -1;
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dir, file);
        Image im;
        if (png_read(path, &im) != 0) { snprintf(why, n_why, "%s", ft_last_error()); n = -1; break; }
        w = im.width;
        h = im.height;
        image_free(&im);
        int big = W > H ? W : H;
        if (labs((long)W * h - (long)H * w) > (w > h ? w : h) || big < 56 || big > 224) {
            snprintf(why, n_why, "%s is %dx%d, drawn %dx%d", file, w, h, W, H);
            n = -1;
            break;
        }
        n++;
    }
    free(html);
    return n;
}

/* Ours-A (attention, no prototypes): explained by its classes' attention maps, whose means must
 * be the logits the model classifies with (checked against the probabilities of its forward). */
TEST(cli_explains_an_attention_network_by_its_class_maps) {
    const char *why = cli_training_missing();
    if (why) SKIP("%s", why);
    char a[2048], out[8192], run_dir[600], dir[800], path[900];
    snprintf(run_dir, sizeof run_dir, "%s/ap-explain", test_tmpdir());
    snprintf(a, sizeof a, "train --model ap-small_cnn --width 4 --limit 256 --batch 64 --epochs 1 --val-fraction 0.01 --quiet --out %s",
             run_dir);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "explain --run %s --index 7 --top 3", run_dir);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "true class Shirt (6)") && strstr(out, "logit  probability"),
          "finch %s: no class table for test image 7 (a Shirt):\n%s", a, out);
    snprintf(dir, sizeof dir, "%s/explain-test-7", run_dir);
    const char *files[] = { "explain.html", "explain.json", "image.png", "attention.png", "rank-3-box.png", "rank-3-heat.png",
                            "rank-3-patch.png" };
    for (int i = 0; i < 7; i++) CHECK(exists(dir, files[i]), "explain left no %s/%s", dir, files[i]);
    CHECK(!exists(dir, "rank-4-box.png") && !exists(dir, "rank-1-prototype-patch.png"), "explain drew a fourth class or a prototype");
    char bad[512] = "";
    int shown = page_pictures_keep_their_shape(dir, bad, sizeof bad);
    CHECK(shown == 2 + 3 * 3, "explain.html: %d pictures checked (expected 11): %s", shown, bad);
    snprintf(path, sizeof path, "%s/explain.json", dir);
    char *text = read_file(path, NULL);
    cJSON *doc = cJSON_Parse(text ? text : ""), *rows = cJSON_GetObjectItemCaseSensitive(doc, "classes");
    cJSON *probs = cJSON_GetObjectItemCaseSensitive(doc, "probabilities");
    CHECK(cJSON_GetArraySize(rows) == 3 && cJSON_GetArraySize(probs) == 10, "%s: expected 3 classes and 10 probabilities", path);
    double l0 = 0, p0 = 0;
    for (int i = 0; i < 3; i++) {   /* logit_i - logit_0 = log(p_i / p_0): the map means are the model's logits */
        cJSON *row = cJSON_GetArrayItem(rows, i);
        int k = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "class"));
        double l = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "logit"));
        double p = cJSON_GetNumberValue(cJSON_GetArrayItem(probs, k));
        CHECK(k >= 0 && k < 10 && p > 0, "%s: class %d, probability %g", path, k, p);
        if (i == 0) { l0 = l; p0 = p; continue; }
        CHECK(l <= l0 && fabs((l - l0) - log(p / p0)) < 1e-5, "%s: rank %d: logit %g - %g against log(%g / %g)", path, i + 1, l, l0, p, p0);
    }
    cJSON_Delete(doc);
    free(text);
    snprintf(a, sizeof a, "prune --run %s", run_dir);
    EXPECT(a, 2, "not a network with prototypes");
}

TEST(cli_explains_and_prunes_a_prototype_network) {
    const char *why = cli_training_missing();
    if (why) SKIP("%s", why);
    char a[4096], out[8192], run_dir[600], dir[800];
    snprintf(run_dir, sizeof run_dir, "%s/ppnet", test_tmpdir());
    snprintf(a, sizeof a, "train --model protopnet-small_cnn --width 4 --prototypes-per-class 2 --proto-depth 8 --limit 256 "
             "--batch 64 --epochs 2 --warm-epochs 1 --push-start 1 --push-every 1 --last-iters 1 --val-fraction 0.01 --quiet --out %s", run_dir);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "explain --run %s --index 7 --top 3", run_dir);
    EXPECT(a, 0, "true class Shirt (6)");   /* test image 7 of Fashion-MNIST */
    snprintf(dir, sizeof dir, "%s/explain-test-7", run_dir);
    const char *files[] = { "explain.html", "explain.json", "image.png", "rank-3-box.png", "rank-3-heat.png", "rank-3-patch.png",
                            "rank-1-prototype-patch.png", "rank-1-prototype-heat.png" };
    for (int i = 0; i < 8; i++) CHECK(exists(dir, files[i]), "explain left no %s/%s", dir, files[i]);
    CHECK(!exists(dir, "rank-4-box.png"), "--top 3 drew a fourth prototype");
    char bad[512] = "";
    int shown = page_pictures_keep_their_shape(dir, bad, sizeof bad);
    CHECK(shown == 1 + 3 * 5, "explain.html: %d pictures checked (expected 16): %s", shown, bad);
    /* the same image from a file: the same answer */
    char png[900];
    snprintf(png, sizeof png, "%s/image.png", dir);
    snprintf(a, sizeof a, "explain --run %s --image %s --top 3 --out %s/from-file", run_dir, png, run_dir);
    char first[8192];
    CHECK(finch_run(a, first, sizeof first) == 0 && strstr(first, "rank"), "finch %s:\n%s", a, first);
    snprintf(a, sizeof a, "explain --run %s --index 7 --top 3", run_dir);
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s", a);
    char *t1 = strchr(first, '\n'), *t2 = strchr(out, '\n'), *e1 = strstr(first, "wrote"), *e2 = strstr(out, "wrote");
    CHECK(t1 && t2 && e1 && e2 && e1 - t1 == e2 - t2 && memcmp(t1, t2, (size_t)(e1 - t1)) == 0,
          "the test image and its PNG explain differently:\n%s\n%s", first, out);
    snprintf(a, sizeof a, "explain --run %s", run_dir);
    EXPECT(a, 2, "exactly one of --image FILE and --index N");
    snprintf(a, sizeof a, "explain --run %s --image %s/train.json", run_dir, run_dir);
    EXPECT(a, 1, "train.json");
    snprintf(a, sizeof a, "explain --run %s --index 99999", run_dir);
    EXPECT(a, 2, "the test set has 10000 images");

    snprintf(a, sizeof a, "prune --run %s --min-own 1 --last-iters 1 --quiet", run_dir);   /* this tiny model: some stay */
    EXPECT(a, 0, "prototypes kept");
    snprintf(dir, sizeof dir, "%s/pruned-k6-t1", run_dir);
    const char *pruned[] = { "model.safetensors", "prune.json", "train.json", "prototypes/prototypes.json" };
    for (int i = 0; i < 4; i++) CHECK(exists(dir, pruned[i]), "prune left no %s/%s", dir, pruned[i]);
    snprintf(a, sizeof a, "explain --run %s --index 7 --top 2", dir);
    EXPECT(a, 0, "rank");
    snprintf(a, sizeof a, "prune --run %s --min-own 7", run_dir);
    EXPECT(a, 2, "--min-own 7 is more than --k 6");
    /* a trunk that takes RGB, trained on grey images: explain feeds it the grey plane three times, as training did */
    snprintf(a, sizeof a, "train --model protopnet-vgg11_bn --vgg-cfg 4,M,4 --width 4 --prototypes-per-class 1 --proto-depth 4 "
             "--limit 128 --batch 64 --epochs 2 --warm-epochs 1 --push-start 1 --push-every 1 --last-iters 1 --val-fraction 0.01 "
             "--quiet --out %s/rgb-trunk", test_tmpdir());
    CHECK(finch_run(a, out, sizeof out) == 0, "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "explain --run %s/rgb-trunk --index 7 --top 2", test_tmpdir());
    EXPECT(a, 0, "true class Shirt (6)");
    /* a train.json whose push_dir leaves the run (prune would copy files from there) */
    char crafted[700], src[900], dst[900];
    snprintf(crafted, sizeof crafted, "%s/crafted", test_tmpdir());
    make_dirs(crafted);
    snprintf(src, sizeof src, "%s/model.safetensors", run_dir);
    snprintf(dst, sizeof dst, "%s/model.safetensors", crafted);
    CHECK(copy_file(src, dst) == 0, "%s", ft_last_error());
    snprintf(dst, sizeof dst, "%s/train.json", crafted);
    const char *json = "{\"options\": {}, \"selected\": {\"epoch\": 2, \"push_dir\": \"../ppnet/push-epoch-2\"}}";
    CHECK(write_file_atomic(dst, json, strlen(json)) == 0, "%s", ft_last_error());
    snprintf(a, sizeof a, "prune --run %s", crafted);
    EXPECT(a, 1, "push_dir '../ppnet/push-epoch-2' is not a directory name inside the run");
}
