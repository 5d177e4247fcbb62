#include <math.h>
#include <string.h>
#include "augment.h"

const AugmentConfig augment_online = { 0.6, 4.0 / 3.0, true, 15, 10, 0.1, 0.1 };

static const double PI = 3.14159265358979323846;

Mat3 mat3_mul(Mat3 a, Mat3 b) {
    Mat3 c;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            c.m[3 * i + j] = a.m[3 * i] * b.m[j] + a.m[3 * i + 1] * b.m[3 + j] + a.m[3 * i + 2] * b.m[6 + j];
    return c;
}

Mat3 mat3_affine(double a, double b, double c, double d, double e, double f) {
    return (Mat3){ { a, b, c, d, e, f, 0, 0, 1 } };
}

static Mat3 translate(double x, double y) { return mat3_affine(1, 0, x, 0, 1, y); }
static Mat3 scale(double sx, double sy) { return mat3_affine(sx, 0, 0, 0, sy, 0); }

/* Solves the 8 unknowns of a projective map (m[8] = 1) by Gaussian elimination with pivoting. */
bool mat3_from_points(const double from[8], const double to[8], Mat3 *out) {
    double A[8][9];
    for (int k = 0; k < 4; k++) {
        double x = from[2 * k], y = from[2 * k + 1], u = to[2 * k], v = to[2 * k + 1];
        double r0[9] = { x, y, 1, 0, 0, 0, -u * x, -u * y, u }, r1[9] = { 0, 0, 0, x, y, 1, -v * x, -v * y, v };
        memcpy(A[2 * k], r0, sizeof r0);
        memcpy(A[2 * k + 1], r1, sizeof r1);
    }
    for (int c = 0; c < 8; c++) {
        int p = c;
        for (int r = c + 1; r < 8; r++) if (fabs(A[r][c]) > fabs(A[p][c])) p = r;
        if (fabs(A[p][c]) < 1e-12) return false;
        for (int j = 0; j < 9; j++) { double t = A[c][j]; A[c][j] = A[p][j]; A[p][j] = t; }
        for (int r = 0; r < 8; r++) {
            if (r == c) continue;
            double f = A[r][c] / A[c][c];
            for (int j = c; j < 9; j++) A[r][j] -= f * A[c][j];
        }
    }
    for (int i = 0; i < 8; i++) out->m[i] = A[i][8] / A[i][i];
    out->m[8] = 1;
    return true;
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

#define ROW_CHUNK 256

/* Up to ROW_CHUNK output pixels of a row, in three passes the compiler can vectorise where it
 * matters: source offsets and bilinear weights, then the taps per channel, then colour and
 * rounding. (x, y, w) are the homogeneous source index coordinates of the first pixel and
 * (dx, dy, dw) their steps per pixel. */
static void warp_run(ImageView s, double x, double y, double w, double dx, double dy, double dw, bool affine,
                     const float *colour, uint8_t *restrict d0, uint8_t *restrict d1, uint8_t *restrict d2, int n) {
    int32_t off[ROW_CHUNK];
    float tx[ROW_CHUNK], ty[ROW_CHUNK], v[3][ROW_CHUNK];
    const float xmax = (float)(s.w - 1), ymax = (float)(s.h - 1);
    const int ixmax = s.w > 1 ? s.w - 2 : 0, iymax = s.h > 1 ? s.h - 2 : 0;
    const int stepx = s.w > 1 ? s.px : 0, stepy = s.h > 1 ? s.row : 0;
    const float fx0 = (float)x, fy0 = (float)y, fw0 = (float)w, fdx = (float)dx, fdy = (float)dy, fdw = (float)dw;
    for (int i = 0; i < n; i++) {
        float inv = affine ? 1.0f : 1.0f / (fw0 + fdw * (float)i);
        float fx = clampf((fx0 + fdx * (float)i) * inv, 0, xmax), fy = clampf((fy0 + fdy * (float)i) * inv, 0, ymax);
        int ix = (int)fx, iy = (int)fy;
        ix = ix > ixmax ? ixmax : ix;
        iy = iy > iymax ? iymax : iy;
        tx[i] = fx - (float)ix;
        ty[i] = fy - (float)iy;
        off[i] = iy * s.row + ix * s.px;
    }
    for (int c = 0; c < 3; c++) {
        const uint8_t *base = s.p + (size_t)c * s.plane;
        for (int i = 0; i < n; i++) {
            const uint8_t *p = base + off[i];
            float top = p[0] + tx[i] * (float)(p[stepx] - p[0]);
            float bot = p[stepy] + tx[i] * (float)(p[stepy + stepx] - p[stepy]);
            v[c][i] = top + ty[i] * (bot - top);
        }
    }
    const float *A = colour;
    for (int i = 0; i < n; i++) {
        float r = v[0][i], g = v[1][i], b = v[2][i];
        if (A) {
            float r2 = A[0] * r + A[1] * g + A[2] * b + A[3], g2 = A[4] * r + A[5] * g + A[6] * b + A[7];
            b = A[8] * r + A[9] * g + A[10] * b + A[11];
            r = r2; g = g2;
        }
        d0[i] = (uint8_t)(clampf(r, 0, 255) + 0.5f);
        d1[i] = (uint8_t)(clampf(g, 0, 255) + 0.5f);
        d2[i] = (uint8_t)(clampf(b, 0, 255) + 0.5f);
    }
}

void warp_image(ImageView src, Mat3 H, const float *colour, uint8_t *dst, int dw, int dh) {
    /* index coordinates on both sides: source index = T(-0.5) H T(+0.5) (output index) */
    Mat3 G = mat3_mul(translate(-0.5, -0.5), mat3_mul(H, translate(0.5, 0.5)));
    const double *m = G.m;
    bool affine = m[6] == 0 && m[7] == 0 && m[8] == 1;
    size_t plane = (size_t)dw * dh;
    for (int y = 0; y < dh; y++) {
        for (int x = 0; x < dw; x += ROW_CHUNK) {
            uint8_t *d = dst + (size_t)y * dw + x;
            warp_run(src, m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5], m[6] * x + m[7] * y + m[8], m[0], m[3],
                     m[6], affine, colour, d, d + plane, d + 2 * plane, dw - x < ROW_CHUNK ? dw - x : ROW_CHUNK);
        }
    }
}

