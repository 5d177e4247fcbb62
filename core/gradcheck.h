/* A finite-difference gradient checker: for any function built from finch ops (a library op or
 * one written outside the library with ft_record), does the gradient that ft_backward computes
 * agree with the function's own values? This is how every op of finch is tested
 * (tests/test_gradcheck.c), and how a user checks an op of their own (examples/03_custom_op.c). */
#ifndef FINCH_GRADCHECK_H
#define FINCH_GRADCHECK_H

#include <stdint.h>
#include "autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The function under test: its output (any shape) from the inputs, recorded on tp. */
typedef Tensor *(*GradcheckFn)(Tape *tp, Tensor *const *in, void *ctx);

/* Compares, for every element of every input, the gradient of L = sum(f(in) * R) from
 * ft_backward with the central difference (L(x + h) - L(x - h)) / 2h, R a fixed random tensor
 * (seeded) so that every output element counts with its own weight. The inputs must be float64
 * CPU tensors; they are left as they were (values restored, gradients cleared). Returns the worst
 * error |analytic - numeric| / max(1, |numeric|) (NAN propagates; NAN too when f returns NULL,
 * its ops having refused their arguments), and in *where (optional) the
 * input and element it was found at. A good op in float64 with h = 1e-6 is at about 1e-8. */
typedef struct { int input; int64_t element; double analytic, numeric; } GradcheckWorst;
double ft_gradcheck(GradcheckFn f, void *ctx, int n_in, Tensor *const *in, double h, uint64_t seed, GradcheckWorst *where);

#ifdef __cplusplus
}
#endif

#endif
