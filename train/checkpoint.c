#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "checkpoint.h"
#include "core/safetensors.h"

#define MAX_TENSORS 4096

#define MAX_OPTIMIZERS 4

/* "optim" for the first optimizer, "optimK" for optimizer K > 0 */
static void optim_prefix(int k, char *buf, size_t n) {
    if (k) snprintf(buf, n, "optim%d", k);
    else snprintf(buf, n, "optim");
}

int checkpoint_save_n(const char *path, Model *m, Optimizer *const *o, int n_o, const CheckpointInfo *info) {
    ParamSet *ps = &m->params;
    FT_CHECK(ps->n + 2 * n_o <= MAX_TENSORS && n_o <= MAX_OPTIMIZERS, "checkpoint of %d tensors and %d optimizers", ps->n, n_o);
    static char names[MAX_TENSORS][PARAM_NAME_MAX + 8];
    const char *np[MAX_TENSORS];
    Tensor *ts[MAX_TENSORS];
    int n = 0;
    for (int i = 0; i < ps->n; i++, n++) {
        snprintf(names[n], sizeof names[n], "model.%s", ps->items[i].name);
        np[n] = names[n];
        ts[n] = ps->items[i].t;
    }
    char prefix[16];
    for (int k = 0; k < n_o; k++) {
        optim_prefix(k, prefix, sizeof prefix);
        snprintf(names[n], sizeof names[n], "%s.state1", prefix);
        np[n] = names[n]; ts[n++] = o[k]->state1;
        if (!o[k]->state2) continue;
        snprintf(names[n], sizeof names[n], "%s.state2", prefix);
        np[n] = names[n]; ts[n++] = o[k]->state2;
    }

    /* the CRC covers the tensors in file order, i.e. this order */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        Tensor *h = ft_tensor_new(FT_F32, ts[i]->shape, FT_CPU);
        ft_copy_(h, ts[i]);
        crc = crc32(crc, (const Bytef *)ft_f32(h), (uInt)(h->numel * 4));
        ft_tensor_free(h);
    }
    static char vals[5][64], step_keys[MAX_OPTIMIZERS][32], steps[MAX_OPTIMIZERS][32];
    const char *keys[16 + CHECKPOINT_MAX_OPTIONS], *values[16 + CHECKPOINT_MAX_OPTIONS];
    int k = 0;
    snprintf(vals[0], 64, "%d", info->epochs_done);
    snprintf(vals[2], 64, "%" PRIu64, m->rng.seed);
    snprintf(vals[3], 64, "%" PRIu64, m->rng.counter);
    snprintf(vals[4], 64, "%lu", (unsigned long)crc);
    keys[k] = "format"; values[k++] = "finch-checkpoint";
    keys[k] = "arch"; values[k++] = m->arch;
    keys[k] = "epochs_done"; values[k++] = vals[0];
    for (int i = 0; i < n_o; i++) {
        optim_prefix(i, prefix, sizeof prefix);
        snprintf(step_keys[i], sizeof step_keys[i], "%s_step", prefix);
        snprintf(steps[i], sizeof steps[i], "%" PRId64, o[i]->step);
        keys[k] = step_keys[i]; values[k++] = steps[i];
    }
    keys[k] = "rng_seed"; values[k++] = vals[2];
    keys[k] = "rng_counter"; values[k++] = vals[3];
    keys[k] = "crc32"; values[k++] = vals[4];
    if (info->state) { keys[k] = "state"; values[k++] = info->state; }
    static char opt_keys[CHECKPOINT_MAX_OPTIONS][40];
    for (int i = 0; i < info->n_options; i++) {
        snprintf(opt_keys[i], sizeof opt_keys[i], "option.%s", info->option_names[i]);
        keys[k] = opt_keys[i];
        values[k++] = info->option_values[i];
    }
    return st_write(path, n, np, ts, k, keys, values);
}

int checkpoint_save(const char *path, Model *m, Optimizer *o, const CheckpointInfo *info) { return checkpoint_save_n(path, m, &o, 1, info); }

void checkpoint_info_free(CheckpointInfo *info) {
    free(info->state);
    info->state = NULL;
}

static int read_meta(const SafeTensors *st, const char *path, CheckpointInfo *info) {
    const char *fmt = st_meta(st, "format"), *ep = st_meta(st, "epochs_done");
    if (!fmt || strcmp(fmt, "finch-checkpoint") != 0 || !ep)
        return ft_error("%s: not a finch checkpoint (no 'format: finch-checkpoint' metadata)", path);
    const char *required[] = { "arch", "rng_seed", "rng_counter", "crc32" };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!st_meta(st, required[i])) return ft_error("%s: checkpoint metadata lacks '%s'", path, required[i]);
    memset(info, 0, sizeof *info);
    info->epochs_done = atoi(ep);
    for (int i = 0; i < st->n_meta && info->n_options < CHECKPOINT_MAX_OPTIONS; i++) {
        if (strncmp(st->meta_keys[i], "option.", 7) != 0) continue;
        snprintf(info->option_names[info->n_options], 32, "%s", st->meta_keys[i] + 7);
        snprintf(info->option_values[info->n_options], 256, "%s", st->meta_values[i]);
        info->n_options++;
    }
    const char *state = st_meta(st, "state");
    info->state = state ? strdup(state) : NULL;
    return 0;
}

