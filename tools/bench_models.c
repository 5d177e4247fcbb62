/* finch bench --models: whole-network timings, the rows tools/bench_gpu.sh and tools/bench_torch.py
 * --cpu compare with PyTorch (tools/bench_torch.py builds the same networks):
 *   - one training step (forward, cross entropy, backward, Adam) of the demo CNN, batch 256;
 *   - one training step of the conv stack (4 x conv 3x3 64->64 + BN + ReLU at 56x56), batch 64;
 *   - PGD-10 (eps 0.1, step 0.01) on the demo CNN in eval mode, batch 256, as images/s;
 *   - training steps of torchvision's ResNet-18, DenseNet-121 and VGG11-BN at 224 x 224, batch 16;
 *   - ProtoPNet's joint training step (cross entropy, cluster and separation costs, L1 on the last
 *     layer's off-class weights, Adam; 10 prototypes a class, depth 128) on the demo CNN's trunk,
 *     batch 64, and on ResNet-18 with one block a stage at 112 x 112, batch 16;
 *   - ProtoPNet's push at CUB's prototype count over 6,000 small images (tools/bench_push.c), as
 *     images/s;
 *   - the demo CNN's step again with the per-op profiler on (core/profile.h): what profiling
 *     costs; off, it costs one flag test per op, less than anything this can measure.
 * Inputs are random and already on the device: data loading is not timed. With --row, only the
 * row of that name, or the rows whose name contains that text; each row reports its peak memory on the CPU (the process's
 * high-water mark less its size before the row's model was built: one row per process for a
 * clean figure, as tools/bench_torch.py --compare runs them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "bench.h"
#include "train/proto_loss.h"

typedef struct { Model *m; Optimizer *o; Tape *tp; Tensor *x, *y, *xa; Rng rng; StepAttack pgd; int32_t *labels; } Ctx;

static void train_step(void *p) {
    Ctx *c = p;
    params_zero_grad(&c->m->params);
    ft_backward(c->tp, ft_cross_entropy(c->tp, c->m->forward(c->m, c->tp, c->x), c->y));
    optim_step(c->o);
    ft_tape_reset(c->tp);
}

static void proto_step(void *p) {
    Ctx *c = p;
    ProtoNet *pn = protonet_of(c->m);
    ProtoCoefs co = proto_coefs_default(pn->kind);
    Tensor *logits;
    params_zero_grad(&c->m->params);
    ft_backward(c->tp, proto_loss(pn, c->tp, c->x, c->y, c->labels, &co, &logits, NULL));
    optim_step(c->o);
    ft_tape_reset(c->tp);
}

static void pgd_step(void *p) {
    Ctx *c = p;
    attack_steps(c->m, c->tp, c->x, c->y, &c->pgd, &c->rng, c->xa, false);
}

/* (the attack's image buffer only for the attack row: a zero-filled input's worth of memory that a
 * training row would count in its peak, and PyTorch's training step does not hold) */
static Ctx setup(const char *arch, int width, int size, int batch, bool reduced, bool attack, Device dev) {
    ModelConfig mc = { .num_classes = 10, .width = width, .seed = 1, .device = dev };
    if (reduced) for (int i = 0; i < 4; i++) mc.blocks[i] = 1;
    Ctx c = { 0 };
    c.m = model_create(arch, &mc);
    c.o = optim_new(OPT_ADAM, &c.m->params, 1e-3, 0);
    c.tp = ft_tape_new(dev);
    Shape s = SHAPE(batch, c.m->in_channels, size ? size : c.m->height, size ? size : c.m->width);
    c.x = ft_tensor_new(FT_F32, s, dev);
    if (attack) c.xa = ft_tensor_new(FT_F32, s, dev);
    c.y = ft_tensor_new(FT_I32, SHAPE(batch), dev);
    c.rng = rng_new(5);
    rng_uniform_(&c.rng, c.x, 0, 1);
    Tensor *labels = ft_tensor_new(FT_I32, SHAPE(batch), FT_CPU);
    for (int i = 0; i < batch; i++) ft_i32(labels)[i] = (int32_t)(rng_u32(&c.rng) % 10);
    c.labels = ft_xmalloc((size_t)batch * sizeof(int32_t));
    memcpy(c.labels, ft_i32(labels), (size_t)batch * sizeof(int32_t));
    ft_copy_(c.y, labels);
    ft_tensor_free(labels);
    c.pgd = attack_pgd(0.1, 0.01, 10);
    c.m->training = true;
    return c;
}

static void teardown(Ctx *c) {
    ft_tensor_free(c->x); ft_tensor_free(c->xa); ft_tensor_free(c->y);
    free(c->labels);
    ft_tape_free(c->tp);
    optim_free(c->o);
    model_free(c->m);
}

