/* Models on disk: a model file (safetensors with the architecture in its metadata) written and
 * read back, weights from elsewhere (torchvision names) loaded into a built model, and the export
 * for PyTorch. */
#ifndef FINCH_MODEL_IO_H
#define FINCH_MODEL_IO_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every parameter and buffer under its name, plus arch / num_classes / width metadata. */
int model_save(Model *m, const ModelConfig *cfg, const char *path);
/* The same tensors for PyTorch: safetensors.torch.load_file + load_state_dict (torchvision's
 * names; PyTorch recreates the num_batches_tracked counters it finds missing). */
int model_export(Model *m, const char *path);
/* What a load did: tensors loaded, and those the file lacked, had extra (torchvision's
 * num_batches_tracked aside) or had in another shape. */
typedef struct { int loaded, missing, unexpected, misshaped; char first_problem[160]; } LoadReport;

/* strict: every tensor of the model must be in the file, in its shape, and nothing else.
 * Otherwise (fine-tuning a trunk from a classifier's weights) missing, unexpected and mis-shaped
 * tensors are counted in *report (may be NULL) and the model's own values kept for them; a
 * prototype network's "features.X" also reads a classifier's "X" (torchvision weights for its trunk). */
int model_load_weights(Model *m, const char *path, bool strict, LoadReport *report);
/* Rebuild the model a file describes and load it (strict). NULL with ft_last_error(). */
Model *model_load(const char *path, Device dev, ModelConfig *cfg_out);

#ifdef __cplusplus
}
#endif

#endif
