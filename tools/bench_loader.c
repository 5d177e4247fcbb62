/* finch bench --loader: how fast the data path feeds a model. A synthetic image folder of JPEGs
 * (500x375, like CUB's photographs) is prepared into a cache at 224x224, then the loader's
 * worker threads assemble batches of 64 from it, with and without online augmentation, while
 * this thread only takes and returns them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "run.h"
#include "bench.h"
#include "core/fileio.h"
#include "core/progress.h"
#include "data/cache.h"
#include "data/image.h"

#define IMAGES 240
#define CLASSES 8

static int write_folder(const char *root) {
    int w = 500, h = 375;
    uint8_t *rgb = ft_xmalloc((size_t)w * h * 3);
    for (int i = 0; i < IMAGES; i++) {
        char dir[1200], path[1300];
        snprintf(dir, sizeof dir, "%s/class%d", root, i % CLASSES);
        if (make_dirs(dir) != 0) { free(rgb); return -1; }
        for (int y = 0; y < h; y++)   /* smooth shapes and some texture, so JPEG has work to do */
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)((x * (c + 1) + y * (i % 7 + 1)) / 4 + ((x * 7 + y * 13 + i) % 23) * 2);
        snprintf(path, sizeof path, "%s/img%03d.jpg", dir, i);
        if (jpeg_write_rgb(path, rgb, w, h, 90) != 0) { free(rgb); return -1; }
    }
    free(rgb);
    return 0;
}

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) { remove(path); return; }
    for (struct dirent *e; (e = readdir(d)); ) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char sub[1200];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    closedir(d);
    remove(path);
}

/* Images per second through the loader over `epochs` epochs of ds. */
static double loader_rate(const Dataset *ds, const AugmentConfig *aug, int workers, int epochs) {
    LoaderConfig c = { .batch = 64, .seed = 1, .shuffle = true, .workers = workers, .augment = aug, .size = 224 };
    Loader *L = loader_new(ds, &c);
    loader_epoch(L, 0);   /* warm: threads started, pages mapped */
    for (Batch *b; (b = loader_next(L)); ) loader_release(L, b);
    double t0 = ft_now();
    int64_t n = 0;
    for (int e = 1; e <= epochs; e++) {
        loader_epoch(L, e);
        for (Batch *b; (b = loader_next(L)); n += b->n) loader_release(L, b);
    }
    double rate = (double)n / (ft_now() - t0);
    loader_free(L);
    return rate;
}

int bench_loader(int workers, const char *json) {
    char root[] = "/tmp/finch-bench-XXXXXX";
    if (!mkdtemp(root)) { fprintf(stderr, "finch bench: cannot make a temporary directory\n"); return 1; }
    char images[1100], cache[1100];
    snprintf(images, sizeof images, "%s/images", root);
    snprintf(cache, sizeof cache, "%s/bench.fds", root);
    int rc = write_folder(images);
    SourceList s;
    if (rc == 0) rc = folder_sources(images, NULL, &s);
    double prep = 0;
    if (rc == 0) {
        DecodeOpts o = { .size = 224, .quiet = true };
        double t0 = ft_now();
        rc = cache_prepare(&s, &o, cache);
        prep = s.n / (ft_now() - t0);
        sources_free(&s);
    }
    Splits sp;
    if (rc == 0) rc = cache_open(cache, &sp, NULL);
    if (rc != 0) { fprintf(stderr, "finch bench: %s\n", ft_last_error()); remove_tree(root); return 1; }
    if (workers <= 0) workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double plain = loader_rate(&sp.train, NULL, workers, 8), aug = loader_rate(&sp.train, &augment_online, workers, 4);
    splits_free(&sp);
    remove_tree(root);
    printf("%-58s %12s\n", "data path (224x224, batches of 64)", "images/s");
    printf("%-58s %12.0f\n", "finch prepare: JPEG 500x375 decode + resize, all cores", prep);
    printf("%-58s %12.0f\n", "loader from the cache, no augmentation", plain);
    printf("%-58s %12.0f\n", "loader from the cache, online augmentation", aug);
    printf("(%d loader threads; target: at least 2,000 images/s with augmentation on 2 cores)\n", workers);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "workers", workers);
    cJSON_AddNumberToObject(doc, "prepare_images_per_s", prep);
    cJSON_AddNumberToObject(doc, "loader_plain_images_per_s", plain);
    cJSON_AddNumberToObject(doc, "loader_augmented_images_per_s", aug);
    rc = json ? run_write_json("bench", json, doc) : 0;
    cJSON_Delete(doc);
    return rc ? 1 : 0;
}
