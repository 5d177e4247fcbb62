#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "plot.h"
#include "core/finch.h"

extern char **environ;

/* s as a gnuplot single-quoted string (a quote doubled), into f. */
static void quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s != '\n' && *s != '\r') fputc(*s, f);
    }
    fputc('\'', f);
}

typedef struct { char dir[64], script[96], data[96], log[96]; FILE *gp, *dat; } Plot;

static int plot_open(Plot *p, const char *png, const char *title, int width, int height) {
    snprintf(p->dir, sizeof p->dir, "/tmp/finch-plot-XXXXXX");
    if (!mkdtemp(p->dir)) return ft_error("%s: cannot make a temporary directory for gnuplot", png);
    snprintf(p->script, sizeof p->script, "%s/plot.gp", p->dir);
    snprintf(p->data, sizeof p->data, "%s/data.txt", p->dir);
    snprintf(p->log, sizeof p->log, "%s/gnuplot.log", p->dir);
    p->gp = fopen(p->script, "w");
    p->dat = fopen(p->data, "w");
    if (!p->gp || !p->dat) return ft_error("%s: cannot write gnuplot's script in %s", png, p->dir);
    fprintf(p->gp, "set terminal pngcairo size %d,%d font 'sans,10' noenhanced\nset output ", width, height);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", png, (int)getpid());
    quoted(p->gp, tmp);
    fprintf(p->gp, "\nset title ");
    quoted(p->gp, title);
    fprintf(p->gp, "\n");
    return 0;
}

/* Runs gnuplot on the script, renames its PNG into place, removes the temporary files. */
static int plot_close(Plot *p, const char *png, int rc) {
    if (p->gp) fclose(p->gp);
    if (p->dat) fclose(p->dat);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", png, (int)getpid());
    if (rc == 0) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        char *argv[] = { "gnuplot", p->script, NULL };
        pid_t pid;
        int status = 0;
        if (posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ) != 0) {
            rc = ft_error("%s: gnuplot is not installed (apt-get install gnuplot-nox)", png);
        } else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char line[256] = "";
            FILE *l = fopen(p->log, "r");
            if (l && fgets(line, sizeof line, l)) line[strcspn(line, "\n")] = 0;
            if (l) fclose(l);
            rc = ft_error("%s: gnuplot failed%s%s", png, line[0] ? ": " : "", line);
        } else if (rename(tmp, png) != 0) {
            rc = ft_error("%s: cannot rename the plot into place", png);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    remove(tmp);
    remove(p->script);
    remove(p->data);
    remove(p->log);
    rmdir(p->dir);
    return rc;
}

/* "set xlabel X" and "set ylabel Y", the second line left open (callers go on with "\n...") */
static void axis_labels(FILE *f, const char *x_label, const char *y_label) {
    fprintf(f, "set xlabel ");
    quoted(f, x_label);
    fprintf(f, "\nset ylabel ");
    quoted(f, y_label);
}

static void tics(FILE *f, const char *axis, int n, const char *const *names) {
    fprintf(f, "set %stics (", axis);
    for (int i = 0; i < n; i++) {
        quoted(f, names[i]);
        fprintf(f, " %d%s", i, i + 1 < n ? ", " : "");
    }
    fprintf(f, ")%s\n", axis[0] == 'x' ? " rotate by 30 right" : "");
}

int plot_heatmap(const char *png, const char *title, int rows, int cols, const double *v, const char *const *row_names,
                 const char *const *col_names, const char *x_label, const char *y_label, const char *cb_label, double lo, double hi) {
    Plot p = { 0 };
    int width = 260 + 60 * cols, title_width = 40 + 7 * (int)strlen(title);
    int rc = plot_open(&p, png, title, width > title_width ? width : title_width, 200 + 45 * rows);
    if (rc == 0) {
        FILE *f = p.gp;
        axis_labels(f, x_label, y_label);
        fprintf(f, "\nset cblabel ");
        quoted(f, cb_label);
        fprintf(f, "\nset xrange [-0.5:%g]\nset yrange [%g:-0.5]\nset cbrange [%g:%g]\n", cols - 0.5, rows - 0.5, lo, hi);
        fprintf(f, "set palette defined (0 '#f7fbff', 0.5 '#6baed6', 1 '#08306b')\nset tics nomirror scale 0\nunset key\n");
        tics(f, "x", cols, col_names);
        tics(f, "y", rows, row_names);
        fprintf(f, "set linetype 1 lc rgb 'black'\nset linetype 2 lc rgb 'white'\n");   /* cell labels: dark on light */
        fprintf(f, "plot '%s' using 1:2:3 with image, '' using 1:2:(sprintf('%%.2f', $3)):($3 > %g ? 2 : 1) "
                   "with labels textcolor variable\n", p.data, lo + 0.6 * (hi - lo));
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) fprintf(p.dat, "%d %d %.6g\n", c, r, v[r * cols + c]);
    }
    return plot_close(&p, png, rc);
}

