/* The picture of a retrieval attack: for each of the first queries, the clean query and its top 5
 * of the gallery, then the adversarial query and its top 5; a gallery image is framed green when
 * it shows the query's identity, red when not (retrieval_run.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "retrieval_run.h"
#include "data/image.h"

#define TOP 5

typedef struct { uint8_t *px; int w, h; } Canvas;

/* A C x S x S image (uint8 CHW) at (x, y), scaled by k, with a frame of colour rgb (NULL: none). */
static void tile(Canvas *c, int x, int y, const uint8_t *chw, int C, int S, int k, const uint8_t *rgb) {
    for (int yy = -3; yy < S * k + 3; yy++)
        for (int xx = -3; xx < S * k + 3; xx++) {
            int px = x + xx, py = y + yy;
            if (px < 0 || py < 0 || px >= c->w || py >= c->h) continue;
            uint8_t *p = c->px + ((size_t)py * c->w + px) * 3;
            bool inside = xx >= 0 && yy >= 0 && xx < S * k && yy < S * k;
            if (!inside) { if (rgb) memcpy(p, rgb, 3); continue; }
            int sx = xx / k, sy = yy / k;
            for (int ch = 0; ch < 3; ch++) p[ch] = chw[(size_t)(C == 3 ? ch : 0) * S * S + (size_t)sy * S + sx];
        }
}

/* Protocol image j's pixels (uint8 CHW). */
static const uint8_t *image_of(const RetrievalData *rd, int j) {
    const Dataset *ds = j < rd->n_train ? &rd->data.train : &rd->data.test;
    int64_t per = ds->images->numel / dataset_size(ds);
    return ft_u8(ds->images) + (int64_t)rd->idx[j] * per;
}

int retrieval_picture(const char *path, const RetrievalData *rd, const RetrievalSet *clean, const RetrievalSet *adv,
                      const float *adv_images, int n) {
    const Tensor *im = rd->data.test.images;
    int C = im->shape.d[1], S = im->shape.d[2];
    if (im->shape.d[3] != S) return ft_error("%s: the ranking picture needs square images", path);
    int k = S >= 64 ? 1 : (64 + S - 1) / S, t = S * k, gap = 8, cols = 2 * (TOP + 1);
    Canvas c = { NULL, cols * (t + gap) + 3 * gap, n * (t + gap) + gap };
    c.px = ft_xmalloc((size_t)c.w * c.h * 3);
    memset(c.px, 255, (size_t)c.w * c.h * 3);
    uint8_t *q8 = ft_xmalloc((size_t)C * S * S);
    static const uint8_t green[3] = { 0, 170, 0 }, red[3] = { 220, 0, 0 }, grey[3] = { 128, 128, 128 };
    for (int i = 0; i < n; i++) {
        int y = gap + i * (t + gap), top[TOP];
        for (int side = 0; side < 2; side++) {
            const RetrievalSet *s = side ? adv : clean;
            int x = gap + side * ((TOP + 1) * (t + gap) + 2 * gap);
            const uint8_t *q = image_of(rd, i);
            if (side) {
                for (int64_t p = 0; p < (int64_t)C * S * S; p++)
                    q8[p] = (uint8_t)lrintf(fminf(fmaxf(adv_images[(int64_t)i * C * S * S + p], 0), 1) * 255);
                q = q8;
            }
            tile(&c, x, y, q, C, S, k, grey);
            retrieval_top(s, i, TOP, top);
            for (int r = 0; r < TOP && top[r] >= 0; r++) {
                int j = top[r] + rd->n_query;   /* gallery entry -> protocol image (Market's gallery follows its queries) */
                tile(&c, x + (r + 1) * (t + gap), y, image_of(rd, j), C, S, k, rd->id[j] == rd->id[i] ? green : red);
            }
        }
    }
    int rc = png_write_rgb(path, c.px, c.w, c.h);
    free(q8);
    free(c.px);
    return rc;
}
