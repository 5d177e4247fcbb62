/* Model: what trainers and attacks need from a network, whatever its architecture.
 *
 * forward() takes pixels in [0, 1] and normalises them itself ((x - mean) / std per channel), so
 * an attack perturbs and clips real pixels while the network sees what it was trained on. */
#ifndef FINCH_MODEL_H
#define FINCH_MODEL_H

#include "layers/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MODEL_MAX_VGG_CFG 24

/* One layer on the trunk's main path, for receptive-field arithmetic. */
typedef struct { int kernel, stride, pad; } LayerGeom;
#define MODEL_MAX_RF_LAYERS 256

/* Layer taps: the output of a named layer, on the tape and differentiable with respect to the
 * input (feature attacks, retrieval). Names follow torchvision's modules (features.10, layer3,
 * features.denseblock3, fc1, ...), plus "pooled" (the feature the classifier reads) and, in
 * prototype networks, features.<the trunk's names>, add_on_layers, prototype_distances and
 * prototype_similarities. A model with m->taps NULL (the default) pays one pointer test per layer. */
#define MODEL_MAX_TAPS 512
#define MODEL_TAP_NAME 48
typedef struct {
    const char *want;          /* the layer wanted; NULL: list every layer of the forward instead */
    Tensor *got;               /* want's output in the last forward; NULL until it is reached */
    const char *prefix;        /* prepended to the names (a prototype network's "features.") */
    int n;                     /* listing: the layers seen, in order, and their outputs' shapes */
    char names[MODEL_MAX_TAPS][MODEL_TAP_NAME];
    Shape shapes[MODEL_MAX_TAPS];
} ModelTaps;

typedef struct Model Model;
struct Model {
    const char *arch;
    ParamSet params;
    bool training;             /* batch norm statistics and dropout */
    bool dropout_off;          /* no dropout even in training mode (parity tests, deterministic runs) */
    bool bn_frozen;            /* batch norm uses and keeps its running statistics even in training mode
                                * (stages that freeze the trunk: model_bn_training) */
    int in_channels, num_classes;
    int height, width;         /* the input size the model requires, 0 when any size works */
    int trunk_channels;        /* channels of trunk()'s output */
    int min_size;              /* smaller inputs are upsampled (bilinear) to this size first; 0: none */
    Tensor *mean, *std;        /* [1, C, 1, 1] input normalisation */
    bool norm_identity;        /* mean 0 and std 1 in every channel: model_normalize has nothing to do */
    Rng rng;                   /* dropout masks */
    Tensor *(*forward)(Model *m, Tape *tp, Tensor *x);   /* x [N, C, H, W] in [0, 1] -> logits [N, K] */
    /* Every classification head's logits (out[0]: the one the model classifies by), their count;
     * NULL: forward() is the only head. An attack's loss is the sum of its loss over the heads
     * (Ours-FR: the FR head and the attention head). Use model_heads(). */
    int (*heads)(Model *m, Tape *tp, Tensor *x, Tensor *out[]);
    /* the last feature map before the classifier (x in [0, 1] -> [N, C', H', W']) */
    Tensor *(*trunk)(Model *m, Tape *tp, Tensor *x);
    ModelTaps *taps;           /* NULL: no layer is tapped (model_tap) */
    LayerGeom rf_layers[MODEL_MAX_RF_LAYERS];   /* the trunk's main path, input to output */
    int n_rf_layers;
    void (*destroy)(Model *m);
};

void model_tap_offer(ModelTaps *t, const char *name, Tensor *x);
/* Called by a model's forward with each named layer's output; returns x. */
static inline Tensor *model_tap(Model *m, const char *name, Tensor *x) {
    if (m->taps) model_tap_offer(m->taps, name, x);
    return x;
}
/* Batch norm then ReLU, their outputs tapped as bn_name and relu_name: one fused op
 * (batchnorm_relu_forward) when no layer is tapped, the two ops when one may be. */
Tensor *model_bn_relu(Model *m, Tape *tp, const BatchNorm *bn, Tensor *x, const char *bn_name, const char *relu_name);
/* The output of layer `name` for input x (one forward; NULL with ft_last_error() naming the
 * model's layers when it has none of that name). */
Tensor *model_layer(Model *m, Tape *tp, Tensor *x, const char *name);
/* Every layer's name and output shape for input x (one forward without gradients) into *t. */
void model_list_layers(Model *m, Tape *tp, Tensor *x, ModelTaps *t);

