/* Kernel parity across backends, on every case of the gradient-check tables plus larger shapes
 * that fill whole tiles and blocks. Each run happens twice on the same tape, the arena poisoned
 * with NaN between, so an output element a kernel forgets to write cannot pass.
 *   - always: float32 CPU kernels against the float64 CPU reference;
 *   - with a CUDA device: float32 CUDA against float32 CPU, outputs and gradients, within 1e-5;
 *     where float32 rounding alone makes the two differ by more (long reductions summed in another
 *     order), CUDA must be at least as close to the float64 result as the CPU's float32 is. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "op_cases.h"

#define CUDA_TOL 1e-5
#define F32_TOL 2e-4

static const Case big_cases[] = {
    { "add_broadcast_big", 2, { SHAPE(8, 64, 33, 17), SHAPE(64, 1, 1) }, VALUES_ANY, op_add, {0}, {0} },
    { "sum_big", 1, { SHAPE(7, 1000, 3) }, VALUES_ANY, op_sum, { FT_DIM(1), 0 }, {0} },
    { "max_big", 1, { SHAPE(5, 999) }, VALUES_DISTINCT, op_max, { FT_DIM(1), 0 }, {0} },
    { "softmax_big", 1, { SHAPE(64, 1000) }, VALUES_ANY, op_softmax, { -1 }, {0} },
    { "cross_entropy_big", 1, { SHAPE(256, 200) }, VALUES_ANY, op_cross_entropy, {0}, {0} },
    { "matmul_big", 2, { SHAPE(2, 129, 65), SHAPE(2, 65, 127) }, VALUES_ANY, op_matmul, {0}, {0} },
    { "conv2d_big", 3, { SHAPE(2, 32, 17, 19), SHAPE(16, 32, 3, 3), SHAPE(16) }, VALUES_ANY, op_conv2d, { 1, 1, 1 }, {0} },
    { "conv2d_big_5x5_s2", 2, { SHAPE(3, 16, 33, 31), SHAPE(8, 16, 5, 5) }, VALUES_ANY, op_conv2d, { 2, 2, 1 }, {0} },
    { "max_pool_big", 1, { SHAPE(4, 16, 33, 31) }, VALUES_DISTINCT, op_max_pool, { 3, 2, 1 }, {0} },
    { "batch_norm_big", 3, { SHAPE(8, 64, 9, 9), SHAPE(64), SHAPE(64) }, VALUES_ANY, op_bn_train, {0}, {0} },
    { "add_relu_big", 2, { SHAPE(8, 64, 33, 17), SHAPE(8, 64, 33, 17) }, VALUES_ANY, op_add_relu, {0}, {0} },
    { "batch_norm_relu_big", 3, { SHAPE(8, 64, 9, 9), SHAPE(64), SHAPE(64) }, VALUES_ANY, op_bn_relu_train, {0}, {0} },
    { "upsample_big", 1, { SHAPE(2, 8, 7, 7) }, VALUES_ANY, op_upsample, { 56, 56, 0 }, {0} },
};

typedef struct { Tensor *y, *g[MAX_IN]; } Result;   /* host float64 copies */

static Tensor *to_f64_host(const Tensor *t) {
    Tensor *h = ft_tensor_new(t->dtype, t->shape, FT_CPU), *d = ft_tensor_new(FT_F64, t->shape, FT_CPU);
    ft_copy_(h, t);
    for (int64_t i = 0; i < t->numel; i++) ft_f64(d)[i] = ft_get(h, i);
    ft_tensor_free(h);
    return d;
}

static Tensor *from_f64_host(const Tensor *src, DType dt, Device dev) {
    Tensor *h = ft_tensor_new(dt, src->shape, FT_CPU), *d = ft_tensor_new(dt, src->shape, dev);
    for (int64_t i = 0; i < src->numel; i++) ft_set(h, i, ft_f64(src)[i]);
    ft_copy_(d, h);
    ft_tensor_free(h);
    return d;
}

