#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "draw.h"
#include "core/finch.h"
#include "image.h"

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* piecewise linear: blue -> cyan -> yellow -> red, dark at both ends */
void draw_jet(double v, uint8_t rgb[3]) {
    v = clamp01(v);
    double r = clamp01(1.5 - fabs(4 * v - 3)), g = clamp01(1.5 - fabs(4 * v - 2)), b = clamp01(1.5 - fabs(4 * v - 1));
    rgb[0] = (uint8_t)lround(255 * r);
    rgb[1] = (uint8_t)lround(255 * g);
    rgb[2] = (uint8_t)lround(255 * b);
}

void draw_heat_overlay(const uint8_t *image, const double *heat, int w, int h, uint8_t *out) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < w * h; i++) { lo = fmin(lo, heat[i]); hi = fmax(hi, heat[i]); }
    double span = hi > lo ? hi - lo : 1;
    for (int i = 0; i < w * h; i++) {
        uint8_t c[3];
        draw_jet((heat[i] - lo) / span, c);
        for (int k = 0; k < 3; k++) {
            double v = 0.5 * image[3 * i + k] + 0.3 * c[k];
            out[3 * i + k] = (uint8_t)lround(v > 255 ? 255 : v);
        }
    }
}

void draw_box(uint8_t *image, int w, int h, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thick) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            if (x < 0 || y < 0 || x >= w || y >= h) continue;
            bool edge = x - x0 < thick || x1 - x < thick || y - y0 < thick || y1 - y < thick;
            if (edge) memcpy(image + 3 * ((size_t)y * w + x), rgb, 3);
        }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void draw_percentile_box(const double *heat, int w, int h, double q, int box[4]) {
    int n = w * h;
    double *sorted = ft_xmalloc((size_t)n * sizeof *sorted);
    memcpy(sorted, heat, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    double pos = q / 100 * (n - 1), frac = pos - floor(pos);   /* numpy's linear interpolation */
    int i = (int)floor(pos);
    double threshold = i + 1 < n ? sorted[i] + frac * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
    free(sorted);
    box[0] = w; box[1] = h; box[2] = -1; box[3] = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (heat[(size_t)y * w + x] < threshold) continue;
            if (x < box[0]) box[0] = x;
            if (y < box[1]) box[1] = y;
            if (x > box[2]) box[2] = x;
            if (y > box[3]) box[3] = y;
        }
}

void draw_chw_to_rgb(const uint8_t *chw, int channels, int w, int h, uint8_t *rgb) {
    size_t plane = (size_t)w * h;
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < 3; k++) rgb[3 * i + k] = chw[(channels == 3 ? k : 0) * plane + i];
}

int draw_write_crop(const char *path, const uint8_t *image, int w, int h, const int box[4]) {
    int x0 = box[0] < 0 ? 0 : box[0], y0 = box[1] < 0 ? 0 : box[1];
    int x1 = box[2] >= w ? w - 1 : box[2], y1 = box[3] >= h ? h - 1 : box[3];
    if (x1 < x0 || y1 < y0) return ft_error("%s: empty crop box %d,%d,%d,%d of a %dx%d image", path, box[0], box[1], box[2], box[3], w, h);
    int cw = x1 - x0 + 1, ch = y1 - y0 + 1;
    uint8_t *crop = ft_xmalloc((size_t)cw * ch * 3);
    for (int y = 0; y < ch; y++) memcpy(crop + (size_t)y * cw * 3, image + ((size_t)(y0 + y) * w + x0) * 3, (size_t)cw * 3);
    int rc = png_write_rgb(path, crop, cw, ch);
    free(crop);
    return rc;
}
