/* Writes the fuzzers' seed corpora (fuzz/corpus/<reader>/seed-*) with finch's own writers:
 *   build/fuzz_seeds fuzz/corpus
 * Each seed is a small valid file of its kind, so the fuzzers start from inputs that pass the
 * first checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/error.h"
#include "core/fileio.h"
#include "data/cache.h"
#include "data/image.h"
#include "models/model_io.h"
#include "train/checkpoint.h"

static char out[512];

static const char *seed(const char *kind, const char *name) {
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", out, kind);
    if (make_dirs(path) != 0) { fprintf(stderr, "%s\n", ft_last_error()); exit(1); }
    snprintf(path, sizeof path, "%s/%s/seed-%s", out, kind, name);
    return path;
}

static void must(int rc) {
    if (rc != 0) { fprintf(stderr, "make_seeds: %s\n", ft_last_error()); exit(1); }
}

static void idx(const char *name, int ndims, const int *dims, bool gz) {
    unsigned char b[4 + 12 + 64] = { 0, 0, 8, (unsigned char)ndims };
    int count = 1;
    for (int i = 0; i < ndims; i++) {
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
        count *= dims[i];
    }
    size_t n = 4 + 4 * (size_t)ndims;
    for (int i = 0; i < count; i++) b[n++] = (unsigned char)(i % 10);
    const char *path = seed("idx", name);
    if (!gz) { must(write_file_atomic(path, b, n)); return; }
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]); return 2; }
    snprintf(out, sizeof out, "%s", argv[1]);
    /* models: a classifier and a prototype network; their weights are the safetensors seeds too */
    ModelConfig mc = { .num_classes = 3, .width = 1 };
    Model *m = model_create("small_cnn", &mc);
    must(model_save(m, &mc, seed("model", "small_cnn")));
    CheckpointInfo info = { .epochs_done = 1, .n_options = 1, .state = "{\"best_val\": 0.5, \"epochs\": []}" };
    snprintf(info.option_names[0], 32, "lr");
    snprintf(info.option_values[0], 256, "0.001");
    model_free(m);
    ModelConfig pc = { .num_classes = 2, .width = 1, .prototypes_per_class = 1, .proto_depth = 2 };
    m = model_create("protopnet-small_cnn", &pc);
    must(model_save(m, &pc, seed("model", "protopnet")));
    char model_path[700];
    snprintf(model_path, sizeof model_path, "%s", seed("model", "protopnet"));
    must(copy_file(model_path, seed("safetensors", "protopnet")));
    Optimizer *o = optim_new(OPT_ADAM, &m->params, 1e-3, 0);
    must(checkpoint_save(seed("checkpoint", "adam"), m, o, &info));
    optim_free(o);
    model_free(m);
    /* images */
    uint8_t rgb[6 * 5 * 3];
    for (int i = 0; i < (int)sizeof rgb; i++) rgb[i] = (uint8_t)(i * 37);
    must(png_write_rgb(seed("png", "rgb"), rgb, 6, 5));
    must(jpeg_write_rgb(seed("jpeg", "rgb"), rgb, 6, 5, 90));
    /* IDX: labels and images, gzip and plain */
    idx("labels.gz", 1, (int[]){ 8 }, true);
    idx("labels", 1, (int[]){ 8 }, false);
    idx("images.gz", 3, (int[]){ 2, 4, 3 }, true);
    /* a cache, from a folder of two classes */
    char root[600], path[700];
    snprintf(root, sizeof root, "%s/.folder", out);
    const char *files[] = { "a/1.png", "a/2.png", "b/1.png", "b/2.png" };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%.1s", root, files[i]);
        must(make_dirs(path));
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        must(png_write_rgb(path, rgb, 6, 5));
    }
    snprintf(path, sizeof path, "%s/split.txt", root);
    const char *split = "a/1.png 1\na/2.png 0\nb/1.png 1\nb/2.png 0\n";
    must(write_file_atomic(path, split, strlen(split)));
    must(write_file_atomic(seed("split", "split.txt"), split, strlen(split)));
    SourceList s;
    must(folder_sources(root, path, &s));
    DecodeOpts d = { .size = 4, .quiet = true };
    must(cache_prepare(&s, &d, seed("cache", "folder")));
    sources_free(&s);
    /* CUB's five text files in one input, split at "\n--\n" */
    const char *cub = "1 001.A/a1.jpg\n2 002.B/b1.jpg\n\n--\n1 001.A\n2 002.B\n\n--\n1 1\n2 2\n\n--\n1 1\n2 0\n\n--\n"
                      "1 0.0 0.0 4.0 3.0\n2 1.0 1.0 2.0 2.0\n";
    must(write_file_atomic(seed("cub", "two-images"), cub, strlen(cub)));
    /* a run directory's train.json and prototypes.json */
    char run[4096];
    size_t n = 0;
    n += (size_t)snprintf(run + n, sizeof run - n, "{\"model\": \"protopnet-small_cnn\", \"options\": {\"data\": \"synthetic\", "
                          "\"seed\": \"1\"}, \"class_names\": [\"a\", \"b\"], \"selected\": {\"epoch\": 1, \"val_acc\": 0.5, "
                          "\"push_dir\": \"push-epoch-1\"}}\n--\n{\"image_size\": 28, \"prototypes\": [{\"prototype\": 0, "
                          "\"class\": 0, \"image\": 3, \"box\": [0, 0, 4, 4]}, {\"prototype\": 1, \"class\": 1, \"image\": -1}]}");
    must(write_file_atomic(seed("rundir", "protopnet"), run, n));
    /* a benchmark result file (every step's numbers in one) and a transfer.md */
    const char *bench = "{\"settings\": \"fuzz\", \"clean_accuracy\": 0.9, \"test_images\": 100, \"parameters\": 1000, "
                        "\"success_rate\": 0.5, \"distortion\": {\"l2\": {\"mean\": 1.25}, \"linf\": {\"mean\": 0.1}}, "
                        "\"mean_score\": 0.3}\n--\n| source | a |\n|---|---|\n| a | 100.0 |\n";
    must(write_file_atomic(seed("benchmark", "result"), bench, strlen(bench)));
    /* a run's suite result and its train.json */
    const char *report = "{\"suite\": \"paper\", \"rows\": [{\"eps\": 0.05, \"images\": 100, \"clean_acc\": 0.9, "
                         "\"worst_case\": 0.25}, {\"eps\": 0.1, \"images\": 100, \"clean_acc\": 0.9, \"worst_case\": 0}], "
                         "\"warnings\": [\"w\"]}\n--\n{\"test_acc\": 0.88}";
    must(write_file_atomic(seed("report", "suite"), report, strlen(report)));
    const char *names[] = { "0002_c1s1_000451_03.jpg", "-1_c3s2_012345_00.jpg" };
    for (int i = 0; i < 2; i++) must(write_file_atomic(seed("market", i ? "junk" : "person"), names[i], strlen(names[i])));
    printf("make_seeds: seeds written under %s\n", out);
    return 0;
}
