#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "staged.h"
#include "models/model_io.h"
#include "core/progress.h"
#include "dist/dist.h"
#include "dist/grad_sync.h"

bool recipe_get(const char *name, ProtoKind kind, Recipe *r) {
    Recipe base = { .name = name, .warm_epochs = 5, .lr_features = 1e-4, .lr_add_on = 3e-3, .lr_prototypes = 3e-3,
                    .lr_attention = 3e-3, .lr_last = 1e-4, .weight_decay = 1e-3, .gamma = 0.1,
                    .coefs = proto_coefs_default(kind), .frozen_bn_running = true,
                    .attention_dropout = 0.8 };
    if (strcmp(name, "protopnet") == 0) {
        base.epochs = 41; base.push_start = 10; base.push_every = 10; base.last_iters = 20; base.step_size = 5;
    } else if (strcmp(name, "robust") == 0) {
        base.epochs = 31; base.push_start = 30; base.push_every = 10; base.last_iters = 21; base.step_size = 10;
    } else {
        return false;
    }
    *r = base;
    return true;
}

const char *stage_name(Stage s) { return s == STAGE_WARM ? "warm" : s == STAGE_JOINT ? "joint" : "last layer"; }

/* optimizer groups, by parameter name prefix */
enum { G_FEATURES, G_ADD_ON, G_PROTOTYPES, G_ATTENTION, G_LAST, N_GROUPS };
static const char *const group_prefix[N_GROUPS] = { "features.", "add_on_layers.", "prototype_vectors", "attention.", "last_layer." };

void stage_set_trainable(ProtoNet *p, Stage s) {
    static const bool on[3][N_GROUPS] = {
        [STAGE_WARM] = { false, true, true, true, false },
        [STAGE_JOINT] = { true, true, true, true, false },
        [STAGE_LAST] = { false, false, false, false, true },
    };
    for (int g = 0; g < N_GROUPS; g++) params_set_requires_grad(&p->base.params, group_prefix[g], on[s][g]);
}

/* One Adam per stage, each group at the stage's rate (0 where the stage freezes it). */
static Optimizer *stage_optimizer(ParamSet *ps, const Recipe *r, Stage s) {
    double wd = r->weight_decay;
    double lr[N_GROUPS] = { s == STAGE_JOINT ? r->lr_features : 0, r->lr_add_on, r->lr_prototypes, r->lr_attention, r->lr_last };
    double decay[N_GROUPS] = { wd, wd, 0, wd, 0 };
    Optimizer *o = optim_new(OPT_ADAM, ps, lr[0], decay[0]);
    for (int g = 1; g < N_GROUPS; g++) optim_add_group(o, lr[g], decay[g]);
    return o;
}

double accuracy_on(Model *m, const Dataset *ds, const int32_t *idx, int n, int batch) {
    if (n <= 0) return 0;
    int lo, hi;   /* several processes: a share each, the counts summed */
    ft_dist_share(n, batch, &lo, &hi);
    bool was_training = m->training;
    m->training = false;
    Device dev = m->params.device;
    Tape *tp = ft_tape_new(dev);
    ft_no_grad_begin(tp);
    int32_t *pred = ft_xmalloc((size_t)batch * sizeof *pred);
    double correct = 0;
    for (int start = lo; start < hi; start += batch) {
        int b = hi - start < batch ? hi - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_new(tp, FT_F32, s), *y = ft_new(tp, FT_I32, SHAPE(b));
        dataset_batch(ds, idx + start, b, x, y);
        model_predict(m->forward(m, tp, x), pred);
        for (int i = 0; i < b; i++) correct += pred[i] == ft_i32(ds->labels)[idx[start + i]];
        ft_tape_reset(tp);
    }
    free(pred);
    ft_tape_free(tp);
    m->training = was_training;
    ft_dist_allreduce_f64(&correct, 1);
    return correct / n;
}

/* The last layer's inputs (ProtoOut.pooled) for every training image, computed once per
 * last-layer stage: row row_of[i] of rows [n_train, M] belongs to dataset image i. */
