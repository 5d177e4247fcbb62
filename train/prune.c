#include <math.h>
#include <stdlib.h>
#include "prune.h"
#include "core/progress.h"

/* Inserts (d, im) into the sorted k-list of one prototype when it is nearer than its last. */
static void insert(int *image, double *dist, int k, double d, int im) {
    if (!(d < dist[k - 1])) return;
    int i = k - 1;
    for (; i > 0 && d < dist[i - 1]; i--) { dist[i] = dist[i - 1]; image[i] = image[i - 1]; }
    dist[i] = d;
    image[i] = im;
}

void prune_nearest(ProtoNet *p, const Dataset *ds, const int32_t *subset, int n, int batch, int k, int *image, double *dist,
                   bool quiet) {
    Model *m = &p->base;
    int M = p->n_protos;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(m->params.device);
    ft_no_grad_begin(tp);
    for (int64_t i = 0; i < (int64_t)M * k; i++) { image[i] = -1; dist[i] = INFINITY; }
    float *near = ft_xmalloc((size_t)batch * M * sizeof *near);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx);
    Shape s = ds->images->shape;
    Progress pr;
    progress_start(&pr, "nearest patches", n, quiet);
    for (int start = 0; start < n; start += batch) {
        int b = n - start < batch ? n - start : batch;
        for (int i = 0; i < b; i++) idx[i] = subset ? subset[start + i] : start + i;
        s.d[0] = b;
        Tensor *x = ft_new(tp, FT_F32, s), *y = ft_new(tp, FT_I32, SHAPE(b));
        dataset_batch(ds, idx, b, x, y);
        Tensor *d = proto_distances(tp, protonet_latent(p, tp, x), p->prototypes);
        ft_to_floats(ft_min(tp, d, FT_DIM(2) | FT_DIM(3), false, NULL), near, (int64_t)b * M);   /* each image's nearest patch */
        for (int i = 0; i < b; i++)
            for (int j = 0; j < M; j++) insert(image + (int64_t)j * k, dist + (int64_t)j * k, k, near[(int64_t)i * M + j], idx[i]);
        ft_tape_reset(tp);
        progress_update(&pr, b, NULL);
    }
    progress_finish(&pr, NULL);
    free(near);
    free(idx);
    ft_tape_free(tp);
    m->training = was_training;
}

int prune_select(const ProtoNet *p, const Dataset *ds, const int *image, int k, int min_own, bool *keep, int *own) {
    int kept = 0;
    for (int j = 0; j < p->n_protos; j++) {
        own[j] = 0;
        for (int i = 0; i < k; i++) {
            int im = image[(int64_t)j * k + i];
            own[j] += im >= 0 && ft_i32(ds->labels)[im] == p->cls[j];
        }
        kept += keep[j] = own[j] >= min_own;
    }
    return kept;
}
