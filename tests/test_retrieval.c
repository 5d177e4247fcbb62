/* Retrieval evaluation (eval/retrieval.c): Recall@K and mAP on cases worked out by hand, and on
 * random features against NumPy (tools/retrieval_reference.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include "test.h"
#include "core/safetensors.h"
#include "eval/retrieval.h"

/* one query at angle 0 on the unit circle; the gallery at growing angles, so ranked in order */
TEST(recall_and_map_follow_the_protocols_on_a_case_worked_by_hand) {
    float q[2] = { 1, 0 }, g[12];
    const double angle[6] = { 0.1, 0.2, 0.3, 0.4, 0.5, 0.9 };
    for (int j = 0; j < 6; j++) { g[2 * j] = (float)cos(angle[j]); g[2 * j + 1] = (float)sin(angle[j]); }
    int q_id[1] = { 0 }, g_id[6] = { 0, -1, 1, 0, 2, 0 }, q_cam[1] = { 1 }, g_cam[6] = { 1, 1, 1, 2, 1, 3 };
    RetrievalSet s = { .nq = 1, .ng = 6, .dim = 2, .q = q, .g = g, .q_id = q_id, .g_id = g_id };
    RetrievalResult r;
    /* no cameras: junk (entry 1) dropped; matches at ranks 0, 2, 4 of 0 2 3 4 5 -> entries 0, 3, 5 */
    retrieval_evaluate(&s, &r);
    CHECK(r.scored == 1 && r.recall[0] == 1 && r.recall[1] == 1, "R@1 %g", r.recall[0]);
    CHECK(fabs(r.map - (1.0 + 2.0 / 3 + 3.0 / 5) / 3) < 1e-12, "AP %.12f", r.map);
    /* Market's camera rule: entry 0 (same identity, same camera) dropped too; matches at ranks 1 and 3 */
    s.q_cam = q_cam;
    s.g_cam = g_cam;
    retrieval_evaluate(&s, &r);
    CHECK(r.recall[0] == 0 && r.recall[1] == 1 && r.recall[2] == 1, "R@1 %g R@5 %g", r.recall[0], r.recall[1]);
    CHECK(fabs(r.map - (1.0 / 2 + 2.0 / 4) / 2) < 1e-12, "AP %.12f, expected 0.5", r.map);
    int top[6];
    retrieval_top(&s, 0, 6, top);
    CHECK(top[0] == 2 && top[1] == 3 && top[2] == 4 && top[3] == 5 && top[4] == -1, "top %d %d %d %d %d", top[0], top[1], top[2],
          top[3], top[4]);
    s.ap = AP_TRAPEZOID;   /* ((0 + 1/2) / 2 + (1/3 + 2/4) / 2) / 2 */
    retrieval_evaluate(&s, &r);
    CHECK(fabs(r.map - ((0 + 0.5) / 2 + (1.0 / 3 + 0.5) / 2) / 2) < 1e-12, "trapezoidal AP %.12f", r.map);
    /* a query whose identity the gallery lacks is not scored */
    q_id[0] = 5;
    retrieval_evaluate(&s, &r);
    CHECK(r.scored == 0 && r.skipped == 1 && r.map == 0, "scored %d, skipped %d", r.scored, r.skipped);
}

/* the gallery is the query set: a query never finds itself */
TEST(a_query_never_retrieves_itself_from_its_own_set) {
    float x[8] = { 1, 0, 0.6f, 0.8f, 0, 1, -1, 0 };
    int id[4] = { 0, 1, 0, 1 };
    RetrievalSet s = { .nq = 4, .ng = 4, .dim = 2, .q = x, .g = x, .q_id = id, .g_id = id, .same_set = true };
    RetrievalResult r;
    retrieval_evaluate(&s, &r);
    /* query 0 (1,0): 1 (.6), 2 (0), 3 (-1) -> its match 2 at rank 1; query 1 (.6,.8): 2 (.8), 0 (.6), 3 (-.6) ->
     * match 3 at rank 2; query 2 (0,1): 1 (.8), 0 (0), 3 (0) -> match 0 at rank 1 (ties by order); query 3 (-1,0):
     * 2 (0), 1 (-.6), 0 (-1) -> match 1 at rank 1 */
    CHECK(r.scored == 4 && r.recall[0] == 0 && r.recall[1] == 1, "R@1 %g R@5 %g", r.recall[0], r.recall[1]);
    CHECK(fabs(r.map - (0.5 + 1.0 / 3 + 0.5 + 0.5) / 4) < 1e-12, "mAP %.12f", r.map);
    float y[4] = { 3, 4, 0, 0 };
    retrieval_normalize(y, 2, 2);
    CHECK(y[0] == 0.6f && y[1] == 0.8f && y[2] == 0 && y[3] == 0, "normalised %g %g %g %g", y[0], y[1], y[2], y[3]);
}

