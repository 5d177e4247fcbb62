/* Prototype networks over any trunk of the model registry:
 *
 *   protopnet-<trunk>  ProtoPNet: trunk -> add-on -> distances to M prototypes -> log similarity
 *                      -> spatial max -> last layer                          (Chen et al. 2019)
 *   ap-<trunk>         "Ours-A": attention pooling on relu(trunk) only      (Nakka & Salzmann 2020)
 *   ours-fr-<trunk>    "Ours-FR": both; the similarity maps are multiplied by the spatial attention
 *                      a(h, w) before the spatial max, and the model is trained with both CEs and the
 *                      attention-weighted cluster / separation costs
 *
 * Parameter names follow ProtoPNet's state_dict: features.<trunk's torchvision names>,
 * add_on_layers.{0,2}, prototype_vectors [M, D, 1, 1], last_layer [K, M]; the attention module is
 * attention.class_agnostic / attention.class_specific. Prototype j belongs to class j / per_class,
 * or, after pruning, to the class the model's metadata lists for it. */
#ifndef FINCH_PROTONET_H
#define FINCH_PROTONET_H

#include "model.h"
#include "layers/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PROTO_PPNET, PROTO_AP, PROTO_FR } ProtoKind;

#define PROTONET_MAX_PROTOTYPES 1000000

typedef struct {
    Model base;
    ProtoKind kind;
    char arch[64];
    Model *trunk;              /* its parameters live in base.params under "features." */
    bool has_prototypes, has_attention;
    AddOn add_on;
    Tensor *prototypes;        /* [M, D, 1, 1] */
    Linear last;               /* [K, M], no bias */
    Tensor *off_class;         /* [K, M]: 1 off-class, 0 own class (for the L1 term) */
    int *cls;                  /* host: class of each prototype */
    int n_protos, per_class, depth;
    Attention att;
} ProtoNet;

/* Everything a forward computes that losses, push and explanations need (tape tensors). */
typedef struct {
    Tensor *logits;            /* the head that classifies: ProtoPNet's, FR's, or the attention logits */
    Tensor *att_logits;        /* [N, K] (ap, ours-fr) */
    Tensor *att_maps;          /* [N, K, H, W] the attention's class maps A, att_logits their spatial mean */
    Tensor *latent;            /* add-on output z [N, D, H, W] */
    Tensor *dist;              /* [N, M, H, W] */
    Tensor *min_dist;          /* [N, M] smallest distance over space (ProtoPNet) */
    Tensor *sim;               /* [N, M, H, W] log similarity (times the attention for ours-fr) */
    Tensor *attention;         /* [N, 1, H, W] a(h, w) */
    Tensor *pooled;            /* [N, M] the spatial max of sim: what the last layer reads */
} ProtoOut;

/* "protopnet-vgg16" etc.: the kind and where the trunk's name starts; false for other names. */
bool protonet_parse_arch(const char *arch, ProtoKind *kind, const char **trunk);
Model *protonet_create(const char *arch, const ModelConfig *cfg);
/* NULL when m is not a prototype network. */
ProtoNet *protonet_of(Model *m);
/* x [N, C, H, W] in [0, 1]; fills *o (all fields the kind has; the others NULL) and returns o->logits. */
Tensor *protonet_forward(ProtoNet *p, Tape *tp, Tensor *x, ProtoOut *o);
/* "c0,c1,...": the class of every prototype (malloc'd), for a model's metadata; NULL when p is
 * NULL, has no prototypes, or has ProtoPNet's layout (prototype j of class j / per_class). */
char *protonet_classes_string(const ProtoNet *p);
/* Its inverse: n non-negative classes (malloc'd), or NULL with ft_last_error(). */
int *protonet_classes_parse(const char *s, int *n);
/* A new network with only the prototypes j where keep[j] (their last-layer columns with them);
 * every other tensor copied. cfg: the model's configuration. NULL with ft_last_error(). */
Model *protonet_select(ProtoNet *p, const bool *keep, const ModelConfig *cfg);
/* The latent map z for push (eval mode is the caller's). */
Tensor *protonet_latent(ProtoNet *p, Tape *tp, Tensor *x);

#ifdef __cplusplus
}
#endif

#endif
