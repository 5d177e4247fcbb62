/* Prototype networks in training: push, the stage masks, and a tiny ProtoPNet overfitting a few
 * images through the whole staged recipe. Data: the synthetic quadrant task (no files). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "data/synthetic.h"
#include "train/staged.h"
#include "train/prune.h"
#include "models/model_io.h"

static Model *tiny(const char *arch, int per_class, uint64_t seed) {
    ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = per_class, .proto_depth = 8, .seed = seed };
    return model_create(arch, &mc);
}

/* The latent map of every image of ds, on the host: [N, D, H, W] floats. */
static float *latents(ProtoNet *p, const Dataset *ds, int *H, int *W) {
    int N = dataset_size(ds);
    Tape *tp = ft_tape_new(FT_CPU);
    ft_no_grad_begin(tp);
    p->base.training = false;
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(N, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(N), FT_CPU);
    int32_t *idx = malloc((size_t)N * sizeof *idx);
    for (int i = 0; i < N; i++) idx[i] = i;
    dataset_batch(ds, idx, N, x, y);
    Tensor *z = protonet_latent(p, tp, x);
    *H = z->shape.d[2];
    *W = z->shape.d[3];
    float *h = malloc((size_t)z->numel * sizeof *h);
    ft_to_floats(z, h, z->numel);
    free(idx);
    ft_tensor_free(x); ft_tensor_free(y);
    ft_tape_free(tp);
    return h;
}

TEST(push_puts_every_prototype_on_its_nearest_own_class_patch) {
    Dataset ds;
    synthetic_quadrants(&ds, 24, 3, 60, 60, 80);
    Model *m = tiny("protopnet-small_cnn", 3, 11);
    ProtoNet *p = protonet_of(m);
    int M = p->n_protos, D = p->depth, H, W, N = dataset_size(&ds);
    float *old = malloc((size_t)M * D * sizeof *old);
    ft_to_floats(p->prototypes, old, (int64_t)M * D);
    float *z = latents(p, &ds, &H, &W);
    PushRecord *rec = calloc((size_t)M, sizeof *rec);
    push_prototypes(p, &ds, NULL, N, 5, rec, true);   /* batches of 5: winners found in different batches */
    float *now = malloc((size_t)M * D * sizeof *now);
    ft_to_floats(p->prototypes, now, (int64_t)M * D);
    for (int j = 0; j < M; j++) {
        /* brute force over every patch of the prototype's class, from the old prototype */
        double best = INFINITY;
        int bi = -1, bc = -1;
        for (int n = 0; n < N; n++) {
            if (ft_i32(ds.labels)[n] != p->cls[j]) continue;
            for (int c = 0; c < H * W; c++) {
                double d = 0;
                for (int k = 0; k < D; k++) { double t = z[((size_t)n * D + k) * H * W + c] - old[j * D + k]; d += t * t; }
                if (d < best) { best = d; bi = n; bc = c; }
            }
        }
        CHECK(rec[j].image == bi && rec[j].h * W + rec[j].w == bc,
              "prototype %d: pushed to image %d cell %d, the nearest own-class patch is image %d cell %d", j, rec[j].image,
              rec[j].h * W + rec[j].w, bi, bc);
        CHECK(ft_i32(ds.labels)[rec[j].image] == p->cls[j], "prototype %d of class %d on an image of class %d", j, p->cls[j],
              ft_i32(ds.labels)[rec[j].image]);
        CHECK_NEAR(rec[j].dist, best, 1e-4 * (1 + best));
        for (int k = 0; k < D; k++)   /* exactly the patch's latent vector: distance 0 */
            CHECK(now[j * D + k] == z[((size_t)rec[j].image * D + k) * H * W + bc], "prototype %d channel %d is not the patch's value", j, k);
    }
    /* the model now finds each prototype at distance ~0 in its source image */
    Tape *tp = ft_tape_new(FT_CPU);
    ft_no_grad_begin(tp);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(1), FT_CPU);
    for (int j = 0; j < M; j++) {
        dataset_batch(&ds, &rec[j].image, 1, x, y);
        ProtoOut o;
        protonet_forward(p, tp, x, &o);
        double dmin = ft_get(o.min_dist, j);
        CHECK(dmin <= 1e-5, "prototype %d: distance %.3g to its own source patch after push", j, dmin);
        ft_tape_reset(tp);
    }
    ft_tensor_free(x); ft_tensor_free(y);
    ft_tape_free(tp);
    free(old); free(now); free(z); free(rec);
    model_free(m);
    dataset_free(&ds);
}

