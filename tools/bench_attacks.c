/* finch bench --attacks: the optimisation attacks' throughput on the demo CNN (width 16, random
 * weights, eval mode), batch 100 of random images, as tools/bench_attacks.py times torchattacks:
 *   - C&W-L2: one run of 100 iterations at one constant, early abort off; reported as images/s
 *     for the full attack of 9 search steps x 100 iterations (the run's time x 9);
 *   - APGD-CE, L-inf eps 8/255, 100 steps.
 * Inputs are random and already on the device; the labels are the model's own predictions, so
 * that APGD attacks every image (it skips those already misclassified). */
#include <stdio.h>
#include "run.h"
#include "bench.h"

typedef struct { Model *m; Tape *tp; Tensor *x, *xa; Goal g; OptAttack cw; ApgdAttack apgd; Rng rng; } Ctx;

static void cw_run(void *p) {
    Ctx *c = p;
    attack_cw(c->m, c->tp, c->x, &c->g, &c->cw, c->xa, NULL);
}

static void apgd_run(void *p) {
    Ctx *c = p;
    attack_apgd(c->m, c->tp, c->x, &c->g, &c->apgd, &c->rng, c->xa);
}

static cJSON *row(const char *name, double seconds, int batch) {
    printf("%-56s %10.3f %12.2f\n", name, seconds, batch / seconds);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddNumberToObject(j, "seconds", seconds);
    cJSON_AddNumberToObject(j, "images_per_s", batch / seconds);
    return j;
}

int bench_attacks(Device dev, int reps, const char *json) {
    const int batch = 100;
    ModelConfig mc = { .num_classes = 10, .width = 16, .seed = 1, .device = dev };
    Ctx c = { 0 };
    c.m = model_create("small_cnn", &mc);
    c.m->training = false;
    c.tp = ft_tape_new(dev);
    Shape s = SHAPE(batch, 1, 28, 28);
    c.x = ft_tensor_new(FT_F32, s, dev);
    c.xa = ft_tensor_new(FT_F32, s, dev);
    Rng rng = rng_new(5);
    rng_uniform_(&rng, c.x, 0, 1);
    int32_t labels[100];
    attack_predict(c.m, c.tp, c.x, labels);
    goal_make(&c.g, c.m, c.tp, c.x, labels, &(Target){ TARGET_UNTARGETED, -1 }, NULL);
    c.cw = attack_cw_defaults();
    c.cw.steps = 100;
    c.cw.search_steps = 1;
    c.cw.abort_early = false;
    c.apgd = attack_apgd_defaults(APGD_CE, 8.0 / 255, 100, NORM_INF);
    c.rng = rng_new(7);
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "rows");
    cJSON_AddStringToObject(doc, "framework", "finch");
    cJSON_AddStringToObject(doc, "device", ft_device_name(dev));
    printf("%-56s %10s %12s\n", "attack", "s", "images/s");
    cJSON_AddItemToArray(arr, row("C&W-L2, 9 x 100 iterations, demo CNN, batch 100", 9 * bench_median(cw_run, &c, 1, reps, dev), batch));
    cJSON_AddItemToArray(arr, row("APGD-CE, eps 8/255, 100 steps, demo CNN, batch 100", bench_median(apgd_run, &c, 1, reps, dev), batch));
    int rc = json ? run_write_json("bench", json, doc) : 0;
    cJSON_Delete(doc);
    goal_free(&c.g);
    ft_tensor_free(c.x); ft_tensor_free(c.xa);
    ft_tape_free(c.tp);
    model_free(c.m);
    return rc ? 1 : 0;
}
