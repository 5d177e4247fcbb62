/* Market-1501's layout (market.h). */
#include "market.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/error.h"

/* n decimal digits at s into *v; the characters consumed, or 0. */
static int digits(const char *s, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return n;
}

int market_parse_name(const char *name, int *pid, int *cam) {
    const char *s = name;
    int k, v, seq;
    if (strncmp(s, "-1_", 3) == 0) { *pid = -1; s += 2; }
    else if ((k = digits(s, 4, pid)) && s[4] == '_') s += 4;
    else return ft_error("'%s': expected a Market-1501 name PPPP_cCsS_FFFFFF_NN.jpg (identity of 4 digits or -1)", name);
    if (s[0] != '_' || s[1] != 'c' || !digits(s + 2, 1, cam) || *cam < 1 || s[3] != 's' || !digits(s + 4, 1, &seq) || s[5] != '_' ||
        !digits(s + 6, 6, &v) || s[12] != '_' || !digits(s + 13, 2, &v) || strcasecmp(s + 15, ".jpg") != 0)
        return ft_error("'%s': expected a Market-1501 name PPPP_cCsS_FFFFFF_NN.jpg (camera 1-9, sequence, frame, box)", name);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The .jpg names in dir, sorted; the count or -1. Market's folders hold only images (and, in the
 * official archive, a Thumbs.db, which is skipped). */
static int jpgs(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return ft_error("%s: cannot open directory: %s", dir, strerror(errno));
    int n = 0, cap = 64;
    char **names = ft_xmalloc((size_t)cap * sizeof *names);
    for (struct dirent *e; (e = readdir(d)); ) {
        const char *ext = strrchr(e->d_name, '.');
        if (e->d_name[0] == '.' || !ext || strcasecmp(ext, ".jpg") != 0) continue;
        if (n == cap) names = ft_xrealloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

int market_list(const char *root, MarketList *out) {
    memset(out, 0, sizeof *out);
    const char *sub[2] = { "query", "bounding_box_test" };
    char **names[2] = { NULL, NULL };
    int count[2] = { 0, 0 }, rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%s", root, sub[k]);
        if ((count[k] = jpgs(dir, &names[k])) < 0) { count[k] = 0; rc = -1; }
        else if (count[k] == 0) rc = ft_error("%s: no .jpg images (a Market-1501 layout has query/ and bounding_box_test/)", dir);
    }
    int n = count[0] + count[1];
    if (rc == 0) {
        out->src.items = ft_xcalloc((size_t)n, sizeof *out->src.items);
        out->cam = ft_xmalloc((size_t)n * sizeof *out->cam);
    }
    for (int k = 0, i = 0; k < 2 && rc == 0; k++)
        for (int j = 0; j < count[k] && rc == 0; j++, i++) {
            ImageSource *it = &out->src.items[i];
            if (market_parse_name(names[k][j], &it->label, &out->cam[i]) != 0) {
                char why[512];
                snprintf(why, sizeof why, "%s", ft_last_error());
                rc = ft_error("%s/%s/%s", root, sub[k], why);
            }
            snprintf(it->path, sizeof it->path, "%s/%s/%s", root, sub[k], names[k][j]);
            it->split = SPLIT_TEST;
        }
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < count[k]; j++) free(names[k][j]);
        free(names[k]);
    }
    if (rc != 0) { market_free(out); return -1; }
    snprintf(out->src.kind, sizeof out->src.kind, "market");
    snprintf(out->src.root, sizeof out->src.root, "%s", root);
    out->src.n = n;
    out->n_query = count[0];
    out->n_gallery = count[1];
    return 0;
}

void market_free(MarketList *m) {
    free(m->src.items);
    free(m->cam);
    memset(m, 0, sizeof *m);
}

int market_decode(const MarketList *m, const DecodeOpts *o, Dataset *out) {
    memset(out, 0, sizeof *out);
    int n = m->src.n, *idx = ft_xmalloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    out->images = ft_tensor_new(FT_U8, SHAPE(n, 3, o->size, o->size), FT_CPU);
    out->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int i = 0; i < n; i++) ft_i32(out->labels)[i] = m->src.items[i].label;
    snprintf(out->name, sizeof out->name, "market/query+gallery");
    Progress p;
    progress_start(&p, "decoding market", n, o->quiet);
    int rc = decode_items(&m->src, idx, n, o, ft_u8(out->images), NULL, &p);
    progress_finish(&p, NULL);
    free(idx);
    if (rc != 0) dataset_free(out);
    return rc;
}
