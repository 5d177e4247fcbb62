/* Image files: every PNG colour type and JPEG colour space becomes H x W x 3 RGB; broken files
 * are errors that name the file. Test images are written here with libpng and libjpeg directly. */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <zlib.h>
#include "test.h"
#include "core/progress.h"
#include "core/fileio.h"
#include "data/image.h"

/* a 4x3 PNG of the given type; pixel (x, y) has value v = 20 * (y * 4 + x) in every sample */
static void write_png(const char *path, int type, int depth) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, 4, 3, depth, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {   /* palette entry i = (i * 20, i * 20, i * 20) */
        png_color pal[12];
        for (int i = 0; i < 12; i++) pal[i] = (png_color){ (png_byte)(20 * i), (png_byte)(20 * i), (png_byte)(20 * i) };
        png_set_PLTE(png, info, pal, 12);
    }
    png_write_info(png, info);
    int ch = png_get_channels(png, info), bytes = depth / 8;
    unsigned char row[4 * 4 * 2];
    for (int y = 0; y < 3; y++) {
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < ch; c++) {
                int v = type == PNG_COLOR_TYPE_PALETTE ? y * 4 + x : 20 * (y * 4 + x);
                bool alpha = (type & PNG_COLOR_MASK_ALPHA) && c == ch - 1;
                for (int b = 0; b < bytes; b++) row[(x * ch + c) * bytes + b] = (unsigned char)(alpha ? 128 : v);   /* 16-bit: v * 257 */
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

TEST(png_reads_every_colour_type_as_rgb) {
    struct { const char *name; int type, depth; } cases[] = {
        { "gray", PNG_COLOR_TYPE_GRAY, 8 }, { "gray_alpha", PNG_COLOR_TYPE_GRAY_ALPHA, 8 },
        { "rgb", PNG_COLOR_TYPE_RGB, 8 }, { "rgba", PNG_COLOR_TYPE_RGB_ALPHA, 8 },
        { "palette", PNG_COLOR_TYPE_PALETTE, 8 }, { "rgb16", PNG_COLOR_TYPE_RGB, 16 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = test_path(cases[i].name);
        write_png(path, cases[i].type, cases[i].depth);
        Image im;
        CHECK(image_read(path, &im) == 0, "%s: %s", cases[i].name, ft_last_error());
        CHECK(im.width == 4 && im.height == 3, "%s: %dx%d", cases[i].name, im.width, im.height);
        for (int p = 0; p < 12; p++)
            for (int c = 0; c < 3; c++)
                CHECK(im.rgb[p * 3 + c] == 20 * p, "%s: pixel %d channel %d is %d, expected %d", cases[i].name, p, c,
                      im.rgb[p * 3 + c], 20 * p);
        image_free(&im);
    }
}

/* a 16x16 JPEG in the given colour space, written with libjpeg; samples from fill(x, y, c)
 * (also used by test_cub.c for its grayscale image) */
void write_jpeg(const char *path, J_COLOR_SPACE cs, int comps, int (*fill)(int, int, int)) {
    FILE *f = fopen(path, "wb");
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = 16;
    c.image_height = 16;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    jpeg_start_compress(&c, TRUE);
    unsigned char row[16 * 4];
    for (int y = 0; y < 16; y++) {
        for (int x = 0; x < 16; x++)
            for (int k = 0; k < comps; k++) row[x * comps + k] = (unsigned char)fill(x, y, k);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static int gray_ramp(int x, int y, int c) { (void)c; return 8 * x + 4 * y; }
/* Adobe's inverted CMYK for pure red: C = 255 - 0, M = 255 - 255, Y = 255 - 255, K = 255 - 0 */
static int cmyk_red(int x, int y, int c) { (void)x; (void)y; return c == 0 || c == 3 ? 255 : 0; }

TEST(jpeg_reads_gray_rgb_and_cmyk_as_rgb) {
    Image im;
    char *gray = test_path("gray.jpg");
    write_jpeg(gray, JCS_GRAYSCALE, 1, gray_ramp);
    CHECK(image_read(gray, &im) == 0, "%s", ft_last_error());
    for (int p = 0; p < 256; p++) {
        int want = gray_ramp(p % 16, p / 16, 0), r = im.rgb[3 * p];
        CHECK(abs(r - want) <= 2 && im.rgb[3 * p + 1] == r && im.rgb[3 * p + 2] == r, "gray pixel %d: %d %d %d, expected %d",
              p, r, im.rgb[3 * p + 1], im.rgb[3 * p + 2], want);
    }
    image_free(&im);

    uint8_t rgb[16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 3; i++) rgb[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 60 : 30);
    char *color = test_path("rgb.jpg");
    CHECK(jpeg_write_rgb(color, rgb, 16, 16, 100) == 0, "%s", ft_last_error());
    CHECK(image_read(color, &im) == 0 && im.width == 16, "%s", ft_last_error());
    for (int i = 0; i < 16 * 16 * 3; i++) CHECK(abs(im.rgb[i] - rgb[i]) <= 3, "RGB sample %d: %d, expected %d", i, im.rgb[i], rgb[i]);
    image_free(&im);

    char *cmyk = test_path("cmyk.jpg");
    write_jpeg(cmyk, JCS_CMYK, 4, cmyk_red);
    CHECK(image_read(cmyk, &im) == 0, "%s", ft_last_error());
    CHECK(im.rgb[0] >= 250 && im.rgb[1] <= 5 && im.rgb[2] <= 5, "CMYK red read as %d %d %d", im.rgb[0], im.rgb[1], im.rgb[2]);
    image_free(&im);
}

/* The in-memory round trip is the file's: the same encoder settings, the same decoded pixels; a
 * grey round trip stays grey and near its input, the nearer the higher the quality. */
TEST(jpeg_round_trip_in_memory_equals_writing_and_reading_the_file) {
    uint8_t rgb[24 * 20 * 3], trip[24 * 20 * 3];
    for (int i = 0; i < 24 * 20; i++) {
        int x = i % 24, y = i / 24;
        rgb[3 * i] = (uint8_t)(10 * x), rgb[3 * i + 1] = (uint8_t)(12 * y), rgb[3 * i + 2] = (uint8_t)((x * y) % 256);
    }
    memcpy(trip, rgb, sizeof rgb);
    CHECK(jpeg_round_trip(trip, 24, 20, 3, 75) == 0, "%s", ft_last_error());
    char *path = test_path("trip.jpg");
    CHECK(jpeg_write_rgb(path, rgb, 24, 20, 75) == 0, "%s", ft_last_error());
    Image im;
    CHECK(image_read(path, &im) == 0 && im.width == 24 && im.height == 20, "%s", ft_last_error());
    int changed = 0;
    for (int i = 0; i < 24 * 20 * 3; i++) {
        CHECK(trip[i] == im.rgb[i], "sample %d: %d in memory, %d through the file", i, trip[i], im.rgb[i]);
        changed += trip[i] != rgb[i];
    }
    CHECK(changed > 0, "quality 75 changed no sample");
    image_free(&im);
    uint8_t grey[28 * 28], g[28 * 28];
    for (int i = 0; i < 28 * 28; i++) grey[i] = (uint8_t)(i % 28 < 14 ? 30 : 220);
    int worst[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) {
        memcpy(g, grey, sizeof g);
        CHECK(jpeg_round_trip(g, 28, 28, 1, k ? 95 : 20) == 0, "%s", ft_last_error());
        for (int i = 0; i < 28 * 28; i++) worst[k] = abs(g[i] - grey[i]) > worst[k] ? abs(g[i] - grey[i]) : worst[k];
    }
    CHECK(worst[1] < worst[0] && worst[1] <= 20 && worst[0] > 0, "grey: largest change %d at quality 20, %d at 95", worst[0], worst[1]);
}

static bool fails_naming(const char *path, const char *what) {
    Image im;
    int rc = image_read(path, &im);
    bool ok = rc != 0 && strstr(ft_last_error(), path) && strstr(ft_last_error(), what) && !im.rgb;
    if (!ok) printf("    %s: rc %d, error: %s\n", path, rc, rc ? ft_last_error() : "(none)");
    return ok;
}

static void truncate_copy(const char *src, const char *dst, double keep) {
    FILE *f = fopen(src, "rb");
    unsigned char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file_atomic(dst, buf, (size_t)(n * keep));
}

TEST(broken_images_are_errors_naming_the_file) {
    uint8_t rgb[64 * 64 * 3];
    for (int i = 0; i < 64 * 64 * 3; i++) rgb[i] = (uint8_t)(i * 7);
    char *jpg = test_path("big.jpg"), *png = test_path("big.png");
    CHECK(jpeg_write_rgb(jpg, rgb, 64, 64, 90) == 0 && png_write_rgb(png, rgb, 64, 64) == 0, "%s", ft_last_error());
    char *tj = test_path("trunc.jpg"), *tpng = test_path("trunc.png");
    truncate_copy(jpg, tj, 0.6);
    truncate_copy(png, tpng, 0.6);
    CHECK(fails_naming(tj, "not a readable JPEG"), "a truncated JPEG was accepted");
    CHECK(fails_naming(tpng, "not a readable PNG"), "a truncated PNG was accepted");
    char *junk = test_path("junk.jpg");
    write_file_atomic(junk, "hello, not an image", 19);
    CHECK(fails_naming(junk, "neither a PNG nor a JPEG"), "a text file was accepted");
    CHECK(fails_naming(test_path("missing.png"), "cannot open"), "a missing file");
    Image im;   /* the intact ones still read, exactly for the PNG */
    CHECK(image_read(png, &im) == 0 && memcmp(im.rgb, rgb, sizeof rgb) == 0, "PNG round trip: %s", ft_last_error());
    image_free(&im);
}

/* A copy of src whose header claims w x h pixels: the PNG's IHDR (its CRC redone) or the JPEG's
 * SOF0 dimensions; the pixel data stays that of the small image. */
static char *claim_size(const char *src, const char *name, bool png, unsigned w, unsigned h) {
    size_t n;
    unsigned char *b = (unsigned char *)read_file(src, &n);
    if (png) {   /* signature (8), IHDR length (4), "IHDR" (4), width, height (4 + 4), ..., CRC over type + data */
        for (int i = 0; i < 4; i++) { b[16 + i] = (unsigned char)(w >> (24 - 8 * i)); b[20 + i] = (unsigned char)(h >> (24 - 8 * i)); }
        uLong crc = crc32(0, b + 12, 17);
        for (int i = 0; i < 4; i++) b[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
    } else {
        size_t k = 2;
        while (k + 9 < n && !(b[k] == 0xff && b[k + 1] == 0xc0)) k++;   /* SOF0: FF C0, length, precision, height, width */
        b[k + 5] = (unsigned char)(h >> 8); b[k + 6] = (unsigned char)h;
        b[k + 7] = (unsigned char)(w >> 8); b[k + 8] = (unsigned char)w;
    }
    char *path = test_path(name);
    write_file_atomic(path, b, n);
    free(b);
    return path;
}

/* A small file whose header claims a huge image is refused from the header, before the pixels are
 * allocated (a 1 KB JPEG claiming 65500 x 65500 took 12.6 GB and 42 s); the limits move with
 * image_set_max_side. */
TEST(images_larger_than_the_limits_are_refused_from_their_header) {
    uint8_t rgb[16 * 16 * 3] = { 0 };
    char *jpg = test_path("small.jpg"), *png = test_path("small.png");
    CHECK(jpeg_write_rgb(jpg, rgb, 16, 16, 90) == 0 && png_write_rgb(png, rgb, 16, 16) == 0, "%s", ft_last_error());
    static const struct { unsigned w, h; } sizes[] = { { 65500, 65500 }, { 16385, 16 }, { 16, 16385 }, { 16384, 4097 } };
    for (int i = 0; i < 4; i++)
        for (int p = 0; p < 2; p++) {
            char *big = claim_size(p ? png : jpg, p ? "claims.png" : "claims.jpg", p, sizes[i].w, sizes[i].h);
            double t0 = ft_now();
            CHECK(fails_naming(big, "finch decodes images of 1..16384 pixels a side and at most 64 megapixels"),
                  "%s claiming %ux%u", p ? "PNG" : "JPEG", sizes[i].w, sizes[i].h);
            CHECK(ft_now() - t0 < 1, "refusing took %.1f s", ft_now() - t0);
        }
    char *edge = claim_size(png, "edge.png", true, 16384, 4096);   /* exactly 64 MP: allowed, then the data is short */
    CHECK(fails_naming(edge, "not a readable PNG"), "a 16384x4096 PNG header passes the limits");
    image_set_max_side(32768);
    char *wide = claim_size(jpg, "wide.jpg", false, 20000, 16);
    CHECK(fails_naming(wide, "not a readable JPEG"), "with a side of 32768, a 20000x16 header passes the limits");
    image_set_max_side(1024);
    CHECK(fails_naming(claim_size(png, "1025.png", true, 1025, 16), "1..1024 pixels a side and at most 0.25 megapixels"),
          "a lower limit");
    image_set_max_side(IMAGE_MAX_SIDE);
}
