/* ParamSet: a model's parameters and buffers, by name.
 *
 * While a model is built, each layer asks for its tensors by (torchvision-style) name. Then
 * params_finalize() moves every trainable parameter into one flat buffer and points each
 * parameter's gradient into a second one, so zeroing gradients is one memset, an optimizer is
 * one pass over flat memory and a checkpoint is one write. Buffers (batch-norm running
 * statistics) are kept by name but receive no gradient. */
#ifndef FINCH_PARAMS_H
#define FINCH_PARAMS_H

#include "core/finch.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PARAM_NAME_MAX 96

typedef struct {
    char name[PARAM_NAME_MAX];
    Tensor *t;
    bool trainable;   /* false: a buffer (running statistics) */
    int group;        /* optimizer parameter group */
} Param;

typedef struct {
    Param *items;
    int n, cap;
    Device device;
    DType dtype;                /* of every tensor: float32, or float64 for reference checks */
    Tensor *flat, *flat_grad;   /* after finalize: every trainable parameter, and their gradients */
    int64_t n_trainable;        /* elements */
    /* > 0: tensors added past this many elements in all get an empty last dimension, and
     * over_budget is set (ModelConfig.param_budget); requested counts what was asked for */
    int64_t budget, requested;
    bool over_budget;
} ParamSet;

void params_init(ParamSet *ps, Device dev, DType dtype);
void params_free(ParamSet *ps);
/* New zero-filled tensors named prefix + "." + name (or name when prefix is empty). */
Tensor *params_add(ParamSet *ps, const char *prefix, const char *name, Shape s);
Tensor *params_add_buffer(ParamSet *ps, const char *prefix, const char *name, Shape s);
void params_finalize(ParamSet *ps);
void params_zero_grad(ParamSet *ps);
Param *params_find(ParamSet *ps, const char *name);
/* Assign every parameter whose name starts with prefix to optimizer group g. */
void params_set_group(ParamSet *ps, const char *prefix, int g);
/* Mark parameters trainable or frozen (requires_grad) by name prefix ("" = all). */
void params_set_requires_grad(ParamSet *ps, const char *prefix, bool on);

#ifdef __cplusplus
}
#endif

#endif
