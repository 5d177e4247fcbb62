#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"
#include "dist/dist.h"
#include "core/progress.h"

static NamedAttack step_attack(const char *name, StepAttack a, bool single) {
    return (NamedAttack){ name, { .kind = ATTACK_STEPS, .step = a }, false, single };
}

int suite_attacks(const char *suite, double eps, NamedAttack out[SUITE_MAX]) {
    int n = 0;
    if (strcmp(suite, "strong") == 0) {
        out[n++] = (NamedAttack){ "APGD-CE", { .kind = ATTACK_APGD, .apgd = attack_apgd_defaults(APGD_CE, eps, 100, NORM_INF) }, false, false };
        out[n++] = (NamedAttack){ "APGD-T", { .kind = ATTACK_APGD, .apgd = attack_apgd_defaults(APGD_DLR_TARGETED, eps, 100, NORM_INF) },
                                  false, false };
        out[n++] = (NamedAttack){ "Square", { .kind = ATTACK_SQUARE, .square = { eps, 5000, 0.8 } }, true, false };
    } else if (strcmp(suite, "paper") != 0) return 0;
    double pgd_step = eps <= 2.0 / 255 + 1e-12 ? eps / 2 : eps / 4;   /* 1/255 at 2/255, 2/255 at 8/255 */
    out[n++] = step_attack("FGSM", attack_fgsm_rs(eps, eps), true);
    out[n++] = step_attack("BIM-10", attack_bim(eps, 10), false);
    out[n++] = step_attack("PGD-10", attack_pgd(eps, pgd_step, 10), false);
    out[n++] = step_attack("MIM-10", attack_mim(eps, 10, 1.0), false);
    return n;
}

/* Which examples of x the model classifies correctly (eval mode is the caller's). */
static void correct_mask(Model *m, Tape *tp, Tensor *x, const int32_t *labels, int n, bool *ok) {
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    attack_predict(m, tp, x, pred);
    for (int i = 0; i < n; i++) ok[i] = pred[i] == labels[i];
    free(pred);
}

SuiteRow robust_suite(Model *m, const Dataset *ds, int n, int batch, const char *suite, double eps, uint64_t seed, bool quiet) {
    if (n <= 0 || n > dataset_size(ds)) n = dataset_size(ds);
    NamedAttack atk[SUITE_MAX];
    int na = suite_attacks(suite, eps, atk);
    FT_CHECK(na > 0, "robust_suite: unknown suite '%s'", suite);
    Device dev = m->params.device;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    Share sh = share_of(n, batch);   /* several processes: a share each, the counts summed */
    Rng rng = rng_new(seed ^ sh.stream);
    SuiteRow r = { .eps = eps, .n_attacks = na };
    char label[48];
    snprintf(label, sizeof label, "%s eps %.4g", suite, eps);
    Progress p;
    progress_start(&p, label, sh.hi - sh.lo, quiet || sh.rank > 0);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx);
    bool *ok = ft_xmalloc((size_t)batch * sizeof *ok), *all = ft_xmalloc((size_t)batch * sizeof *all);
    for (int start = sh.lo; start < sh.hi; start += batch) {
        int b = sh.hi - start < batch ? sh.hi - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(b), dev), *xa = ft_tensor_new(FT_F32, s, dev);
        for (int i = 0; i < b; i++) idx[i] = start + i;
        dataset_batch(ds, idx, b, x, y);
        const int32_t *labels = ft_i32(ds->labels) + start;
        correct_mask(m, tp, x, labels, b, all);
        for (int i = 0; i < b; i++) r.clean += all[i];
        Goal g;
        goal_make(&g, m, tp, x, labels, NULL, &rng);
        for (int k = 0; k < na; k++) {
            attack_run_batch(m, tp, x, &g, &atk[k].a, &rng, xa);
            correct_mask(m, tp, xa, labels, b, ok);
            for (int i = 0; i < b; i++) { r.robust[k] += ok[i]; all[i] &= ok[i]; }
        }
        goal_free(&g);
        for (int i = 0; i < b; i++) r.worst += all[i];
        r.total += b;
        char note[96];
        snprintf(note, sizeof note, "clean %.1f%%  worst case %.1f%%", 100.0 * r.clean / r.total, 100.0 * r.worst / r.total);
        progress_update(&p, b, note);
        ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    }
    r.seconds = progress_finish(&p, NULL);
    double sums[SUITE_MAX + 3] = { r.total, r.clean, r.worst };
    for (int k = 0; k < na; k++) sums[3 + k] = r.robust[k];
    ft_dist_allreduce_f64(sums, 3 + na);
    r.total = (int)sums[0]; r.clean = (int)sums[1]; r.worst = (int)sums[2];
    for (int k = 0; k < na; k++) r.robust[k] = (int)sums[3 + k];
    free(idx); free(ok); free(all);
    ft_tape_free(tp);
    m->training = was_training;
    return r;
}

