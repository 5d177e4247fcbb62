/* What finch retrieval and finch attack --retrieval share: the protocol's images and their
 * features. */
#ifndef FINCH_RETRIEVAL_RUN_H
#define FINCH_RETRIEVAL_RUN_H

#include "run.h"
#include "eval/retrieval.h"

typedef struct {
    Splits data;
    int n, n_train;            /* images in the protocol; the first n_train are training images (CUB classes) */
    int32_t *idx;              /* each one's row in data.train (the first n_train) or data.test */
    int *id;                   /* identities: classes, or Market's persons (-1 junk, 0 distractors) */
    int *cam;                  /* Market: each image's camera; NULL otherwise */
    int n_query;               /* Market: the first n_query images are the queries, the rest the gallery;
                                * 0: every image is a query against all the others */
    const char *protocol;      /* in words */
} RetrievalData;

/* d's images for the protocol (split: "classes" or "test", cub: only; limit: the first N images,
 * Market: the first N queries; 0 all), checked against m's input. Prints the problem; returns
 * the exit status (0, 1 or 2). */
int retrieval_data_load(const char *cmd, const DataOpts *d, const char *split, int limit, const Model *m, RetrievalData *r);
void retrieval_data_free(RetrievalData *r);

/* The ranking of the protocol's first nq queries (q: their features) against its gallery (all
 * images, or Market's gallery), feat holding every image's features. */
RetrievalSet retrieval_data_set(const RetrievalData *r, const float *feat, const float *q, int nq, int dim);
/* How many queries the protocol has. */
static inline int retrieval_data_queries(const RetrievalData *r) { return r->n_query ? r->n_query : r->n; }

/* Images [start, start + n) of the protocol into x (float32 [n, C, H, W] on x's device). */
void retrieval_data_batch(const RetrievalData *r, int start, int n, Tensor *x);

/* Layer `layer` of m for the protocol's first n images, rows [n, *dim] (L2-normalised when
 * normalize); NULL with the problem printed (an unknown layer lists the model's). */
float *retrieval_data_features(const char *cmd, Model *m, const RetrievalData *r, int n, const char *layer, int batch, int *dim,
                               bool normalize, bool quiet);

/* retrieval-attack.png (retrieval_png.c): for queries 0..n-1, the clean query and its top 5 under
 * `clean`, the adversarial query (adv_images: host float32 [n, C, S, S]) and its top 5 under `adv`;
 * gallery images framed green for the query's identity, red otherwise. 0, or -1 with
 * ft_last_error(). */
int retrieval_picture(const char *path, const RetrievalData *rd, const RetrievalSet *clean, const RetrievalSet *adv,
                      const float *adv_images, int n);

#endif
