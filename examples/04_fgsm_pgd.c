/* Example 4: FGSM and PGD by hand against a model from a .safetensors file, on Fashion-MNIST's
 * test images. The input's gradient comes from the same backward that trains, with the parameters
 * frozen (no weight gradient is computed) and the model in eval mode. Usage: 04_fgsm_pgd MODEL [N] */
#include <stdio.h>
#include <stdlib.h>
#include "attack/attack.h"
#include "data/dataset.h"
#include "models/model_io.h"

/* steps of alpha along the sign of the loss's input gradient, kept within eps of x0 and in [0, 1]:
 * FGSM is one step of eps from x0, PGD many small ones from a random point of the eps-ball */
static Tensor *attack(Model *m, Tensor *x0, Tensor *y, double eps, double alpha, int steps, Rng *rng) {
    Tape *tp = ft_tape_new(FT_CPU);
    tp->params_frozen = true;   /* gradients reach the input only */
    Tensor *x = ft_tensor_new(FT_F32, x0->shape, FT_CPU);
    for (int64_t i = 0; i < x->numel; i++) ft_set(x, i, ft_get(x0, i) + (rng ? eps * (2 * rng_double(rng) - 1) : 0));
    x->requires_grad = true;
    for (int s = 0; s < steps; s++) {
        ft_backward(tp, ft_cross_entropy(tp, m->forward(m, tp, x), y));
        for (int64_t i = 0; i < x->numel; i++) {
            double g = ft_get(x->grad, i), v = ft_get(x, i) + alpha * ((g > 0) - (g < 0));
            ft_set(x, i, fmin(fmax(fmin(fmax(v, ft_get(x0, i) - eps), ft_get(x0, i) + eps), 0), 1));
        }
        ft_zero_(x->grad);
        ft_tape_reset(tp);
    }
    ft_tape_free(tp);
    return x;
}

static int correct(Model *m, Tensor *x, const int32_t *y, int n) {
    Tape *tp = ft_tape_new(FT_CPU);
    int32_t *pred = malloc((size_t)n * sizeof *pred), right = 0;
    attack_predict(m, tp, x, pred);   /* the argmax of the logits, without recording */
    for (int i = 0; i < n; i++) right += pred[i] == y[i];
    free(pred);
    ft_tape_free(tp);
    ft_tensor_free(x);
    return right;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL.safetensors [N]\n", argv[0]); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 200;
    Dataset test;
    Model *m = model_load(argv[1], FT_CPU, NULL);
    if (!m || fashion_mnist_load(FASHION_MNIST_DIR, false, &test) != 0) { fprintf(stderr, "%s\n", ft_last_error()); return 1; }
    m->training = false;   /* batch norm with its running statistics */
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(n, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    dataset_batch(&test, idx, n, x, y);
    Rng rng = rng_new(1);
    int fgsm = correct(m, attack(m, x, y, 0.1, 0.1, 1, NULL), ft_i32(y), n), pgd = correct(m, attack(m, x, y, 0.1, 0.01, 20, &rng), ft_i32(y), n);
    printf("%d test images: clean %d right, FGSM (eps 0.1) %d, PGD-20 (eps 0.1, step 0.01) %d\n", n, correct(m, x, ft_i32(y), n), fgsm, pgd);
    free(idx), ft_tensor_free(y);
    dataset_free(&test), model_free(m);
    return 0;
}
