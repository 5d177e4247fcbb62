#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "explain.h"
#include "core/fileio.h"
#include "data/image.h"

static int write_json(const RunDir *r, const Explanation *e, const char *out) {
    char name[128], path[1200];
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "run", r->dir);
    cJSON_AddStringToObject(doc, "model", r->model->arch);
    cJSON_AddStringToObject(doc, "image", e->source);
    if (e->label >= 0) cJSON_AddNumberToObject(doc, "label", e->label);
    cJSON_AddNumberToObject(doc, "predicted", e->pred);
    cJSON_AddStringToObject(doc, "predicted_name", run_dir_class_name(r, e->pred, name, sizeof name));
    cJSON *probs = cJSON_AddArrayToObject(doc, "probabilities");
    for (int k = 0; k < r->model->num_classes; k++) cJSON_AddItemToArray(probs, cJSON_CreateNumber(e->probs[k]));
    if (e->attention) cJSON_AddStringToObject(doc, "attention_picture", "attention.png");
    cJSON *list = cJSON_AddArrayToObject(doc, e->by_class ? "classes" : "prototypes");
    for (int i = 0; i < e->n_rows; i++) {
        const ExplainRow *w = &e->rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(list, o);
        cJSON_AddNumberToObject(o, "rank", i + 1);
        if (!e->by_class) cJSON_AddNumberToObject(o, "prototype", w->prototype);
        cJSON_AddNumberToObject(o, "class", w->cls);
        if (e->by_class) {
            cJSON_AddStringToObject(o, "class_name", run_dir_class_name(r, w->cls, name, sizeof name));
            cJSON_AddNumberToObject(o, "logit", w->score);
            cJSON_AddNumberToObject(o, "probability", e->probs[w->cls]);
            cJSON_AddNumberToObject(o, "map_peak", w->peak);
        } else {
            cJSON_AddNumberToObject(o, "similarity", w->score);
            cJSON_AddNumberToObject(o, "weight_to_predicted", w->weight_pred);
            cJSON_AddNumberToObject(o, "contribution_to_predicted", w->score * w->weight_pred);
            cJSON_AddNumberToObject(o, "weight_to_own_class", w->weight_own);
        }
        cJSON_AddItemToObject(o, "cell", cJSON_CreateIntArray((int[]){ w->h, w->w }, 2));
        cJSON_AddItemToObject(o, "receptive_field_box", cJSON_CreateIntArray(w->rf_box, 4));
        cJSON_AddItemToObject(o, "activation_box_95", cJSON_CreateIntArray(w->act_box, 4));
        if (!e->by_class)
            cJSON_AddItemToObject(o, "source", cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r->protos, "prototypes"),
                                                                                  w->prototype), true));
    }
    snprintf(path, sizeof path, "%s/explain.json", out);
    int rc = write_json_atomic(path, doc);
    cJSON_Delete(doc);
    return rc;
}

/* HTML text with &, < and > escaped */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else fputc(*s, f);
    }
}

/* <img> of out/file drawn within a box x box square at the picture's own aspect ratio: magnified
 * by a whole factor when it is smaller (sharp pixels), shrunk when it is larger. A picture that
 * cannot be read is drawn at the box's width and the browser's own height. */
static void image_tag(FILE *f, const char *out, const char *file, const char *alt, int box) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", out, file);
    Image im;
    if (png_read(path, &im) != 0) { fprintf(f, "<img src=\"%s\" alt=\"%s\" width=\"%d\">", file, alt, box); return; }
    int w = im.width, h = im.height, big = w > h ? w : h;
    image_free(&im);
    double scale = big <= box ? (double)(box / big) : (double)box / big;
    int dw = (int)(w * scale + 0.5), dh = (int)(h * scale + 0.5);
    fprintf(f, "<img src=\"%s\" alt=\"%s\" width=\"%d\" height=\"%d\">", file, alt, dw > 0 ? dw : 1, dh > 0 ? dh : 1);
}