/* y = op(x) and the gradients of sum(y * R), on dev in dtype dt; the second of two runs, with
 * the arena poisoned before it */
static Result run_case(const Case *c, Tensor **in, Tensor *R64, Device dev, DType dt) {
    Tape *tp = ft_tape_new(dev);
    Tensor *x[MAX_IN], *R = from_f64_host(R64, dt, dev), *y = NULL;
    for (int i = 0; i < c->n_in; i++) { x[i] = from_f64_host(in[i], dt, dev); x[i]->requires_grad = true; }
    for (int pass = 0; pass < 2; pass++) {
        ft_tape_reset(tp);
        if (pass == 1) arena_poison(tp->arena);
        for (int i = 0; i < c->n_in; i++) if (x[i]->grad) ft_zero_(x[i]->grad);
        y = c->fn(tp, x, c);
        ft_backward(tp, ft_sum(tp, ft_mul(tp, y, R), FT_ALL_DIMS, false));
    }
    Result r = { to_f64_host(y), { 0 } };
    for (int i = 0; i < c->n_in; i++) { r.g[i] = to_f64_host(x[i]->grad); ft_tensor_free(x[i]); }
    ft_tensor_free(R);
    ft_tape_free(tp);
    return r;
}

static double max_rel(const Tensor *a, const Tensor *b) {
    double w = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        double e = fabs(ft_f64(a)[i] - ft_f64(b)[i]) / fmax(1.0, fabs(ft_f64(b)[i]));
        if (!(e <= w)) w = e;   /* NaN (an unwritten, poisoned element) counts as the worst */
    }
    return w;
}

static double result_err(const Result *a, const Result *b, int n_in) {
    double e = max_rel(a->y, b->y);
    for (int i = 0; i < n_in; i++) e = fmax(e, max_rel(a->g[i], b->g[i]));
    return e != e ? INFINITY : e;
}

static void result_free(Result *r, int n_in) {
    ft_tensor_free(r->y);
    for (int i = 0; i < n_in; i++) ft_tensor_free(r->g[i]);
}

TEST(kernels_agree_across_backends_and_write_every_output) {
    bool cuda = ft_cuda_available();
    int bad = 0, total = 0;
    printf("\n    %-26s %12s %12s %12s\n", "op", "f32 vs f64", cuda ? "cuda vs cpu" : "", cuda ? "cuda vs f64" : "");
    for (int pass = 0; pass < 3; pass++) {
        const Case *table = pass == 0 ? op_cases : pass == 1 ? layer_cases : big_cases;
        int n = pass == 0 ? n_op_cases : pass == 1 ? n_layer_cases : (int)(sizeof big_cases / sizeof big_cases[0]);
        for (int k = 0; k < n; k++) {
            const Case *c = &table[k];
            Rng rng = rng_new(77);
            Tensor *in[MAX_IN];
            for (int i = 0; i < c->n_in; i++) { in[i] = ft_tensor_new(FT_F64, c->in[i], FT_CPU); fill_inputs(in[i], c->values, &rng); }
            Tape *tp = ft_tape_new(FT_CPU);
            Tensor *R = ft_tensor_new(FT_F64, c->fn(tp, in, c)->shape, FT_CPU);
            ft_tape_free(tp);
            rng_uniform_(&rng, R, -1, 1);
            Result ref = run_case(c, in, R, FT_CPU, FT_F64), cpu = run_case(c, in, R, FT_CPU, FT_F32);
            double e32 = result_err(&cpu, &ref, c->n_in), ec = 0, ec64 = 0;
            if (cuda) {
                Result gpu = run_case(c, in, R, FT_CUDA, FT_F32);
                ec = result_err(&gpu, &cpu, c->n_in);
                ec64 = result_err(&gpu, &ref, c->n_in);
                result_free(&gpu, c->n_in);
            }
            bool ok = e32 <= F32_TOL && (ec <= CUDA_TOL || ec64 <= 1.5 * e32);
            if (cuda) printf("    %-26s %12.2e %12.2e %12.2e%s\n", c->name, e32, ec, ec64, ok ? "" : "   <-- FAIL");
            else printf("    %-26s %12.2e%s\n", c->name, e32, ok ? "" : "   <-- FAIL");
            bad += !ok;
            total++;
            result_free(&ref, c->n_in);
            result_free(&cpu, c->n_in);
            for (int i = 0; i < c->n_in; i++) ft_tensor_free(in[i]);
            ft_tensor_free(R);
        }
    }
    CHECK(bad == 0, "%d of %d cases disagree (float32 vs float64 tolerance %g, CUDA vs CPU %g)", bad, total, F32_TOL, CUDA_TOL);
    if (!cuda) SKIP("the CUDA half (%s); CPU float32 vs float64 ran and passed", ft_cuda_describe());
    printf("    on %s\n", ft_cuda_describe());
}

