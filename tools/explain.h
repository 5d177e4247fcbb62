/* finch explain's result and its report: explain.json, explain.html and a printed summary. */
#ifndef FINCH_EXPLAIN_H
#define FINCH_EXPLAIN_H

#include "run_dir.h"

typedef struct {
    int prototype, cls;        /* index in the model, and its class */
    double score;              /* the similarity the head pools (times the attention for Ours-FR) */
    int h, w;                  /* the latent cell where it is largest */
    double weight_pred, weight_own;   /* last-layer weight to the predicted class, to its own class */
    int rf_box[4], act_box[4]; /* in the image: the cell's receptive field, the 95th-percentile box */
} ExplainRow;

typedef struct {
    const char *source;        /* the image file, or "test-N" */
    int label;                 /* the true class, -1 when unknown */
    int pred;
    float *probs;              /* [num_classes] softmax of the logits */
    ExplainRow *rows;          /* every prototype, most similar first */
    int n_rows;                /* shown */
} Explanation;

/* out/explain.json and out/explain.html (pictures: rank-R-*.png, image.png). 0 or -1. */
int explain_write(const RunDir *r, const Explanation *e, const char *out);
void explain_print(const RunDir *r, const Explanation *e, const char *out);

#endif
