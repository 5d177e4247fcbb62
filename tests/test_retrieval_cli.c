/* Retrieval protocols end to end: Market-1501 names and layout (data/market.c), CUB-200-2011 classes 101-200 and test split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"
#include "data/image.h"
#include "data/market.h"
#include "models/model_io.h"

/* An untrained reduced ResNet (any input size from 32) saved at path: rankings need no training. */
static bool save_small_resnet(const char *path, int classes) {
    ModelConfig mc = { .num_classes = classes, .width = 4, .blocks = { 1, 1, 1, 1 } };
    Model *m = model_create("resnet18", &mc);
    bool ok = m && model_save(m, &mc, path) == 0;
    model_free(m);
    return ok;
}

TEST(market_names_give_identity_and_camera_and_others_are_refused) {
    int pid, cam;
    CHECK(market_parse_name("0002_c1s1_000451_03.jpg", &pid, &cam) == 0 && pid == 2 && cam == 1, "%s", ft_last_error());
    CHECK(market_parse_name("-1_c3s2_012345_00.jpg", &pid, &cam) == 0 && pid == -1 && cam == 3, "junk: %s", ft_last_error());
    CHECK(market_parse_name("0000_c6s4_002202_01.JPG", &pid, &cam) == 0 && pid == 0 && cam == 6, "distractor: %s", ft_last_error());
    const char *bad[] = { "", "2_c1s1_000451_03.jpg", "0002_c0s1_000451_03.jpg", "0002_c1s1_00045_03.jpg", "0002_c1s1_000451_03.png",
                          "0002_c1s1_000451_03.jpg.txt", "-2_c1s1_000451_03.jpg", "0002-c1s1_000451_03.jpg", "0002_c1s", "Thumbs.db" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(market_parse_name(bad[i], &pid, &cam) == -1 && strstr(ft_last_error(), "PPPP_cCsS_FFFFFF_NN.jpg"), "'%s' was accepted",
              bad[i]);
}

/* A tiny Market layout: query 1 (camera 1) has a true match in the gallery under camera 2; query 2
 * only under its own camera; query 3 none at all. So exactly one query is scored. Junk and a
 * distractor sit in the gallery. */
TEST(cli_retrieval_follows_the_market_protocol) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char root[600], path[900], a[2048], out[16384];
    snprintf(root, sizeof root, "%s/market", d);
    const char *files[] = { "query/0001_c1s1_000001_00.jpg", "query/0002_c1s1_000002_00.jpg", "query/0003_c2s1_000003_00.jpg",
                            "bounding_box_test/0001_c2s1_000010_00.jpg", "bounding_box_test/0002_c1s1_000011_00.jpg",
                            "bounding_box_test/-1_c1s1_000012_00.jpg", "bounding_box_test/0000_c3s1_000013_00.jpg",
                            "bounding_box_test/0004_c1s1_000014_00.jpg" };
    uint8_t rgb[40 * 20 * 3];
    for (int f = 0; f < 8; f++) {
        for (int i = 0; i < 40 * 20 * 3; i++) rgb[i] = (uint8_t)(37 * f + i * (f + 1));
        snprintf(path, sizeof path, "%s/%.*s", root, (int)(strchr(files[f], '/') - files[f]), files[f]);
        make_dirs(path);
        snprintf(path, sizeof path, "%s/%s", root, files[f]);
        CHECK(jpeg_write_rgb(path, rgb, 20, 40, 90) == 0, "%s", ft_last_error());
    }
    snprintf(path, sizeof path, "%s/market-model.safetensors", d);
    CHECK(save_small_resnet(path, 5), "%s", ft_last_error());
    snprintf(a, sizeof a, "retrieval --model-file %s --data market:%s --image-size 32 --out %s/mret --quiet", path, root, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "3 queries against 5 gallery images") && strstr(out, "| 1 |") &&
          strstr(out, "2 queries had no other image of their identity"), "finch %s:\n%s", a, out);
    snprintf(a, sizeof a, "attack --retrieval --model-file %s --data market:%s --image-size 32 --eps-list 8/255 --limit 2 --out %s/mret "
             "--quiet", path, root, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "2 queries (the first) against a clean gallery of 5 images"), "finch %s:\n%s",
          a, out);
    snprintf(path, sizeof path, "%s/bounding_box_test/0005_x.jpg", root);
    CHECK(write_file_atomic(path, "x", 1) == 0, "%s", ft_last_error());
    snprintf(a, sizeof a, "retrieval --model-file %s/market-model.safetensors --data market:%s --image-size 32 --out %s/mret2 --quiet", d, root, d);
    EXPECT(a, 1, "bounding_box_test/'0005_x.jpg': expected a Market-1501 name");
}

