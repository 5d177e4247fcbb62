/* Model: what trainers and attacks need from a network, whatever its architecture.
 *
 * forward() takes pixels in [0, 1] and normalises them itself ((x - mean) / std per channel), so
 * an attack perturbs and clips real pixels while the network sees what it was trained on. */
#ifndef FINCH_MODEL_H
#define FINCH_MODEL_H

#include "layers/layers.h"

typedef struct Model Model;
struct Model {
    const char *arch;
    ParamSet params;
    bool training;             /* batch norm statistics and dropout */
    int in_channels, height, width, num_classes;
    Tensor *mean, *std;        /* [1, C, 1, 1] input normalisation */
    Rng rng;                   /* dropout masks */
    Tensor *(*forward)(Model *m, Tape *tp, Tensor *x);   /* x [N, C, H, W] in [0, 1] -> logits [N, K] */
    void (*destroy)(Model *m);
};

typedef struct {
    int num_classes;
    int width;                 /* channel multiplier of the small CNN (its first conv's outputs) */
    uint64_t seed;
    Device device;
} ModelConfig;

/* Build a model by architecture name ("small_cnn"); NULL with ft_last_error() for an unknown name. */
Model *model_create(const char *arch, const ModelConfig *cfg);
void model_free(Model *m);
const char *model_arch_list(void);

/* Set up the common fields; mean/std have `channels` entries. */
void model_setup(Model *m, const char *arch, int channels, int height, int width, int num_classes,
                 const float *mean, const float *std, Device dev, uint64_t seed);
Tensor *model_normalize(Model *m, Tape *tp, Tensor *x);
/* Logits -> predicted classes (int32, host). */
void model_predict(Tensor *logits, int32_t *pred);

#endif
