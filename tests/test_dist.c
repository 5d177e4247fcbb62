/* Data-parallel training across processes (dist/): finch train under mpirun on this machine. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "test.h"
#include "cli_run.h"
#include "core/fileio.h"
#include "core/safetensors.h"
#include "data/synthetic.h"
#include "dist/dist.h"
#include "dist/grad_sync.h"
#include "dist/sync_bn.h"
#include "dist/nccl_engine.h"
#include "layers/layers.h"
#include "models/model.h"
#include "train/push.h"

/* Two processes on two cores or fewer; the sanitizers' leak check would count Open MPI's own. */
#define MPIRUN "env ASAN_OPTIONS=detect_leaks=0 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2"
/* 20 steps of 64 images: a VGG without batch norm and without its dropout, so that a step
 * depends on the data alone. SGD with momentum: Adam divides by the root of its second moment,
 * which turns float rounding in near-zero gradients into steps of the full learning rate (as in
 * any framework), so runs that differ only in summation order drift apart by about lr. */
#define COMMON "train --data synthetic --no-dropout --limit 1280 --optim sgd --lr 0.05 --schedule constant --threads 1 " \
               "--workers 0 --quiet"
#define TRAIN COMMON " --model vgg11 --vgg-cfg 8,M,16,M --width 1"

#define REQUIRE_MPI() do { \
        REQUIRE_FINCH(); \
        char o_[256]; \
        if (!strstr(ft_dist_built(), "mpi")) SKIP("this build has no MPI (install libopenmpi-dev and rebuild)"); \
        if (command_run("command -v mpirun", o_, sizeof o_) != 0) SKIP("mpirun is not installed (openmpi-bin)"); \
    } while (0)

/* The bucket plan in one process: buckets cover the flat gradient, and each is final at the node
 * the plan names: nothing the backward does after it changes the bucket (snapshots taken there
 * equal the end result), and at least one bucket is still changing before it (else a plan that
 * waited for the end would pass too). */
typedef struct { GradSync *g; Tensor **snap; int changed_late; } Watch;

static void watch_node(Tape *tp, int i, void *ctx) {
    (void)tp;
    Watch *w = ctx;
    for (int b = 0; b < grad_sync_buckets(w->g); b++)
        if (grad_sync_ready_at(w->g, b) == i) ft_copy_(w->snap[b], grad_sync_bucket(w->g, b));
}

TEST(dist_gradient_buckets_are_final_where_the_plan_says) {
    Dataset ds;
    synthetic_quadrants(&ds, 32, 5, 60, 40, 90);
    ModelConfig mc = { .num_classes = 4, .width = 4, .seed = 3, .device = FT_CPU };
    Model *m = model_create("small_cnn", &mc);
    GradSync *g = grad_sync_new(&m->params, 0.002);   /* 2 KiB: several buckets on a small model */
    int nb = grad_sync_buckets(g);
    CHECK(nb >= 3, "only %d buckets for %lld parameters", nb, (long long)m->params.n_trainable);
    int64_t covered = 0;
    for (int b = 0; b < nb; b++) {
        Tensor *v = grad_sync_bucket(g, b);
        CHECK(v->offset == m->params.flat_grad->offset + covered, "bucket %d does not start where %d ended", b, b - 1);
        covered += v->numel;
    }
    CHECK(covered == m->params.n_trainable, "buckets cover %lld of %lld", (long long)covered, (long long)m->params.n_trainable);
    Tensor *x = ft_tensor_new(FT_F32, ds.images->shape, FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(32), FT_CPU);
    ft_convert_(x, ds.images, 1 / 255.0);
    ft_copy_(y, ds.labels);
    Tape *tp = ft_tape_new(FT_CPU);
    m->training = true;
    m->dropout_off = true;
    Tensor *logits, *loss = model_loss(m, tp, x, y, &logits);
    grad_sync_plan(g, tp);
    Watch w = { g, ft_xcalloc((size_t)nb, sizeof(Tensor *)), 0 };
    for (int b = 0; b < nb; b++) w.snap[b] = ft_tensor_new(FT_F32, grad_sync_bucket(g, b)->shape, FT_CPU);
    tp->after_node = watch_node;
    tp->after_node_ctx = &w;
    params_zero_grad(&m->params);
    CHECK(ft_backward(tp, loss) == 0, "backward: %s", ft_last_error());
    int early = 0;
    for (int b = 0; b < nb; b++) {
        CHECK(grad_sync_ready_at(g, b) >= 0, "bucket %d: no node uses its parameters", b);
        CHECK(memcmp(ft_f32(w.snap[b]), ft_f32(grad_sync_bucket(g, b)), (size_t)w.snap[b]->numel * 4) == 0,
              "bucket %d changed after node %d, where the plan called it final", b, grad_sync_ready_at(g, b));
        early += grad_sync_ready_at(g, b) > 0;
    }
    CHECK(early > 0, "every bucket is final only at the tape's first node: nothing would overlap the backward");
    for (int b = 0; b < nb; b++) ft_tensor_free(w.snap[b]);
    free(w.snap);
    ft_tape_free(tp);
    ft_tensor_free(x);
    ft_tensor_free(y);
    grad_sync_free(g);
    model_free(m);
    dataset_free(&ds);
}

