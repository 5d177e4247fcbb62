/* CUB-200-2011 parsing on a small CUB-shaped directory made on the fly: 3 classes, 6 images (JPEG
 * and PNG, one grayscale), a box around a red patch; then broken copies of each file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "test.h"
#include "core/fileio.h"
#include "data/cub.h"
#include "data/image.h"

void write_jpeg(const char *path, J_COLOR_SPACE cs, int comps, int (*fill)(int, int, int));   /* test_images.c */
static int gray_fill(int x, int y, int c) { (void)c; return 100 + x + y; }

static void put(const char *dir, const char *name, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file_atomic(path, text, strlen(text));
}

static const char *IMAGES = "1 001.A/a1.png\n2 001.A/a2.jpg\n3 002.B/b1.jpg\n4 002.B/b2.png\n5 003.C/c1.jpg\n6 003.C/c2.jpg\n";
static const char *LABELS = "1 1\n2 1\n3 2\n4 2\n5 3\n6 3\n";
static const char *SPLIT = "1 1\n2 0\n3 1\n4 0\n5 1\n6 0\n";
static const char *BOXES = "1 10.0 5.0 20.0 15.0\n2 0 0 40 30\n3 0 0 16 16\n4 2.5 2.5 30 20\n5 0 0 40 30\n6 1 1 10 10\n";

/* a fresh CUB-shaped directory under the test directory; returns its path (test_cache.c uses it too) */
const char *make_cub(const char *name) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    char sub[700];
    const char *classes[] = { "001.A", "002.B", "003.C" };
    for (int i = 0; i < 3; i++) { snprintf(sub, sizeof sub, "%s/images/%s", dir, classes[i]); make_dirs(sub); }
    put(dir, "images.txt", IMAGES);
    put(dir, "classes.txt", "1 001.A\n2 002.B\n3 003.C\n");
    put(dir, "image_class_labels.txt", LABELS);
    put(dir, "train_test_split.txt", SPLIT);
    put(dir, "bounding_boxes.txt", BOXES);
    uint8_t rgb[40 * 30 * 3];   /* blue, with a red patch at x 10..30, y 5..20 */
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 40; x++) {
            bool in = x >= 10 && x < 30 && y >= 5 && y < 20;
            uint8_t *p = rgb + (y * 40 + x) * 3;
            p[0] = in ? 250 : 0; p[1] = 0; p[2] = in ? 0 : 250;
        }
    /* image 1 (the crop check) is a PNG: JPEG's chroma subsampling would tint the patch's edge */
    const char *jpgs[] = { "001.A/a2.jpg", "003.C/c1.jpg", "003.C/c2.jpg" }, *pngs[] = { "001.A/a1.png", "002.B/b2.png" };
    for (int i = 0; i < 3; i++) { snprintf(sub, sizeof sub, "%s/images/%s", dir, jpgs[i]); jpeg_write_rgb(sub, rgb, 40, 30, 95); }
    for (int i = 0; i < 2; i++) { snprintf(sub, sizeof sub, "%s/images/%s", dir, pngs[i]); png_write_rgb(sub, rgb, 40, 30); }
    snprintf(sub, sizeof sub, "%s/images/002.B/b1.jpg", dir);
    write_jpeg(sub, JCS_GRAYSCALE, 1, gray_fill);   /* 16x16 grayscale */
    return dir;
}

