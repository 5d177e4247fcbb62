/* Image files. Every image in finch is uint8 RGB, row-major, 3 bytes per pixel (H x W x 3):
 * grayscale is replicated, alpha dropped, palettes expanded, 16-bit samples reduced to 8, CMYK
 * converted. A corrupt or truncated file is an error naming the file (libpng's and libjpeg's
 * error exits are caught, and libjpeg's corrupt-data warnings count as errors), never a crash
 * and never a half-decoded image. */
#ifndef FINCH_IMAGE_H
#define FINCH_IMAGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { uint8_t *rgb; int width, height; } Image;

/* The largest image the readers decode, checked from the header before any pixel is allocated:
 * by default a side of IMAGE_MAX_SIDE pixels and IMAGE_MAX_PIXELS in all; image_set_max_side
 * raises (or lowers) both, the area in proportion to the side squared. */
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (64ll << 20)
void image_set_max_side(int side);
/* 0 when a width x height image is within the limits, else -1 with ft_last_error() naming path. */
int image_check_size(const char *path, long width, long height);

/* PIL's "L" conversion of one RGB pixel (ITU-R 601-2 luma in 16-bit fixed point, rounded), as a
 * grey model sees an RGB image. */
static inline uint8_t image_luma(uint8_t r, uint8_t g, uint8_t b) {
    return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

/* PNG or JPEG, told apart by their first bytes. 0 on success, -1 with ft_last_error(). */
int image_read(const char *path, Image *out);
int png_read(const char *path, Image *out);
int jpeg_read(const char *path, Image *out);
void image_free(Image *im);

/* Written atomically. 0 on success, -1 with ft_last_error(). */
int png_write_rgb(const char *path, const uint8_t *rgb, int width, int height);
int jpeg_write_rgb(const char *path, const uint8_t *rgb, int width, int height, int quality);
/* pixels (height x width x channels, 1 grey or 3 RGB, interleaved) replaced by their JPEG
 * round trip at quality (libjpeg's defaults, as PIL's save: 4:2:0 for RGB), in memory. 0, or -1
 * with ft_last_error(). */
int jpeg_round_trip(uint8_t *pixels, int width, int height, int channels, int quality);

#ifdef __cplusplus
}
#endif

#endif