/* cross_entropy with labels {1, 7, 0} over 5 classes, on the device dev */
static void bad_label(Device dev) {
    Tape *tp = ft_tape_new(dev);
    Tensor *logits = ft_new(tp, FT_F32, SHAPE(3, 5));
    Tensor *y = ft_tensor_new(FT_I32, SHAPE(3), FT_CPU), *yd = ft_tensor_new(FT_I32, SHAPE(3), dev);
    ft_i32(y)[0] = 1; ft_i32(y)[1] = 7; ft_i32(y)[2] = 0;
    ft_copy_(yd, y);
    ft_cross_entropy(tp, logits, yd);
}
static void bad_label_cpu(void *arg) { (void)arg; ft_strict_ops = true; bad_label(FT_CPU); }
CHILD(bad_label_gpu) { ft_strict_ops = true; bad_label(FT_CUDA); }

TEST(labels_out_of_range_are_refused_on_every_device) {
    CHECK(test_dies_with(bad_label_cpu, NULL, "label 7 of sample 1 is outside 0..4"), "a bad label on the CPU");
    if (!ft_cuda_available()) SKIP("the GPU half (%s); the CPU half passed", ft_cuda_describe());
    CHECK(test_child_dies_with("bad_label_gpu", "label 7 of sample 1 is outside 0..4"), "a bad label on the GPU");
}

/* The profiler on CUDA times ops with events on the queue: every op of a convolution's forward and
 * backward gets its calls and a positive time, read back when the rows are asked for. */
TEST(profile_times_cuda_ops_with_events) {
    if (!ft_cuda_available()) SKIP("no GPU here (%s)", ft_cuda_describe());
    ft_profile_reset();
    ft_profile_enable(true);
    Tape *tp = ft_tape_new(FT_CUDA);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(8, 16, 32, 32), FT_CUDA), *w = ft_tensor_new(FT_F32, SHAPE(32, 16, 3, 3), FT_CUDA);
    Rng r = rng_new(1);
    rng_uniform_(&r, x, -1, 1);
    rng_uniform_(&r, w, -1, 1);
    w->requires_grad = true;
    for (int i = 0; i < 3; i++) {
        CHECK(ft_backward(tp, ft_sum(tp, ft_relu(tp, ft_conv2d(tp, x, w, NULL, 1, 1, 1)), FT_ALL_DIMS, false)) == 0, "%s", ft_last_error());
        ft_tape_reset(tp);
    }
    ft_profile_enable(false);
    ProfileRow *rows;
    int n = ft_profile_rows(&rows);
    bool conv = false;
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].op, "conv2d") == 0)
            conv = rows[i].forward_calls == 3 && rows[i].backward_calls == 3 && rows[i].forward_s > 0 && rows[i].backward_s > 0;
    CHECK(conv, "no conv2d row with 3 timed forward and backward calls among %d rows", n);
    free(rows);
    ft_profile_reset();
    ft_tensor_free(x);
    ft_tensor_free(w);
    ft_tape_free(tp);
}