/* Synchronised batch norm, in one process: the same outputs, gradients (x, weight, bias) and
 * running statistics as ft_batch_norm, in float64, on inputs far from zero (x = 5 + N(0, 1),
 * where E[x^2] - E[x]^2 would lose digits without the shift). */
static Tensor *randn(Rng *r, Shape s, double mean, bool grad) {
    Tensor *t = ft_tensor_new(FT_F64, s, FT_CPU);
    rng_normal_(r, t, mean, 1);
    t->requires_grad = grad;
    return t;
}

TEST(dist_sync_batchnorm_equals_batchnorm_in_one_process) {
    Rng r = rng_new(7);
    Tensor *x = randn(&r, SHAPE(4, 3, 5, 5), 5, true), *gy = randn(&r, SHAPE(4, 3, 5, 5), 0, false);
    BatchNorm bn[2];
    for (int k = 0; k < 2; k++) {
        Rng same = rng_new(8);
        bn[k] = (BatchNorm){ randn(&same, SHAPE(3), 1, true), randn(&same, SHAPE(3), 0, true), randn(&same, SHAPE(3), 4.5, false),
                             ft_tensor_new(FT_F64, SHAPE(3), FT_CPU), 0.1, 1e-5 };
        ft_fill_(bn[k].running_var, 2);
    }
    double gx[2][300], gw[2][3], gb[2][3], y[2][300];
    for (int k = 0; k < 2; k++) {
        dist_sync_batchnorm(k == 1);
        Tape *tp = ft_tape_new(FT_CPU);
        Tensor *out = batchnorm_forward(tp, &bn[k], x, true);
        CHECK(out, "%s", ft_last_error());
        for (int i = 0; i < 300; i++) y[k][i] = ft_get(out, i);
        bool summed = false;
        for (int i = 0; i < tp->n_nodes; i++) summed |= strcmp(tp->nodes[i]->op, "dist_sum") == 0;
        CHECK(summed == (k == 1), "the %s batch norm %s the cross-process sum", k ? "synchronised" : "plain", summed ? "used" : "skipped");
        ft_backward(tp, ft_sum(tp, ft_mul(tp, out, gy), FT_DIM(0) | FT_DIM(1) | FT_DIM(2) | FT_DIM(3), false));
        for (int i = 0; i < 300; i++) gx[k][i] = ft_get(x->grad, i);
        for (int c = 0; c < 3; c++) { gw[k][c] = ft_get(bn[k].weight->grad, c); gb[k][c] = ft_get(bn[k].bias->grad, c); }
        ft_zero_(x->grad);
        ft_tape_free(tp);
    }
    dist_sync_batchnorm(false);
    double worst = 0;
    for (int i = 0; i < 300; i++) worst = fmax(worst, fmax(fabs(y[0][i] - y[1][i]), fabs(gx[0][i] - gx[1][i])));
    for (int c = 0; c < 3; c++) {
        worst = fmax(worst, fmax(fabs(gw[0][c] - gw[1][c]), fabs(gb[0][c] - gb[1][c])));
        worst = fmax(worst, fmax(fabs(ft_get(bn[0].running_mean, c) - ft_get(bn[1].running_mean, c)),
                                 fabs(ft_get(bn[0].running_var, c) - ft_get(bn[1].running_var, c))));
    }
    CHECK(worst < 1e-10, "synchronised batch norm differs from batch norm by %.3g", worst);
    ft_tensor_free(x); ft_tensor_free(gy);
    for (int k = 0; k < 2; k++) { ft_tensor_free(bn[k].weight); ft_tensor_free(bn[k].bias); ft_tensor_free(bn[k].running_mean); ft_tensor_free(bn[k].running_var); }
}

