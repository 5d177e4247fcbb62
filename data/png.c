/* PNG through libpng. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "image.h"
#include "core/error.h"
#include "core/fileio.h"

/* libpng reports through these: the message is kept, then control jumps back to png_read. */
typedef struct { jmp_buf jump; char message[256]; } PngErrors;

static void png_error_fn(png_structp png, png_const_charp msg) {
    PngErrors *e = png_get_error_ptr(png);
    snprintf(e->message, sizeof e->message, "%s", msg);
    longjmp(e->jump, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int png_read(const char *path, Image *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen_regular(path);
    if (!f) return -1;
    PngErrors err = { .message = "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile rgb = NULL;             /* survive the longjmp */
    png_bytep *volatile rows = NULL;
    if (!png || !info || setjmp(err.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(rgb);
        free(rows);
        return ft_error("%s: not a readable PNG: %s", path, err.message[0] ? err.message : "libpng could not start");
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (image_check_size(path, (long)w, (long)h) != 0) {
        snprintf(err.message, sizeof err.message, "%s", ft_last_error());
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return ft_error("%s", err.message);
    }
    int type = png_get_color_type(png, info);
    png_set_expand(png);                       /* palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha */
    png_set_strip_16(png);                     /* 16-bit samples -> 8 */
    png_set_strip_alpha(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8) png_error(png, "unexpected pixel layout");
    rgb = ft_xmalloc((size_t)w * h * 3);
    rows = ft_xmalloc(h * sizeof *rows);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = rgb + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(rows);
    *out = (Image){ rgb, (int)w, (int)h };
    return 0;
}

void image_free(Image *im) {
    free(im->rgb);
    im->rgb = NULL;
}

static int max_side = IMAGE_MAX_SIDE;
static long long max_pixels = IMAGE_MAX_PIXELS;

void image_set_max_side(int side) {
    max_side = side;
    max_pixels = (long long)((double)IMAGE_MAX_PIXELS * ((double)side / IMAGE_MAX_SIDE) * ((double)side / IMAGE_MAX_SIDE));
}

int image_check_size(const char *path, long width, long height) {
    if (width < 1 || height < 1 || width > max_side || height > max_side || (long long)width * height > max_pixels)
        return ft_error("%s: its header says %ldx%ld pixels; finch decodes images of 1..%d pixels a side and at most %.3g "
                        "megapixels (--max-image-side raises both)", path, width, height, max_side, (double)max_pixels / (1 << 20));
    return 0;
}

int image_read(const char *path, Image *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen_regular(path);
    if (!f) return -1;
    unsigned char magic[8] = { 0 };
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    if (n == 8 && png_sig_cmp(magic, 0, 8) == 0) return png_read(path, out);
    if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return jpeg_read(path, out);
    return ft_error("%s: neither a PNG nor a JPEG file (first bytes %02x %02x %02x)", path, magic[0], magic[1], magic[2]);
}

int png_write_rgb(const char *path, const uint8_t *rgb, int width, int height) {
    AtomicFile a;
    if (atomic_open(&a, path) != 0) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;   /* survives the longjmp */
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        atomic_close(&a, false);
        return ft_error("%s: libpng could not encode the %dx%d image", path, width, height);
    }
    png_init_io(png, a.f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    rows = ft_xmalloc((size_t)height * sizeof *rows);
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)(rgb + (size_t)y * width * 3);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return atomic_close(&a, true);
}