TEST(cub_index_and_cropped_dataset) {
    const char *dir = make_cub("cub");
    CubIndex ix;
    CHECK(cub_index_load(dir, &ix) == 0, "%s", ft_last_error());
    CHECK(ix.n == 6 && ix.num_classes == 3 && strcmp(ix.class_names[1], "002.B") == 0, "%d images, %d classes", ix.n, ix.num_classes);
    CHECK(ix.images[2].label == 1 && ix.images[2].train && !ix.images[3].train && ix.images[3].box[0] == 2.5f, "image 3/4 fields");
    cub_index_free(&ix);
    SourceList src;
    CHECK(cub_sources(dir, &src) == 0, "%s", ft_last_error());
    Splits cropped, whole;
    CHECK(decode_splits(&src, &(DecodeOpts){ .size = 8, .crop = true, .quiet = true }, &cropped) == 0, "%s", ft_last_error());
    CHECK(decode_splits(&src, &(DecodeOpts){ .size = 8, .crop = false, .quiet = true }, &whole) == 0, "%s", ft_last_error());
    Dataset train = cropped.train, test = whole.test;
    CHECK(dataset_size(&train) == 3 && dataset_size(&test) == 3 && train.images->shape.d[1] == 3 && train.images->shape.d[3] == 8,
          "train %d, test %d, %s", dataset_size(&train), dataset_size(&test), FT_SHAPE_STR(train.images->shape));
    CHECK(ft_i32(train.labels)[0] == 0 && ft_i32(train.labels)[1] == 1 && ft_i32(train.labels)[2] == 2, "train labels");
    /* image 1 cropped to its box: red inside; as in PIL, the shrinking filter reaches 2.5 pixels
     * past the box, so the outermost output pixels take some blue */
    const uint8_t *a1 = ft_u8(train.images);
    for (int p = 0; p < 64; p++) {
        bool inner = p % 8 >= 1 && p % 8 < 7 && p / 8 >= 1 && p / 8 < 7;
        if (inner) CHECK(a1[p] > 200 && a1[64 + p] < 40 && a1[128 + p] < 40, "cropped pixel %d is %d %d %d, expected red", p,
                         a1[p], a1[64 + p], a1[128 + p]);
    }
    CHECK(a1[128] > 20 && a1[0] > 150, "the corner mixes a little blue into red: %d %d %d", a1[0], a1[64], a1[128]);
    const uint8_t *b1 = a1 + 3 * 64;           /* the grayscale image: three equal channels */
    CHECK(b1[5] == b1[64 + 5] && b1[5] == b1[128 + 5] && b1[5] > 90, "grayscale image read as %d %d %d", b1[5], b1[64 + 5], b1[128 + 5]);
    const uint8_t *a2 = ft_u8(test.images);    /* uncropped: the blue border shows in the corner */
    CHECK(a2[0] < 40 && a2[128] > 200, "uncropped corner is %d %d %d, expected blue", a2[0], a2[64], a2[128]);
    Splits square;   /* --resize center-crop: the centred 30x30 of test image 2 (40x30, not cropped) */
    CHECK(decode_splits(&src, &(DecodeOpts){ .size = 8, .keep_aspect = true, .quiet = true }, &square) == 0, "%s", ft_last_error());
    Image im;
    CHECK(image_read(src.items[1].path, &im) == 0, "%s", ft_last_error());
    uint8_t want[3 * 64];
    resize_bilinear_pil(view_hwc(im.rgb, im.width, im.height), (const float[4]){ 5, 0, 30, 30 }, want, 8);
    CHECK(memcmp(want, ft_u8(square.test.images), sizeof want) == 0, "center-crop is not the centred square");
    image_free(&im);
    splits_free(&square);
    CHECK(cropped.augmented.images == NULL && train.class_names && strcmp(train.class_names[2], "003.C") == 0,
          "no augmented split without copies; class names kept");
    splits_free(&cropped);
    splits_free(&whole);
    sources_free(&src);
}

static bool refused(const char *dir, const char *needle) {
    SourceList src;
    int rc = cub_sources(dir, &src);
    if (rc == 0) {   /* decoding finds the bad boxes */
        Splits d;
        rc = decode_splits(&src, &(DecodeOpts){ .size = 8, .crop = true, .quiet = true }, &d);
        if (rc == 0) splits_free(&d);
        sources_free(&src);
    }
    bool ok = rc != 0 && strstr(ft_last_error(), needle);
    if (!ok) printf("    expected an error containing \"%s\", got: %s\n", needle, rc ? ft_last_error() : "success");
    return ok;
}

TEST(cub_errors_name_the_file_and_line) {
    const char *dir = make_cub("missing");
    char path[700];
    snprintf(path, sizeof path, "%s/images/002.B/b2.png", dir);
    remove(path);
    CHECK(refused(dir, "b2.png: cannot open: No such file or directory (image 4 is missing"), "a missing image");
    dir = make_cub("unknown_id");
    put(dir, "image_class_labels.txt", "1 1\n2 1\n3 2\n4 2\n99 3\n6 3\n");
    CHECK(refused(dir, "image_class_labels.txt:5: image id 99 is not in images.txt"), "an unknown id");
    dir = make_cub("bad_class");
    put(dir, "image_class_labels.txt", "1 1\n2 1\n3 7\n4 2\n5 3\n6 3\n");
    CHECK(refused(dir, "image_class_labels.txt:3: class 7 outside 1..3"), "a class beyond classes.txt");
    dir = make_cub("malformed");
    put(dir, "bounding_boxes.txt", "1 10.0 5.0 20.0 15.0\n2 0 0 40\n");
    CHECK(refused(dir, "bounding_boxes.txt:2: expected 'id x y w h'"), "a malformed box line");
    dir = make_cub("outside");
    put(dir, "bounding_boxes.txt", "1 10.0 5.0 20.0 15.0\n2 0 0 40 30\n3 30 30 16 16\n4 2.5 2.5 30 20\n5 0 0 40 30\n6 1 1 10 10\n");
    CHECK(refused(dir, "bounding box lies outside the image"), "a box outside its (16x16) image");
    dir = make_cub("no_box");
    put(dir, "bounding_boxes.txt", "1 10.0 5.0 20.0 15.0\n2 0 0 40 30\n");
    CHECK(refused(dir, "image 3 has no box"), "an image without a box");
    CHECK(refused("/nonexistent/CUB_200_2011", "/nonexistent/CUB_200_2011/images.txt: cannot open"), "a missing directory");
}

