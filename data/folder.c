/* Image folders: root/<class>/<image>.{jpg,jpeg,png} (Stanford Cars and the like); see sources.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "sources.h"
#include "core/fileio.h"

typedef struct { char path[512]; int label, split; } Entry;   /* split: -1 not listed yet, or a SplitOf */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted names in dir that pass keep(); the count, or -1 with an error. */
static int list_dir(const char *dir, bool want_dirs, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return ft_error("%s: cannot open directory: %s", dir, strerror(errno));
    int n = 0, cap = 16;
    char **names = ft_xmalloc((size_t)cap * sizeof *names);
    for (struct dirent *e; (e = readdir(d)); ) {
        if (e->d_name[0] == '.') continue;
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(full, &sb) != 0 || S_ISDIR(sb.st_mode) != want_dirs) continue;
        const char *ext = strrchr(e->d_name, '.');
        if (!want_dirs && (!ext || (strcasecmp(ext, ".jpg") && strcasecmp(ext, ".jpeg") && strcasecmp(ext, ".png")))) continue;
        if (n == cap) names = ft_xrealloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int read_split(const char *file, Entry *items, int n) {
    FILE *f = fopen_regular(file);
    if (!f) return -1;
    char line[1100], path[1024];
    int rc = 0, no = 0, t, k;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        no++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (sscanf(line, "%1023s %d%n", path, &t, &k) != 2 || line[k] || (t != 0 && t != 1)) {
            rc = ft_error("%s:%d: expected '<class>/<file> 0|1', got '%s'", file, no, line);
            break;
        }
        int i = 0;
        while (i < n && strcmp(items[i].path, path) != 0) i++;
        if (i == n) rc = ft_error("%s:%d: %s is not an image of the folder", file, no, path);
        else if (items[i].split >= 0) rc = ft_error("%s:%d: %s is listed twice", file, no, path);
        else items[i].split = t;
    }
    fclose(f);
    for (int i = 0; rc == 0 && i < n; i++)
        if (items[i].split < 0) rc = ft_error("%s: %s is not listed (every image needs a split)", file, items[i].path);
    return rc;
}

SplitOf folder_default_split(int i, int n) {
    return i % 5 == 4 || (n >= 2 && n < 5 && i == n - 1) ? SPLIT_TEST : SPLIT_TRAIN;
}

int folder_sources(const char *root, const char *split_file, SourceList *out) {
    memset(out, 0, sizeof *out);
    char **classes;
    int nc = list_dir(root, true, &classes);
    if (nc < 0) return -1;
    if (nc == 0) { free_names(classes, 0); return ft_error("%s: no class subdirectories (expected root/<class>/<image>)", root); }
    Entry *items = NULL;
    int n = 0, rc = 0;
    for (int c = 0; rc == 0 && c < nc; c++) {
        char dir[1024], **files;
        snprintf(dir, sizeof dir, "%s/%s", root, classes[c]);
        int nf = list_dir(dir, false, &files);
        if (nf < 0) { rc = -1; break; }
        items = ft_xrealloc(items, (size_t)(n + nf + 1) * sizeof *items);
        for (int i = 0; i < nf; i++, n++) {
            snprintf(items[n].path, sizeof items[n].path, "%s/%s", classes[c], files[i]);
            items[n].label = c;
            items[n].split = split_file ? -1 : (int)folder_default_split(i, nf);
        }
        free_names(files, nf);
    }
    if (rc == 0 && n == 0) rc = ft_error("%s: no .jpg, .jpeg or .png images under the class directories", root);
    if (rc == 0 && split_file) rc = read_split(split_file, items, n);
    if (rc == 0) {
        snprintf(out->kind, sizeof out->kind, "folder");
        snprintf(out->root, sizeof out->root, "%s", root);
        snprintf(out->split_file, sizeof out->split_file, "%s", split_file ? split_file : "");
        out->n = n;
        out->num_classes = nc;
        out->items = ft_xcalloc((size_t)n, sizeof *out->items);
        out->class_names = ft_xmalloc((size_t)nc * sizeof *out->class_names);
        for (int c = 0; c < nc; c++) snprintf(out->class_names[c], sizeof out->class_names[c], "%s", classes[c]);
        for (int i = 0; i < n; i++) {
            snprintf(out->items[i].path, sizeof out->items[i].path, "%s/%s", root, items[i].path);
            out->items[i].label = items[i].label;
            out->items[i].split = (SplitOf)items[i].split;
        }
    }
    free(items);
    free_names(classes, nc);
    return rc;
}