/* Whether batch norm normalises by the batch's statistics (and updates its running ones). */
static inline bool model_bn_training(const Model *m) { return m->training && !m->bn_frozen; }

/* Receptive field of one output cell of the trunk for a square input of `size` pixels, as
 * ProtoPNet computes it: output size n, jump j (input pixels between neighbouring cells),
 * receptive field r and the centre `start` of the first cell. */
typedef struct { int n; double jump, rf, start; } ReceptiveField;
ReceptiveField model_receptive_field(const Model *m, int size);
void model_add_rf_layer(Model *m, int kernel, int stride, int pad);

typedef struct {
    int num_classes;
    /* 0: the architecture's standard size. Otherwise the small CNN's first conv channels, VGG's
     * first conv channels (the rest scale with it), ResNet's stem channels, DenseNet's growth
     * rate: reduced-size versions for tests. */
    int width;
    int blocks[4];             /* ResNet blocks per stage / DenseNet layers per block; zeros: the name's */
    int stem;                  /* DenseNet's initial features (0: twice the growth rate) */
    int feature_dim;           /* > 0: the small CNN's feature before its classifier is fc1's linear output of this size */
    int vgg_cfg[MODEL_MAX_VGG_CFG], n_vgg_cfg;   /* VGG channels per conv, 0 for a max-pool; empty: the name's */
    /* prototype networks (protopnet-, ap-, ours-fr-<trunk>): 0 for ProtoPNet's 10 and 128 */
    int prototypes_per_class, proto_depth;
    /* the class of each of n_prototypes prototypes when they are not j / per_class (a pruned
     * network); NULL: ProtoPNet's layout. Copied by the model. */
    const int *prototype_classes;
    int n_prototypes;
    /* build only the trunk, leave the parameter set open (a prototype network wraps it) */
    bool trunk_only;
    uint64_t seed;
    Device device;
    DType dtype;               /* FT_F32 (the zero value) for training; FT_F64 for reference checks */
    /* > 0: parameters and buffers past this many elements in all are made empty instead of
     * allocated (and initialised), and params.over_budget says so: model_load's guard against
     * metadata that describes a model larger than its file can hold */
    int64_t param_budget;
} ModelConfig;

/* "2,2,2,2" -> ints (with allow_pool, "M" reads as 0: VGG's max-pool); the count, or -1 with
 * ft_last_error() naming `what`. */
int model_parse_ints(const char *what, const char *s, int *out, int max, bool allow_pool);

#define MODEL_MAX_CLASSES 100000
#define MODEL_MAX_WIDTH 4096     /* width, stem, VGG channels, prototype depth */
#define MODEL_MAX_BLOCKS 256     /* per ResNet stage or DenseNet block (ResNet-152: 36; DenseNet-201: 48) */

/* Build a model by architecture name (model_arch_list()); NULL with ft_last_error() for an
 * unknown name. */
Model *model_create(const char *arch, const ModelConfig *cfg);
void model_free(Model *m);
const char *model_arch_list(void);

/* Set up the common fields; mean/std have `channels` entries (NULL: 0 and 1); height/width 0
 * accept any size. */
void model_setup(Model *m, const char *arch, int channels, int height, int width, const float *mean, const float *std,
                 const ModelConfig *cfg);
/* The input stage of every forward: a grayscale batch for an RGB model has its channel
 * replicated, an input smaller than min_size is upsampled, then (x - mean) / std (skipped when
 * m->norm_identity: x itself may come back). All of it is differentiable, so attacks perturb the
 * pixels the user gave. */
Tensor *model_normalize(Model *m, Tape *tp, Tensor *x);
/* Whether model_normalize takes images of channels x height x width. */
bool model_accepts(const Model *m, int channels, int height, int width);
#define MODEL_MAX_HEADS 2
/* The logits of every head (out[0] classifies); returns how many. */
int model_heads(Model *m, Tape *tp, Tensor *x, Tensor *out[MODEL_MAX_HEADS]);
/* The model's own loss on (x, y): the sum of the heads' cross entropies, with the logits it
 * classifies by. */
Tensor *model_loss(Model *m, Tape *tp, Tensor *x, Tensor *y, Tensor **logits);
/* The end of every constructor: finalize the parameters, or with cfg->trunk_only leave them
 * open and the model without forward() (its trunk() works). */
void model_finish(Model *m, const ModelConfig *cfg);
/* Logits -> predicted classes (int32, host). */
void model_predict(Tensor *logits, int32_t *pred);

#ifdef __cplusplus
}
#endif

#endif
