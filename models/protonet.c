#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "protonet.h"

static const struct { const char *prefix; ProtoKind kind; } kinds[] = {
    { "protopnet-", PROTO_PPNET }, { "ap-", PROTO_AP }, { "ours-fr-", PROTO_FR },
};

bool protonet_parse_arch(const char *arch, ProtoKind *kind, const char **trunk) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(arch, kinds[i].prefix, n) != 0) continue;
        if (kind) *kind = kinds[i].kind;
        if (trunk) *trunk = arch + n;
        return true;
    }
    return false;
}

static void destroy(Model *m) {
    ProtoNet *p = (ProtoNet *)m;
    model_free(p->trunk);
    ft_tensor_free(p->off_class);
    free(p->cls);
    free(p);
}

ProtoNet *protonet_of(Model *m) { return m && m->destroy == destroy ? (ProtoNet *)m : NULL; }

/* The trunk's feature map, in the wrapper's mode; its layers tapped as features.<name>. */
static Tensor *features(Model *m, Tape *tp, Tensor *x) {
    ProtoNet *p = (ProtoNet *)m;
    p->trunk->training = m->training;
    p->trunk->dropout_off = m->dropout_off;
    p->trunk->bn_frozen = m->bn_frozen;
    p->trunk->taps = m->taps;
    if (m->taps) m->taps->prefix = "features.";
    Tensor *f = p->trunk->trunk(p->trunk, tp, x);
    if (m->taps) m->taps->prefix = NULL;
    p->trunk->taps = NULL;
    return model_tap(m, "features", f);
}

Tensor *protonet_latent(ProtoNet *p, Tape *tp, Tensor *x) { return addon_forward(tp, &p->add_on, features(&p->base, tp, x)); }

Tensor *protonet_forward(ProtoNet *p, Tape *tp, Tensor *x, ProtoOut *o) {
    Model *m = &p->base;
    memset(o, 0, sizeof *o);
    Tensor *f = features(m, tp, x);
    if (!f) return NULL;   /* a refused input: ft_last_error() says why */
    if (p->has_attention)
        o->att_logits = attention_forward(tp, &p->att, ft_relu(tp, f), m->training && !m->dropout_off, &m->rng, &o->att_maps,
                                          p->kind == PROTO_FR ? &o->attention : NULL);
    if (p->has_attention) {
        model_tap(m, "attention", o->att_logits);
        if (o->attention) model_tap(m, "attention_map", o->attention);
    }
    if (!p->has_prototypes) return o->logits = o->att_logits;
    o->latent = model_tap(m, "add_on_layers", addon_forward(tp, &p->add_on, f));
    o->dist = model_tap(m, "prototype_distances", proto_distances(tp, o->latent, p->prototypes));
    if (p->kind == PROTO_PPNET) {   /* max of the similarity = similarity of the smallest distance */
        o->min_dist = ft_min(tp, o->dist, FT_DIM(2) | FT_DIM(3), false, NULL);
        o->pooled = proto_log_similarity(tp, o->min_dist);
    } else {                        /* background locations cannot vote */
        o->sim = ft_mul(tp, proto_log_similarity(tp, o->dist), o->attention);
        o->pooled = ft_max(tp, o->sim, FT_DIM(2) | FT_DIM(3), false, NULL);
    }
    model_tap(m, "prototype_similarities", o->pooled);
    model_tap(m, "pooled", o->pooled);
    return o->logits = model_tap(m, "last_layer", linear_forward(tp, &p->last, o->pooled));
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    ProtoOut o;
    return protonet_forward((ProtoNet *)m, tp, x, &o);
}

/* Ours-FR is attacked through both heads (it classifies by the FR head). */
static int fr_heads(Model *m, Tape *tp, Tensor *x, Tensor *out[]) {
    ProtoOut o;
    protonet_forward((ProtoNet *)m, tp, x, &o);
    out[0] = o.logits;
    out[1] = o.att_logits;
    return 2;
}

