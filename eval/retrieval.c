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

static bool ignored(const RetrievalSet *s, int i, int j) {
    return (s->same_set && j == i) || s->g_id[j] == -1 ||
           (s->q_cam && s->g_id[j] == s->q_id[i] && s->g_cam[j] == s->q_cam[i]);
}

/* Query i against its row of similarities: the rank of its first correct match (-1: none) and its
 * AP into *ap. Only the correct matches are sorted; every other entry is placed among them by a
 * binary search, which gives each match's rank in the full ranking without sorting the gallery.
 * pos: scratch for ng entries, before: for ng + 1 counts. */
static int score_query(const RetrievalSet *s, int i, const float *sim, Entry *pos, int *before, double *ap) {
    int good = 0, id = s->q_id[i];
    for (int j = 0; j < s->ng; j++)
        if (!ignored(s, i, j) && s->g_id[j] == id) pos[good++] = (Entry){ sim[j], j };
    *ap = 0;
    if (!good) return -1;
    qsort(pos, (size_t)good, sizeof *pos, by_score);
    for (int k = 0; k <= good; k++) before[k] = 0;
    for (int j = 0; j < s->ng; j++) {
        if (ignored(s, i, j) || s->g_id[j] == id) continue;
        Entry e = { sim[j], j };
        int lo = 0, hi = good;   /* the first correct match that e outranks */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (by_score(&e, &pos[mid]) < 0) hi = mid; else lo = mid + 1;
        }
        before[lo]++;
    }
    int first = before[0];
    for (int k = 0, r = 0; k < good; k++) {
        r += before[k];   /* wrong matches ranked above the k-th correct one; its rank is r + k */
        double precision = (double)(k + 1) / (r + k + 1);
        if (s->ap == AP_STANDARD) *ap += precision / good;
        else *ap += (precision + (r + k ? (double)k / (r + k) : 1.0)) / (2.0 * good);
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
            Entry *pos = ft_xmalloc((size_t)s->ng * sizeof *pos);
            int *before = ft_xmalloc(((size_t)s->ng + 1) * sizeof *before);
            #pragma omp for schedule(dynamic, 8)
            for (int i = 0; i < b; i++) {
                double ap;
                int first = score_query(s, q0 + i, sim + (int64_t)i * s->ng, pos, before, &ap);
                if (first < 0) { skipped++; continue; }
                scored++;
                aps += ap;
                h0 += first < retrieval_ks[0];
                h1 += first < retrieval_ks[1];
                h2 += first < retrieval_ks[2];
            }
            free(pos);
            free(before);
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
    Entry *top = ft_xmalloc((size_t)(k > 0 ? k : 1) * sizeof *top);
    int n = 0;   /* the k best so far, best first: an insertion into a short sorted list */
    for (int j = 0; j < s->ng; j++) {
        if (ignored(s, i, j)) continue;
        Entry e = { sim[j], j };
        if (n == k && (k == 0 || by_score(&e, &top[k - 1]) >= 0)) continue;
        int r = n < k ? n++ : k - 1;
        for (; r > 0 && by_score(&e, &top[r - 1]) < 0; r--) top[r] = top[r - 1];
        top[r] = e;
    }
    for (int r = 0; r < k; r++) out[r] = r < n ? top[r].j : -1;
    free(top);
    free(sim);
}
