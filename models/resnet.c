/* ResNet (He et al. 2016) exactly as torchvision builds it, names included:
 *
 *   x [N, 3, H, W] -> normalise
 *   conv1 7x7/2 (no bias) + bn1 + ReLU + max-pool 3x3/2           -> [N, 64, H/4, W/4]
 *   layer1..layer4: blocks of BasicBlock (resnet18/34) or Bottleneck (50/101/152, stride on the
 *   3x3 conv as torchvision), each block's first one strided (layer2..4) with a downsample
 *   shortcut (downsample.0 1x1 conv + downsample.1 BN) when the shape changes
 *                                                                 -> trunk [N, 512 e, H/32, W/32]
 *   adaptive average pool to 1x1, fc (512 e -> K)                 -> logits [N, K]
 * e = 1 (BasicBlock) or 4 (Bottleneck). A width w != 64 scales every channel count by w / 64. */
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

#define RESNET_MAX_BLOCKS 64

typedef struct {
    Conv2d conv[3], down;
    BatchNorm bn[3], down_bn;
    bool has_down;
    int stage, index;          /* layer<stage>.<index> */
} Block;

typedef struct {
    Model base;
    bool bottleneck;
    Conv2d conv1;
    BatchNorm bn1;
    Block blocks[RESNET_MAX_BLOCKS];
    int n_blocks;
    Linear fc;
} ResNet;

static Tensor *block_forward(Tape *tp, const Block *b, bool bottleneck, Tensor *x, bool training) {
    int n = bottleneck ? 3 : 2;
    Tensor *h = x;
    for (int i = 0; i < n; i++) {
        Tensor *z = conv2d_forward(tp, &b->conv[i], h);
        h = i < n - 1 ? batchnorm_relu_forward(tp, &b->bn[i], z, training) : batchnorm_forward(tp, &b->bn[i], z, training);
    }
    Tensor *shortcut = b->has_down ? batchnorm_forward(tp, &b->down_bn, conv2d_forward(tp, &b->down, x), training) : x;
    Tensor *y = ft_add_relu(tp, h, shortcut);
    ft_tape_release(tp, h);   /* the last batch norm's output (and the projection's): no backward reads them */
    if (b->has_down) ft_tape_release(tp, shortcut);
    return y;
}

static Tensor *trunk(Model *m, Tape *tp, Tensor *x) {
    ResNet *r = (ResNet *)m;
    Tensor *h = model_normalize(m, tp, x);
    if (!h) return NULL;   /* a refused input: ft_last_error() says why */
    h = model_tap(m, "conv1", conv2d_forward(tp, &r->conv1, h));
    h = model_bn_relu(m, tp, &r->bn1, h, "bn1", "relu");
    h = model_tap(m, "maxpool", ft_max_pool2d(tp, h, 3, 2, 1));
    for (int i = 0; i < r->n_blocks; i++) {
        const Block *b = &r->blocks[i];
        h = block_forward(tp, b, r->bottleneck, h, model_bn_training(m));
        if (m->taps) {   /* layer2.0, ..., and layer2 for the stage's last block */
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", b->stage, b->index);
            model_tap(m, name, h);
            if (i + 1 == r->n_blocks || r->blocks[i + 1].stage != b->stage) {
                snprintf(name, sizeof name, "layer%d", b->stage);
                model_tap(m, name, h);
            }
        }
    }
    return h;
}

static Tensor *forward(Model *m, Tape *tp, Tensor *x) {
    ResNet *r = (ResNet *)m;
    Tensor *h = model_tap(m, "avgpool", ft_adaptive_avg_pool2d(tp, trunk(m, tp, x), 1, 1));
    h = model_tap(m, "pooled", ft_flatten(tp, h));
    return model_tap(m, "fc", linear_forward(tp, &r->fc, h));
}

static void destroy(Model *m) { free(m); }

