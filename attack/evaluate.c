/* One attack over a dataset: success, robust accuracy, success after rounding to 8-bit pixels,
 * and the distortion of the successful examples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"
#include "core/progress.h"
#include "dist/dist.h"

const char *attack_kind_name(AttackKind k) {
    static const char *names[] = { "steps", "cw", "ead", "apgd", "square" };
    return names[k];
}

void attack_predict(Model *m, Tape *tp, Tensor *x, int32_t *pred) {
    ft_no_grad_begin(tp);
    model_predict(m->forward(m, tp, x), pred);
    ft_no_grad_end(tp);
    ft_tape_reset(tp);
}

/* x rounded to the nearest of 256 grey levels, as a PNG would hold it. */
static void round_8bit(const Tensor *x, Tensor *out) {
    int64_t n = x->numel;
    float *h = ft_xmalloc((size_t)n * sizeof *h);
    ft_to_floats(x, h, n);
    for (int64_t i = 0; i < n; i++) h[i] = roundf(h[i] * 255.0f) / 255.0f;
    ft_from_floats(out, h, n);
    free(h);
}

typedef struct { double *v; int n, cap; } Series;

static void series_add(Series *s, double v) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = ft_xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Several processes: every process's values, in rank order (the order of their images). */
static void series_gather(Series *s) {
    if (!ft_dist_active()) return;
    char *all;
    size_t *lens = ft_xmalloc((size_t)ft_dist_size() * sizeof *lens), total = 0;
    FT_CHECK(ft_dist_allgather_var(s->v, (size_t)s->n * sizeof *s->v, &all, lens) == 0, "%s", ft_last_error());
    for (int r = 0; r < ft_dist_size(); r++) total += lens[r];
    s->n = 0;
    for (size_t i = 0; i < total / sizeof(double); i++) {
        double v;
        memcpy(&v, all + i * sizeof v, sizeof v);
        series_add(s, v);
    }
    free(all);
    free(lens);
}

static Stat series_stat(Series *s) {
    series_gather(s);
    Stat r = { NAN, NAN };
    if (s->n > 0) {
        double sum = 0;
        for (int i = 0; i < s->n; i++) sum += s->v[i];
        qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_double);
        r.mean = sum / s->n;
        r.median = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
    }
    free(s->v);
    *s = (Series){ 0 };
    return r;
}

Distortion attack_distortion(const float *x, const float *x_adv, int64_t n) {
    Distortion d = { 0 };
    double l2 = 0;
    for (int64_t j = 0; j < n; j++) {
        double a = fabs((double)x_adv[j] - x[j]);
        d.l0 += a > 1.0 / 510;
        d.l1 += a;
        l2 += a * a;
        d.linf = fmax(d.linf, a);
    }
    d.l2 = sqrt(l2);
    return d;
}

void attack_run_batch(Model *m, Tape *tp, Tensor *x, const Goal *g, const AttackSpec *a, Rng *rng, Tensor *xa) {
    switch (a->kind) {
    case ATTACK_STEPS: attack_steps_goal(m, tp, x, g, &a->step, rng, xa, true); break;
    case ATTACK_CW: attack_cw(m, tp, x, g, &a->opt, xa, NULL); break;
    case ATTACK_EAD: attack_ead(m, tp, x, g, &a->opt, xa, NULL); break;
    case ATTACK_APGD: attack_apgd(m, tp, x, g, &a->apgd, rng, xa); break;
    case ATTACK_SQUARE: attack_square(m, tp, x, g, &a->square, rng, xa); break;
    }
}

/* Under several processes each attacks a contiguous share of the images, from a random stream of
 * its own, and the counts and distortions are gathered (on_batch sees this process's batches). */
