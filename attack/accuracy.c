#include <stdio.h>
#include <stdlib.h>
#include "attack.h"
#include "core/progress.h"
#include "dist/dist.h"

Share share_of(int n, int batch) {
    Share s = { .rank = ft_dist_rank(), .stream = (uint64_t)ft_dist_rank() * 0x9E3779B97F4A7C15ull };
    ft_dist_share(n, batch, &s.lo, &s.hi);
    return s;
}

/* Under several processes each takes its share of the images (a contiguous range) and the counts
 * are summed. */
Accuracy clean_accuracy(Model *m, const Dataset *ds, int n, int batch, bool quiet) {
    if (n <= 0 || n > dataset_size(ds)) n = dataset_size(ds);
    Share sh = share_of(n, batch);
    int lo = sh.lo, hi = sh.hi, rank = sh.rank;
    Device dev = m->params.device;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    Accuracy r = { 0 };
    Progress p;
    progress_start(&p, "eval", hi - lo, quiet || rank > 0);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx), *pred = ft_xmalloc((size_t)batch * sizeof *pred);
    for (int start = lo; start < hi; start += batch) {
        int b = hi - start < batch ? hi - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(b), dev);
        for (int i = 0; i < b; i++) idx[i] = start + i;
        dataset_batch(ds, idx, b, x, y);
        ft_no_grad_begin(tp);
        model_predict(m->forward(m, tp, x), pred);
        ft_no_grad_end(tp);
        ft_tape_reset(tp);
        for (int i = 0; i < b; i++) r.correct += pred[i] == ft_i32(ds->labels)[start + i];
        r.total += b;
        char note[64];
        snprintf(note, sizeof note, "accuracy %.2f%%", 100.0 * r.correct / r.total);
        progress_update(&p, b, note);
        ft_tensor_free(x);
        ft_tensor_free(y);
    }
    r.seconds = progress_finish(&p, NULL);
    double sums[2] = { r.correct, r.total };
    ft_dist_allreduce_f64(sums, 2);
    r.correct = (int)sums[0];
    r.total = (int)sums[1];
    free(idx);
    free(pred);
    ft_tape_free(tp);
    m->training = was_training;
    return r;
}
