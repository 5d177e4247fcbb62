/* finch's ops against PyTorch: outputs and gradients from tests/fixtures/ops.safetensors, written
 * by tools/make_op_fixtures.py. Error = max |finch - torch| / max(1, |torch|), float32. */
#include <string.h>
#include "test.h"
#include "core/safetensors.h"

#define FIXTURE "tests/fixtures/ops.safetensors"
#define TOL 1e-5

typedef struct {
    const char *name;
    const char *in[5];
    int n_in, n_grad;                 /* the first n_grad inputs are differentiated */
    Tensor *(*fn)(Tape *tp, Tensor **x);
} Parity;

static Tensor *conv_s2p1(Tape *tp, Tensor **x) { return ft_conv2d(tp, x[0], x[1], x[2], 2, 1, 1); }
static Tensor *conv_dil2(Tape *tp, Tensor **x) { return ft_conv2d(tp, x[0], x[1], NULL, 1, 2, 2); }
static Tensor *linear(Tape *tp, Tensor **x) { return ft_linear(tp, x[0], x[1], x[2]); }
static Tensor *matmul(Tape *tp, Tensor **x) { return ft_matmul(tp, x[0], x[1]); }
static Tensor *max_pool(Tape *tp, Tensor **x) { return ft_max_pool2d(tp, x[0], 3, 2, 1); }
static Tensor *avg_incl(Tape *tp, Tensor **x) { return ft_avg_pool2d(tp, x[0], 3, 2, 1, true); }
static Tensor *avg_excl(Tape *tp, Tensor **x) { return ft_avg_pool2d(tp, x[0], 3, 2, 1, false); }
static Tensor *adaptive(Tape *tp, Tensor **x) { return ft_adaptive_avg_pool2d(tp, x[0], 3, 4); }
static Tensor *bn_train(Tape *tp, Tensor **x) { return ft_batch_norm(tp, x[0], x[1], x[2], x[3], x[4], true, 0.1, 1e-5); }
static Tensor *bn_eval(Tape *tp, Tensor **x) { return ft_batch_norm(tp, x[0], x[1], x[2], x[3], x[4], false, 0.1, 1e-5); }
static Tensor *upsample(Tape *tp, Tensor **x) { return ft_upsample_bilinear(tp, x[0], 7, 5, false); }
static Tensor *upsample_align(Tape *tp, Tensor **x) { return ft_upsample_bilinear(tp, x[0], 6, 8, true); }
static Tensor *upsample_down(Tape *tp, Tensor **x) { return ft_upsample_bilinear(tp, x[0], 3, 2, false); }
static Tensor *softmax(Tape *tp, Tensor **x) { return ft_softmax(tp, x[0], 1); }
static Tensor *log_softmax(Tape *tp, Tensor **x) { return ft_log_softmax(tp, x[0], -1); }
static Tensor *cross_entropy(Tape *tp, Tensor **x) { return ft_cross_entropy(tp, x[0], x[1]); }
static Tensor *pad2d(Tape *tp, Tensor **x) { return ft_pad2d(tp, x[0], 1, 2, 0, 3, 0.25); }
static Tensor *sigmoid_tanh(Tape *tp, Tensor **x) {
    return ft_mul(tp, ft_sigmoid(tp, ft_affine(tp, x[0], 4, 0)), ft_tanh(tp, ft_affine(tp, x[0], 2, 0)));
}

static const Parity cases[] = {
    { "conv2d_s2p1", { "x", "w", "b" }, 3, 3, conv_s2p1 },
    { "conv2d_dil2", { "x", "w" }, 2, 2, conv_dil2 },
    { "linear", { "x", "w", "b" }, 3, 3, linear },
    { "matmul_batched", { "a", "b" }, 2, 2, matmul },
    { "max_pool_k3s2p1", { "x" }, 1, 1, max_pool },
    { "avg_pool_incl", { "x" }, 1, 1, avg_incl },
    { "avg_pool_excl", { "x" }, 1, 1, avg_excl },
    { "adaptive_avg", { "x" }, 1, 1, adaptive },
    { "bn_train", { "x", "w", "b", "rm", "rv" }, 5, 3, bn_train },
    { "bn_eval", { "x", "w", "b", "rm", "rv" }, 5, 3, bn_eval },
    { "upsample", { "x" }, 1, 1, upsample },
    { "upsample_align", { "x" }, 1, 1, upsample_align },
    { "upsample_down", { "x" }, 1, 1, upsample_down },
    { "softmax", { "x" }, 1, 1, softmax },
    { "log_softmax", { "x" }, 1, 1, log_softmax },
    { "cross_entropy", { "x", "labels" }, 2, 1, cross_entropy },
    { "pad2d", { "x" }, 1, 1, pad2d },
    { "sigmoid_tanh", { "x" }, 1, 1, sigmoid_tanh },
};

static Tensor *load(const SafeTensors *st, const char *c, const char *k) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s", c, k);
    return test_fixture_tensor(st, name);
}

static double err(const Tensor *a, const Tensor *b) {
    if (!a || !b || a->numel != b->numel) return INFINITY;
    double w = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double e = fabs(ft_get(a, i) - ft_get(b, i)) / fmax(1.0, fabs(ft_get(b, i)));
        if (!(e <= w)) w = e;
    }
    return w;
}

TEST(ops_match_pytorch) {
    SafeTensors st;
    if (st_open(FIXTURE, &st) != 0) { CHECK(false, "%s", ft_last_error()); }
    int bad = 0;
    printf("\n    %-18s %10s %10s\n", "op", "output", "gradients");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const Parity *p = &cases[c];
        Tensor *x[5] = { 0 };
        Tape *tp = ft_tape_new(FT_CPU);
        for (int i = 0; i < p->n_in; i++) {
            x[i] = load(&st, p->name, p->in[i]);
            CHECK(x[i], "fixture lacks %s.%s", p->name, p->in[i]);
            x[i]->requires_grad = i < p->n_grad;
        }
        Tensor *want = load(&st, p->name, "y"), *R = load(&st, p->name, "R");
        Tensor *y = p->fn(tp, x);
        double ey = err(y, want), eg = 0;
        ft_backward(tp, ft_sum(tp, ft_mul(tp, y, R), FT_ALL_DIMS, false));
        for (int i = 0; i < p->n_grad; i++) {
            char k[16];
            snprintf(k, sizeof k, "d%s", p->in[i]);
            Tensor *g = load(&st, p->name, k);
            eg = fmax(eg, err(x[i]->grad, g));
            ft_tensor_free(g);
        }
        if (strcmp(p->name, "bn_train") == 0) {   /* the running statistics were updated like PyTorch's */
            Tensor *rm = load(&st, p->name, "rm_after"), *rv = load(&st, p->name, "rv_after");
            ey = fmax(ey, fmax(err(x[3], rm), err(x[4], rv)));
            ft_tensor_free(rm); ft_tensor_free(rv);
        }
        bool ok = ey <= TOL && eg <= TOL;
        printf("    %-18s %10.2e %10.2e%s\n", p->name, ey, eg, ok ? "" : "   <-- FAIL");
        bad += !ok;
        for (int i = 0; i < p->n_in; i++) ft_tensor_free(x[i]);
        ft_tensor_free(want); ft_tensor_free(R);
        ft_tape_free(tp);
    }
    st_close(&st);
    CHECK(bad == 0, "%d ops differ from PyTorch by more than %g", bad, TOL);
}
