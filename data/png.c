#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include "image.h"
#include "core/error.h"
#include "core/fileio.h"

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
