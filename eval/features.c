/* Features of a layer for a set of images (features.h). */
#include "features.h"
#include <stdlib.h>
#include <string.h>

float *eval_features(Model *m, const Dataset *ds, const int32_t *idx, int n, const char *layer, int batch, int *dim, Progress *p) {
    Device dev = m->params.device;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(dev);
    float *out = NULL;
    *dim = 0;
    for (int start = 0; start < n; start += batch) {
        int b = n - start < batch ? n - start : batch;
        Shape s = ds->images->shape;
        s.d[0] = b;
        Tensor *x = ft_tensor_new(FT_F32, s, dev), *y = ft_tensor_new(FT_I32, SHAPE(b), dev);
        dataset_batch(ds, idx + start, b, x, y);
        ft_no_grad_begin(tp);
        Tensor *f = model_layer(m, tp, x, layer);
        ft_no_grad_end(tp);
        if (f && !out) {
            *dim = (int)(f->numel / b);
            out = ft_xmalloc((size_t)n * *dim * sizeof *out);
        }
        if (f) ft_to_floats(f, out + (int64_t)start * *dim, (int64_t)b * *dim);
        ft_tape_reset(tp);
        ft_tensor_free(x);
        ft_tensor_free(y);
        if (!f) { free(out); out = NULL; break; }
        if (p) progress_update(p, b, NULL);
    }
    ft_tape_free(tp);
    m->training = was_training;
    return out;
}
