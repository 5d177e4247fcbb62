/* The original L-BFGS-B 3.0 (Byrd, Lu, Nocedal and Zhu; Morales and Nocedal's 2011 corrections),
 * Fortran, as Debian packages it (liblbfgsb-dev), driven by reverse communication: one solver
 * state per problem, so that a batch of images can each run their own while their objectives and
 * gradients come from one batched forward and backward. */
#ifndef FINCH_LBFGSB_H
#define FINCH_LBFGSB_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, m;                     /* variables, memory (corrections kept) */
    double *x, *l, *u, *g, f;     /* the iterate, the bounds, the gradient and value the caller fills */
    double factr, pgtol;          /* stop when the relative reduction of f is below factr * machine epsilon, or
                                   * when the largest projected gradient component is below pgtol */
    int iters, evals;             /* iterations done; evaluations asked for */
    char status[64];              /* the solver's last task: "CONVERGENCE: ...", "ABNORMAL_...", "STOP: ..." */
    /* the solver's own */
    double *wa, dsave[29];
    int *nbd, *iwa, isave[44], lsave[4];
    char task[60], csave[60];
} Lbfgsb;

/* x0, l and u: n values each (-INFINITY / INFINITY for no bound); copied. */
void lbfgsb_init(Lbfgsb *s, int n, int m, const double *x0, const double *l, const double *u, double factr, double pgtol);
/* Runs the solver until it needs f and g at s->x (returns true: fill s->f and s->g, then call
 * again) or stops: converged, failed, or past max_iters iterations (false; s->status says why). */
bool lbfgsb_next(Lbfgsb *s, int max_iters);
void lbfgsb_free(Lbfgsb *s);

#ifdef __cplusplus
}
#endif

#endif
