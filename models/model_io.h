#ifndef FINCH_MODEL_IO_H
#define FINCH_MODEL_IO_H

#include "model.h"

/* Every parameter and buffer under its name, plus arch / num_classes / width metadata. */
int model_save(Model *m, const ModelConfig *cfg, const char *path);
/* strict: every tensor of the model must be in the file and nothing else; otherwise tensors the
 * file lacks keep their values. Shapes must match either way. */
int model_load_weights(Model *m, const char *path, bool strict);
/* Rebuild the model a file describes and load it (strict). NULL with ft_last_error(). */
Model *model_load(const char *path, Device dev, ModelConfig *cfg_out);

#endif
