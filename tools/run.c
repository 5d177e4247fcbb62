#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "run_dir.h"
#include "core/fileio.h"
#include "dist/dist.h"
#include "data/cache.h"
#include "data/cub.h"
#include "data/image.h"
#include "data/synthetic.h"

void run_set_threads(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
}

static int load_images(const char *cmd, const DataOpts *d, const char *kind, const char *path, Splits *out) {
    bool center = d->resize && strcmp(d->resize, "center-crop") == 0;
    if (d->resize && !center && strcmp(d->resize, "squash") != 0) {
        fprintf(stderr, "finch %s: --resize must be squash or center-crop, got '%s'\n", cmd, d->resize);
        return 2;
    }
    if (cache_is_file(path)) {
        CacheHeader h;
        if (cache_open(path, out, &h) != 0) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return 1; }
        if (strcmp(h.kind, kind) != 0) {
            fprintf(stderr, "finch %s: %s is a %s cache: use --data %s:%s\n", cmd, path, h.kind, h.kind, path);
            splits_free(out);
            return 2;
        }
        const char *bad = d->image_size && d->image_size != (int)h.size ? "--image-size" : d->full_image == (bool)h.crop ? "--full-image"
                        : d->resize && center != (bool)h.keep_aspect ? "--resize" : NULL;
        if (bad) {
            fprintf(stderr, "finch %s: %s holds images at %ux%u (%s%s); %s asks otherwise: drop the flag or prepare another "
                    "cache\n", cmd, path, h.size, h.size, h.crop ? "cropped to their boxes, " : "", h.keep_aspect ? "center-cropped" : "squashed", bad);
            splits_free(out);
            return 2;
        }
        fprintf(stderr, "finch %s: %s: %s, %d train (%d augmented) / %d test images at %ux%u\n", cmd, path, h.kind,
                dataset_size(&out->train), dataset_size(&out->augmented), dataset_size(&out->test), h.size, h.size);
        return 0;
    }
    if (d->max_image_side) image_set_max_side(d->max_image_side);
    SourceList s;
    char split[1100];
    snprintf(split, sizeof split, "%s/split.txt", path);
    bool folder = strcmp(kind, "folder") == 0, has_split = folder && cache_is_file(split);
    if (folder && !has_split)
        fprintf(stderr, "finch %s: %s not found: every 5th image of each class (by name) is held out for testing; "
                "write that file to choose the split\n", cmd, split);
    if ((folder ? folder_sources(path, has_split ? split : NULL, &s) : cub_sources(path, &s)) != 0) {
        fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
        return 1;
    }
    DecodeOpts o = { .size = d->image_size ? d->image_size : 224, .crop = !d->full_image, .keep_aspect = center };
    fprintf(stderr, "finch %s: decoding %s (%d images, %d classes) at %dx%d (finch prepare does this once)\n", cmd, path,
            s.n, s.num_classes, o.size, o.size);
    int rc = decode_splits(&s, &o, out);
    if (rc) fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
    sources_free(&s);
    return rc ? 1 : 0;
}

int run_load_data(const char *cmd, const DataOpts *d, bool want_train, Splits *out) {
    memset(out, 0, sizeof *out);
    int rc;
    if (strncmp(d->data, "cub:", 4) == 0) rc = load_images(cmd, d, "cub", d->data + 4, out);
    else if (strncmp(d->data, "folder:", 7) == 0) rc = load_images(cmd, d, "folder", d->data + 7, out);
    else if (strcmp(d->data, "synthetic") == 0) {
        synthetic_splits(SYNTHETIC_TRAIN, SYNTHETIC_TEST, &out->train, &out->test);
        rc = 0;
    } else if (strcmp(d->data, "fashion-mnist") != 0) {
        fprintf(stderr, "finch %s: --data '%s' is not a dataset finch can read (fashion-mnist, synthetic, cub:DIR_OR_CACHE, "
                "folder:DIR_OR_CACHE)\n", cmd, d->data);
        return 2;
    } else {
        const char *dir = d->dir ? d->dir : FASHION_MNIST_DIR;
        rc = (want_train && fashion_mnist_load(dir, true, &out->train) != 0) || fashion_mnist_load(dir, false, &out->test) != 0;
        if (rc) {
            fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
            if (strcmp(dir, FASHION_MNIST_DIR) == 0)
                fprintf(stderr, "finch %s: install it with 'apt-get install dataset-fashion-mnist' or pass --data-dir\n", cmd);
            splits_free(out);
        }
    }
    const char *empty = rc ? NULL : dataset_size(&out->test) == 0 ? "test" : want_train && dataset_size(&out->train) == 0 ? "training" : NULL;
    if (empty) {
        fprintf(stderr, "finch %s: %s has no %s images (does its split file list any?)\n", cmd, d->data, empty);
        splits_free(out);
        return 1;
    }
    if (rc == 0 && !want_train) { dataset_free(&out->train); dataset_free(&out->augmented); }
    return rc;
}

