/* Tensors, the arena and the autograd engine's semantics. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "layers/params.h"
#include "models/model.h"
#include "core/cpu/cpu_common.h"

TEST(tensor_views_share_storage) {
    Tensor *t = ft_tensor_new(FT_F32, SHAPE(4, 3), FT_CPU);
    Tensor *v = ft_tensor_view(t, 3, SHAPE(3));
    ft_f32(v)[1] = 7;
    CHECK(ft_f32(t)[4] == 7, "a write through a view did not reach the base tensor");
    ft_tensor_free(t);               /* the view keeps the storage alive */
    CHECK(ft_f32(v)[1] == 7, "storage freed while a view still referenced it");
    ft_tensor_free(v);
}

TEST(reshape_infers_minus_one_and_slice_is_a_view) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(4, 6), FT_CPU);
    for (int i = 0; i < 24; i++) ft_f32(x)[i] = (float)i;
    Tensor *r = ft_reshape(tp, x, SHAPE(2, -1, 3));
    CHECK(r->shape.ndim == 3 && r->shape.d[1] == 4, "reshape to (2, -1, 3) gave %s", FT_SHAPE_STR(r->shape));
    CHECK(ft_ptr(r) == ft_ptr(x), "reshape copied the data");
    Tensor *s = ft_slice_batch(tp, x, 1, 2);
    CHECK(ft_f32(s)[0] == 6 && s->shape.d[0] == 2, "slice_batch(1, 2) starts at %g", ft_f32(s)[0]);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(arena_stops_allocating_once_warm) {
    Tape *tp = ft_tape_new(FT_CPU);
    size_t peak_after_second = 0;
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 50; i++) ft_new(tp, FT_F32, SHAPE(1000 + i));   /* more than one block */
        if (step == 1) peak_after_second = tp->arena->peak;
        ft_tape_reset(tp);
        CHECK(arena_block_count(tp->arena) == 1, "after a reset the arena holds %d blocks, expected 1",
              arena_block_count(tp->arena));
    }
    CHECK(tp->arena->peak == peak_after_second, "peak grew from %zu to %zu", peak_after_second, tp->arena->peak);
    ft_tape_free(tp);
}

TEST(gradient_of_a_tensor_used_twice_accumulates) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F64, SHAPE(3), FT_CPU);
    x->requires_grad = true;
    ft_f64(x)[0] = 1; ft_f64(x)[1] = -2; ft_f64(x)[2] = 3;
    /* L = sum(x * x + x) -> dL/dx = 2x + 1 */
    Tensor *L = ft_sum(tp, ft_add(tp, ft_mul(tp, x, x), x), FT_ALL_DIMS, false);
    ft_backward(tp, L);
    for (int i = 0; i < 3; i++) CHECK_NEAR(ft_f64(x->grad)[i], 2 * ft_f64(x)[i] + 1, 1e-12);
    /* a second backward adds, as in PyTorch, until the caller zeroes it */
    ft_tape_reset(tp);
    ft_backward(tp, ft_sum(tp, x, FT_ALL_DIMS, false));
    CHECK_NEAR(ft_f64(x->grad)[0], 4.0, 1e-12);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(arena_reuses_a_handed_back_chunk_and_splits_it) {
    Arena *a = arena_new(FT_CPU);
    char *big = arena_alloc_data(a, 4096), *other = arena_alloc_data(a, 300);
    CHECK(a->used == 4096 + 512, "used %zu bytes, expected 4608 (256-byte rounding)", a->used);
    arena_release_data(a, big, 4096);
    CHECK(a->used == 512, "after handing back 4096 bytes, used is %zu", a->used);
    char *p = arena_alloc_data(a, 1000), *q = arena_alloc_data(a, 3000);
    CHECK(p == big, "a 1000-byte request did not reuse the handed-back chunk");
    CHECK(q == big + 1024, "the chunk's tail (from byte 1024) was not reused for 3000 bytes: got offset %td", q - big);
    char *r = arena_alloc_data(a, 256);
    CHECK(r != big && r != other && (r < big || r >= big + 4096), "a third request overlapped the chunk already handed out");
    CHECK(a->peak == 4096 + 512 + 256, "peak %zu, expected 4864", a->peak);
    arena_reset(a);
    CHECK(a->n_spare == 0 && a->used == 0, "the reset left %d spare chunks, %zu bytes in use", a->n_spare, a->used);
    arena_free(a);
}

/* Handed-back neighbours merge into one chunk, and a chunk that reaches the top of the block lowers
 * it: a step that frees two activations and then asks for one as large as both, or frees the last
 * ones, does not grow the block. */
TEST(arena_merges_handed_back_neighbours_and_lowers_its_top) {
    Arena *a = arena_new(FT_CPU);
    char *p[4];
    for (int i = 0; i < 4; i++) p[i] = arena_alloc_data(a, 1024);
    CHECK(p[1] == p[0] + 1024 && p[3] == p[0] + 3072, "four 1024-byte requests were not laid out in a row");
    arena_release_data(a, p[1], 1024);
    arena_release_data(a, p[0], 1024);
    CHECK(a->n_spare == 1, "two neighbours handed back make %d spare chunks, expected 1", a->n_spare);
    char *both = arena_alloc_data(a, 2048);
    CHECK(both == p[0], "a 2048-byte request did not take the two merged 1024-byte chunks");
    arena_release_data(a, p[2], 1024);
    arena_release_data(a, p[3], 1024);   /* with p[2], the top of the block */
    CHECK(a->n_spare == 0, "the chunks at the top stayed spare (%d) instead of lowering it", a->n_spare);
    char *next = arena_alloc_data(a, 4096);
    CHECK(next == p[2], "a 4096-byte request after lowering the top went to offset %td, expected 2048", next - p[0]);
    CHECK(a->used == 2048 + 4096 && a->peak == 2048 + 4096, "used %zu, peak %zu; expected 6144 both", a->used, a->peak);
    CHECK(arena_block_count(a) == 1, "the 4096-byte request needed %d blocks, expected 1", arena_block_count(a));
    arena_free(a);
}

