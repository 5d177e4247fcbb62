/* float instantiation of the generic CPU kernels */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include <tgmath.h>
#include "cpu_common.h"
#include "cpu_kernels.h"
#include "../philox.h"

/* glibc's libmvec has vector logf and expf (libm.so links it as needed); declared so, the loops
 * of log, exp and sigmoid vectorise: a third of a prototype network's forward was those calls,
 * one at a time. They are within 4 ulp (glibc's bound; measured on AVX2: logf 3.8, expf 2.6,
 * where the scalar ones are within 1; tests/test_broadcast.c). math.h declares them so only under
 * -ffast-math, which finch does not use. */
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float expf(float);

#define real float
#define SUF(name) name##_f32
#define CBLAS_GEMM cblas_sgemm
#define FT_FN static inline
#include "../elementwise_math.inc"
#include "elementwise.inc"
#include "reduce.inc"
#include "winograd.inc"
#include "conv.inc"
#include "pool.inc"
#include "norm_shape.inc"