/* A conv + BN pair named prefix.convK / prefix.bnK, Kaiming fan-out init (torchvision's). */
static void conv_bn(Model *m, const char *prefix, int k, int in, int out, int ksize, int stride, Conv2d *c, BatchNorm *bn, Rng *rng) {
    char cn[64], bnn[64];
    snprintf(cn, sizeof cn, "%s.conv%d", prefix, k);
    snprintf(bnn, sizeof bnn, "%s.bn%d", prefix, k);
    *c = conv2d_make(&m->params, cn, in, out, ksize, stride, ksize / 2, false);
    *bn = batchnorm_make(&m->params, bnn, out);
    init_kaiming_normal(c->weight, true, rng);
}

static const float imagenet_mean[] = { 0.485f, 0.456f, 0.406f }, imagenet_std[] = { 0.229f, 0.224f, 0.225f };

Model *resnet_create(const char *arch, bool bottleneck, const int layers[4], const ModelConfig *cfg) {
    ResNet *r = ft_xcalloc(1, sizeof *r);
    Model *m = &r->base;
    model_setup(m, arch, 3, 0, 0, imagenet_mean, imagenet_std, cfg);
    m->forward = forward;
    m->trunk = trunk;
    m->destroy = destroy;
    m->min_size = 32;   /* five stride-2 stages */
    r->bottleneck = bottleneck;
    int w = cfg->width > 0 ? cfg->width : 64, expansion = bottleneck ? 4 : 1;
    Rng rng = rng_new(cfg->seed);
    r->conv1 = conv2d_make(&m->params, "conv1", 3, w, 7, 2, 3, false);
    init_kaiming_normal(r->conv1.weight, true, &rng);
    r->bn1 = batchnorm_make(&m->params, "bn1", w);
    model_add_rf_layer(m, 7, 2, 3);
    model_add_rf_layer(m, 3, 2, 1);
    int in = w;
    for (int L = 0; L < 4; L++) {
        int planes = w << L;
        for (int j = 0; j < layers[L]; j++) {
            FT_CHECK(r->n_blocks < RESNET_MAX_BLOCKS, "%s: more than %d blocks", arch, RESNET_MAX_BLOCKS);
            Block *b = &r->blocks[r->n_blocks++];
            b->stage = L + 1;
            b->index = j;
            int stride = (L > 0 && j == 0) ? 2 : 1, out = planes * expansion;
            char prefix[32];
            snprintf(prefix, sizeof prefix, "layer%d.%d", L + 1, j);
            if (bottleneck) {
                conv_bn(m, prefix, 1, in, planes, 1, 1, &b->conv[0], &b->bn[0], &rng);
                conv_bn(m, prefix, 2, planes, planes, 3, stride, &b->conv[1], &b->bn[1], &rng);
                conv_bn(m, prefix, 3, planes, out, 1, 1, &b->conv[2], &b->bn[2], &rng);
                model_add_rf_layer(m, 1, 1, 0);
                model_add_rf_layer(m, 3, stride, 1);
                model_add_rf_layer(m, 1, 1, 0);
            } else {
                conv_bn(m, prefix, 1, in, planes, 3, stride, &b->conv[0], &b->bn[0], &rng);
                conv_bn(m, prefix, 2, planes, planes, 3, 1, &b->conv[1], &b->bn[1], &rng);
                model_add_rf_layer(m, 3, stride, 1);
                model_add_rf_layer(m, 3, 1, 1);
            }
            if (stride != 1 || in != out) {
                char dn[48], dbn[48];
                snprintf(dn, sizeof dn, "%s.downsample.0", prefix);
                snprintf(dbn, sizeof dbn, "%s.downsample.1", prefix);
                b->down = conv2d_make(&m->params, dn, in, out, 1, stride, 0, false);
                b->down_bn = batchnorm_make(&m->params, dbn, out);
                init_kaiming_normal(b->down.weight, true, &rng);
                b->has_down = true;
            }
            in = out;
        }
    }
    m->trunk_channels = in;
    if (!cfg->trunk_only) {
        r->fc = linear_make(&m->params, "fc", in, cfg->num_classes, true);
        init_torch_default(r->fc.weight, r->fc.bias, &rng);
    }
    model_finish(m, cfg);
    return m;
}