/* A push of an untrained tiny ProtoPNet over 96 synthetic images in batches of 16: the records
 * and prototypes as text (rank 0's, when several processes shared the search). */
static void push_to_text(FILE *f) {
    Dataset ds;
    synthetic_quadrants(&ds, 96, 5, 60, 40, 90);
    ModelConfig mc = { .num_classes = 4, .width = 2, .prototypes_per_class = 2, .proto_depth = 4, .seed = 5 };
    Model *m = model_create("protopnet-small_cnn", &mc);
    ProtoNet *p = protonet_of(m);
    PushRecord rec[8];
    push_prototypes(p, &ds, NULL, 96, 16, rec, true);
    if (f) {
        for (int j = 0; j < p->n_protos; j++) fprintf(f, "%d %d %d %.9g\n", rec[j].image, rec[j].h, rec[j].w, rec[j].dist);
        for (int64_t k = 0; k < p->prototypes->numel; k++) fprintf(f, "%.9g\n", ft_get(p->prototypes, k));
    }
    model_free(m);
    dataset_free(&ds);
}

CHILD(dist_push) {
    if (ft_dist_init() != 0) { fprintf(stderr, "%s\n", ft_last_error()); exit(1); }
    FILE *f = ft_dist_rank() == 0 ? fopen(getenv("FINCH_TEST_OUT"), "w") : NULL;
    push_to_text(f);
    if (f) fclose(f);
    ft_dist_end(0);
}

/* The push shared by two processes finds what one process finds: the same image and cell for
 * every prototype, the same distances and vectors (to the printed digits). */
TEST(dist_push_shared_by_two_ranks_agrees_with_one) {
    REQUIRE_MPI();
    char one[700], two[700], cmd[2000], out[8192];
    snprintf(one, sizeof one, "%s/dist_push_one.txt", test_tmpdir());
    snprintf(two, sizeof two, "%s/dist_push_two.txt", test_tmpdir());
    FILE *f = fopen(one, "w");
    CHECK(f, "cannot write %s", one);
    push_to_text(f);
    fclose(f);
    char self[600];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0, "cannot find the test binary");
    self[n] = 0;
    snprintf(cmd, sizeof cmd, "env FINCH_TEST_CHILD=dist_push FINCH_TEST_OUT=%s " MPIRUN " %s", two, self);
    CHECK(command_run(cmd, out, sizeof out) == 0, "%s:\n%s", cmd, out);
    size_t la, lb;
    char *a = read_file(one, &la), *b = read_file(two, &lb);
    CHECK(a && b && la == lb && memcmp(a, b, la) == 0, "one process pushed:\n%.400s\ntwo:\n%.400s", a ? a : "", b ? b : "");
    free(a);
    free(b);
}


