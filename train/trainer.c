#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"
#include "core/progress.h"
#include "core/fault.h"

int adv_parse_kind(const char *s) {
    if (strcmp(s, "none") == 0) return ADV_NONE;
    if (strcmp(s, "fgsm-rs") == 0) return ADV_FGSM_RS;
    if (strcmp(s, "pgd") == 0) return ADV_PGD;
    return -1;
}

Loader *train_loader_new(const Dataset *ds, const TrainOpts *t, Device dev) {
    LoaderConfig c = { .batch = t->batch, .seed = t->seed, .shuffle = true, .drop_last = true, .limit = t->limit,
                       .subset = t->subset, .n_subset = t->n_subset, .workers = t->workers, .augment = t->augment,
                       .pinned = dev == FT_CUDA };
    return loader_new(ds, &c);
}

EpochStats train_epoch(Model *m, Optimizer *o, Loader *L, const TrainOpts *t, int epoch, float *step_losses) {
    int steps = loader_epoch(L, epoch);
    FT_CHECK(steps > 0, "an epoch with no full batch of %d", t->batch);
    Device dev = m->params.device;
    Rng rng = { t->seed * 1000003u + (uint64_t)epoch, 1ull << 48 };   /* attack starts: apart from the shuffle's draws */
    Tensor *x = NULL, *y = NULL, *xa = NULL;
    Tape *tp = ft_tape_new(dev);
    int32_t *pred = ft_xmalloc((size_t)t->batch * sizeof *pred);
    optim_scale_lr(o, schedule_factor(&t->schedule, epoch));
    m->training = true;

    char label[48];
    snprintf(label, sizeof label, "%s %d/%d", t->stage ? t->stage : "epoch", epoch - t->first_epoch + 1, t->epochs);
    Progress p;
    progress_start(&p, label, (int64_t)steps * t->batch, t->quiet);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    int done = 0;
    bool stopped = false;
    for (Batch *b; (b = loader_next(L)); ) {
        ft_fault_point("batch");
        if (ft_stop_requested()) {
            loader_release(L, b);
            stopped = true;
            break;
        }
        if (!x) {
            x = ft_tensor_new(FT_F32, b->images->shape, dev);
            y = ft_tensor_new(FT_I32, SHAPE(b->n), dev);
            if (t->adv != ADV_NONE) xa = ft_tensor_new(FT_F32, b->images->shape, dev);
        }
        batch_to_device(b, x, y);
        Tensor *input = x;
        if (xa) { attack_steps(m, tp, x, y, &t->attack, &rng, xa, false); input = xa; }
        params_zero_grad(&m->params);
        Tensor *logits;
        Tensor *loss = t->loss ? t->loss(m, tp, input, y, b, &logits, t->loss_ctx)
                               : model_loss(m, tp, input, y, &logits);
        ft_backward(tp, loss);
        optim_step(o);
        double l = ft_item(loss);
        if (step_losses) step_losses[b->number] = (float)l;
        loss_sum += l;
        model_predict(logits, pred);
        for (int i = 0; i < b->n; i++) correct += pred[i] == ft_i32(b->labels)[i];
        seen += b->n;
        done++;
        loader_release(L, b);
        ft_tape_reset(tp);
        char note[64];
        snprintf(note, sizeof note, "loss %.4f  train acc %.1f%%", loss_sum / done,
                 100.0 * (double)correct / (double)seen);
        progress_update(&p, t->batch, note);
    }
    EpochStats e = { done ? loss_sum / done : 0, seen ? (double)correct / (double)seen : 0, 0, 0, (int)seen, stopped };
    char note[64];
    snprintf(note, sizeof note, "loss %.4f  train acc %.1f%%", e.loss, 100 * e.acc);
    e.seconds = progress_finish(&p, note);
    e.images_per_s = e.images / (e.seconds > 0 ? e.seconds : 1);
    free(pred);
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    ft_tape_free(tp);
    return e;
}
