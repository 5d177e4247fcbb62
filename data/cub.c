#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cub.h"
#include "core/fileio.h"

/* Calls line_fn(ix, file, line number, text) for each non-empty line of root/name. */
static int each_line(CubIndex *ix, const char *name, int (*line_fn)(CubIndex *, const char *, int, char *)) {
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/%s", ix->root, name);
    FILE *f = fopen_regular(path);
    if (!f) return ft_error("%s (is %s a CUB-200-2011 directory?)", ft_last_error(), ix->root);
    int rc = 0;
    for (int no = 1; rc == 0 && fgets(line, sizeof line, f); no++) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) rc = line_fn(ix, path, no, line);
    }
    fclose(f);
    return rc;
}

/* the image of a 1-based id, or NULL after an error naming file:line */
static CubImage *by_id(CubIndex *ix, const char *file, int no, int id) {
    if (id < 1 || id > ix->n || ix->images[id - 1].id != id) {
        ft_error("%s:%d: image id %d is not in images.txt", file, no, id);
        return NULL;
    }
    return &ix->images[id - 1];
}

static int count_line(CubIndex *ix, const char *file, int no, char *s) { (void)file; (void)no; (void)s; ix->n++; return 0; }

static int image_line(CubIndex *ix, const char *file, int no, char *s) {
    int id, k;
    char path[256];
    if (sscanf(s, "%d %255s%n", &id, path, &k) != 2 || s[k]) return ft_error("%s:%d: expected 'id path', got '%s'", file, no, s);
    if (id < 1 || id > ix->n || ix->images[id - 1].id) return ft_error("%s:%d: id %d is out of order or repeated", file, no, id);
    ix->images[id - 1] = (CubImage){ .id = id, .label = -1 };
    snprintf(ix->images[id - 1].path, sizeof ix->images[id - 1].path, "%s", path);
    return 0;
}

static int class_line(CubIndex *ix, const char *file, int no, char *s) {
    int id, k;
    if (sscanf(s, "%d %n", &id, &k) != 1 || !s[k]) return ft_error("%s:%d: expected 'id name', got '%s'", file, no, s);
    if (id != ix->num_classes + 1) return ft_error("%s:%d: class id %d, expected %d", file, no, id, ix->num_classes + 1);
    ix->class_names = ft_xrealloc(ix->class_names, (size_t)(id) * sizeof *ix->class_names);
    snprintf(ix->class_names[id - 1], sizeof ix->class_names[0], "%s", s + k);
    ix->num_classes = id;
    return 0;
}

static int label_line(CubIndex *ix, const char *file, int no, char *s) {
    int id, c, k;
    if (sscanf(s, "%d %d%n", &id, &c, &k) != 2 || s[k]) return ft_error("%s:%d: expected 'id class', got '%s'", file, no, s);
    CubImage *im = by_id(ix, file, no, id);
    if (!im) return -1;
    if (c < 1 || c > ix->num_classes) return ft_error("%s:%d: class %d outside 1..%d (classes.txt)", file, no, c, ix->num_classes);
    if (im->label >= 0) return ft_error("%s:%d: image %d labelled twice", file, no, id);
    im->label = c - 1;
    return 0;
}

static int split_line(CubIndex *ix, const char *file, int no, char *s) {
    int id, t, k;
    if (sscanf(s, "%d %d%n", &id, &t, &k) != 2 || s[k] || (t != 0 && t != 1))
        return ft_error("%s:%d: expected 'id 0|1', got '%s'", file, no, s);
    CubImage *im = by_id(ix, file, no, id);
    if (!im) return -1;
    im->train = t == 1;
    return 0;
}

static int box_line(CubIndex *ix, const char *file, int no, char *s) {
    int id, k;
    float b[4];
    if (sscanf(s, "%d %f %f %f %f%n", &id, &b[0], &b[1], &b[2], &b[3], &k) != 5 || s[k])
        return ft_error("%s:%d: expected 'id x y w h', got '%s'", file, no, s);
    CubImage *im = by_id(ix, file, no, id);
    if (!im) return -1;
    if (!(b[0] >= 0 && b[1] >= 0 && b[2] > 0 && b[3] > 0)) return ft_error("%s:%d: box %g %g %g %g of image %d", file, no, b[0], b[1], b[2], b[3], id);
    memcpy(im->box, b, sizeof b);
    return 0;
}

int cub_index_load(const char *root, CubIndex *ix) {
    memset(ix, 0, sizeof *ix);
    snprintf(ix->root, sizeof ix->root, "%s", root);
    int rc = each_line(ix, "images.txt", count_line);
    if (rc == 0) {
        int n = ix->n;
        ix->images = ft_xcalloc((size_t)(n ? n : 1), sizeof *ix->images);
        rc = each_line(ix, "images.txt", image_line);
    }
    if (rc == 0) rc = each_line(ix, "classes.txt", class_line);
    if (rc == 0) rc = each_line(ix, "image_class_labels.txt", label_line);
    if (rc == 0) rc = each_line(ix, "train_test_split.txt", split_line);
    if (rc == 0) rc = each_line(ix, "bounding_boxes.txt", box_line);
    for (int i = 0; rc == 0 && i < ix->n; i++) {
        const CubImage *im = &ix->images[i];
        char path[1024];
        snprintf(path, sizeof path, "%s/images/%s", root, im->path);
        int fd;
        if (im->label < 0) rc = ft_error("%s/image_class_labels.txt: image %d has no class", root, im->id);
        else if (im->box[2] <= 0) rc = ft_error("%s/bounding_boxes.txt: image %d has no box", root, im->id);
        else if ((fd = open_regular(path, NULL)) < 0) rc = ft_error("%s (image %d is missing or unreadable)", ft_last_error(), im->id);
        else close(fd);
    }
    if (rc == 0 && ix->n == 0) rc = ft_error("%s/images.txt: no images", root);
    if (rc != 0) cub_index_free(ix);
    return rc;
}

void cub_index_free(CubIndex *ix) {
    free(ix->images);
    free(ix->class_names);
    memset(ix, 0, sizeof *ix);
}

int cub_sources(const char *root, SourceList *out) {
    memset(out, 0, sizeof *out);
    CubIndex ix;
    if (cub_index_load(root, &ix) != 0) return -1;
    snprintf(out->kind, sizeof out->kind, "cub");
    snprintf(out->root, sizeof out->root, "%s", root);
    out->n = ix.n;
    out->num_classes = ix.num_classes;
    out->items = ft_xcalloc((size_t)ix.n, sizeof *out->items);
    for (int i = 0; i < ix.n; i++) {
        const CubImage *im = &ix.images[i];
        ImageSource *it = &out->items[i];
        snprintf(it->path, sizeof it->path, "%s/images/%s", root, im->path);
        it->label = im->label;
        it->split = im->train ? SPLIT_TRAIN : SPLIT_TEST;
        it->has_box = true;
        memcpy(it->box, im->box, sizeof it->box);
    }
    out->class_names = ix.class_names;   /* handed over */
    ix.class_names = NULL;
    cub_index_free(&ix);
    return 0;
}