/* A chain of 20 ops on 1 MB tensors: with every intermediate gradient kept, the backward would need
 * 20 more MB; handed back as the walk passes, a few are alive at once. The leaf keeps its gradient,
 * the intermediates' are gone, and every node on the path is marked visited. */
TEST(backward_hands_back_intermediate_gradients) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1 << 18), FT_CPU);
    for (int64_t i = 0; i < x->numel; i++) ft_f32(x)[i] = (float)(i % 7) * 0.1f;
    x->requires_grad = true;
    Tensor *h[21];
    h[0] = x;
    for (int i = 1; i <= 20; i++) h[i] = ft_affine(tp, h[i - 1], 1.5, 0.25);   /* d h20 / d x = 1.5^20 */
    Tensor *L = ft_sum(tp, h[20], FT_ALL_DIMS, false);
    size_t forward = tp->arena->used;
    ft_backward(tp, L);
    size_t mb = (size_t)x->numel * sizeof(float);
    CHECK(tp->arena->peak <= forward + 3 * mb, "backward peak %zu bytes over the forward's %zu: more than 3 gradients of %zu alive",
          tp->arena->peak - forward, forward, mb);
    double want = pow(1.5, 20);
    for (int64_t i = 0; i < x->numel; i += 4099) CHECK_NEAR(ft_f32(x->grad)[i], want, 1e-3 * want);
    for (int i = 1; i <= 20; i++) CHECK(!h[i]->grad, "intermediate %d kept its gradient", i);
    for (int i = 0; i < tp->n_nodes; i++) CHECK(tp->nodes[i]->visited, "node %d (%s) not marked visited", i, tp->nodes[i]->op);
    /* a second backward on the same tape starts from the new loss alone (nothing left over) */
    ft_zero_(x->grad);
    ft_backward(tp, ft_sum(tp, h[1], FT_ALL_DIMS, false));
    CHECK_NEAR(ft_f32(x->grad)[5], 1.5, 1e-6);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(no_grad_records_nothing) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(8), FT_CPU);
    x->requires_grad = true;
    ft_no_grad_begin(tp);
    Tensor *y = ft_relu(tp, ft_exp(tp, x));
    ft_no_grad_end(tp);
    CHECK(tp->n_nodes == 0 && !y->node, "no_grad recorded %d nodes", tp->n_nodes);
    Tensor *z = ft_exp(tp, x);
    CHECK(tp->n_nodes == 1 && z->node, "recording did not resume after no_grad");
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(frozen_parameters_get_no_gradient_but_inputs_do) {
    Tape *tp = ft_tape_new(FT_CPU);
    ParamSet ps;
    params_init(&ps, FT_CPU, FT_F32);
    Tensor *w = params_add(&ps, "conv", "weight", SHAPE(2, 1, 3, 3));
    ft_fill_(w, 0.5);
    params_finalize(&ps);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1, 1, 5, 5), FT_CPU);
    ft_fill_(x, 1);
    x->requires_grad = true;
    tp->params_frozen = true;
    ft_backward(tp, ft_sum(tp, ft_conv2d(tp, x, w, NULL, 1, 1, 1), FT_ALL_DIMS, false));
    float wmax = 0;
    for (int i = 0; i < w->numel; i++) wmax = fmaxf(wmax, fabsf(ft_f32(w->grad)[i]));
    CHECK(wmax == 0, "a frozen weight received gradient %g", wmax);
    CHECK(x->grad && ft_f32(x->grad)[12] == 2 * 9 * 0.5f, "input gradient at the centre is %g, expected 9",
          x->grad ? ft_f32(x->grad)[12] : -1);
    tp->params_frozen = false;
    ft_tape_reset(tp);
    ft_backward(tp, ft_sum(tp, ft_conv2d(tp, x, w, NULL, 1, 1, 1), FT_ALL_DIMS, false));
    CHECK(ft_f32(w->grad)[4] == 25, "unfrozen weight gradient %g, expected 25", ft_f32(w->grad)[4]);
    ft_tensor_free(x);
    params_free(&ps);
    ft_tape_free(tp);
}

/* Under ft_strict_ops (the finch program's setting), an op's bad arguments end the process with the
 * op, the shapes and what was expected. */
static void bad_broadcast(void *arg) {
    (void)arg;
    ft_strict_ops = true;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *a = ft_tensor_new(FT_F32, SHAPE(2, 3), FT_CPU), *b = ft_tensor_new(FT_F32, SHAPE(4), FT_CPU);
    ft_add(tp, a, b);
}

static void backward_of_constant(void *arg) {
    (void)arg;
    ft_strict_ops = true;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *a = ft_tensor_new(FT_F32, SHAPE(3), FT_CPU);
    ft_backward(tp, ft_sum(tp, a, FT_ALL_DIMS, false));
}

static void conv_channel_mismatch(void *arg) {
    (void)arg;
    ft_strict_ops = true;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1, 3, 8, 8), FT_CPU), *w = ft_tensor_new(FT_F32, SHAPE(4, 1, 3, 3), FT_CPU);
    ft_conv2d(tp, x, w, NULL, 1, 1, 1);
}