static double uniform(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_double(r); }
static int randint(Rng *r, int lo, int hi) { return lo + (int)(rng_double(r) * (hi - lo + 1)); }   /* [lo, hi] */

/* torchvision's RandomResizedCrop box (x, y, w, h) in an sw x sh image; the centre crop of the
 * largest allowed shape when ten draws do not fit. */
static void random_crop(const AugmentConfig *c, Rng *r, int sw, int sh, double box[4]) {
    double area = (double)sw * sh, lr = log(c->crop_ratio);
    for (int t = 0; t < 10; t++) {
        double a = area * uniform(r, c->crop_scale, 1), ratio = exp(uniform(r, -lr, lr));
        double w = sqrt(a * ratio), h = sqrt(a / ratio);
        if (w <= sw && h <= sh) {
            double x = uniform(r, 0, sw - w), y = uniform(r, 0, sh - h);
            box[0] = x; box[1] = y; box[2] = w; box[3] = h;
            return;
        }
    }
    double w = sw, h = sh;
    if (w / h > c->crop_ratio) w = h * c->crop_ratio;
    else if (h / w > c->crop_ratio) h = w * c->crop_ratio;
    box[0] = (sw - w) / 2; box[1] = (sh - h) / 2; box[2] = w; box[3] = h;
}

/* The largest s <= 1 for which L maps the centred w x h rectangle, scaled by s, inside itself. */
static double inscribed_scale(Mat3 L, double w, double h) {
    double s = 1;
    for (int k = 0; k < 4; k++) {
        double x = (k & 1 ? 0.5 : -0.5) * w, y = (k & 2 ? 0.5 : -0.5) * h;
        double u = fabs(L.m[0] * x + L.m[1] * y), v = fabs(L.m[3] * x + L.m[4] * y);
        if (u > 0.5 * w * s) s = 0.5 * w / u;
        if (v > 0.5 * h * s) s = 0.5 * h / v;
    }
    return s;
}

/* The unit square [-0.5, 0.5]^2 onto itself with each corner moved inwards by up to d. */
static Mat3 random_perspective(Rng *r, double d) {
    double from[8] = { -0.5, -0.5, 0.5, -0.5, 0.5, 0.5, -0.5, 0.5 }, to[8];
    for (int k = 0; k < 8; k++) to[k] = from[k] - (from[k] > 0 ? 1 : -1) * uniform(r, 0, d);
    Mat3 P;
    return mat3_from_points(from, to, &P) ? P : mat3_affine(1, 0, 0, 0, 1, 0);
}

/* Brightness b, contrast c (around the mean gray mu), saturation s as one map [A | b]. */
static void colour_map(double b, double c, double s, double mu, float out[12]) {
    const double w[3] = { 0.299, 0.587, 0.114 };
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) out[4 * i + j] = (float)(c * b * ((i == j) * s + (1 - s) * w[j]));
        out[4 * i + 3] = (float)((1 - c) * b * mu);
    }
}

static double mean_gray(ImageView s) {
    double sum = 0;
    int n = 0;
    for (int y = 0; y < s.h; y += 4)
        for (int x = 0; x < s.w; x += 4, n++) {
            const uint8_t *p = s.p + (size_t)y * s.row + (size_t)x * s.px;
            sum += 0.299 * p[0] + 0.587 * p[s.plane] + 0.114 * p[2 * s.plane];
        }
    return sum / n;
}

