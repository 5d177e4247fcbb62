#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "progress.h"

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) {
    stop_signal = sig;
    signal(sig, SIG_DFL);   /* the next one is not caught */
}

void ft_catch_stop_signals(void) {
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
}

bool ft_stop_requested(void) { return stop_signal != 0; }
int ft_stop_signal(void) { return stop_signal; }

double ft_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(Progress *p, const char *label, int64_t total, bool quiet) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start = p->last_print = ft_now();
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
}

static void print_line(Progress *p, const char *note, bool final) {
    double el = ft_now() - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    int pct = p->total > 0 ? (int)(100 * p->done / p->total) : 100;
    fprintf(stderr, "%s%-14s %3d%% %7lld/%-7lld %8.0f/s  %s %2d:%02d  %s%s", p->tty ? "\r\033[K" : "",
            p->label, pct, (long long)p->done, (long long)p->total, rate, final ? "took" : "ETA ",
            (int)(final ? el : eta) / 60, (int)(final ? el : eta) % 60, note ? note : "",
            p->tty && !final ? "" : "\n");
    fflush(stderr);
}

void progress_update(Progress *p, int64_t n, const char *note) {
    p->done += n;
    if (p->quiet) return;
    double t = ft_now();
    if (t - p->last_print < (p->tty ? 0.2 : 10.0)) return;
    p->last_print = t;
    print_line(p, note, false);
}

double progress_finish(Progress *p, const char *note) {
    if (!p->quiet) print_line(p, note, true);
    return ft_now() - p->start;
}