TEST(shape_errors_name_the_op_and_shapes) {
    CHECK(test_dies_with(bad_broadcast, NULL, "add: shapes [2, 3] and [4] cannot be broadcast"), "broadcast error");
    CHECK(test_dies_with(backward_of_constant, NULL, "no recorded op"), "backward of a constant");
    CHECK(test_dies_with(conv_channel_mismatch, NULL, "input has 3 channels"), "conv channel error");
}

static Tensor *mismatched(Tape *tp, Tensor *const *in, void *ctx) { (void)ctx; return ft_add(tp, in[0], in[1]); }

/* As a library (the default), the same mistakes come back as NULL (or -1) with the message in
 * ft_last_error(), every later op passes the NULL on, and the process goes on. */
TEST(op_errors_come_back_as_null_and_propagate_without_exiting) {
    CHECK(!ft_strict_ops, "the library's default is to return errors");
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *a = ft_tensor_new(FT_F32, SHAPE(2, 3), FT_CPU), *b = ft_tensor_new(FT_F32, SHAPE(4), FT_CPU);
    Tensor *bad = ft_add(tp, a, b);
    CHECK(!bad && strstr(ft_last_error(), "add: shapes [2, 3] and [4] cannot be broadcast"), "%s", ft_last_error());
    /* later ops pass the NULL on and keep the first message */
    Tensor *L = ft_sum(tp, ft_relu(tp, ft_mul(tp, bad, a)), FT_ALL_DIMS, false);
    CHECK(!L && strstr(ft_last_error(), "cannot be broadcast") && isnan(ft_item(L)), "%s", ft_last_error());
    CHECK(ft_backward(tp, L) == -1, "backward from a failed loss");
    CHECK(ft_backward(tp, ft_sum(tp, a, FT_ALL_DIMS, false)) == -1 && strstr(ft_last_error(), "no recorded op"), "%s", ft_last_error());
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1, 3, 8, 8), FT_CPU), *w = ft_tensor_new(FT_F32, SHAPE(4, 1, 3, 3), FT_CPU);
    CHECK(!ft_conv2d(tp, x, w, NULL, 1, 1, 1) && strstr(ft_last_error(), "input has 3 channels"), "%s", ft_last_error());
    CHECK(!ft_matmul(tp, a, a) && strstr(ft_last_error(), "matmul: inner sizes differ"), "%s", ft_last_error());
    Tensor *labels = ft_tensor_new(FT_I32, SHAPE(2), FT_CPU);
    ft_i32(labels)[0] = 0;
    ft_i32(labels)[1] = 9;
    CHECK(!ft_cross_entropy(tp, a, labels) && strstr(ft_last_error(), "label 9 of sample 1 is outside 0..2"), "%s", ft_last_error());
    /* a model given an image of the wrong size says so, and nothing after it runs */
    ModelConfig mc = { .num_classes = 10, .seed = 1, .device = FT_CPU };
    Model *m = model_create("small_cnn", &mc);
    CHECK(!m->forward(m, tp, x) && strstr(ft_last_error(), "small_cnn expects input [N, 1, 28, 28], got [1, 3, 8, 8]"), "%s",
          ft_last_error());
    CHECK(!model_layer(m, tp, x, "fc1") && strstr(ft_last_error(), "expects input"), "model_layer: %s", ft_last_error());
    model_free(m);
    /* the gradient checker of a function whose ops refuse their arguments: NAN, the message kept */
    Tensor *d[2] = { ft_tensor_new(FT_F64, SHAPE(2, 3), FT_CPU), ft_tensor_new(FT_F64, SHAPE(4), FT_CPU) };
    CHECK(isnan(ft_gradcheck(mismatched, NULL, 2, d, 1e-6, 1, NULL)) && strstr(ft_last_error(), "cannot be broadcast"), "%s",
          ft_last_error());
    ft_tensor_free(d[0]); ft_tensor_free(d[1]);
    ft_tensor_free(a); ft_tensor_free(b); ft_tensor_free(x); ft_tensor_free(w); ft_tensor_free(labels);
    ft_tape_free(tp);
}

#ifdef FINCH_CUDA
TEST(cuda_request_in_a_cpu_build_is_explained) {
    SKIP("this is a CUDA build; the CPU-only message is tested by the CUDA=0 build (make asan)");
}
#else
static void cuda_in_cpu_build(void *arg) {
    (void)arg;
    ft_tensor_new(FT_F32, SHAPE(2), FT_CUDA);
}

TEST(cuda_request_in_a_cpu_build_is_explained) {
    CHECK(test_dies_with(cuda_in_cpu_build, NULL, "built without CUDA"), "asking a CPU build for cuda");
}
#endif

TEST(rng_is_counter_based_and_reproducible) {
    Rng a = rng_new(42), b = rng_new(42);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(1001), FT_CPU), *y = ft_tensor_new(FT_F64, SHAPE(1001), FT_CPU);
    rng_uniform_(&a, x, 0, 1);
    rng_uniform_(&b, y, 0, 1);
    for (int i = 0; i < 1001; i++) CHECK(ft_f32(x)[i] == (float)ft_f64(y)[i], "float and double fills differ at %d", i);
    CHECK(a.counter == 251 && b.counter == 251, "1001 uniforms advanced the counter to %llu", (unsigned long long)a.counter);
    Tensor *n = ft_tensor_new(FT_F64, SHAPE(200000), FT_CPU);
    rng_normal_(&a, n, 1.0, 2.0);
    double s = 0, ss = 0;
    for (int i = 0; i < n->numel; i++) { s += ft_f64(n)[i]; ss += ft_f64(n)[i] * ft_f64(n)[i]; }
    double mean = s / n->numel, sd = sqrt(ss / n->numel - mean * mean);
    CHECK(fabs(mean - 1.0) < 0.02 && fabs(sd - 2.0) < 0.02, "normal(1, 2): mean %g sd %g", mean, sd);
    int32_t perm[100];
    for (int i = 0; i < 100; i++) perm[i] = i;
    rng_shuffle(&a, perm, 100);
    int seen[100] = { 0 }, moved = 0;
    for (int i = 0; i < 100; i++) { seen[perm[i]]++; moved += perm[i] != i; }
    for (int i = 0; i < 100; i++) CHECK(seen[i] == 1, "shuffle lost element %d", i);
    CHECK(moved > 80, "shuffle moved only %d of 100", moved);
    ft_tensor_free(x); ft_tensor_free(y); ft_tensor_free(n);
}

