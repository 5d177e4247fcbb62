/* finch train / eval / attack on saved models. */
#include <stdio.h>
#include <string.h>
#include "run.h"
#include "train_proto.h"
#include "core/fileio.h"
#include "dist/dist.h"
#include "dist/sync_bn.h"
#include "models/model_io.h"
#include "models/protonet.h"

/* Options that describe a run (and so go into its checkpoint); the others are per invocation. */
static bool run_option(const char *name) {
    const char *local[] = { "resume", "out", "init", "device", "threads", "quiet", "data-dir", "workers", "overwrite", "bucket-mib" };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) if (strcmp(name, local[i]) == 0) return false;
    return true;
}

static void options_to_info(const CliArg *args, int n, CheckpointInfo *info) {
    info->n_options = 0;
    for (int i = 0; i < n && info->n_options < CHECKPOINT_MAX_OPTIONS; i++) {
        const CliArg *a = &args[i];
        char *v = info->option_values[info->n_options];
        if (!run_option(a->name)) continue;
        switch (a->type) {
        case ARG_INT: snprintf(v, 256, "%d", *(int *)a->dst); break;
        case ARG_DOUBLE: case ARG_EPS: snprintf(v, 256, "%.17g", *(double *)a->dst); break;
        case ARG_STRING: if (!*(const char **)a->dst) continue; snprintf(v, 256, "%s", *(const char **)a->dst); break;
        case ARG_FLAG: if (!*(bool *)a->dst) continue; v[0] = 0; break;
        }
        snprintf(info->option_names[info->n_options++], 32, "%s", a->name);
    }
}

/* The checkpoint's options back into the variables, through the same parser as the command line. */
static int options_from_info(const CheckpointInfo *info, const CliArg *args, int n) {
    static char flags[CHECKPOINT_MAX_OPTIONS][40];
    char *av[1 + 2 * CHECKPOINT_MAX_OPTIONS];
    int ac = 0;
    av[ac++] = "train";
    for (int i = 0; i < info->n_options; i++) {
        snprintf(flags[i], sizeof flags[i], "--%s", info->option_names[i]);
        av[ac++] = flags[i];
        bool flag = false;
        for (int k = 0; k < n; k++) if (strcmp(args[k].name, info->option_names[i]) == 0) flag = args[k].type == ARG_FLAG;
        if (!flag) av[ac++] = (char *)info->option_values[i];
    }
    return cli_parse("train --resume", "", ac, av, args, n);
}

