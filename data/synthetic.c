#include <stdio.h>
#include <string.h>
#include "data/synthetic.h"

void synthetic_quadrants(Dataset *ds, int n, uint64_t seed, int base, int noise, int contrast) {
    memset(ds, 0, sizeof *ds);
    ds->images = ft_tensor_new(FT_U8, SHAPE(n, 1, 28, 28), FT_CPU);
    ds->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    ds->num_classes = 4;
    Rng r = rng_new(seed);
    for (int i = 0; i < n; i++) {
        int c = (int)(rng_u32(&r) % 4);
        ft_i32(ds->labels)[i] = c;
        for (int p = 0; p < 784; p++) {
            int q = (p / 28 >= 14) * 2 + (p % 28 >= 14);
            double v = base + noise * rng_double(&r) + (q == c ? contrast : 0);
            ft_u8(ds->images)[(int64_t)i * 784 + p] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

void synthetic_splits(int n_train, int n_test, Dataset *train, Dataset *test) {
    static const char names[4][96] = { "top-left", "top-right", "bottom-left", "bottom-right" };
    synthetic_quadrants(train, n_train, 1, 60, 60, 40);
    synthetic_quadrants(test, n_test, 2, 60, 60, 40);
    snprintf(train->name, sizeof train->name, "synthetic/train");
    snprintf(test->name, sizeof test->name, "synthetic/test");
    dataset_set_names(train, names);
    dataset_set_names(test, names);
}
