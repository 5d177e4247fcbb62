/* An attack run on a saved model's test images: the statistics into JSON, a picture of one
 * example per class, and the adversarial images saved for later use (--save-adv). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"
#include "dist/dist.h"
#include "core/safetensors.h"

#define PICTURE_MAX 10

/* What the batches leave behind: the picture's examples and, with --save-adv, every row. */
typedef struct {
    int n, batch;                /* images attacked, in batches of */
    int64_t per;                 /* floats per image */
    int picked[PICTURE_MAX], n_picked;
    float *pic_x, *pic_adv;      /* [n_picked, per] */
    int32_t pic_label[PICTURE_MAX], pic_clean[PICTURE_MAX], pic_adv_pred[PICTURE_MAX];
    bool save;
    Tensor *adv;                 /* host [n, C, H, W] */
    Tensor *index, *label, *target, *pred_clean, *pred_adv;   /* host int32 [n] */
} Collect;

/* The first example of each class among the first n (up to PICTURE_MAX). */
static void pick_examples(const Dataset *ds, int n, Collect *c) {
    c->n_picked = 0;
    for (int k = 0; k < ds->num_classes && c->n_picked < PICTURE_MAX; k++)
        for (int i = 0; i < n; i++)
            if (ft_i32(ds->labels)[i] == k) { c->picked[c->n_picked++] = i; break; }
}

static void collect(void *ctx, int start, int n, Tensor *x, Tensor *x_adv, const Goal *g, const int32_t *pred_clean,
                    const int32_t *pred_adv) {
    Collect *c = ctx;
    float *hx = ft_xmalloc((size_t)x->numel * sizeof *hx), *ha = ft_xmalloc((size_t)x->numel * sizeof *ha);
    ft_to_floats(x, hx, x->numel);
    ft_to_floats(x_adv, ha, x->numel);
    for (int k = 0; k < c->n_picked; k++) {
        int i = c->picked[k] - start;
        if (i < 0 || i >= n) continue;
        memcpy(c->pic_x + k * c->per, hx + i * c->per, (size_t)c->per * sizeof *hx);
        memcpy(c->pic_adv + k * c->per, ha + i * c->per, (size_t)c->per * sizeof *ha);
        c->pic_label[k] = g->labels[i];
        c->pic_clean[k] = pred_clean[i];
        c->pic_adv_pred[k] = pred_adv[i];
    }
    if (c->save) {
        memcpy(ft_f32(c->adv) + (int64_t)start * c->per, ha, (size_t)x->numel * sizeof *ha);
        for (int i = 0; i < n; i++) {
            ft_i32(c->index)[start + i] = start + i;
            ft_i32(c->label)[start + i] = g->labels[i];
            ft_i32(c->target)[start + i] = g->targets ? g->targets[i] : -1;
            ft_i32(c->pred_clean)[start + i] = pred_clean[i];
            ft_i32(c->pred_adv)[start + i] = pred_adv[i];
        }
    }
    free(hx);
    free(ha);
}

/* Several processes: every process's rows of the saved arrays, in every process. */
static void gather_rows(Collect *c) {
    if (!ft_dist_active() || !c->save) return;
    bool ok = ft_dist_gather_rows(ft_f32(c->adv), (size_t)c->per * sizeof(float), c->n, c->batch) == 0;
    Tensor *t[] = { c->index, c->label, c->target, c->pred_clean, c->pred_adv };
    for (int k = 0; k < 5 && ok; k++) ok = ft_dist_gather_rows(ft_i32(t[k]), sizeof(int32_t), c->n, c->batch) == 0;
    FT_CHECK(ok, "%s", ft_last_error());
}

static void collect_free(Collect *c) {
    free(c->pic_x);
    free(c->pic_adv);
    Tensor *t[] = { c->adv, c->index, c->label, c->target, c->pred_clean, c->pred_adv };
    for (int i = 0; i < 6; i++) ft_tensor_free(t[i]);
}

