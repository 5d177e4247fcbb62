/* Pieces shared by the subcommands: data loading, a training run, an attack run, reports. */
#ifndef FINCH_RUN_H
#define FINCH_RUN_H

#include <cjson/cJSON.h>
#include "cli.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "data/sources.h"
#include "attack/clever.h"

/* Where the images come from: --data fashion-mnist (from --data-dir, NULL: its standard place),
 * synthetic (data/synthetic.h: 4 classes, 28x28 grey, no files needed), cub:DIR or folder:DIR (DIR/split.txt when present) decoded now, or cub:FILE / folder:FILE, a
 * cache written by finch prepare. */
#define SYNTHETIC_TRAIN 8000
#define SYNTHETIC_TEST 2000
typedef struct {
    const char *data, *dir;
    int image_size;           /* 0: 224 when decoding, the cache's own size */
    bool full_image;          /* CUB: do not crop to the bounding boxes */
    const char *resize;       /* squash | center-crop */
    int max_image_side;       /* decoding: largest side (0: IMAGE_MAX_SIDE) */
} DataOpts;

#define MAX_IMAGE_SIDE_ARG(v) \
    { "max-image-side", ARG_INT, &(v), 0, 65535, "largest image decoded, in pixels a side; the area limit (64 megapixels " \
      "at the default 16384) grows with its square (0: the default)" }

/* The command-line flags of a DataOpts (7 entries). */
#define DATA_ARGS(d) \
    { "data", ARG_STRING, &(d).data, 0, 0, "fashion-mnist | synthetic | cub:DIR_OR_CACHE | folder:DIR_OR_CACHE" }, \
    { "data-dir", ARG_STRING, &(d).dir, 0, 0, "Fashion-MNIST directory (default: where the Debian package puts it)" }, \
    { "image-size", ARG_INT, &(d).image_size, 0, 4096, "cub: and folder: images resized to this (0: 224, or the cache's)" }, \
    { "full-image", ARG_FLAG, &(d).full_image, 0, 0, "CUB: whole images instead of their bounding boxes" }, \
    { "resize", ARG_STRING, &(d).resize, 0, 0, "squash (aspect not kept, as ProtoPNet) | center-crop" }, \
    MAX_IMAGE_SIDE_ARG((d).max_image_side)

/* The datasets d names; with want_train false only the test split is kept. Prints the error;
 * returns the exit status (0, 1 for a data problem, 2 for a bad flag). */
int run_load_data(const char *cmd, const DataOpts *d, bool want_train, Splits *out);
/* 0 when m takes ds's images; else prints why (naming --data) and returns 2. */
int run_check_input(const char *cmd, const Model *m, const Dataset *ds, const char *data);
/* What to train on: the offline augmented copies when the cache has them, else the plain images. */
static inline const Dataset *run_train_set(const Splits *s) { return s->augmented.images ? &s->augmented : &s->train; }

typedef struct {
    const char *optim;        /* sgd | adam | adamw */
    double lr, weight_decay;
    const char *schedule;     /* constant | step | cosine */
} OptimConfig;

/* A run's checkpoint: written after every epoch, and where SIGINT or SIGTERM stops the run, to
 * `path` with `info`'s options; with `resume`, the model, the optimizer and the epoch (and the
 * batch, for a stopped run) are loaded from it first. */
typedef struct { const char *path; bool resume; CheckpointInfo info; } RunCheckpoint;

/* Trains until epoch t->epochs (from the checkpoint's epoch when resuming), evaluating clean test
 * accuracy after each epoch on eval_n test samples (0: all). Appends one object per epoch to
 * `epochs` (a JSON array); the checkpoint keeps them for a resume. ck may be NULL. Returns the
 * final test accuracy, or after printing what went wrong RUN_BAD_OPTION, RUN_FAILED (a checkpoint
 * that cannot be read or written) or RUN_STOPPED (SIGINT or SIGTERM, ft_stop_requested()). */
enum { RUN_BAD_OPTION = -1, RUN_FAILED = -2, RUN_STOPPED = -3 };
/* The exit status for each of them: 2, 1, and 128 + the signal (130 for SIGINT, as shells do). */
int run_exit_status(double result);
/* Says that training stopped in epoch (0-based) after `at`'s batches, and that the checkpoint
 * (NULL: none was written) holds the run up to there. */
void run_report_stop(const char *cmd, int epoch, const EpochState *at, const char *checkpoint);
double run_training(const char *cmd, Model *m, const Dataset *train, const Dataset *test, const TrainOpts *t,
                    const OptimConfig *oc, int eval_n, cJSON *epochs, RunCheckpoint *ck);

