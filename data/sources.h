/* Labelled image files (CUB-200-2011 or an image folder) and their decoding into datasets: each
 * image decoded once, optionally cropped to its bounding box, resized to size x size (squashed,
 * as ProtoPNet, or its centred square kept), plus ProtoPNet's offline augmented copies. */
#ifndef FINCH_SOURCES_H
#define FINCH_SOURCES_H

#include "dataset.h"
#include "core/progress.h"
#include "augment.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SPLIT_TEST, SPLIT_TRAIN } SplitOf;

typedef struct {
    char path[1024];
    int label;
    SplitOf split;
    bool has_box;
    float box[4];             /* x, y, w, h in pixels */
} ImageSource;

typedef struct {
    char kind[16];            /* "cub" | "folder" */
    char root[1024], split_file[1024];
    ImageSource *items;
    int n, num_classes;
    char (*class_names)[96];
} SourceList;

/* CUB-200-2011 through cub_index_load (cub.h): every image with its box and split. */
int cub_sources(const char *root, SourceList *out);
/* root/<class>/<image>.{jpg,jpeg,png}, classes sorted by name. split_file (may be NULL) lists
 * every image once as "<class>/<file> 1" (train) or "0" (test); without one,
 * folder_default_split holds out a fifth of each class for testing. */
int folder_sources(const char *root, const char *split_file, SourceList *out);
/* The split of the i-th of a class's n images (sorted by name) when there is no split file:
 * every 5th is a test image (and the last of a class of 2 to 4), the rest train. */
SplitOf folder_default_split(int i, int n);
void sources_free(SourceList *s);
/* A checksum of what the list says and of the files it names (paths, labels, splits, boxes,
 * sizes, modification times): a prepared cache remembers it to notice a changed source. */
uint32_t sources_fingerprint(const SourceList *s);

typedef struct {
    int size;                 /* images become size x size */
    bool crop;                /* to their boxes, when they have one */
    bool keep_aspect;         /* the centred square of the region instead of squashing it */
    int copies;               /* offline augmented copies per training image (augment_offline) */
    uint64_t seed;            /* ... drawn from this seed */
    bool quiet;
} DecodeOpts;

/* Training images plain (the push set) and augmented offline (empty without copies), and test. */
typedef struct { Dataset train, augmented, test; } Splits;
void splits_free(Splits *s);

/* Items idx[0..n) decoded on all cores into plain (uint8 [n, 3, size, size]) and, when
 * o->copies > 0, aug ([n * copies, 3, size, size], copy k of item i at i * copies + k); p (may be
 * NULL) advances by one per item. A bad image or box is an error naming the file. */
int decode_items(const SourceList *s, const int *idx, int n, const DecodeOpts *o, uint8_t *plain, uint8_t *aug, Progress *p);
/* Every split decoded into memory. */
int decode_splits(const SourceList *s, const DecodeOpts *o, Splits *out);
/* PIL's bilinear resize (Image.resize((size, size), BILINEAR, box)) of the region (x, y, w, h) of
 * src into dst (uint8 [3, size, size]), bit for bit: antialiased when shrinking, as torchvision's
 * Resize on PIL images and so ProtoPNet. Decoding uses it for every plain image. */
void resize_bilinear_pil(ImageView src, const float region[4], uint8_t *dst, int size);
/* The indices of the items in a split; the count. */
int sources_split(const SourceList *s, bool train, int *idx);

#ifdef __cplusplus
}
#endif

#endif
