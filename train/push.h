/* Push (prototype projection, ProtoPNet): every prototype is replaced by its nearest latent patch
 * among the un-augmented training images of its own class.
 *
 * The search runs in batches on the model's device: one forward gives the distances of every
 * patch of the batch to every prototype [B, M, H, W]; patches of other classes are pushed out of
 * reach, and one min over (image, h, w) per prototype finds the batch's winner. Only the winners'
 * latent vectors come back to the host. */
#ifndef FINCH_PUSH_H
#define FINCH_PUSH_H

#include "models/protonet.h"
#include "data/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int image;          /* dataset index of the source image; -1: the push set has no image of the class */
    int h, w;           /* the latent cell */
    double dist;        /* squared distance from the old prototype to the patch */
    int rf_box[4];      /* receptive field of the cell in the image: x0, y0, x1, y1 (inclusive) */
    int act_box[4];     /* around the pixels >= the 95th percentile of the upsampled similarity map */
} PushRecord;

/* Pushes every prototype of p over ds's images subset[0..n) (all when subset is NULL), model in
 * eval mode. rec: p->n_protos entries (the boxes are filled by push_report). */
void push_prototypes(ProtoNet *p, const Dataset *ds, const int32_t *subset, int n, int batch, PushRecord *rec, bool quiet);

/* For every prototype: the boxes in rec, dir/prototypes.json (class, source image, cell, boxes,
 * distance), dir/prototype-J.png (source image, receptive field in yellow, 95th-percentile box
 * in red), dir/prototype-J-heat.png (0.5 image + 0.3 jet of its similarity map) and
 * dir/prototype-J-patch.png (the 95th-percentile box cut out). 0, or -1 with ft_last_error(). */
int push_report(ProtoNet *p, const Dataset *ds, PushRecord *rec, const char *dir);

/* The similarity maps a prototype network's head pools, [N, M, h, w]: the log similarity, times
 * the attention for Ours-FR. */
Tensor *proto_similarity_maps(Tape *tp, const ProtoOut *o);
/* Map j of image n of sim [N, M, h, w] upsampled (bilinear) to H x W doubles in heat. */
void proto_upsample_map(Tape *tp, Tensor *sim, int n, int j, int H, int W, double *heat);
/* ProtoPNet's receptive field of latent cell (h, w) in a size x size image: centre start +
 * index * jump, +- rf / 2, clipped; x0, y0, x1, y1 inclusive. */
void proto_rf_box(const ReceptiveField *r, int size, int h, int w, int box[4]);

/* The similarity map of prototype j on image x ([1, C, H, W] in [0, 1]) upsampled to the image
 * (bilinear): heat [H x W]. For Ours-FR it is the attention-gated map the head pools. */
void push_similarity_map(ProtoNet *p, Tensor *x, int j, double *heat);

#ifdef __cplusplus
}
#endif

#endif