/* Move the trunk's parameters into the wrapper's set, under "features.". */
static void adopt_trunk_params(ProtoNet *p) {
    ParamSet *ps = &p->trunk->params;
    for (int i = 0; i < ps->n; i++) {
        char name[PARAM_NAME_MAX];
        int k = snprintf(name, sizeof name, "features.%s", ps->items[i].name);
        FT_CHECK(k < PARAM_NAME_MAX, "parameter name features.%s is too long", ps->items[i].name);
        memcpy(ps->items[i].name, name, sizeof name);
    }
    params_free(&p->base.params);   /* empty: model_setup only initialised it */
    p->base.params = *ps;
    memset(ps, 0, sizeof *ps);
}

Model *protonet_create(const char *arch, const ModelConfig *cfg) {
    ProtoKind kind;
    const char *trunk_name;
    if (!protonet_parse_arch(arch, &kind, &trunk_name)) { ft_error("'%s' is not a prototype network", arch); return NULL; }
    if (protonet_parse_arch(trunk_name, NULL, NULL)) { ft_error("%s: a prototype network cannot be a trunk", arch); return NULL; }
    ModelConfig tc = *cfg;
    tc.trunk_only = true;
    Model *trunk = model_create(trunk_name, &tc);
    if (!trunk) return NULL;
    ProtoNet *p = ft_xcalloc(1, sizeof *p);
    Model *m = &p->base;
    snprintf(p->arch, sizeof p->arch, "%s", arch);
    p->kind = kind;
    p->trunk = trunk;
    model_setup(m, p->arch, trunk->in_channels, trunk->height, trunk->width, NULL, NULL, cfg);   /* the trunk's, below */
    ft_copy_(m->mean, trunk->mean);
    ft_copy_(m->std, trunk->std);
    m->norm_identity = trunk->norm_identity;
    m->min_size = trunk->min_size;
    m->trunk_channels = trunk->trunk_channels;
    memcpy(m->rf_layers, trunk->rf_layers, sizeof m->rf_layers);
    m->n_rf_layers = trunk->n_rf_layers;
    m->forward = forward;
    m->trunk = features;
    m->heads = kind == PROTO_FR ? fr_heads : NULL;
    m->destroy = destroy;
    adopt_trunk_params(p);

    int K = cfg->num_classes, C = trunk->trunk_channels;
    p->has_prototypes = kind != PROTO_AP;
    p->has_attention = kind != PROTO_PPNET;
    p->per_class = cfg->prototypes_per_class > 0 ? cfg->prototypes_per_class : 10;
    p->depth = cfg->proto_depth > 0 ? cfg->proto_depth : 128;
    Rng rng = rng_new(cfg->seed ^ 0x9e3779b97f4a7c15ull);
    ParamSet *ps = &m->params;
    if (p->has_prototypes) {
        int64_t M64 = cfg->prototype_classes ? cfg->n_prototypes : (int64_t)K * p->per_class;
        if (M64 < 1 || M64 > PROTONET_MAX_PROTOTYPES) {
            ft_error("%s: %lld prototypes, expected 1..%d", arch, (long long)M64, PROTONET_MAX_PROTOTYPES);
            model_free(m);
            return NULL;
        }
        int M = p->n_protos = (int)M64;
        p->cls = ft_xmalloc((size_t)M * sizeof *p->cls);
        for (int j = 0; j < M; j++) p->cls[j] = cfg->prototype_classes ? cfg->prototype_classes[j] : j / p->per_class;
        for (int j = 0; j < M; j++)
            if (p->cls[j] < 0 || p->cls[j] >= K) {
                ft_error("%s: prototype %d has class %d, expected 0..%d", arch, j, p->cls[j], K - 1);
                model_free(m);
                return NULL;
            }
        p->add_on = addon_make(ps, "add_on_layers", C, p->depth);
        p->prototypes = params_add(ps, "", "prototype_vectors", SHAPE(M, p->depth, 1, 1));
        p->last = linear_make(ps, "last_layer", M, K, false);
        addon_init(&p->add_on, &rng);
        init_uniform(p->prototypes, 0, 1, &rng);
        last_layer_init(p->last.weight, p->cls);
        p->off_class = ft_tensor_new(cfg->dtype, p->last.weight->shape, cfg->device);   /* [K, M] (empty past a budget) */
        last_layer_off_class_mask(p->off_class, p->cls);
    }
    if (p->has_attention) {
        p->att = attention_make(ps, "attention", C, K);
        attention_init(&p->att, &rng);
    }
    params_finalize(ps);
    return m;
}

