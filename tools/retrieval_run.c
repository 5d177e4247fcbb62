/* The retrieval protocols' images and features (retrieval_run.h). */
#include "retrieval_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "eval/features.h"
#include "eval/retrieval.h"
#include "data/market.h"

/* Appends the images of ds whose label is at least min_label (up to limit in all). */
static int pick(const Dataset *ds, int min_label, int limit, int32_t *idx, int *id, int n) {
    for (int i = 0; i < dataset_size(ds) && (limit <= 0 || n < limit); i++)
        if (ft_i32(ds->labels)[i] >= min_label) { idx[n] = i; id[n++] = ft_i32(ds->labels)[i]; }
    return n;
}

/* Market-1501: the first `limit` queries (0: all) and the whole gallery, decoded at --image-size (128). */
static int load_market(const char *cmd, const DataOpts *d, int limit, RetrievalData *r) {
    MarketList ml;
    if (market_list(d->data + 7, &ml) != 0) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); return 1; }
    int skip = limit > 0 && limit < ml.n_query ? ml.n_query - limit : 0;   /* queries left out */
    if (skip) {
        memmove(ml.src.items + limit, ml.src.items + ml.n_query, (size_t)ml.n_gallery * sizeof *ml.src.items);
        memmove(ml.cam + limit, ml.cam + ml.n_query, (size_t)ml.n_gallery * sizeof *ml.cam);
        ml.n_query = limit;
        ml.src.n -= skip;
    }
    DecodeOpts o = { .size = d->image_size > 0 ? d->image_size : 128, .quiet = false };
    int rc = market_decode(&ml, &o, &r->data.test);
    if (rc != 0) { fprintf(stderr, "finch %s: %s\n", cmd, ft_last_error()); market_free(&ml); return 1; }
    r->n = ml.src.n;
    r->n_query = ml.n_query;
    r->idx = ft_xmalloc((size_t)r->n * sizeof *r->idx);
    r->id = ft_xmalloc((size_t)r->n * sizeof *r->id);
    r->cam = ft_xmalloc((size_t)r->n * sizeof *r->cam);
    for (int i = 0; i < r->n; i++) { r->idx[i] = i; r->id[i] = ml.src.items[i].label; r->cam[i] = ml.cam[i]; }
    r->protocol = "Market-1501: queries against the gallery, junk (-1) and same-identity same-camera entries ignored, "
                  "AP as Market's evaluation code";
    market_free(&ml);
    return 0;
}

int retrieval_data_load(const char *cmd, const DataOpts *d, const char *split, int limit, const Model *m, RetrievalData *r) {
    memset(r, 0, sizeof *r);
    if (strncmp(d->data, "market:", 7) == 0) {
        int rc = load_market(cmd, d, limit, r);
        if (rc == 0 && (rc = run_check_input(cmd, m, &r->data.test, d->data)) != 0) retrieval_data_free(r);
        return rc;
    }
    bool cub = strncmp(d->data, "cub:", 4) == 0, classes = cub && strcmp(split, "classes") == 0;
    int rc = run_load_data(cmd, d, classes, &r->data);
    if (rc) return rc;
    if ((rc = run_check_input(cmd, m, &r->data.test, d->data)) != 0) { splits_free(&r->data); return rc; }
    int total = dataset_size(&r->data.test) + (classes ? dataset_size(&r->data.train) : 0);
    r->idx = ft_xmalloc((size_t)total * sizeof *r->idx);
    r->id = ft_xmalloc((size_t)total * sizeof *r->id);
    if (classes) r->n = r->n_train = pick(&r->data.train, 100, limit, r->idx, r->id, 0);
    r->n = pick(&r->data.test, classes ? 100 : 0, limit, r->idx, r->id, r->n);
    r->protocol = classes ? "CUB-200-2011 classes 101-200, training and test images" : cub ? "CUB-200-2011 test images"
                                                                                        : "the test images, classes as identities";
    if (r->n < 2) {
        fprintf(stderr, "finch %s: %s has %d image(s) for this protocol: nothing to rank\n", cmd, d->data, r->n);
        retrieval_data_free(r);
        return 2;
    }
    return 0;
}

RetrievalSet retrieval_data_set(const RetrievalData *r, const float *feat, const float *q, int nq, int dim) {
    if (!r->n_query)
        return (RetrievalSet){ .nq = nq, .ng = r->n, .dim = dim, .q = q, .g = feat, .q_id = r->id, .g_id = r->id, .same_set = true };
    int64_t k = r->n_query;
    return (RetrievalSet){ .nq = nq, .ng = r->n - r->n_query, .dim = dim, .q = q, .g = feat + k * dim, .q_id = r->id,
                           .g_id = r->id + k, .q_cam = r->cam, .g_cam = r->cam + k, .ap = AP_TRAPEZOID };
}

void retrieval_data_free(RetrievalData *r) {
    splits_free(&r->data);
    free(r->idx);
    free(r->id);
    free(r->cam);
    memset(r, 0, sizeof *r);
}

void retrieval_data_batch(const RetrievalData *r, int start, int n, Tensor *x) {
    Tensor *y = ft_tensor_new(FT_I32, SHAPE(n), x->storage->device);
    int a = start < r->n_train ? (start + n < r->n_train ? n : r->n_train - start) : 0;   /* rows from the training split */
    if (a == n) dataset_batch(&r->data.train, r->idx + start, n, x, y);
    else if (a == 0) dataset_batch(&r->data.test, r->idx + start, n, x, y);
    else {   /* the batch straddles the two splits */
        Tensor xa = *x, xb = *x, ya = *y, yb = *y;
        int64_t per = x->numel / n;
        xa.numel = a * per; xa.shape.d[0] = a; ya.numel = a; ya.shape.d[0] = a;
        xb.offset += a * per; xb.numel = (n - a) * per; xb.shape.d[0] = n - a;
        yb.offset += a; yb.numel = n - a; yb.shape.d[0] = n - a;
        dataset_batch(&r->data.train, r->idx + start, a, &xa, &ya);
        dataset_batch(&r->data.test, r->idx + start + a, n - a, &xb, &yb);
    }
    ft_tensor_free(y);
}

float *retrieval_data_features(const char *cmd, Model *m, const RetrievalData *r, int n, const char *layer, int batch, int *dim,
                               bool normalize, bool quiet) {
    Progress p;
    progress_start(&p, "features", n, quiet);
    int nt = n < r->n_train ? n : r->n_train;
    float *a = nt ? eval_features(m, &r->data.train, r->idx, nt, layer, batch, dim, &p) : NULL;
    float *b = (!nt || a) && n > nt ? eval_features(m, &r->data.test, r->idx + nt, n - nt, layer, batch, dim, &p) : NULL;
    progress_finish(&p, NULL);
    float *f = NULL;
    if ((nt && !a) || (n > nt && !b)) fprintf(stderr, "finch %s: --layer %s: %s\n", cmd, layer, ft_last_error());
    else {
        f = ft_xmalloc((size_t)n * *dim * sizeof *f);
        if (a) memcpy(f, a, (size_t)nt * *dim * sizeof *f);
        if (b) memcpy(f + (int64_t)nt * *dim, b, (size_t)(n - nt) * *dim * sizeof *f);
        if (normalize) retrieval_normalize(f, n, *dim);
    }
    free(a);
    free(b);
    return f;
}