/* Robust accuracies differ by more than one example in a thousand: sampling noise between two
 * random starts is not a finding. */
static bool above(int a, int b, int total) { return a - b > total / 1000; }

int suite_checks(const char *suite, const SuiteRow *rows, int n_rows, char (*w)[256], int max) {
    int n = 0;
#define WARN(...) do { if (n < max) snprintf(w[n], 256, __VA_ARGS__); n++; } while (0)
    for (int r = 0; r < n_rows; r++) {
        NamedAttack atk[SUITE_MAX];
        int na = suite_attacks(suite, rows[r].eps, atk);
        const SuiteRow *row = &rows[r];
        int t = row->total, single = -1, apgd = -1, pgd = -1, square = -1, best_gradient = t + 1;
        for (int k = 0; k < na; k++) {
            if (atk[k].single_step) single = k;
            if (strcmp(atk[k].name, "APGD-CE") == 0) apgd = k;
            if (strcmp(atk[k].name, "PGD-10") == 0) pgd = k;
            if (atk[k].gradient_free) square = k;
            else if (row->robust[k] < best_gradient) best_gradient = row->robust[k];
        }
        for (int k = 0; k < na; k++)   /* (a) */
            if (single >= 0 && k != single && !atk[k].gradient_free && above(row->robust[k], row->robust[single], t))
                WARN("eps %.4g: %s leaves %d robust, more than the single-step %s (%d): the iterative attack is weaker than one "
                     "step (gradient masking, or a broken attack)", row->eps, atk[k].name, row->robust[k], atk[single].name,
                     row->robust[single]);
        if (apgd >= 0 && pgd >= 0 && above(row->robust[apgd], row->robust[pgd], t))   /* (d) */
            WARN("eps %.4g: APGD-CE with 100 steps leaves %d robust, more than PGD-10 (%d): more steps did worse", row->eps,
                 row->robust[apgd], row->robust[pgd]);
        if (square >= 0 && above(best_gradient, row->robust[square], t))   /* (e) */
            WARN("eps %.4g: Square, which uses no gradients, leaves %d robust, fewer than the best gradient attack (%d): "
                 "the gradients mislead (gradient masking)", row->eps, row->robust[square], best_gradient);
        if (row->eps >= 1 && row->worst > 0)   /* (c) */
            WARN("eps %.4g covers the whole pixel box, yet %d of %d examples survive: an unbounded attack must fool every one",
                 row->eps, row->worst, t);
        for (int q = 0; q < r; q++) {
            if (rows[q].eps >= row->eps) continue;
            if (above(row->worst, rows[q].worst, t))   /* (b) */
                WARN("robust accuracy rises with eps: %d survive at eps %.4g, %d at the smaller %.4g", row->worst, row->eps,
                     rows[q].worst, rows[q].eps);
            NamedAttack smaller[SUITE_MAX];
            int ns = suite_attacks(suite, rows[q].eps, smaller);
            for (int k = 0; k < na; k++)   /* (f) */
                for (int s = 0; s < ns; s++)
                    if (strcmp(atk[k].name, smaller[s].name) == 0 && above(row->robust[k], rows[q].robust[s], t))
                        WARN("eps %.4g: %s leaves %d robust, more than the %d it left at the smaller eps %.4g: the attack does "
                             "worse with more room (gradient masking, as in a model trained against that attack: it resists "
                             "the attack, not the ball)", row->eps, atk[k].name, row->robust[k], rows[q].robust[s], rows[q].eps);
        }
    }
#undef WARN
    return n;
}
