/* The backbones against torchvision: every state_dict name and shape of every full-size model
 * (tests/fixtures/torchvision_state_dicts.txt, written by tools/torchvision_state_dicts.py), the
 * parameter counts the issue names, the receptive field, and reduced-size forwards. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "models/model_io.h"

#define LIST "tests/fixtures/torchvision_state_dicts.txt"

static bool parse_shape(const char *s, Shape *out) {
    memset(out, 0, sizeof *out);
    if (strcmp(s, "-") == 0) return true;
    for (const char *p = s; *p; ) {
        if (out->ndim == FT_MAX_DIMS) return false;
        out->d[out->ndim++] = (int)strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
    }
    return true;
}

/* Compares one architecture with its lines of the list; returns a message or NULL. */
static const char *compare(const char *arch, char (*names)[128], Shape *shapes, int n, char *msg, size_t len) {
    ModelConfig mc = { .num_classes = 1000, .width = 0, .seed = 0, .device = FT_CPU };
    Model *m = model_create(arch, &mc);
    if (!m) { snprintf(msg, len, "%s", ft_last_error()); return msg; }
    int matched = 0;
    const char *err = NULL;
    for (int i = 0; i < n && !err; i++) {
        if (strstr(names[i], "num_batches_tracked")) continue;   /* finch's batch norm keeps no step counter */
        Param *p = params_find(&m->params, names[i]);
        if (!p) { snprintf(msg, len, "%.60s: finch lacks %.127s", arch, names[i]); err = msg; break; }
        if (!ft_shape_eq(p->t->shape, shapes[i])) {
            snprintf(msg, len, "%.60s: %.127s is %s in finch, %s in torchvision", arch, names[i], FT_SHAPE_STR(p->t->shape),
                     FT_SHAPE_STR(shapes[i]));
            err = msg;
        }
        matched++;
    }
    if (!err && matched != m->params.n) {
        snprintf(msg, len, "%s: finch has %d tensors, torchvision %d (besides num_batches_tracked)", arch, m->params.n, matched);
        err = msg;
    }
    model_free(m);
    return err;
}

TEST(every_backbone_matches_torchvision_names_and_shapes) {
    FILE *f = fopen(LIST, "r");
    CHECK(f, "cannot open %s", LIST);
    static char names[2048][128];
    static Shape shapes[2048];
    char line[512], arch[64] = "", cur[64] = "", dims[128], msg[512];
    int n = 0, checked = 0, skipped = 0, bad = 0;
    bool more = true;
    while (more) {
        more = fgets(line, sizeof line, f) != NULL;
        if (more && line[0] == '#') continue;
        char name[128];
        if (more && sscanf(line, "%63s %127s %127s", arch, name, dims) != 3) { CHECK(false, "%s: bad line %s", LIST, line); }
        if (!more || strcmp(arch, cur) != 0) {   /* the previous architecture is complete */
            if (cur[0]) {
#ifdef __SANITIZE_ADDRESS__
                bool heavy = strncmp(cur, "vgg", 3) == 0;   /* 0.5 GB each, slow under the sanitizers */
#else
                bool heavy = false;
#endif
                if (heavy) skipped++;
                else {
                    const char *e = compare(cur, names, shapes, n, msg, sizeof msg);
                    if (e) { printf("\n    %s", e); bad++; }
                    checked++;
                }
            }
            snprintf(cur, sizeof cur, "%s", arch);
            n = 0;
        }
        if (!more) break;
        CHECK(n < 2048, "%s: more than 2048 tensors for %s", LIST, arch);
        snprintf(names[n], sizeof names[n], "%s", name);
        CHECK(parse_shape(dims, &shapes[n]), "%s: bad shape %s", LIST, dims);
        n++;
    }
    fclose(f);
    printf("\n    %d architectures match torchvision", checked - bad);
    if (skipped) printf(" (%d full-size VGGs not built under the sanitizers)", skipped);
    printf("\n");
    CHECK(bad == 0, "%d architectures differ from torchvision", bad);
    CHECK(checked + skipped == 17, "the list has %d architectures, expected 17", checked + skipped);
}

