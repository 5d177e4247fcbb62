/* A small learnable image task that needs no files: 28x28 grey images whose class (0..3) is the
 * quadrant that is brighter by `contrast` grey levels, over uniform noise of `noise` levels. */
#ifndef FINCH_SYNTHETIC_H
#define FINCH_SYNTHETIC_H

#include "data/dataset.h"

void synthetic_quadrants(Dataset *ds, int n, uint64_t seed, int base, int noise, int contrast);

#endif
