/* CUB-200-2011's text files: images.txt, classes.txt, image_class_labels.txt,
 * train_test_split.txt and bounding_boxes.txt, as the input's parts (split at "\n--\n"). */
#include "fuzz.h"
#include <string.h>
#include "core/error.h"
#include "core/fileio.h"
#include "data/sources.h"

static char root[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    snprintf(root, sizeof root, "/tmp/finch-fuzz-cub-XXXXXX");
    if (!mkdtemp(root)) { perror("mkdtemp"); abort(); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const char *names[] = { "images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt" };
    const uint8_t *part[5];
    size_t len[5];
    int k = split_parts(data, n, part, len, 5);
    for (int i = 0; i < 5; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        if (i < k) write_file_atomic(path, part[i], len[i]);
        else remove(path);
    }
    SourceList s;
    if (cub_sources(root, &s) == 0) sources_free(&s);
    return 0;
}