static int draw(const Collect *c, const Dataset *test, const AttackSpec *a, const char *png) {
    Shape s = test->images->shape;
    s.d[0] = c->n_picked;
    Tensor *hx = ft_tensor_new(FT_F32, s, FT_CPU), *ha = ft_tensor_new(FT_F32, s, FT_CPU);
    memcpy(ft_f32(hx), c->pic_x, (size_t)hx->numel * sizeof(float));
    memcpy(ft_f32(ha), c->pic_adv, (size_t)ha->numel * sizeof(float));
    double scale = a->kind == ATTACK_STEPS && a->step.norm == NORM_INF ? a->step.eps
                 : a->kind == ATTACK_APGD && a->apgd.norm == NORM_INF ? a->apgd.eps
                 : a->kind == ATTACK_SQUARE ? a->square.eps : 0;
    for (int64_t i = 0; scale == 0 && i < hx->numel; i++) scale = fmax(scale, fabs(ft_f32(ha)[i] - ft_f32(hx)[i]));
    int rc = adv_grid_png(png, hx, ha, c->pic_label, c->pic_clean, c->pic_adv_pred, c->n_picked, scale);
    ft_tensor_free(hx);
    ft_tensor_free(ha);
    return rc;
}

static int save_adv(const Collect *c, const char *path, const char *model_file, const char *attack) {
    const char *names[] = { "adv", "index", "label", "target", "pred_clean", "pred_adv" };
    Tensor *const t[] = { c->adv, c->index, c->label, c->target, c->pred_clean, c->pred_adv };
    const char *keys[] = { "format", "model_file", "attack" }, *values[] = { "finch-adv", model_file, attack };
    return st_write(path, 6, names, t, 3, keys, values);
}

static void add_stat(cJSON *o, const char *name, Stat s) {
    if (isnan(s.mean)) { cJSON_AddNullToObject(o, name); return; }   /* no successful example to measure */
    cJSON *j = cJSON_AddObjectToObject(o, name);
    cJSON_AddNumberToObject(j, "mean", s.mean);
    cJSON_AddNumberToObject(j, "median", s.median);
}

static void add_spec(cJSON *out, const AttackSpec *a) {
    char t[32];
    cJSON_AddStringToObject(out, "target", target_name(&a->target, t, sizeof t));
    if (a->kind == ATTACK_STEPS) {
        const StepAttack *s = &a->step;
        cJSON_AddStringToObject(out, "norm", s->norm == NORM_L2 ? "2" : "inf");
        cJSON_AddNumberToObject(out, "eps", s->eps);
        cJSON_AddNumberToObject(out, "alpha", s->alpha);
        cJSON_AddNumberToObject(out, "steps", s->steps);
        cJSON_AddBoolToObject(out, "random_start", s->random_start);
        if (s->momentum > 0) cJSON_AddNumberToObject(out, "momentum", s->momentum);
        return;
    }
    if (a->kind == ATTACK_APGD) {
        const ApgdAttack *p = &a->apgd;
        static const char *loss[] = { "ce", "dlr", "dlr-targeted" };
        cJSON_AddStringToObject(out, "loss", loss[p->loss]);
        cJSON_AddStringToObject(out, "norm", p->norm == NORM_L2 ? "2" : "inf");
        cJSON_AddNumberToObject(out, "eps", p->eps);
        cJSON_AddNumberToObject(out, "steps", p->steps);
        cJSON_AddNumberToObject(out, "restarts", p->restarts);
        if (p->loss == APGD_DLR_TARGETED) cJSON_AddNumberToObject(out, "target_classes", p->target_classes);
        return;
    }
    if (a->kind == ATTACK_SQUARE) {
        cJSON_AddStringToObject(out, "norm", "inf");
        cJSON_AddNumberToObject(out, "eps", a->square.eps);
        cJSON_AddNumberToObject(out, "queries", a->square.queries);
        cJSON_AddNumberToObject(out, "p_init", a->square.p_init);
        return;
    }
    const OptAttack *o = &a->opt;
    cJSON_AddNumberToObject(out, "kappa", o->kappa);
    cJSON_AddNumberToObject(out, "c", o->c0);
    cJSON_AddNumberToObject(out, "lr", o->lr);
    cJSON_AddNumberToObject(out, "steps", o->steps);
    cJSON_AddNumberToObject(out, "search_steps", o->search_steps);
    cJSON_AddBoolToObject(out, "abort_early", o->abort_early);
    if (a->kind == ATTACK_EAD) {
        cJSON_AddNumberToObject(out, "beta", o->beta);
        cJSON_AddStringToObject(out, "rule", o->rule == EAD_RULE_L1 ? "l1" : "en");
    }
}

