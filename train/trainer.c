#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "trainer.h"
#include "core/progress.h"
#include "core/fault.h"
#include "dist/dist.h"
#include "dist/grad_sync.h"

int adv_parse_kind(const char *s) {
    if (strcmp(s, "none") == 0) return ADV_NONE;
    if (strcmp(s, "fgsm-rs") == 0) return ADV_FGSM_RS;
    if (strcmp(s, "pgd") == 0) return ADV_PGD;
    return -1;
}

Loader *train_loader_new(const Dataset *ds, const TrainOpts *t, Device dev) {
    LoaderConfig c = { .batch = t->batch, .seed = t->seed, .shuffle = true, .drop_last = true, .limit = t->limit,
                       .subset = t->subset, .n_subset = t->n_subset, .workers = t->workers, .augment = t->augment,
                       .pinned = dev == FT_CUDA, .shard = ft_dist_rank(), .shards = ft_dist_size() };
    return loader_new(ds, &c);
}

EpochStats train_epoch(Model *m, Optimizer *o, Loader *L, const TrainOpts *t, int epoch, const EpochState *from,
                       float *step_losses) {
    EpochState st = from ? *from : (EpochState){ .attack_counter = 1ull << 48 };   /* attack starts: apart from the shuffle's draws */
    st.batch = t->batch;
    int steps = loader_epoch_at(L, epoch, st.batches);
    FT_CHECK(steps > 0, "an epoch with no full batch of %d", t->batch);
    FT_CHECK(st.batches < steps, "epoch %d resumed after batch %d of %d", epoch + 1, st.batches, steps);
    Device dev = m->params.device;
    /* process r > 0 of several draws its random starts from a stream of its own */
    Rng rng = { (t->seed * 1000003u + (uint64_t)epoch) ^ ((uint64_t)ft_dist_rank() * 0x9E3779B97F4A7C15ull), st.attack_counter };
    Tensor *x = NULL, *y = NULL, *xa = NULL;
    Tape *tp = ft_tape_new(dev);
    int32_t *pred = ft_xmalloc((size_t)t->batch * sizeof *pred);
    optim_scale_lr(o, schedule_factor(&t->schedule, epoch));
    m->training = true;
    /* Several processes: each takes its share of every batch, the gradients are averaged, and
     * every process starts the epoch from rank 0's parameters. */
    int ranks = ft_dist_size(), rank = ft_dist_rank();
    bool dist = ranks > 1;
    GradSync *sync = dist ? grad_sync_new(&m->params, t->bucket_mib) : NULL;
    if (dist) {
        FT_CHECK(params_broadcast(&m->params) == 0, "%s", ft_last_error());
        m->rng.counter += (uint64_t)rank << 40;   /* each process its own dropout masks */
        if (rank == 0 && !t->quiet && epoch == t->first_epoch)
            fprintf(stderr, "data-parallel: %d processes (%s), batches of %d = %d x %d, gradients in %d bucket(s)\n", ranks,
                    ft_dist_engine(), t->batch, ranks, t->batch / ranks, grad_sync_buckets(sync));
    }

    char label[48];
    snprintf(label, sizeof label, "%s %d/%d", t->stage ? t->stage : "epoch", epoch - t->first_epoch + 1, t->epochs);
    Progress p;
    progress_start(&p, label, (int64_t)(steps - st.batches) * t->batch, t->quiet || rank > 0);
    bool stopped = false;
    for (Batch *b; (b = loader_next(L)); ) {
        ft_fault_point("batch");
        if (!dist && ft_stop_requested()) {   /* several processes agree on a stop after the step */
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
        FT_CHECK((sync ? grad_sync_backward(sync, tp, loss) : ft_backward(tp, loss)) == 0, "%s", ft_last_error());
        optim_step(o);
        model_predict(logits, pred);
        double sums[3] = { ft_item(loss), 0, dist && ft_stop_requested() };   /* the mean loss, hits, a stop */
        for (int i = 0; i < b->n; i++) sums[1] += pred[i] == ft_i32(b->labels)[i];
        ft_dist_allreduce_f64(sums, 3);
        double l = sums[0] / ranks;
        if (step_losses) step_losses[b->number] = (float)l;
        st.loss_sum += l;
        st.correct += (int64_t)sums[1];
        st.seen += (int64_t)b->n * ranks;
        st.batches++;
        loader_release(L, b);
        ft_tape_reset(tp);
        char note[64];
        snprintf(note, sizeof note, "loss %.4f  train acc %.1f%%", st.loss_sum / st.batches,
                 100.0 * (double)st.correct / (double)st.seen);
        progress_update(&p, t->batch, note);
        if (sums[2] > 0 && st.batches < steps) { stopped = true; break; }
    }
    st.attack_counter = rng.counter;
    if (dist) FT_CHECK(params_broadcast(&m->params) == 0, "%s", ft_last_error());   /* batch norm's statistics too: one model */
    EpochStats e = { st.batches ? st.loss_sum / st.batches : 0, st.seen ? (double)st.correct / (double)st.seen : 0, 0, 0,
                     (int)st.seen, stopped, st };
    char note[64];
    snprintf(note, sizeof note, "loss %.4f  train acc %.1f%%", e.loss, 100 * e.acc);
    e.seconds = progress_finish(&p, note);
    if (sync && rank == 0 && !t->quiet)
        fprintf(stderr, "data-parallel: %.2f s of the epoch's %.2f s waiting for gradient sums after the backward (%.1f%%)\n",
                grad_sync_wait_seconds(sync), e.seconds, 100 * grad_sync_wait_seconds(sync) / (e.seconds > 0 ? e.seconds : 1));
    e.images_per_s = (e.images - (from ? (int)from->seen : 0)) / (e.seconds > 0 ? e.seconds : 1);
    free(pred);
    grad_sync_free(sync);
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    ft_tape_free(tp);
    return e;
}

cJSON *epoch_state_json(const EpochState *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "batches", s->batches);
    cJSON_AddNumberToObject(j, "batch", s->batch);
    cJSON_AddNumberToObject(j, "correct", (double)s->correct);
    cJSON_AddNumberToObject(j, "seen", (double)s->seen);
    cJSON_AddNumberToObject(j, "loss_sum", s->loss_sum);
    char counter[24];   /* a double cannot hold every 64-bit counter */
    snprintf(counter, sizeof counter, "%llu", (unsigned long long)s->attack_counter);
    cJSON_AddStringToObject(j, "attack_counter", counter);
    return j;
}

int epoch_state_parse(const cJSON *j, const char *where, int batches, int batch, EpochState *s) {
    const char *keys[] = { "batches", "batch", "correct", "seen", "loss_sum" };
    double v[5];
    for (int i = 0; i < 5; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) return ft_error("%s: the stopped epoch's '%s' is not a number", where, keys[i]);
        v[i] = x->valuedouble;
    }
    const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "attack_counter"));
    char *end = NULL;
    unsigned long long counter = c ? strtoull(c, &end, 10) : 0;
    if (!c || end == c || *end) return ft_error("%s: the stopped epoch's 'attack_counter' is not a counter", where);
    if (v[1] != batch)
        return ft_error("%s: the run stopped inside an epoch of batches of %g; resume it with that --batch, not %d", where, v[1], batch);
    if (v[0] < 1 || v[0] >= batches || v[0] != (int)v[0])
        return ft_error("%s: the run stopped after batch %g of an epoch; this run's epochs have %d batches (--limit changed?)", where,
                        v[0], batches);
    if (v[3] != v[0] * batch || v[2] < 0 || v[2] > v[3] || v[2] != (int64_t)v[2])
        return ft_error("%s: the stopped epoch's counts do not add up (%g correct of %g seen in %g batches)", where, v[2], v[3], v[0]);
    *s = (EpochState){ (int)v[0], batch, (int64_t)v[2], (int64_t)v[3], v[4], counter };
    return 0;
}