/* The largest difference between two model files' tensors (-1 when they do not match up). */
static double max_diff(const char *a, const char *b, double *scale) {
    SafeTensors x, y;
    if (st_open(a, &x) != 0) return -1;
    if (st_open(b, &y) != 0) { st_close(&x); return -1; }
    double d = x.n == y.n ? 0 : -1;
    *scale = 0;
    for (int i = 0; i < x.n && d >= 0; i++) {
        const StEntry *e = &x.entries[i], *f = st_find(&y, e->name);
        if (!f) { d = -1; break; }
        if (strcmp(e->dtype, "F32") != 0) continue;   /* counters */
        Tensor *s = ft_tensor_new(FT_F32, e->shape, FT_CPU), *t = ft_tensor_new(FT_F32, f->shape, FT_CPU);
        if (s->numel != t->numel || st_read_into(&x, e, s) != 0 || st_read_into(&y, f, t) != 0) d = -1;
        for (int64_t k = 0; d >= 0 && k < s->numel; k++) {
            d = fmax(d, fabs((double)ft_f32(s)[k] - ft_f32(t)[k]));
            *scale = fmax(*scale, fabs((double)ft_f32(s)[k]));
        }
        ft_tensor_free(s);
        ft_tensor_free(t);
    }
    st_close(&x);
    st_close(&y);
    return d;
}

static int train_with(const char *model, const char *launcher, const char *flags, const char *out_dir, char *out, size_t n) {
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "%s %s %s %s %s --out %s/%s", launcher, finch_bin(), COMMON, model, flags, test_tmpdir(), out_dir);
    return command_run(cmd, out, n);
}

static int train(const char *launcher, const char *flags, const char *out_dir, char *out, size_t n) {
    return train_with("--model vgg11 --vgg-cfg 8,M,16,M --width 1", launcher, flags, out_dir, out, n);
}

/* 2 processes of 32 images each train to the weights 1 process of 64 reaches (20 steps), up to
 * float rounding, with one gradient bucket and with many; a run with another batch, as a
 * yardstick, ends far from them. */
TEST(dist_two_ranks_train_as_one_with_their_batch) {
    REQUIRE_MPI();
    char out[8192], a[700], b[700], c[700];
    CHECK(train("", "--batch 64 --epochs 1", "dist_one", out, sizeof out) == 0, "one process:\n%s", out);
    CHECK(train(MPIRUN, "--batch 64 --epochs 1", "dist_two", out, sizeof out) == 0, "two processes:\n%s", out);
    CHECK(train(MPIRUN, "--batch 64 --epochs 1 --bucket-mib 0.002", "dist_buckets", out, sizeof out) == 0, "two processes, "
          "small buckets:\n%s", out);
    CHECK(train("", "--batch 32 --epochs 1 --limit 640", "dist_other", out, sizeof out) == 0, "the yardstick:\n%s", out);
    snprintf(a, sizeof a, "%s/dist_one/model.safetensors", test_tmpdir());
    snprintf(b, sizeof b, "%s/dist_two/model.safetensors", test_tmpdir());
    snprintf(c, sizeof c, "%s/dist_other/model.safetensors", test_tmpdir());
    double scale, other_scale, d = max_diff(a, b, &scale), other = max_diff(a, c, &other_scale);
    CHECK(d >= 0 && other >= 0, "the model files do not match up: %s", ft_last_error());
    CHECK(d <= 1e-5 * scale, "2 ranks end %.3g from 1 rank (weights up to %.3g)", d, scale);
    snprintf(b, sizeof b, "%s/dist_buckets/model.safetensors", test_tmpdir());
    d = max_diff(a, b, &scale);
    CHECK(d >= 0 && d <= 1e-5 * scale, "2 ranks with 2 KiB buckets end %.3g from 1 rank (weights up to %.3g)", d, scale);
    CHECK(other > 100 * d && other > 1e-3 * scale, "the yardstick run ends only %.3g away (the pair: %.3g)", other, d);
    char cmd[1600], one[8192];   /* evaluation shares the test images and sums the counts */
    snprintf(cmd, sizeof cmd, "%s eval --data synthetic --model-file %s", finch_bin(), b);
    CHECK(command_run(cmd, one, sizeof one) == 0 && strstr(one, "accuracy"), "%s:\n%s", cmd, one);
    snprintf(cmd, sizeof cmd, MPIRUN " %s eval --data synthetic --model-file %s", finch_bin(), b);
    CHECK(command_run(cmd, out, sizeof out) == 0, "%s:\n%s", cmd, out);
    const char *line = strstr(one, b), *two = strstr(out, b);
    CHECK(line && two && strncmp(line, two, strcspn(line, "\n")) == 0 && !strstr(two + 1, b),
          "eval by two processes:\n%s\nby one:\n%s", out, one);
}

