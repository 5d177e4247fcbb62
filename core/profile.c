/* The per-op profiler (profile.h). */
#include "profile.h"
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "backend.h"
#include "error.h"
#include "fileio.h"
#include "progress.h"

bool ft_profile_on = false;
static bool env_checked, exit_registered;
static ProfileRow *rows;
static int n_rows, cap_rows;
static ProfileMark op_start;   /* the op being timed: its start */
static bool op_open;
static double op_bytes;
/* CUDA: spans whose events have not been read yet (the row, forward or backward, the two marks) */
typedef struct { int row; bool backward; Device dev; ProfileMark a, b; } Pending;
static Pending *pending;
static int n_pending, cap_pending;

static ProfileRow *row_of(const char *op) {
    for (int i = 0; i < n_rows; i++)
        if (strncmp(rows[i].op, op, sizeof rows[i].op - 1) == 0) return &rows[i];
    if (n_rows == cap_rows) rows = ft_xrealloc(rows, (size_t)(cap_rows = cap_rows ? 2 * cap_rows : 64) * sizeof *rows);
    ProfileRow *r = &rows[n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    return r;
}

static void at_exit(void) {
    if (!n_rows) return;
    ft_profile_print(stderr);
    const char *path = getenv("FINCH_PROFILE_JSON");
    if (ft_profile_write_json(path && *path ? path : "finch-profile.json") != 0) fprintf(stderr, "profile: %s\n", ft_last_error());
}

void ft_profile_enable(bool on) {
    ft_profile_on = on;
    env_checked = true;
    op_open = false;
    if (on && !exit_registered) exit_registered = atexit(at_exit) == 0;
}

void ft_profile_check_env(void) {
    if (env_checked) return;
    env_checked = true;
    const char *e = getenv("FINCH_PROFILE");
    if (e && *e && strcmp(e, "0") != 0) ft_profile_enable(true);
}

/* the pending CUDA spans read (each waits for its end event) and charged */
void ft_profile_settle(void) {
    for (int i = 0; i < n_pending; i++) {
        Pending *p = &pending[i];
        const Backend *be = ft_backend(p->dev);
        double s = be->event_ms(p->a.event, p->b.event) / 1e3;
        *(p->backward ? &rows[p->row].backward_s : &rows[p->row].forward_s) += s;
        be->event_free(p->a.event);
        be->event_free(p->b.event);
    }
    n_pending = 0;
}

void ft_profile_step_end(void) {
    ft_profile_settle();
    if (op_open && op_start.event) ft_backend(FT_CUDA)->event_free(op_start.event);   /* an op that failed before it ended */
    op_open = false;
}

void ft_profile_reset(void) { ft_profile_step_end(); n_rows = 0; }

ProfileMark ft_profile_mark(Device dev) {
    if (dev == FT_CPU) return (ProfileMark){ ft_now(), NULL };
    const Backend *be = ft_backend(dev);
    if (be->event_record) return (ProfileMark){ 0, be->event_record() };
    ft_synchronize(dev);
    return (ProfileMark){ ft_now(), NULL };
}

void ft_profile_span(Device dev, const char *op, bool backward, ProfileMark a, ProfileMark b) {
    if (backward && op_open) {   /* tape allocations inside a backward open no forward op */
        if (op_start.event) ft_backend(dev)->event_free(op_start.event);
        op_open = false;
    }
    ProfileRow *r = row_of(op);
    *(backward ? &r->backward_calls : &r->forward_calls) += 1;
    if (!a.event || !b.event) { *(backward ? &r->backward_s : &r->forward_s) += b.t - a.t; return; }
    if (n_pending == cap_pending) pending = ft_xrealloc(pending, (size_t)(cap_pending = cap_pending ? 2 * cap_pending : 256) * sizeof *pending);
    pending[n_pending++] = (Pending){ (int)(r - rows), backward, dev, a, b };
    if (n_pending >= 4096) ft_profile_settle();   /* bounded: events are read in batches, long after they were queued */
}

void ft_profile_alloc(Device dev, size_t bytes) {
    if (!op_open) { op_start = ft_profile_mark(dev); op_open = true; op_bytes = 0; }
    op_bytes += (double)bytes;
}

void ft_profile_op_end(Device dev, const char *op) {
    ProfileMark end = ft_profile_mark(dev);
    if (op_open) {
        ft_profile_span(dev, op, false, op_start, end);
        row_of(op)->bytes += op_bytes;
    } else {   /* an op that allocated nothing on the tape (a view): counted, not timed */
        row_of(op)->forward_calls++;
        if (end.event) ft_backend(dev)->event_free(end.event);
    }
    op_open = false;
}

static int by_time(const void *a, const void *b) {
    const ProfileRow *x = a, *y = b;
    double tx = x->forward_s + x->backward_s, ty = y->forward_s + y->backward_s;
    return tx < ty ? 1 : tx > ty ? -1 : strcmp(x->op, y->op);
}

int ft_profile_rows(ProfileRow **out) {
    ft_profile_settle();
    *out = ft_xmalloc((size_t)(n_rows ? n_rows : 1) * sizeof **out);
    memcpy(*out, rows, (size_t)n_rows * sizeof **out);
    qsort(*out, (size_t)n_rows, sizeof **out, by_time);
    return n_rows;
}

void ft_profile_print(FILE *f) {
    ProfileRow *r;
    int n = ft_profile_rows(&r);
    double total = 0;
    for (int i = 0; i < n; i++) total += r[i].forward_s + r[i].backward_s;
    fprintf(f, "\nprofile (per op; forward from its first tape allocation to its record, backward per node):\n"
               "  %-24s %10s %8s %10s %8s %7s %12s\n", "op", "forward s", "calls", "backward s", "calls", "share", "tape MB");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-24s %10.4f %8lld %10.4f %8lld %6.1f%% %12.1f\n", r[i].op, r[i].forward_s, (long long)r[i].forward_calls,
                r[i].backward_s, (long long)r[i].backward_calls, total > 0 ? 100 * (r[i].forward_s + r[i].backward_s) / total : 0,
                r[i].bytes / 1e6);
    fprintf(f, "  %-24s %10.4f\n", "total", total);
    free(r);
}

int ft_profile_write_json(const char *path) {
    ProfileRow *r;
    int n = ft_profile_rows(&r);
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "ops");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "op", r[i].op);
        cJSON_AddNumberToObject(o, "forward_seconds", r[i].forward_s);
        cJSON_AddNumberToObject(o, "forward_calls", (double)r[i].forward_calls);
        cJSON_AddNumberToObject(o, "backward_seconds", r[i].backward_s);
        cJSON_AddNumberToObject(o, "backward_calls", (double)r[i].backward_calls);
        cJSON_AddNumberToObject(o, "tape_bytes", r[i].bytes);
        cJSON_AddItemToArray(arr, o);
    }
    free(r);
    int rc = write_json_atomic(path, doc);
    cJSON_Delete(doc);
    return rc;
}