int run_attack(Model *m, const Dataset *test, int n, int batch, const AttackSpec *a, uint64_t seed,
               const RunAttackFiles *files, bool quiet, cJSON *out, AttackStats *stats) {
    if (n <= 0 || n > dataset_size(test)) n = dataset_size(test);
    Collect c = { .n = n, .batch = batch, .per = test->images->numel / dataset_size(test), .save = files->save_adv != NULL };
    pick_examples(test, share_of(n, batch).hi, &c);   /* (several processes: rank 0 draws from its share) */
    c.pic_x = ft_xmalloc((size_t)(c.n_picked * c.per + 1) * sizeof(float));
    c.pic_adv = ft_xmalloc((size_t)(c.n_picked * c.per + 1) * sizeof(float));
    if (c.save) {
        Shape s = test->images->shape;
        s.d[0] = n;
        c.adv = ft_tensor_new(FT_F32, s, FT_CPU);
        Tensor **t[] = { &c.index, &c.label, &c.target, &c.pred_clean, &c.pred_adv };
        for (int i = 0; i < 5; i++) *t[i] = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    }
    AttackStats r = attack_evaluate(m, test, n, batch, a, seed, quiet, collect, &c);
    gather_rows(&c);
    bool writer = ft_dist_rank() == 0;
    add_spec(out, a);
    cJSON_AddNumberToObject(out, "images", r.total);
    cJSON_AddNumberToObject(out, "clean_acc", (double)r.clean_correct / r.total);
    cJSON_AddNumberToObject(out, "robust_acc", (double)r.adv_correct / r.total);
    cJSON_AddNumberToObject(out, "success_rate", (double)r.success / r.total);
    cJSON_AddNumberToObject(out, "success_rate_8bit", (double)r.success_8bit / r.total);
    cJSON_AddNumberToObject(out, "needed", r.needed);
    cJSON_AddNumberToObject(out, "measured", r.measured);
    cJSON *dist = cJSON_AddObjectToObject(out, "distortion");
    add_stat(dist, "l0", r.l0); add_stat(dist, "l1", r.l1); add_stat(dist, "l2", r.l2); add_stat(dist, "linf", r.linf);
    cJSON_AddNumberToObject(out, "seconds", r.seconds);
    int rc = 0;
    if (writer && files->png && c.n_picked > 0) {
        if (draw(&c, test, a, files->png) != 0) fprintf(stderr, "finch: %s\n", ft_last_error());
        else cJSON_AddStringToObject(out, "picture", files->png);
    }
    if (writer && c.save) {
        char name[64];
        snprintf(name, sizeof name, "%s", files->attack_name ? files->attack_name : attack_kind_name(a->kind));
        if ((rc = save_adv(&c, files->save_adv, files->model_file ? files->model_file : "", name)) != 0)
            fprintf(stderr, "finch: %s\n", ft_last_error());
        else cJSON_AddStringToObject(out, "save_adv", files->save_adv);
    }
    collect_free(&c);
    if (stats) *stats = r;
    return rc ? 1 : 0;
}

/* The attacks by name, with their defaults. */
bool run_attack_spec(const char *kind, double eps, double alpha, int steps, Norm norm, AttackSpec *a) {
    if (steps == 0) steps = strncmp(kind, "apgd-", 5) == 0 ? 100 : 20;
    a->kind = ATTACK_STEPS;
    if (strcmp(kind, "fgsm") == 0) a->step = attack_fgsm(eps);
    else if (strcmp(kind, "fgsm-rs") == 0) a->step = attack_fgsm_rs(eps, alpha);
    else if (strcmp(kind, "pgd") == 0) a->step = norm == NORM_L2 ? attack_pgd_l2(eps, alpha, steps) : attack_pgd(eps, alpha, steps);
    else if (strcmp(kind, "bim") == 0 || strcmp(kind, "ifgsm") == 0) a->step = attack_bim(eps, steps);
    else if (strcmp(kind, "mim") == 0) a->step = attack_mim(eps, steps, 1.0);
    else if (strncmp(kind, "apgd-", 5) == 0) {
        ApgdLoss l = strcmp(kind, "apgd-ce") == 0 ? APGD_CE : strcmp(kind, "apgd-dlr") == 0 ? APGD_DLR : APGD_DLR_TARGETED;
        if (l == APGD_DLR_TARGETED && strcmp(kind, "apgd-t") != 0) return false;
        a->kind = ATTACK_APGD;
        a->apgd = attack_apgd_defaults(l, eps, steps, norm);
    }
    else if (strcmp(kind, "square") == 0) { a->kind = ATTACK_SQUARE; a->square = (SquareAttack){ eps, 5000, 0.8 }; }
    else if (strcmp(kind, "cw") == 0) { a->kind = ATTACK_CW; a->opt = attack_cw_defaults(); }
    else if (strcmp(kind, "ead") == 0) { a->kind = ATTACK_EAD; a->opt = attack_ead_defaults(); }
    else return false;
    return true;
}
