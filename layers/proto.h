/* The pieces of a prototype network's head (ProtoPNet, Chen et al. 2019) and of the attention
 * module of the robust variant (Nakka & Salzmann 2020), each built from ops, so the backward pass
 * and both backends come from the ops themselves.
 *
 *   add-on:      z = sigmoid(conv1x1(relu(conv1x1(f))))            f [N, C, H, W] -> z [N, D, H, W]
 *   distances:   d = max(0, |z|^2 - 2 z.p + |p|^2)                  z, p [M, D, 1, 1] -> [N, M, H, W]
 *   similarity:  s = log((d + 1) / (d + 1e-4))                      the "log activation"
 *   last layer:  logits = W s_max, W [K, M] without bias, +1 to the prototype's class, -0.5 elsewhere
 *   attention:   A = conv1x1(f) [N, 1, H, W] (class-agnostic) * conv1x1(dropout_0.8(f)) [N, K, H, W]
 *                logits = mean_hw A; a(h, w) = max_k relu(A) / max_hw max_k relu(A)
 */
#ifndef FINCH_PROTO_LAYERS_H
#define FINCH_PROTO_LAYERS_H

#include "layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Two 1x1 convolutions C -> D -> D with a ReLU between and a sigmoid after; torch's names
 * prefix.0 and prefix.2 (as ProtoPNet's nn.Sequential). */
typedef struct { Conv2d c1, c2; } AddOn;
AddOn addon_make(ParamSet *ps, const char *prefix, int in, int depth);
/* Kaiming normal with fan-out, zero bias (ProtoPNet's initialisation). */
void addon_init(AddOn *a, Rng *rng);
Tensor *addon_forward(Tape *tp, const AddOn *a, Tensor *f);

/* Squared L2 distance of every latent patch to every prototype, through one matrix product
 * (a 1x1 convolution with the prototypes as filters). z [N, D, H, W], protos [M, D, 1, 1]. */
Tensor *proto_distances(Tape *tp, Tensor *z, Tensor *protos);
/* log((d + 1) / (d + 1e-4)): large when d is near 0, near 0 when d is large. */
Tensor *proto_log_similarity(Tape *tp, Tensor *d);

/* Last layer [K, M]: +1 from each prototype to its own class (cls[j]), -0.5 to every other. */
void last_layer_init(Tensor *w, const int *cls);
/* off [K, M]: 1 where prototype j does not belong to class k, 0 where it does. */
void last_layer_off_class_mask(Tensor *off, const int *cls);
/* The L1 norm of the off-class connections: sum |W * off|. */
Tensor *last_layer_l1(Tape *tp, Tensor *w, Tensor *off);

/* The attention module: class-agnostic and class-specific 1x1 convolutions (with bias). */
typedef struct { Conv2d agnostic, specific; double dropout; } Attention;
Attention attention_make(ParamSet *ps, const char *prefix, int in, int classes);
void attention_init(Attention *a, Rng *rng);
/* f [N, C, H, W] -> attention logits [N, K], the spatial mean of the class maps A [N, K, H, W]
 * (*maps, when not NULL); *spatial (when not NULL) the spatial attention [N, 1, H, W] in [0, 1].
 * Dropout only when `dropout` is set. */
Tensor *attention_forward(Tape *tp, const Attention *a, Tensor *f, bool dropout, Rng *rng, Tensor **maps, Tensor **spatial);
/* The product map A [N, K, H, W] -> a [N, 1, H, W]: the class-max of relu(A) over its spatial
 * maximum. An all-zero map stays zero (the divisor is kept at least 1e-12). */
Tensor *attention_spatial(Tape *tp, Tensor *A);

#ifdef __cplusplus
}
#endif

#endif
