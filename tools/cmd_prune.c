/* finch prune: ProtoPNet's pruning of a trained run. The prototypes whose k nearest training
 * patches include fewer than min-own of their class are removed, the last layer is re-optimised
 * on the run's training images, and the result is written as a new run directory (model, push
 * report of the kept prototypes renumbered, train.json) that explain and attack read like any
 * other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run_dir.h"
#include "train_proto.h"
#include "core/fileio.h"
#include "models/model_io.h"
#include "train/prune.h"

/* The kept prototypes' report entries and pictures, renumbered, into out/prototypes/. */
static int copy_report(const RunDir *r, const bool *keep, const char *out) {
    char dir[1100], src[1300], dst[1300];
    snprintf(dir, sizeof dir, "%s/prototypes", out);
    if (make_dirs(dir) != 0) return -1;
    cJSON *doc = cJSON_Duplicate(r->protos, true), *list = cJSON_GetObjectItemCaseSensitive(doc, "prototypes");
    cJSON *kept = cJSON_CreateArray();
    int rc = 0;
    for (int j = 0, n = 0; j < r->p->n_protos && rc == 0; j++) {
        if (!keep[j]) continue;
        cJSON *e = cJSON_Duplicate(cJSON_GetArrayItem(list, j), true);
        cJSON_ReplaceItemInObject(e, "prototype", cJSON_CreateNumber(n));
        cJSON_AddNumberToObject(e, "original_prototype", j);
        cJSON_AddItemToArray(kept, e);
        bool has_image = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "image")) >= 0;
        const char *kinds[] = { "", "-heat", "-patch" };
        for (int k = 0; k < 3 && rc == 0 && has_image; k++) {
            snprintf(src, sizeof src, "%s/prototype-%d%s.png", r->push_dir, j, kinds[k]);
            snprintf(dst, sizeof dst, "%s/prototype-%d%s.png", dir, n, kinds[k]);
            rc = copy_file(src, dst);
        }
        n++;
    }
    cJSON_ReplaceItemInObject(doc, "prototypes", kept);
    snprintf(dst, sizeof dst, "%s/prototypes.json", dir);
    if (rc == 0) rc = write_json_atomic(dst, doc);
    cJSON_Delete(doc);
    return rc;
}

/* prune.json: what was removed and why, and the accuracies. */
static cJSON *prune_doc(const RunDir *r, const Dataset *ds, const int *image, const int *own, const bool *keep, int k, int min_own) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "run", r->dir);
    cJSON_AddNumberToObject(doc, "k", k);
    cJSON_AddNumberToObject(doc, "min_own", min_own);
    cJSON *removed = cJSON_AddArrayToObject(doc, "removed");
    for (int j = 0; j < r->p->n_protos; j++) {
        if (keep[j]) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(removed, e);
        cJSON_AddNumberToObject(e, "prototype", j);
        cJSON_AddNumberToObject(e, "class", r->p->cls[j]);
        cJSON_AddNumberToObject(e, "own_class_neighbours", own[j]);
        cJSON *cls = cJSON_AddArrayToObject(e, "neighbour_classes");
        for (int i = 0; i < k; i++) {
            int im = image[(int64_t)j * k + i];
            cJSON_AddItemToArray(cls, cJSON_CreateNumber(im >= 0 ? ft_i32(ds->labels)[im] : -1));
        }
    }
    return doc;
}

/* out/: model.safetensors, the renumbered report, train.json (so explain and attack read out as
 * a run) and prune.json. 0, or 1 after printing what went wrong. */