typedef struct { float *rows; int32_t *row_of; int M; } PooledCache;

typedef struct { ProtoCoefs c; ProtoLossParts sum; int steps; const PooledCache *cache; } LossCtx;

/* The batch's cached rows as a tensor [n, M] on the tape. */
static Tensor *cached_pooled(Tape *tp, const PooledCache *c, const Batch *b, DType dt) {
    float *h = ft_xmalloc((size_t)b->n * c->M * sizeof *h);
    for (int i = 0; i < b->n; i++) memcpy(h + (size_t)i * c->M, c->rows + (size_t)c->row_of[b->index[i]] * c->M, (size_t)c->M * sizeof *h);
    Tensor *t = ft_new(tp, dt, SHAPE(b->n, c->M));
    ft_from_floats(t, h, (int64_t)b->n * c->M);
    free(h);
    return t;
}

static Tensor *stage_loss(Model *m, Tape *tp, Tensor *x, Tensor *y, const Batch *b, Tensor **logits, void *ctx) {
    LossCtx *l = ctx;
    ProtoLossParts v;
    ProtoNet *p = protonet_of(m);
    Tensor *L = l->cache ? proto_last_layer_loss(p, tp, cached_pooled(tp, l->cache, b, m->params.dtype), y, l->c.l1, logits, &v)
                         : proto_loss(p, tp, x, y, ft_i32(b->labels), &l->c, logits, &v);
    double *sum = &l->sum.ce;
    const double *add = &v.ce;
    for (size_t i = 0; i < sizeof v / sizeof(double); i++) sum[i] += add[i];
    l->steps++;
    return L;
}

static void log_parts(cJSON *j, const LossCtx *l) {
    const ProtoLossParts *s = &l->sum;
    const char *names[] = { "ce", "ce_att", "cluster", "separation", "cluster_att", "separation_att", "l1" };
    const double *v = &s->ce;
    for (int i = 0; i < 7; i++) if (v[i] != 0) cJSON_AddNumberToObject(j, names[i], v[i] / (l->steps ? l->steps : 1));
}

typedef struct {
    ProtoNet *p;
    const StagedData *d;
    const TrainOpts *t;
    Loader *L;
    double best_val;
    int best_epoch;            /* of the model kept in model.safetensors */
    bool failed;
    EpochState resume_at;      /* where a stopped run's epoch is continued (batches 0: at its start) */
    ProtoLossParts resume_sum; /* and the sums of its loss's parts so far */
    ProtoLossParts stop_sum;   /* the sums of a stopped pass's loss parts */
    Optimizer *const *o;       /* the stages' optimizers and the log, for checkpoints (NULL: none are kept) */
    cJSON *log;
    int resume_last;           /* a run resumed inside a push's stage: LAST_* or the last-layer passes done */
} Run;

/* Where in the push and last-layer stage after an epoch a checkpoint was taken */
enum { LAST_NONE = -2, LAST_BEFORE_PUSH = -1 };

#define N_PARTS (int)(sizeof(ProtoLossParts) / sizeof(double))

/* A stopped epoch: where train_epoch left it, with the sums of the loss's parts. */
static cJSON *stopped_json(const EpochState *at, const ProtoLossParts *sum) {
    cJSON *j = epoch_state_json(at);
    cJSON_AddItemToObject(j, "loss_parts", cJSON_CreateDoubleArray(&sum->ce, N_PARTS));
    return j;
}

static int stopped_parse(Run *R, const cJSON *j, const char *path) {
    if (epoch_state_parse(j, path, loader_batches(R->L), R->t->batch, &R->resume_at) != 0) return -1;
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(j, "loss_parts"), *v;
    if (cJSON_GetArraySize(parts) != N_PARTS) return ft_error("%s: the stopped epoch's 'loss_parts' is not %d numbers", path, N_PARTS);
    double *sum = &R->resume_sum.ce;
    int i = 0;
    cJSON_ArrayForEach(v, parts) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return ft_error("%s: the stopped epoch's 'loss_parts' is not %d numbers", path, N_PARTS);
        sum[i++] = v->valuedouble;
    }
    return 0;
}

