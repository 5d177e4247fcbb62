#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "push.h"
#include "proto_loss.h"
#include "core/progress.h"
#include "dist/dist.h"

/* The batch's best patch of its own class per prototype: [M] distances and flat (image, h, w) indices. */
static Tensor *batch_min(ProtoNet *p, Tape *tp, Tensor *z, const int32_t *labels, Tensor **arg) {
    Tensor *d = proto_distances(tp, z, p->prototypes);
    Tensor *own = ft_add(tp, d, proto_class_penalty(tp, d, p->cls, labels, true));
    ft_tape_release(tp, d);   /* no gradients here: each [b, M, H, W] goes back once read */
    Tensor *best = ft_min(tp, own, FT_DIM(0) | FT_DIM(2) | FT_DIM(3), false, arg);
    ft_tape_release(tp, own);
    return best;
}

/* Several processes searched their shares of the push set: each prototype takes the patch of the
 * nearest winner, the earliest rank on a tie (its images come first: the one-process choice). */
static void agree(PushRecord *rec, float *protos, int M, int D) {
    int ranks = ft_dist_size();
    PushRecord *all = ft_xmalloc((size_t)ranks * M * sizeof *all);
    float *vecs = ft_xmalloc((size_t)ranks * M * D * sizeof *vecs);
    FT_CHECK(ft_dist_allgather(rec, (size_t)M * sizeof *rec, all) == 0 &&
             ft_dist_allgather(protos, (size_t)M * D * sizeof *protos, vecs) == 0, "push: %s", ft_last_error());
    for (int j = 0; j < M; j++) {
        int best = -1;
        for (int r = 0; r < ranks; r++)
            if (all[(size_t)r * M + j].image >= 0 && (best < 0 || all[(size_t)r * M + j].dist < all[(size_t)best * M + j].dist)) best = r;
        if (best < 0) continue;
        rec[j] = all[(size_t)best * M + j];
        memcpy(protos + (size_t)j * D, vecs + ((size_t)best * M + j) * D, (size_t)D * sizeof *protos);
    }
    free(all);
    free(vecs);
}

/* Under several processes each searches a contiguous share of the push set, then they agree. */
void push_prototypes(ProtoNet *p, const Dataset *ds, const int32_t *subset, int n, int batch, PushRecord *rec, bool quiet) {
    Model *m = &p->base;
    int M = p->n_protos, D = p->depth;
    bool was_training = m->training;
    m->training = false;
    Tape *tp = ft_tape_new(m->params.device);
    ft_no_grad_begin(tp);
    float *protos = ft_xmalloc((size_t)M * D * sizeof *protos), *dist = ft_xmalloc((size_t)M * sizeof *dist);
    int32_t *idx = ft_xmalloc((size_t)batch * sizeof *idx);
    int32_t *labels = ft_xmalloc((size_t)batch * sizeof *labels);
    ft_to_floats(p->prototypes, protos, (int64_t)M * D);
    for (int j = 0; j < M; j++) rec[j] = (PushRecord){ .image = -1, .dist = INFINITY };
    Shape s = ds->images->shape;
    int ranks = ft_dist_size(), rank = ft_dist_rank(), lo, hi;
    ft_dist_share(n, batch, &lo, &hi);
    Progress pr;
    progress_start(&pr, "push", hi - lo, quiet || rank > 0);
    for (int start = lo; start < hi; start += batch) {
        int b = hi - start < batch ? hi - start : batch;
        for (int i = 0; i < b; i++) {
            idx[i] = subset ? subset[start + i] : start + i;
            labels[i] = ft_i32(ds->labels)[idx[i]];
        }
        s.d[0] = b;
        Tensor *x = ft_new(tp, FT_F32, s), *y = ft_new(tp, FT_I32, SHAPE(b));
        dataset_batch(ds, idx, b, x, y);
        Tensor *z = protonet_latent(p, tp, x), *a;
        int H = z->shape.d[2], W = z->shape.d[3];
        ft_to_floats(batch_min(p, tp, z, labels, &a), dist, M);
        Tensor *ah = ft_tensor_new(FT_I32, SHAPE(M), FT_CPU);
        ft_copy_(ah, a);
        float *zh = NULL;
        for (int j = 0; j < M; j++) {
            if (!(dist[j] < PROTO_OUTSIDE / 2 && dist[j] < rec[j].dist)) continue;
            int k = ft_i32(ah)[j], im = k / (H * W), cell = k % (H * W);
            if (!zh) { zh = ft_xmalloc((size_t)z->numel * sizeof *zh); ft_to_floats(z, zh, z->numel); }
            rec[j].image = idx[im];
            rec[j].h = cell / W;
            rec[j].w = cell % W;
            rec[j].dist = dist[j];
            for (int c = 0; c < D; c++) protos[(int64_t)j * D + c] = zh[((int64_t)im * D + c) * H * W + cell];
        }
        free(zh);
        ft_tensor_free(ah);
        ft_tape_reset(tp);
        progress_update(&pr, b, NULL);
    }
    if (ranks > 1) agree(rec, protos, M, D);
    int missing = 0;
    for (int j = 0; j < M; j++) missing += rec[j].image < 0;
    char note[96] = "";
    if (missing) snprintf(note, sizeof note, "%d prototype(s) kept: no image of their class in the push set", missing);
    progress_finish(&pr, missing ? note : NULL);
    ft_from_floats(p->prototypes, protos, (int64_t)M * D);
    free(protos); free(dist); free(idx); free(labels);
    ft_tape_free(tp);
    m->training = was_training;
}