static void *read_tensor(SafeTensors *st, const char *name, DType dt, Shape *shape) {
    const StEntry *e = st_find(st, name);
    if (!e) return NULL;
    Tensor *t = ft_tensor_new(dt, e->shape, FT_CPU);
    if (st_read_into(st, e, t) != 0) { ft_tensor_free(t); return NULL; }
    *shape = e->shape;
    size_t bytes = (size_t)t->numel * (dt == FT_F32 || dt == FT_I32 ? 4 : 8);
    void *copy = ft_xmalloc(bytes);
    memcpy(copy, dt == FT_F32 ? (void *)ft_f32(t) : dt == FT_I32 ? (void *)ft_i32(t) : (void *)ft_f64(t), bytes);
    ft_tensor_free(t);
    return copy;
}

TEST(recall_and_map_match_numpy_on_random_features) {
    SafeTensors st;
    CHECK(st_open("tests/fixtures/retrieval.safetensors", &st) == 0, "%s", ft_last_error());
    Shape sq, sg, s1;
    float *q = read_tensor(&st, "q", FT_F32, &sq), *g = read_tensor(&st, "g", FT_F32, &sg);
    int *q_id = read_tensor(&st, "q_id", FT_I32, &s1), *g_id = read_tensor(&st, "g_id", FT_I32, &s1);
    int *q_cam = read_tensor(&st, "q_cam", FT_I32, &s1), *g_cam = read_tensor(&st, "g_cam", FT_I32, &s1);
    double *expect = read_tensor(&st, "expect", FT_F64, &s1);
    CHECK(q && g && q_id && g_id && q_cam && g_cam && expect && s1.d[0] == 5 && s1.d[1] == 6, "the fixture's tensors");
    RetrievalSet base = { .nq = sq.d[0], .ng = sg.d[0], .dim = sq.d[1], .q = q, .g = g, .q_id = q_id, .g_id = g_id };
    const char *what[5] = { "plain", "plain, trapezoidal AP", "camera rule", "camera rule, trapezoidal AP", "same set" };
    for (int k = 0; k < 5; k++) {
        RetrievalSet s = base;
        if (k == 2 || k == 3) { s.q_cam = q_cam; s.g_cam = g_cam; }
        if (k % 2 == 1 && k < 4) s.ap = AP_TRAPEZOID;
        if (k == 4) { s.nq = s.ng; s.q = g; s.q_id = g_id; s.same_set = true; }
        RetrievalResult r;
        retrieval_evaluate(&s, &r);
        const double *e = expect + 6 * k;
        CHECK(r.scored == (int)e[4] && r.skipped == (int)e[5], "%s: %d scored, %d skipped; NumPy %g, %g", what[k], r.scored,
              r.skipped, e[4], e[5]);
        for (int i = 0; i < 3; i++)
            CHECK(fabs(r.recall[i] - e[i]) < 1e-6, "%s: R@%d %g, NumPy %g", what[k], retrieval_ks[i], r.recall[i], e[i]);
        CHECK(fabs(r.map - e[3]) < 1e-6, "%s: mAP %.8f, NumPy %.8f", what[k], r.map, e[3]);
    }
    free(q); free(g); free(q_id); free(g_id); free(q_cam); free(g_cam); free(expect);
    st_close(&st);
}