int run_check_input(const char *cmd, const Model *m, const Dataset *ds, const char *data) {
    const Shape s = ds->images->shape;
    if (model_accepts(m, s.d[1], s.d[2], s.d[3])) return 0;
    fprintf(stderr, "finch %s: --data %s has %dx%d images with %d channel(s); %s takes ", cmd, data, s.d[2], s.d[3], s.d[1], m->arch);
    if (m->height) fprintf(stderr, "%dx%d images with %d channel(s)", m->height, m->width, m->in_channels);
    else fprintf(stderr, "images of any size with %d channel(s)", m->in_channels);
    fprintf(stderr, " (--image-size resizes cub: and folder: data)\n");
    return 2;
}

int run_exit_status(double result) {
    return result == RUN_BAD_OPTION ? 2 : result == RUN_STOPPED ? 128 + ft_stop_signal() : result < 0 ? 1 : 0;
}

void run_report_stop(const char *cmd, int epoch, const EpochState *at, const char *checkpoint) {
    fprintf(stderr, "\nfinch %s: stopped by %s during epoch %d", cmd, ft_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", epoch + 1);
    if (!checkpoint) fprintf(stderr, "\n");
    else if (at->batches) fprintf(stderr, " after its batch %d; %s holds the run up to there: --resume continues from it\n", at->batches, checkpoint);
    else fprintf(stderr, "; %s holds the run up to the start of that epoch: --resume continues from it\n", checkpoint);
}

/* Saves the checkpoint after `done` whole epochs (logged in `epochs`) and, when at is not NULL,
 * the batches of the next one that at says were done. */
static int save_checkpoint(const char *cmd, RunCheckpoint *ck, Model *m, Optimizer *o, int done, cJSON *epochs, const EpochState *at) {
    if (ft_dist_rank() > 0) return 0;   /* data-parallel: rank 0 keeps the run */
    ck->info.epochs_done = done;
    cJSON *state = cJSON_CreateObject();
    cJSON_AddItemToObject(state, "epochs", cJSON_Duplicate(epochs, true));
    if (at && at->batches) cJSON_AddItemToObject(state, "stopped_epoch", epoch_state_json(at));
    free(ck->info.state);
    ck->info.state = cJSON_PrintUnformatted(state);
    cJSON_Delete(state);
    if (checkpoint_save(ck->path, m, o, &ck->info) == 0) return 0;
    fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
    return -1;
}

/* Loads ck's checkpoint into m and o, its logged epochs into epochs and, when it stopped inside an
 * epoch, where into *at (else at->batches is 0). Returns the whole epochs done, or -1. */
static int load_checkpoint(const char *cmd, RunCheckpoint *ck, Model *m, Optimizer *o, const Loader *L, int batch, cJSON *epochs,
                           EpochState *at) {
    CheckpointInfo saved;   /* only its epoch counts: ck->info holds this invocation's options */
    *at = (EpochState){ 0 };
    if (checkpoint_load(ck->path, m, o, &saved) != 0) {
        fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
        return -1;
    }
    int first = saved.epochs_done;
    cJSON *state = cJSON_Parse(saved.state ? saved.state : ""), *e;   /* the epochs before, logged again */
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(state, "epochs")) cJSON_AddItemToArray(epochs, cJSON_Duplicate(e, true));
    const cJSON *stopped = cJSON_GetObjectItemCaseSensitive(state, "stopped_epoch");
    if (stopped && epoch_state_parse(stopped, ck->path, loader_batches(L), batch, at) != 0) {
        fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
        first = -1;
    }
    cJSON_Delete(state);
    checkpoint_info_free(&saved);
    return first;
}

