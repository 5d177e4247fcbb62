/* Image files. Pixels are uint8 RGB, row-major, 3 bytes per pixel. */
#ifndef FINCH_IMAGE_H
#define FINCH_IMAGE_H

#include <stdint.h>

/* Written atomically. 0 on success, -1 with ft_last_error(). */
int png_write_rgb(const char *path, const uint8_t *rgb, int width, int height);

#endif
