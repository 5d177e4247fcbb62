/* finch bench --models: whole-network timings, the rows tools/bench_gpu.sh compares with
 * PyTorch (tools/bench_torch.py builds the same networks):
 *   - one training step (forward, cross entropy, backward, Adam) of the demo CNN, batch 256;
 *   - one training step of the conv stack (4 x conv 3x3 64->64 + BN + ReLU at 56x56), batch 64;
 *   - PGD-10 (eps 0.1, step 0.01) on the demo CNN in eval mode, batch 256, as images/s;
 *   - the demo CNN's step again with the per-op profiler on (core/profile.h): what profiling
 *     costs; off, it costs one flag test per op, less than anything this can measure.
 * Inputs are random and already on the device: data loading is not timed. */
#include <stdio.h>
#include "run.h"
#include "bench.h"

typedef struct { Model *m; Optimizer *o; Tape *tp; Tensor *x, *y, *xa; Rng rng; StepAttack pgd; } Ctx;

static void train_step(void *p) {
    Ctx *c = p;
    params_zero_grad(&c->m->params);
    ft_backward(c->tp, ft_cross_entropy(c->tp, c->m->forward(c->m, c->tp, c->x), c->y));
    optim_step(c->o);
    ft_tape_reset(c->tp);
}

static void pgd_step(void *p) {
    Ctx *c = p;
    attack_steps(c->m, c->tp, c->x, c->y, &c->pgd, &c->rng, c->xa, false);
}

static Ctx setup(const char *arch, int batch, Device dev) {
    ModelConfig mc = { .num_classes = 10, .width = 16, .seed = 1, .device = dev };
    Ctx c = { 0 };
    c.m = model_create(arch, &mc);
    c.o = optim_new(OPT_ADAM, &c.m->params, 1e-3, 0);
    c.tp = ft_tape_new(dev);
    Shape s = SHAPE(batch, c.m->in_channels, c.m->height, c.m->width);
    c.x = ft_tensor_new(FT_F32, s, dev);
    c.xa = ft_tensor_new(FT_F32, s, dev);
    c.y = ft_tensor_new(FT_I32, SHAPE(batch), dev);
    c.rng = rng_new(5);
    rng_uniform_(&c.rng, c.x, 0, 1);
    Tensor *labels = ft_tensor_new(FT_I32, SHAPE(batch), FT_CPU);
    for (int i = 0; i < batch; i++) ft_i32(labels)[i] = (int32_t)(rng_u32(&c.rng) % 10);
    ft_copy_(c.y, labels);
    ft_tensor_free(labels);
    c.pgd = attack_pgd(0.1, 0.01, 10);
    c.m->training = true;
    return c;
}

static void teardown(Ctx *c) {
    ft_tensor_free(c->x); ft_tensor_free(c->xa); ft_tensor_free(c->y);
    ft_tape_free(c->tp);
    optim_free(c->o);
    model_free(c->m);
}

int bench_models(Device dev, bool tf32, int reps, const char *json) {
    ft_cuda_set_tf32(tf32);
    struct { const char *name, *arch; int batch; bool attack, profile; } rows[] = {
        { "train step, demo CNN, batch 256", "small_cnn", 256, false, false },
        { "train step, conv stack 4x(3x3 64->64 + BN + ReLU) at 56x56, batch 64", "conv_stack", 64, false, false },
        { "PGD-10 on the demo CNN, batch 256", "small_cnn", 256, true, false },
        { "train step, demo CNN, batch 256, per-op profiler on", "small_cnn", 256, false, true },
    };
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "rows");
    cJSON_AddStringToObject(doc, "framework", "finch");
    cJSON_AddStringToObject(doc, "device", ft_device_name(dev));
    cJSON_AddBoolToObject(doc, "tf32", tf32);
    printf("%-72s %10s %12s\n", "network", "ms", "images/s");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        Ctx c = setup(rows[i].arch, rows[i].batch, dev);
        if (rows[i].attack) c.m->training = false;
        bool profiling = ft_profile_on;
        if (rows[i].profile) ft_profile_enable(true);
        double t = bench_median(rows[i].attack ? pgd_step : train_step, &c, 10, reps, dev);
        if (rows[i].profile) { ft_profile_enable(profiling); ft_profile_reset(); }
        printf("%-72s %10.3f %12.0f\n", rows[i].name, 1e3 * t, rows[i].batch / t);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", rows[i].name);
        cJSON_AddNumberToObject(j, "ms", 1e3 * t);
        cJSON_AddNumberToObject(j, "images_per_s", rows[i].batch / t);
        cJSON_AddItemToArray(arr, j);
        teardown(&c);
    }
    int rc = json ? run_write_json("bench", json, doc) : 0;
    cJSON_Delete(doc);
    return rc ? 1 : 0;
}