TEST(max_and_min_return_the_winners_positions) {
    Tape *tp = ft_tape_new(FT_CPU);
    /* x[i][j][k] over shape [2, 3, 2]: the max along dim 1 sits at j = (i + k) % 3 */
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(2, 3, 2), FT_CPU);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) ft_f32(x)[(i * 3 + j) * 2 + k] = j == (i + k) % 3 ? 10.0f + i + k : (float)(j - 5);
    Tensor *arg;
    Tensor *m = ft_max(tp, x, FT_DIM(1), false, &arg);
    CHECK(arg->dtype == FT_I32 && ft_shape_eq(arg->shape, SHAPE(2, 2)), "arg is %s %s", ft_dtype_name(arg->dtype),
          FT_SHAPE_STR(arg->shape));
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            CHECK(ft_i32(arg)[i * 2 + k] == (i + k) % 3, "argmax at (%d, %d) is %d, expected %d", i, k,
                  ft_i32(arg)[i * 2 + k], (i + k) % 3);
            CHECK(ft_f32(m)[i * 2 + k] == 10.0f + i + k, "max at (%d, %d) is %g", i, k, ft_f32(m)[i * 2 + k]);
        }
    /* over two dims the index is row-major within them: min over dims 0 and 2 of [2, 3, 2] */
    Tensor *mn = ft_min(tp, x, FT_DIM(0) | FT_DIM(2), true, &arg);
    CHECK(ft_shape_eq(mn->shape, SHAPE(1, 3, 1)), "keepdim shape %s", FT_SHAPE_STR(mn->shape));
    for (int j = 0; j < 3; j++) {
        int best = -1;
        float v = INFINITY;
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < 2; k++)
                if (ft_f32(x)[(i * 3 + j) * 2 + k] < v) { v = ft_f32(x)[(i * 3 + j) * 2 + k]; best = i * 2 + k; }
        CHECK(ft_i32(arg)[j] == best && ft_f32(mn)[j] == v, "min of column %d: %g at %d, expected %g at %d", j,
              ft_f32(mn)[j], ft_i32(arg)[j], v, best);
    }
    ft_tensor_free(x);
    ft_tape_free(tp);
}

/* A max-pool of window k, stride st, padding pad against a direct reference over the window
 * clipped to the input: the first of tied maxima wins, a NaN in a window wins, an odd last row
 * or column is dropped, and the gradient reaches the winners only (each once per window it
 * wins). k = 2, st = 2, pad = 0 has its own loop; the rest share the general one. */
static void check_max_pool(int k, int st, int pad) {
    Tape *tp = ft_tape_new(FT_CPU);
    const int N = 2, C = 3, H = 7, W = 9, OH = (H + 2 * pad - k) / st + 1, OW = (W + 2 * pad - k) / st + 1;
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(N, C, H, W), FT_CPU);
    for (int64_t i = 0; i < x->numel; i++) ft_f32(x)[i] = (float)((i * 7919) % 13 / 4);   /* many ties */
    ft_f32(x)[1 * W + 1] = NAN;            /* plane 0, in window (0, 0) */
    ft_f32(x)[H * W + 2 * W + 3] = NAN;    /* plane 1, in window (1, 1) */
    x->requires_grad = true;
    Tensor *y = ft_max_pool2d(tp, x, k, st, pad);
    CHECK(ft_shape_eq(y->shape, SHAPE(N, C, OH, OW)), "k %d: shape %s", k, FT_SHAPE_STR(y->shape));
    ft_backward(tp, ft_sum(tp, y, FT_ALL_DIMS, false));
    float *want_g = calloc((size_t)x->numel, sizeof *want_g);
    int bad = 0;
    for (int p = 0; p < N * C; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *xp = ft_f32(x) + (int64_t)p * H * W;
                int first = -1;
                float best = -INFINITY;
                for (int i = oh * st - pad; i < oh * st - pad + k; i++)
                    for (int j = ow * st - pad; j < ow * st - pad + k; j++) {
                        if (i < 0 || i >= H || j < 0 || j >= W) continue;
                        int o = i * W + j;
                        if (xp[o] != xp[o]) { best = NAN; first = o; }
                        else if (best == best && (first < 0 || xp[o] > best)) { best = xp[o]; first = o; }
                    }
                float got = ft_f32(y)[(p * OH + oh) * OW + ow];
                bad += !(got == best || (got != got && best != best));
                want_g[(int64_t)p * H * W + first] += 1;
            }
    CHECK(bad == 0, "k %d: %d of %d outputs differ from the reference", k, bad, N * C * OH * OW);
    CHECK(isnan(ft_f32(y)[0]) && isnan(ft_f32(y)[(1 * OH + 1) * OW + 1]), "k %d: the NaN windows give NaN", k);
    int64_t wrong = 0;
    for (int64_t i = 0; i < x->numel; i++) wrong += ft_f32(x->grad)[i] != want_g[i];
    CHECK(wrong == 0, "k %d: %lld inputs' gradients differ from the winners' counts", k, (long long)wrong);
    free(want_g);
    ft_tensor_free(x);
    ft_tape_free(tp);
}