/* Image folders: root/<class>/<image>, classes sorted by name, an optional split file. */
static const DecodeOpts opts6 = { .size = 6, .quiet = true };
TEST(image_folders_with_and_without_a_split_file) {
    char root[600], sub[700];
    snprintf(root, sizeof root, "%s/folder", test_tmpdir());
    uint8_t rgb[12 * 10 * 3];
    const char *files[] = { "zebra/z1.png", "zebra/z2.JPG", "apple/a1.jpeg", "apple/a2.png", "apple/notes.txt" };
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 12 * 10 * 3; k++) rgb[k] = (uint8_t)(files[i][0] == 'z' ? 200 : 40);
        snprintf(sub, sizeof sub, "%s/%s", root, files[i]);
        char dir[700];
        snprintf(dir, sizeof dir, "%s/%.5s", root, files[i]);
        make_dirs(dir);
        if (strstr(files[i], ".png")) png_write_rgb(sub, rgb, 12, 10);
        else if (strstr(files[i], ".txt")) write_file_atomic(sub, "not an image", 12);
        else jpeg_write_rgb(sub, rgb, 12, 10, 95);
    }
    SourceList src;
    Splits sp;
    CHECK(folder_sources(root, NULL, &src) == 0 && decode_splits(&src, &opts6, &sp) == 0, "%s", ft_last_error());
    sources_free(&src);
    Dataset all = sp.train;
    CHECK(dataset_size(&all) == 2 && dataset_size(&sp.test) == 2 && all.num_classes == 2,
          "%d training and %d test images in %d classes (the .txt is not an image; without a split file the last of each "
          "class's two is held out)", dataset_size(&all), dataset_size(&sp.test), all.num_classes);
    CHECK(ft_i32(all.labels)[0] == 0 && ft_i32(all.labels)[1] == 1 && ft_u8(all.images)[0] < 60, "apple (sorted first) is class 0");
    splits_free(&sp);
    put(root, "split.txt", "apple/a1.jpeg 1\napple/a2.png 0\nzebra/z1.png 1\nzebra/z2.JPG 0\n");
    snprintf(sub, sizeof sub, "%s/split.txt", root);
    CHECK(folder_sources(root, sub, &src) == 0 && decode_splits(&src, &opts6, &sp) == 0, "%s", ft_last_error());
    sources_free(&src);
    Dataset train = sp.train, test = sp.test;
    CHECK(dataset_size(&train) == 2 && dataset_size(&test) == 2 && ft_i32(test.labels)[1] == 1, "split sizes %d / %d",
          dataset_size(&train), dataset_size(&test));
    splits_free(&sp);
    put(root, "split.txt", "apple/a1.jpeg 1\napple/a9.png 0\n");
    CHECK(folder_sources(root, sub, &src) != 0 && strstr(ft_last_error(), "split.txt:2: apple/a9.png is not an image"),
          "an unknown image in the split file: %s", ft_last_error());
    put(root, "split.txt", "apple/a1.jpeg 1\n");
    CHECK(folder_sources(root, sub, &src) != 0 && strstr(ft_last_error(), "is not listed"),
          "an image missing from the split file: %s", ft_last_error());
    CHECK(folder_sources(sub, NULL, &src) != 0 && strstr(ft_last_error(), "cannot open directory"), "a file as root");
    /* without a split file: a fifth of each class, at least one test image from 2 images on */
    const int sizes[] = { 1, 2, 4, 5, 10, 12 }, tests[] = { 0, 1, 1, 1, 2, 2 };
    for (int k = 0; k < 6; k++) {
        int t = 0, last = -1;
        for (int i = 0; i < sizes[k]; i++)
            if (folder_default_split(i, sizes[k]) == SPLIT_TEST) { t++; last = i; }
        CHECK(t == tests[k] && (t == 0 || last == (sizes[k] < 5 ? sizes[k] - 1 : (sizes[k] / 5) * 5 - 1)),
              "a class of %d images: %d test images (expected %d), the last at %d", sizes[k], t, tests[k], last);
    }
}