/* Trains one stage pass: epoch e of the run (continued where R->resume_at says when resumed), or
 * pass e of a last-layer stage (from the cached features when cache is not NULL). With
 * frozen_bn_running, the frozen-trunk stages see batch norm on its running statistics, and the
 * last-layer stage no dropout either: the features evaluation sees. */
static EpochStats pass(Run *R, Optimizer *o, Stage s, const Recipe *r, TrainOpts *to, int e, bool resumed,
                       const PooledCache *cache, cJSON *rec) {
    LossCtx l = { .c = r->coefs };
    if (resumed) { l.sum = R->resume_sum; l.steps = R->resume_at.batches; }
    if (s == STAGE_WARM) l.c.clst_att = l.c.sep_att = 0;
    if (s == STAGE_LAST) l = (LossCtx){ .c = { .l1 = r->coefs.l1 }, .cache = cache };
    stage_set_trainable(R->p, s);
    to->loss = stage_loss;
    to->loss_ctx = &l;
    Model *m = &R->p->base;
    bool dropout_off = m->dropout_off;
    m->bn_frozen = s != STAGE_JOINT && r->frozen_bn_running;
    m->dropout_off = dropout_off || (s == STAGE_LAST && r->frozen_bn_running);
    ProtoLossParts before = l.sum;
    EpochStats st = train_epoch(m, o, R->L, to, e, resumed ? &R->resume_at : NULL, NULL);
    if (ft_dist_active()) {   /* this pass's sums over every process's share: the mean of theirs */
        double *sum = &l.sum.ce;
        const double *was = &before.ce;
        double pass_sum[N_PARTS];
        for (int i = 0; i < N_PARTS; i++) pass_sum[i] = sum[i] - was[i];
        ft_dist_allreduce_f64(pass_sum, N_PARTS);
        for (int i = 0; i < N_PARTS; i++) sum[i] = was[i] + pass_sum[i] / ft_dist_size();
    }
    m->bn_frozen = false;
    m->dropout_off = dropout_off;
    R->stop_sum = l.sum;
    cJSON_AddStringToObject(rec, "stage", stage_name(s));
    cJSON_AddNumberToObject(rec, "train_loss", st.loss);
    cJSON_AddNumberToObject(rec, "train_acc", st.acc);
    log_parts(rec, &l);
    return st;
}

/* Saves dir/name.safetensors, and model.safetensors too when val (>= 0) is the best so far (rank
 * 0 writes; every process keeps the selection). */
static void save(Run *R, const char *name, double val, int epoch) {
    char path[1100];
    bool writer = ft_dist_rank() == 0;
    snprintf(path, sizeof path, "%s/%s.safetensors", R->d->dir, name);
    if (writer && model_save(&R->p->base, R->d->config, path) != 0) R->failed = true;
    if (val < 0 || val < R->best_val) return;
    R->best_val = val;
    R->best_epoch = epoch;
    snprintf(path, sizeof path, "%s/model.safetensors", R->d->dir);
    if (writer && model_save(&R->p->base, R->d->config, path) != 0) R->failed = true;
}

static void checkpoint_path(const StagedData *d, char *buf, size_t n) { snprintf(buf, n, "%s/checkpoint.safetensors", d->dir); }

/* After epochs_done epochs (and at's batches of the next, when at is not NULL; or, with last not
 * LAST_NONE, that far into the push and last-layer stage after them): the model, the optimizers,
 * the selection so far and the log. */
static void checkpoint(Run *R, int epochs_done, const EpochState *at, int last) {
    if (!R->d->options || !R->log || R->failed || ft_dist_rank() > 0) return;
    CheckpointInfo *info = ft_xmalloc(sizeof *info);
    *info = *R->d->options;
    info->epochs_done = epochs_done;
    cJSON *state = cJSON_CreateObject();
    cJSON_AddNumberToObject(state, "best_val", R->best_val);
    cJSON_AddNumberToObject(state, "best_epoch", R->best_epoch);
    cJSON_AddItemToObject(state, "epochs", cJSON_Duplicate(R->log, true));
    if (at && at->batches) cJSON_AddItemToObject(state, "stopped_epoch", stopped_json(at, &R->stop_sum));
    if (last != LAST_NONE) cJSON_AddNumberToObject(state, "last_layer_passes_done", last);
    info->state = cJSON_PrintUnformatted(state);
    char path[1100];
    checkpoint_path(R->d, path, sizeof path);
    if (checkpoint_save_n(path, &R->p->base, R->o, 3, info) != 0) R->failed = true;
    cJSON_Delete(state);
    checkpoint_info_free(info);
    free(info);
}

