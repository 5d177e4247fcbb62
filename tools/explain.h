/* finch explain's result and its report: explain.json, explain.html and a printed summary. */
#ifndef FINCH_EXPLAIN_H
#define FINCH_EXPLAIN_H

#include "run_dir.h"

typedef struct {
    int prototype, cls;        /* index in the model (-1: a row of class cls's attention map), and its class */
    double score;              /* the similarity the head pools (times the attention for Ours-FR); a class
                                * map's mean: the class's logit */
    double peak;               /* the map's largest value (a prototype's: its score) */
    int h, w;                  /* the latent cell where it is largest */
    double weight_pred, weight_own;   /* last-layer weight to the predicted class, to its own class */
    int rf_box[4], act_box[4]; /* in the image: the cell's receptive field, the 95th-percentile box */
} ExplainRow;

typedef struct {
    const char *source;        /* the image file, or "test-N" */
    int label;                 /* the true class, -1 when unknown */
    int pred;
    float *probs;              /* [num_classes] softmax of the logits */
    ExplainRow *rows;          /* every prototype, most similar first (by_class: every class, highest logit first) */
    int n_rows;                /* shown */
    bool by_class;             /* an attention network without prototypes: rows are its classes' attention maps */
    bool attention;            /* attention.png: the spatial attention a (ap, ours-fr) */
} Explanation;

/* out/explain.json and out/explain.html (pictures: rank-R-*.png, image.png). 0 or -1. */
int explain_write(const RunDir *r, const Explanation *e, const char *out);
void explain_print(const RunDir *r, const Explanation *e, const char *out);

#endif
