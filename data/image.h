/* Image files. Every image in finch is uint8 RGB, row-major, 3 bytes per pixel (H x W x 3):
 * grayscale is replicated, alpha dropped, palettes expanded, 16-bit samples reduced to 8, CMYK
 * converted. A corrupt or truncated file is an error naming the file (libpng's and libjpeg's
 * error exits are caught, and libjpeg's corrupt-data warnings count as errors), never a crash
 * and never a half-decoded image. */
#ifndef FINCH_IMAGE_H
#define FINCH_IMAGE_H

#include <stdint.h>

typedef struct { uint8_t *rgb; int width, height; } Image;

/* PNG or JPEG, told apart by their first bytes. 0 on success, -1 with ft_last_error(). */
int image_read(const char *path, Image *out);
int png_read(const char *path, Image *out);
int jpeg_read(const char *path, Image *out);
void image_free(Image *im);

/* Written atomically. 0 on success, -1 with ft_last_error(). */
int png_write_rgb(const char *path, const uint8_t *rgb, int width, int height);
int jpeg_write_rgb(const char *path, const uint8_t *rgb, int width, int height, int quality);

#endif