static int64_t count_params(const char *arch) {
    ModelConfig mc = { .num_classes = 1000, .width = 0, .seed = 0, .device = FT_CPU };
    Model *m = model_create(arch, &mc);
    int64_t n = m ? m->params.n_trainable : -1;
    model_free(m);
    return n;
}

TEST(parameter_counts_and_receptive_field) {
    CHECK(count_params("resnet34") == 21797672, "resnet34 has %lld parameters", (long long)count_params("resnet34"));
    CHECK(count_params("densenet121") == 7978856, "densenet121 has %lld parameters", (long long)count_params("densenet121"));
#ifndef __SANITIZE_ADDRESS__
    CHECK(count_params("vgg16") == 138357544, "vgg16 has %lld parameters", (long long)count_params("vgg16"));
#endif
    ModelConfig mc = { .num_classes = 10, .width = 4, .seed = 0, .device = FT_CPU };   /* the receptive field does not depend on the width */
    Model *m = model_create("vgg16", &mc);
    ReceptiveField r = model_receptive_field(m, 224);
    CHECK(r.n == 7 && r.jump == 32 && r.rf == 212 && r.start == 16, "vgg16 at 224: %d cells, jump %g, rf %g, start %g "
          "(expected 7, 32, 212, 16)", r.n, r.jump, r.rf, r.start);
    model_free(m);
}

TEST(reduced_backbones_run_forward_and_trunk) {
    const char *archs[] = { "vgg11", "vgg16_bn", "resnet18", "resnet50", "densenet121", "densenet161" };
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(2, 3, 64, 64), FT_CPU);
    Rng r = rng_new(2);
    rng_uniform_(&r, x, 0, 1);
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        ModelConfig mc = { .num_classes = 10, .width = 4, .seed = 1, .device = FT_CPU };
        Model *m = model_create(archs[i], &mc);
        CHECK(m, "%s: %s", archs[i], ft_last_error());
        m->training = true;
        Tensor *logits = m->forward(m, tp, x);
        CHECK(ft_shape_eq(logits->shape, SHAPE(2, 10)), "%s logits %s", archs[i], FT_SHAPE_STR(logits->shape));
        m->training = false;
        Tensor *t = m->trunk(m, tp, x);
        ReceptiveField rf = model_receptive_field(m, 64);
        CHECK(t->shape.ndim == 4 && t->shape.d[2] == 2 && rf.n == 2, "%s trunk at 64x64: %s, receptive-field table says %d",
              archs[i], FT_SHAPE_STR(t->shape), rf.n);
        if (strncmp(archs[i], "densenet", 8) == 0) {   /* ProtoPNet's DenseNet trunk ends in a ReLU */
            float mn = INFINITY;
            for (int64_t k = 0; k < t->numel; k++) mn = fminf(mn, ft_f32(t)[k]);
            CHECK(mn >= 0, "%s trunk has negative values (%g): the final ReLU is missing", archs[i], mn);
        }
        ft_tape_reset(tp);
        model_free(m);
    }
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(backbones_take_grayscale_28x28_and_pass_gradients_to_it) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(2, 1, 28, 28), FT_CPU);
    Rng r = rng_new(4);
    rng_uniform_(&r, x, 0, 1);
    x->requires_grad = true;
    ModelConfig mc = { .num_classes = 10, .width = 4, .seed = 1, .device = FT_CPU };
    Model *m = model_create("densenet121", &mc);
    m->training = false;
    tp->params_frozen = true;
    Tensor *y = ft_tensor_new(FT_I32, SHAPE(2), FT_CPU);
    Tensor *logits = m->forward(m, tp, x);
    CHECK(ft_shape_eq(logits->shape, SHAPE(2, 10)), "logits %s", FT_SHAPE_STR(logits->shape));
    ft_backward(tp, ft_cross_entropy(tp, logits, y));
    double g = 0;
    for (int64_t i = 0; i < x->numel; i++) g += fabs(ft_f32(x->grad)[i]);
    CHECK(g > 0 && isfinite(g), "no gradient reached the 1-channel 28x28 input (sum |g| = %g)", g);
    ft_tensor_free(x);
    ft_tensor_free(y);
    model_free(m);
    ft_tape_free(tp);
}

