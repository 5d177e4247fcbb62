/* A small learnable image task that needs no files: 28x28 grey images whose class (0..3) is the
 * quadrant that is brighter by `contrast` grey levels, over uniform noise of `noise` levels.
 * The tests train on it; `--data synthetic` (synthetic_splits) runs any command on it, on a
 * machine without datasets (a smoke test on a GPU machine, say). */
#ifndef FINCH_SYNTHETIC_H
#define FINCH_SYNTHETIC_H

#include "data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

void synthetic_quadrants(Dataset *ds, int n, uint64_t seed, int base, int noise, int contrast);
/* The --data synthetic splits: n_train and n_test images (seeds 1 and 2), base 60, noise 60,
 * contrast 40, class names top-left, top-right, bottom-left, bottom-right. */
void synthetic_splits(int n_train, int n_test, Dataset *train, Dataset *test);

#ifdef __cplusplus
}
#endif

#endif
