/* finch bench --push, and the push row of finch bench --models: one push of ProtoPNet's CUB size,
 * 2000 prototypes (200 classes x 10, 128 deep), over a 6,000-image push set whose latent maps are
 * 7x7 (28x28 images through the small CNN trunk, so the trunk costs little and the timing is the
 * push itself: distances, the class mask, the min over images and cells, and the winners'
 * vectors). tools/bench_torch.py's push row does the same in PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "bench.h"
#include "train/push.h"

struct PushBench { Model *m; Dataset ds; PushRecord *rec; };

PushBench *push_bench_new(Device dev) {
    PushBench *b = ft_xmalloc(sizeof *b);
    memset(b, 0, sizeof *b);
    b->ds.num_classes = PUSH_BENCH_CLASSES;
    snprintf(b->ds.name, sizeof b->ds.name, "synthetic push set");
    b->ds.images = ft_tensor_new(FT_U8, SHAPE(PUSH_BENCH_IMAGES, 1, 28, 28), FT_CPU);
    b->ds.labels = ft_tensor_new(FT_I32, SHAPE(PUSH_BENCH_IMAGES), FT_CPU);
    Rng rng = rng_new(3);
    for (int64_t i = 0; i < b->ds.images->numel; i++) ft_u8(b->ds.images)[i] = (uint8_t)(rng_u32(&rng) & 255);
    for (int i = 0; i < PUSH_BENCH_IMAGES; i++) ft_i32(b->ds.labels)[i] = i % PUSH_BENCH_CLASSES;
    ModelConfig mc = { .num_classes = PUSH_BENCH_CLASSES, .prototypes_per_class = 10, .proto_depth = 128, .seed = 1,
                       .device = dev };
    b->m = model_create("protopnet-small_cnn", &mc);
    b->rec = ft_xmalloc((size_t)protonet_of(b->m)->n_protos * sizeof(PushRecord));
    return b;
}

void push_bench_run(void *ctx) {
    PushBench *b = ctx;
    push_prototypes(protonet_of(b->m), &b->ds, NULL, PUSH_BENCH_IMAGES, PUSH_BENCH_BATCH, b->rec, true);
}

void push_bench_free(PushBench *b) {
    free(b->rec);
    model_free(b->m);
    dataset_free(&b->ds);
    free(b);
}

int bench_push(Device dev, int reps, const char *json) {
    PushBench *b = push_bench_new(dev);
    double s = bench_median(push_bench_run, b, 1, reps, dev);
    push_bench_free(b);
    printf("push of 2000 prototypes (128 deep) over %d images at 7x7 latents, %s, batches of %d: %.3f s (%.0f images/s)\n",
           PUSH_BENCH_IMAGES, ft_device_name(dev), PUSH_BENCH_BATCH, s, PUSH_BENCH_IMAGES / s);
    int rc = 0;
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "device", ft_device_name(dev));
        cJSON_AddNumberToObject(doc, "prototypes", 2000);
        cJSON_AddNumberToObject(doc, "images", PUSH_BENCH_IMAGES);
        cJSON_AddNumberToObject(doc, "seconds", s);
        cJSON_AddNumberToObject(doc, "images_per_s", PUSH_BENCH_IMAGES / s);
        rc = run_write_json("bench", json, doc);
        cJSON_Delete(doc);
    }
    return rc ? 1 : 0;
}
