#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run_dir.h"
#include "core/fileio.h"
#include "models/model_io.h"

static cJSON *read_json(const char *cmd, const char *path) {
    char *text = read_file(path, NULL);
    if (!text) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return NULL; }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (!doc || !cJSON_IsObject(doc)) {
        fprintf(stderr, "finch %s: %s: not a JSON object (truncated or not written by finch?)\n", cmd, path);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static const char *option(const cJSON *doc, const char *name) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "options"), name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *run_dir_option(const RunDir *r, const char *name) { return option(r->doc, name); }

double run_dir_number(const RunDir *r, const char *name, double dflt) {
    const char *s = run_dir_option(r, name);
    return s ? atof(s) : dflt;
}

/* The data options recorded in a train.json (strings owned by doc). */
static DataOpts data_options(const cJSON *doc, const char *data_dir) {
    const char *data = option(doc, "data"), *size = option(doc, "image-size"), *full = option(doc, "full-image");
    int image_size = size ? atoi(size) : 0;
    return (DataOpts){ .data = data ? data : "fashion-mnist", .dir = data_dir, .image_size = image_size > 0 ? image_size : 0,
                       .full_image = full && strcmp(full, "false") != 0 && strcmp(full, "0") != 0, .resize = option(doc, "resize") };
}

int run_dir_data(const char *cmd, const char *dir, DataOpts *d, cJSON **doc) {
    char path[1100];
    snprintf(path, sizeof path, "%s/train.json", dir);
    if (!(*doc = read_json(cmd, path))) return 1;
    *d = data_options(*doc, d->dir);
    return 0;
}

const char *run_dir_class_name(const RunDir *r, int k, char *buf, size_t n) {
    cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r->doc, "class_names"), k);
    if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
    else snprintf(buf, n, "class %d", k);
    return buf;
}

/* The selected push's report, checked against the model. */
static int open_push(const char *cmd, RunDir *r) {
    cJSON *sel = cJSON_GetObjectItemCaseSensitive(r->doc, "selected");
    cJSON *push = cJSON_GetObjectItemCaseSensitive(sel, "push_dir");
    if (!cJSON_IsString(push)) {
        fprintf(stderr, "finch %s: %s/train.json names no push (\"selected\": {\"push_dir\"}); was it written by finch train "
                        "for a prototype network?\n", cmd, r->dir);
        return 1;
    }
    const char *name = push->valuestring;
    if (!name[0] || name[0] == '.' || strchr(name, '/')) {   /* explain and prune read and copy files from it */
        fprintf(stderr, "finch %s: %s/train.json: push_dir '%.100s' is not a directory name inside the run\n", cmd, r->dir, name);
        return 1;
    }
    snprintf(r->push_dir, sizeof r->push_dir, "%s/%s", r->dir, name);
    char path[1200];
    snprintf(path, sizeof path, "%s/prototypes.json", r->push_dir);
    if (!(r->protos = read_json(cmd, path))) return 1;
    cJSON *list = cJSON_GetObjectItemCaseSensitive(r->protos, "prototypes");
    int n = cJSON_GetArraySize(list);
    if (!cJSON_IsArray(list) || n != r->p->n_protos) {
        fprintf(stderr, "finch %s: %s lists %d prototypes, the model has %d\n", cmd, path, n, r->p->n_protos);
        return 1;
    }
    return 0;
}

int run_dir_open(const char *cmd, const char *dir, const char *data_dir, Device dev, bool attention_ok, RunDir *r) {
    memset(r, 0, sizeof *r);
    r->dir = dir;
    char path[1100];
    snprintf(path, sizeof path, "%s/train.json", dir);
    if (!(r->doc = read_json(cmd, path))) return 1;
    r->data = data_options(r->doc, data_dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!(r->model = model_load(path, dev, &r->cfg))) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return 1; }
    r->p = protonet_of(r->model);
    if (r->p && !r->p->has_prototypes && r->p->has_attention && attention_ok) return 0;
    if (!r->p || !r->p->has_prototypes) {
        fprintf(stderr, "finch %s: %s is a %s, not a network with prototypes (protopnet-* or ours-fr-*%s)\n", cmd, path,
                r->model->arch, attention_ok ? ") or with attention (ap-*" : "");
        return 2;
    }
    return open_push(cmd, r);
}

void run_dir_close(RunDir *r) {
    cJSON_Delete(r->doc);
    cJSON_Delete(r->protos);
    model_free(r->model);
    memset(r, 0, sizeof *r);
}
