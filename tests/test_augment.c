/* Augmentation and the background loader: exact warps, deterministic draws, the offline recipe
 * keeps to the image, and the loader gives the same batches whatever its thread count. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "data/loader.h"
#include "data/sources.h"
#include "core/safetensors.h"

/* a 3 x h x w image whose pixels differ from one another */
static uint8_t *pattern(int w, int h, uint32_t seed) {
    uint8_t *p = malloc((size_t)3 * w * h);
    for (int i = 0; i < 3 * w * h; i++) p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
    return p;
}

TEST(warps_are_exact_where_they_should_be) {
    int w = 13, h = 9;
    uint8_t *src = pattern(w, h, 1), *dst = malloc((size_t)3 * w * h), *hwc = malloc((size_t)3 * w * h);
    warp_image(view_chw(src, w, h), mat3_affine(1, 0, 0, 0, 1, 0), NULL, dst, w, h);
    CHECK(memcmp(src, dst, (size_t)3 * w * h) == 0, "the identity warp changed the image");
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++) hwc[i * 3 + c] = src[c * w * h + i];
    memset(dst, 0, (size_t)3 * w * h);
    warp_image(view_hwc(hwc, w, h), mat3_affine(1, 0, 0, 0, 1, 0), NULL, dst, w, h);
    CHECK(memcmp(src, dst, (size_t)3 * w * h) == 0, "HWC in, CHW out: channels or pixels moved");
    warp_image(view_chw(src, w, h), mat3_affine(-1, 0, w, 0, 1, 0), NULL, dst, w, h);   /* mirror */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) CHECK(dst[y * w + x] == src[y * w + w - 1 - x], "mirror at (%d, %d)", x, y);
    warp_image(view_chw(src, w, h), mat3_affine(1, 0, 0.5, 0, 1, 0), NULL, dst, w, h);   /* half a pixel: the mean */
    CHECK(abs(dst[0] - (src[0] + src[1] + 1) / 2) <= 1, "half-pixel shift gives %d from %d and %d", dst[0], src[0], src[1]);
    float grey[12] = { 0.299f, 0.587f, 0.114f, 0, 0.299f, 0.587f, 0.114f, 0, 0.299f, 0.587f, 0.114f, 0 };
    warp_image(view_chw(src, w, h), mat3_affine(1, 0, 0, 0, 1, 0), grey, dst, w, h);
    float g = 0.299f * src[0] + 0.587f * src[w * h] + 0.114f * src[2 * w * h];
    CHECK(abs(dst[0] - (int)(g + 0.5f)) <= 0 && dst[0] == dst[w * h] && dst[0] == dst[2 * w * h], "colour map to grey");
    free(src); free(dst); free(hwc);
}

/* PIL's resizes of the pattern tools/make_resize_fixture.py draws, bit for bit */
TEST(resize_matches_pil_bit_for_bit) {
    enum { W = 61, H = 47 };
    static uint8_t img[H * W * 3], out[3 * 80 * 80];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) img[(y * W + x) * 3 + c] = (uint8_t)((x * 7 + y * 13 + c * 50 + (x * y) % 17) % 256);
    SafeTensors st;
    CHECK(st_open("tests/fixtures/resize.safetensors", &st) == 0, "%s", ft_last_error());
    const struct { const char *name; int size; float box[4]; } cases[] = {
        { "whole_down", 24, { 0, 0, W, H } }, { "box_down", 24, { 3.5f, 2.25f, 40, 30.5f } },
        { "whole_up", 80, { 0, 0, W, H } }, { "box_int", 16, { 10, 5, 20, 15 } } };
    for (int i = 0; i < 4; i++) {
        int s = cases[i].size;
        Tensor *want = ft_tensor_new(FT_I32, SHAPE(3, s, s), FT_CPU);
        const StEntry *e = st_find(&st, cases[i].name);
        CHECK(e && st_read_into(&st, e, want) == 0, "fixture %s: %s", cases[i].name, e ? ft_last_error() : "missing");
        resize_bilinear_pil(view_hwc(img, W, H), cases[i].box, out, s);
        int diff = 0, first = -1;
        for (int k = 0; k < 3 * s * s; k++)
            if (out[k] != ft_i32(want)[k]) { diff++; if (first < 0) first = k; }
        CHECK(diff == 0, "%s: %d of %d values differ from PIL (first at %d: %d, PIL %d)", cases[i].name, diff, 3 * s * s,
              first, first >= 0 ? out[first] : 0, first >= 0 ? ft_i32(want)[first] : 0);
        ft_tensor_free(want);
    }
    st_close(&st);
}

TEST(projective_map_through_four_points) {
    double from[8] = { 0, 0, 10, 0, 10, 8, 0, 8 }, to[8] = { -1, 0.5, 11, -2, 9, 9, 0.3, 7 };
    Mat3 H;
    CHECK(mat3_from_points(from, to, &H), "a proper quadrilateral is solvable");
    for (int k = 0; k < 4; k++) {
        const double *m = H.m, x = from[2 * k], y = from[2 * k + 1];
        double w = m[6] * x + m[7] * y + m[8];
        CHECK_NEAR((m[0] * x + m[1] * y + m[2]) / w, to[2 * k], 1e-9);
        CHECK_NEAR((m[3] * x + m[4] * y + m[5]) / w, to[2 * k + 1], 1e-9);
    }
    double line[8] = { 0, 0, 1, 1, 2, 2, 3, 3 };
    CHECK(!mat3_from_points(line, to, &H), "four points on a line have no projective map");
}

