/* Goals of an attack: which class each example must leave or reach, and the losses that say how
 * far it is from there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"

bool target_parse(const char *s, Target *t) {
    if (strcmp(s, "untargeted") == 0) { *t = (Target){ TARGET_UNTARGETED, -1 }; return true; }
    if (strcmp(s, "random") == 0) { *t = (Target){ TARGET_RANDOM, -1 }; return true; }
    if (strcmp(s, "least-likely") == 0) { *t = (Target){ TARGET_LEAST_LIKELY, -1 }; return true; }
    char *end;
    long c = strtol(s, &end, 10);
    if (end == s || *end || c < 0 || c >= MODEL_MAX_CLASSES) return false;
    *t = (Target){ TARGET_CLASS, (int)c };
    return true;
}

const char *target_name(const Target *t, char *buf, size_t n) {
    switch (t->mode) {
    case TARGET_UNTARGETED: snprintf(buf, n, "untargeted"); break;
    case TARGET_RANDOM: snprintf(buf, n, "random"); break;
    case TARGET_LEAST_LIKELY: snprintf(buf, n, "least-likely"); break;
    case TARGET_CLASS: snprintf(buf, n, "%d", t->cls); break;
    }
    return buf;
}

float *attack_clean_logits(Model *m, Tape *tp, Tensor *x) {
    ft_no_grad_begin(tp);
    Tensor *z = m->forward(m, tp, x);
    ft_no_grad_end(tp);
    float *h = ft_xmalloc((size_t)z->numel * sizeof *h);
    ft_to_floats(z, h, z->numel);
    ft_tape_reset(tp);
    return h;
}

/* The clean logits' least likely class of every example (head 0). */
static void least_likely(Model *m, Tape *tp, Tensor *x, int32_t *out) {
    int n = x->shape.d[0], k = m->num_classes;
    float *h = attack_clean_logits(m, tp, x);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++) if (h[i * k + j] < h[i * k + best]) best = j;
        out[i] = best;
    }
    free(h);
}

/* g->cls and g->onehot from g's host labels and targets. */
static void goal_upload(Goal *g, DType dtype, Device dev) {
    int n = g->n, k = g->k;
    const int32_t *cls = g->targets ? g->targets : g->labels;
    Tensor *hc = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU), *ho = ft_tensor_new(dtype, SHAPE(n, k), FT_CPU);
    for (int i = 0; i < n; i++) {
        FT_CHECK(cls[i] >= 0 && cls[i] < k, "attack: class %d of a %d-class model", cls[i], k);
        ft_i32(hc)[i] = cls[i];
        ft_set(ho, (int64_t)i * k + cls[i], 1.0);
    }
    g->cls = ft_tensor_new(FT_I32, SHAPE(n), dev);
    g->onehot = ft_tensor_new(dtype, SHAPE(n, k), dev);
    ft_copy_(g->cls, hc);
    ft_copy_(g->onehot, ho);
    ft_tensor_free(hc);
    ft_tensor_free(ho);
}

void goal_make(Goal *g, Model *m, Tape *tp, Tensor *x, const int32_t *labels, const Target *t, Rng *rng) {
    int n = x->shape.d[0], k = m->num_classes;
    Device dev = m->params.device;
    *g = (Goal){ .n = n, .k = k };
    g->labels = ft_xmalloc((size_t)n * sizeof *g->labels);
    memcpy(g->labels, labels, (size_t)n * sizeof *labels);
    if (t && t->mode != TARGET_UNTARGETED) {
        FT_CHECK(t->mode != TARGET_CLASS || (t->cls >= 0 && t->cls < k), "attack: target class %d of a %d-class model", t->cls, k);
        FT_CHECK(t->mode != TARGET_RANDOM || k >= 2, "attack: a random other class needs 2 classes or more");
        g->targets = ft_xmalloc((size_t)n * sizeof *g->targets);
        if (t->mode == TARGET_LEAST_LIKELY) least_likely(m, tp, x, g->targets);
        for (int i = 0; i < n; i++) {
            if (t->mode == TARGET_CLASS) g->targets[i] = t->cls;
            else if (t->mode == TARGET_RANDOM) {   /* uniform over the k - 1 other classes */
                int c = (int)(rng_u32(rng) % (uint32_t)(k - 1));
                g->targets[i] = c >= labels[i] ? c + 1 : c;
            }
        }
    }
    goal_upload(g, x->dtype, dev);
}

void goal_rows(const Goal *g, const int *rows, int n, Goal *out) {
    *out = (Goal){ .n = n, .k = g->k };
    out->labels = ft_xmalloc((size_t)n * sizeof *out->labels);
    if (g->targets) out->targets = ft_xmalloc((size_t)n * sizeof *out->targets);
    for (int i = 0; i < n; i++) {
        out->labels[i] = g->labels[rows[i]];
        if (g->targets) out->targets[i] = g->targets[rows[i]];
    }
    goal_upload(out, g->onehot->dtype, g->cls->storage->device);
}

void goal_free(Goal *g) {
    free(g->labels);
    free(g->targets);
    ft_tensor_free(g->cls);
    ft_tensor_free(g->onehot);
    *g = (Goal){ 0 };
}

/* As the authors' code decides success: shift the goal's logit by kappa against it, then argmax. */
bool goal_met_by(const Goal *g, int i, const float *z, double kappa) {
    int c = g->targets ? g->targets[i] : g->labels[i], best = -1;
    double bv = -INFINITY;
    for (int j = 0; j < g->k; j++) {
        double v = z[j];
        if (j == c) v += g->targets ? -kappa : kappa;
        if (v > bv) { bv = v; best = j; }
    }
    return g->targets ? best == c : best != c;
}

Tensor *goal_margin(Tape *tp, Tensor *z, const Goal *g, double kappa) {
    Tensor *own = ft_sum(tp, ft_mul(tp, z, g->onehot), FT_DIM(1), false);   /* Z_c */
    /* the largest other logit: the goal's class pushed to -1e30 (a finite mask: 0 * mask stays 0) */
    Tensor *other = ft_max(tp, ft_add(tp, z, ft_affine(tp, g->onehot, -1e30, 0)), FT_DIM(1), false, NULL);
    Tensor *d = g->targets ? ft_sub(tp, other, own) : ft_sub(tp, own, other);
    return ft_clamp(tp, d, -kappa, INFINITY);
}

Tensor *goal_margin_sum(Tape *tp, Tensor *const z[], int heads, const Goal *g, double kappa) {
    Tensor *f = goal_margin(tp, z[0], g, kappa);
    for (int h = 1; h < heads; h++) f = ft_add(tp, f, goal_margin(tp, z[h], g, kappa));
    return f;
}

Tensor *goal_margin_heads(Model *m, Tape *tp, Tensor *x, const Goal *g, double kappa, Tensor **logits) {
    Tensor *z[MODEL_MAX_HEADS];
    Tensor *f = goal_margin_sum(tp, z, model_heads(m, tp, x, z), g, kappa);
    if (logits) *logits = z[0];
    return f;
}

Tensor *goal_ce_ascent(Model *m, Tape *tp, Tensor *x, const Goal *g, Tensor **logits) {
    if (!g->targets) return model_loss(m, tp, x, g->cls, logits);
    Tensor *z[MODEL_MAX_HEADS];
    int heads = model_heads(m, tp, x, z);
    Tensor *ce = ft_cross_entropy(tp, z[0], g->cls);
    for (int h = 1; h < heads; h++) ce = ft_add(tp, ce, ft_cross_entropy(tp, z[h], g->cls));
    if (logits) *logits = z[0];
    return ft_neg(tp, ce);
}
