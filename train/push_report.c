/* What a push leaves for people: prototypes.json and two pictures per prototype. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "push.h"
#include "core/fileio.h"
#include "data/draw.h"
#include "data/image.h"

Tensor *proto_similarity_maps(Tape *tp, const ProtoOut *o) {
    return o->sim ? o->sim : proto_log_similarity(tp, o->dist);
}

void proto_upsample_map(Tape *tp, Tensor *sim, int n, int j, int H, int W, double *heat) {
    int M = sim->shape.d[1], h = sim->shape.d[2], w = sim->shape.d[3];
    Tensor *one = ft_slice_batch(tp, ft_reshape(tp, sim, SHAPE(sim->shape.d[0] * M, 1, h, w)), n * M + j, 1);
    Tensor *up = ft_upsample_bilinear(tp, one, H, W, false);
    float *f = ft_xmalloc((size_t)H * W * sizeof *f);
    ft_to_floats(up, f, (int64_t)H * W);
    for (int i = 0; i < H * W; i++) heat[i] = f[i];
    free(f);
}

void push_similarity_map(ProtoNet *p, Tensor *x, int j, double *heat) {
    Model *m = &p->base;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(m->params.device);
    ft_no_grad_begin(tp);
    ProtoOut o;
    protonet_forward(p, tp, x, &o);
    proto_upsample_map(tp, proto_similarity_maps(tp, &o), 0, j, x->shape.d[2], x->shape.d[3], heat);
    ft_tape_free(tp);
    m->training = was_training;
}

void proto_rf_box(const ReceptiveField *r, int size, int h, int w, int box[4]) {
    double ch = r->start + h * r->jump, cw = r->start + w * r->jump;
    box[0] = (int)fmax(cw - r->rf / 2, 0);
    box[1] = (int)fmax(ch - r->rf / 2, 0);
    box[2] = (int)fmin(cw + r->rf / 2, size) - 1;
    box[3] = (int)fmin(ch + r->rf / 2, size) - 1;
}

static cJSON *box_json(const int b[4]) { return cJSON_CreateIntArray(b, 4); }

/* The three pictures of prototype j; 0 or -1. */
static int draw_prototype(const char *dir, int j, const uint8_t *rgb, const double *heat, int S, const PushRecord *r) {
    uint8_t *pic = ft_xmalloc((size_t)S * S * 3);
    char path[1100];
    for (int i = 0; i < S * S * 3; i++) pic[i] = rgb[i];
    draw_box(pic, S, S, r->rf_box[0], r->rf_box[1], r->rf_box[2], r->rf_box[3], (uint8_t[3]){ 255, 255, 0 }, 1);
    draw_box(pic, S, S, r->act_box[0], r->act_box[1], r->act_box[2], r->act_box[3], (uint8_t[3]){ 255, 0, 0 }, 1);
    snprintf(path, sizeof path, "%s/prototype-%d.png", dir, j);
    int rc = png_write_rgb(path, pic, S, S);
    if (rc == 0) {
        draw_heat_overlay(rgb, heat, S, S, pic);
        snprintf(path, sizeof path, "%s/prototype-%d-heat.png", dir, j);
        rc = png_write_rgb(path, pic, S, S);
    }
    if (rc == 0) {   /* the part of the source image the prototype stands for */
        snprintf(path, sizeof path, "%s/prototype-%d-patch.png", dir, j);
        rc = draw_write_crop(path, rgb, S, S, r->act_box);
    }
    free(pic);
    return rc;
}

int push_report(ProtoNet *p, const Dataset *ds, PushRecord *rec, const char *dir) {
    if (make_dirs(dir) != 0) return -1;
    Model *m = &p->base;
    Shape s = ds->images->shape;
    int C = s.d[1], S = s.d[2];
    ReceptiveField rf = model_receptive_field(m, S);
    double *heat = ft_xmalloc((size_t)S * S * sizeof *heat);
    uint8_t *rgb = ft_xmalloc((size_t)S * S * 3);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1, C, S, S), m->params.device), *y = ft_tensor_new(FT_I32, SHAPE(1), m->params.device);
    cJSON *doc = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(doc, "prototypes");
    cJSON_AddStringToObject(doc, "model", m->arch);
    cJSON_AddNumberToObject(doc, "image_size", S);
    int rc = 0;
    for (int j = 0; j < p->n_protos && rc == 0; j++) {
        PushRecord *r = &rec[j];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(list, e);
        cJSON_AddNumberToObject(e, "prototype", j);
        cJSON_AddNumberToObject(e, "class", p->cls[j]);
        cJSON_AddNumberToObject(e, "image", r->image);
        if (r->image < 0) continue;
        dataset_batch(ds, &r->image, 1, x, y);
        push_similarity_map(p, x, j, heat);
        proto_rf_box(&rf, S, r->h, r->w, r->rf_box);
        draw_percentile_box(heat, S, S, 95, r->act_box);
        cJSON_AddItemToObject(e, "cell", cJSON_CreateIntArray((int[]){ r->h, r->w }, 2));
        cJSON_AddNumberToObject(e, "distance_before", r->dist);
        cJSON_AddItemToObject(e, "receptive_field_box", box_json(r->rf_box));
        cJSON_AddItemToObject(e, "activation_box_95", box_json(r->act_box));
        draw_chw_to_rgb(ft_u8(ds->images) + (size_t)r->image * C * S * S, C, S, S, rgb);
        rc = draw_prototype(dir, j, rgb, heat, S, r);
    }
    if (rc == 0) {
        char path[1100];
        snprintf(path, sizeof path, "%s/prototypes.json", dir);
        rc = write_json_atomic(path, doc);
    }
    cJSON_Delete(doc);
    ft_tensor_free(x); ft_tensor_free(y);
    free(heat); free(rgb);
    return rc;
}