static int save_pruned(const RunDir *r, Model *m, const bool *keep, cJSON *doc, double val, double test, const char *out) {
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    if (model_save(m, &r->cfg, path) != 0 || copy_report(r, keep, out) != 0) { fprintf(stderr, "finch prune: %s\n", ft_last_error()); return 1; }
    cJSON *run_doc = cJSON_Duplicate(r->doc, true), *sel = cJSON_CreateObject();
    cJSON_AddStringToObject(sel, "push_dir", "prototypes");
    cJSON_AddNumberToObject(sel, "val_acc", val);
    cJSON_ReplaceItemInObject(run_doc, "selected", sel);
    cJSON_ReplaceItemInObject(run_doc, "test_acc", cJSON_CreateNumber(test));
    cJSON_AddStringToObject(run_doc, "pruned_from", r->dir);
    snprintf(path, sizeof path, "%s/train.json", out);
    int rc = run_write_json("prune", path, run_doc);
    cJSON_Delete(run_doc);
    snprintf(path, sizeof path, "%s/prune.json", out);
    return rc == 0 && run_write_json("prune", path, doc) == 0 ? 0 : 1;
}

typedef struct { int k, min_own, last_iters, batch, workers; bool quiet; } PruneOpts;

/* The training options of the run's last-layer stage, restored from its train.json. */
static TrainOpts run_train_opts(const RunDir *r, const PruneOpts *o) {
    const char *adv = run_dir_option(r, "adv");
    int kind = adv ? adv_parse_kind(adv) : ADV_NONE;
    double eps = run_dir_number(r, "eps", 0.1), alpha = run_dir_number(r, "alpha", 0.125);
    return (TrainOpts){ .batch = o->batch, .seed = (uint64_t)run_dir_number(r, "seed", 1), .quiet = o->quiet, .workers = o->workers,
                        .adv = kind < 0 ? ADV_NONE : (AdvKind)kind,
                        .attack = kind == ADV_PGD ? attack_pgd(eps, alpha, (int)run_dir_number(r, "steps", 7)) : attack_fgsm_rs(eps, alpha) };
}

static int prune_run(RunDir *r, const PruneOpts *o, const char *out) {
    ProtoArgs pa = { .recipe = run_dir_option(r, "recipe"), .warm = -1, .push_start = -1, .push_every = -1, .last_iters = o->last_iters,
                     .lr_last = run_dir_number(r, "lr-last", 0), .l1 = run_dir_option(r, "l1"),
                     .frozen_bn = run_dir_option(r, "frozen-bn"), .att_dropout = -1 };
    Recipe rec;   /* the last-layer stage as the run had it */
    if (!proto_recipe(&pa, r->p, 0, &rec)) return 2;
    Splits data;
    int rc = run_load_data("prune", &r->data, true, &data);
    if (rc) return rc;
    ProtoSplit sp;
    proto_split(&data, run_dir_number(r, "val-fraction", 0.1), (uint64_t)run_dir_number(r, "seed", 1), (int)run_dir_number(r, "limit", 0), &sp);
    sp.d.dir = out;
    sp.d.config = &r->cfg;
    ProtoNet *p = r->p;
    int M = p->n_protos, *image = ft_xmalloc((size_t)M * o->k * sizeof *image), *own = ft_xmalloc((size_t)M * sizeof *own);
    double *dist = ft_xmalloc((size_t)M * o->k * sizeof *dist);
    bool *keep = ft_xmalloc((size_t)M * sizeof *keep);
    prune_nearest(p, sp.d.plain, sp.d.push_idx, sp.d.n_push, o->batch, o->k, image, dist, o->quiet);
    int kept = prune_select(p, sp.d.plain, image, o->k, o->min_own, keep, own);
    cJSON *doc = prune_doc(r, sp.d.plain, image, own, keep, o->k, o->min_own);
    double val0 = accuracy_on(r->model, sp.d.plain, sp.d.val_idx, sp.d.n_val, o->batch);
    Model *m = protonet_select(p, keep, &r->cfg);
    if (!m) { fprintf(stderr, "finch prune: %s (lower --min-own?)\n", ft_last_error()); rc = 1; goto done; }
    double val1 = accuracy_on(m, sp.d.plain, sp.d.val_idx, sp.d.n_val, o->batch);
    printf("pruned %d of %d prototypes (fewer than %d of their class among their %d nearest training patches); "
           "validation accuracy %.2f%% -> %.2f%%; re-optimising the last layer (%d passes)\n",
           M - kept, M, o->min_own, o->k, 100 * val0, 100 * val1, o->last_iters);
    TrainOpts t = run_train_opts(r, o);
    double val2 = staged_last_layer(protonet_of(m), &sp.d, &rec, &t, cJSON_AddArrayToObject(doc, "last_layer"));
    Accuracy before = clean_accuracy(r->model, &data.test, 0, o->batch, true);
    Accuracy after = clean_accuracy(m, &data.test, 0, o->batch, true);
    double test0 = (double)before.correct / before.total, test1 = (double)after.correct / after.total;
    cJSON_AddNumberToObject(doc, "prototypes_before", M);
    cJSON_AddNumberToObject(doc, "prototypes_after", kept);
    cJSON_AddNumberToObject(doc, "val_acc_before", val0);
    cJSON_AddNumberToObject(doc, "val_acc_pruned", val1);
    cJSON_AddNumberToObject(doc, "val_acc_after_last_layer", val2);
    cJSON_AddNumberToObject(doc, "test_acc_before", test0);
    cJSON_AddNumberToObject(doc, "test_acc", test1);
    rc = save_pruned(r, m, keep, doc, val2, test1, out);
    if (rc == 0)
        printf("%d prototypes kept; validation accuracy %.2f%%, test accuracy %.2f%% (before pruning %.2f%%); wrote %s\n", kept,
               100 * val2, 100 * test1, 100 * test0, out);
    model_free(m);
done:
    cJSON_Delete(doc);
    free(image); free(own); free(dist); free(keep);
    proto_split_free(&sp);
    splits_free(&data);
    return rc;
}

