/* Drawing on uint8 RGB images (H x W x 3, row-major): what prototype pictures need. */
#ifndef FINCH_DRAW_H
#define FINCH_DRAW_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The jet colormap (as OpenCV's COLORMAP_JET) of v in [0, 1] -> rgb */
void draw_jet(double v, uint8_t rgb[3]);
/* out = 0.5 image + 0.3 jet(heat normalised to [0, 1]), ProtoPNet's overlay; heat [H x W] doubles. */
void draw_heat_overlay(const uint8_t *image, const double *heat, int w, int h, uint8_t *out);
/* A rectangle outline, `thick` pixels wide, over the inclusive box [x0, x1] x [y0, y1] (clipped). */
void draw_box(uint8_t *image, int w, int h, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thick);
/* The box around the values >= the q-th percentile (q in [0, 100]) of heat: x0, y0, x1, y1 inclusive. */
void draw_percentile_box(const double *heat, int w, int h, double q, int box[4]);
/* Writes the inclusive box x0, y0, x1, y1 of image (clipped to it) as a PNG; 0, or -1 with
 * ft_last_error(). */
int draw_write_crop(const char *path, const uint8_t *image, int w, int h, const int box[4]);
/* uint8 CHW (1 or 3 channels) -> RGB HWC */
void draw_chw_to_rgb(const uint8_t *chw, int channels, int w, int h, uint8_t *rgb);

#ifdef __cplusplus
}
#endif

#endif