TEST(max_pool_picks_the_first_maximum_and_propagates_nan) {
    check_max_pool(2, 2, 0);   /* the 2x2 loop */
    check_max_pool(3, 2, 1);   /* ResNet's stem: the general loop, overlapping windows, padding */
    check_max_pool(3, 1, 0);
}

/* A message that wraps the previous one (ft_error("...: %s", ft_last_error())) keeps both intact. */
TEST(an_error_can_wrap_the_previous_one) {
    ft_error("inner problem %d", 42);
    ft_error("%s: while reading: %s", "model.safetensors", ft_last_error());
    CHECK(strcmp(ft_last_error(), "model.safetensors: while reading: inner problem 42") == 0, "got '%s'", ft_last_error());
}

/* OpenBLAS's kernels fit this CPU: on a CPU it does not recognise OpenBLAS falls back to Prescott's
 * SSE3 kernels, and the test runner (as finch) restarts with the AVX2 or AVX-512 ones
 * (ft_blas_restart), so here nothing is left to fix. */
TEST(blas_kernels_fit_the_cpu) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) SKIP("this CPU has no AVX2 and FMA");
    if (getenv("OPENBLAS_CORETYPE") && !getenv("FINCH_BLAS_RESTARTED"))
        SKIP("OPENBLAS_CORETYPE=%s was set by the environment: its choice stands", getenv("OPENBLAS_CORETYPE"));
    const char *fix = ft_blas_coretype_fix();
    CHECK(!fix, "OpenBLAS runs its %s kernels on a CPU with AVX2; %s was due", ft_blas_corename(), fix);
}

/* concat and its backward on tensors big enough for several threads, whose shares then start
 * and end inside the contiguous runs copy_strided copies: against a direct index computation. */
TEST(concat_of_large_tensors_matches_direct_indexing) {
    int threads = omp_get_max_threads();
    omp_set_num_threads(2);
    Tape *tp = ft_tape_new(FT_CPU);
    /* each input past the 32,768 elements of one thread; two threads split inside a run */
    const int N = 3, H = 61, W = 47, Cs[2] = { 5, 4 };
    Tensor *x[2];
    for (int i = 0; i < 2; i++) {
        x[i] = ft_tensor_new(FT_F32, SHAPE(N, Cs[i], H, W), FT_CPU);
        for (int64_t k = 0; k < x[i]->numel; k++) ft_f32(x[i])[k] = (float)(i * 100000 + k);
        x[i]->requires_grad = true;
    }
    Tensor *y = ft_concat(tp, x, 2, 1);
    Tensor *w = ft_tensor_new(FT_F32, y->shape, FT_CPU);
    for (int64_t k = 0; k < w->numel; k++) ft_f32(w)[k] = (float)(k % 1000);
    ft_backward(tp, ft_sum(tp, ft_mul(tp, y, w), FT_ALL_DIMS, false));
    int64_t bad = 0, bad_grad = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Cs[0] + Cs[1]; c++)
            for (int hw = 0; hw < H * W; hw++) {
                int i = c >= Cs[0], ci = c - i * Cs[0];
                int64_t at_y = ((int64_t)n * (Cs[0] + Cs[1]) + c) * H * W + hw, at_x = ((int64_t)n * Cs[i] + ci) * H * W + hw;
                bad += ft_f32(y)[at_y] != ft_f32(x[i])[at_x];
                bad_grad += ft_f32(x[i]->grad)[at_x] != ft_f32(w)[at_y];
            }
    CHECK(bad == 0 && bad_grad == 0, "%lld values and %lld gradients differ from direct indexing", (long long)bad, (long long)bad_grad);
    for (int i = 0; i < 2; i++) ft_tensor_free(x[i]);
    ft_tensor_free(w);
    ft_tape_free(tp);
    omp_set_num_threads(threads);
}

/* Winograd's F(2x2, 3x3) and F(4x4, 3x3) (core/cpu/winograd.inc, winograd4.inc) against the
 * im2col products, all in float32, each measured against the im2col products in float64 on the
 * same values: output, input and weight gradients (all three by Winograd) of layers with ResNet's
 * channel counts, odd sizes (last tiles cut short) and padding 1 and 0. Winograd's transforms add
 * rounding; it must stay near im2col's. conv_values writes y, dL/dx and dL/dw as doubles into out
 * and returns how many it wrote. */
static int64_t conv_values(int N, int C, int O, int H, int W, int pad, int mode, DType dt, double *out) {
    int saved = cpu_winograd;
    cpu_winograd = mode;
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(dt, SHAPE(N, C, H, W), FT_CPU), *w = ft_tensor_new(dt, SHAPE(O, C, 3, 3), FT_CPU);
    Tensor *in[2] = { x, w };
    for (int i = 0; i < 2; i++) {
        for (int64_t k = 0; k < in[i]->numel; k++) {
            double v = sin(1.3 * (double)k + i) * (i ? 0.1 : 1.0);
            if (dt == FT_F32) ft_f32(in[i])[k] = (float)v; else ft_f64(in[i])[k] = v;
        }
        in[i]->requires_grad = true;
    }
    Tensor *y = ft_conv2d(tp, x, w, NULL, 1, pad, 1);
    Tensor *r = ft_tensor_new(dt, y->shape, FT_CPU);
    for (int64_t k = 0; k < r->numel; k++) {
        double v = cos(0.7 * (double)k);
        if (dt == FT_F32) ft_f32(r)[k] = (float)v; else ft_f64(r)[k] = v;
    }
    ft_backward(tp, ft_sum(tp, ft_mul(tp, y, r), FT_ALL_DIMS, false));
    Tensor *parts[3] = { y, x->grad, w->grad };
    int64_t n = 0;
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < parts[i]->numel; k++, n++)
            out[n] = dt == FT_F32 ? ft_f32(parts[i])[k] : ft_f64(parts[i])[k];
    ft_tensor_free(x); ft_tensor_free(w); ft_tensor_free(r);
    ft_tape_free(tp);
    cpu_winograd = saved;
    return n;
}

