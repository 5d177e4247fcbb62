/* Image files into uint8 CHW datasets on all cores, and the bookkeeping of source lists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "sources.h"
#include "image.h"

void sources_free(SourceList *s) {
    free(s->items);
    free(s->class_names);
    memset(s, 0, sizeof *s);
}

uint32_t sources_fingerprint(const SourceList *s) {
    uLong crc = crc32(0, (const Bytef *)s->kind, (uInt)strlen(s->kind));
    for (int i = 0; i < s->n; i++) {
        const ImageSource *it = &s->items[i];
        struct stat sb;
        int64_t st[3] = { 0, 0, 0 };
        if (stat(it->path, &sb) == 0) { st[0] = sb.st_size; st[1] = sb.st_mtim.tv_sec; st[2] = sb.st_mtim.tv_nsec; }
        int32_t meta[3] = { it->label, (int32_t)it->split, it->has_box };
        crc = crc32(crc, (const Bytef *)it->path, (uInt)strlen(it->path));
        crc = crc32(crc, (const Bytef *)meta, sizeof meta);
        crc = crc32(crc, (const Bytef *)it->box, sizeof it->box);
        crc = crc32(crc, (const Bytef *)st, sizeof st);
    }
    for (int c = 0; c < s->num_classes; c++) crc = crc32(crc, (const Bytef *)s->class_names[c], (uInt)strlen(s->class_names[c]));
    return (uint32_t)crc;
}

int sources_split(const SourceList *s, bool train, int *idx) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (s->items[i].split == (train ? SPLIT_TRAIN : SPLIT_TEST)) idx[n++] = i;
    return n;
}

/* The region of the image that becomes the output (x, y, w, h), or why there is none. */
static const char *region_of(const ImageSource *it, const Image *img, const DecodeOpts *o, float r[4]) {
    r[0] = 0; r[1] = 0; r[2] = (float)img->width; r[3] = (float)img->height;
    if (o->crop && it->has_box) {
        const float *b = it->box;
        if (b[0] + b[2] > img->width + 1 || b[1] + b[3] > img->height + 1) return "its bounding box lies outside the image";
        r[0] = b[0]; r[1] = b[1];
        r[2] = fminf(b[2], img->width - b[0]);
        r[3] = fminf(b[3], img->height - b[1]);
        if (r[2] < 1 || r[3] < 1) return "its bounding box lies outside the image";
    }
    if (o->keep_aspect) {
        float side = fminf(r[2], r[3]);
        r[0] += (r[2] - side) / 2; r[1] += (r[3] - side) / 2;
        r[2] = r[3] = side;
    }
    return NULL;
}

int decode_items(const SourceList *s, const int *idx, int n, const DecodeOpts *o, uint8_t *plain, uint8_t *aug, Progress *p) {
    size_t per = (size_t)3 * o->size * o->size;
    int failed = 0;
    char error[2048] = "";
    #pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < n; k++) {
        if (failed) continue;
        const ImageSource *it = &s->items[idx[k]];
        Image img = { 0 };
        float r[4];
        const char *why = image_read(it->path, &img) != 0 ? ft_last_error() : region_of(it, &img, o, r);
        if (!why) {
            ImageView v = view_hwc(img.rgb, img.width, img.height);
            resize_bilinear_pil(v, r, plain + k * per, o->size);
            for (int c = 0; c < o->copies; c++) {
                Rng rng = { o->seed * 0x9E3779B97F4A7C15ull + 1, ((uint64_t)idx[k] * (uint64_t)o->copies + (uint64_t)c) << 16 };
                augment_offline(c, &rng, v, r, aug + ((size_t)k * o->copies + c) * per, o->size);
            }
        }
        #pragma omp critical
        {
            if (why && !failed)
                snprintf(error, sizeof error, "%s (%dx%d)%s: %s", it->path, img.width, img.height,
                         o->crop && it->has_box ? " with its bounding box" : "", why);
            if (why) failed = 1;
            if (p) progress_update(p, 1, NULL);
        }
        image_free(&img);
    }
    return failed ? ft_error("%s", error) : 0;
}

static int decode_split(const SourceList *s, bool train, const DecodeOpts *o, Dataset *plain, Dataset *aug) {
    int *idx = ft_xmalloc((size_t)(s->n ? s->n : 1) * sizeof *idx), n = sources_split(s, train, idx);
    const char *split = train ? "train" : "test";
    if (n == 0) { free(idx); return ft_error("%s: no %s images", s->split_file[0] ? s->split_file : s->root, split); }
    int copies = train ? o->copies : 0;
    DecodeOpts oo = *o;
    oo.copies = copies;
    plain->images = ft_tensor_new(FT_U8, SHAPE(n, 3, o->size, o->size), FT_CPU);
    if (copies) aug->images = ft_tensor_new(FT_U8, SHAPE(n * copies, 3, o->size, o->size), FT_CPU);
    char label[64];
    snprintf(label, sizeof label, "decoding %s/%s", s->kind, split);
    Progress p;
    progress_start(&p, label, n, o->quiet);
    int rc = decode_items(s, idx, n, &oo, ft_u8(plain->images), copies ? ft_u8(aug->images) : NULL, &p);
    progress_finish(&p, NULL);
    plain->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int k = 0; k < n; k++) ft_i32(plain->labels)[k] = s->items[idx[k]].label;
    if (copies) {
        aug->labels = ft_tensor_new(FT_I32, SHAPE(n * copies), FT_CPU);
        for (int k = 0; k < n * copies; k++) ft_i32(aug->labels)[k] = s->items[idx[k / copies]].label;
    }
    Dataset *ds[2] = { plain, copies ? aug : NULL };
    for (int d = 0; d < 2 && ds[d]; d++) {
        ds[d]->num_classes = s->num_classes;
        snprintf(ds[d]->name, sizeof ds[d]->name, "%s/%s%s", s->kind, split, d ? "+augmented" : "");
        dataset_set_names(ds[d], (const char (*)[96])s->class_names);
    }
    free(idx);
    return rc;
}

int decode_splits(const SourceList *s, const DecodeOpts *o, Splits *out) {
    memset(out, 0, sizeof *out);
    int rc = decode_split(s, true, o, &out->train, &out->augmented);
    if (rc == 0) rc = decode_split(s, false, o, &out->test, &out->augmented);
    if (rc != 0) splits_free(out);
    return rc;
}

void splits_free(Splits *s) {
    dataset_free(&s->train);
    dataset_free(&s->augmented);
    dataset_free(&s->test);
}
