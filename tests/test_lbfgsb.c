/* The L-BFGS-B binding (attack/lbfgsb.c) against SciPy's L-BFGS-B on strictly convex box-constrained
 * quadratics (tools/lbfgsb_reference.py), and against the closed form of a separable one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "attack/lbfgsb.h"
#include "core/safetensors.h"

static double *vec(SafeTensors *st, const char *name, int *n) {
    const StEntry *e = st_find(st, name);
    if (!e) return NULL;
    Tensor *t = ft_tensor_new(FT_F64, e->shape, FT_CPU);
    if (st_read_into(st, e, t) != 0) { ft_tensor_free(t); return NULL; }
    double *v = ft_xmalloc((size_t)t->numel * sizeof *v);
    for (int64_t i = 0; i < t->numel; i++) v[i] = ft_f64(t)[i];
    if (n) *n = (int)t->numel;
    ft_tensor_free(t);
    return v;
}

/* minimises 0.5 x'Ax - b'x from x0 within [lo, hi]; returns the solver's state (the caller frees) */
static Lbfgsb solve(const double *a, const double *b, const double *lo, const double *hi, const double *x0, int n) {
    Lbfgsb s;
    lbfgsb_init(&s, n, 5, x0, lo, hi, 10, 1e-10);
    while (lbfgsb_next(&s, 1000)) {
        s.f = 0;
        for (int i = 0; i < n; i++) {
            double ax = 0;
            for (int j = 0; j < n; j++) ax += a[i * n + j] * s.x[j];
            s.g[i] = ax - b[i];
            s.f += 0.5 * s.x[i] * ax - b[i] * s.x[i];
        }
    }
    return s;
}

TEST(lbfgsb_reaches_scipys_optimum_on_box_constrained_quadratics) {
    SafeTensors st;
    CHECK(st_open("tests/fixtures/lbfgsb.safetensors", &st) == 0, "%s", ft_last_error());
    for (int k = 0; k < 3; k++) {
        char name[32];
        int n = 0;
#define V(what) (snprintf(name, sizeof name, "p%d_%s", k, what), vec(&st, name, NULL))
        snprintf(name, sizeof name, "p%d_b", k);
        double *b = vec(&st, name, &n), *a = V("a"), *lo = V("lo"), *hi = V("hi"), *x0 = V("x0"), *want = V("x"), *f = V("f"), *nit = V("nit");
#undef V
        CHECK(a && b && lo && hi && x0 && want && f && nit, "problem %d: fixture", k);
        Lbfgsb s = solve(a, b, lo, hi, x0, n);
        double worst = 0;
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(s.x[i] - want[i]));
        CHECK(strncmp(s.status, "CONVERGENCE", 11) == 0, "problem %d: %s", k, s.status);
        CHECK(worst < 1e-5 && fabs(s.f - f[0]) < 1e-6 * fabs(f[0]), "problem %d (n %d): |x - SciPy's| %g, f %.10g against %.10g", k, n,
              worst, s.f, f[0]);
        CHECK(s.iters == (int)nit[0], "problem %d: %d iterations, SciPy (the same algorithm) %d", k, s.iters, (int)nit[0]);
        for (int i = 0; i < n; i++) CHECK(s.x[i] >= lo[i] && s.x[i] <= hi[i], "problem %d: x[%d] = %g outside its bounds", k, i, s.x[i]);
        lbfgsb_free(&s);
        free(a); free(b); free(lo); free(hi); free(x0); free(want); free(f); free(nit);
    }
    st_close(&st);
}

/* separable: the optimum is the unconstrained one clipped to the box, c_i clipped to [l_i, u_i] */
TEST(lbfgsb_solves_a_separable_problem_to_its_clipped_optimum) {
    enum { N = 6 };
    double a[N * N] = { 0 }, b[N], lo[N], hi[N], x0[N] = { 0 }, c[N] = { -2, -0.2, 0.3, 0.9, 3, 0.5 };
    for (int i = 0; i < N; i++) {
        a[i * N + i] = 1 + i;
        b[i] = (1 + i) * c[i];
        lo[i] = i == 5 ? -INFINITY : 0;
        hi[i] = i == 0 ? INFINITY : 1;
    }
    Lbfgsb s = solve(a, b, lo, hi, x0, N);
    for (int i = 0; i < N; i++) {
        double want = fmin(fmax(c[i], lo[i]), hi[i]);
        CHECK(fabs(s.x[i] - want) < 1e-8, "x[%d] = %.10g, expected %g (%s)", i, s.x[i], want, s.status);
    }
    CHECK(s.evals >= 1 && s.iters >= 1, "%d iterations, %d evaluations", s.iters, s.evals);
    lbfgsb_free(&s);
}