void augment_image(const AugmentConfig *c, Rng *r, ImageView src, uint8_t *dst, int size) {
    double box[4] = { 0, 0, src.w, src.h };
    if (c->crop_scale < 1) random_crop(c, r, src.w, src.h, box);
    Mat3 M = mat3_mul(translate(-0.5, -0.5), scale(1.0 / size, 1.0 / size));   /* output -> centred unit square */
    if (c->perspective > 0 && rng_double(r) < 0.5) M = mat3_mul(random_perspective(r, c->perspective), M);
    if (c->flip && rng_double(r) < 0.5) M = mat3_mul(scale(-1, 1), M);
    M = mat3_mul(scale(box[2], box[3]), M);                       /* -> crop pixels, centred */
    double th = uniform(r, -c->rotate_deg, c->rotate_deg) * PI / 180, sh = tan(uniform(r, -c->shear_deg, c->shear_deg) * PI / 180);
    Mat3 L = mat3_affine(cos(th), -sin(th), 0, sin(th), cos(th), 0);
    L = mat3_mul(L, rng_double(r) < 0.5 ? mat3_affine(1, sh, 0, 0, 1, 0) : mat3_affine(1, 0, 0, sh, 1, 0));
    double s = inscribed_scale(L, box[2], box[3]);
    M = mat3_mul(mat3_mul(translate(box[0] + box[2] / 2, box[1] + box[3] / 2), mat3_mul(L, scale(s, s))), M);
    float colour[12];
    if (c->jitter > 0) {
        double j = c->jitter, b = uniform(r, 1 - j, 1 + j), k = uniform(r, 1 - j, 1 + j), sat = uniform(r, 1 - j, 1 + j);
        colour_map(b, k, sat, mean_gray(src), colour);
    }
    warp_image(src, M, c->jitter > 0 ? colour : NULL, dst, size, size);
}

/* Augmentor's skew: a tilt (two corners of one side pushed outwards along it) or one corner
 * pushed outwards along x or y, by k pixels; the output plane's moved corners map to the
 * image's corners. */
static Mat3 skew(Rng *r, double w, double h) {
    int k = randint(r, 1, (int)ceil(fmax(w, h) * 0.2));
    double orig[8] = { 0, 0, w, 0, w, h, 0, h }, moved[8];
    memcpy(moved, orig, sizeof moved);
    static const int tilts[4][4] = { { 1, 7, -1, +1 }, { 3, 5, -1, +1 }, { 0, 2, -1, +1 }, { 6, 4, -1, +1 } };
    if (rng_double(r) < 0.5) {            /* tilt left, right, forward, backward: coordinates a and b */
        const int *t = tilts[randint(r, 0, 3)];
        moved[t[0]] += t[2] * k;
        moved[t[1]] += t[3] * k;
    } else {                              /* corner: coordinate q moved away from the centre */
        int q = randint(r, 0, 7);
        moved[q] += (orig[q] > 0 ? 1 : -1) * k;
    }
    Mat3 S;
    return mat3_from_points(moved, orig, &S) ? S : mat3_affine(1, 0, 0, 0, 1, 0);
}

/* Augmentor's shear by an integer angle along x or y, cropped to the strip with no border. */
static Mat3 shear(Rng *r, double w, double h) {
    double phi = tan(randint(r, -10, 10) * PI / 180);
    bool along_x = rng_double(r) < 0.5;
    double shift = fabs(phi) * (along_x ? h : w), off = phi > 0 ? shift : 0;
    if (along_x) return mat3_affine((w - shift) / w, phi, shift - off, 0, 1, 0);
    return mat3_affine(1, 0, 0, phi, (h - shift) / h, shift - off);
}

void augment_offline(int copy, Rng *r, ImageView src, const float region[4], uint8_t *dst, int size) {
    double w = region[2], h = region[3];
    Mat3 M = scale(w / size, h / size);                           /* output -> region pixels */
    if (copy / 10 % OFFLINE_PIPELINES == 0) {
        int deg = rng_double(r) < 0.5 ? randint(r, -15, 0) : randint(r, 0, 15);
        double th = deg * PI / 180;
        Mat3 R = mat3_affine(cos(th), -sin(th), 0, sin(th), cos(th), 0);
        double s = inscribed_scale(R, w, h);
        M = mat3_mul(mat3_mul(translate(w / 2, h / 2), mat3_mul(R, mat3_mul(scale(s, s), translate(-w / 2, -h / 2)))), M);
    } else if (copy / 10 % OFFLINE_PIPELINES == 1) {
        M = mat3_mul(skew(r, w, h), M);
    } else {
        M = mat3_mul(shear(r, w, h), M);
    }
    if (rng_double(r) < 0.5) M = mat3_mul(M, mat3_affine(-1, 0, size, 0, 1, 0));
    warp_image(src, mat3_mul(translate(region[0], region[1]), M), NULL, dst, size, size);
}