/* With batch norm (the small CNN, its dropout off): synchronised statistics make 2 processes train
 * as 1 with their batch, running statistics included; each process's own statistics do not. */
TEST(dist_sync_batchnorm_two_ranks_train_as_one) {
    REQUIRE_MPI();
    char out[8192], a[700], b[700], c[700];
    const char *bn = "--model small_cnn --width 4";
    CHECK(train_with(bn, "", "--batch 64 --epochs 1", "dist_bn_one", out, sizeof out) == 0, "one process:\n%s", out);
    CHECK(train_with(bn, MPIRUN, "--batch 64 --epochs 1 --sync-bn", "dist_bn_sync", out, sizeof out) == 0,
          "two processes, synchronised:\n%s", out);
    CHECK(train_with(bn, MPIRUN, "--batch 64 --epochs 1", "dist_bn_own", out, sizeof out) == 0, "two processes:\n%s", out);
    snprintf(a, sizeof a, "%s/dist_bn_one/model.safetensors", test_tmpdir());
    snprintf(b, sizeof b, "%s/dist_bn_sync/model.safetensors", test_tmpdir());
    snprintf(c, sizeof c, "%s/dist_bn_own/model.safetensors", test_tmpdir());
    double scale, d = max_diff(a, b, &scale), own = max_diff(a, c, &scale);
    CHECK(d >= 0 && d <= 1e-5 * scale, "2 ranks with synchronised batch norm end %.3g from 1 rank (weights up to %.3g)", d, scale);
    CHECK(own > 100 * d, "2 ranks with their own batch norm end only %.3g away (synchronised: %.3g)", own, d);
}

/* A run stopped under two processes continues under one to where one process alone gets. */
TEST(dist_resume_with_another_rank_count) {
    REQUIRE_MPI();
    char out[8192], a[700], b[700];
    CHECK(train(MPIRUN, "--batch 64 --epochs 1 --limit 640", "dist_res", out, sizeof out) == 0, "two processes:\n%s", out);
    snprintf(a, sizeof a, "%s train --resume %s/dist_res --epochs 2 --threads 1 --quiet", finch_bin(), test_tmpdir());
    CHECK(command_run(a, out, sizeof out) == 0, "resumed by one process:\n%s", out);
    CHECK(train("", "--batch 64 --epochs 2 --limit 640", "dist_straight", out, sizeof out) == 0, "one process:\n%s", out);
    snprintf(a, sizeof a, "%s/dist_res/model.safetensors", test_tmpdir());
    snprintf(b, sizeof b, "%s/dist_straight/model.safetensors", test_tmpdir());
    double scale, d = max_diff(a, b, &scale);
    CHECK(d >= 0 && d <= 1e-5 * scale, "resumed with 1 rank after 2: %.3g from a 1-rank run (weights up to %.3g)", d, scale);
}

/* A process that dies (SIGKILL at its 5th step) ends the job at once, named by the launcher; one
 * that hangs (SIGSTOP) ends it after FINCH_DIST_TIMEOUT with the collective named; a batch that
 * does not split is refused by every rank; nothing is left half-written. */
