/* Retrieval evaluation: every query ranks a gallery by cosine similarity of their features, and
 * the ranking is scored by Recall@K (a query counts at K when at least one correct match is among
 * its top K) and mean average precision. Used by finch retrieval and the feature attacks. */
#ifndef FINCH_RETRIEVAL_H
#define FINCH_RETRIEVAL_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RETRIEVAL_KS 3
extern const int retrieval_ks[RETRIEVAL_KS];   /* 1, 5, 10 */

typedef enum {
    AP_STANDARD,     /* the mean of the precision at each correct match's rank (scikit-learn's) */
    AP_TRAPEZOID,    /* Market-1501's evaluation code: the precision curve integrated by trapezoids */
} ApRule;

typedef struct {
    int nq, ng, dim;
    const float *q, *g;           /* [nq, dim] and [ng, dim] features, each row L2-normalised (retrieval_normalize) */
    const int *q_id, *g_id;       /* identities (classes); a gallery identity of -1 is junk, ignored */
    const int *q_cam, *g_cam;     /* cameras; non-NULL: gallery entries with the query's identity and camera
                                   * are ignored (Market-1501's protocol) */
    bool same_set;                /* the gallery is the query set: query i ignores gallery entry i */
    ApRule ap;
} RetrievalSet;

typedef struct {
    double recall[RETRIEVAL_KS];  /* at 1, 5, 10: fractions of the scored queries */
    double map;
    int scored;                   /* queries with at least one correct match in their gallery */
    int skipped;                  /* queries without one (not scored) */
} RetrievalResult;

/* Each row of x [n, dim] divided by its L2 norm (a zero row stays zero). */
void retrieval_normalize(float *x, int64_t n, int dim);

/* Scores every query; the similarities come from one matrix product per block of queries. */
void retrieval_evaluate(const RetrievalSet *s, RetrievalResult *r);

/* The gallery indices of query i's k best matches under the set's rules, best first (-1 past the
 * end of its ranking): what the ranking pictures show. */
void retrieval_top(const RetrievalSet *s, int i, int k, int *out);

#ifdef __cplusplus
}
#endif

#endif
