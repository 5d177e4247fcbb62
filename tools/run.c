#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "core/fileio.h"
#include "data/cub.h"

void run_set_threads(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
}

static int load_cub(const char *cmd, const char *root, int size, Dataset *train, Dataset *test) {
    CubIndex ix;
    if (cub_index_load(root, &ix) != 0) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return 1; }
    fprintf(stderr, "finch %s: decoding CUB-200-2011 (%d images, %d classes) at %dx%d, cropped to the boxes\n", cmd, ix.n,
            ix.num_classes, size, size);
    int rc = (train && cub_dataset(&ix, CUB_TRAIN, true, size, train) != 0) || cub_dataset(&ix, CUB_TEST, true, size, test) != 0;
    if (rc) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); if (train) dataset_free(train); }
    cub_index_free(&ix);
    return rc;
}

static int load_folder(const char *cmd, const char *root, int size, Dataset *train, Dataset *test) {
    char split[1100];
    snprintf(split, sizeof split, "%s/split.txt", root);
    FILE *f = fopen(split, "r");
    if (f) fclose(f);
    else fprintf(stderr, "finch %s: %s not found: training and test images are the same\n", cmd, split);
    const char *sp = f ? split : NULL;
    int rc = (train && folder_dataset(root, sp, true, size, train) != 0) || folder_dataset(root, sp, false, size, test) != 0;
    if (rc) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); if (train) dataset_free(train); }
    return rc;
}

int run_load_data(const char *cmd, const char *data, const char *dir, int image_size, Dataset *train, Dataset *test) {
    if (strncmp(data, "cub:", 4) == 0) return load_cub(cmd, data + 4, image_size, train, test);
    if (strncmp(data, "folder:", 7) == 0) return load_folder(cmd, data + 7, image_size, train, test);
    if (strcmp(data, "fashion-mnist") != 0) {
        fprintf(stderr, "finch %s: --data '%s' is not a dataset finch can read (fashion-mnist, cub:DIR, folder:DIR)\n", cmd, data);
        return 2;
    }
    if (!dir) dir = FASHION_MNIST_DIR;
    if ((train && fashion_mnist_load(dir, true, train) != 0) || fashion_mnist_load(dir, false, test) != 0) {
        fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
        if (strcmp(dir, FASHION_MNIST_DIR) == 0)
            fprintf(stderr, "finch %s: install it with 'apt-get install dataset-fashion-mnist' or pass --data-dir\n", cmd);
        if (train) dataset_free(train);
        return 1;
    }
    return 0;
}

double run_training(const char *cmd, Model *m, const Dataset *train, const Dataset *test, const TrainOpts *t,
                    const OptimConfig *oc, int eval_n, cJSON *epochs, RunCheckpoint *ck) {
    int kind = optim_parse_kind(oc->optim);
    if (kind < 0) { fprintf(stderr, "finch %s: --optim must be sgd, adam or adamw, got '%s'\n", cmd, oc->optim); return -1; }
    TrainOpts to = *t;
    if (strcmp(oc->schedule, "cosine") == 0) to.schedule = (Schedule){ SCHED_COSINE, 0, 0, t->epochs, 0.0 };
    else if (strcmp(oc->schedule, "step") == 0) to.schedule = (Schedule){ SCHED_STEP, t->epochs > 2 ? t->epochs / 3 : 1, 0.1, 0, 0 };
    else if (strcmp(oc->schedule, "constant") == 0) to.schedule = (Schedule){ SCHED_CONSTANT, 0, 0, 0, 0 };
    else { fprintf(stderr, "finch %s: --schedule must be constant, step or cosine, got '%s'\n", cmd, oc->schedule); return -1; }
    Optimizer *o = optim_new((OptKind)kind, &m->params, oc->lr, oc->weight_decay);
    double acc = 0;
    int first = 0;
    if (ck && ck->resume) {
        CheckpointInfo saved;   /* only its epoch counts: ck->info holds this invocation's options */
        if (checkpoint_load(ck->path, m, o, &saved) != 0) {
            fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
            optim_free(o);
            return -1;
        }
        first = saved.epochs_done;
        if (!t->quiet) fprintf(stderr, "finch %s: resuming %s after epoch %d of %d\n", cmd, ck->path, first, t->epochs);
    }
    for (int e = first; e < t->epochs; e++) {
        EpochStats s = train_epoch(m, o, train, &to, e, NULL);
        RobustResult r = robust_accuracy(m, test, eval_n, 500, NULL, 0, true);
        acc = (double)r.clean_correct / r.total;
        if (!t->quiet)
            fprintf(stderr, "  epoch %d: train loss %.4f, train acc %.2f%%, test acc %.2f%% (%d images), %.0f img/s\n",
                    e + 1, s.loss, 100 * s.acc, 100 * acc, r.total, s.images_per_s);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "epoch", e + 1);
        cJSON_AddNumberToObject(j, "train_loss", s.loss);
        cJSON_AddNumberToObject(j, "train_acc", s.acc);
        cJSON_AddNumberToObject(j, "test_acc", acc);
        cJSON_AddNumberToObject(j, "seconds", s.seconds);
        cJSON_AddNumberToObject(j, "images_per_s", s.images_per_s);
        cJSON_AddItemToArray(epochs, j);
        if (ck) {
            ck->info.epochs_done = e + 1;
            if (checkpoint_save(ck->path, m, o, &ck->info) != 0) {
                fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
                optim_free(o);
                return -1;
            }
        }
    }
    optim_free(o);
    if (m->params.device == FT_CUDA && !t->quiet) {
        CudaMemoryStats ms = ft_cuda_memory();
        fprintf(stderr, "  GPU memory: peak %.1f MiB in use, %.1f MiB cached, %lld cudaMalloc calls in all\n",
                ms.peak / 1048576.0, ms.cached / 1048576.0, (long long)ms.device_mallocs);
    }
    return acc;
}

