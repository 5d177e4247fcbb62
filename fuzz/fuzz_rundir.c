/* A run directory's JSON files as finch explain and finch prune read them: train.json and the
 * selected push's prototypes.json (the input's two parts, split at "\n--\n"), beside a fixed
 * small prototype network. */
#include "fuzz.h"
#include <string.h>
#include "core/error.h"
#include "core/fileio.h"
#include "models/model_io.h"
#include "tools/run_dir.h"

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    snprintf(dir, sizeof dir, "/tmp/finch-fuzz-run-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
    ModelConfig mc = { .num_classes = 2, .width = 2, .prototypes_per_class = 1, .proto_depth = 4 };
    Model *m = model_create("protopnet-small_cnn", &mc);
    char path[200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!m || model_save(m, &mc, path) != 0) { fprintf(stderr, "%s\n", ft_last_error()); abort(); }
    model_free(m);
    snprintf(path, sizeof path, "%s/push-epoch-1", dir);
    make_dirs(path);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[2];
    size_t len[2];
    int k = split_parts(data, n, part, len, 2);
    char path[200];
    snprintf(path, sizeof path, "%s/train.json", dir);
    write_file_atomic(path, part[0], len[0]);
    snprintf(path, sizeof path, "%s/push-epoch-1/prototypes.json", dir);
    write_file_atomic(path, k > 1 ? part[1] : (const uint8_t *)"", k > 1 ? len[1] : 0);
    RunDir r;
    if (run_dir_open("fuzz", dir, NULL, FT_CPU, false, &r) == 0) {
        char buf[100];
        run_dir_option(&r, "seed");
        run_dir_number(&r, "image-size", 0);
        run_dir_class_name(&r, 0, buf, sizeof buf);
        run_dir_class_name(&r, 5, buf, sizeof buf);
    }
    run_dir_close(&r);
    return 0;
}