AttackStats attack_evaluate(Model *m, const Dataset *ds, int n, int batch, const AttackSpec *a, uint64_t seed,
                            bool quiet, AttackBatchFn on_batch, void *ctx) {
    if (n <= 0 || n > dataset_size(ds)) n = dataset_size(ds);
    Share sh = share_of(n, batch);
    Device dev = m->params.device;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    Rng rng = rng_new(seed ^ sh.stream);
    AttackStats r = { 0 };
    Series l0 = { 0 }, l1 = { 0 }, l2 = { 0 }, linf = { 0 };
    Progress p;
    progress_start(&p, a->kind == ATTACK_STEPS ? "attack" : attack_kind_name(a->kind), sh.hi - sh.lo, quiet || sh.rank > 0);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx), *pc = ft_xmalloc((size_t)batch * sizeof *pc);
    int32_t *pa = ft_xmalloc((size_t)batch * sizeof *pa), *p8 = ft_xmalloc((size_t)batch * sizeof *p8);
    for (int start = sh.lo; start < sh.hi; start += batch) {
        int b = sh.hi - start < batch ? sh.hi - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(b), dev);
        Tensor *xa = ft_tensor_new(FT_F32, s, dev), *xr = ft_tensor_new(FT_F32, s, dev);
        for (int i = 0; i < b; i++) idx[i] = start + i;
        dataset_batch(ds, idx, b, x, y);
        const int32_t *labels = ft_i32(ds->labels) + start;
        attack_predict(m, tp, x, pc);
        Goal g;
        goal_make(&g, m, tp, x, labels, &a->target, &rng);
        attack_run_batch(m, tp, x, &g, a, &rng, xa);
        attack_predict(m, tp, xa, pa);
        round_8bit(xa, xr);
        attack_predict(m, tp, xr, p8);
        int64_t per = x->numel / b;
        float *hx = ft_xmalloc((size_t)x->numel * sizeof *hx), *ha = ft_xmalloc((size_t)x->numel * sizeof *ha);
        ft_to_floats(x, hx, x->numel);
        ft_to_floats(xa, ha, x->numel);
        for (int i = 0; i < b; i++) {
            bool ok = goal_met(&g, i, pa[i]), needed = !goal_met(&g, i, pc[i]);
            r.clean_correct += pc[i] == labels[i];
            r.adv_correct += pa[i] == labels[i];
            r.success += ok;
            r.success_8bit += goal_met(&g, i, p8[i]);
            r.needed += needed;
            if (!ok || !needed) continue;
            Distortion d = attack_distortion(hx + i * per, ha + i * per, per);
            r.measured++;
            series_add(&l0, d.l0); series_add(&l1, d.l1); series_add(&l2, d.l2); series_add(&linf, d.linf);
        }
        if (on_batch) on_batch(ctx, start, b, x, xa, &g, pc, pa);
        free(hx); free(ha);
        goal_free(&g);
        r.total += b;
        char note[96];
        snprintf(note, sizeof note, "clean %.1f%%  success %.1f%%  robust %.1f%%", 100.0 * r.clean_correct / r.total,
                 100.0 * r.success / r.total, 100.0 * r.adv_correct / r.total);
        progress_update(&p, b, note);
        ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa); ft_tensor_free(xr);
    }
    r.seconds = progress_finish(&p, NULL);
    double sums[7] = { r.total, r.clean_correct, r.adv_correct, r.success, r.success_8bit, r.needed, r.measured };
    ft_dist_allreduce_f64(sums, 7);
    r.total = (int)sums[0]; r.clean_correct = (int)sums[1]; r.adv_correct = (int)sums[2]; r.success = (int)sums[3];
    r.success_8bit = (int)sums[4]; r.needed = (int)sums[5]; r.measured = (int)sums[6];
    r.l0 = series_stat(&l0); r.l1 = series_stat(&l1); r.l2 = series_stat(&l2); r.linf = series_stat(&linf);
    free(idx); free(pc); free(pa); free(p8);
    ft_tape_free(tp);
    m->training = was_training;
    return r;
}