/* Fills c with the pooled similarities of every training image, computed in eval mode, when the
 * last-layer stage would see exactly those in every pass: batch norm on running statistics, no
 * online augmentation, no adversarial examples, and at most STAGE_CACHE_BYTES of them. Each pass
 * then costs a [b, M] x [M, K] product per step instead of a forward through the trunk. */
static bool cache_pooled(Run *R, const Recipe *r, PooledCache *c) {
    const StagedData *d = R->d;
    ProtoNet *p = R->p;
    Model *m = &p->base;
    if (r->no_feature_cache || !r->frozen_bn_running || R->t->adv != ADV_NONE || R->t->augment || r->last_iters < 2 ||
        (int64_t)d->n_train * p->n_protos * (int64_t)sizeof(float) > STAGE_CACHE_BYTES)
        return false;
    int M = p->n_protos, batch = R->t->batch, N = dataset_size(d->train);
    *c = (PooledCache){ ft_xmalloc((size_t)d->n_train * M * sizeof(float)), ft_xmalloc((size_t)N * sizeof(int32_t)), M };
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(m->params.device);
    ft_no_grad_begin(tp);
    Progress pg;
    progress_start(&pg, "last-layer features", d->n_train, R->t->quiet);
    for (int start = 0; start < d->n_train; start += batch) {
        int b = d->n_train - start < batch ? d->n_train - start : batch;
        Shape s = d->train->images->shape;
        s.d[0] = b;
        Tensor *x = ft_new(tp, FT_F32, s), *y = ft_new(tp, FT_I32, SHAPE(b));
        dataset_batch(d->train, d->train_idx + start, b, x, y);
        ProtoOut o;
        protonet_forward(p, tp, x, &o);
        ft_to_floats(o.pooled, c->rows + (size_t)start * M, (int64_t)b * M);
        ft_tape_reset(tp);
        progress_update(&pg, b, NULL);
    }
    progress_finish(&pg, NULL);
    ft_tape_free(tp);
    m->training = was_training;
    for (int i = 0; i < d->n_train; i++) c->row_of[d->train_idx[i]] = i;
    return true;
}

/* Passes from .. r->last_iters - 1 of last-layer-only training (shuffles of epochs first + from,
 * ...), one record each in passes, each checkpointed as a part of the stage after epochs_done
 * epochs, with the validation accuracy after it; returns the validation accuracy after the last. */
static double tune_last(Run *R, Optimizer *o_last, const Recipe *r, int first, int from, int epochs_done, cJSON *passes) {
    TrainOpts to = *R->t;
    to.stage = "last layer";
    to.epochs = r->last_iters;
    to.first_epoch = first;
    to.schedule = (Schedule){ .kind = SCHED_CONSTANT };
    PooledCache c;
    bool cached = cache_pooled(R, r, &c);
    double val = from < r->last_iters ? -1 : accuracy_on(&R->p->base, R->d->plain, R->d->val_idx, R->d->n_val, R->t->batch);
    for (int i = from; i < r->last_iters && !R->failed; i++) {
        cJSON *one = cJSON_CreateObject();
        cJSON_AddItemToArray(passes, one);
        if (pass(R, o_last, STAGE_LAST, r, &to, first + i, false, cached ? &c : NULL, one).stopped) {
            const char *sig = ft_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT";
            if (R->log)   /* the checkpoint after the push or the pass before holds the run */
                ft_error("stopped by %s in the last-layer stage after epoch %d, in its pass %d of %d; %s/checkpoint.safetensors "
                         "holds the run up to the pass before: --resume continues from it", sig, epochs_done, i + 1,
                         r->last_iters, R->d->dir);
            else
                ft_error("stopped by %s in pass %d of %d of the last-layer stage", sig, i + 1, r->last_iters);
            R->failed = true;
        }
        cJSON_AddBoolToObject(one, "cached_features", cached);
        if (R->failed) break;   /* stopped in this pass: no accuracy for half a pass */
        val = accuracy_on(&R->p->base, R->d->plain, R->d->val_idx, R->d->n_val, R->t->batch);
        if (R->d->n_val) {   /* how far the passes still move it */
            cJSON_AddNumberToObject(one, "val_acc", val);
            if (!R->t->quiet) printf("last layer %d/%d: validation accuracy %.2f%%\n", i + 1, r->last_iters, 100 * val);
        }
        checkpoint(R, epochs_done, NULL, i + 1);
    }
    if (cached) { free(c.rows); free(c.row_of); }
    return val;
}

