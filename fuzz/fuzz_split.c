/* An image folder's split file ("<class>/<file> 1|0" per line) over a fixed folder of two classes
 * with two images each. */
#include "fuzz.h"
#include <string.h>
#include "core/error.h"
#include "core/fileio.h"
#include "data/image.h"
#include "data/sources.h"

static char root[64], split[128];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    snprintf(root, sizeof root, "/tmp/finch-fuzz-split-XXXXXX");
    if (!mkdtemp(root)) { perror("mkdtemp"); abort(); }
    uint8_t rgb[4 * 4 * 3] = { 0 };
    const char *files[] = { "cat/a.png", "cat/b.png", "dog/a.png", "dog/c.png" };
    for (int i = 0; i < 4; i++) {
        char path[200];
        snprintf(path, sizeof path, "%s/%.3s", root, files[i]);
        make_dirs(path);
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        if (png_write_rgb(path, rgb, 4, 4) != 0) { fprintf(stderr, "%s\n", ft_last_error()); abort(); }
    }
    snprintf(split, sizeof split, "%s/split.txt", root);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    write_file_atomic(split, data, n);
    SourceList s;
    if (folder_sources(root, split, &s) == 0) {
        int *idx = malloc((size_t)(s.n + 1) * sizeof *idx);
        sources_split(&s, true, idx);
        sources_split(&s, false, idx);
        free(idx);
        sources_free(&s);
    }
    return 0;
}