double run_training(const char *cmd, Model *m, const Dataset *train, const Dataset *test, const TrainOpts *t,
                    const OptimConfig *oc, int eval_n, cJSON *epochs, RunCheckpoint *ck) {
    int kind = optim_parse_kind(oc->optim);
    if (kind < 0) { fprintf(stderr, "finch %s: --optim must be sgd, adam or adamw, got '%s'\n", cmd, oc->optim); return -1; }
    TrainOpts to = *t;
    if (strcmp(oc->schedule, "cosine") == 0) to.schedule = (Schedule){ .kind = SCHED_COSINE, .total = t->epochs };
    else if (strcmp(oc->schedule, "step") == 0) to.schedule = (Schedule){ .kind = SCHED_STEP, .step_size = t->epochs > 2 ? t->epochs / 3 : 1, .gamma = 0.1 };
    else if (strcmp(oc->schedule, "constant") == 0) to.schedule = (Schedule){ .kind = SCHED_CONSTANT };
    else { fprintf(stderr, "finch %s: --schedule must be constant, step or cosine, got '%s'\n", cmd, oc->schedule); return -1; }
    Optimizer *o = optim_new((OptKind)kind, &m->params, oc->lr, oc->weight_decay);
    Loader *L = train_loader_new(train, t, m->params.device);
    double acc = 0;
    int first = 0;
    EpochState at = { 0 };
    if (ck && ck->resume) {
        first = load_checkpoint(cmd, ck, m, o, L, t->batch, epochs, &at);
        if (first < 0) {
            optim_free(o);
            loader_free(L);
            return RUN_FAILED;
        }
        if (!t->quiet && at.batches)
            fprintf(stderr, "finch %s: resuming %s in epoch %d of %d, after its batch %d\n", cmd, ck->path, first + 1, t->epochs, at.batches);
        else if (!t->quiet) fprintf(stderr, "finch %s: resuming %s after epoch %d of %d\n", cmd, ck->path, first, t->epochs);
    }
    for (int e = first; e < t->epochs; e++) {
        EpochStats s = train_epoch(m, o, L, &to, e, e == first && at.batches ? &at : NULL, NULL);
        if (s.stopped) {
            int rc = ck ? save_checkpoint(cmd, ck, m, o, e, epochs, &s.state) : 0;
            run_report_stop(cmd, e, &s.state, ck && rc == 0 ? ck->path : NULL);
            optim_free(o);
            loader_free(L);
            return rc == 0 ? RUN_STOPPED : RUN_FAILED;
        }
        Accuracy r = clean_accuracy(m, test, eval_n, 500, true);
        acc = (double)r.correct / r.total;
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
        if (ck && save_checkpoint(cmd, ck, m, o, e + 1, epochs, NULL) != 0) {
            optim_free(o);
            loader_free(L);
            return RUN_FAILED;
        }
    }
    optim_free(o);
    loader_free(L);
    if (first >= t->epochs) {   /* killed after its last checkpoint: the run is finished from it */
        Accuracy r = clean_accuracy(m, test, eval_n, 500, true);
        acc = (double)r.correct / r.total;
    }
    if (m->params.device == FT_CUDA && !t->quiet) {
        CudaMemoryStats ms = ft_cuda_memory();
        fprintf(stderr, "  GPU memory: peak %.1f MiB in use, %.1f MiB cached, %lld cudaMalloc calls in all\n",
                ms.peak / 1048576.0, ms.cached / 1048576.0, (long long)ms.device_mallocs);
    }
    return acc;
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
    int rc = write_json_atomic(path, doc);
    if (rc != 0) fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error());
    return rc;
}

int run_data_of_run(const char *cmd, const char *run, int argc, char **argv, DataOpts *d, RunDataCopy *keep) {
    if (!run || cli_given(argc, argv, "data")) return 0;
    DataOpts given = *d;
    cJSON *doc;
    int rc = run_dir_data(cmd, run, d, &doc);
    if (rc != 0) return rc;
    snprintf(keep->data, sizeof keep->data, "%s", d->data);
    d->data = keep->data;
    if (d->resize) { snprintf(keep->resize, sizeof keep->resize, "%s", d->resize); d->resize = keep->resize; }
    cJSON_Delete(doc);
    if (cli_given(argc, argv, "image-size")) d->image_size = given.image_size;
    if (cli_given(argc, argv, "full-image")) d->full_image = given.full_image;
    if (cli_given(argc, argv, "resize")) d->resize = given.resize;
    d->max_image_side = given.max_image_side;
    return 0;
}
