/* finch train for prototype networks: the recipe, its overrides, the validation split, the
 * staged trainer, and the selected model's test accuracy. */
#ifndef FINCH_TRAIN_PROTO_H
#define FINCH_TRAIN_PROTO_H

#include "run.h"
#include "train/staged.h"

typedef struct {
    const char *recipe;       /* NULL: protopnet for protopnet-*, robust for ap- and ours-fr- */
    int epochs, warm, push_start, push_every, last_iters;   /* -1: the recipe's */
    double val_fraction;      /* of the plain training images, held out for model selection */
    double lr_features, lr_head, lr_last;   /* 0: the recipe's */
    const char *clst, *sep, *clst_att, *sep_att, *l1, *ce_att;   /* coefficient overrides (NULL: the recipe's) */
    const char *frozen_bn;    /* running | batch (NULL: the recipe's, running) */
    double att_dropout;       /* -1: the recipe's */
    int lr_step;              /* joint-stage step decay every this many epochs (0: the recipe's) */
} ProtoArgs;

/* The command-line flags of a ProtoArgs (18 entries). */
#define PROTO_ARGS(a) \
    { "recipe", ARG_STRING, &(a).recipe, 0, 0, "prototype networks: protopnet | robust (default: by the model's kind)" }, \
    { "warm-epochs", ARG_INT, &(a).warm, -1, 100000, "prototype networks: warm-up epochs (-1: the recipe's)" }, \
    { "push-start", ARG_INT, &(a).push_start, -1, 100000, "prototype networks: first push after this epoch (0-based; -1: the recipe's)" }, \
    { "push-every", ARG_INT, &(a).push_every, -1, 100000, "prototype networks: push when the epoch is a multiple of this (-1: the recipe's)" }, \
    { "last-iters", ARG_INT, &(a).last_iters, -1, 100000, "prototype networks: last-layer passes after a push (-1: the recipe's)" }, \
    { "lr-features", ARG_DOUBLE, &(a).lr_features, 0, 100, "prototype networks: joint-stage trunk learning rate (0: the recipe's 1e-4)" }, \
    { "lr-head", ARG_DOUBLE, &(a).lr_head, 0, 100, "prototype networks: add-on, prototype and attention learning rate (0: 3e-3)" }, \
    { "lr-last", ARG_DOUBLE, &(a).lr_last, 0, 100, "prototype networks: last-layer learning rate (0: 1e-4)" }, \
    { "val-fraction", ARG_DOUBLE, &(a).val_fraction, 0, 0.9, "prototype networks: training images held out for model selection" }, \
    { "clst", ARG_STRING, &(a).clst, 0, 0, "ProtoPNet cluster cost coefficient (default 0.8)" }, \
    { "sep", ARG_STRING, &(a).sep, 0, 0, "ProtoPNet separation cost coefficient (default -0.08)" }, \
    { "clst-att", ARG_STRING, &(a).clst_att, 0, 0, "Ours-FR attention-weighted cluster coefficient (default 100)" }, \
    { "sep-att", ARG_STRING, &(a).sep_att, 0, 0, "Ours-FR attention-weighted separation coefficient (default -0.08)" }, \
    { "l1", ARG_STRING, &(a).l1, 0, 0, "L1 on the last layer's off-class weights (default 1e-4)" }, \
    { "ce-att", ARG_STRING, &(a).ce_att, 0, 0, "Ours-FR: weight of the attention logits' cross entropy (default 1)" }, \
    { "frozen-bn", ARG_STRING, &(a).frozen_bn, 0, 0, "prototype networks, warm-up and last layer: batch norm on running | batch statistics " \
      "(default running; batch: ProtoPNet's code)" }, \
    { "lr-step", ARG_INT, &(a).lr_step, 0, 100000, "prototype networks: joint-stage learning rates times 0.1 every N joint " \
      "epochs (0: the recipe's, 5 for protopnet, 10 for robust)" }, \
    { "attention-dropout", ARG_DOUBLE, &(a).att_dropout, -1, 0.99, "Ours-A and Ours-FR: dropout before the class-specific " \
      "attention convolution (-1: the recipe's 0.8, the paper's)" }

/* The epochs a training of arch runs (a->epochs, else its recipe's); -1 when arch is not a
 * prototype network or the recipe is unknown. */
int proto_epochs(const ProtoArgs *a, const char *arch);
/* The recipe named by a (or the kind's) with a's overrides; false after printing what was wrong. */
bool proto_recipe(const ProtoArgs *a, ProtoNet *p, int epochs, Recipe *r);

/* A run's seeded hold-out of the plain training images: d.val_idx (validation), d.push_idx (the
 * rest, at most `limit` when > 0) and d.train_idx (the training images batches come from: the
 * push images, or their offline copies). d.dir and d.config are left NULL. */
typedef struct { int32_t *split, *train_idx; StagedData d; } ProtoSplit;
void proto_split(const Splits *data, double val_fraction, uint64_t seed, int limit, ProtoSplit *s);
void proto_split_free(ProtoSplit *s);

/* Trains m (a prototype network) on data with t's batch, seed, workers, augmentation and
 * adversarial options; writes out/ (the models around each push, push reports,
 * model.safetensors, checkpoint.safetensors after every epoch with `options`) and fills doc.
 * With resume, continues from out/checkpoint.safetensors. Returns the exit status. */
int train_protonet(const ProtoArgs *a, Model *m, const ModelConfig *mc, const Splits *data, const TrainOpts *t,
                   const char *out, const CheckpointInfo *options, bool resume, cJSON *doc);

#endif