TEST(winograd_convolution_matches_im2col) {
    const struct { int N, C, O, H, W, pad; } L[] = {
        { 4, 64, 64, 28, 28, 1 },   /* ResNet-18's layer 1, smaller: chunks start inside rows of tiles */
        { 3, 32, 48, 5, 7, 1 },     /* odd sizes: tiles cut at the last row and column */
        { 2, 32, 32, 9, 8, 0 },     /* no padding: the input gradient's own padding is 2 */
        { 2, 32, 40, 14, 13, 1 },   /* F(4x4): tiles cut by 2 and by 3 */
    };
    const struct { int mode; const char *name; } T[] = { { WINO_F2, "F(2x2)" }, { WINO_F4, "F(4x4)" } };
    for (size_t l = 0; l < sizeof L / sizeof L[0]; l++) {
        int64_t max = 4 * ((int64_t)L[l].N * L[l].C * L[l].H * L[l].W + (int64_t)L[l].O * L[l].C * 9 + (int64_t)L[l].N * L[l].O * L[l].H * L[l].W);
        double *ref = malloc(max * sizeof(double)), *wi = malloc(max * sizeof(double)), *im = malloc(max * sizeof(double));
        int64_t n = conv_values(L[l].N, L[l].C, L[l].O, L[l].H, L[l].W, L[l].pad, WINO_OFF, FT_F64, ref);
        conv_values(L[l].N, L[l].C, L[l].O, L[l].H, L[l].W, L[l].pad, WINO_OFF, FT_F32, im);
        /* output, input gradient and weight gradient, each against its own largest value */
        int64_t size[3] = { (int64_t)L[l].N * L[l].O * (L[l].H + 2 * L[l].pad - 2) * (L[l].W + 2 * L[l].pad - 2),
                            (int64_t)L[l].N * L[l].C * L[l].H * L[l].W, (int64_t)L[l].O * L[l].C * 9 };
        const char *part[3] = { "output", "input gradient", "weight gradient" };
        for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
            conv_values(L[l].N, L[l].C, L[l].O, L[l].H, L[l].W, L[l].pad, T[t].mode, FT_F32, wi);
            for (int i = 0, at = 0; i < 3; at += (int)size[i], i++) {
                double scale = 0, e_wi = 0, e_im = 0;
                int64_t differ = 0;
                for (int64_t k = at; k < at + size[i]; k++) {
                    scale = fmax(scale, fabs(ref[k]));
                    e_wi = fmax(e_wi, fabs(wi[k] - ref[k]));
                    e_im = fmax(e_im, fabs(im[k] - ref[k]));
                    differ += wi[k] != im[k];
                }
                CHECK(differ > 0, "layer %zu, %s: the %s is im2col's to the bit: Winograd did not run", l, T[t].name, part[i]);
                /* float32 sums of hundreds of products (output, input gradient; im2col's worst
                 * error 1e-7 to 3e-6 of the largest value) or thousands, with cancellation (weight
                 * gradient, about 1e-5): F(2x2) may lose a few times that; F(4x4), whose transforms
                 * scale values by up to 100 (inputs) and 225 (gradients) before the sums, up to
                 * about 40 times (measured 3.6e-4 on layer 0's weight gradient); a wrong transform
                 * costs orders more, and the float64 check below is exact to 1e-12. im2col's own
                 * error is a draw of the BLAS's summation order (7e-7 of the largest value on layer
                 * 3's weight gradient on a Zen 3, against F(4x4)'s 5.7e-5; more on a Xeon), so it
                 * counts as at least 1e-6 of the largest value, a float32 sum's usual worst */
                bool f4 = T[t].mode == WINO_F4;
                double bound = f4 ? (i == 2 ? 1e-3 : 2e-4) : (i == 2 ? 5e-5 : 1e-5), ratio = f4 ? 64 : 8;
                CHECK(e_wi <= bound * scale && e_wi <= ratio * fmax(e_im, 1e-6 * scale),
                      "layer %zu, %s, %s: Winograd's worst error %.3g, im2col's %.3g (largest value %.3g)", l, T[t].name,
                      part[i], e_wi, e_im, scale);
                printf("    layer %zu, %-6s %-15s worst error: Winograd %.2e, im2col %.2e of the largest value\n", l,
                       T[t].name, part[i], e_wi / scale, e_im / scale);
            }
            /* the double build goes through Winograd too: it must match the im2col double reference */
            conv_values(L[l].N, L[l].C, L[l].O, L[l].H, L[l].W, L[l].pad, T[t].mode, FT_F64, wi);
            double e64 = 0, scale = 0;
            for (int64_t k = 0; k < n; k++) { e64 = fmax(e64, fabs(wi[k] - ref[k])); scale = fmax(scale, fabs(ref[k])); }
            CHECK(e64 <= 1e-12 * scale, "layer %zu, %s: float64 Winograd differs from im2col by %.3g", l, T[t].name, e64);
        }
        free(ref); free(wi); free(im);
    }
}

