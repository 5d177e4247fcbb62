/* The table of op cases shared by the gradient checks (test_gradcheck.c) and the CPU-vs-CUDA
 * parity test (test_cuda.c). */
#ifndef FINCH_OP_CASES_H
#define FINCH_OP_CASES_H

#include "core/finch.h"

#define MAX_IN 4

typedef enum { VALUES_ANY, VALUES_AWAY_FROM_ZERO, VALUES_DISTINCT, VALUES_POSITIVE, VALUES_AWAY_FROM_CLAMP } Values;

typedef struct Case {
    const char *name;
    int n_in;
    Shape in[MAX_IN];
    Values values;
    Tensor *(*fn)(Tape *tp, Tensor **x, const struct Case *c);
    int iarg[6];
    double darg[2];
} Case;

extern const Case op_cases[];
extern const int n_op_cases;
/* the prototype-network layers and losses (test_proto.c), checked the same way */
extern const Case layer_cases[];
extern const int n_layer_cases;
/* Runs one case in float64 against central differences; returns the worst gradient error, and
 * the float32 kernels' error against float64 through *f32_err. */
double gradcheck_case(const Case *c, double *f32_err);
/* float64 host tensor t filled for the case's value rule (away from kinks, distinct, ...) */
void fill_inputs(Tensor *t, Values v, Rng *rng);

/* ops the parity test reuses for its larger shapes */
Tensor *op_add(Tape *tp, Tensor **x, const Case *c);
Tensor *op_sum(Tape *tp, Tensor **x, const Case *c);
Tensor *op_max(Tape *tp, Tensor **x, const Case *c);
Tensor *op_softmax(Tape *tp, Tensor **x, const Case *c);
Tensor *op_cross_entropy(Tape *tp, Tensor **x, const Case *c);
Tensor *op_matmul(Tape *tp, Tensor **x, const Case *c);
Tensor *op_conv2d(Tape *tp, Tensor **x, const Case *c);
Tensor *op_bn_relu_train(Tape *tp, Tensor **x, const Case *c);
Tensor *op_add_relu(Tape *tp, Tensor **x, const Case *c);
Tensor *op_max_pool(Tape *tp, Tensor **x, const Case *c);
Tensor *op_bn_train(Tape *tp, Tensor **x, const Case *c);
Tensor *op_upsample(Tape *tp, Tensor **x, const Case *c);

#endif
