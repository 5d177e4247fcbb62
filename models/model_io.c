/* Saving and loading a model's parameters and buffers as safetensors, under their names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model_io.h"
#include "core/safetensors.h"
#include "protonet.h"

/* Every parameter and buffer under its name, with the given metadata. */
static int write_tensors(Model *m, const char *path, int n_meta, const char *const *keys, const char *const *vals) {
    ParamSet *ps = &m->params;
    const char **names = ft_xmalloc((size_t)ps->n * sizeof *names);
    Tensor **ts = ft_xmalloc((size_t)ps->n * sizeof *ts);
    for (int i = 0; i < ps->n; i++) { names[i] = ps->items[i].name; ts[i] = ps->items[i].t; }
    int rc = st_write(path, ps->n, names, ts, n_meta, keys, vals);
    free(names);
    free(ts);
    return rc;
}

/* "1,2,M,4": ints, 0 written as M when pools */
static void join_ints(char *buf, size_t n, const int *v, int count, bool pools) {
    buf[0] = 0;
    for (int i = 0; i < count; i++) {
        size_t k = strlen(buf);
        if (pools && v[i] == 0) snprintf(buf + k, n - k, "%sM", i ? "," : "");
        else snprintf(buf + k, n - k, "%s%d", i ? "," : "", v[i]);
    }
}

int model_save(Model *m, const ModelConfig *cfg, const char *path) {
    char classes[16], width[16], blocks[64], stem[16], vgg[256], per_class[16], depth[16], feat[16];
    snprintf(classes, sizeof classes, "%d", m->num_classes);
    snprintf(width, sizeof width, "%d", cfg->width);
    const char *keys[12] = { "format", "arch", "num_classes", "width" };
    const char *vals[12] = { "finch", m->arch, classes, width };
    int n = 4;
    if (cfg->prototypes_per_class) {
        snprintf(per_class, sizeof per_class, "%d", cfg->prototypes_per_class);
        keys[n] = "prototypes_per_class"; vals[n++] = per_class;
    }
    if (cfg->proto_depth) { snprintf(depth, sizeof depth, "%d", cfg->proto_depth); keys[n] = "proto_depth"; vals[n++] = depth; }
    if (cfg->blocks[0]) { join_ints(blocks, sizeof blocks, cfg->blocks, 4, false); keys[n] = "blocks"; vals[n++] = blocks; }
    if (cfg->stem) { snprintf(stem, sizeof stem, "%d", cfg->stem); keys[n] = "stem"; vals[n++] = stem; }
    if (cfg->feature_dim) { snprintf(feat, sizeof feat, "%d", cfg->feature_dim); keys[n] = "feature_dim"; vals[n++] = feat; }
    if (cfg->n_vgg_cfg) { join_ints(vgg, sizeof vgg, cfg->vgg_cfg, cfg->n_vgg_cfg, true); keys[n] = "vgg_cfg"; vals[n++] = vgg; }
    char *proto_classes = protonet_classes_string(protonet_of(m));
    if (proto_classes) { keys[n] = "prototype_classes"; vals[n++] = proto_classes; }
    int rc = write_tensors(m, path, n, keys, vals);
    free(proto_classes);
    return rc;
}

int model_export(Model *m, const char *path) {
    const char *keys[] = { "format", "arch" }, *vals[] = { "pt", m->arch };
    return write_tensors(m, path, 2, keys, vals);
}

static void note(LoadReport *r, const char *what, const char *name) {
    if (!r->first_problem[0]) snprintf(r->first_problem, sizeof r->first_problem, "%s %s", what, name);
}

int model_load_weights(Model *m, const char *path, bool strict, LoadReport *report) {
    SafeTensors st;
    if (st_open(path, &st) != 0) return -1;
    LoadReport r = { 0 };
    ParamSet *ps = &m->params;
    int rc = 0;
    for (int i = 0; rc == 0 && i < ps->n; i++) {
        const Param *p = &ps->items[i];
        const StEntry *e = st_find(&st, p->name);
        if (!e && !strict && strncmp(p->name, "features.", 9) == 0) e = st_find(&st, p->name + 9);   /* a trunk's weights */
        if (!e) {
            r.missing++;
            note(&r, "missing", p->name);
            if (strict) rc = ft_error("%s: missing tensor '%s' of %s", path, p->name, m->arch);
        } else if (!ft_shape_eq(e->shape, p->t->shape)) {
            r.misshaped++;
            note(&r, "mis-shaped", p->name);
            if (strict)
                rc = ft_error("%s: tensor '%s' has shape %s, %s expects %s", path, e->name, FT_SHAPE_STR(e->shape),
                              m->arch, FT_SHAPE_STR(p->t->shape));
        } else if ((rc = st_read_into(&st, e, p->t)) == 0) {
            r.loaded++;
        }
    }
    for (int i = 0; rc == 0 && i < st.n; i++) {   /* torchvision's BN step counters are not kept */
        const char *name = st.entries[i].name;
        char wrapped[160];
        snprintf(wrapped, sizeof wrapped, "features.%s", name);
        if (params_find(ps, name) || (!strict && params_find(ps, wrapped)) || strstr(name, ".num_batches_tracked")) continue;
        r.unexpected++;
        note(&r, "unexpected", st.entries[i].name);
        if (strict) rc = ft_error("%s: unexpected tensor '%s' (not a parameter of %s)", path, st.entries[i].name, m->arch);
    }
    st_close(&st);
    if (report) *report = r;
    return rc;
}

