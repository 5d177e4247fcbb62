#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "proto.h"

AddOn addon_make(ParamSet *ps, const char *prefix, int in, int depth) {
    char p0[PARAM_NAME_MAX], p2[PARAM_NAME_MAX];
    snprintf(p0, sizeof p0, "%s.0", prefix);
    snprintf(p2, sizeof p2, "%s.2", prefix);
    return (AddOn){ conv2d_make(ps, p0, in, depth, 1, 1, 0, true), conv2d_make(ps, p2, depth, depth, 1, 1, 0, true) };
}

void addon_init(AddOn *a, Rng *rng) {
    init_kaiming_normal(a->c1.weight, true, rng);
    init_kaiming_normal(a->c2.weight, true, rng);
    ft_zero_(a->c1.bias);
    ft_zero_(a->c2.bias);
}

Tensor *addon_forward(Tape *tp, const AddOn *a, Tensor *f) {
    return ft_sigmoid(tp, conv2d_forward(tp, &a->c2, ft_relu(tp, conv2d_forward(tp, &a->c1, f))));
}

Tensor *proto_distances(Tape *tp, Tensor *z, Tensor *protos) {
    FT_INPUT(z);
    FT_INPUT(protos);
    int M = protos->shape.d[0];
    FT_ARG(z->shape.ndim == 4 && protos->shape.ndim == 4 && protos->shape.d[1] == z->shape.d[1] &&
             protos->shape.d[2] == 1 && protos->shape.d[3] == 1,
             "prototype distances: latents %s and prototypes %s (expected [N, D, H, W] and [M, D, 1, 1])",
             FT_SHAPE_STR(z->shape), FT_SHAPE_STR(protos->shape));
    Tensor *zz = ft_mul(tp, z, z);
    Tensor *z2 = ft_sum(tp, zz, FT_DIM(1), true);                                          /* [N, 1, H, W] */
    ft_tape_release(tp, zz);
    Tensor *zp = ft_conv2d(tp, z, protos, NULL, 1, 0, 1);                                  /* [N, M, H, W] */
    Tensor *p2 = ft_reshape(tp, ft_sum(tp, ft_mul(tp, protos, protos), FT_DIM(1) | FT_DIM(2) | FT_DIM(3), false),
                            SHAPE(1, M, 1, 1));
    /* the [N, M, H, W] steps between, handed back as soon as consumed where no backward reads them
     * (without gradients: the push, evaluation), so that one or two of them are alive, not five */
    Tensor *zp2 = ft_affine(tp, zp, 2, 0);
    ft_tape_release(tp, zp);
    Tensor *diff = ft_sub(tp, z2, zp2);
    ft_tape_release(tp, zp2);
    Tensor *sq = ft_add(tp, diff, p2);
    ft_tape_release(tp, diff);
    Tensor *d = ft_relu(tp, sq);
    ft_tape_release(tp, sq);
    return d;
}

Tensor *proto_log_similarity(Tape *tp, Tensor *d) {
    return ft_sub(tp, ft_log(tp, ft_affine(tp, d, 1, 1)), ft_log(tp, ft_affine(tp, d, 1, 1e-4)));
}

/* w[k][j] = (cls[j] == k ? own : other), built on the host (w may live on the GPU) */
static void class_pattern(Tensor *w, const int *cls, float own, float other) {
    int K = w->shape.d[0], M = w->shape.d[1];
    float *h = ft_xmalloc((size_t)K * M * sizeof *h);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < M; j++) h[(int64_t)k * M + j] = cls[j] == k ? own : other;
    ft_from_floats(w, h, (int64_t)K * M);
    free(h);
}

void last_layer_init(Tensor *w, const int *cls) { class_pattern(w, cls, 1.0f, -0.5f); }
void last_layer_off_class_mask(Tensor *off, const int *cls) { class_pattern(off, cls, 0.0f, 1.0f); }

Tensor *last_layer_l1(Tape *tp, Tensor *w, Tensor *off) {
    return ft_sum(tp, ft_abs(tp, ft_mul(tp, w, off)), FT_ALL_DIMS, false);
}

Attention attention_make(ParamSet *ps, const char *prefix, int in, int classes) {
    char pa[PARAM_NAME_MAX], pc[PARAM_NAME_MAX];
    snprintf(pa, sizeof pa, "%s.class_agnostic", prefix);
    snprintf(pc, sizeof pc, "%s.class_specific", prefix);
    return (Attention){ conv2d_make(ps, pa, in, 1, 1, 1, 0, true), conv2d_make(ps, pc, in, classes, 1, 1, 0, true), 0.8 };
}

void attention_init(Attention *a, Rng *rng) {
    init_torch_default(a->agnostic.weight, a->agnostic.bias, rng);
    init_torch_default(a->specific.weight, a->specific.bias, rng);
}

Tensor *attention_spatial(Tape *tp, Tensor *A) {
    Tensor *r = ft_max(tp, ft_relu(tp, A), FT_DIM(1), true, NULL);                  /* [N, 1, H, W] */
    Tensor *peak = ft_max(tp, r, FT_DIM(2) | FT_DIM(3), true, NULL);               /* [N, 1, 1, 1] */
    return ft_div(tp, r, ft_clamp(tp, peak, 1e-12, INFINITY));
}

Tensor *attention_forward(Tape *tp, const Attention *a, Tensor *f, bool dropout, Rng *rng, Tensor **maps, Tensor **spatial) {
    Tensor *agnostic = conv2d_forward(tp, &a->agnostic, f);                                        /* [N, 1, H, W] */
    Tensor *specific = conv2d_forward(tp, &a->specific, ft_dropout(tp, f, a->dropout, dropout, rng));   /* [N, K, H, W] */
    Tensor *A = ft_mul(tp, agnostic, specific);
    if (maps) *maps = A;
    if (spatial) *spatial = attention_spatial(tp, A);
    return ft_mean(tp, A, FT_DIM(2) | FT_DIM(3), false);
}