TEST(dist_dead_or_stuck_rank_ends_the_job) {
    REQUIRE_MPI();
    char out[8192], cmd[1600];
    snprintf(cmd, sizeof cmd, "FINCH_FAULT=batch:5:9 FINCH_FAULT_RANK=1 timeout 120 " MPIRUN " %s " TRAIN " --batch 64 --epochs 1 "
             "--out %s/dist_dead", finch_bin(), test_tmpdir());
    int rc = command_run(cmd, out, sizeof out);
    CHECK(rc != 0 && rc != 124 && strstr(out, "rank 1") && strstr(out, "signal 9"), "a killed rank: exit %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, "FINCH_DIST_TIMEOUT=3 FINCH_FAULT=batch:5:19 FINCH_FAULT_RANK=1 timeout 120 " MPIRUN " %s " TRAIN
             " --batch 64 --epochs 1 --out %s/dist_stuck", finch_bin(), test_tmpdir());
    rc = command_run(cmd, out, sizeof out);
    CHECK(rc != 0 && rc != 124 && strstr(out, "rank 0 of 2") && strstr(out, "did not complete within 3 s"),
          "a stuck rank: exit %d:\n%s", rc, out);
    char path[700];
    snprintf(path, sizeof path, "%s/dist_stuck/model.safetensors", test_tmpdir());
    CHECK(access(path, F_OK) != 0, "the stuck run wrote %s", path);
    snprintf(cmd, sizeof cmd, MPIRUN " %s " TRAIN " --batch 63 --epochs 1 --out %s/dist_odd", finch_bin(), test_tmpdir());
    rc = command_run(cmd, out, sizeof out);
    CHECK(rc != 0 && strstr(out, "--batch 63 does not split across 2 processes"), "an odd batch: exit %d:\n%s", rc, out);
    snprintf(cmd, sizeof cmd, MPIRUN " %s retrieval --data synthetic --model-file %s/dist_odd/model.safetensors", finch_bin(), test_tmpdir());
    rc = command_run(cmd, out, sizeof out);
    CHECK(rc == 2 && strstr(out, "finch retrieval: does not share its work across processes yet"), "retrieval: exit %d:\n%s", rc, out);
}

/* Adversarial training (FGSM with a random start) under two processes: each draws its own starts. */
TEST(dist_adversarial_training_runs_on_two_ranks) {
    REQUIRE_MPI();
    char out[8192], path[700];
    CHECK(train(MPIRUN, "--batch 64 --epochs 1 --limit 640 --adv fgsm-rs --eps 0.1", "dist_adv", out, sizeof out) == 0,
          "two processes:\n%s", out);
    snprintf(path, sizeof path, "%s/dist_adv/model.safetensors", test_tmpdir());
    CHECK(access(path, F_OK) == 0 && strstr(out, "test accuracy"), "no model from:\n%s", out);
}

/* The staged trainer of a prototype network under two processes: warm-up, joint epoch, the shared
 * push and the last-layer passes; rank 0 writes the same files one process writes. */
TEST(dist_prototype_network_trains_on_two_ranks) {
    REQUIRE_MPI();
    char out[8192], cmd[1600];
    const char *a = "train --data synthetic --model protopnet-small_cnn --width 4 --limit 640 --batch 64 --epochs 2 --warm-epochs 1 "
                    "--push-start 1 --push-every 1 --last-iters 2 --threads 1 --workers 0 --quiet";
    snprintf(cmd, sizeof cmd, MPIRUN " %s %s --out %s/dist_proto", finch_bin(), a, test_tmpdir());
    CHECK(command_run(cmd, out, sizeof out) == 0 && strstr(out, "selected model"), "%s:\n%s", cmd, out);
    const char *files[] = { "model.safetensors", "train.json", "checkpoint.safetensors", "epoch-2-push.safetensors",
                            "push-epoch-2/prototypes.json", "push-epoch-2/prototype-0.png" };
    for (int i = 0; i < 6; i++) {
        char path[800];
        snprintf(path, sizeof path, "%s/dist_proto/%s", test_tmpdir(), files[i]);
        CHECK(access(path, F_OK) == 0, "two processes left no %s", path);
    }
}

