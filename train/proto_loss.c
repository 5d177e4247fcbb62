#include <stdlib.h>
#include "proto_loss.h"

ProtoCoefs proto_coefs_default(ProtoKind kind) {
    switch (kind) {
    case PROTO_PPNET: return (ProtoCoefs){ .clst = 0.8, .sep = -0.08, .l1 = 1e-4 };
    case PROTO_AP: return (ProtoCoefs){ 0 };
    case PROTO_FR: break;
    }
    return (ProtoCoefs){ .ce_att = 1, .clst_att = 100, .sep_att = -0.08, .l1 = 1e-4 };
}

Tensor *proto_class_penalty(Tape *tp, Tensor *d, const int *cls, const int32_t *labels, bool own) {
    int N = d->shape.d[0], M = d->shape.d[1];
    Shape s = d->shape;
    for (int i = 2; i < s.ndim; i++) s.d[i] = 1;
    float *h = ft_xmalloc((size_t)N * M * sizeof *h);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < M; j++) h[(int64_t)n * M + j] = (cls[j] == labels[n]) == own ? 0.0f : PROTO_OUTSIDE;
    Tensor *penalty = ft_new(tp, d->dtype, s);
    ft_from_floats(penalty, h, (int64_t)N * M);
    free(h);
    return penalty;
}

Tensor *proto_min_by_class(Tape *tp, Tensor *d, const int *cls, const int32_t *labels, bool own) {
    return ft_min(tp, ft_add(tp, d, proto_class_penalty(tp, d, cls, labels, own)), FT_DIM(1), false, NULL);
}

Tensor *proto_attention_weighted(Tape *tp, Tensor *a, Tensor *m) {
    Shape s = a->shape;
    s.ndim = 3;
    s.d[1] = a->shape.d[2];
    s.d[2] = a->shape.d[3];
    return ft_mean(tp, ft_mul(tp, ft_reshape(tp, a, s), m), FT_ALL_DIMS, false);
}

/* total += coef * term, noting the term's value */
static Tensor *add_term(Tape *tp, Tensor *total, double coef, Tensor *term, double *value) {
    *value = ft_item(term);
    Tensor *t = ft_affine(tp, term, coef, 0);
    return total ? ft_add(tp, total, t) : t;
}

Tensor *proto_loss(ProtoNet *p, Tape *tp, Tensor *x, Tensor *y, const int32_t *labels, const ProtoCoefs *c,
                   Tensor **logits, ProtoLossParts *parts) {
    ProtoLossParts v = { 0 };
    ProtoOut o;
    protonet_forward(p, tp, x, &o);
    if (logits) *logits = o.logits;
    Tensor *L = add_term(tp, NULL, 1, ft_cross_entropy(tp, o.logits, y), &v.ce);
    if (c->ce_att && o.att_logits && o.att_logits != o.logits)
        L = add_term(tp, L, c->ce_att, ft_cross_entropy(tp, o.att_logits, y), &v.ce_att);
    if (c->clst && o.min_dist)
        L = add_term(tp, L, c->clst, ft_mean(tp, proto_min_by_class(tp, o.min_dist, p->cls, labels, true), FT_ALL_DIMS, false),
                     &v.cluster);
    if (c->sep && o.min_dist)
        L = add_term(tp, L, c->sep, ft_mean(tp, proto_min_by_class(tp, o.min_dist, p->cls, labels, false), FT_ALL_DIMS, false),
                     &v.separation);
    if (c->clst_att && o.attention)
        L = add_term(tp, L, c->clst_att, proto_attention_weighted(tp, o.attention, proto_min_by_class(tp, o.dist, p->cls, labels, true)),
                     &v.cluster_att);
    if (c->sep_att && o.attention)
        L = add_term(tp, L, c->sep_att, proto_attention_weighted(tp, o.attention, proto_min_by_class(tp, o.dist, p->cls, labels, false)),
                     &v.separation_att);
    if (c->l1 && p->has_prototypes) L = add_term(tp, L, c->l1, last_layer_l1(tp, p->last.weight, p->off_class), &v.l1);
    v.total = ft_item(L);
    if (parts) *parts = v;
    return L;
}

Tensor *proto_last_layer_loss(ProtoNet *p, Tape *tp, Tensor *pooled, Tensor *y, double l1, Tensor **logits,
                              ProtoLossParts *parts) {
    ProtoLossParts v = { 0 };
    Tensor *z = linear_forward(tp, &p->last, pooled);
    if (logits) *logits = z;
    Tensor *L = add_term(tp, NULL, 1, ft_cross_entropy(tp, z, y), &v.ce);
    if (l1) L = add_term(tp, L, l1, last_layer_l1(tp, p->last.weight, p->off_class), &v.l1);
    v.total = ft_item(L);
    if (parts) *parts = v;
    return L;
}