/* The first test example of each class (up to 10 columns). */
static int pick_examples(const Dataset *ds, int n, int32_t *idx) {
    int k = 0;
    for (int c = 0; c < ds->num_classes && k < 10; c++)
        for (int i = 0; i < n; i++)
            if (ft_i32(ds->labels)[i] == c) { idx[k++] = i; break; }
    return k;
}

static int draw_examples(Model *m, const Dataset *test, int n, const LinfAttack *a, uint64_t seed, const char *png) {
    int32_t idx[10], pc[10], pa[10], lab[10];
    int k = pick_examples(test, n, idx);
    Shape s = test->images->shape;
    s.d[0] = k;
    Tensor *x = ft_tensor_new(FT_F32, s, m->params.device), *y = ft_tensor_new(FT_I32, SHAPE(k), m->params.device);
    Tensor *xa = ft_tensor_new(FT_F32, s, m->params.device);
    dataset_batch(test, idx, k, x, y);
    for (int i = 0; i < k; i++) lab[i] = ft_i32(test->labels)[idx[i]];
    Tape *tp = ft_tape_new(m->params.device);
    Rng rng = rng_new(seed);
    bool was = m->training;
    m->training = false;
    attack_linf(m, tp, x, y, a, &rng, xa, true);
    ft_no_grad_begin(tp);
    model_predict(m->forward(m, tp, x), pc);
    model_predict(m->forward(m, tp, xa), pa);
    ft_no_grad_end(tp);
    m->training = was;
    Tensor *hx = ft_tensor_new(FT_F32, s, FT_CPU), *ha = ft_tensor_new(FT_F32, s, FT_CPU);
    ft_copy_(hx, x);
    ft_copy_(ha, xa);
    int rc = adv_grid_png(png, hx, ha, lab, pc, pa, k, a->eps);
    ft_tensor_free(hx); ft_tensor_free(ha); ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(xa);
    ft_tape_free(tp);
    return rc;
}

double run_attack(Model *m, const Dataset *test, int n, int batch, const LinfAttack *a, uint64_t seed,
                  const char *png, bool quiet, cJSON *out) {
    RobustResult r = robust_accuracy(m, test, n, batch, a, seed, quiet);
    double clean = (double)r.clean_correct / r.total, robust = (double)r.adv_correct / r.total;
    cJSON_AddNumberToObject(out, "eps", a->eps);
    cJSON_AddNumberToObject(out, "alpha", a->alpha);
    cJSON_AddNumberToObject(out, "steps", a->steps);
    cJSON_AddBoolToObject(out, "random_start", a->random_start);
    cJSON_AddNumberToObject(out, "images", r.total);
    cJSON_AddNumberToObject(out, "clean_acc", clean);
    cJSON_AddNumberToObject(out, "robust_acc", robust);
    cJSON_AddNumberToObject(out, "seconds", r.seconds);
    if (png) {
        if (draw_examples(m, test, r.total, a, seed, png) != 0) fprintf(stderr, "finch: %s\n", ft_last_error());
        else cJSON_AddStringToObject(out, "picture", png);
    }
    return robust;
}

bool run_model_config(const char *cmd, const char *blocks, int stem, const char *vgg_cfg, ModelConfig *mc) {
    mc->stem = stem;
    int n = blocks ? model_parse_ints("--blocks", blocks, mc->blocks, 4, false) : 4;
    if (n != 4) {
        fprintf(stderr, "finch %s: %s\n", cmd, n < 0 ? ft_last_error() : "--blocks needs 4 numbers, one per stage");
        return false;
    }
    if (vgg_cfg && (mc->n_vgg_cfg = model_parse_ints("--vgg-cfg", vgg_cfg, mc->vgg_cfg, MODEL_MAX_VGG_CFG, true)) < 0) {
        fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
        return false;
    }
    return true;
}

int run_write_json(const char *cmd, const char *path, cJSON *doc) {
    char *s = cJSON_Print(doc);
    int rc = write_file_atomic(path, s, strlen(s));
    free(s);
    if (rc != 0) fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
    return rc;
}
