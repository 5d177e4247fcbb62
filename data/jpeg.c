/* JPEG through libjpeg-turbo: gray, RGB (YCbCr) and CMYK/YCCK read into RGB; RGB written. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "image.h"
#include "core/error.h"
#include "core/fileio.h"

/* libjpeg's error manager, extended so that a fatal error and a corrupt-data warning (a truncated
 * file, a bad Huffman code) both jump back at once: libjpeg would otherwise fill the rest of the
 * image with gray and call it done, after decoding all of it. */
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} JpegErrors;

static void jpeg_error_exit(j_common_ptr c) {
    JpegErrors *e = (JpegErrors *)c->err;
    c->err->format_message(c, e->message);
    longjmp(e->jump, 1);
}

static void jpeg_emit(j_common_ptr c, int level) {
    JpegErrors *e = (JpegErrors *)c->err;
    if (level < 0) {   /* a warning: corrupt or truncated data; stop here rather than decode the rest */
        c->err->format_message(c, e->message);
        c->err->num_warnings++;
        longjmp(e->jump, 1);
    }
}

int jpeg_read(const char *path, Image *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen_regular(path);
    if (!f) return -1;
    struct jpeg_decompress_struct cinfo;
    JpegErrors err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = jpeg_error_exit;
    err.base.emit_message = jpeg_emit;
    uint8_t *volatile rgb = NULL, *volatile row = NULL;   /* survive the longjmp */
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        free(rgb);
        free(row);
        return ft_error("%s: not a readable JPEG: %s", path, err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (image_check_size(path, (long)cinfo.image_width, (long)cinfo.image_height) != 0) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        return -1;
    }
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;   /* libjpeg turns gray and YCbCr into RGB */
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || c != (cmyk ? 4 : 3)) {
        snprintf(err.message, sizeof err.message, "unsupported size %dx%d or %d channels", w, h, c);
        longjmp(err.jump, 1);
    }
    rgb = ft_xmalloc((size_t)w * h * 3);
    row = ft_xmalloc((size_t)w * c);
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = rgb + (size_t)cinfo.output_scanline * w * 3;
        JSAMPROW r = cmyk ? (JSAMPROW)row : (JSAMPROW)dst;
        jpeg_read_scanlines(&cinfo, &r, 1);
        if (!cmyk) continue;
        /* Adobe writes CMYK inverted (0 = full ink); plain CMYK is not */
        for (int x = 0; x < w; x++) {
            int k = row[4 * x + 3];
            for (int ch = 0; ch < 3; ch++) {
                int v = row[4 * x + ch];
                dst[3 * x + ch] = (uint8_t)(cinfo.saw_Adobe_marker ? v * k / 255 : (255 - v) * (255 - k) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    free(row);
    *out = (Image){ rgb, w, h };
    return 0;
}

int jpeg_write_rgb(const char *path, const uint8_t *rgb, int width, int height, int quality) {
    AtomicFile a;
    if (atomic_open(&a, path) != 0) return -1;
    struct jpeg_compress_struct cinfo;
    JpegErrors err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = jpeg_error_exit;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        atomic_close(&a, false);
        return ft_error("%s: libjpeg could not encode the %dx%d image: %s", path, width, height, err.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, a.f);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW r = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return atomic_close(&a, true);
}

int jpeg_round_trip(uint8_t *pixels, int width, int height, int channels, int quality) {
    struct jpeg_compress_struct c;
    struct jpeg_decompress_struct d;
    JpegErrors err;
    memset(&err, 0, sizeof err);
    unsigned char *volatile buf = NULL;
    unsigned long size = 0;
    volatile int stage = 0;   /* 1: compressing, 2: decompressing */
    c.err = d.err = jpeg_std_error(&err.base);
    err.base.error_exit = jpeg_error_exit;
    if (setjmp(err.jump)) {
        if (stage == 1) jpeg_destroy_compress(&c);
        if (stage == 2) jpeg_destroy_decompress(&d);
        free(buf);
        return ft_error("JPEG round trip of a %dx%d image: %s", width, height, err.message);
    }
    stage = 1;
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = (JDIMENSION)width;
    c.image_height = (JDIMENSION)height;
    c.input_components = channels;
    c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(pixels + (size_t)c.next_scanline * width * channels);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    buf = out;
    jpeg_destroy_compress(&c);
    stage = 2;
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, buf, size);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&d);
    while (d.output_scanline < d.output_height) {
        JSAMPROW r = (JSAMPROW)(pixels + (size_t)d.output_scanline * width * channels);
        jpeg_read_scanlines(&d, &r, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    free(buf);
    return 0;
}
