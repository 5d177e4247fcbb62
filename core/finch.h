/* finch: everything a program using the core needs. */
#ifndef FINCH_H
#define FINCH_H

#include <math.h>
#include "error.h"
#include "tensor.h"
#include "arena.h"
#include "autograd.h"
#include "gradcheck.h"
#include "graph.h"
#include "rng.h"
#include "ops.h"
#include "backend.h"

#endif
