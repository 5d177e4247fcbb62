/* Example 5: torchvision weights in finch, and a JPEG classified with them.
 *
 * tools/export_torchvision.py writes a torchvision model's state dict as safetensors under
 * torchvision's own names (layer1.0.conv1.weight, ...), which are finch's names too: build the
 * architecture, load the file strictly (every tensor present, in its shape, nothing extra), and
 * the network computes what torchvision's does. The image is prepared as torchvision's ImageNet
 * recipe does (shorter side to 256/224 of the input size, centre crop); the normalisation by the
 * ImageNet mean and standard deviation happens inside finch's models. Prints the top 5 classes.
 *
 *   python3 tools/export_torchvision.py resnet18 --weights IMAGENET1K_V1 --out resnet18.safetensors
 *   build/examples/05_classify resnet18 resnet18.safetensors cat.jpg imagenet_classes.txt
 *
 * Arguments: ARCH WEIGHTS IMAGE [NAMES_FILE|-] [SIZE] [WIDTH] [BLOCKS]; SIZE (224), WIDTH and BLOCKS
 * (e.g. 1,1,1,1) describe a reduced model such as the one make test exports with finch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/safetensors.h"
#include "data/image.h"
#include "data/sources.h"
#include "models/model_io.h"

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s ARCH WEIGHTS IMAGE [NAMES_FILE|-] [SIZE] [WIDTH] [BLOCKS]\n", argv[0]); return 2; }
    const char *names_file = argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : NULL;
    int size = argc > 5 ? atoi(argv[5]) : 224;
    ModelConfig cfg = { .width = argc > 6 ? atoi(argv[6]) : 0, .seed = 1, .device = FT_CPU };
    if (argc > 7 && model_parse_ints("blocks", argv[7], cfg.blocks, 4, false) < 0) { fprintf(stderr, "%s\n", ft_last_error()); return 2; }

    /* the number of classes is the classifier's rows in the file: fc.weight (ResNet) or classifier.weight / classifier.6.weight */
    SafeTensors st;
    if (st_open(argv[2], &st) != 0) { fprintf(stderr, "%s\n", ft_last_error()); return 1; }
    const char *heads[] = { "fc.weight", "classifier.weight", "classifier.6.weight" };
    for (int i = 0; i < 3 && !cfg.num_classes; i++) {
        const StEntry *e = st_find(&st, heads[i]);
        if (e) cfg.num_classes = e->shape.d[0];
    }
    st_close(&st);
    Model *m = cfg.num_classes ? model_create(argv[1], &cfg) : NULL;
    LoadReport r;
    if (!m || model_load_weights(m, argv[2], true, &r) != 0) {
        fprintf(stderr, "%s\n", cfg.num_classes ? ft_last_error() : "no classifier weight (fc.weight, classifier.weight) in the file");
        return 1;
    }
    printf("%s: %d tensors loaded from %s, %d classes\n", argv[1], r.loaded, argv[2], cfg.num_classes);

    /* shorter side to size * 256 / 224, then the centre size x size: one region of the original */
    Image im;
    if (image_read(argv[3], &im) != 0) { fprintf(stderr, "%s\n", ft_last_error()); return 1; }
    float side = (im.width < im.height ? im.width : im.height) * 224.0f / 256.0f;
    float region[4] = { (im.width - side) / 2, (im.height - side) / 2, (im.width + side) / 2, (im.height + side) / 2 };
    uint8_t *chw = malloc((size_t)3 * size * size);
    resize_bilinear_pil(view_hwc(im.rgb, im.width, im.height), region, chw, size);   /* PIL's bilinear, planar RGB */
    image_free(&im);

    Tape *tp = ft_tape_new(FT_CPU);
    ft_no_grad_begin(tp);
    m->training = false;
    Tensor *x = ft_new(tp, FT_F32, SHAPE(1, 3, size, size));
    for (int64_t i = 0; i < x->numel; i++) ft_f32(x)[i] = chw[i] / 255.0f;
    Tensor *p = ft_softmax(tp, m->forward(m, tp, x), 1);

    char (*names)[128] = calloc((size_t)cfg.num_classes, sizeof *names);
    FILE *f = names_file ? fopen(names_file, "r") : NULL;
    for (int k = 0; f && k < cfg.num_classes && fgets(names[k], sizeof names[k], f); k++) names[k][strcspn(names[k], "\r\n")] = 0;
    if (f) fclose(f);
    int K = cfg.num_classes, top = K < 5 ? K : 5, *used = calloc((size_t)K, sizeof *used);
    printf("top %d of %s:\n", top, argv[3]);
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int k = 0; k < K; k++) if (!used[k] && (best < 0 || ft_get(p, k) > ft_get(p, best))) best = k;
        used[best] = 1;
        printf("  %d. class %d %s  p = %.4f\n", t + 1, best, names[best], ft_get(p, best));
    }
    free(used); free(names); free(chw);
    ft_tape_free(tp);
    model_free(m);
    return 0;
}
