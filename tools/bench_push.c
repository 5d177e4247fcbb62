/* finch bench --push: one push of ProtoPNet's CUB size, 2000 prototypes (200 classes x 10, 128
 * deep), over a 6,000-image push set whose latent maps are 7x7 (28x28 images through the small
 * CNN trunk, so the trunk costs little and the timing is the push itself: distances, the class
 * mask, the min over images and cells, and the winners' vectors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "bench.h"
#include "train/push.h"

#define PUSH_IMAGES 6000
#define PUSH_CLASSES 200

typedef struct { ProtoNet *p; Dataset *ds; PushRecord *rec; } PushJob;

static void push_once(void *ctx) {
    PushJob *j = ctx;
    push_prototypes(j->p, j->ds, NULL, PUSH_IMAGES, 100, j->rec, true);
}

int bench_push(Device dev, int reps, const char *json) {
    Dataset ds = { .num_classes = PUSH_CLASSES };
    snprintf(ds.name, sizeof ds.name, "synthetic push set");
    ds.images = ft_tensor_new(FT_U8, SHAPE(PUSH_IMAGES, 1, 28, 28), FT_CPU);
    ds.labels = ft_tensor_new(FT_I32, SHAPE(PUSH_IMAGES), FT_CPU);
    Rng rng = rng_new(3);
    for (int64_t i = 0; i < ds.images->numel; i++) ft_u8(ds.images)[i] = (uint8_t)(rng_u32(&rng) & 255);
    for (int i = 0; i < PUSH_IMAGES; i++) ft_i32(ds.labels)[i] = i % PUSH_CLASSES;
    ModelConfig mc = { .num_classes = PUSH_CLASSES, .prototypes_per_class = 10, .proto_depth = 128, .seed = 1, .device = dev };
    Model *m = model_create("protopnet-small_cnn", &mc);
    PushJob job = { protonet_of(m), &ds, ft_xmalloc(2000 * sizeof(PushRecord)) };
    double s = bench_median(push_once, &job, 1, reps, dev);
    printf("push of 2000 prototypes (128 deep) over %d images at 7x7 latents, %s, batches of 100: %.3f s (%.0f images/s)\n",
           PUSH_IMAGES, ft_device_name(dev), s, PUSH_IMAGES / s);
    int rc = 0;
    if (json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "device", ft_device_name(dev));
        cJSON_AddNumberToObject(doc, "prototypes", 2000);
        cJSON_AddNumberToObject(doc, "images", PUSH_IMAGES);
        cJSON_AddNumberToObject(doc, "seconds", s);
        cJSON_AddNumberToObject(doc, "images_per_s", PUSH_IMAGES / s);
        rc = run_write_json("bench", json, doc);
        cJSON_Delete(doc);
    }
    free(job.rec);
    model_free(m);
    dataset_free(&ds);
    return rc ? 1 : 0;
}
