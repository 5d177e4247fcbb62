/* PIL's bilinear resize, bit for bit: what torchvision's Resize does to a PIL image, and so what
 * ProtoPNet's pipeline feeds its network. Downscaling widens the triangle filter by the scale
 * (antialiasing); coefficients are 22-bit fixed point; the horizontal pass runs first and its
 * result is rounded to 8 bits before the vertical pass (Pillow's src/libImaging/Resample.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sources.h"

#define PRECISION_BITS (32 - 8 - 2)

typedef struct { int ksize, *first, *count; int32_t *k; } Coeffs;

static double triangle(double x) { x = fabs(x); return x < 1 ? 1 - x : 0; }

/* For each output index: the first input index, how many, and their fixed-point weights. */
static Coeffs coeffs(int in_size, double in0, double in1, int out_size) {
    double scale = (in1 - in0) / out_size, filterscale = scale < 1 ? 1 : scale, support = filterscale;
    Coeffs c = { (int)ceil(support) * 2 + 1, NULL, NULL, NULL };
    c.first = ft_xmalloc((size_t)out_size * sizeof *c.first);
    c.count = ft_xmalloc((size_t)out_size * sizeof *c.count);
    c.k = ft_xcalloc((size_t)out_size * c.ksize, sizeof *c.k);
    double *w = ft_xmalloc((size_t)c.ksize * sizeof *w);
    for (int o = 0; o < out_size; o++) {
        double center = in0 + (o + 0.5) * scale, sum = 0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        for (int i = 0; i < n; i++) sum += w[i] = triangle((i + lo - center + 0.5) / filterscale);
        for (int i = 0; i < n; i++) {
            double v = sum != 0 ? w[i] / sum : w[i];
            c.k[o * c.ksize + i] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c.first[o] = lo;
        c.count[o] = n;
    }
    free(w);
    return c;
}

static void coeffs_free(Coeffs *c) { free(c->first); free(c->count); free(c->k); }

static inline uint8_t clip8(int64_t ss) {
    int64_t v = ss >> PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void resize_bilinear_pil(ImageView src, const float region[4], uint8_t *dst, int size) {
    Coeffs h = coeffs(src.w, region[0], (double)region[0] + region[2], size);
    Coeffs v = coeffs(src.h, region[1], (double)region[1] + region[3], size);
    int row0 = v.first[0], rows = v.first[size - 1] + v.count[size - 1] - row0;
    uint8_t *tmp = ft_xmalloc((size_t)3 * rows * size);   /* the horizontal pass: 3 x rows x size */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < rows; y++) {
            const uint8_t *in = src.p + (size_t)c * src.plane + (size_t)(y + row0) * src.row;
            for (int o = 0; o < size; o++) {
                const int32_t *k = h.k + (size_t)o * h.ksize;
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < h.count[o]; i++) ss += (int64_t)in[(size_t)(h.first[o] + i) * src.px] * k[i];
                tmp[((size_t)c * rows + y) * size + o] = clip8(ss);
            }
        }
    for (int c = 0; c < 3; c++)
        for (int o = 0; o < size; o++) {
            const int32_t *k = v.k + (size_t)o * v.ksize;
            const uint8_t *in = tmp + ((size_t)c * rows + v.first[o] - row0) * size;
            uint8_t *out = dst + ((size_t)c * size + o) * size;
            for (int x = 0; x < size; x++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < v.count[o]; i++) ss += (int64_t)in[(size_t)i * size + x] * k[i];
                out[x] = clip8(ss);
            }
        }
    free(tmp);
    coeffs_free(&h);
    coeffs_free(&v);
}