static void no_broadcast(void *id, size_t bytes) { (void)id; (void)bytes; }   /* one rank: nobody to send to */

/* NCCL's single-rank check on a GPU (NCCL refuses two ranks on one GPU): a communicator of one,
 * an all-reduce (the sum over one rank: the values unchanged, on NCCL's own stream, ordered after
 * the fill and before the read) and a broadcast. */
TEST(dist_nccl_single_rank_on_a_gpu) {
    if (!strstr(ft_dist_built(), "nccl")) SKIP("this build has no NCCL (nccl.h not found beside CUDA)");
    if (!ft_cuda_available()) SKIP("no GPU here (%s)", ft_cuda_describe());
    CHECK(nccl_start(0, 1, no_broadcast) == 0, "%s", ft_last_error());
    Tensor *t = ft_tensor_new(FT_F32, SHAPE(1 << 20), FT_CUDA);
    ft_fill_(t, 0.5);
    nccl_wait(nccl_iallreduce(t), 60);
    double sum = 0;
    for (int64_t i = 0; i < t->numel; i += 4099) sum += ft_get(t, i);
    CHECK(nccl_broadcast(t, 0, 60) == 0, "%s", ft_last_error());
    CHECK(ft_get(t, t->numel - 1) == 0.5 && sum == 0.5 * ((t->numel + 4098) / 4099), "the sum over one rank changed the values");
    ft_tensor_free(t);
    nccl_stop();
}

/* Do two files hold the same bytes? */
static bool same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    bool eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

/* The file at pattern (a %s for the test folder, a %d for 0 or 1) from one process and from two. */
static bool same_in_both(const char *pattern) {
    char f[200], a[700], b[700];
    snprintf(f, sizeof f, "%%s/%s", pattern);
    snprintf(a, sizeof a, f, test_tmpdir(), 0);
    snprintf(b, sizeof b, f, test_tmpdir(), 1);
    return same_bytes(a, b);
}

static cJSON *read_json(const char *path) {
    size_t n;
    char *text = read_file(path, &n);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    return doc;
}

/* finch attack shared by two processes: FGSM (no randomness) gives the one-process results, the
 * saved adversarial file byte for byte and the same picture; in the paper's suite every attack
 * without a random start (FGSM, BIM, MIM) counts the same robust images; finch clever's report
 * (every image's samples are seeded by the image) is the same text. */
