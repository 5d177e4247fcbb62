/* The training losses of prototype networks.
 *
 *   ProtoPNet:  CE + clst * cluster + sep * separation + l1 * |W_off|_1
 *               cluster    = mean_n min over the prototypes of class y_n of min_hw d
 *               separation = mean_n min over the prototypes of other classes of min_hw d
 *   Ours-A:     CE(attention logits)
 *   Ours-FR:    CE(FR logits) + ce_att * CE(attention logits)
 *               + clst_att * L_clst_att + sep_att * L_sep_att + l1 * |W_off|_1
 *               L_clst_att = mean_{n,h,w} a_n(h, w) * min over the prototypes of class y_n of d_n(h, w)
 *               L_sep_att  = mean_{n,h,w} a_n(h, w) * min over the other classes' prototypes of d_n(h, w)
 *               computed per image and per location (Nakka & Salzmann; not their code's slip, which
 *               broadcasts one image's attention over another's distances).
 * Coefficients carry their sign: sep = -0.08 rewards separation. */
#ifndef FINCH_PROTO_LOSS_H
#define FINCH_PROTO_LOSS_H

#include "models/protonet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { double ce_att, clst, sep, clst_att, sep_att, l1; } ProtoCoefs;
/* The papers' coefficients for the kind: ProtoPNet 0.8 / -0.08 / 1e-4; Ours-FR 1 / 100 / -0.08 / 1e-4. */
ProtoCoefs proto_coefs_default(ProtoKind kind);

/* Each term's value for the step (unweighted), and the weighted total. */
typedef struct { double ce, ce_att, cluster, separation, cluster_att, separation_att, l1, total; } ProtoLossParts;

/* [N, M, 1, ...] (d's rank, d's dtype, on the tape): 0 where prototype j belongs (own) or does
 * not belong (!own) to image n's class, 1e30 elsewhere, so that a min over d + penalty never
 * picks an excluded prototype. */
#define PROTO_OUTSIDE 1e30f
Tensor *proto_class_penalty(Tape *tp, Tensor *d, const int *cls, const int32_t *labels, bool own);
/* d [N, M, ...] -> [N, ...]: per image, the smallest entry over the prototypes of its own class
 * (own) or of every other class (!own). labels and cls on the host. */
Tensor *proto_min_by_class(Tape *tp, Tensor *d, const int *cls, const int32_t *labels, bool own);
/* mean over n, h, w of a * m; a [N, 1, H, W], m [N, H, W] */
Tensor *proto_attention_weighted(Tape *tp, Tensor *a, Tensor *m);

/* The loss of one batch (x in [0, 1], y on the model's device, labels the same on the host).
 * *logits: the classifying head's; parts may be NULL. Terms with a zero coefficient are skipped. */
Tensor *proto_loss(ProtoNet *p, Tape *tp, Tensor *x, Tensor *y, const int32_t *labels, const ProtoCoefs *c,
                   Tensor **logits, ProtoLossParts *parts);

/* The last-layer stage's loss from the pooled similarities [N, M] (ProtoOut.pooled, e.g. cached):
 * CE(last layer(pooled)) + l1 * |W_off|_1, as proto_loss with only c->l1 on. */
Tensor *proto_last_layer_loss(ProtoNet *p, Tape *tp, Tensor *pooled, Tensor *y, double l1, Tensor **logits,
                              ProtoLossParts *parts);

#ifdef __cplusplus
}
#endif

#endif