/* An optional list in the metadata: absent is fine; present, it needs min..max valid entries. */
static bool meta_ints(const char *path, const char *key, const char *value, int *out, int min, int max, bool pools) {
    if (!value) return true;
    int n = model_parse_ints(key, value, out, max, pools);
    if (n >= min) return true;
    char why[256];
    snprintf(why, sizeof why, "%s", n < 0 ? ft_last_error() : "too few entries");
    ft_error("%s: metadata %s: %s", path, key, why);
    return false;
}

Model *model_load(const char *path, Device dev, ModelConfig *cfg_out) {
    SafeTensors st;
    if (st_open(path, &st) != 0) return NULL;
    const char *arch = st_meta(&st, "arch"), *k = st_meta(&st, "num_classes"), *w = st_meta(&st, "width");
    if (!arch || !k) {
        ft_error("%s: no 'arch' and 'num_classes' metadata: not a model written by finch", path);
        st_close(&st);
        return NULL;
    }
    char *end_k, *end_w = "";
    long classes = strtol(k, &end_k, 10), width = w ? strtol(w, &end_w, 10) : 0;
    if (*end_k || classes < 1 || classes > 100000 || *end_w || width < 0 || width > 4096) {
        ft_error("%s: metadata num_classes '%s' / width '%s' (expected 1..100000 and 0..4096)", path, k, w ? w : "");
        st_close(&st);
        return NULL;
    }
    /* no tensor is allocated past what the file holds: metadata that describes a far larger model
     * (resnet152 at width 4096 in a 150-byte file) is refused without building it */
    int64_t held = 0;
    for (int i = 0; i < st.n; i++) held += ft_shape_numel(st.entries[i].shape);
    ModelConfig cfg = { .num_classes = (int)classes, .width = (int)width, .seed = 0, .device = dev, .param_budget = held > 0 ? held : 1 };
    const char *blocks = st_meta(&st, "blocks"), *stem = st_meta(&st, "stem"), *vgg = st_meta(&st, "vgg_cfg");
    if (!meta_ints(path, "blocks", blocks, cfg.blocks, 4, 4, false) || !meta_ints(path, "stem", stem, &cfg.stem, 1, 1, false) ||
        !meta_ints(path, "vgg_cfg", vgg, cfg.vgg_cfg, 1, MODEL_MAX_VGG_CFG, true) ||
        !meta_ints(path, "prototypes_per_class", st_meta(&st, "prototypes_per_class"), &cfg.prototypes_per_class, 1, 1, false) ||
        !meta_ints(path, "proto_depth", st_meta(&st, "proto_depth"), &cfg.proto_depth, 1, 1, false) ||
        !meta_ints(path, "feature_dim", st_meta(&st, "feature_dim"), &cfg.feature_dim, 1, 1, false)) {
        st_close(&st);
        return NULL;
    }
    if (vgg) cfg.n_vgg_cfg = model_parse_ints("vgg_cfg", vgg, cfg.vgg_cfg, MODEL_MAX_VGG_CFG, true);
    int *proto_classes = NULL;
    const char *pc = st_meta(&st, "prototype_classes");
    if (pc) {   /* a pruned prototype network */
        if (!(proto_classes = protonet_classes_parse(pc, &cfg.n_prototypes))) {
            ft_error("%s: metadata prototype_classes: %s", path, ft_last_error());
            st_close(&st);
            return NULL;
        }
        cfg.prototype_classes = proto_classes;
    }
    char arch_copy[64];
    snprintf(arch_copy, sizeof arch_copy, "%s", arch);
    st_close(&st);
    Model *m = model_create(arch_copy, &cfg);
    free(proto_classes);
    cfg.prototype_classes = NULL;   /* the model keeps its own copy (protonet_of(m)->cls) */
    if (!m) { ft_error("%s: %s", path, ft_last_error()); return NULL; }
    if (m->params.over_budget) {
        ft_error("%s: its metadata describes %s with %lld parameter and buffer values or more; the file holds %lld", path,
                 arch_copy, (long long)m->params.requested, (long long)held);
        model_free(m);
        return NULL;
    }
    cfg.param_budget = 0;
    if (model_load_weights(m, path, true, NULL) != 0) { model_free(m); return NULL; }
    if (cfg_out) *cfg_out = cfg;
    return m;
}