static int write_html(const RunDir *r, const Explanation *e, const char *out) {
    char path[1200], name[128], file[64];
    snprintf(path, sizeof path, "%s/explain.html", out);
    AtomicFile a;
    if (atomic_open(&a, path) != 0) return -1;
    FILE *f = a.f;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>finch explain</title><style>\n"
          "body{font-family:sans-serif;margin:2em} td,th{padding:4px 8px;text-align:center;border-bottom:1px solid #ddd}\n"
          "img{image-rendering:pixelated;vertical-align:middle} .num{font-family:monospace}\n"
          "</style></head><body>\n<h1>Why ", f);
    put_escaped(f, e->source);
    fputs(" is ", f);
    put_escaped(f, run_dir_class_name(r, e->pred, name, sizeof name));
    fputs("</h1>\n<p>", f);
    image_tag(f, out, "image.png", "input", 224);
    fprintf(f, "</p>\n<p>Model <b>%s</b> (run <code>", r->model->arch);
    put_escaped(f, r->dir);
    fprintf(f, "</code>): predicted class %d, ", e->pred);
    put_escaped(f, name);
    fprintf(f, ", probability %.4f", e->probs[e->pred]);
    if (e->label >= 0) {
        fprintf(f, "; true class %d, ", e->label);
        put_escaped(f, run_dir_class_name(r, e->label, name, sizeof name));
        fputs(e->label == e->pred ? " (right)" : " (wrong)", f);
    }
    fputs(".</p>\n", f);
    if (e->attention) {
        fputs("<p>", f);
        image_tag(f, out, "attention.png", "attention", 224);
        fputs(" Spatial attention a(h, w): at each cell the largest class map, max_k relu(A[k]), divided by its peak "
              "over the cells (0.5 image + 0.3 jet).</p>\n", f);
    }
    if (e->by_class)
        fputs("<p>Each row: a class, highest logit first. The attention network's logit for class k is the mean of its map "
              "A[k] = class-agnostic map &times; class-specific map k over the cells. <i>Where</i>: the image with the map's "
              "largest cell (receptive field, yellow) and the box around the 95th percentile of the upsampled map (red); "
              "<i>heatmap</i>: 0.5 image + 0.3 jet of that map; <i>this patch</i>: the red box cut out.</p>\n<table>\n"
              "<tr><th>rank</th><th>class</th><th>logit (map mean)</th><th>probability</th><th>map peak</th><th>where</th>"
              "<th>heatmap</th><th>this patch</th></tr>\n", f);
    else
        fputs("<p>Each row: a prototype, most similar first. <i>Where</i>: the image with the prototype's most activated "
              "cell (receptive field, yellow) and the box around the 95th percentile of its upsampled similarity map (red); "
              "<i>heatmap</i>: 0.5 image + 0.3 jet of that map; <i>this patch</i>: the red box cut out; <i>looks like</i>: the "
              "training patch the prototype was pushed onto, and its own heatmap there. Contribution = similarity &times; the "
              "last-layer weight to the predicted class.</p>\n<table>\n<tr><th>rank</th><th>prototype</th><th>its class</th>"
              "<th>similarity</th><th>weight to the predicted class</th><th>contribution</th><th>where</th><th>heatmap</th>"
              "<th>this patch</th><th>looks like</th><th>there</th></tr>\n", f);
    for (int i = 0; i < e->n_rows; i++) {
        const ExplainRow *w = &e->rows[i];
        fprintf(f, "<tr><td>%d</td>", i + 1);
        if (!e->by_class) fprintf(f, "<td>%d</td>", w->prototype);
        fputs("<td>", f);
        put_escaped(f, run_dir_class_name(r, w->cls, name, sizeof name));
        if (e->by_class)
            fprintf(f, "</td><td class=\"num\">%.4f</td><td class=\"num\">%.4f</td><td class=\"num\">%.4f</td>", w->score,
                    e->probs[w->cls], w->peak);
        else
            fprintf(f, "</td><td class=\"num\">%.4f</td><td class=\"num\">%.4f</td><td class=\"num\">%.4f</td>", w->score,
                    w->weight_pred, w->score * w->weight_pred);
        const char *kinds[] = { "box", "heat", "patch", "prototype-patch", "prototype-heat" };
        for (int k = 0; k < (e->by_class ? 3 : 5); k++) {
            snprintf(file, sizeof file, "rank-%d-%s.png", i + 1, kinds[k]);
            fputs("<td>", f);
            image_tag(f, out, file, kinds[k], 112);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
    return atomic_close(&a, !ferror(f));
}

int explain_write(const RunDir *r, const Explanation *e, const char *out) {
    return write_json(r, e, out) == 0 && write_html(r, e, out) == 0 ? 0 : -1;
}

void explain_print(const RunDir *r, const Explanation *e, const char *out) {
    char name[128];
    printf("%s: %s (class %d, p = %.4f)", e->source, run_dir_class_name(r, e->pred, name, sizeof name), e->pred, e->probs[e->pred]);
    if (e->label >= 0) printf("; true class %s (%d)", run_dir_class_name(r, e->label, name, sizeof name), e->label);
    if (e->by_class) printf("\n  rank  class                    logit  probability  map peak\n");
    else printf("\n  rank  prototype  its class            similarity    weight  contribution\n");
    for (int i = 0; i < e->n_rows; i++) {
        const ExplainRow *w = &e->rows[i];
        if (e->by_class)
            printf("  %4d  %-18.18s  %10.4f  %11.4f  %8.4f\n", i + 1, run_dir_class_name(r, w->cls, name, sizeof name), w->score,
                   e->probs[w->cls], w->peak);
        else
            printf("  %4d  %9d  %-18.18s  %10.4f  %8.4f  %12.4f\n", i + 1, w->prototype, run_dir_class_name(r, w->cls, name, sizeof name),
                   w->score, w->weight_pred, w->score * w->weight_pred);
    }
    printf("wrote %s/explain.html, explain.json and the pictures\n", out);
}