/* Which parameters one pass of each stage changes. */
TEST(stage_masks_decide_which_parameters_train) {
    Dataset ds;
    synthetic_quadrants(&ds, 32, 4, 60, 60, 80);
    Model *m = tiny("ours-fr-small_cnn", 2, 12);
    ProtoNet *p = protonet_of(m);
    ParamSet *ps = &m->params;
    Recipe r;
    recipe_get("robust", p->kind, &r);
    static const char *const prefixes[] = { "features.", "add_on_layers.", "prototype_vectors", "attention.", "last_layer." };
    static const bool expect[3][5] = { { 0, 1, 1, 1, 0 }, { 1, 1, 1, 1, 0 }, { 0, 0, 0, 0, 1 } };
    for (int g = 0; g < 5; g++) params_set_group(ps, prefixes[g], g);
    for (int s = STAGE_WARM; s <= STAGE_LAST; s++) {
        Optimizer *o = optim_new(OPT_ADAM, ps, 1e-2, 0);
        for (int g = 1; g < 5; g++) optim_add_group(o, 1e-2, 0);
        stage_set_trainable(p, (Stage)s);
        Tensor *before = ft_tensor_new(FT_F32, ps->flat->shape, FT_CPU);
        ft_copy_(before, ps->flat);
        TrainOpts t = { .epochs = 1, .batch = 8, .seed = 1, .quiet = true };
        Loader *L = train_loader_new(&ds, &t, FT_CPU);
        train_epoch(m, o, L, &t, 0, NULL, NULL);
        loader_free(L);
        for (int i = 0; i < ps->n; i++) {
            const Param *q = &ps->items[i];
            if (!q->trainable) continue;
            bool changed = false;
            for (int64_t k = 0; k < q->t->numel; k++) changed |= ft_f32(before)[q->t->offset + k] != ft_f32(q->t)[k];
            bool want = false;
            for (int g = 0; g < 5; g++) if (strncmp(q->name, prefixes[g], strlen(prefixes[g])) == 0) want = expect[s][g];
            CHECK(changed == want, "stage %s: %s %s", stage_name((Stage)s), q->name, changed ? "changed" : "did not change");
        }
        ft_tensor_free(before);
        optim_free(o);
    }
    model_free(m);
    dataset_free(&ds);
}

TEST(tiny_protopnet_overfits_a_few_images_through_the_recipe) {
    Dataset ds;
    synthetic_quadrants(&ds, 16, 5, 60, 40, 90);
    Model *m = tiny("protopnet-small_cnn", 2, 13);
    ProtoNet *p = protonet_of(m);
    ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 2, .proto_depth = 8 };
    Recipe r;
    recipe_get("protopnet", p->kind, &r);
    r.epochs = 40; r.warm_epochs = 3; r.push_start = 39; r.push_every = 1; r.last_iters = 20; r.step_size = 100;
    r.lr_features = 3e-3; r.lr_last = 1e-2;
    int32_t idx[16];
    for (int i = 0; i < 16; i++) idx[i] = i;
    StagedData d = { .train = &ds, .train_idx = idx, .n_train = 16, .plain = &ds, .push_idx = idx, .val_idx = idx, .n_push = 16,
                     .n_val = 16, .dir = test_tmpdir(), .config = &mc };   /* validation = the training images */
    TrainOpts t = { .batch = 8, .seed = 2, .quiet = true };
    cJSON *doc = cJSON_CreateObject();
    double val = staged_train(p, &d, &r, &t, doc);
    CHECK(val >= 0, "%s", ft_last_error());
    cJSON *sel = cJSON_GetObjectItem(doc, "selected");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(sel, "epoch")) == 40 &&
          strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(sel, "push_dir")), "push-epoch-40") == 0,
          "the selected model is the one after the only push (epoch 40)");
    /* every last-layer pass records the validation accuracy after it; the last pass's is the stage's */
    cJSON *epochs = cJSON_GetObjectItem(doc, "epochs"), *rec = cJSON_GetArrayItem(epochs, cJSON_GetArraySize(epochs) - 1);
    cJSON *passes = cJSON_GetObjectItem(rec, "last_layer"), *one;
    CHECK(cJSON_GetArraySize(passes) == 20, "%d last-layer records for 20 passes", cJSON_GetArraySize(passes));
    double last = -1;
    cJSON_ArrayForEach(one, passes) {
        cJSON *v = cJSON_GetObjectItem(one, "val_acc");
        CHECK(cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1, "a last-layer pass without its validation accuracy");
        last = v->valuedouble;
    }
    CHECK(last == cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "val_acc_after_last_layer")) && last == val,
          "the last pass's validation accuracy %.4f is the stage's %.4f and the selection's %.4f", last,
          cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "val_acc_after_last_layer")), val);
    cJSON_Delete(doc);
    double acc = accuracy_on(m, &ds, idx, 16, 16);
    CHECK(acc == 1.0, "accuracy %.3f on the 16 training images after warm-up, joint, push and last layer", acc);
    model_free(m);
    dataset_free(&ds);
}

