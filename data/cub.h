/* CUB-200-2011 (Wah et al. 2011) from its own layout:
 *   images.txt (id path), image_class_labels.txt (id class 1..K), train_test_split.txt (id 0|1),
 *   bounding_boxes.txt (id x y w h, float pixels), classes.txt (id name), images/<path>.
 * Every id is cross-checked between the files; a malformed line, an unknown or duplicated id, a
 * missing image or a box outside its image is an error naming the file and line. */
#ifndef FINCH_CUB_H
#define FINCH_CUB_H

#include "sources.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int id, label;            /* label 0..K-1 */
    bool train;
    float box[4];             /* x, y, w, h */
    char path[256];           /* relative to root/images */
} CubImage;

typedef struct {
    char root[512];
    CubImage *images;
    int n, num_classes;
    char (*class_names)[96];
} CubIndex;

/* cub_sources (sources.h) turns an index into the image list that decoding and the cache take. */
int cub_index_load(const char *root, CubIndex *ix);
void cub_index_free(CubIndex *ix);

#ifdef __cplusplus
}
#endif

#endif
