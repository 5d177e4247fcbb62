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

/* The trunk's feature map, in the wrapper's mode. */
static Tensor *features(Model *m, Tape *tp, Tensor *x) {
    ProtoNet *p = (ProtoNet *)m;
    p->trunk->training = m->training;
    p->trunk->dropout_off = m->dropout_off;
    return p->trunk->trunk(p->trunk, tp, x);
}

Tensor *protonet_latent(ProtoNet *p, Tape *tp, Tensor *x) { return addon_forward(tp, &p->add_on, features(&p->base, tp, x)); }

Tensor *protonet_forward(ProtoNet *p, Tape *tp, Tensor *x, ProtoOut *o) {
    Model *m = &p->base;
    memset(o, 0, sizeof *o);
    Tensor *f = features(m, tp, x);
    if (p->has_attention)
        o->att_logits = attention_forward(tp, &p->att, ft_relu(tp, f), m->training && !m->dropout_off, &m->rng,
                                          p->kind == PROTO_FR ? &o->attention : NULL);
    if (!p->has_prototypes) return o->logits = o->att_logits;
    o->latent = addon_forward(tp, &p->add_on, f);
    o->dist = proto_distances(tp, o->latent, p->prototypes);
    Tensor *pooled;
    if (p->kind == PROTO_PPNET) {   /* max of the similarity = similarity of the smallest distance */
        o->min_dist = ft_min(tp, o->dist, FT_DIM(2) | FT_DIM(3), false, NULL);
        pooled = proto_log_similarity(tp, o->min_dist);
    } else {                        /* background locations cannot vote */
        o->sim = ft_mul(tp, proto_log_similarity(tp, o->dist), o->attention);
        pooled = ft_max(tp, o->sim, FT_DIM(2) | FT_DIM(3), false, NULL);
    }
    return o->logits = linear_forward(tp, &p->last, pooled);
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    ProtoOut o;
    return protonet_forward((ProtoNet *)m, tp, x, &o);
}

/* Ours-FR is attacked (and classified) through both heads: CE(FR logits) + CE(attention logits). */
static Tensor *fr_loss(Model *m, Tape *tp, Tensor *x, Tensor *y, Tensor **logits) {
    ProtoOut o;
    protonet_forward((ProtoNet *)m, tp, x, &o);
    if (logits) *logits = o.logits;
    return ft_add(tp, ft_cross_entropy(tp, o.logits, y), ft_cross_entropy(tp, o.att_logits, y));
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
    model_setup(m, p->arch, trunk->in_channels, trunk->height, trunk->width, (float[3]){ 0 }, (float[3]){ 1, 1, 1 }, cfg);
    ft_copy_(m->mean, trunk->mean);
    ft_copy_(m->std, trunk->std);
    m->min_size = trunk->min_size;
    m->trunk_channels = trunk->trunk_channels;
    memcpy(m->rf_layers, trunk->rf_layers, sizeof m->rf_layers);
    m->n_rf_layers = trunk->n_rf_layers;
    m->forward = forward;
    m->trunk = features;
    m->loss = kind == PROTO_FR ? fr_loss : NULL;
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
        int M = p->n_protos = K * p->per_class;
        p->add_on = addon_make(ps, "add_on_layers", C, p->depth);
        p->prototypes = params_add(ps, "", "prototype_vectors", SHAPE(M, p->depth, 1, 1));
        p->last = linear_make(ps, "last_layer", M, K, false);
        p->cls = ft_xmalloc((size_t)M * sizeof *p->cls);
        for (int j = 0; j < M; j++) p->cls[j] = j / p->per_class;
        addon_init(&p->add_on, &rng);
        init_uniform(p->prototypes, 0, 1, &rng);
        last_layer_init(p->last.weight, p->cls);
        p->off_class = ft_tensor_new(cfg->dtype, SHAPE(K, M), cfg->device);
        last_layer_off_class_mask(p->off_class, p->cls);
    }
    if (p->has_attention) {
        p->att = attention_make(ps, "attention", C, K);
        attention_init(&p->att, &rng);
    }
    params_finalize(ps);
    return m;
}