char *protonet_classes_string(const ProtoNet *p) {
    if (!p || !p->has_prototypes) return NULL;
    bool layout = p->n_protos == p->base.num_classes * p->per_class;
    for (int j = 0; layout && j < p->n_protos; j++) layout = p->cls[j] == j / p->per_class;
    if (layout) return NULL;
    size_t n = (size_t)p->n_protos * 12 + 1, k = 0;
    char *s = ft_xmalloc(n);
    s[0] = 0;
    for (int j = 0; j < p->n_protos; j++) k += (size_t)snprintf(s + k, n - k, "%s%d", j ? "," : "", p->cls[j]);
    return s;
}

int *protonet_classes_parse(const char *s, int *n) {
    int max = 1;
    for (const char *c = s; *c; c++) max += *c == ',';
    int *cls = ft_xmalloc((size_t)max * sizeof *cls);
    *n = 0;
    for (const char *c = s; *c; ) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || v < 0 || v > 100000 || (*end && *end != ',')) {
            free(cls);
            ft_error("entry %d: expected class numbers (0..100000) separated by commas", *n + 1);
            return NULL;
        }
        cls[(*n)++] = (int)v;
        c = *end ? end + 1 : end;
    }
    if (*n == 0) { free(cls); ft_error("empty list"); return NULL; }
    return cls;
}

/* dst[i, :] = src[rows[i], :] for a row-major [R, C] tensor, or the same over columns. */
static void gather(Tensor *dst, Tensor *src, const int *pick, int n, bool columns) {
    int64_t total = src->numel, R = src->shape.d[0], C = total / R;
    float *a = ft_xmalloc((size_t)total * sizeof *a), *b = ft_xmalloc((size_t)dst->numel * sizeof *b);
    ft_to_floats(src, a, total);
    for (int64_t r = 0; r < (columns ? R : n); r++)
        for (int64_t c = 0; c < (columns ? n : C); c++)
            b[r * (columns ? n : C) + c] = columns ? a[r * C + pick[c]] : a[(int64_t)pick[r] * C + c];
    ft_from_floats(dst, b, dst->numel);
    free(a);
    free(b);
}

Model *protonet_select(ProtoNet *p, const bool *keep, const ModelConfig *cfg) {
    int *pick = ft_xmalloc((size_t)p->n_protos * sizeof *pick), *cls = ft_xmalloc((size_t)p->n_protos * sizeof *cls), n = 0;
    for (int j = 0; j < p->n_protos; j++)
        if (keep[j]) { cls[n] = p->cls[j]; pick[n++] = j; }
    ModelConfig c = *cfg;
    c.prototype_classes = cls;
    c.n_prototypes = n;
    c.device = p->base.params.device;
    c.dtype = p->base.params.dtype;
    Model *m = n ? model_create(p->arch, &c) : NULL;
    if (!n) ft_error("%s: every prototype would be removed", p->arch);
    ProtoNet *q = protonet_of(m);
    ParamSet *dst = m ? &m->params : NULL;
    for (int i = 0; q && i < dst->n; i++) {
        Param *d = &dst->items[i], *s = params_find(&p->base.params, d->name);
        if (d->t == q->prototypes) gather(d->t, p->prototypes, pick, n, false);
        else if (d->t == q->last.weight) gather(d->t, p->last.weight, pick, n, true);
        else ft_copy_(d->t, s->t);
    }
    free(pick);
    free(cls);
    return m;
}
