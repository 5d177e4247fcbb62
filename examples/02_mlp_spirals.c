/* Example 2: a two-layer MLP trained from scratch on two interleaved spirals.
 *
 * The whole training loop of a framework in a few lines: parameters by name in a ParamSet (one flat
 * buffer after params_finalize, so zeroing the gradients is one memset), a forward recorded on the
 * tape, cross entropy, ft_backward, an Adam step, and ft_tape_reset to release the step's memory
 * at once. The decision regions are drawn before and after training: spirals-before.png,
 * spirals-after.png (or in the directory given as the first argument).
 *
 *   make examples && build/examples/02_mlp_spirals /tmp
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "core/finch.h"
#include "data/image.h"
#include "layers/init.h"
#include "layers/layers.h"
#include "train/optim.h"

enum { N = 400, HIDDEN = 64, STEPS = 1500, SIDE = 200 };

typedef struct { Linear fc1, fc2; } Mlp;

static Tensor *mlp_forward(Tape *tp, const Mlp *m, Tensor *x) {
    return linear_forward(tp, &m->fc2, ft_relu(tp, linear_forward(tp, &m->fc1, x)));
}

/* two spirals, class 0 and class 1 half a turn apart, with a little uniform noise */
static void spirals(Tensor *x, Tensor *y, Rng *rng) {
    for (int i = 0; i < N; i++) {
        int c = i % 2;
        double t = 0.25 + 2.5 * rng_double(rng), r = t / 2.75, a = 2 * M_PI * t / 1.5 + M_PI * c;
        ft_set(x, 2 * i, r * cos(a) + 0.04 * (rng_double(rng) - 0.5));
        ft_set(x, 2 * i + 1, r * sin(a) + 0.04 * (rng_double(rng) - 0.5));
        ft_set(y, i, c);
    }
}

/* the plane [-1, 1]^2 coloured by the predicted class, the training points on top; the accuracy */
static double draw(const char *path, const Mlp *m, const Tensor *x, const Tensor *y) {
    Tape *tp = ft_tape_new(FT_CPU);
    ft_no_grad_begin(tp);
    Tensor *grid = ft_new(tp, FT_F32, SHAPE(SIDE * SIDE, 2));
    for (int i = 0; i < SIDE * SIDE; i++) {
        ft_set(grid, 2 * i, -1 + 2.0 * (i % SIDE + 0.5) / SIDE);
        ft_set(grid, 2 * i + 1, 1 - 2.0 * (i / SIDE + 0.5) / SIDE);
    }
    Tensor *z = mlp_forward(tp, m, grid);
    static uint8_t px[SIDE * SIDE * 3];
    for (int i = 0; i < SIDE * SIDE; i++) {
        bool one = ft_get(z, 2 * i + 1) > ft_get(z, 2 * i);
        const uint8_t pale[2][3] = { { 255, 214, 170 }, { 174, 205, 240 } };
        memcpy(px + 3 * i, pale[one], 3);
    }
    Tensor *zx = mlp_forward(tp, m, (Tensor *)x);
    int right = 0;
    for (int i = 0; i < N; i++) {
        int c = (int)ft_get(y, i), col = (int)((ft_get(x, 2 * i) + 1) / 2 * SIDE), row = (int)((1 - ft_get(x, 2 * i + 1)) / 2 * SIDE);
        right += (ft_get(zx, 2 * i + 1) > ft_get(zx, 2 * i)) == c;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int rr = row + dy, cc = col + dx;
                if (rr < 0 || rr >= SIDE || cc < 0 || cc >= SIDE) continue;
                const uint8_t dark[2][3] = { { 230, 97, 1 }, { 33, 102, 172 } };
                memcpy(px + 3 * (rr * SIDE + cc), dark[c], 3);
            }
    }
    if (png_write_rgb(path, px, SIDE, SIDE) != 0) fprintf(stderr, "%s\n", ft_last_error());
    ft_tape_free(tp);
    return (double)right / N;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    Rng rng = rng_new(1);
    ParamSet ps;
    params_init(&ps, FT_CPU, FT_F32);
    Mlp m = { linear_make(&ps, "fc1", 2, HIDDEN, true), linear_make(&ps, "fc2", HIDDEN, 2, true) };   /* fc1.weight, ... */
    init_torch_default(m.fc1.weight, m.fc1.bias, &rng);   /* PyTorch's nn.Linear initialisation */
    init_torch_default(m.fc2.weight, m.fc2.bias, &rng);
    params_finalize(&ps);
    Optimizer *opt = optim_new(OPT_ADAM, &ps, 1e-2, 0);

    Tensor *x = ft_tensor_new(FT_F32, SHAPE(N, 2), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(N), FT_CPU);
    spirals(x, y, &rng);
    char path[1024];
    snprintf(path, sizeof path, "%s/spirals-before.png", dir);
    printf("before training: accuracy %.1f%% (%s)\n", 100 * draw(path, &m, x, y), path);

    Tape *tp = ft_tape_new(FT_CPU);
    for (int step = 1; step <= STEPS; step++) {   /* full batch: the 400 points every step */
        params_zero_grad(&ps);
        Tensor *loss = ft_cross_entropy(tp, mlp_forward(tp, &m, x), y);
        if (step % 300 == 0 || step == 1) printf("step %4d  loss %.4f\n", step, ft_item(loss));
        ft_backward(tp, loss);
        optim_step(opt);
        ft_tape_reset(tp);   /* every op output and gradient of the step released at once */
    }
    snprintf(path, sizeof path, "%s/spirals-after.png", dir);
    double acc = draw(path, &m, x, y);
    printf("after training: accuracy %.1f%% (%s)\n", 100 * acc, path);

    ft_tape_free(tp);
    optim_free(opt);
    ft_tensor_free(x);
    ft_tensor_free(y);
    params_free(&ps);
    return acc > 0.95 ? 0 : 1;
}