int cmd_prune(int argc, char **argv) {
    const char *run = NULL, *out = NULL, *device = "cpu", *data_dir = NULL;
    PruneOpts o = { .k = 6, .min_own = 3, .last_iters = 20, .batch = 128, .workers = 2 };
    int threads = 0;
    const CliArg args[] = {
        { "run", ARG_STRING, &run, 0, 0, "run directory of finch train (a protopnet- or ours-fr- network)" },
        { "k", ARG_INT, &o.k, 1, 1000, "nearest training patches looked at per prototype" },
        { "min-own", ARG_INT, &o.min_own, 1, 1000, "prototypes with fewer of their own class among them are removed" },
        { "last-iters", ARG_INT, &o.last_iters, 0, 100000, "last-layer passes after pruning (ProtoPNet's script: 100)" },
        { "out", ARG_STRING, &out, 0, 0, "new run directory (default RUN/pruned-kK-tT)" },
        { "data-dir", ARG_STRING, &data_dir, 0, 0, "Fashion-MNIST directory (default: the Debian package's)" },
        { "batch", ARG_INT, &o.batch, 2, 65536, "batch size" },
        { "workers", ARG_INT, &o.workers, 0, 64, "loader threads (0: none)" },
        { "device", ARG_STRING, &device, 0, 0, "cpu | cuda" },
        { "threads", ARG_INT, &threads, 0, 1024, "CPU threads (0: all cores)" },
        { "quiet", ARG_FLAG, &o.quiet, 0, 0, "no progress lines" },
    };
    int rc = cli_parse("prune", "Prune a prototype network as ProtoPNet does: remove the prototypes whose k nearest training\n"
                                "patches include fewer than min-own of their class, then re-optimise the last layer.",
                       argc, argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!run) { fprintf(stderr, "finch prune: --run is required (a run directory of finch train)\n"); return 2; }
    if (o.min_own > o.k) { fprintf(stderr, "finch prune: --min-own %d is more than --k %d: every prototype would go\n", o.min_own, o.k); return 2; }
    Device dev;
    if (!cli_device("prune", device, &dev)) return 2;
    run_set_threads(threads);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/pruned-k%d-t%d", run, o.k, o.min_own);
    if (!out) out = dir;
    RunDir r;
    if ((rc = run_dir_open("prune", run, data_dir, dev, false, &r)) == 0) {
        if (make_dirs(out) != 0) { fprintf(stderr, "finch prune: %s\n", ft_last_error()); rc = 1; }
        else rc = prune_run(&r, &o, out);
    }
    run_dir_close(&r);
    return rc;
}
