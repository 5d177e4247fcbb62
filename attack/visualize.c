/* A picture of an attack: one column per example; rows are the clean image, the adversarial
 * image and the perturbation (x_adv - x) / eps (red +, blue -, white 0). Each image is framed
 * green when the model's prediction is right and red when wrong; the predicted class index is
 * written under it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"
#include "data/image.h"

/* 3x5 glyphs, one 3-bit row per entry (MSB left). */
static const char *const glyph_chars = "0123456789ACDELNTV";
static const uint8_t glyphs[][5] = {
    {7,5,5,5,7}, {2,6,2,2,7}, {7,1,7,4,7}, {7,1,7,1,7}, {5,5,7,1,1}, {7,4,7,1,7}, {7,4,7,5,7}, {7,1,1,1,1},
    {7,5,7,5,7}, {7,5,7,1,7}, {2,5,7,5,5}, {7,4,4,4,7}, {6,5,5,5,6}, {7,4,7,4,7}, {4,4,4,4,7}, {6,5,5,5,5},
    {7,2,2,2,2}, {5,5,5,5,2},
};

typedef struct { uint8_t *px; int w, h; } Canvas;

static void put(Canvas *c, int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
    p[0] = r; p[1] = g; p[2] = b;
}

static void text(Canvas *c, int x, int y, const char *s, int scale) {
    for (; *s; s++, x += 4 * scale) {
        const char *k = strchr(glyph_chars, *s);
        if (!k) continue;
        const uint8_t *gl = glyphs[k - glyph_chars];
        for (int gy = 0; gy < 5 * scale; gy++)
            for (int gx = 0; gx < 3 * scale; gx++)
                if (gl[gy / scale] >> (2 - gx / scale) & 1) put(c, x + gx, y + gy, 0, 0, 0);
    }
}

static void frame(Canvas *c, int x0, int y0, int w, int h, int t, uint8_t r, uint8_t g, uint8_t b) {
    for (int y = y0 - t; y < y0 + h + t; y++)
        for (int x = x0 - t; x < x0 + w + t; x++)
            if (y < y0 || y >= y0 + h || x < x0 || x >= x0 + w) put(c, x, y, r, g, b);
}

/* image i of [n, C, H, W] (C = 1 or 3) at (x0, y0), each pixel scale x scale; perturbation
 * mode colours the signed difference instead */
static void draw(Canvas *c, const float *a, const float *b, int C, int H, int W, int x0, int y0, int scale,
                 double eps) {
    for (int y = 0; y < H * scale; y++)
        for (int x = 0; x < W * scale; x++) {
            int k = (y / scale) * W + x / scale;
            float v[3];
            for (int ch = 0; ch < 3; ch++) v[ch] = a[(C == 3 ? ch : 0) * H * W + k];
            uint8_t rgb[3];
            if (b) {
                double d = (b[k] - a[k]) / (eps > 0 ? eps : 1);
                d = d > 1 ? 1 : d < -1 ? -1 : d;
                uint8_t lo = (uint8_t)(255 * (1 - (d > 0 ? d : -d)));
                rgb[0] = d > 0 ? 255 : lo; rgb[1] = lo; rgb[2] = d < 0 ? 255 : lo;
            } else {
                for (int ch = 0; ch < 3; ch++) rgb[ch] = (uint8_t)(255 * (v[ch] < 0 ? 0 : v[ch] > 1 ? 1 : v[ch]) + 0.5f);
            }
            put(c, x0 + x, y0 + y, rgb[0], rgb[1], rgb[2]);
        }
}

int adv_grid_png(const char *path, const Tensor *x, const Tensor *x_adv, const int32_t *labels,
                 const int32_t *pred_clean, const int32_t *pred_adv, int n, double eps) {
    int C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    int scale = H < 64 ? 3 : 1, cell_w = W * scale + 12, cell_h = H * scale + 30, margin = 70;
    Canvas c = { NULL, margin + n * cell_w, 3 * cell_h + 6 };
    c.px = ft_xmalloc((size_t)c.w * c.h * 3);
    memset(c.px, 255, (size_t)c.w * c.h * 3);
    const char *rows[] = { "CLEAN", "ADV", "DELTA" };
    for (int r = 0; r < 3; r++) text(&c, 4, r * cell_h + H * scale / 2, rows[r], 3);
    const float *xs = ft_f32(x), *as = ft_f32(x_adv);
    int64_t per = (int64_t)C * H * W;
    for (int i = 0; i < n; i++) {
        int x0 = margin + i * cell_w + 6;
        for (int r = 0; r < 3; r++) {
            int y0 = r * cell_h + 6;
            const float *img = r == 1 ? as + i * per : xs + i * per;
            draw(&c, img, r == 2 ? as + i * per : NULL, C, H, W, x0, y0, scale, eps);
            if (r == 2) { frame(&c, x0, y0, W * scale, H * scale, 1, 160, 160, 160); continue; }
            int pred = r == 0 ? pred_clean[i] : pred_adv[i];
            bool right = pred == labels[i];
            frame(&c, x0, y0, W * scale, H * scale, 3, right ? 0 : 220, right ? 170 : 0, 0);
            char num[16];
            snprintf(num, sizeof num, "%d", pred);
            text(&c, x0 + W * scale / 2 - 4, y0 + H * scale + 6, num, 3);
        }
    }
    int rc = png_write_rgb(path, c.px, c.w, c.h);
    free(c.px);
    return rc;
}
