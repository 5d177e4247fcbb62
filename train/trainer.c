#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"
#include "core/progress.h"

int adv_parse_kind(const char *s) {
    if (strcmp(s, "none") == 0) return ADV_NONE;
    if (strcmp(s, "fgsm-rs") == 0) return ADV_FGSM_RS;
    if (strcmp(s, "pgd") == 0) return ADV_PGD;
    return -1;
}

EpochStats train_epoch(Model *m, Optimizer *o, const Dataset *ds, const TrainOpts *t, int epoch,
                       float *step_losses) {
    int n = t->limit > 0 && t->limit < dataset_size(ds) ? t->limit : dataset_size(ds);
    int steps = n / t->batch;
    FT_CHECK(steps > 0, "an epoch of %d samples has no full batch of %d", n, t->batch);
    Device dev = m->params.device;
    Rng rng = rng_new(t->seed * 1000003u + (uint64_t)epoch);
    int32_t *order = ft_xmalloc((size_t)n * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = i;
    rng_shuffle(&rng, order, n);

    Shape s = ds->images->shape;
    s.d[0] = t->batch;
    Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(t->batch), dev);
    Tensor *xa = t->adv != ADV_NONE ? ft_tensor_new(FT_F32, s, dev) : NULL;
    Tape *tp = ft_tape_new(dev);
    int32_t *pred = ft_xmalloc((size_t)t->batch * sizeof *pred), *labels = ft_xmalloc((size_t)t->batch * sizeof *labels);
    optim_scale_lr(o, schedule_factor(&t->schedule, epoch));
    m->training = true;

    char label[32];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, t->epochs);
    Progress p;
    progress_start(&p, label, (int64_t)steps * t->batch, t->quiet);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int st = 0; st < steps; st++) {
        const int32_t *idx = order + (int64_t)st * t->batch;
        dataset_batch(ds, idx, t->batch, x, y);
        for (int i = 0; i < t->batch; i++) labels[i] = ft_i32(ds->labels)[idx[i]];
        Tensor *input = x;
        if (xa) { attack_linf(m, tp, x, y, &t->attack, &rng, xa, false); input = xa; }
        params_zero_grad(&m->params);
        Tensor *logits = m->forward(m, tp, input);
        Tensor *loss = ft_cross_entropy(tp, logits, y);
        ft_backward(tp, loss);
        optim_step(o);
        double l = ft_item(loss);
        if (step_losses) step_losses[st] = (float)l;
        loss_sum += l;
        model_predict(logits, pred);
        for (int i = 0; i < t->batch; i++) correct += pred[i] == labels[i];
        ft_tape_reset(tp);
        char note[64];
        snprintf(note, sizeof note, "loss %.4f  train acc %.1f%%", loss_sum / (st + 1),
                 100.0 * (double)correct / ((double)(st + 1) * t->batch));
        progress_update(&p, t->batch, note);
    }
    EpochStats e = { loss_sum / steps, (double)correct / ((double)steps * t->batch), 0, 0, steps * t->batch };
    char note[64];
    snprintf(note, sizeof note, "loss %.4f  train acc %.1f%%", e.loss, 100 * e.acc);
    e.seconds = progress_finish(&p, note);
    e.images_per_s = e.images / (e.seconds > 0 ? e.seconds : 1);
    free(order); free(pred); free(labels);
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    ft_tape_free(tp);
    return e;
}