int plot_scatter_fit(const char *png, const char *title, int n, const double *x, const double *y, const char *const *names,
                     const char *x_label, const char *y_label) {
    Plot p = { 0 };
    int rc = plot_open(&p, png, title, 800, 560);
    if (rc == 0) {
        FILE *f = p.gp;
        double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;
        for (int i = 0; i < n; i++) { mx += x[i] / n; my += y[i] / n; }
        for (int i = 0; i < n; i++) {
            sxx += (x[i] - mx) * (x[i] - mx);
            sxy += (x[i] - mx) * (y[i] - my);
            syy += (y[i] - my) * (y[i] - my);
        }
        double a = sxx > 0 ? sxy / sxx : 0, b = my - a * mx, r2 = sxx > 0 && syy > 0 ? sxy * sxy / (sxx * syy) : NAN;
        axis_labels(f, x_label, y_label);
        fprintf(f, "\nset key top left\nset grid\nset offsets graph 0.1, graph 0.1, graph 0.1, graph 0.1\n");
        fprintf(f, "plot '%s' using 1:2 with points pt 7 ps 1.5 title 'models', '' using 1:2:3 with labels offset 1,1 left notitle", p.data);
        if (n >= 2 && sxx > 0) fprintf(f, ", %.10g * x + %.10g with lines lw 2 title 'fit: y = %.4g x %+.4g, R^2 = %.3f'", a, b, a, b, r2);
        fprintf(f, "\n");
        for (int i = 0; i < n; i++) {
            fprintf(p.dat, "%.10g %.10g \"", x[i], y[i]);
            for (const char *s = names[i]; *s; s++) if (*s != '"' && *s != '\n') fputc(*s, p.dat);
            fprintf(p.dat, "\"\n");
        }
    }
    return plot_close(&p, png, rc);
}

int plot_points2(const char *png, const char *title, int n, const double *a, const double *b, const int *group, const char *a_label,
                 const char *b_label) {
    Plot p = { 0 };
    int rc = plot_open(&p, png, title, 760, 720);
    if (rc == 0) {
        FILE *f = p.gp;
        fprintf(f, "set size ratio -1\nset grid\nset key top left\nset palette defined (0 '#1f77b4', 1 '#ff7f0e', 2 '#2ca02c', "
                   "3 '#d62728', 4 '#9467bd', 5 '#8c564b', 6 '#e377c2', 7 '#7f7f7f', 8 '#bcbd22', 9 '#17becf')\nunset colorbox\n"
                   "set cbrange [0:9]\nset xzeroaxis lt -1\nset yzeroaxis lt -1\nplot '%s' using 1:2:(int($5) %% 10) with points pt 7 ps 0.8 "
                   "lc palette title ", p.data);
        quoted(f, a_label);
        fprintf(f, ", '' using 3:4:(int($5) %% 10) with points pt 2 ps 0.8 lc palette title ");
        quoted(f, b_label);
        fprintf(f, "\n");
        for (int i = 0; i < n; i++)
            fprintf(p.dat, "%.8g %.8g %.8g %.8g %d\n", a[2 * i], a[2 * i + 1], b[2 * i], b[2 * i + 1], group[i] < 0 ? 0 : group[i]);
    }
    return plot_close(&p, png, rc);
}

int plot_lines(const char *png, const char *title, int n_series, int n, const double *x, const double *y, const double *err,
               const char *const *names, const char *x_label, const char *y_label) {
    Plot p = { 0 };
    int rc = plot_open(&p, png, title, 860, 560);
    if (rc == 0) {
        FILE *f = p.gp;
        axis_labels(f, x_label, y_label);
        double lo = INFINITY;
        for (int i = 0; i < n_series * n; i++) lo = isfinite(y[i]) && y[i] < lo ? y[i] : lo;
        fprintf(f, "\nset grid\nset key outside right top\nset offsets graph 0.02, graph 0.02, 0, 0\n%splot ",
                lo >= 0 ? "set yrange [0:*]\n" : "");
        for (int s = 0; s < n_series; s++) {   /* one data block per series; bars of 0 where there are none */
            fprintf(f, "%s'%s' index %d using 1:2:3 with yerrorlines lw 2 pt %d title ", s ? ", " : "", p.data, s, 5 + s % 8);
            quoted(f, names[s]);
            for (int i = 0; i < n; i++) {
                double v = y[s * n + i], e = err ? err[s * n + i] : NAN;
                if (isfinite(v)) fprintf(p.dat, "%.10g %.10g %.10g\n", x[i], v, isfinite(e) ? e : 0.0);
            }
            fprintf(p.dat, "\n\n");
        }
        fprintf(f, "\n");
    }
    return plot_close(&p, png, rc);
}
