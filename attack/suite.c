#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attack.h"
#include "core/progress.h"

void suite_paper_attacks(double eps, NamedAttack out[SUITE_ATTACKS]) {
    double pgd_step = eps <= 2.0 / 255 + 1e-12 ? eps / 2 : eps / 4;   /* 1/255 at 2/255, 2/255 at 8/255 */
    out[0] = (NamedAttack){ "FGSM", attack_fgsm_rs(eps, eps) };
    out[1] = (NamedAttack){ "BIM-10", attack_bim(eps, 10) };
    out[2] = (NamedAttack){ "PGD-10", attack_pgd(eps, pgd_step, 10) };
    out[3] = (NamedAttack){ "MIM-10", attack_mim(eps, 10, 1.0) };
}

/* Which examples of x the model classifies correctly (eval mode is the caller's). */
static void correct_mask(Model *m, Tape *tp, Tensor *x, const int32_t *labels, int n, bool *ok) {
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    ft_no_grad_begin(tp);
    model_predict(m->forward(m, tp, x), pred);
    ft_no_grad_end(tp);
    ft_tape_reset(tp);
    for (int i = 0; i < n; i++) ok[i] = pred[i] == labels[i];
    free(pred);
}

SuiteRow robust_suite(Model *m, const Dataset *ds, int n, int batch, double eps, uint64_t seed, bool quiet) {
    if (n <= 0 || n > dataset_size(ds)) n = dataset_size(ds);
    NamedAttack atk[SUITE_ATTACKS];
    suite_paper_attacks(eps, atk);
    Device dev = m->params.device;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    Rng rng = rng_new(seed);
    SuiteRow r = { .eps = eps };
    char label[48];
    snprintf(label, sizeof label, "suite eps %.4g", eps);
    Progress p;
    progress_start(&p, label, n, quiet);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx);
    bool *ok = ft_xmalloc((size_t)batch * sizeof *ok), *all = ft_xmalloc((size_t)batch * sizeof *all);
    for (int start = 0; start < n; start += batch) {
        int b = n - start < batch ? n - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(b), dev), *xa = ft_tensor_new(FT_F32, s, dev);
        for (int i = 0; i < b; i++) idx[i] = start + i;
        dataset_batch(ds, idx, b, x, y);
        const int32_t *labels = ft_i32(ds->labels) + start;
        correct_mask(m, tp, x, labels, b, all);
        for (int i = 0; i < b; i++) r.clean += all[i];
        for (int k = 0; k < SUITE_ATTACKS; k++) {
            attack_steps(m, tp, x, y, &atk[k].a, &rng, xa, true);
            correct_mask(m, tp, xa, labels, b, ok);
            for (int i = 0; i < b; i++) { r.robust[k] += ok[i]; all[i] &= ok[i]; }
        }
        for (int i = 0; i < b; i++) r.worst += all[i];
        r.total += b;
        char note[96];
        snprintf(note, sizeof note, "clean %.1f%%  worst case %.1f%%", 100.0 * r.clean / r.total, 100.0 * r.worst / r.total);
        progress_update(&p, b, note);
        ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    }
    r.seconds = progress_finish(&p, NULL);
    free(idx); free(ok); free(all);
    ft_tape_free(tp);
    m->training = was_training;
    return r;
}