/* A CUB-shaped directory with 200 classes of two 8 x 8 images (one training, one test): U-turn's
 * protocol takes classes 101-200, both images, so every query has exactly one match; --split test
 * takes the 200 test images, one per class, so no query has one. */
TEST(cli_retrieval_follows_the_cub_protocols) {
    REQUIRE_FINCH();
    const char *d = test_tmpdir();
    char root[600], path[900], a[2048], out[16384];
    snprintf(root, sizeof root, "%s/cub200", d);
    char *images = ft_xmalloc(200 * 2 * 64), *classes = ft_xmalloc(200 * 32), *labels = ft_xmalloc(400 * 16), *split = ft_xmalloc(400 * 16);
    char *boxes = ft_xmalloc(400 * 24);
    size_t ni = 0, nc = 0, nl = 0, ns = 0, nb = 0;
    uint8_t rgb[8 * 8 * 3];
    for (int c = 0; c < 200; c++) {
        nc += (size_t)sprintf(classes + nc, "%d %03d.C%d\n", c + 1, c + 1, c + 1);
        snprintf(path, sizeof path, "%s/images/%03d.C%d", root, c + 1, c + 1);
        make_dirs(path);
        for (int k = 0; k < 2; k++) {
            int id = 2 * c + k + 1;
            for (int i = 0; i < 8 * 8 * 3; i++) rgb[i] = (uint8_t)(c * 7 + i * (k + 3));
            snprintf(path, sizeof path, "%s/images/%03d.C%d/%d.png", root, c + 1, c + 1, k);
            CHECK(png_write_rgb(path, rgb, 8, 8) == 0, "%s", ft_last_error());
            ni += (size_t)sprintf(images + ni, "%d %03d.C%d/%d.png\n", id, c + 1, c + 1, k);
            nl += (size_t)sprintf(labels + nl, "%d %d\n", id, c + 1);
            ns += (size_t)sprintf(split + ns, "%d %d\n", id, k == 0);
            nb += (size_t)sprintf(boxes + nb, "%d 0 0 8 8\n", id);
        }
    }
    const char *names[5] = { "images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt" };
    const char *texts[5] = { images, classes, labels, split, boxes };
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        CHECK(write_file_atomic(path, texts[i], strlen(texts[i])) == 0, "%s", ft_last_error());
    }
    free(images); free(classes); free(labels); free(split); free(boxes);
    snprintf(path, sizeof path, "%s/m200.safetensors", d);
    CHECK(save_small_resnet(path, 100), "%s", ft_last_error());
    snprintf(a, sizeof a, "retrieval --model-file %s --data cub:%s --image-size 32 --out %s/cret --quiet", path, root, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "classes 101-200") && strstr(out, "200 images, each a query") &&
          strstr(out, "| 200 |"), "finch %s:\n%s", a, out);
    /* queries from both splits in batches that straddle them (100 training images first), at eps 0: the attacked
     * queries are the clean ones, gathered another way, so their row must equal the clean row */
    snprintf(a, sizeof a, "attack --retrieval --model-file %s --data cub:%s --image-size 32 --limit 150 --batch 64 --eps 0 "
             "--out %s/cret --quiet", path, root, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "150 queries (the first) against a clean gallery of 200 images"),
          "finch %s:\n%s", a, out);
    const char *clean = strstr(out, "| clean | |"), *zero = strstr(out, "| 0 (0/255) | 1 |");
    double c[4] = { -1, -1, -1, -1 }, z[4] = { -2, -2, -2, -2 };
    CHECK(clean && zero && sscanf(clean + 11, " %lf | %lf | %lf | %lf", &c[0], &c[1], &c[2], &c[3]) == 4 &&
          sscanf(zero + 17, " %lf | %lf | %lf | %lf", &z[0], &z[1], &z[2], &z[3]) == 4, "no clean or eps-0 row:\n%s", out);
    for (int k = 0; k < 4; k++) CHECK(c[k] == z[k], "eps 0 differs from clean in column %d: %g against %g\n%s", k, z[k], c[k], out);
    snprintf(a, sizeof a, "retrieval --model-file %s --data cub:%s --image-size 32 --split test --out %s/cret --quiet", path,
             root, d);
    CHECK(finch_run(a, out, sizeof out) == 0 && strstr(out, "CUB-200-2011 test images") && strstr(out, "| 0 |") &&
          strstr(out, "200 queries had no other image"), "finch %s:\n%s", a, out);
}