/* The push after epoch e: its files and report, the accuracy after it, a checkpoint. Returns the
 * last-layer passes done (0). */
static int push(Run *R, int e, cJSON *rec) {
    ProtoNet *p = R->p;
    const StagedData *d = R->d;
    char name[64], dir[1100];
    snprintf(name, sizeof name, "epoch-%d-nopush", e + 1);
    save(R, name, -1, 0);
    PushRecord *pr = ft_xmalloc((size_t)p->n_protos * sizeof *pr);
    push_prototypes(p, d->plain, d->push_idx, d->n_push, R->t->batch, pr, R->t->quiet);
    snprintf(dir, sizeof dir, "%s/push-epoch-%d", d->dir, e + 1);
    if (ft_dist_rank() == 0 && push_report(p, d->plain, pr, dir) != 0) R->failed = true;
    free(pr);
    snprintf(name, sizeof name, "epoch-%d-push", e + 1);
    save(R, name, -1, 0);
    cJSON_AddNumberToObject(rec, "val_acc_after_push", accuracy_on(&p->base, d->plain, d->val_idx, d->n_val, R->t->batch));
    cJSON_AddArrayToObject(rec, "last_layer");
    checkpoint(R, e + 1, NULL, 0);
    return 0;
}

/* Push after epoch e, then the last-layer stage (or its passes from `from` on, when the push is
 * done); each step checkpointed and recorded in rec. */
static void push_and_tune(Run *R, Optimizer *o_last, const Recipe *r, int e, int from, cJSON *rec) {
    char name[64];
    if (from == LAST_BEFORE_PUSH) from = push(R, e, rec);
    double val = tune_last(R, o_last, r, 100000 * (e + 1), from, e + 1, cJSON_GetObjectItemCaseSensitive(rec, "last_layer"));
    if (R->failed) return;
    cJSON_AddNumberToObject(rec, "val_acc_after_last_layer", val);
    snprintf(name, sizeof name, "epoch-%d-last", e + 1);
    save(R, name, R->d->n_val ? val : 0, e + 1);
}

static Loader *stage_loader(const StagedData *d, const TrainOpts *t, int epochs, Device dev) {
    TrainOpts to = *t;
    to.epochs = epochs;
    to.subset = d->train_idx;
    to.n_subset = d->n_train;
    return train_loader_new(d->train, &to, dev);
}

double staged_last_layer(ProtoNet *p, const StagedData *d, const Recipe *r, const TrainOpts *t, cJSON *passes) {
    ParamSet *ps = &p->base.params;
    for (int g = 0; g < N_GROUPS; g++) params_set_group(ps, group_prefix[g], g);
    Optimizer *o = stage_optimizer(ps, r, STAGE_LAST);
    Run R = { .p = p, .d = d, .t = t, .L = stage_loader(d, t, r->last_iters, ps->device), .best_val = -1, .resume_last = LAST_NONE };
    double val = tune_last(&R, o, r, 0, 0, 0, passes);
    loader_free(R.L);
    optim_free(o);
    stage_set_trainable(p, STAGE_JOINT);
    params_set_requires_grad(ps, "last_layer.", true);
    return val;
}