TEST(augmentation_is_deterministic_and_offline_copies_stay_in_the_region) {
    int s = 48;
    uint8_t *src = pattern(s, s, 7), *a = malloc((size_t)3 * 32 * 32), *b = malloc((size_t)3 * 32 * 32);
    Rng r1 = { 5, 1 << 16 }, r2 = { 5, 1 << 16 }, r3 = { 5, 2 << 16 };
    augment_image(&augment_online, &r1, view_chw(src, s, s), a, 32);
    augment_image(&augment_online, &r2, view_chw(src, s, s), b, 32);
    CHECK(memcmp(a, b, (size_t)3 * 32 * 32) == 0, "the same stream gave two different images");
    augment_image(&augment_online, &r3, view_chw(src, s, s), b, 32);
    CHECK(memcmp(a, b, (size_t)3 * 32 * 32) != 0, "two streams gave the same image");
    /* a bright region framed by black: no copy may show the frame */
    memset(src, 0, (size_t)3 * s * s);
    for (int c = 0; c < 3; c++)
        for (int y = 8; y < 40; y++) memset(src + (size_t)c * s * s + y * s + 8, 200, 32);
    int dark = 0;
    for (int k = 0; k < 50; k++) {
        Rng r = { 9, (uint64_t)k << 16 };
        float region[4] = { 8, 8, 32, 32 };
        augment_offline(k % 30, &r, view_chw(src, s, s), region, a, 32);
        for (int i = 0; i < 3 * 32 * 32; i++) dark += a[i] < 100;
    }
    CHECK(dark == 0, "%d pixels of 50 offline copies show the black frame around the region", dark);
    free(src); free(a); free(b);
}

/* 10 labelled 3x8x8 images, image i filled with i */
static void tiny(Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->images = ft_tensor_new(FT_U8, SHAPE(10, 3, 8, 8), FT_CPU);
    ds->labels = ft_tensor_new(FT_I32, SHAPE(10), FT_CPU);
    for (int i = 0; i < 10; i++) {
        memset(ft_u8(ds->images) + i * 192, i, 192);
        ft_i32(ds->labels)[i] = i % 3;
    }
    ds->num_classes = 3;
}

/* every batch of `epoch` concatenated: indices, labels and pixels */
static int epoch_bytes(Loader *L, int epoch, uint8_t *pix, int32_t *idx, int *sizes) {
    int nb = loader_epoch(L, epoch), at = 0;
    for (Batch *b; (b = loader_next(L)); ) {
        memcpy(pix + (size_t)at * b->images->numel / b->n, ft_u8(b->images), (size_t)b->images->numel);
        memcpy(idx + at, b->index, (size_t)b->n * sizeof *idx);
        sizes[b->number] = b->n;
        at += b->n;
        loader_release(L, b);
    }
    return nb;
}

TEST(loader_order_is_the_same_with_any_thread_count) {
    Dataset ds;
    tiny(&ds);
    static uint8_t p0[10 * 3 * 16 * 16], p3[10 * 3 * 16 * 16];
    int32_t i0[10], i3[10];
    int s0[4] = { 0 }, s3[4] = { 0 };
    LoaderConfig c = { .batch = 4, .seed = 3, .shuffle = true, .augment = &augment_online, .size = 16 };
    Loader *a = loader_new(&ds, &c);
    c.workers = 3;
    Loader *b = loader_new(&ds, &c);
    for (int e = 0; e < 2; e++) {
        int na = epoch_bytes(a, e, p0, i0, s0), nb = epoch_bytes(b, e, p3, i3, s3);
        CHECK(na == 3 && nb == 3 && s0[2] == 2 && s3[2] == 2, "10 samples in batches of 4, last kept: %d and %d batches", na, nb);
        CHECK(memcmp(i0, i3, sizeof i0) == 0 && memcmp(p0, p3, sizeof p0) == 0, "epoch %d: 0 and 3 workers differ", e);
        int seen = 0;
        for (int i = 0; i < 10; i++) seen |= 1 << i0[i];
        CHECK(seen == 0x3ff, "an epoch is a permutation of the samples");
    }
    int32_t again[10];
    epoch_bytes(a, 0, p3, again, s3);
    CHECK(memcmp(i0, again, sizeof i0) != 0, "epochs 0 and 1 came in the same order");   /* i0 holds epoch 1 */
    epoch_bytes(a, 1, p3, again, s3);
    CHECK(memcmp(i0, again, sizeof i0) == 0 && memcmp(p0, p3, sizeof p0) == 0, "epoch 1 replayed differently");
    loader_free(a);
    loader_free(b);
    LoaderConfig plain = { .batch = 4, .drop_last = true, .limit = 9, .workers = 2, .pinned = true };   /* plain memory without a GPU */
    Loader *d = loader_new(&ds, &plain);
    CHECK(epoch_bytes(d, 0, p0, i0, s0) == 2, "9 samples, batches of 4, last dropped: 2 batches");
    for (int i = 0; i < 8; i++) CHECK(i0[i] == i && p0[i * 192] == i, "unshuffled sample %d is %d", i, i0[i]);
    loader_epoch(d, 1);
    Batch *first = loader_next(d);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(4, 3, 8, 8), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(4), FT_CPU);
    batch_to_device(first, x, y);
    CHECK(ft_f32(x)[192] == 1.0f / 255 && ft_i32(y)[2] == 2, "batch_to_device scales pixels to [0, 1] and keeps labels");
    loader_release(d, first);
    loader_free(d);
    ft_tensor_free(x); ft_tensor_free(y);
    dataset_free(&ds);
}