/* The evaluation ranks only the correct matches and places the rest by binary search; a plain full
 * sort of each query's row (written here, independently) must give the same AP, first-match rank
 * and top 5, on coarse random features where equal similarities are common (ties go by gallery order). */
static int oracle_cmp(const void *a, const void *b) {
    const double *x = a, *y = b;
    return x[0] > y[0] ? -1 : x[0] < y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

TEST(ranking_by_placing_wrong_matches_equals_a_full_sort_with_ties) {
    enum { NQ = 40, NG = 60, DIM = 3 };
    float q[NQ * DIM], g[NG * DIM];
    int q_id[NQ], g_id[NG], q_cam[NQ], g_cam[NG];
    unsigned seed = 7;
    for (int i = 0; i < NQ * DIM; i++) q[i] = (float)(rand_r(&seed) % 3) - 1;   /* {-1, 0, 1}: many ties */
    for (int i = 0; i < NG * DIM; i++) g[i] = (float)(rand_r(&seed) % 3) - 1;
    for (int i = 0; i < NQ; i++) { q_id[i] = rand_r(&seed) % 4; q_cam[i] = rand_r(&seed) % 2; }
    for (int j = 0; j < NG; j++) { g_id[j] = rand_r(&seed) % 5 - 1; g_cam[j] = rand_r(&seed) % 2; }
    for (int rule = 0; rule < 4; rule++) {
        bool cams = rule & 1, same = rule & 2;
        RetrievalSet s = { .nq = NQ, .ng = same ? NQ : NG, .dim = DIM, .q = q, .g = same ? q : g, .q_id = q_id,
                           .g_id = same ? q_id : g_id, .q_cam = cams ? q_cam : NULL, .g_cam = cams ? (same ? q_cam : g_cam) : NULL,
                           .same_set = same, .ap = rule == 1 ? AP_TRAPEZOID : AP_STANDARD };
        double ap_sum = 0, hits[RETRIEVAL_KS] = { 0 };
        int scored = 0, top_ok = 1;
        for (int i = 0; i < NQ; i++) {
            double row[NG][2];
            int n = 0;
            for (int j = 0; j < s.ng; j++) {
                if ((same && j == i) || s.g_id[j] == -1 || (cams && s.g_id[j] == q_id[i] && s.g_cam[j] == q_cam[i])) continue;
                double dot = 0;
                for (int k = 0; k < DIM; k++) dot += (double)q[i * DIM + k] * s.g[j * DIM + k];
                row[n][0] = (float)dot;
                row[n++][1] = j;
            }
            qsort(row, (size_t)n, sizeof row[0], oracle_cmp);
            int top[5];
            retrieval_top(&s, i, 5, top);
            for (int r = 0; r < 5; r++) top_ok &= top[r] == (r < n ? (int)row[r][1] : -1);
            int good = 0, first = -1;
            for (int r = 0; r < n; r++) good += s.g_id[(int)row[r][1]] == q_id[i];
            if (!good) continue;
            scored++;
            for (int r = 0, k = 0; r < n; r++) {
                if (s.g_id[(int)row[r][1]] != q_id[i]) continue;
                if (first < 0) first = r;
                double p = (double)(k + 1) / (r + 1);
                ap_sum += (s.ap == AP_STANDARD ? p : (p + (r ? (double)k / r : 1.0)) / 2) / good;
                k++;
            }
            for (int k = 0; k < RETRIEVAL_KS; k++) hits[k] += first < retrieval_ks[k];
        }
        RetrievalResult res;
        retrieval_evaluate(&s, &res);
        CHECK(res.scored == scored, "rule %d: scored %d, full sort %d", rule, res.scored, scored);
        CHECK(fabs(res.map - ap_sum / scored) < 1e-12, "rule %d: mAP %.15f, full sort %.15f", rule, res.map, ap_sum / scored);
        for (int k = 0; k < RETRIEVAL_KS; k++)
            CHECK(res.recall[k] == hits[k] / scored, "rule %d: R@%d %g, full sort %g", rule, retrieval_ks[k], res.recall[k],
                  hits[k] / scored);
        CHECK(top_ok, "rule %d: the top 5 differ from the full sort's", rule);
    }
}
