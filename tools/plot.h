/* finch's plots (heatmaps, scatter plots with a fitted line), drawn by gnuplot (Debian's
 * gnuplot-nox, pngcairo) from a script and data written to a temporary directory; the PNG is
 * written to a temporary name and renamed. Each returns 0, or -1 with ft_last_error() saying why
 * (gnuplot missing or failing): a plot that cannot be drawn is for the caller to report, never a
 * reason to lose the results it illustrates. */
#ifndef FINCH_PLOT_H
#define FINCH_PLOT_H

/* v[r * cols + c] as coloured cells with their values printed, row and column names on the axes,
 * a colour scale from lo to hi labelled cb_label. */
int plot_heatmap(const char *png, const char *title, int rows, int cols, const double *v, const char *const *row_names,
                 const char *const *col_names, const char *x_label, const char *y_label, const char *cb_label, double lo, double hi);

/* Points (x[i], y[i]) named names[i], and the least-squares line through them with its R^2 in the
 * legend (when n >= 2). */
int plot_scatter_fit(const char *png, const char *title, int n, const double *x, const double *y, const char *const *names,
                     const char *x_label, const char *y_label);

/* Two sets of n points in the plane, a[2 i], a[2 i + 1] and b[...] (b's drawn as crosses), point i
 * coloured by group[i]; the origin marked. */
int plot_points2(const char *png, const char *title, int n, const double *a, const double *b, const int *group, const char *a_label,
                 const char *b_label);

/* Lines with error bars: series s at x[i] has y[s * n + i] ± err[s * n + i] (err NULL or a NAN
 * entry: no bar; a NAN y: no point), named names[s]. */
int plot_lines(const char *png, const char *title, int n_series, int n, const double *x, const double *y, const double *err,
               const char *const *names, const char *x_label, const char *y_label);

#endif