/* ft_batch_norm_relu against ft_relu(ft_batch_norm(...)) on the same values: output, every
 * gradient and the running statistics equal to the bit, in float32 and float64, in training
 * and eval mode; about half the outputs clipped, so the backward's mask is exercised. */
static void bn_relu_run(bool fused, bool training, DType dt, Tensor **out) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(dt, SHAPE(4, 8, 5, 5), FT_CPU), *gamma = ft_tensor_new(dt, SHAPE(8), FT_CPU);
    Tensor *beta = ft_tensor_new(dt, SHAPE(8), FT_CPU), *rm = ft_tensor_new(dt, SHAPE(8), FT_CPU);
    Tensor *rv = ft_tensor_new(dt, SHAPE(8), FT_CPU), *r = ft_tensor_new(dt, x->shape, FT_CPU);
    Tensor *t[] = { x, gamma, beta, rm, rv, r };
    for (int i = 0; i < 6; i++)
        for (int64_t k = 0; k < t[i]->numel; k++) {
            double v = i == 4 ? 0.5 + 0.1 * (double)k : sin(1.7 * (double)k + i) + (i == 0 ? 0.3 : 0);
            if (dt == FT_F32) ft_f32(t[i])[k] = (float)v; else ft_f64(t[i])[k] = v;
        }
    x->requires_grad = gamma->requires_grad = beta->requires_grad = true;
    Tensor *y = fused ? ft_batch_norm_relu(tp, x, gamma, beta, rm, rv, training, 0.1, 1e-5)
                      : ft_relu(tp, ft_batch_norm(tp, x, gamma, beta, rm, rv, training, 0.1, 1e-5));
    ft_backward(tp, ft_sum(tp, ft_mul(tp, y, r), FT_ALL_DIMS, false));
    Tensor *keep[] = { y, x->grad, gamma->grad, beta->grad, rm, rv };
    for (int i = 0; i < 6; i++) {
        out[i] = ft_tensor_new(dt, keep[i]->shape, FT_CPU);
        ft_copy_(out[i], keep[i]);
    }
    for (int i = 0; i < 6; i++) ft_tensor_free(t[i]);
    ft_tape_free(tp);
}

TEST(batch_norm_relu_is_relu_of_batch_norm_to_the_bit) {
    const char *name[] = { "output", "input gradient", "gamma gradient", "beta gradient", "running mean", "running var" };
    for (int d = 0; d < 2; d++)
        for (int training = 0; training < 2; training++) {
            DType dt = d ? FT_F64 : FT_F32;
            Tensor *a[6], *b[6];
            bn_relu_run(true, training, dt, a);
            bn_relu_run(false, training, dt, b);
            int64_t zeros = 0;
            for (int64_t k = 0; k < a[0]->numel; k++) zeros += (dt == FT_F32 ? ft_f32(a[0])[k] : ft_f64(a[0])[k]) == 0;
            CHECK(zeros > a[0]->numel / 5 && zeros < a[0]->numel * 4 / 5, "%s, training %d: %lld of %lld outputs clipped",
                  ft_dtype_name(dt), training, (long long)zeros, (long long)a[0]->numel);
            for (int i = 0; i < 6; i++) {
                CHECK(a[i]->numel == b[i]->numel &&
                      memcmp(ft_ptr(a[i]), ft_ptr(b[i]), (size_t)a[i]->numel * ft_dtype_size(dt)) == 0,
                      "%s, training %d: the fused op's %s differs from relu(batch_norm)'s", ft_dtype_name(dt), training, name[i]);
                ft_tensor_free(a[i]);
                ft_tensor_free(b[i]);
            }
        }
}

/* ft_add_relu against ft_relu(ft_add(...)): output and both gradients equal to the bit, and a
 * refusal naming the op for operands of two shapes (it does not broadcast). */
TEST(add_relu_is_relu_of_add_to_the_bit) {
    for (int d = 0; d < 2; d++) {
        DType dt = d ? FT_F64 : FT_F32;
        Tensor *res[2][3];
        for (int fused = 0; fused < 2; fused++) {
            Tape *tp = ft_tape_new(FT_CPU);
            Tensor *a = ft_tensor_new(dt, SHAPE(3, 4, 50, 50), FT_CPU), *b = ft_tensor_new(dt, a->shape, FT_CPU);
            Tensor *r = ft_tensor_new(dt, a->shape, FT_CPU), *t[] = { a, b, r };
            for (int i = 0; i < 3; i++)
                for (int64_t k = 0; k < a->numel; k++) {
                    double v = sin(0.37 * (double)k * (i + 1) + i);
                    if (dt == FT_F32) ft_f32(t[i])[k] = (float)v; else ft_f64(t[i])[k] = v;
                }
            a->requires_grad = b->requires_grad = true;
            Tensor *y = fused ? ft_add_relu(tp, a, b) : ft_relu(tp, ft_add(tp, a, b));
            ft_backward(tp, ft_sum(tp, ft_mul(tp, y, r), FT_ALL_DIMS, false));
            Tensor *keep[] = { y, a->grad, b->grad };
            for (int i = 0; i < 3; i++) {
                res[fused][i] = ft_tensor_new(dt, keep[i]->shape, FT_CPU);
                ft_copy_(res[fused][i], keep[i]);
            }
            for (int i = 0; i < 3; i++) ft_tensor_free(t[i]);
            ft_tape_free(tp);
        }
        int64_t zeros = 0, n = res[1][0]->numel;
        for (int64_t k = 0; k < n; k++) zeros += (dt == FT_F32 ? ft_f32(res[1][0])[k] : ft_f64(res[1][0])[k]) == 0;
        CHECK(zeros > n / 5 && zeros < n * 4 / 5, "%s: %lld of %lld outputs clipped", ft_dtype_name(dt), (long long)zeros, (long long)n);
        for (int i = 0; i < 3; i++) {
            CHECK(memcmp(ft_ptr(res[0][i]), ft_ptr(res[1][i]), (size_t)n * ft_dtype_size(dt)) == 0,
                  "%s: add_relu's %s differs from relu(add)'s", ft_dtype_name(dt), i == 0 ? "output" : i == 1 ? "a gradient" : "b gradient");
            ft_tensor_free(res[0][i]);
            ft_tensor_free(res[1][i]);
        }
    }
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *a = ft_tensor_new(FT_F32, SHAPE(2, 3), FT_CPU), *b = ft_tensor_new(FT_F32, SHAPE(3), FT_CPU);
    CHECK(ft_add_relu(tp, a, b) == NULL && strstr(ft_last_error(), "add_relu"), "add_relu of [2, 3] and [3]: %s", ft_last_error());
    ft_tensor_free(a);
    ft_tensor_free(b);
    ft_tape_free(tp);
}