/* Each image's nearest patch to prototype j (brute force, double precision). */
static double image_distance(const float *z, const float *proto, int n, int D, int HW) {
    double best = INFINITY;
    for (int c = 0; c < HW; c++) {
        double d = 0;
        for (int k = 0; k < D; k++) { double t = z[((size_t)n * D + k) * HW + c] - proto[k]; d += t * t; }
        best = fmin(best, d);
    }
    return best;
}

static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

TEST(prune_finds_each_prototypes_nearest_images_and_counts_its_class) {
    Dataset ds;
    synthetic_quadrants(&ds, 20, 3, 60, 60, 80);
    Model *m = tiny("protopnet-small_cnn", 3, 17);
    ProtoNet *p = protonet_of(m);
    int M = p->n_protos, D = p->depth, H, W, N = dataset_size(&ds), k = 5;
    float *z = latents(p, &ds, &H, &W), *protos = malloc((size_t)M * D * sizeof *protos);
    ft_to_floats(p->prototypes, protos, (int64_t)M * D);
    int *image = malloc((size_t)M * k * sizeof *image), *own = malloc((size_t)M * sizeof *own);
    double *dist = malloc((size_t)M * k * sizeof *dist), *all = malloc((size_t)N * sizeof *all);
    bool *keep = malloc((size_t)M * sizeof *keep);
    prune_nearest(p, &ds, NULL, N, 6, k, image, dist, true);   /* batches of 6: the lists merge across batches */
    int kept = prune_select(p, &ds, image, k, 3, keep, own), expect_kept = 0;
    for (int j = 0; j < M; j++) {
        for (int n = 0; n < N; n++) all[n] = image_distance(z, protos + (size_t)j * D, n, D, H * W);
        int count = 0;
        for (int i = 0; i < k; i++) {
            int im = image[j * k + i];
            CHECK(im >= 0 && im < N, "prototype %d neighbour %d: image %d", j, i, im);
            CHECK_NEAR(dist[j * k + i], all[im], 1e-4 * (1 + all[im]));
            count += ft_i32(ds.labels)[im] == p->cls[j];
        }
        qsort(all, (size_t)N, sizeof *all, cmp_double);
        for (int i = 0; i < k; i++) CHECK_NEAR(dist[j * k + i], all[i], 1e-4 * (1 + all[i]));   /* the k smallest, in order */
        CHECK(own[j] == count && keep[j] == (count >= 3), "prototype %d: %d own-class neighbours counted as %d, keep %d", j, count,
              own[j], keep[j]);
        expect_kept += count >= 3;
    }
    CHECK(kept == expect_kept, "kept %d, expected %d", kept, expect_kept);
    free(z); free(protos); free(image); free(own); free(dist); free(all); free(keep);
    model_free(m);
    dataset_free(&ds);
}

/* logits[n, k] = sum over the kept prototypes j of w[k, j] * pooled[n, j], from the full model's forward. */
static void kept_logits(ProtoNet *p, Tensor *x, const bool *keep, double *out) {
    Tape *tp = ft_tape_new(FT_CPU);
    ft_no_grad_begin(tp);
    ProtoOut o;
    protonet_forward(p, tp, x, &o);
    Tensor *pooled = p->kind == PROTO_PPNET ? proto_log_similarity(tp, o.min_dist) : ft_max(tp, o.sim, FT_DIM(2) | FT_DIM(3), false, NULL);
    int N = x->shape.d[0], M = p->n_protos, K = p->base.num_classes;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < K; c++) {
            double s = 0;
            for (int j = 0; j < M; j++) if (keep[j]) s += ft_get(p->last.weight, (int64_t)c * M + j) * ft_get(pooled, (int64_t)n * M + j);
            out[n * K + c] = s;
        }
    ft_tape_free(tp);
}