/* The process's resident size now and its high-water mark, in MiB (/proc/self/status; 0 elsewhere). */
static void memory_mib(double *rss, double *hwm) {
    *rss = *hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) *rss = kb / 1024.0;
        if (sscanf(line, "VmHWM: %ld", &kb) == 1) *hwm = kb / 1024.0;
    }
    if (f) fclose(f);
}

typedef struct { const char *name, *arch; int width, size, batch; bool attack, profile, proto, reduced, push; } Row;

/* Median seconds of one step of the row, and its peak memory in MiB (the high-water mark less the
 * resident size before its model was built). */
static double time_row(const Row *r, Device dev, int reps, double *peak) {
    double base, hwm, rss, t;
    memory_mib(&base, &hwm);
    if (r->push) {
        PushBench *b = push_bench_new(dev);
        t = bench_median(push_bench_run, b, 1, reps, dev);
        memory_mib(&rss, &hwm);
        push_bench_free(b);
    } else {
        Ctx c = setup(r->arch, r->width, r->size, r->batch, r->reduced, r->attack, dev);
        if (r->attack) c.m->training = false;
        bool profiling = ft_profile_on;
        if (r->profile) ft_profile_enable(true);
        int warmup = r->size ? 2 : 10;   /* a 224 x 224 step takes seconds on a CPU */
        t = bench_median(r->attack ? pgd_step : r->proto ? proto_step : train_step, &c, warmup, reps, dev);
        if (r->profile) { ft_profile_enable(profiling); ft_profile_reset(); }
        memory_mib(&rss, &hwm);
        teardown(&c);
    }
    *peak = hwm - base;
    return t;
}

int bench_models(Device dev, bool tf32, int reps, const char *only, const char *json) {
    ft_cuda_set_tf32(tf32);
    static const Row rows[] = {
        { "train step, demo CNN, batch 256", "small_cnn", .width = 16, .batch = 256 },
        { "train step, conv stack 4x(3x3 64->64 + BN + ReLU) at 56x56, batch 64", "conv_stack", .width = 16, .batch = 64 },
        { "PGD-10 on the demo CNN, batch 256", "small_cnn", .width = 16, .batch = 256, .attack = true },
        { "train step, ResNet-18 at 224x224, batch 16", "resnet18", .size = 224, .batch = 16 },
        { "train step, DenseNet-121 at 224x224, batch 16", "densenet121", .size = 224, .batch = 16 },
        { "train step, VGG11-BN at 224x224, batch 16", "vgg11_bn", .size = 224, .batch = 16 },
        { "ProtoPNet joint step, demo CNN trunk, batch 64", "protopnet-small_cnn", .width = 16, .batch = 64, .proto = true },
        { "ProtoPNet joint step, ResNet-18 (1 block a stage) at 112x112, batch 16", "protopnet-resnet18", .size = 112, .batch = 16,
          .proto = true, .reduced = true },
        { "ProtoPNet push, 2000 prototypes over 6,000 images, demo CNN trunk", NULL, .batch = PUSH_BENCH_IMAGES, .push = true },
        { "train step, demo CNN, batch 256, per-op profiler on", "small_cnn", .width = 16, .batch = 256, .profile = true },
    };
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "rows");
    cJSON_AddStringToObject(doc, "framework", "finch");
    cJSON_AddStringToObject(doc, "device", ft_device_name(dev));
    cJSON_AddBoolToObject(doc, "tf32", tf32);
    printf("%-72s %10s %12s %10s\n", "network", "ms", "images/s", "peak MiB");
    int ran = 0, n_rows = (int)(sizeof rows / sizeof rows[0]);
    bool exact = false;   /* a row's whole name picks that row alone */
    for (int i = 0; only && i < n_rows; i++) exact |= strcmp(rows[i].name, only) == 0;
    for (int i = 0; i < n_rows; i++) {
        if (only && (exact ? strcmp(rows[i].name, only) != 0 : !strstr(rows[i].name, only))) continue;
        ran++;
        double peak, t = time_row(&rows[i], dev, reps, &peak);
        printf("%-72s %10.3f %12.0f %10.1f\n", rows[i].name, 1e3 * t, rows[i].batch / t, peak);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", rows[i].name);
        cJSON_AddNumberToObject(j, "ms", 1e3 * t);
        cJSON_AddNumberToObject(j, "images_per_s", rows[i].batch / t);
        cJSON_AddNumberToObject(j, "peak_mib", peak);
        cJSON_AddItemToArray(arr, j);
    }
    if (!ran) {
        fprintf(stderr, "finch bench: --row '%s' names no row of --models\n", only);
        cJSON_Delete(doc);
        return 2;
    }
    int rc = json ? run_write_json("bench", json, doc) : 0;
    cJSON_Delete(doc);
    return rc ? 1 : 0;
}