/* Everything checkpoint() kept, back; the log's records appended to log. Returns the epochs done,
 * or -1 with ft_last_error(). */
static int restore(Run *R) {
    char path[1100];
    checkpoint_path(R->d, path, sizeof path);
    CheckpointInfo *info = ft_xmalloc(sizeof *info);
    int done = -1;
    if (checkpoint_load_n(path, &R->p->base, R->o, 3, info) == 0) {
        cJSON *state = cJSON_Parse(info->state ? info->state : "");
        cJSON *best = cJSON_GetObjectItemCaseSensitive(state, "best_val"), *epochs = cJSON_GetObjectItemCaseSensitive(state, "epochs");
        if (!cJSON_IsNumber(best) || !cJSON_IsArray(epochs)) {
            ft_error("%s: no staged-training state in the checkpoint (not a prototype network's run?)", path);
        } else {
            R->best_val = best->valuedouble;
            R->best_epoch = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(state, "best_epoch"));
            cJSON *e;
            cJSON_ArrayForEach(e, epochs) cJSON_AddItemToArray(R->log, cJSON_Duplicate(e, true));
            const cJSON *stopped = cJSON_GetObjectItemCaseSensitive(state, "stopped_epoch");
            done = stopped && stopped_parse(R, stopped, path) != 0 ? -1 : info->epochs_done;
            const cJSON *last = cJSON_GetObjectItemCaseSensitive(state, "last_layer_passes_done");
            if (last && done > 0) {
                R->resume_last = (int)cJSON_GetNumberValue(last);
                const cJSON *rec = cJSON_GetArrayItem(R->log, cJSON_GetArraySize(R->log) - 1);
                bool ok = cJSON_IsNumber(last) && R->resume_last >= LAST_BEFORE_PUSH && R->resume_last == last->valuedouble &&
                          cJSON_IsObject(rec) && (R->resume_last == LAST_BEFORE_PUSH ||
                                                  cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "last_layer")) == R->resume_last);
                if (!ok) done = ft_error("%s: 'last_layer_passes_done' does not match the log of epoch %d", path, done);
            }
        }
        cJSON_Delete(state);
        checkpoint_info_free(info);
    }
    free(info);
    return done;
}