/* model_normalize: (x - mean) / std per channel, and x itself where that is the identity
 * (conv_stack's mean 0 and std 1): no copy of the input is kept for the first layer's backward. */
TEST(input_normalisation_is_skipped_only_where_it_is_the_identity) {
    Tape *tp = ft_tape_new(FT_CPU);
    ModelConfig mc = { .num_classes = 10, .width = 16, .seed = 1, .device = FT_CPU };
    Model *stack = model_create("conv_stack", &mc), *cnn = model_create("small_cnn", &mc);
    CHECK(stack->norm_identity && !cnn->norm_identity, "norm_identity: conv_stack %d, small_cnn %d; expected 1, 0",
          stack->norm_identity, cnn->norm_identity);
    Tensor *xs = ft_tensor_new(FT_F32, SHAPE(1, 64, 56, 56), FT_CPU), *xc = ft_tensor_new(FT_F32, SHAPE(2, 1, 28, 28), FT_CPU);
    ft_fill_(xs, 0.25);
    ft_fill_(xc, 0.25);
    CHECK(model_normalize(stack, tp, xs) == xs, "conv_stack's identity normalisation made a copy");
    Tensor *n = model_normalize(cnn, tp, xc);
    float mean = ft_f32(cnn->mean)[0], std = ft_f32(cnn->std)[0];
    CHECK(n != xc && fabsf(ft_f32(n)[0] - (0.25f - mean) / std) < 1e-6f && fabsf(ft_f32(n)[1567] - ft_f32(n)[0]) == 0,
          "small_cnn's normalisation (mean %g, std %g) gave %g, expected %g", mean, std, ft_f32(n)[0], (0.25f - mean) / std);
    CHECK(model_normalize(stack, tp, xc) == NULL && strstr(ft_last_error(), "expects input"),
          "a wrong shape was not refused by the identity normalisation: %s", ft_last_error());
    ft_tensor_free(xs);
    ft_tensor_free(xc);
    model_free(stack);
    model_free(cnn);
    ft_tape_free(tp);
}

/* Depth and configuration arguments, against torchvision's counts for the same configurations
 * (tvm.ResNet(BasicBlock, [1,1,1,1]), tvm.ResNet(Bottleneck, [1,2,1,1]), tvm.DenseNet(12,
 * (2,3,4,5), 24) and VGG(make_layers([16,M,32,M,64,64,M], batch_norm=True)) with a 64*49 -> 4096
 * first classifier layer, all with 10 classes). */
TEST(depth_and_configuration_arguments) {
    struct { const char *arch; ModelConfig mc; int64_t params; } cases[] = {
        { "resnet18", { .num_classes = 10, .blocks = { 1, 1, 1, 1 } }, 4910922 },
        { "resnet50", { .num_classes = 10, .blocks = { 1, 2, 1, 1 } }, 8316490 },
        { "densenet121", { .num_classes = 10, .width = 12, .blocks = { 2, 3, 4, 5 }, .stem = 24 }, 118810 },
        { "vgg11_bn", { .num_classes = 10, .vgg_cfg = { 16, 0, 32, 0, 64, 64, 0 }, .n_vgg_cfg = 7 }, 29732298 },
    };
    char path[512];
    snprintf(path, sizeof path, "%s/custom.safetensors", test_tmpdir());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Model *m = model_create(cases[i].arch, &cases[i].mc);
        CHECK(m && m->params.n_trainable == cases[i].params, "%s with its configuration: %lld parameters, torchvision %lld",
              cases[i].arch, m ? (long long)m->params.n_trainable : -1LL, (long long)cases[i].params);
        CHECK(model_save(m, &cases[i].mc, path) == 0, "%s", ft_last_error());
        Model *back = model_load(path, FT_CPU, NULL);   /* the configuration travels in the metadata */
        CHECK(back && back->params.n_trainable == cases[i].params, "%s reloaded: %s", cases[i].arch, back ? "wrong size" : ft_last_error());
        model_free(back);
        model_free(m);
    }
}
