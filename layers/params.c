#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "params.h"

void params_init(ParamSet *ps, Device dev, DType dtype) {
    FT_CHECK(dtype == FT_F32 || dtype == FT_F64, "parameters of dtype %s (float32 or float64)", ft_dtype_name(dtype));
    memset(ps, 0, sizeof *ps);
    ps->device = dev;
    ps->dtype = dtype;
}

void params_free(ParamSet *ps) {
    for (int i = 0; i < ps->n; i++) ft_tensor_free(ps->items[i].t);   /* and its gradient, a view of flat_grad */
    ft_tensor_free(ps->flat);
    ft_tensor_free(ps->flat_grad);
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

static Tensor *add(ParamSet *ps, const char *prefix, const char *name, Shape s, bool trainable) {
    FT_CHECK(!ps->flat, "parameter %s added after the parameter set was finalized", name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 32;
        ps->items = ft_xrealloc(ps->items, (size_t)ps->cap * sizeof *ps->items);
    }
    Param *p = &ps->items[ps->n++];
    memset(p, 0, sizeof *p);
    int k = snprintf(p->name, sizeof p->name, "%s%s%s", prefix, prefix[0] ? "." : "", name);
    FT_CHECK(k < PARAM_NAME_MAX, "parameter name %s.%s is too long", prefix, name);
    for (int i = 0; i < ps->n - 1; i++)
        FT_CHECK(strcmp(ps->items[i].name, p->name) != 0, "parameter %s defined twice", p->name);
    int64_t numel = 1;
    for (int i = 0; i < s.ndim; i++) numel *= s.d[i];
    ps->requested += numel;
    if (ps->budget > 0 && ps->requested > ps->budget) {
        ps->over_budget = true;
        s.d[s.ndim - 1] = 0;   /* keeps the rank, so constructors and initialisers run unchanged over nothing */
    }
    p->t = ft_tensor_new(ps->dtype, s, ps->device);
    p->trainable = trainable;
    p->t->requires_grad = trainable;
    p->t->is_param = trainable;
    return p->t;
}

Tensor *params_add(ParamSet *ps, const char *prefix, const char *name, Shape s) { return add(ps, prefix, name, s, true); }
Tensor *params_add_buffer(ParamSet *ps, const char *prefix, const char *name, Shape s) { return add(ps, prefix, name, s, false); }

/* Re-point t at `flat` starting at element `offset`, keeping its values. */
static void move_into(Tensor *t, Tensor *flat, int64_t offset) {
    Tensor tmp = *flat;
    tmp.offset = offset;
    tmp.shape = t->shape;
    tmp.numel = t->numel;
    ft_copy_(&tmp, t);
    if (--t->storage->refs == 0) {
        ft_backend(t->storage->device)->free(t->storage->data);
        free(t->storage);
    }
    t->storage = flat->storage;
    t->storage->refs++;
    t->offset = offset;
}

void params_finalize(ParamSet *ps) {
    int64_t total = 0;
    for (int i = 0; i < ps->n; i++) if (ps->items[i].trainable) total += ps->items[i].t->numel;
    ps->n_trainable = total;
    ps->flat = ft_tensor_new(ps->dtype, SHAPE((int)total), ps->device);
    ps->flat_grad = ft_tensor_new(ps->dtype, SHAPE((int)total), ps->device);
    int64_t off = 0;
    for (int i = 0; i < ps->n; i++) {
        Param *p = &ps->items[i];
        if (!p->trainable) continue;
        move_into(p->t, ps->flat, off);
        p->t->grad = ft_tensor_view(ps->flat_grad, off, p->t->shape);
        off += p->t->numel;
    }
}

void params_zero_grad(ParamSet *ps) { if (ps->flat_grad) ft_zero_(ps->flat_grad); }

Param *params_find(ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->n; i++) if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
    return NULL;
}

void params_set_group(ParamSet *ps, const char *prefix, int g) {
    for (int i = 0; i < ps->n; i++)
        if (strncmp(ps->items[i].name, prefix, strlen(prefix)) == 0) ps->items[i].group = g;
}

void params_set_requires_grad(ParamSet *ps, const char *prefix, bool on) {
    for (int i = 0; i < ps->n; i++)
        if (ps->items[i].trainable && strncmp(ps->items[i].name, prefix, strlen(prefix)) == 0)
            ps->items[i].t->requires_grad = on;
}