int checkpoint_read_info(const char *path, CheckpointInfo *info) {
    SafeTensors st;
    if (st_open(path, &st) != 0) return -1;
    int rc = read_meta(&st, path, info);
    st_close(&st);
    return rc;
}

/* the tensor a checkpoint entry restores, or NULL */
static Tensor *target(Model *m, Optimizer *const *o, int n_o, const char *name) {
    if (strncmp(name, "model.", 6) == 0) { Param *p = params_find(&m->params, name + 6); return p ? p->t : NULL; }
    char want[32], prefix[16];
    for (int k = 0; k < n_o; k++) {
        optim_prefix(k, prefix, sizeof prefix);
        snprintf(want, sizeof want, "%s.state1", prefix);
        if (strcmp(name, want) == 0) return o[k]->state1;
        snprintf(want, sizeof want, "%s.state2", prefix);
        if (strcmp(name, want) == 0) return o[k]->state2;
    }
    return NULL;
}

int checkpoint_load_n(const char *path, Model *m, Optimizer *const *o, int n_o, CheckpointInfo *info) {
    SafeTensors st;
    if (st_open(path, &st) != 0) return -1;
    int rc = read_meta(&st, path, info);
    bool have_info = rc == 0;   /* info->state is ours to release on failure */
    const char *crc_s = st_meta(&st, "crc32"), *arch = st_meta(&st, "arch");
    if (rc == 0 && strcmp(arch, m->arch) != 0)
        rc = ft_error("%s: a checkpoint of %s, not of %s", path, arch, m->arch);
    char key[32], prefix[16];
    for (int k = 0; rc == 0 && k < n_o; k++) {
        optim_prefix(k, prefix, sizeof prefix);
        snprintf(key, sizeof key, "%s_step", prefix);
        if (!st_meta(&st, key)) rc = ft_error("%s: checkpoint metadata lacks '%s' (written for %s optimizer(s)?)", path, key, k ? "fewer" : "no");
    }
    /* 1. everything checked: checksum, names, shapes, nothing missing */
    uLong crc = crc32(0L, Z_NULL, 0);
    int matched = 0, expected = m->params.n;
    for (int k = 0; k < n_o; k++) expected += 1 + (o[k]->state2 != NULL);
    for (int i = 0; rc == 0 && i < st.n; i++) {
        const StEntry *e = &st.entries[i];
        Tensor *t = target(m, o, n_o, e->name);
        if (!t) rc = ft_error("%s: unexpected tensor '%s' for %s", path, e->name, m->arch);
        else if (!ft_shape_eq(t->shape, e->shape) || strcmp(e->dtype, "F32") != 0)
            rc = ft_error("%s: tensor '%s' is %s %s, expected F32 %s", path, e->name, e->dtype, FT_SHAPE_STR(e->shape),
                          FT_SHAPE_STR(t->shape));
        matched++;
    }
    /* entries are written contiguously in order: the data section is what the CRC covered */
    if (rc == 0) crc = crc32(crc, st.file + st.data_start, (uInt)(st.size - st.data_start));
    if (rc == 0 && strtoul(crc_s, NULL, 10) != crc)
        rc = ft_error("%s: checksum mismatch (stored %s, computed %lu): the file is corrupted", path, crc_s, (unsigned long)crc);
    if (rc == 0 && matched != expected)
        rc = ft_error("%s: %d tensors, a checkpoint of this model and optimizer has %d", path, matched, expected);
    /* 2. only then the state changes */
    for (int i = 0; rc == 0 && i < st.n; i++) rc = st_read_into(&st, &st.entries[i], target(m, o, n_o, st.entries[i].name));
    if (rc == 0) {
        for (int k = 0; k < n_o; k++) {
            optim_prefix(k, prefix, sizeof prefix);
            snprintf(key, sizeof key, "%s_step", prefix);
            o[k]->step = strtoll(st_meta(&st, key), NULL, 10);
        }
        m->rng.seed = strtoull(st_meta(&st, "rng_seed"), NULL, 10);
        m->rng.counter = strtoull(st_meta(&st, "rng_counter"), NULL, 10);
    }
    if (rc != 0 && have_info) checkpoint_info_free(info);
    st_close(&st);
    return rc;
}

int checkpoint_load(const char *path, Model *m, Optimizer *o, CheckpointInfo *info) { return checkpoint_load_n(path, m, &o, 1, info); }
