#include <stdio.h>
#include <stdlib.h>
#include "attack.h"
#include "core/progress.h"

static int count_correct(Model *m, Tape *tp, Tensor *x, const int32_t *labels, int n) {
    ft_no_grad_begin(tp);
    int32_t *pred = ft_xmalloc((size_t)n * sizeof *pred);
    model_predict(m->forward(m, tp, x), pred);
    int c = 0;
    for (int i = 0; i < n; i++) c += pred[i] == labels[i];
    free(pred);
    ft_no_grad_end(tp);
    ft_tape_reset(tp);
    return c;
}

RobustResult robust_accuracy(Model *m, const Dataset *ds, int n, int batch, const StepAttack *a,
                             uint64_t seed, bool quiet) {
    if (n <= 0 || n > dataset_size(ds)) n = dataset_size(ds);
    Device dev = m->params.device;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    Rng rng = rng_new(seed);
    RobustResult r = { 0 };
    Progress p;
    progress_start(&p, a ? "attack" : "eval", n, quiet);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx);
    for (int start = 0; start < n; start += batch) {
        int b = n - start < batch ? n - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(b), dev);
        for (int i = 0; i < b; i++) idx[i] = start + i;
        dataset_batch(ds, idx, b, x, y);
        const int32_t *labels = ft_i32(ds->labels) + start;
        r.clean_correct += count_correct(m, tp, x, labels, b);
        if (a) {
            Tensor *xa = ft_tensor_new(FT_F32, s, dev);
            attack_steps(m, tp, x, y, a, &rng, xa, true);
            r.adv_correct += count_correct(m, tp, xa, labels, b);
            ft_tensor_free(xa);
        }
        r.total += b;
        char note[96];
        if (a) snprintf(note, sizeof note, "clean %.1f%%  robust %.1f%%", 100.0 * r.clean_correct / r.total, 100.0 * r.adv_correct / r.total);
        else snprintf(note, sizeof note, "accuracy %.2f%%", 100.0 * r.clean_correct / r.total);
        progress_update(&p, b, note);
        ft_tensor_free(x);
        ft_tensor_free(y);
    }
    r.seconds = progress_finish(&p, NULL);
    free(idx);
    ft_tape_free(tp);
    m->training = was_training;
    return r;
}