TEST(a_pruned_network_keeps_its_prototypes_classes_and_weights_through_save_and_load) {
    Dataset ds;
    synthetic_quadrants(&ds, 8, 3, 60, 60, 80);
    int32_t idx[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(8, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(8), FT_CPU);
    dataset_batch(&ds, idx, 8, x, y);
    const char *archs[] = { "protopnet-small_cnn", "ours-fr-small_cnn" };
    for (int a = 0; a < 2; a++) {
        Model *m = tiny(archs[a], 3, 19);
        ProtoNet *p = protonet_of(m);
        bool keep[12] = { 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0 };   /* class 1 keeps one prototype of three */
        ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 3, .proto_depth = 8 };
        Model *q = protonet_select(p, keep, &mc);
        ProtoNet *pq = protonet_of(q);
        CHECK(pq && pq->n_protos == 8, "%s: %d prototypes after pruning, expected 8", archs[a], pq ? pq->n_protos : -1);
        const int cls[8] = { 0, 0, 1, 2, 2, 2, 3, 3 };
        for (int j = 0; j < 8; j++) CHECK(pq->cls[j] == cls[j], "pruned prototype %d has class %d, expected %d", j, pq->cls[j], cls[j]);
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j++)
                CHECK(ft_get(pq->off_class, c * 8 + j) == (c != cls[j]), "off-class mask [%d, %d]", c, j);
        double want[32], got[32];
        kept_logits(p, x, keep, want);
        Tape *tp = ft_tape_new(FT_CPU);
        ft_no_grad_begin(tp);
        q->training = false;
        Tensor *lq = q->forward(q, tp, x);
        for (int i = 0; i < 32; i++) { got[i] = ft_get(lq, i); CHECK_NEAR(got[i], want[i], 1e-4 * (1 + fabs(want[i]))); }
        char path[700];
        snprintf(path, sizeof path, "%s/pruned-%d.safetensors", test_tmpdir(), a);
        CHECK(model_save(q, &mc, path) == 0, "%s", ft_last_error());
        Model *r = model_load(path, FT_CPU, NULL);
        CHECK(r, "%s", ft_last_error());
        ProtoNet *pr = protonet_of(r);
        CHECK(pr->n_protos == 8 && memcmp(pr->cls, pq->cls, sizeof cls) == 0, "the loaded model lost the prototypes' classes");
        r->training = false;
        Tensor *lr = r->forward(r, tp, x);
        for (int i = 0; i < 32; i++) CHECK(ft_get(lr, i) == got[i], "logit %d changed through save and load", i);
        ft_tape_free(tp);
        model_free(r);
        model_free(q);
        model_free(m);
    }
    int n;
    CHECK(!protonet_classes_parse("0,1,x", &n) && strstr(ft_last_error(), "entry 3"), "a bad class list is refused");
    CHECK(!protonet_classes_parse("", &n), "an empty class list is refused");
    bool none[12] = { 0 };
    Model *m = tiny("protopnet-small_cnn", 3, 19);
    ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 3, .proto_depth = 8 };
    CHECK(!protonet_select(protonet_of(m), none, &mc) && strstr(ft_last_error(), "every prototype"), "pruning everything is refused");
    model_free(m);
    ft_tensor_free(x); ft_tensor_free(y);
    dataset_free(&ds);
}

/* The sum of every batch-norm running statistic and of the last layer's weights (host doubles). */
static void sums(const ParamSet *ps, double *stats, double *last) {
    *stats = *last = 0;
    for (int i = 0; i < ps->n; i++) {
        const Param *q = &ps->items[i];
        double *dst = strstr(q->name, "running_") ? stats : strncmp(q->name, "last_layer.", 11) == 0 ? last : NULL;
        for (int64_t k = 0; dst && k < q->t->numel; k++) *dst += ft_get(q->t, k) * (1 + k % 7);
    }
}

/* finch's default for the stages that freeze the trunk (warm-up, last layer): batch norm on its
 * running statistics, which stay as they were, so these stages train on the features that
 * evaluation and push see. --frozen-bn batch (ProtoPNet's code) updates them. */
