/* Person re-identification in the Market-1501 layout: root/query/ and root/bounding_box_test/
 * (the gallery), file names PPPP_cCsS_FFFFFF_NN.jpg (identity PPPP, camera C, sequence S, frame,
 * box). Identity -1 is junk (ignored when ranking), 0000 a distractor (kept, never a match). */
#ifndef FINCH_MARKET_H
#define FINCH_MARKET_H

#include "sources.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A Market-1501 file name's identity and camera; 0, or -1 with ft_last_error() saying what was
 * expected. */
int market_parse_name(const char *name, int *pid, int *cam);

typedef struct {
    SourceList src;        /* the queries, then the gallery, all SPLIT_TEST; label: the identity */
    int n_query, n_gallery;
    int *cam;              /* each item's camera */
} MarketList;

/* The query and gallery images of root (sorted by name in each folder); a file whose name does not
 * parse is an error naming it. 0, or -1 with ft_last_error(). */
int market_list(const char *root, MarketList *out);
void market_free(MarketList *m);

/* Every item decoded at o->size into one dataset (labels: identities), as decode_splits' test. */
int market_decode(const MarketList *m, const DecodeOpts *o, Dataset *out);

#ifdef __cplusplus
}
#endif

#endif
