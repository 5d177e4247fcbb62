/* Retrieval evaluation (retrieval.h). */
#include "retrieval.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include "core/error.h"

const int retrieval_ks[RETRIEVAL_KS] = { 1, 5, 10 };

void retrieval_normalize(float *x, int64_t n, int dim) {
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int k = 0; k < dim; k++) ss += (double)x[i * dim + k] * x[i * dim + k];
        if (ss > 0)
            for (int k = 0; k < dim; k++) x[i * dim + k] = (float)(x[i * dim + k] / sqrt(ss));
    }
}

typedef struct { float score; int j; } Entry;

/* most similar first; equal scores by gallery order, so that rankings are reproducible */
static int by_score(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score ? 1 : x->j - y->j;
}

/* Query i against its row of similarities: the rank of its first correct match (-1: none) and its
 * AP into *ap. e: scratch for ng entries. */
static int score_query(const RetrievalSet *s, int i, const float *sim, Entry *e, double *ap) {
    int n = 0, id = s->q_id[i];
    for (int j = 0; j < s->ng; j++) {
        if ((s->same_set && j == i) || s->g_id[j] == -1) continue;
        if (s->q_cam && s->g_id[j] == id && s->g_cam[j] == s->q_cam[i]) continue;
        e[n++] = (Entry){ sim[j], j };
    }
    qsort(e, (size_t)n, sizeof *e, by_score);
    int good = 0, first = -1;
    for (int r = 0; r < n; r++) good += s->g_id[e[r].j] == id;
    *ap = 0;
    if (!good) return -1;
    for (int r = 0, k = 0; r < n; r++) {
        if (s->g_id[e[r].j] != id) continue;
        if (first < 0) first = r;
        double precision = (double)(k + 1) / (r + 1);
        if (s->ap == AP_STANDARD) *ap += precision / good;
        else *ap += (precision + (r ? (double)k / r : 1.0)) / (2.0 * good);
        k++;
    }
    return first;
}

void retrieval_evaluate(const RetrievalSet *s, RetrievalResult *res) {
    enum { BLOCK = 256 };
    *res = (RetrievalResult){ 0 };
    int64_t hits[RETRIEVAL_KS] = { 0 };
    double ap_sum = 0;
    float *sim = ft_xmalloc((size_t)BLOCK * s->ng * sizeof *sim);
    for (int q0 = 0; q0 < s->nq; q0 += BLOCK) {
        int b = s->nq - q0 < BLOCK ? s->nq - q0 : BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, s->ng, s->dim, 1, s->q + (int64_t)q0 * s->dim, s->dim, s->g,
                    s->dim, 0, sim, s->ng);
        int scored = 0, skipped = 0;
        int64_t h0 = 0, h1 = 0, h2 = 0;
        double aps = 0;
        #pragma omp parallel reduction(+ : scored, skipped, h0, h1, h2, aps)
        {
            Entry *e = ft_xmalloc((size_t)s->ng * sizeof *e);
            #pragma omp for schedule(dynamic, 8)
            for (int i = 0; i < b; i++) {
                double ap;
                int first = score_query(s, q0 + i, sim + (int64_t)i * s->ng, e, &ap);
                if (first < 0) { skipped++; continue; }
                scored++;
                aps += ap;
                h0 += first < retrieval_ks[0];
                h1 += first < retrieval_ks[1];
                h2 += first < retrieval_ks[2];
            }
            free(e);
        }
        res->scored += scored;
        res->skipped += skipped;
        hits[0] += h0; hits[1] += h1; hits[2] += h2;
        ap_sum += aps;
    }
    free(sim);
    for (int k = 0; k < RETRIEVAL_KS; k++) res->recall[k] = res->scored ? (double)hits[k] / res->scored : 0;
    res->map = res->scored ? ap_sum / res->scored : 0;
}

void retrieval_top(const RetrievalSet *s, int i, int k, int *out) {
    float *sim = ft_xmalloc((size_t)s->ng * sizeof *sim);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, s->ng, s->dim, 1, s->g, s->dim, s->q + (int64_t)i * s->dim, 1, 0, sim, 1);
    Entry *e = ft_xmalloc((size_t)s->ng * sizeof *e);
    int n = 0;
    for (int j = 0; j < s->ng; j++) {
        if ((s->same_set && j == i) || s->g_id[j] == -1) continue;
        if (s->q_cam && s->g_id[j] == s->q_id[i] && s->g_cam[j] == s->q_cam[i]) continue;
        e[n++] = (Entry){ sim[j], j };
    }
    qsort(e, (size_t)n, sizeof *e, by_score);
    for (int r = 0; r < k; r++) out[r] = r < n ? e[r].j : -1;
    free(e);
    free(sim);
}
