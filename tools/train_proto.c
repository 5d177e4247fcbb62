#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train_proto.h"
#include "dist/dist.h"
#include "train/staged.h"

static bool coef(const char *flag, const char *s, double *dst) {
    if (!s) return true;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) {
        fprintf(stderr, "finch train: --%s '%s': expected a finite number\n", flag, s);
        return false;
    }
    *dst = v;
    return true;
}

static const char *recipe_name(const ProtoArgs *a, ProtoKind kind) {
    return a->recipe ? a->recipe : kind == PROTO_PPNET ? "protopnet" : "robust";
}

int proto_epochs(const ProtoArgs *a, const char *arch) {
    ProtoKind kind;
    Recipe r;
    if (!protonet_parse_arch(arch, &kind, NULL) || !recipe_get(recipe_name(a, kind), kind, &r)) return -1;
    return a->epochs > 0 ? a->epochs : r.epochs;
}

/* The recipe with the command line's overrides; false after printing what was wrong. */
bool proto_recipe(const ProtoArgs *a, ProtoNet *p, int epochs, Recipe *r) {
    const char *name = recipe_name(a, p->kind);
    if (!recipe_get(name, p->kind, r)) {
        fprintf(stderr, "finch train: --recipe must be protopnet or robust, got '%s'\n", name);
        return false;
    }
    if (epochs > 0) r->epochs = epochs;
    if (a->warm >= 0) r->warm_epochs = a->warm;
    if (a->push_start >= 0) r->push_start = a->push_start;
    if (a->push_every > 0) r->push_every = a->push_every;
    if (a->last_iters >= 0) r->last_iters = a->last_iters;
    if (a->lr_features > 0) r->lr_features = a->lr_features;
    if (a->lr_head > 0) r->lr_add_on = r->lr_prototypes = r->lr_attention = a->lr_head;
    if (a->lr_last > 0) r->lr_last = a->lr_last;
    if (a->att_dropout >= 0) r->attention_dropout = a->att_dropout;
    if (a->lr_step > 0) r->step_size = a->lr_step;
    if (a->frozen_bn) {
        if (strcmp(a->frozen_bn, "running") != 0 && strcmp(a->frozen_bn, "batch") != 0) {
            fprintf(stderr, "finch train: --frozen-bn must be running or batch, got '%s'\n", a->frozen_bn);
            return false;
        }
        r->frozen_bn_running = strcmp(a->frozen_bn, "running") == 0;
    }
    ProtoCoefs *c = &r->coefs;
    return coef("clst", a->clst, &c->clst) && coef("sep", a->sep, &c->sep) && coef("clst-att", a->clst_att, &c->clst_att) &&
           coef("sep-att", a->sep_att, &c->sep_att) && coef("l1", a->l1, &c->l1) && coef("ce-att", a->ce_att, &c->ce_att);
}

static int cmp_i32(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }

/* A seeded random hold-out of the plain training images: val first, the rest (the push set)
 * after; both sorted. */
static int32_t *split_indices(int n, double fraction, uint64_t seed, int *n_val) {
    int32_t *idx = ft_xmalloc((size_t)(n ? n : 1) * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    Rng rng = rng_new(seed ^ 0x7a11da7eull);
    rng_shuffle(&rng, idx, n);
    *n_val = (int)(fraction * n);
    qsort(idx, (size_t)*n_val, sizeof *idx, cmp_i32);
    qsort(idx + *n_val, (size_t)(n - *n_val), sizeof *idx, cmp_i32);
    return idx;
}

void proto_split(const Splits *data, double val_fraction, uint64_t seed, int limit, ProtoSplit *s) {
    const Dataset *plain = &data->train, *train = run_train_set(data);
    int N = dataset_size(plain), n_val, copies = train == plain ? 1 : dataset_size(train) / N;
    s->split = split_indices(N, val_fraction, seed, &n_val);
    int n_push = N - n_val;
    if (limit > 0 && n_push > limit) n_push = limit;   /* --limit: train and push on that many */
    s->train_idx = ft_xmalloc((size_t)(n_push ? n_push : 1) * copies * sizeof *s->train_idx);
    for (int i = 0; i < n_push; i++)
        for (int k = 0; k < copies; k++) s->train_idx[(int64_t)i * copies + k] = s->split[n_val + i] * copies + k;
    s->d = (StagedData){ .train = train, .train_idx = s->train_idx, .n_train = n_push * copies, .plain = plain,
                         .push_idx = s->split + n_val, .val_idx = s->split, .n_push = n_push, .n_val = n_val };
}

void proto_split_free(ProtoSplit *s) {
    free(s->split);
    free(s->train_idx);
}

int train_protonet(const ProtoArgs *a, Model *m, const ModelConfig *mc, const Splits *data, const TrainOpts *t,
                   const char *out, const CheckpointInfo *options, bool resume, cJSON *doc) {
    ProtoNet *p = protonet_of(m);
    Recipe r;
    if (!proto_recipe(a, p, a->epochs, &r)) return 2;
    ProtoSplit sp;
    proto_split(data, a->val_fraction, t->seed, t->limit, &sp);
    if (sp.d.n_train < t->batch) {
        fprintf(stderr, "finch train: --batch %d is more than the %d training images left after --limit and --val-fraction: "
                "no full batch to train on\n", t->batch, sp.d.n_train);
        proto_split_free(&sp);
        return 2;
    }
    sp.d.dir = out;
    sp.d.config = mc;
    sp.d.options = options;
    sp.d.resume = resume;
    printf("%s, recipe %s: %d epochs (%d warm-up)", m->arch, r.name, r.epochs, r.warm_epochs);
    if (p->kind != PROTO_AP)   /* Ours-A has no prototypes: no push, no last-layer stage */
        printf(", push from epoch %d every %d, %d last-layer passes", r.push_start + 1, r.push_every, r.last_iters);
    printf("; %d training images (%d for validation)\n", sp.d.n_push, sp.d.n_val);
    cJSON_AddStringToObject(doc, "recipe", r.name);
    double val = staged_train(p, &sp.d, &r, t, doc);
    int rc = 0;
    if (val < 0 && ft_stop_requested()) {
        fprintf(stderr, "\nfinch train: %s\n", ft_last_error());
        rc = 128 + ft_stop_signal();
    } else if (val < 0) {
        fprintf(stderr, "finch train: %s\n", ft_last_error());
        rc = 1;
    } else {
        Accuracy tr = clean_accuracy(m, &data->test, 0, t->batch, true);
        double acc = (double)tr.correct / tr.total;
        cJSON_AddNumberToObject(doc, "val_acc", val);
        cJSON_AddNumberToObject(doc, "test_acc", acc);
        char json[1100];
        snprintf(json, sizeof json, "%s/train.json", out);
        rc = ft_dist_rank() == 0 && run_write_json("train", json, doc) ? 1 : 0;
        if (!rc) printf("selected model: validation accuracy %.2f%%, test accuracy %.2f%%; saved %s/model.safetensors and %s\n",
                        100 * val, 100 * acc, out, json);
    }
    proto_split_free(&sp);
    return rc;
}