int cmd_train(int argc, char **argv) {
    const char *model = "small_cnn", *out = "runs/train", *augment = "none";
    DataOpts d = { .data = "fashion-mnist" };
    const char *optim = "adam", *schedule = "cosine", *adv = "none", *device = "cpu", *init = NULL, *resume = NULL;
    const char *blocks = NULL, *vgg_cfg = NULL;
    int epochs = 0, per_class = 0, depth = 0, batch = 128, steps = 7, width = 0, stem = 0, seed = 1, threads = 0, limit = 0, workers = 2;
    int feature_dim = 0;
    double lr = 2e-3, wd = 0, eps = 0.1, alpha = 0.125, bucket_mib = 25;
    bool quiet = false, overwrite = false, no_dropout = false, sync_bn = false;
    ProtoArgs pa = { .warm = -1, .push_start = -1, .push_every = -1, .last_iters = -1, .val_fraction = 0.1, .att_dropout = -1 };
    const CliArg args[] = {
        { "model", ARG_STRING, &model, 0, 0, "architecture" },
        DATA_ARGS(d),
        { "augment", ARG_STRING, &augment, 0, 0, "none | online (random crop, flip, rotation, shear, perspective, colour)" },
        { "workers", ARG_INT, &workers, 0, 64, "loader threads preparing batches in the background (0: none)" },
        { "out", ARG_STRING, &out, 0, 0, "run directory: model.safetensors, checkpoint.safetensors, train.json" },
        { "resume", ARG_STRING, &resume, 0, 0, "continue the run in this directory (its options; flags given here override)" },
        { "overwrite", ARG_FLAG, &overwrite, 0, 0, "replace the run already in --out (else such an --out is refused)" },
        { "epochs", ARG_INT, &epochs, 1, 100000, "epochs (default: 2 for a classifier, the recipe's for a prototype network)" },
        { "batch", ARG_INT, &batch, 2, 65536, "batch size (under mpirun: the global batch, split across the processes)" },
        { "limit", ARG_INT, &limit, 0, 2147483647, "train on the first N samples only (0: all)" },
        { "bucket-mib", ARG_DOUBLE, &bucket_mib, 1e-6, 4096, "under mpirun: gradients are summed across processes in buckets of this many MiB, each sent while the backward goes on" },
        { "sync-bn", ARG_FLAG, &sync_bn, 0, 0, "under mpirun: batch norm takes its statistics over every process's batch (default: each its own)" },
        { "no-dropout", ARG_FLAG, &no_dropout, 0, 0, "train without the model's dropout (steps that depend on the data alone)" },
        { "optim", ARG_STRING, &optim, 0, 0, "sgd | adam | adamw" },
        { "lr", ARG_DOUBLE, &lr, 0, 100, "learning rate" },
        { "wd", ARG_DOUBLE, &wd, 0, 1, "weight decay" },
        { "schedule", ARG_STRING, &schedule, 0, 0, "constant | step | cosine" },
        { "width", ARG_INT, &width, 0, 4096, "reduced width (0: the architecture's standard size)" },
        { "blocks", ARG_STRING, &blocks, 0, 0, "ResNet blocks per stage / DenseNet layers per block, e.g. 2,2,2,2" },
        { "stem", ARG_INT, &stem, 0, 4096, "DenseNet initial features (0: twice the growth rate)" },
        { "feature-dim", ARG_INT, &feature_dim, 0, 4096, "small_cnn: a linear feature of this size before the classifier (0: the ReLU'd 128; 2: drawable)" },
        { "vgg-cfg", ARG_STRING, &vgg_cfg, 0, 0, "VGG channels per conv, M for a max-pool, e.g. 64,M,128,M" },
        { "prototypes-per-class", ARG_INT, &per_class, 0, 10000, "prototype networks: prototypes per class (0: 10)" },
        { "proto-depth", ARG_INT, &depth, 0, 65536, "prototype networks: prototype channels (0: 128)" },
        PROTO_ARGS(pa),
        { "init", ARG_STRING, &init, 0, 0, "start from these weights (safetensors; tools/export_torchvision.py makes them)" },
        { "adv", ARG_STRING, &adv, 0, 0, "adversarial training: none | fgsm-rs | pgd" },
        { "eps", ARG_EPS, &eps, 0, 1, "adversarial training radius (L-inf, [0,1] pixels)" },
        { "alpha", ARG_EPS, &alpha, 0, 1, "adversarial training step" },
        { "steps", ARG_INT, &steps, 1, 1000, "PGD steps for --adv pgd" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress lines" },
    };
    const int n_args = sizeof args / sizeof args[0];
    const char *summary = "Train a classifier, plainly or adversarially, and save it to --out. A checkpoint is written\n"
                          "after every epoch; --resume RUN_DIR continues from it with the run's options. With the\n"
                          "same --epochs, an interrupted run resumes bit for bit on the CPU (a larger --epochs\n"
                          "extends it, and reshapes a cosine schedule from there on).";
    int rc = cli_parse("train", summary, argc, argv, args, n_args);
    if (rc) return rc == 1 ? 0 : 2;
    static CheckpointInfo restored;   /* backs the option strings restored from a checkpoint */
    RunCheckpoint ck = { 0 };
    char ck_path[1100];
    if (resume) {
        snprintf(ck_path, sizeof ck_path, "%s/checkpoint.safetensors", resume);
        if (checkpoint_read_info(ck_path, &restored) != 0) { fprintf(stderr, "finch train: --resume: %s\n", ft_last_error()); return 1; }
        out = resume;
        checkpoint_info_free(&restored);   /* the trainer reads its own state back */
        if (options_from_info(&restored, args, n_args) != 0) return 2;
        if (cli_parse("train", summary, argc, argv, args, n_args) != 0) return 2;   /* this invocation's flags win */
        if (init) { fprintf(stderr, "finch train: --init and --resume exclude each other\n"); return 2; }
    }
    if ((rc = cli_unused_train_flags(argc, argv, model, adv)) != 0) return rc;
    Device dev;
    if (!cli_device("train", device, &dev)) return 2;
    int adv_kind = adv_parse_kind(adv);
    if (adv_kind < 0) { fprintf(stderr, "finch train: --adv must be none, fgsm-rs or pgd, got '%s'\n", adv); return 2; }
    run_set_threads(threads);
    ModelConfig mc = { .num_classes = 10, .width = width, .prototypes_per_class = per_class, .proto_depth = depth,
                       .seed = (uint64_t)seed, .device = dev };
    if (!run_model_config("train", blocks, stem, vgg_cfg, &mc)) return 2;
    mc.feature_dim = feature_dim;
    bool online = strcmp(augment, "online") == 0;
    if (!online && strcmp(augment, "none") != 0) { fprintf(stderr, "finch train: --augment must be none or online, got '%s'\n", augment); return 2; }
    int ranks = ft_dist_size();   /* data-parallel (mpirun): --batch is split across the processes; rank 0 writes */
    if (batch % ranks != 0) {
        fprintf(stderr, "finch train: --batch %d does not split across %d processes: give a multiple of %d\n", batch, ranks, ranks);
        return 2;
    }
    if (ft_dist_rank() == 0 && (rc = run_claim("train", out, resume != NULL, overwrite)) != 0) return rc;
    if (resume) {   /* the checkpoint's epochs against the ones asked for */
        pa.epochs = epochs;
        int target = protonet_parse_arch(model, NULL, NULL) ? proto_epochs(&pa, model) : epochs > 0 ? epochs : 2;
        if (target > 0 && restored.epochs_done > target) {
            fprintf(stderr, "finch train: --resume %s: its checkpoint is after epoch %d; --epochs %d cannot undo that\n", resume,
                    restored.epochs_done, target);
            return 2;
        }
        if (target > 0 && restored.epochs_done == target && run_is_finished(resume)) {
            printf("finch train: %s already finished its %d epochs (train.json, model.safetensors); nothing to do "
                   "(a larger --epochs continues it)\n", resume, target);
            return 0;
        }
    }
    Splits data;
    if ((rc = run_load_data("train", &d, true, &data)) != 0) return rc;
    const Dataset *train = run_train_set(&data), *test = &data.test;
    if (online && train->images->shape.d[1] != 3) {
        fprintf(stderr, "finch train: --augment online needs colour images; %s has %d channel(s)\n", train->name, train->images->shape.d[1]);
        splits_free(&data);
        return 2;
    }
    mc.num_classes = train->num_classes;
    Model *m = model_create(model, &mc);
    if (!m) {
        fprintf(stderr, "finch train: --model: %s\n", ft_last_error());
        splits_free(&data);
        return 2;
    }
    m->dropout_off = no_dropout;
    if (sync_bn && ranks > 1) dist_sync_batchnorm(true);
    if (run_check_input("train", m, train, d.data) != 0) {
        model_free(m);
        splits_free(&data);
        return 2;
    }
    int n_train = limit > 0 && limit < dataset_size(train) ? limit : dataset_size(train);
    if (!protonet_of(m) && n_train < batch) {   /* (a prototype network's split is checked by train_protonet) */
        fprintf(stderr, "finch train: --batch %d is more than the %d training images%s: no full batch to train on\n", batch,
                n_train, limit > 0 ? " (--limit)" : "");
        model_free(m);
        splits_free(&data);
        return 2;
    }
    if (init) {   /* non-strict: a classifier's trunk into a model with another head */
        LoadReport r = { 0 };
        int lrc = model_load_weights(m, init, false, &r);
        if (lrc != 0 || r.loaded == 0) {
            fprintf(stderr, "finch train: --init: %s\n", lrc != 0 ? ft_last_error() : "no tensor of the file fits this model");
            model_free(m);
            splits_free(&data);
            return 1;
        }
        fprintf(stderr, "finch train: --init %s: %d tensors loaded; %d missing, %d unexpected, %d mis-shaped%s%s "
                        "(those keep their initialisation)\n", init, r.loaded, r.missing, r.unexpected, r.misshaped,
                r.first_problem[0] ? "; first: " : "", r.first_problem);
    }

    if (epochs == 0 && !protonet_of(m)) epochs = 2;
    StepAttack a = adv_kind == ADV_PGD ? attack_pgd(eps, alpha, steps) : attack_fgsm_rs(eps, alpha);
    TrainOpts t = { .epochs = epochs, .batch = batch, .seed = (uint64_t)seed, .quiet = quiet || ft_dist_rank() > 0, .adv = (AdvKind)adv_kind,
                    .attack = a, .limit = limit, .workers = workers, .augment = online ? &augment_online : NULL,
                    .bucket_mib = bucket_mib };
    OptimConfig oc = { optim, lr, wd, schedule };
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model", model);
    cJSON_AddStringToObject(doc, "data", d.data);
    cJSON_AddStringToObject(doc, "augment", augment);
    cJSON_AddStringToObject(doc, "adv", adv);
    ft_catch_stop_signals();   /* from here, SIGINT and SIGTERM stop between batches, keeping the checkpoint */
    CheckpointInfo given = { 0 };   /* the run's options: for checkpoints, finch prune and people */
    options_to_info(args, n_args, &given);
    cJSON *opts = cJSON_AddObjectToObject(doc, "options");
    for (int i = 0; i < given.n_options; i++) cJSON_AddStringToObject(opts, given.option_names[i], given.option_values[i]);
    if (train->class_names) cJSON_AddItemToObject(doc, "class_names", cJSON_CreateStringArray(train->class_names, train->num_classes));
    if (protonet_of(m)) {   /* staged training; the recipe decides the optimizers and the schedule */
        pa.epochs = epochs;
        rc = train_protonet(&pa, m, &mc, &data, &t, out, &given, resume != NULL, doc);
        cJSON_Delete(doc);
        model_free(m);
        splits_free(&data);
        return rc;
    }
    snprintf(ck_path, sizeof ck_path, "%s/checkpoint.safetensors", out);
    ck.path = ck_path;
    ck.resume = resume != NULL;
    options_to_info(args, n_args, &ck.info);
    double acc = run_training("train", m, train, test, &t, &oc, 0, cJSON_AddArrayToObject(doc, "epochs"), &ck);
    char path[1100], json[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    snprintf(json, sizeof json, "%s/train.json", out);
    if (acc >= 0 && ft_dist_rank() == 0) {
        cJSON_AddNumberToObject(doc, "test_acc", acc);
        rc = model_save(m, &mc, path);
        if (rc) fprintf(stderr, "finch train: %s\n", ft_last_error());
        else rc = run_write_json("train", json, doc);
        if (!rc) printf("test accuracy %.2f%%; saved %s and %s\n", 100 * acc, path, json);
    }
    checkpoint_info_free(&ck.info);
    cJSON_Delete(doc);
    model_free(m);
    splits_free(&data);
    return acc < 0 ? run_exit_status(acc) : rc ? 1 : 0;
}
