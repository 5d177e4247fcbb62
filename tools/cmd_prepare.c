/* finch prepare: decode a dataset once into a cache file that training memory-maps. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "run.h"
#include "data/cache.h"
#include "data/cub.h"
#include "data/image.h"

static int info(const char *path) {
    Splits s;
    CacheHeader h;
    if (cache_open(path, &s, &h) != 0) { fprintf(stderr, "finch prepare info: %s\n", ft_last_error()); return 1; }
    char when[64];
    time_t t = (time_t)h.created;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("%s: finch dataset cache, format %u, made %s\n  source   %s:%s%s%s\n  images   %u train, %u test, %u offline "
           "copies per training image, at %ux%u (%s, %s)\n  classes  %u (%s ... %s)\n  size     %.1f MiB, checksums good\n",
           path, h.version, when, h.kind, h.root, h.split_file[0] ? " split " : "", h.split_file, h.n_train, h.n_test, h.copies,
           h.size, h.size, h.crop ? "cropped to boxes" : "whole images", h.keep_aspect ? "center-cropped" : "squashed",
           h.num_classes, s.test.class_names[0], s.test.class_names[h.num_classes - 1], h.file_bytes / 1048576.0);
    splits_free(&s);
    return 0;
}

int cmd_prepare(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "";
    if (strcmp(kind, "info") == 0) {
        bool help = argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        if (help || argc != 3 || strncmp(argv[2], "--", 2) == 0) {
            fprintf(help ? stdout : stderr, "usage: finch prepare info FILE\n\nWhat a cache written by finch prepare holds "
                    "(source, splits, size, classes), its checksums verified.\n");
            return help ? 0 : 2;
        }
        return info(argv[2]);
    }
    const char *root = NULL, *out = NULL, *split = NULL, *resize = "squash";
    int size = 224, copies = 0, seed = 1, threads = 0, max_side = 0;
    bool full = false, quiet = false;
    const CliArg args[] = {
        { "root", ARG_STRING, &root, 0, 0, "the dataset directory (CUB_200_2011/, or root/<class>/<image>)" },
        { "out", ARG_STRING, &out, 0, 0, "the cache file to write" },
        { "split", ARG_STRING, &split, 0, 0, "folder: split file, '<class>/<file> 1|0' per image (default ROOT/split.txt if present, else every 5th image of a class is a test image)" },
        { "image-size", ARG_INT, &size, 8, 4096, "side of the stored images" },
        { "full-image", ARG_FLAG, &full, 0, 0, "CUB: whole images instead of their bounding boxes" },
        { "resize", ARG_STRING, &resize, 0, 0, "squash (aspect not kept, as ProtoPNet) | center-crop" },
        { "offline-augment", ARG_INT, &copies, 0, 300, "ProtoPNet's offline augmentation: copies per training image (30)" },
        { "seed", ARG_INT, &seed, 0, 2147483647, "random seed of the offline copies" },
        MAX_IMAGE_SIDE_ARG(max_side),
        { "threads", ARG_INT, &threads, 0, 1024, "decoding threads (0: all cores)" },
        { "quiet", ARG_FLAG, &quiet, 0, 0, "no progress line" },
    };
    const char *summary = "finch prepare cub|folder --root DIR --out FILE: decode, crop and resize every image once\n"
                          "into FILE, which --data cub:FILE / folder:FILE then memory-maps.\n"
                          "finch prepare info FILE: what a cache holds, after checking it.";
    bool known = strcmp(kind, "cub") == 0 || strcmp(kind, "folder") == 0;
    int rc = cli_parse("prepare", summary, known ? argc - 1 : argc, known ? argv + 1 : argv, args, sizeof args / sizeof args[0]);
    if (rc) return rc == 1 ? 0 : 2;
    if (!known) { fprintf(stderr, "finch prepare: say what to prepare: cub, folder or info FILE (got '%s')\n", kind); return 2; }
    if (!root || !out) { fprintf(stderr, "finch prepare: --root and --out are required\n"); return 2; }
    bool center = strcmp(resize, "center-crop") == 0;
    if (!center && strcmp(resize, "squash") != 0) { fprintf(stderr, "finch prepare: --resize must be squash or center-crop, got '%s'\n", resize); return 2; }
    run_set_threads(threads);
    if (max_side) image_set_max_side(max_side);
    char absolute[4096];   /* the cache remembers its source to notice changes: from anywhere */
    if (realpath(root, absolute)) root = absolute;
    char default_split[4200];
    snprintf(default_split, sizeof default_split, "%s/split.txt", root);
    if (kind[0] == 'f' && !split && cache_is_file(default_split)) split = default_split;
    if (kind[0] == 'f' && !split)
        fprintf(stderr, "finch prepare: %s not found: every 5th image of each class (by name) is held out for testing; "
                "write that file (or give --split) to choose the split\n", default_split);
    SourceList s;
    if ((kind[0] == 'c' ? cub_sources(root, &s) : folder_sources(root, split, &s)) != 0) {
        fprintf(stderr, "finch prepare: %s\n", ft_last_error());
        return 1;
    }
    DecodeOpts o = { .size = size, .crop = !full, .keep_aspect = center, .copies = copies, .seed = (uint64_t)seed, .quiet = quiet };
    fprintf(stderr, "finch prepare: %s %s: %d images, %d classes, into %s at %dx%d%s\n", kind, root, s.n, s.num_classes, out,
            size, size, copies ? " with offline copies" : "");
    double t0 = ft_now();
    rc = cache_prepare(&s, &o, out);
    double took = ft_now() - t0;
    if (rc != 0) fprintf(stderr, "finch prepare: %s\n", ft_last_error());
    else printf("prepared %s: %d images decoded in %.1f s (%.0f images/s)\n", out, s.n, took, s.n / (took > 0 ? took : 1));
    sources_free(&s);
    return rc ? 1 : info(out);
}