double staged_train(ProtoNet *p, const StagedData *d, const Recipe *r, const TrainOpts *t, cJSON *doc) {
    ParamSet *ps = &p->base.params;
    for (int g = 0; g < N_GROUPS; g++) params_set_group(ps, group_prefix[g], g);
    Optimizer *o[3] = { stage_optimizer(ps, r, STAGE_WARM), stage_optimizer(ps, r, STAGE_JOINT), stage_optimizer(ps, r, STAGE_LAST) };
    TrainOpts to = *t;
    to.epochs = r->epochs;
    cJSON *log = cJSON_AddArrayToObject(doc, "epochs");
    Run R = { .p = p, .d = d, .t = t, .L = stage_loader(d, t, r->epochs, ps->device), .best_val = -1, .o = o, .log = log,
              .resume_last = LAST_NONE };
    p->att.dropout = r->attention_dropout;
    int first = d->resume ? restore(&R) : 0;
    if (first < 0) R.failed = true;
    else if (d->resume && !t->quiet && R.resume_at.batches)
        printf("resuming in epoch %d of %d, after its batch %d\n", first + 1, r->epochs, R.resume_at.batches);
    else if (d->resume && !t->quiet && R.resume_last == LAST_BEFORE_PUSH)
        printf("resuming after epoch %d of %d, at its push\n", first, r->epochs);
    else if (d->resume && !t->quiet && R.resume_last == 0)
        printf("resuming after epoch %d of %d, after its push\n", first, r->epochs);
    else if (d->resume && !t->quiet && R.resume_last != LAST_NONE)
        printf("resuming after epoch %d of %d, after pass %d of its last-layer stage\n", first, r->epochs, R.resume_last);
    else if (d->resume && !t->quiet) printf("resuming after epoch %d of %d\n", first, r->epochs);
    if (!R.failed && R.resume_last != LAST_NONE) {   /* the rest of the push's stage after epoch `first` */
        push_and_tune(&R, o[STAGE_LAST], r, first - 1, R.resume_last, cJSON_GetArrayItem(log, cJSON_GetArraySize(log) - 1));
        checkpoint(&R, first, NULL, LAST_NONE);
    }
    for (int e = first; e < r->epochs && !R.failed; e++) {
        Stage s = e < r->warm_epochs ? STAGE_WARM : STAGE_JOINT;
        /* ProtoPNet steps its joint scheduler before each joint epoch: the k-th joint epoch (from 0)
         * runs at gamma^((k + 1) / step_size) */
        to.schedule = s == STAGE_WARM ? (Schedule){ .kind = SCHED_CONSTANT }
                                      : (Schedule){ .kind = SCHED_STEP, .step_size = r->step_size, .gamma = r->gamma,
                                                    .offset = 1 - r->warm_epochs };
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddItemToArray(log, rec);
        cJSON_AddNumberToObject(rec, "epoch", e + 1);
        EpochStats st = pass(&R, o[s], s, r, &to, e, e == first && R.resume_at.batches, NULL, rec);
        if (st.stopped) {   /* the checkpoint holds the run up to here */
            cJSON_Delete(cJSON_DetachItemFromArray(log, cJSON_GetArraySize(log) - 1));
            checkpoint(&R, e, &st.state, LAST_NONE);
            char where[48] = "at its start";
            if (st.state.batches) snprintf(where, sizeof where, "after its batch %d", st.state.batches);
            if (!R.failed)
                ft_error("stopped by %s during epoch %d %s; %s/checkpoint.safetensors holds the run up to there: "
                         "--resume continues from it", ft_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", e + 1, where, d->dir);
            R.failed = true;
            break;
        }
        double val = accuracy_on(&p->base, d->plain, d->val_idx, d->n_val, t->batch);
        cJSON_AddNumberToObject(rec, "val_acc", val);
        if (!t->quiet) printf("epoch %d/%d (%s): validation accuracy %.2f%%\n", e + 1, r->epochs, stage_name(s), 100 * val);
        if (!p->has_prototypes) save(&R, "last-epoch", d->n_val ? val : 0, e + 1);
        else if (e >= r->push_start && e % r->push_every == 0) {
            checkpoint(&R, e + 1, NULL, LAST_BEFORE_PUSH);
            push_and_tune(&R, o[STAGE_LAST], r, e, LAST_BEFORE_PUSH, rec);
        }
        checkpoint(&R, e + 1, NULL, LAST_NONE);
    }
    loader_free(R.L);
    for (int i = 0; i < 3; i++) optim_free(o[i]);
    stage_set_trainable(p, STAGE_JOINT);
    params_set_requires_grad(ps, "last_layer.", true);
    if (R.failed) return -1;
    if (R.best_val < 0) return ft_error("%s: no epoch ended in a push (push from epoch %d, every %d, in %d epochs)", p->arch,
                                        r->push_start + 1, r->push_every, r->epochs);
    cJSON *sel = cJSON_AddObjectToObject(doc, "selected");
    cJSON_AddNumberToObject(sel, "epoch", R.best_epoch);
    cJSON_AddNumberToObject(sel, "val_acc", R.best_val);
    char path[1100];
    snprintf(path, sizeof path, "push-epoch-%d", R.best_epoch);
    if (p->has_prototypes) cJSON_AddStringToObject(sel, "push_dir", path);
    snprintf(path, sizeof path, "%s/model.safetensors", d->dir);
    double failed = ft_dist_rank() == 0 && model_load_weights(&p->base, path, true, NULL) != 0;   /* rank 0 wrote it */
    ft_dist_allreduce_f64(&failed, 1);
    if (failed == 0 && params_broadcast(ps) != 0) failed = 1;
    if (failed != 0 && ft_dist_rank() > 0) ft_error("rank 0 could not read back the selected model %s", path);
    return failed == 0 ? R.best_val : -1;
}
