/* Pieces shared by the subcommands: data loading, a training run, an attack run, reports. */
#ifndef FINCH_RUN_H
#define FINCH_RUN_H

#include <cjson/cJSON.h>
#include "cli.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

/* --data fashion-mnist (from --data-dir DIR, NULL: its default place), cub:DIR (cropped to the
 * bounding boxes) or folder:DIR (DIR/split.txt when present), the images resized to
 * image_size. train may be NULL. Prints the error; returns the exit status. */
int run_load_data(const char *cmd, const char *data, const char *dir, int image_size, Dataset *train, Dataset *test);

typedef struct {
    const char *optim;        /* sgd | adam | adamw */
    double lr, weight_decay;
    const char *schedule;     /* constant | step | cosine */
} OptimConfig;

/* A run's checkpoint: written after every epoch to `path` with `info`'s options; with `resume`,
 * the model, the optimizer and the epoch are loaded from it first. */
typedef struct { const char *path; bool resume; CheckpointInfo info; } RunCheckpoint;

/* Trains until epoch t->epochs (from the checkpoint's epoch when resuming), evaluating clean test
 * accuracy after each epoch on eval_n test samples (0: all). Appends one object per epoch to
 * `epochs` (a JSON array). ck may be NULL. Returns the final test accuracy, or -1 after printing
 * what went wrong (a bad option, an unusable checkpoint). */
double run_training(const char *cmd, Model *m, const Dataset *train, const Dataset *test, const TrainOpts *t,
                    const OptimConfig *oc, int eval_n, cJSON *epochs, RunCheckpoint *ck);

/* Attacks the first n test samples; fills clean/robust accuracy into `out` (JSON object) and,
 * if png is not NULL, draws one example of each class. Returns the robust accuracy. */
double run_attack(Model *m, const Dataset *test, int n, int batch, const LinfAttack *a, uint64_t seed,
                  const char *png, bool quiet, cJSON *out);

/* --blocks "a,b,c,d", --stem N, --vgg-cfg "64,M,128,..." into mc (NULL / 0: unset); prints the
 * error naming the flag and returns false on a bad list. */
bool run_model_config(const char *cmd, const char *blocks, int stem, const char *vgg_cfg, ModelConfig *mc);

/* Writes a JSON document atomically; prints the error. 0 on success. */
int run_write_json(const char *cmd, const char *path, cJSON *doc);
void run_set_threads(int threads);

#endif
