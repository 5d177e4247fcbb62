/* The finite-difference gradient checker (gradcheck.h). */
#include "gradcheck.h"
#include <math.h>
#include <stdlib.h>
#include "error.h"
#include "ops.h"
#include "rng.h"

static Tensor *weighted_sum(Tape *tp, GradcheckFn f, void *ctx, Tensor *const *in, Tensor *R) {
    return ft_sum(tp, ft_mul(tp, f(tp, in, ctx), R), FT_ALL_DIMS, false);
}

double ft_gradcheck(GradcheckFn f, void *ctx, int n_in, Tensor *const *in, double h, uint64_t seed, GradcheckWorst *where) {
    for (int i = 0; i < n_in; i++)
        FT_CHECK(in[i]->dtype == FT_F64 && in[i]->storage->device == FT_CPU, "ft_gradcheck: input %d is not a float64 CPU tensor", i);
    Tape *tp = ft_tape_new(FT_CPU);
    Rng rng = rng_new(seed);
    bool *had = ft_xmalloc((size_t)n_in * sizeof *had);
    for (int i = 0; i < n_in; i++) { had[i] = in[i]->requires_grad; in[i]->requires_grad = true; }
    ft_no_grad_begin(tp);
    Tensor *y = f(tp, in, ctx);
    ft_no_grad_end(tp);
    if (!y) {   /* the function's ops refused their arguments: ft_last_error() says why */
        for (int i = 0; i < n_in; i++) in[i]->requires_grad = had[i];
        free(had);
        ft_tape_free(tp);
        return NAN;
    }
    Tensor *R = ft_tensor_new(FT_F64, y->shape, FT_CPU);
    rng_uniform_(&rng, R, -1, 1);
    ft_tape_reset(tp);

    Tensor **analytic = ft_xmalloc((size_t)n_in * sizeof *analytic);
    for (int i = 0; i < n_in; i++) { ft_tensor_free(in[i]->grad); in[i]->grad = NULL; }
    ft_backward(tp, weighted_sum(tp, f, ctx, in, R));
    for (int i = 0; i < n_in; i++) { analytic[i] = in[i]->grad; in[i]->grad = NULL; }
    ft_tape_reset(tp);

    double worst = 0;
    GradcheckWorst w = { -1, -1, 0, 0 };
    ft_no_grad_begin(tp);
    for (int i = 0; i < n_in; i++) {
        double *p = ft_f64(in[i]);
        for (int64_t k = 0; k < in[i]->numel; k++) {
            double keep = p[k];
            p[k] = keep + h;
            double lp = ft_item(weighted_sum(tp, f, ctx, in, R));
            p[k] = keep - h;
            double lm = ft_item(weighted_sum(tp, f, ctx, in, R));
            p[k] = keep;
            ft_tape_reset(tp);
            double num = (lp - lm) / (2 * h), ana = analytic[i] ? ft_get(analytic[i], k) : 0.0;
            double e = fabs(ana - num) / fmax(1.0, fabs(num));
            if (e > worst || e != e) { worst = e; w = (GradcheckWorst){ i, k, ana, num }; }
        }
    }
    ft_no_grad_end(tp);
    for (int i = 0; i < n_in; i++) { ft_tensor_free(analytic[i]); in[i]->requires_grad = had[i]; }
    free(analytic);
    free(had);
    ft_tensor_free(R);
    ft_tape_free(tp);
    if (where) *where = w;
    return worst;
}
