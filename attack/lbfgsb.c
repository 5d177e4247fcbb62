/* L-BFGS-B 3.0 through its Fortran entry point (lbfgsb.h). */
#include "lbfgsb.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

/* lbfgsb.f's setulb, with gfortran's hidden lengths of the two CHARACTER*60 arguments at the end
 * (LOGICAL is a 4-byte int). Debian ships no C header for it. */
extern void setulb_(int *n, int *m, double *x, double *l, double *u, int *nbd, double *f, double *g, double *factr, double *pgtol,
                    double *wa, int *iwa, char *task, int *iprint, char *csave, int *lsave, int *isave, double *dsave, size_t task_len,
                    size_t csave_len);

static void set_task(char task[60], const char *s) {
    memset(task, ' ', 60);
    memcpy(task, s, strlen(s));
}

void lbfgsb_init(Lbfgsb *s, int n, int m, const double *x0, const double *l, const double *u, double factr, double pgtol) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->m = m;
    s->factr = factr;
    s->pgtol = pgtol;
    s->x = ft_xmalloc((size_t)n * sizeof *s->x);
    s->l = ft_xmalloc((size_t)n * sizeof *s->l);
    s->u = ft_xmalloc((size_t)n * sizeof *s->u);
    s->g = ft_xcalloc((size_t)n, sizeof *s->g);
    s->nbd = ft_xmalloc((size_t)n * sizeof *s->nbd);
    s->iwa = ft_xmalloc((size_t)3 * n * sizeof *s->iwa);
    s->wa = ft_xmalloc(((size_t)2 * m * n + 5 * (size_t)n + 11 * (size_t)m * m + 8 * (size_t)m) * sizeof *s->wa);
    memcpy(s->x, x0, (size_t)n * sizeof *s->x);
    for (int i = 0; i < n; i++) {
        bool lo = isfinite(l[i]), hi = isfinite(u[i]);
        s->l[i] = lo ? l[i] : 0;
        s->u[i] = hi ? u[i] : 0;
        s->nbd[i] = lo && hi ? 2 : lo ? 1 : hi ? 3 : 0;   /* setulb's codes: both, lower, upper, none */
    }
    set_task(s->task, "START");
}

bool lbfgsb_next(Lbfgsb *s, int max_iters) {
    int iprint = -1;
    for (;;) {
        setulb_(&s->n, &s->m, s->x, s->l, s->u, s->nbd, &s->f, s->g, &s->factr, &s->pgtol, s->wa, s->iwa, s->task, &iprint, s->csave,
                s->lsave, s->isave, s->dsave, 60, 60);
        if (strncmp(s->task, "FG", 2) == 0) { s->evals++; return true; }
        if (strncmp(s->task, "NEW_X", 5) == 0) {
            s->iters++;
            if (s->iters < max_iters) continue;
            snprintf(s->status, sizeof s->status, "STOP: %d iterations", max_iters);
            return false;
        }
        int k = 60;
        while (k > 0 && s->task[k - 1] == ' ') k--;
        snprintf(s->status, sizeof s->status, "%.*s", k, s->task);
        return false;
    }
}

void lbfgsb_free(Lbfgsb *s) {
    free(s->x); free(s->l); free(s->u); free(s->g);
    free(s->nbd); free(s->iwa); free(s->wa);
    memset(s, 0, sizeof *s);
}