TEST(frozen_trunk_stages_keep_batch_norm_on_running_statistics) {
    Dataset ds;
    synthetic_quadrants(&ds, 32, 6, 60, 60, 80);
    int32_t idx[32];
    for (int i = 0; i < 32; i++) idx[i] = i;
    ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 2, .proto_depth = 8 };
    StagedData d = { .train = &ds, .train_idx = idx, .n_train = 32, .plain = &ds, .push_idx = idx, .val_idx = idx, .n_push = 32,
                     .n_val = 32, .dir = test_tmpdir(), .config = &mc };
    TrainOpts t = { .batch = 8, .seed = 3, .quiet = true };
    for (int running = 1; running >= 0; running--) {
        Model *m = tiny("protopnet-small_cnn", 2, 21);
        ProtoNet *p = protonet_of(m);
        Recipe r;
        recipe_get("protopnet", p->kind, &r);
        CHECK(r.frozen_bn_running, "the recipe's default is batch norm on running statistics in frozen stages");
        r.frozen_bn_running = running;
        r.last_iters = 2;
        double stats0, last0, stats1, last1;
        sums(&m->params, &stats0, &last0);
        cJSON *passes = cJSON_CreateArray();
        staged_last_layer(p, &d, &r, &t, passes);
        cJSON_Delete(passes);
        sums(&m->params, &stats1, &last1);
        CHECK(last1 != last0, "the last layer did not train");
        CHECK(running ? stats1 == stats0 : stats1 != stats0, "--frozen-bn %s: running statistics %s (%.9g -> %.9g)",
              running ? "running" : "batch", stats1 == stats0 ? "unchanged" : "changed", stats0, stats1);
        CHECK(!m->bn_frozen, "the model is left with batch norm frozen after the stage");
        model_free(m);
    }
    dataset_free(&ds);
}

/* bn_frozen reaches every trunk's batch norms: in training mode (dropout off) the logits are
 * exactly eval mode's, where without it they differ. */
TEST(frozen_batch_norm_reaches_every_trunk) {
    Dataset ds;
    synthetic_quadrants(&ds, 6, 7, 60, 60, 80);
    int32_t idx[6] = { 0, 1, 2, 3, 4, 5 };
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(6, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(6), FT_CPU);
    dataset_batch(&ds, idx, 6, x, y);
    const char *archs[] = { "protopnet-small_cnn", "ours-fr-resnet18", "protopnet-vgg11_bn", "protopnet-densenet121" };
    for (int a = 0; a < 4; a++) {
        ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 1, .proto_depth = 8, .seed = 5,
                           .blocks = { 1, 1, 1, 1 } };   /* the smallest ResNet / DenseNet of each layout */
        Model *m = model_create(archs[a], &mc);
        m->dropout_off = true;
        Tape *tp = ft_tape_new(FT_CPU);
        ft_no_grad_begin(tp);
        double v[3][24];
        for (int mode = 0; mode < 3; mode++) {   /* eval; training with frozen batch norm; training */
            m->training = mode > 0;
            m->bn_frozen = mode == 1;
            Tensor *l = m->forward(m, tp, x);
            for (int i = 0; i < 24; i++) v[mode][i] = ft_get(l, i);
            ft_tape_reset(tp);
        }
        bool same = true, differs = false;
        for (int i = 0; i < 24; i++) { same &= v[1][i] == v[0][i]; differs |= v[2][i] != v[0][i]; }
        CHECK(same, "%s: training mode with frozen batch norm gives other logits than eval mode", archs[a]);
        CHECK(differs, "%s: batch statistics changed nothing (the check would be vacuous)", archs[a]);
        ft_tape_free(tp);
        model_free(m);
    }
    ft_tensor_free(x); ft_tensor_free(y);
    dataset_free(&ds);
}

/* The last-layer stage from cached features (computed once, in eval mode) trains the last layer
 * as the stage through the whole network does, for ProtoPNet and for Ours-FR (whose attention
 * dropout the frozen stage turns off), on a training subset out of dataset order. */
