/* The staged training of prototype networks (ProtoPNet; Nakka & Salzmann's robust variant).
 *
 *   warm-up   the first warm_epochs: only the add-on layers, the prototypes and the attention
 *             module train (Adam); the attention-weighted costs are off
 *   joint     then everything but the last layer (Adam, per-group learning rates, weight decay on
 *             the convolutions, step decay of the learning rate)
 *   push      after epoch e (0-based) when e >= push_start and e % push_every == 0: checkpoint,
 *             project the prototypes, checkpoint, then last_iters passes of last-layer-only
 *             optimisation (Adam), checkpoint; when batch norm stays on running statistics and
 *             the images are fixed (no online augmentation, no adversarial training), the last
 *             layer's inputs are computed once and every pass reads them (STAGE_CACHE_BYTES at most)
 * The last layer keeps its +1 / -0.5 initialisation until the first push. Each stage has its own
 * optimizer, kept across the run, as ProtoPNet does. The model is selected by its accuracy on a
 * validation split of the training images (after each last-layer stage; every epoch for Ours-A,
 * which has no prototypes), never on the test set. */
#ifndef FINCH_STAGED_H
#define FINCH_STAGED_H

#include <cjson/cJSON.h>
#include "trainer.h"
#include "proto_loss.h"
#include "push.h"
#include "checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STAGE_CACHE_BYTES (1ll << 30)

typedef struct {
    const char *name;
    int epochs, warm_epochs, push_start, push_every, last_iters;
    double lr_features, lr_add_on, lr_prototypes, lr_attention, lr_last, weight_decay;
    int step_size;             /* joint stage: lr times gamma every step_size epochs */
    double gamma;
    ProtoCoefs coefs;
    /* warm-up and last layer, where the trunk is frozen: batch norm on its running statistics
     * (true, finch's default: these stages then train on exactly the features evaluation and
     * push see) or on the batch's, updating the running ones (false: ProtoPNet's code) */
    bool frozen_bn_running;
    double attention_dropout;  /* dropout before the attention's class-specific convolution (the paper's 0.8) */
    bool no_feature_cache;     /* the last-layer stage through the whole network every pass, even
                                * when cached features would be the same (for tests and timing) */
} Recipe;

/* "protopnet": 5 warm epochs, push every 10 from 10, 20 last-layer passes, step decay every 5
 * (41 epochs, so the run ends on a push); "robust": 31 epochs, 5 warm, push at 30, 21 last-layer
 * passes, step decay every 10. Learning rates (both): features 1e-4, add-on / prototypes /
 * attention 3e-3, last layer 1e-4, weight decay 1e-3; the kind's loss coefficients; batch norm
 * on running statistics in the frozen-trunk stages; attention dropout 0.8. false for another name. */
bool recipe_get(const char *name, ProtoKind kind, Recipe *r);

typedef enum { STAGE_WARM, STAGE_JOINT, STAGE_LAST } Stage;
const char *stage_name(Stage s);
/* Marks the stage's parameters trainable and freezes the rest. */
void stage_set_trainable(ProtoNet *p, Stage s);

typedef struct {
    const Dataset *train;         /* where batches come from: the offline copies, or the plain images */
    const int32_t *train_idx;     /* into train */
    int n_train;
    const Dataset *plain;         /* the un-augmented training images */
    const int32_t *push_idx, *val_idx;   /* into plain: the push set (never validation images), validation */
    int n_push, n_val;
    const char *dir;              /* run directory */
    const ModelConfig *config;    /* for the saved models' metadata */
    /* when not NULL, dir/checkpoint.safetensors is written after every epoch with these options
     * (the model, the three optimizers, the selection so far and the log) */
    const CheckpointInfo *options;
    bool resume;                  /* continue from dir/checkpoint.safetensors */
} StagedData;

/* Runs the recipe (from the checkpoint's epoch when d->resume; on the CPU the result is bit for
 * bit the uninterrupted run's). Into doc (a JSON object): "epochs", one record per epoch and push, and
 * "selected" {epoch, val_acc, push_dir (relative to dir)}. Leaves the selected model in
 * dir/model.safetensors (and in p). Returns its validation accuracy, or -1 with ft_last_error()
 * when a file cannot be written. */
double staged_train(ProtoNet *p, const StagedData *d, const Recipe *r, const TrainOpts *t, cJSON *doc);

/* The last-layer stage alone (after pruning): a new Adam at r->lr_last, r->last_iters passes over
 * d's training images with CE + r's L1, one record each into `passes` (a JSON array). Returns
 * the validation accuracy after them. */
double staged_last_layer(ProtoNet *p, const StagedData *d, const Recipe *r, const TrainOpts *t, cJSON *passes);

/* Accuracy of m (eval mode) on ds's images idx[0..n). */
double accuracy_on(Model *m, const Dataset *ds, const int32_t *idx, int n, int batch);

#ifdef __cplusplus
}
#endif

#endif
