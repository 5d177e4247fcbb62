/* finch: everything a program using the core needs. */
#ifndef FINCH_H
#define FINCH_H

/* The library's version (make install names libfinch.so and finch.pc after it). */
#define FINCH_VERSION_MAJOR 0
#define FINCH_VERSION_MINOR 1
#define FINCH_VERSION_PATCH 0
#define FINCH_VERSION "0.1.0"

#include <math.h>
#include "error.h"
#include "tensor.h"
#include "arena.h"
#include "autograd.h"
#include "gradcheck.h"
#include "graph.h"
#include "profile.h"
#include "rng.h"
#include "ops.h"
#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif
