/* Example 6: "this looks like that", through the library calls finch explain makes.
 *
 * A prototype network classifies by similarities: each prototype is compared with every cell of
 * the image's latent grid, its largest similarity is weighted by the last layer into the class
 * scores. So the prediction can be read back: which prototypes scored highest, how much each gave
 * to the predicted class, and where in the image it looked (its similarity map, upsampled to the
 * image). Writes explain-heat.png (the image under the top prototype's map, the box around the
 * map's 95th percentile in red) into the directory given.
 *
 *   build/finch train --model protopnet-small_cnn --out runs/pp
 *   build/examples/06_explain runs/pp/model.safetensors 0 /tmp     (test image 0 of Fashion-MNIST)
 */
#include <stdio.h>
#include <stdlib.h>
#include "data/dataset.h"
#include "data/draw.h"
#include "data/image.h"
#include "models/model_io.h"
#include "models/protonet.h"
#include "train/push.h"

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s PROTONET.safetensors TEST_INDEX OUT_DIR\n", argv[0]); return 2; }
    Model *m = model_load(argv[1], FT_CPU, NULL);
    ProtoNet *p = m ? protonet_of(m) : NULL;
    Dataset test;
    if (!p || fashion_mnist_load(FASHION_MNIST_DIR, false, &test) != 0) {
        fprintf(stderr, "%s\n", m ? (p ? ft_last_error() : "not a prototype network") : ft_last_error());
        return 1;
    }
    int index = atoi(argv[2]), S = 28, M = p->n_protos, K = m->num_classes;
    m->training = false;
    Tape *tp = ft_tape_new(FT_CPU);
    ft_no_grad_begin(tp);   /* an explanation needs no gradient: nothing is recorded */
    Tensor *x = ft_new(tp, FT_F32, SHAPE(1, 1, S, S)), *y = ft_new(tp, FT_I32, SHAPE(1));
    int32_t idx = index;
    dataset_batch(&test, &idx, 1, x, y);

    ProtoOut o;
    Tensor *logits = protonet_forward(p, tp, x, &o), *sim = proto_similarity_maps(tp, &o);   /* sim: [1, M, h, w] */
    int pred = 0, h = sim->shape.d[2], w = sim->shape.d[3];
    for (int k = 1; k < K; k++) if (ft_get(logits, k) > ft_get(logits, pred)) pred = k;
    printf("test image %d: true class %s, predicted %s\n", index, fashion_mnist_classes[ft_i32(y)[0]], fashion_mnist_classes[pred]);

    /* each prototype's best cell; its contribution to the predicted class = similarity x last-layer weight */
    int best = 0;
    double best_score = -1e30;
    printf("  prototype  its class     similarity  weight  contribution\n");
    for (int j = 0; j < M; j++) {
        double s = -1e30;
        for (int c = 0; c < h * w; c++) s = fmax(s, ft_get(sim, (int64_t)j * h * w + c));
        double weight = ft_get(p->last.weight, (int64_t)pred * M + j);
        if (s * weight > best_score) { best_score = s * weight; best = j; }
        if (p->cls[j] == pred) printf("  %9d  %-12s %10.4f %7.3f %13.4f\n", j, fashion_mnist_classes[p->cls[j]], s, weight, s * weight);
    }
    printf("the largest contribution: prototype %d (%.4f)\n", best, best_score);

    /* where it looked: its map upsampled to the image, the image under it, the 95th-percentile box */
    double heat[28 * 28];
    int box[4];
    uint8_t gray[28 * 28], rgb[28 * 28 * 3], pic[28 * 28 * 3];
    proto_upsample_map(tp, sim, 0, best, S, S, heat);
    draw_percentile_box(heat, S, S, 95, box);
    for (int i = 0; i < S * S; i++) gray[i] = ft_u8(test.images)[(size_t)index * S * S + i];
    draw_chw_to_rgb(gray, 1, S, S, rgb);
    draw_heat_overlay(rgb, heat, S, S, pic);
    draw_box(pic, S, S, box[0], box[1], box[2], box[3], (uint8_t[3]){ 255, 0, 0 }, 1);
    char path[1024];
    snprintf(path, sizeof path, "%s/explain-heat.png", argv[3]);
    int rc = png_write_rgb(path, pic, S, S);
    printf("its 95th-percentile box: x %d..%d, y %d..%d; %s%s\n", box[0], box[2], box[1], box[3], rc ? "no picture: " : "", rc ? ft_last_error() : path);
    ft_tape_free(tp);
    dataset_free(&test);
    model_free(m);
    return rc ? 1 : 0;
}
