/* float instantiation of the generic CPU kernels */
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include <tgmath.h>
#include "cpu_common.h"
#include "cpu_kernels.h"
#include "../philox.h"

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