/* Where an attack run writes: a picture of one example per class (png), every adversarial
 * image with its index, label, target and predictions (save_adv, a safetensors file); NULL:
 * not written. model_file and attack_name go into save_adv's metadata. */
typedef struct { const char *png, *save_adv, *model_file, *attack_name; } RunAttackFiles;
/* Attacks the first n test samples (attack_run.c): the attack's settings and statistics into
 * `out` (a JSON object), and into *stats when not NULL. Returns 0, or 1 when save_adv could not
 * be written (a picture that cannot be written is only a warning). */
int run_attack(Model *m, const Dataset *test, int n, int batch, const AttackSpec *a, uint64_t seed,
               const RunAttackFiles *files, bool quiet, cJSON *out, AttackStats *stats);
/* An attack by name (fgsm | fgsm-rs | pgd | bim | ifgsm | mim | apgd-ce | apgd-dlr | apgd-t | square |
 * cw | ead) at eps, alpha and steps (0: 20, or 100 for APGD) under norm, untargeted; false for an
 * unknown name. */
bool run_attack_spec(const char *kind, double eps, double alpha, int steps, Norm norm, AttackSpec *a);
/* CLEVER (cmd_clever.c) on the first `limit` test images, target "top-K" | "untargeted" | a class,
 * into doc (settings, "images", "mean_score", "fallbacks", "seconds"); returns the mean of the
 * images' scores. *n_images, *fallbacks and *fits: the images, the fits that fell back to the
 * largest sample, and all fits; *seconds the time taken. */
/* A CLEVER target: "untargeted", "top-K" with 2 <= K, or a class below K (K 0: no class number). */
bool clever_target_ok(const char *s, int K);
double run_clever(Model *m, const Dataset *test, int limit, const CleverConfig *c, const char *target, uint64_t seed, bool quiet,
                  cJSON *doc, int *n_images, int *fallbacks, int *fits, double *seconds);
/* A list of models (--models "A,B,...": model files or run directories), each named by its run
 * directory or file stem (cmd_transfer.c). */
#define RUN_MAX_MODELS 64
typedef struct { int n; Model *m[RUN_MAX_MODELS]; char file[RUN_MAX_MODELS][1100], name[RUN_MAX_MODELS][96]; } ModelList;
/* Loads them in eval mode; prints the problem and returns the exit status. */
int run_load_models(const char *cmd, const char *list, Device dev, ModelList *ms);
void run_models_free(ModelList *ms);
/* Whether they share their classes and take test's images; prints why not, returns the exit status. */
int run_check_models(const char *cmd, const ModelList *ms, const Dataset *test, const char *data);
/* The transferability matrix (one per I-FGSM iteration count in steps[0..n_steps); 0 there means
 * the attack's default) of attack "fgsm" | "ifgsm" | "cw" | "ead" toward target (target_parse's)
 * on the first `limit` test images every model classifies correctly: transfer.json, transfer.md,
 * heatmaps and examples in out (which must exist). doc receives the JSON; *md (when md is not NULL)
 * the Markdown, else it is printed. Returns the exit status. */
#define RUN_MAX_STEPS 16
typedef struct { const char *attack, *target; double eps; const int *steps; int n_steps, limit, batch; uint64_t seed; } TransferSpec;
int run_transfer(const char *cmd, const ModelList *ms, const Dataset *test, const TransferSpec *t, const char *out, bool quiet,
                 cJSON *doc, char **md);
/* Loads --model-file and the test set of d for eval and attack; NULL with the exit status in *rc. */
Model *run_load_model(const char *cmd, const char *file, const DataOpts *d, Device dev, Splits *data, int *rc);

/* --blocks "a,b,c,d", --stem N, --vgg-cfg "64,M,128,..." into mc (NULL / 0: unset); prints the
 * error naming the flag and returns false on a bad list. */
bool run_model_config(const char *cmd, const char *blocks, int stem, const char *vgg_cfg, ModelConfig *mc);

/* Claims a training's --out before any work: a path that is not a directory is refused, and so
 * (unless resume or overwrite) is a directory that already holds a run; then it is created and
 * locked for this process's life (a second finch writing it is refused, naming this one's pid).
 * Prints the problem; returns the exit status (0, 1 or 2). */
int run_claim(const char *cmd, const char *out, bool resume, bool overwrite);
/* Whether a run directory's train.json, written last, is there. */
bool run_is_finished(const char *dir);

/* Writes a JSON document atomically; prints the error. 0 on success. */
int run_write_json(const char *cmd, const char *path, cJSON *doc);
void run_set_threads(int threads);

#endif