TEST(last_layer_stage_from_cached_features_matches_the_full_forward) {
    Dataset ds;
    synthetic_quadrants(&ds, 64, 8, 60, 60, 80);
    int32_t idx[24];
    for (int i = 0; i < 24; i++) idx[i] = 63 - 2 * i;   /* every other image, backwards */
    ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 2, .proto_depth = 8 };
    StagedData d = { .train = &ds, .train_idx = idx, .n_train = 24, .plain = &ds, .push_idx = idx, .val_idx = idx, .n_push = 24,
                     .n_val = 24, .dir = test_tmpdir(), .config = &mc };
    TrainOpts t = { .batch = 8, .seed = 5, .quiet = true };
    const char *archs[] = { "protopnet-small_cnn", "ours-fr-small_cnn" };
    for (int a = 0; a < 2; a++) {
        float w[2][4 * 8], w0[4 * 8];
        bool flagged[2] = { false, false };
        for (int cached = 0; cached < 2; cached++) {
            Model *m = tiny(archs[a], 2, 9);
            ProtoNet *p = protonet_of(m);
            ft_to_floats(p->last.weight, w0, 4 * 8);
            Recipe r;
            recipe_get("robust", p->kind, &r);
            r.last_iters = 3;
            r.lr_last = 1e-2;   /* a visible change in 9 steps */
            r.no_feature_cache = !cached;
            cJSON *passes = cJSON_CreateArray();
            staged_last_layer(p, &d, &r, &t, passes);
            cJSON *flag = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(passes, 0), "cached_features");
            flagged[cached] = cJSON_IsTrue(flag);
            cJSON_Delete(passes);
            ft_to_floats(p->last.weight, w[cached], 4 * 8);
            model_free(m);
        }
        CHECK(!flagged[0] && flagged[1], "%s: the passes say cached %d / %d, expected 0 / 1", archs[a], flagged[0], flagged[1]);
        double moved = 0, diff = 0;
        for (int i = 0; i < 32; i++) { moved = fmax(moved, fabs(w[0][i] - w0[i])); diff = fmax(diff, fabs(w[1][i] - w[0][i])); }
        CHECK(moved > 1e-2, "%s: the last layer hardly trained (max change %.3g)", archs[a], moved);
        CHECK(diff <= 1e-5 * (1 + moved), "%s: cached and full last-layer stages differ by %.3g (weights moved %.3g)", archs[a], diff, moved);
    }
    dataset_free(&ds);
}

/* The recipe's attention dropout (--attention-dropout) is the one the attention module trains
 * with: at 0, two training-mode forwards give the same attention logits; at the paper's 0.8
 * they differ (the check is not vacuous). */
TEST(the_recipes_attention_dropout_reaches_the_attention_module) {
    Dataset ds;
    synthetic_quadrants(&ds, 16, 5, 60, 40, 90);
    int32_t idx[16];
    for (int i = 0; i < 16; i++) idx[i] = i;
    ModelConfig mc = { .num_classes = 4, .width = 4, .prototypes_per_class = 2, .proto_depth = 8 };
    StagedData d = { .train = &ds, .train_idx = idx, .n_train = 16, .plain = &ds, .push_idx = idx, .val_idx = idx, .n_push = 16,
                     .n_val = 16, .dir = test_tmpdir(), .config = &mc };
    TrainOpts t = { .batch = 8, .seed = 2, .quiet = true };
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(16, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(16), FT_CPU);
    dataset_batch(&ds, idx, 16, x, y);
    for (int k = 0; k < 2; k++) {
        double rate = k == 0 ? 0.0 : 0.8;
        Model *m = tiny("ours-fr-small_cnn", 2, 13);
        Recipe r;
        recipe_get("robust", PROTO_FR, &r);
        r.epochs = 1; r.warm_epochs = 1; r.push_start = 0; r.push_every = 1; r.last_iters = 1;
        r.attention_dropout = rate;
        cJSON *doc = cJSON_CreateObject();
        CHECK(staged_train(protonet_of(m), &d, &r, &t, doc) >= 0, "%s", ft_last_error());
        cJSON_Delete(doc);
        m->training = true;
        Tape *tp = ft_tape_new(FT_CPU);
        ft_no_grad_begin(tp);
        float a[2][16 * 4];
        for (int i = 0; i < 2; i++) {
            ProtoOut o;
            protonet_forward(protonet_of(m), tp, x, &o);
            ft_to_floats(o.att_logits, a[i], 16 * 4);
        }
        ft_tape_free(tp);
        bool same = memcmp(a[0], a[1], sizeof a[0]) == 0;
        CHECK(same == (rate == 0), "attention dropout %.1f: two training forwards %s", rate, same ? "agree" : "differ");
        model_free(m);
    }
    ft_tensor_free(x); ft_tensor_free(y);
    dataset_free(&ds);
}