/* ft_tape_release: an untracked intermediate's data goes back to the arena (the next allocation
 * of its size gets it), and nothing happens to a tensor a recorded op reads or produced. */
TEST(tape_release_hands_back_only_what_no_backward_reads) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(64, 64), FT_CPU), *w = ft_tensor_new(FT_F32, SHAPE(64, 64), FT_CPU);
    ft_fill_(x, 1);
    ft_fill_(w, 2);
    Tensor *a = ft_affine(tp, x, 2, 0), *b = ft_affine(tp, a, 3, 1);   /* x wants no gradient: nothing recorded */
    void *a_data = a->storage->data;
    ft_tape_release(tp, a);
    CHECK(a->storage->data == NULL, "an untracked intermediate was not released");
    Tensor *c = ft_new(tp, FT_F32, SHAPE(64, 64));
    CHECK(c->storage->data == a_data, "the next tensor of that size did not reuse the released data");
    CHECK(ft_f32(b)[0] == 7 && ft_f32(b)[4095] == 7, "the op that read it: %g", ft_f32(b)[0]);

    w->requires_grad = true;
    Tensor *d = ft_affine(tp, x, 2, 0), *e = ft_mul(tp, d, w);   /* d is read by mul's backward */
    ft_tape_release(tp, d);
    CHECK(d->storage->data != NULL && ft_f32(d)[0] == 2, "a tensor a recorded op reads was released");
    Tensor *f = ft_mul(tp, x, w);   /* f is a recorded op's output */
    ft_tape_release(tp, f);
    CHECK(f->storage->data != NULL, "a recorded op's output was released");
    CHECK(ft_backward(tp, ft_sum(tp, ft_add(tp, e, f), FT_ALL_DIMS, false)) == 0 && ft_f32(w->grad)[0] == 3,
          "the backward after refused releases: %s", ft_last_error());
    ft_tensor_free(x);
    ft_tensor_free(w);
    ft_tape_free(tp);
}

/* A residual block's end, as models/resnet.c: batch norm's output released once add_relu has
 * read it (neither backward reads it); the gradients equal those of the same step without the
 * release, to the bit. */
static void bn_add_relu_grads(bool release, float *out) {
    Tape *tp = ft_tape_new(FT_CPU);
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(2, 3, 4, 4), FT_CPU), *s = ft_tensor_new(FT_F32, x->shape, FT_CPU);
    Tensor *gamma = ft_tensor_new(FT_F32, SHAPE(3), FT_CPU), *beta = ft_tensor_new(FT_F32, SHAPE(3), FT_CPU);
    for (int64_t k = 0; k < x->numel; k++) ft_f32(x)[k] = sinf(0.9f * (float)k), ft_f32(s)[k] = cosf(1.3f * (float)k);
    ft_fill_(gamma, 1.5);
    ft_fill_(beta, 0.1);
    x->requires_grad = gamma->requires_grad = s->requires_grad = true;
    Tensor *h = ft_batch_norm(tp, x, gamma, beta, NULL, NULL, true, 0.1, 1e-5), *y = ft_add_relu(tp, h, s);
    if (release) {
        ft_tape_release(tp, h);
        CHECK(h->storage->data == NULL, "batch norm's output, read by add_relu only, was not released");
        ft_tape_release(tp, y);   /* add_relu's own backward reads its output: kept */
        CHECK(y->storage->data != NULL, "add_relu's output was released");
    }
    Tensor *r = ft_new(tp, FT_F32, x->shape);   /* takes h's place in the arena when released */
    for (int64_t k = 0; k < r->numel; k++) ft_f32(r)[k] = (float)k / 7;
    ft_backward(tp, ft_sum(tp, ft_mul(tp, y, r), FT_ALL_DIMS, false));
    Tensor *g[] = { x->grad, s->grad, gamma->grad };
    for (int i = 0, at = 0; i < 3; at += (int)g[i]->numel, i++) memcpy(out + at, ft_f32(g[i]), (size_t)g[i]->numel * sizeof(float));
    Tensor *t[] = { x, s, gamma, beta };
    for (int i = 0; i < 4; i++) ft_tensor_free(t[i]);
    ft_tape_free(tp);
}

TEST(tape_release_of_a_residual_sum_keeps_the_gradients) {
    float a[2 * 96 + 3], b[2 * 96 + 3];
    bn_add_relu_grads(false, a);
    bn_add_relu_grads(true, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "the gradients differ once batch norm's output was released");
}
