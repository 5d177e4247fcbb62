/* Image augmentation. Every geometric transform (crop, flip, rotation, shear, perspective) is a
 * projective map from output pixels to source pixels; a pipeline multiplies them into one 3x3
 * matrix and samples the source once (bilinear, edges replicated). Colour jitter (brightness,
 * contrast, saturation) is likewise one 3x4 linear map applied in the same pass, clamped once at
 * the end (torchvision clamps after each factor; the two differ only where a channel saturates).
 *
 * Randomness comes from the Rng passed in, so a pipeline is deterministic for a given stream:
 * the loader gives every (seed, epoch, position) its own stream. */
#ifndef FINCH_AUGMENT_H
#define FINCH_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pixel (x, y), channel c of an 8-bit image lies at p[y * row + x * px + c * plane]: this reads
 * both HxWx3 (px 3, row 3w, plane 1) and CxHxW (px 1, row w, plane w*h) images. */
typedef struct { const uint8_t *p; int w, h, px, row, plane; } ImageView;
static inline ImageView view_hwc(const uint8_t *p, int w, int h) { return (ImageView){ p, w, h, 3, 3 * w, 1 }; }
static inline ImageView view_chw(const uint8_t *p, int w, int h) { return (ImageView){ p, w, h, 1, w, w * h }; }

/* 3x3 row-major matrices on homogeneous (x, y, 1) points, pixel centres at i + 0.5. */
typedef struct { double m[9]; } Mat3;
Mat3 mat3_mul(Mat3 a, Mat3 b);
Mat3 mat3_affine(double a, double b, double c, double d, double e, double f);   /* (ax+by+c, dx+ey+f) */
/* The projective map sending from[k] to to[k] (4 points, x y pairs); false if degenerate. */
bool mat3_from_points(const double from[8], const double to[8], Mat3 *out);

/* dst (uint8 3 x dh x dw) = src sampled at H * (output pixel), colour = NULL or a 3x4 row-major
 * map [A | b] applied to the sampled 0..255 values. */
void warp_image(ImageView src, Mat3 H, const float *colour, uint8_t *dst, int dw, int dh);

typedef struct {
    double crop_scale;     /* random resized crop: area fraction uniform in [crop_scale, 1] (1: off) */
    double crop_ratio;     /* ... aspect ratio log-uniform in [1/r, r] */
    bool flip;             /* horizontal flip with probability 0.5 */
    double rotate_deg;     /* rotation uniform in [-r, r] */
    double shear_deg;      /* shear along x or y, uniform in [-s, s] */
    double perspective;    /* with probability 0.5, each corner moved inwards by up to this fraction */
    double jitter;         /* brightness, contrast, saturation factors each uniform in [1-j, 1+j] */
} AugmentConfig;

/* `--augment online`: crop 0.6..1 (ratio 4/3), flip, rotation 15, shear 10, perspective 0.1,
 * jitter 0.1. Rotation and shear zoom in just enough that no corner leaves the crop. */
extern const AugmentConfig augment_online;

/* One draw of the pipeline: src (any layout) into dst uint8 [3, size, size]. */
void augment_image(const AugmentConfig *c, Rng *rng, ImageView src, uint8_t *dst, int size);

/* ProtoPNet's offline recipe (Augmentor): copy k of 30 uses pipeline k / 10, 0: rotation by an
 * integer angle in [-15, 15] cropped to the largest inscribed rectangle of the image's aspect;
 * 1: skew of magnitude 0.2 (a tilt or a corner, up to 20% of the side); 2: shear by an integer
 * angle in [-10, 10] along x or y, cropped to the unsheared strip; each then flipped with
 * probability 0.5. The source region (x0, y0, w0, h0) of src is warped into size x size. */
#define OFFLINE_PIPELINES 3
void augment_offline(int copy, Rng *rng, ImageView src, const float region[4], uint8_t *dst, int size);

#ifdef __cplusplus
}
#endif

#endif
