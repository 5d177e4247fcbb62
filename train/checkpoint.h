/* Training checkpoints: everything a run needs to continue exactly where it stopped.
 *
 * One safetensors file (written to a temporary name, fsync'd, renamed): the model's parameters
 * and buffers ("model.<name>"), the optimizer's flat state ("optim.state1", "optim.state2"; a
 * further optimizer k's as "optimK.state1"), and
 * in the metadata the epochs completed, the optimizer's step count, the model's dropout RNG, the
 * run's options (strings, as given on the command line) and a CRC-32 of the data section. On the
 * CPU a resumed run's losses equal the uninterrupted run's bit for bit. Loading checks the
 * checksum, every name and every shape before it writes anything, so a truncated or corrupted
 * file is refused and the model is never half-loaded. */
#ifndef FINCH_CHECKPOINT_H
#define FINCH_CHECKPOINT_H

#include "optim.h"
#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CHECKPOINT_MAX_OPTIONS 64

typedef struct {
    int epochs_done;
    int n_options;
    char option_names[CHECKPOINT_MAX_OPTIONS][32], option_values[CHECKPOINT_MAX_OPTIONS][256];
    /* free-form text the trainer keeps with the checkpoint (NULL: none); malloc'd when read,
     * released by checkpoint_info_free */
    char *state;
} CheckpointInfo;

int checkpoint_save(const char *path, Model *m, Optimizer *o, const CheckpointInfo *info);
/* Reads only the metadata (to rebuild the model and optimizer before checkpoint_load). */
int checkpoint_read_info(const char *path, CheckpointInfo *info);
int checkpoint_load(const char *path, Model *m, Optimizer *o, CheckpointInfo *info);
/* The same with n optimizers (a staged trainer's, one per stage), kept in order. */
int checkpoint_save_n(const char *path, Model *m, Optimizer *const *o, int n, const CheckpointInfo *info);
int checkpoint_load_n(const char *path, Model *m, Optimizer *const *o, int n, CheckpointInfo *info);
void checkpoint_info_free(CheckpointInfo *info);

#ifdef __cplusplus
}
#endif

#endif
