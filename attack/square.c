/* The Square attack under L-inf (Andriushchenko et al., ECCV 2020): no gradient, only the
 * model's logits, so a model that masks its gradients cannot hide from it. It starts from
 * vertical stripes of +-eps, then at each query proposes a square of side s (shrinking with
 * the query count as the authors' schedule) filled with +-2 eps per channel, projected onto the
 * eps-ball and [0, 1], and keeps it for the examples whose margin loss it lowers. As the authors'
 * code, one window and one set of signs serve the whole batch at each query, and a query forwards
 * only the examples not fooled yet.
 *
 * The loss is the goal's margin (goal_margin with no floor), summed over the model's heads;
 * success is head 0 meeting the goal. */
#include <math.h>
#include <stdlib.h>
#include "attack.h"

/* The authors' schedule of the square's area fraction, on a scale of 10,000 queries. */
static double p_at(int it, int queries, double p_init) {
    int i = (int)((double)it / queries * 10000);
    static const int edges[] = { 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 };
    double p = p_init;
    for (int k = 0; k < 9; k++) if (i > edges[k]) p = p_init / (2 << k);
    return p;
}

/* Margins [n] of x (summed over the heads, no floor) to host, and head 0's predictions. */
static void margins(Model *m, Tape *tp, Tensor *x, const Goal *g, float *out, int32_t *pred) {
    ft_no_grad_begin(tp);
    Tensor *z[MODEL_MAX_HEADS];
    int heads = model_heads(m, tp, x, z);
    ft_to_floats(goal_margin_sum(tp, z, heads, g, INFINITY), out, g->n);
    model_predict(z[0], pred);
    ft_no_grad_end(tp);
    ft_tape_reset(tp);
}

/* The examples not fooled yet: their rows of x, their current points and their goal, so that a
 * query forwards only them (as the authors' code). */
typedef struct { int n, *rows; Tensor *x, *adv; Goal g; } Active;

/* Hand the active points back to x_adv and free them. */
static void active_return(Active *a, Tensor *x_adv) {
    for (int j = 0; a->adv && j < a->n; j++) attack_copy_row(x_adv, a->rows[j], a->adv, j);
    ft_tensor_free(a->x);
    ft_tensor_free(a->adv);
    goal_free(&a->g);
    a->x = a->adv = NULL;
}

static void active_gather(Active *a, const Tensor *x, Tensor *x_adv, const Goal *g, const bool *met) {
    active_return(a, x_adv);
    a->n = 0;
    for (int i = 0; i < g->n; i++) if (!met[i]) a->rows[a->n++] = i;
    Shape s = x->shape;
    s.d[0] = a->n;
    a->x = ft_tensor_new(x->dtype, s, x->storage->device);
    a->adv = ft_tensor_new(x->dtype, s, x->storage->device);
    for (int j = 0; j < a->n; j++) {
        attack_copy_row(a->x, j, x, a->rows[j]);
        attack_copy_row(a->adv, j, x_adv, a->rows[j]);
    }
    goal_rows(g, a->rows, a->n, &a->g);
}

int attack_square(Model *m, Tape *tp, Tensor *x, const Goal *g, const SquareAttack *a, Rng *rng, Tensor *x_adv) {
    FT_CHECK(ft_shape_eq(x->shape, x_adv->shape) && x->shape.ndim == 4, "attack: Square needs images [N, C, H, W] and x_adv alike");
    FT_CHECK(a->eps >= 0 && a->queries >= 1 && a->p_init > 0 && a->p_init <= 1, "attack: Square eps %g, queries %d, p %g",
             a->eps, a->queries, a->p_init);
    int n = g->n, C = x->shape.d[1], H = x->shape.d[2], W = x->shape.d[3];
    Device dev = x->storage->device;
    float *loss = ft_xmalloc((size_t)n * sizeof *loss), *cand = ft_xmalloc((size_t)n * sizeof *cand);
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    bool *met = ft_xmalloc((size_t)n * sizeof *met), *take = ft_xmalloc((size_t)n * sizeof *take);
    /* the start: vertical stripes of +-eps, one sign per example, channel and column */
    Tensor *h = ft_tensor_new(x->dtype, SHAPE(n, C, 1, W), FT_CPU), *stripes = ft_tensor_new(x->dtype, h->shape, dev);
    for (int64_t i = 0; i < h->numel; i++) ft_set(h, i, rng_u32(rng) & 1 ? a->eps : -a->eps);
    ft_copy_(stripes, h);
    ft_tensor_free(h);
    ft_copy_(x_adv, ft_clamp(tp, ft_add(tp, x, stripes), 0, 1));
    ft_tape_reset(tp);
    ft_tensor_free(stripes);
    margins(m, tp, x_adv, g, loss, pred);
    int left = 0;
    for (int i = 0; i < n; i++) left += !(met[i] = goal_met(g, i, pred[i]));
    Tensor *hd = ft_tensor_new(x->dtype, SHAPE(C, H, W), FT_CPU), *delta = ft_tensor_new(x->dtype, hd->shape, dev);
    Active act = { .rows = ft_xmalloc((size_t)n * sizeof *act.rows) };
    bool regather = true;
    for (int it = 0; it < a->queries && left > 0; it++) {
        if (regather) active_gather(&act, x, x_adv, g, met);
        regather = false;
        int s = (int)lround(sqrt(p_at(it, a->queries, a->p_init) * H * W));
        s = s < 1 ? 1 : s > H || s > W ? (H < W ? H : W) : s;
        int vh = (int)(rng_double(rng) * (H - s)), vw = (int)(rng_double(rng) * (W - s));
        ft_zero_(hd);
        for (int c = 0; c < C; c++) {
            double v = rng_u32(rng) & 1 ? 2 * a->eps : -2 * a->eps;
            for (int i = vh; i < vh + s; i++)
                for (int j = vw; j < vw + s; j++) ft_set(hd, ((int64_t)c * H + i) * W + j, v);
        }
        ft_copy_(delta, hd);
        /* x_new = clip(x + clip(x_adv + delta - x, -eps, eps), 0, 1) */
        Tensor *d = ft_clamp(tp, ft_sub(tp, ft_add(tp, act.adv, delta), act.x), -a->eps, a->eps);
        Tensor *xn = ft_tensor_new(x->dtype, act.x->shape, dev);
        ft_copy_(xn, ft_clamp(tp, ft_add(tp, act.x, d), 0, 1));
        ft_tape_reset(tp);
        margins(m, tp, xn, &act.g, cand, pred);
        bool any = false;
        for (int j = 0; j < act.n; j++) {
            int i = act.rows[j];
            bool now = goal_met(&act.g, j, pred[j]);
            take[j] = cand[j] < loss[i] || now;
            if (!take[j]) continue;
            any = true;
            loss[i] = cand[j];
            if (now) { met[i] = true; left--; regather = true; }
        }
        if (any) attack_copy_rows(act.adv, xn, take);
        ft_tensor_free(xn);
    }
    active_return(&act, x_adv);
    free(act.rows);
    ft_tensor_free(hd);
    ft_tensor_free(delta);
    int k = n - left;
    free(loss); free(cand); free(pred); free(met); free(take);
    return k;
}
