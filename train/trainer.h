/* Epoch loop for classifiers, plain or adversarial.
 *
 * Adversarial training replaces each clean batch by its adversarial version (FGSM with random
 * start, or PGD), generated with the model in training mode and the parameters frozen, then
 * takes the usual step on it ("fast" adversarial training: adversarial images only). */
#ifndef FINCH_TRAINER_H
#define FINCH_TRAINER_H

#include <cjson/cJSON.h>
#include "attack/attack.h"
#include "data/loader.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ADV_NONE, ADV_FGSM_RS, ADV_PGD } AdvKind;

typedef struct {
    int epochs, batch;
    uint64_t seed;
    bool quiet;
    AdvKind adv;
    StepAttack attack;     /* used when adv != ADV_NONE */
    Schedule schedule;
    int limit;             /* train on the first `limit` samples only (0: all) */
    int workers;           /* loader threads (0: batches are assembled on the training thread) */
    const AugmentConfig *augment;   /* online augmentation (NULL: none) */
    const int32_t *subset;          /* train on these dataset indices only (NULL: all) */
    int n_subset;
    /* The training loss (NULL: model_loss, the model's own). b: the batch x and y came from (its
     * labels and dataset indices on the host). */
    Tensor *(*loss)(Model *m, Tape *tp, Tensor *x, Tensor *y, const Batch *b, Tensor **logits, void *ctx);
    void *loss_ctx;
    const char *stage;     /* the progress label ("epoch" when NULL) */
    double bucket_mib;     /* data-parallel: gradients are summed across processes in buckets of this size (0: 25) */
    int first_epoch;       /* shown as 1 in the progress label */
} TrainOpts;

/* How far an epoch has gone: its batches done (of `batch` samples) and their running sums, and
 * the position of the adversarial examples' random stream. A stopped epoch's state is kept in
 * the checkpoint, and train_epoch continues from it as if it had never stopped. */
typedef struct {
    int batches, batch;
    int64_t correct, seen;
    double loss_sum;
    uint64_t attack_counter;
} EpochState;

typedef struct {
    double loss, acc, seconds, images_per_s;
    int images;
    bool stopped;          /* ended early by ft_stop_requested(): the epoch is incomplete */
    EpochState state;      /* where it ended */
} EpochStats;

/* The loader train_epoch wants for ds: t's batch, seed, limit, workers and augmentation, shuffled,
 * the last partial batch dropped, its batches pinned when the model lives on dev = FT_CUDA. */
Loader *train_loader_new(const Dataset *ds, const TrainOpts *t, Device dev);
/* One epoch from L, whose order and augmentation are drawn from (seed, epoch), from its start or
 * (from != NULL) where a stopped run left it. Under several processes (dist/dist.h) each takes its
 * share of every batch (L from train_loader_new is sharded), the gradients are averaged across
 * them while the backward runs, the epoch's counts and losses are the whole batches', a stop is
 * agreed on after a step, and rank 0's parameters (batch norm's statistics too) are every
 * process's at the epoch's start and end. Losses are recorded per step into step_losses (may
 * be NULL; room for one per batch). Stops between batches when ft_stop_requested()
 * (stats.stopped, stats.state saying where). */
EpochStats train_epoch(Model *m, Optimizer *o, Loader *L, const TrainOpts *t, int epoch, const EpochState *from,
                       float *step_losses);
/* A stopped epoch's state as JSON, for a checkpoint's free-form state, and back: -1 with
 * ft_last_error() (naming `where`) when j is not one, or is not for an epoch of `batches` batches of
 * `batch` samples (--batch or --limit changed on resume). */
cJSON *epoch_state_json(const EpochState *s);
int epoch_state_parse(const cJSON *j, const char *where, int batches, int batch, EpochState *s);
/* "none" | "fgsm-rs" | "pgd" -> kind; -1 if unknown */
int adv_parse_kind(const char *s);

#ifdef __cplusplus
}
#endif

#endif