TEST(dist_attack_shared_by_two_ranks_agrees_with_one) {
    REQUIRE_MPI();
    char out[8192], cmd[2000];
    const char *d = test_tmpdir();
    CHECK(train("", "--batch 64 --epochs 1 --limit 640", "dist_atk_model", out, sizeof out) == 0, "training:\n%s", out);
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s %s attack --data synthetic --model-file %s/dist_atk_model/model.safetensors --attack fgsm "
                 "--eps 0.1 --limit 300 --out %s/dist_atk_%d --save-adv %s/dist_atk_%d/adv.safetensors --quiet && %s %s attack "
                 "--data synthetic --model-file %s/dist_atk_model/model.safetensors --suite paper --eps-list 0.05 --limit 200 "
                 "--out %s/dist_suite_%d --quiet && %s %s clever --data synthetic --model-file %s/dist_atk_model/model.safetensors "
                 "--limit 3 --batches 10 --samples 32 --target top-2 --out %s/dist_clever_%d --quiet", k ? MPIRUN : "", finch_bin(),
                 d, d, k, d, k, k ? MPIRUN : "", finch_bin(), d, d, k, k ? MPIRUN : "", finch_bin(), d, d, k);
        CHECK(command_run(cmd, out, sizeof out) == 0, "%s:\n%s", cmd, out);
    }
    const char *same[] = { "dist_atk_%d/adv.safetensors", "dist_atk_%d/attack.png", "dist_clever_%d/clever.md" };
    for (int i = 0; i < 3; i++) CHECK(same_in_both(same[i]), "%s differs between one and two processes", same[i]);
    char path[700];
    cJSON *doc[2][2];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/dist_atk_%d/attack.json", d, k);
        doc[k][0] = read_json(path);
        snprintf(path, sizeof path, "%s/dist_suite_%d/robustness.json", d, k);
        doc[k][1] = read_json(path);
        CHECK(doc[k][0] && doc[k][1], "no attack.json or robustness.json from %d process(es)", k + 1);
    }
    const char *keys[] = { "images", "clean_acc", "robust_acc", "success_rate", "success_rate_8bit", "measured" };
    for (int i = 0; i < 6; i++) {
        double a = cJSON_GetNumberValue(cJSON_GetObjectItem(doc[0][0], keys[i])), b = cJSON_GetNumberValue(cJSON_GetObjectItem(doc[1][0], keys[i]));
        CHECK(a == b, "attack.json %s: %g by one process, %g by two", keys[i], a, b);
    }
    cJSON *l2[2];
    for (int k = 0; k < 2; k++) l2[k] = cJSON_GetObjectItem(cJSON_GetObjectItem(doc[k][0], "distortion"), "l2");
    char *s0 = cJSON_PrintUnformatted(l2[0]), *s1 = cJSON_PrintUnformatted(l2[1]);
    bool eq = s0 && s1 && strcmp(s0, s1) == 0;
    free(s0);
    free(s1);
    CHECK(eq, "the L2 distortion (mean, median) differs between one and two processes");
    const char *cols[] = { "images", "clean_acc", "FGSM", "BIM-10", "MIM-10" };
    for (int i = 0; i < 5; i++) {
        cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc[0][1], "rows"), 0), *r1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc[1][1], "rows"), 0);
        double a = cJSON_GetNumberValue(cJSON_GetObjectItem(r0, cols[i])), b = cJSON_GetNumberValue(cJSON_GetObjectItem(r1, cols[i]));
        CHECK(a == b && !isnan(a), "suite %s: %g by one process, %g by two", cols[i], a, b);
    }
    for (int k = 0; k < 2; k++) { cJSON_Delete(doc[k][0]); cJSON_Delete(doc[k][1]); }
}

/* finch transfer and finch benchmark shared by two processes, whole batches each (the attacks'
 * binary searches and early stops depend on a batch's company): the one-process reports. */
TEST(dist_transfer_and_benchmark_shared_by_two_ranks_agree_with_one) {
    REQUIRE_MPI();
    char out[8192], cmd[2400];
    const char *d = test_tmpdir();
    CHECK(train("", "--batch 64 --epochs 1 --limit 640", "dist_tb_a", out, sizeof out) == 0, "training:\n%s", out);
    CHECK(train("", "--batch 64 --epochs 1 --limit 640 --seed 2", "dist_tb_b", out, sizeof out) == 0, "training:\n%s", out);
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s %s transfer --data synthetic --models %s/dist_tb_a,%s/dist_tb_b --attack ifgsm --eps 0.1 "
                 "--steps-list 1,5 --limit 40 --batch 10 --out %s/dist_tr_%d --quiet && %s %s benchmark --data synthetic --models "
                 "%s/dist_tb_a,%s/dist_tb_b --limit 20 --batch 10 --clever-limit 2 --transfer-limit 20 --cw-steps 20 --search-steps 2 "
                 "--batches 5 --samples 16 --out %s/dist_bm_%d --quiet", k ? MPIRUN : "", finch_bin(), d, d, d, k, k ? MPIRUN : "",
                 finch_bin(), d, d, d, k);
        CHECK(command_run(cmd, out, sizeof out) == 0, "%s:\n%s", cmd, out);
    }
    const char *files[] = { "dist_tr_%d/transfer.md", "dist_tr_%d/adv-dist_tb_a-steps-5.safetensors", "dist_bm_%d/benchmark.md" };
    for (int i = 0; i < 3; i++) CHECK(same_in_both(files[i]), "%s differs between one and two processes", files[i]);
}
