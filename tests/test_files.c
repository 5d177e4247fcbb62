/* Reading and writing files: IDX (Fashion-MNIST), safetensors, models; every error path names
 * the file and what was wrong. */
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include "test.h"
#include "core/safetensors.h"
#include "core/fileio.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "data/cache.h"
#include "data/cub.h"
#include "data/image.h"
#include "data/sources.h"
#include "models/model_io.h"

static bool error_mentions(const char *a, const char *b) {
    const char *e = ft_last_error();
    bool ok = strstr(e, a) && (!b || strstr(e, b));
    if (!ok) printf("    error was: %s\n", e);
    return ok;
}

TEST(idx_reader_accepts_good_files_and_names_bad_ones) {
    Tensor *t;
    char *good = test_path("good.gz");
    test_write_idx(good, 3, (int[]){ 4, 2, 3 }, 24, true);
    CHECK(idx_read(good, 3, &t) == 0, "valid gz IDX file refused: %s", ft_last_error());
    CHECK(t->shape.d[0] == 4 && t->shape.d[2] == 3 && ft_u8(t)[13] == 3, "wrong contents");
    ft_tensor_free(t);
    char *plain = test_path("plain");
    test_write_idx(plain, 1, (int[]){ 5 }, 5, false);
    CHECK(idx_read(plain, 1, &t) == 0, "uncompressed IDX refused: %s", ft_last_error());
    ft_tensor_free(t);

    char *trunc = test_path("trunc.gz");
    test_write_idx(trunc, 3, (int[]){ 4, 2, 3 }, 20, true);
    CHECK(idx_read(trunc, 3, &t) != 0 && !t && error_mentions(trunc, "truncated"), "truncated file");
    char *extra = test_path("extra.gz");
    test_write_idx(extra, 1, (int[]){ 5 }, 9, true);
    CHECK(idx_read(extra, 1, &t) != 0 && error_mentions(extra, "unexpected data"), "trailing data");
    CHECK(idx_read(good, 1, &t) != 0 && error_mentions(good, "expected 00 00 08 01"), "wrong rank");
    char *missing = test_path("nope.gz");
    CHECK(idx_read(missing, 3, &t) != 0 && error_mentions(missing, "cannot open"), "missing file");
    char *corrupt = test_path("corrupt.gz");
    test_write_idx(corrupt, 3, (int[]){ 40, 20, 30 }, 24000, true);
    FILE *f = fopen(corrupt, "r+b");
    fseek(f, 40, SEEK_SET);
    fwrite("garbage-garbage-garbage", 1, 23, f);
    fclose(f);
    CHECK(idx_read(corrupt, 3, &t) != 0 && error_mentions(corrupt, NULL), "corrupt gzip stream accepted");
}

TEST(fashion_mnist_loader_checks_consistency) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fm", test_tmpdir());
    make_dirs(dir);
    char ip[600], lp[600];
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", dir);
    test_write_idx(ip, 3, (int[]){ 6, 28, 28 }, 6 * 784, true);
    test_write_idx(lp, 1, (int[]){ 5 }, 5, true);
    Dataset ds;
    CHECK(fashion_mnist_load(dir, false, &ds) != 0 && error_mentions("has 5 labels", "6 images"), "count mismatch");
    test_write_idx(lp, 1, (int[]){ 6 }, 6, true);
    CHECK(fashion_mnist_load(dir, false, &ds) == 0, "valid files refused: %s", ft_last_error());
    CHECK(dataset_size(&ds) == 6 && ds.images->shape.d[1] == 1 && ft_i32(ds.labels)[5] == 5, "wrong dataset");
    Tensor *x = ft_tensor_new(FT_F32, SHAPE(2, 1, 28, 28), FT_CPU), *y = ft_tensor_new(FT_I32, SHAPE(2), FT_CPU);
    dataset_batch(&ds, (int32_t[]){ 4, 1 }, 2, x, y);
    CHECK(ft_i32(y)[0] == 4 && fabsf(ft_f32(x)[0] - (4 * 784 % 10) / 255.0f) < 1e-7, "batch gather");
    ft_tensor_free(x); ft_tensor_free(y);
    dataset_free(&ds);
}

TEST(real_fashion_mnist_when_installed) {
    Dataset tr, te;
    if (fashion_mnist_load(FASHION_MNIST_DIR, true, &tr) != 0) SKIP("not installed: %s", ft_last_error());
    CHECK(fashion_mnist_load(FASHION_MNIST_DIR, false, &te) == 0, "%s", ft_last_error());
    CHECK(dataset_size(&tr) == 60000 && dataset_size(&te) == 10000, "sizes %d / %d", dataset_size(&tr), dataset_size(&te));
    int counts[10] = { 0 };
    for (int i = 0; i < 10000; i++) counts[ft_i32(te.labels)[i]]++;
    for (int c = 0; c < 10; c++) CHECK(counts[c] == 1000, "class %d has %d test images", c, counts[c]);
    dataset_free(&tr);
    dataset_free(&te);
}

/* An IDX header's size claim is not trusted with memory: a small file announcing gigabytes is
 * refused from its size (plain) or reads only what the stream holds (gzip); a real multi-megabyte
 * file still reads whole through the growing buffer. */
TEST(idx_claims_beyond_the_file_are_refused_without_allocating_them) {
    Tensor *t = NULL;
    char *plain = test_path("claims.idx"), *gz = test_path("claims.idx.gz");
    test_write_idx(plain, 3, (int[]){ 1 << 28, 8, 8 }, 100, false);   /* 17 GB announced, 100 bytes there */
    CHECK(idx_read(plain, 3, &t) != 0 && !t && error_mentions(plain, "announces 17179869184 bytes of data, the file has"),
          "a plain file's claim");
    test_write_idx(gz, 3, (int[]){ 1 << 28, 8, 8 }, 100, true);
    CHECK(idx_read(gz, 3, &t) != 0 && !t && error_mentions(gz, "more than a gzip file of"), "a gzip file's claim");
    test_write_idx(gz, 3, (int[]){ 600, 8, 8 }, 100, true);   /* 38,400 bytes announced: within a 42-byte gzip's reach, not there */
    CHECK(idx_read(gz, 3, &t) != 0 && !t && error_mentions(gz, "truncated: expected 38400 bytes"), "a short gzip stream");
    /* found by fuzz_idx: the product went on past a refused dimension and overflowed */
    test_write_idx(plain, 3, (int[]){ 16777217, 255, (int)0xffff0b03u }, 4, false);
    CHECK(idx_read(plain, 3, &t) != 0 && !t && error_mentions(plain, "dimension 2 has size 4294904579"), "a huge third dimension");
    test_write_idx(gz, 3, (int[]){ 3000, 30, 40 }, 3000 * 30 * 40, true);   /* 3.6 MB: three growths of the buffer */
    CHECK(idx_read(gz, 3, &t) == 0 && t->shape.d[0] == 3000 && ft_u8(t)[3599999] == 3599999 % 10, "a large file: %s", ft_last_error());
    ft_tensor_free(t);
}

TEST(safetensors_round_trip_and_validation) {
    Tensor *a = ft_tensor_new(FT_F32, SHAPE(2, 3), FT_CPU), *b = ft_tensor_new(FT_F32, SHAPE(5), FT_CPU);
    for (int i = 0; i < 6; i++) ft_f32(a)[i] = (float)i * 0.5f;
    for (int i = 0; i < 5; i++) ft_f32(b)[i] = -(float)i;
    char *path = test_path("t.safetensors");
    const char *names[] = { "layer.weight", "layer.bias" }, *k[] = { "arch" }, *v[] = { "x" };
    CHECK(st_write(path, 2, names, (Tensor *[]){ a, b }, 1, k, v) == 0, "%s", ft_last_error());
    SafeTensors st;
    CHECK(st_open(path, &st) == 0, "%s", ft_last_error());
    const StEntry *e = st_find(&st, "layer.weight");
    CHECK(e && ft_shape_eq(e->shape, a->shape) && strcmp(st_meta(&st, "arch"), "x") == 0, "header contents");
    CHECK((st.data_start % 8) == 0, "data section not 8-byte aligned");
    Tensor *r = ft_tensor_new(FT_F32, SHAPE(2, 3), FT_CPU);
    CHECK(st_read_into(&st, e, r) == 0 && ft_f32(r)[5] == 2.5f, "read back %g", ft_f32(r)[5]);
    size_t size = st.size;
    unsigned char *bytes = malloc(size);
    memcpy(bytes, st.file, size);
    st_close(&st);

    char *bad = test_path("bad.safetensors");
    write_file_atomic(bad, bytes, size - 3);   /* truncated data */
    CHECK(st_open(bad, &st) != 0 && error_mentions(bad, "outside"), "truncated data section accepted");
    write_file_atomic(bad, bytes, 5);
    CHECK(st_open(bad, &st) != 0 && error_mentions(bad, "too short"), "5-byte file accepted");
    unsigned char *big = malloc(size);
    memcpy(big, bytes, size);
    big[6] = 1;   /* header length beyond the file */
    write_file_atomic(bad, big, size);
    CHECK(st_open(bad, &st) != 0 && error_mentions(bad, "header length"), "huge header length accepted");
    memcpy(big, bytes, size);
    char *hdr = (char *)big + 8, *dt = strstr(hdr, "F32");
    dt[0] = 'Q';   /* "Q32": not a dtype */
    write_file_atomic(bad, big, size);
    CHECK(st_open(bad, &st) != 0 && error_mentions(bad, "Q32"), "unknown dtype accepted");
    free(big);
    free(bytes);
    ft_tensor_free(a); ft_tensor_free(b); ft_tensor_free(r);
}

/* A header as a file's bytes: 8-byte length, JSON, then `data` zero bytes. */
static unsigned char *st_bytes(const char *json, size_t data, size_t *n) {
    size_t h = strlen(json);
    *n = 8 + h + data;
    unsigned char *b = calloc(1, *n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, json, h);
    return b;
}

/* Headers that crashed the reader, or could make it allocate or loop without bound, are refused
 * with a message that says what is wrong. */
TEST(safetensors_hostile_headers_are_refused) {
    static const struct { const char *json, *expect; } cases[] = {
        { "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\"},\"__metadata__\":{\"c\":\"3\",\"d\":\"4\",\"e\":\"5\"}}", "__metadata__ twice" },
        { "{\"__metadata__\":[\"a\",\"b\"]}", "not an object" },
        { "{\"__metadata__\":{\"a\":[1]}}", "not a string" },
        { "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
          "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "'w' twice" },
        { "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647,4],\"data_offsets\":[0,0]}}", "needs" },
        { "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", "outside" },
        { "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4.5]}}", "outside" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "overlap" },
        { "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "bad size" },
        { "[1,2,3]", "not a JSON object" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        unsigned char *b = st_bytes(cases[i].json, 16, &n);
        SafeTensors st;
        CHECK(st_open_memory(b, n, "hostile.safetensors", &st) != 0 && error_mentions("hostile.safetensors", cases[i].expect),
              "case %zu (%s): %s", i, cases[i].json, ft_last_error());
        free(b);
    }
    char name[200], json[400];
    memset(name, 'n', 150);
    name[150] = 0;
    snprintf(json, sizeof json, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", name);
    size_t n;
    unsigned char *b = st_bytes(json, 4, &n);
    SafeTensors st;
    CHECK(st_open_memory(b, n, "long.safetensors", &st) != 0 && error_mentions("long.safetensors", "150 characters"),
          "a name past 127 characters is refused, not cut (two could become one): %s", ft_last_error());
    free(b);
    b = st_bytes("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8, &n);
    CHECK(st_open_memory(b, n, "ok.safetensors", &st) == 0, "%s", ft_last_error());
    CHECK(st_find(&st, "a") == &st.entries[1] && st_find(&st, "b") == &st.entries[0] && st_find(&st, "e") && !st_find(&st, "c"),
          "st_find by name over entries kept in the header's order");
    st_close(&st);
    free(b);
}

/* A small model file whose metadata describes a huge network is refused before the network is
 * built (a 150-byte file naming resnet152 at width 4096 used to spend minutes initialising it),
 * as is one whose sizes no network finch trains has. */
TEST(model_files_describing_huge_models_are_refused_before_building) {
    static const struct { const char *meta, *expect; } cases[] = {
        { "\"arch\":\"resnet152\",\"num_classes\":\"10\",\"width\":\"4096\"", "describes resnet152 with" },
        { "\"arch\":\"resnet18\",\"num_classes\":\"10\",\"width\":\"0\",\"blocks\":\"100000,1,1,1\"", "100000 blocks in stage 1" },
        { "\"arch\":\"protopnet-small_cnn\",\"num_classes\":\"100000\",\"prototypes_per_class\":\"100000\"", "10000000000 prototypes" },
        { "\"arch\":\"vgg11\",\"num_classes\":\"10\",\"vgg_cfg\":\"100000,M\"", "100000 channels" },
    };
    for (int i = 0; i < 4; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"__metadata__\":{\"format\":\"finch\",%s},\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
                 "\"data_offsets\":[0,4]}}", cases[i].meta);
        size_t n;
        unsigned char *b = st_bytes(json, 4, &n);
        char *path = test_path("huge.safetensors");
        write_file_atomic(path, b, n);
        free(b);
        double t0 = ft_now();
        CHECK(!model_load(path, FT_CPU, NULL) && error_mentions(path, cases[i].expect), "case %d", i);
        CHECK(ft_now() - t0 < 2, "case %d took %.1f s to refuse", i, ft_now() - t0);
    }
    /* the budget counts what the file holds: a real small model within it loads */
    ModelConfig mc = { .num_classes = 10, .width = 2, .seed = 7, .device = FT_CPU };
    Model *m = model_create("resnet18", &mc);
    char *path = test_path("r18.safetensors");
    CHECK(model_save(m, &mc, path) == 0, "%s", ft_last_error());
    model_free(m);
    CHECK((m = model_load(path, FT_CPU, NULL)) != NULL, "%s", ft_last_error());
    model_free(m);
}

TEST(model_save_load_is_exact_and_strict) {
    ModelConfig mc = { .num_classes = 10, .width = 4, .seed = 7, .device = FT_CPU };
    Model *m = model_create("small_cnn", &mc);
    ft_fill_(params_find(&m->params, "bn1.running_mean")->t, 0.25);
    char *path = test_path("m.safetensors");
    CHECK(model_save(m, &mc, path) == 0, "%s", ft_last_error());
    Model *r = model_load(path, FT_CPU, NULL);
    CHECK(r, "%s", ft_last_error());
    for (int i = 0; i < m->params.n; i++) {
        Tensor *a = m->params.items[i].t, *b = r->params.items[i].t;
        CHECK(memcmp(ft_ptr(a), ft_ptr(b), (size_t)a->numel * 4) == 0, "%s differs after loading", m->params.items[i].name);
    }
    ModelConfig wide = { .num_classes = 10, .width = 8, .seed = 7, .device = FT_CPU };
    Model *w = model_create("small_cnn", &wide);
    CHECK(model_load_weights(w, path, true, NULL) != 0 && error_mentions("conv1.weight", "expects [8, 1, 3, 3]"), "shape mismatch");
    LoadReport rep;
    /* widths 4 and 8 share only fc1.bias and fc2.*: 3 tensors load, 11 are mis-shaped */
    CHECK(model_load_weights(w, path, false, &rep) == 0 && rep.misshaped == 11 && rep.loaded == 3 &&
          rep.missing == 0 && rep.unexpected == 0, "non-strict load: %d loaded, %d missing, %d unexpected, %d mis-shaped",
          rep.loaded, rep.missing, rep.unexpected, rep.misshaped);
    const char *keys[] = { "arch", "num_classes" }, *vals[] = { "small_cnn", "-3" };
    char *forged = test_path("forged.safetensors");
    CHECK(st_write(forged, 1, (const char *[]){ "conv1.weight" }, &params_find(&m->params, "conv1.weight")->t, 2, keys, vals) == 0,
          "%s", ft_last_error());
    CHECK(!model_load(forged, FT_CPU, NULL) && error_mentions(forged, "num_classes '-3'"), "forged metadata accepted");
    Model *bad = model_create("resnet999", &mc);
    CHECK(!bad && error_mentions("unknown model 'resnet999'", "small_cnn"), "unknown architecture");
    model_free(m); model_free(r); model_free(w);
}

/* A safetensors file with one entry per dtype, bytes written by hand. */
TEST(safetensors_reads_f16_bf16_f64_and_i64) {
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]},"
                      "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]}}";
    size_t hl = strlen(hdr);
    unsigned char buf[512] = { 0 };
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(hl >> (8 * k));
    memcpy(buf + 8, hdr, hl);
    unsigned char *d = buf + 8 + hl;
    const uint16_t halves[] = { 0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0x3555 };   /* 1, -2.5, 65504, 2^-24, inf, 0.33325 */
    const uint16_t bf[] = { 0x3F80, 0xC020 };                                         /* 1, -2.5 */
    memcpy(d, halves, 12);
    memcpy(d + 12, bf, 4);
    double dv = 0.1;
    int64_t iv = 12345;
    memcpy(d + 16, &dv, 8);
    memcpy(d + 24, &iv, 8);
    char *path = test_path("dtypes.safetensors");
    CHECK(write_file_atomic(path, buf, 8 + hl + 32) == 0, "%s", ft_last_error());
    SafeTensors st;
    CHECK(st_open(path, &st) == 0, "%s", ft_last_error());
    Tensor *h = ft_tensor_new(FT_F32, SHAPE(6), FT_CPU), *b = ft_tensor_new(FT_F32, SHAPE(2), FT_CPU);
    Tensor *f = ft_tensor_new(FT_F32, SHAPE(1), FT_CPU), *i = ft_tensor_new(FT_I32, SHAPE(1), FT_CPU);
    CHECK(st_read_into(&st, st_find(&st, "h"), h) == 0 && st_read_into(&st, st_find(&st, "b"), b) == 0 &&
          st_read_into(&st, st_find(&st, "d"), f) == 0 && st_read_into(&st, st_find(&st, "i"), i) == 0, "%s", ft_last_error());
    const float want[] = { 1.0f, -2.5f, 65504.0f, 5.9604645e-8f, INFINITY, 0.33325195f };
    for (int k = 0; k < 6; k++) CHECK(ft_f32(h)[k] == want[k], "F16 element %d read as %.9g, expected %.9g", k, ft_f32(h)[k], want[k]);
    CHECK(ft_f32(b)[0] == 1.0f && ft_f32(b)[1] == -2.5f, "BF16 read as %g %g", ft_f32(b)[0], ft_f32(b)[1]);
    CHECK(ft_f32(f)[0] == 0.1f && ft_i32(i)[0] == 12345, "F64 %.9g, I64 %d", ft_f32(f)[0], ft_i32(i)[0]);
    CHECK(st_read_into(&st, st_find(&st, "i"), f) != 0 && error_mentions("I64", "float32"), "an integer entry read into a float tensor");
    st_close(&st);
    ft_tensor_free(h); ft_tensor_free(b); ft_tensor_free(f); ft_tensor_free(i);
}

/* A pipe or a device in place of a file is refused at once by every reader, never read forever:
 * an alarm turns a hang into a failure. */
TEST(readers_refuse_pipes_and_devices_without_blocking) {
    char *fifo = test_path("fifo");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    alarm(20);
    const char *paths[] = { fifo, "/dev/zero" };
    for (int i = 0; i < 2; i++) {
        const char *p = paths[i], *why = i == 0 ? "a pipe" : "a device";
        SafeTensors st;
        Tensor *t = NULL;
        Splits sp;
        Image im;
        CHECK(st_open(p, &st) != 0 && error_mentions(p, why), "safetensors: %s", ft_last_error());
        CHECK(!read_file(p, NULL) && error_mentions(p, why), "read_file: %s", ft_last_error());
        CHECK(cache_open(p, &sp, NULL) != 0 && error_mentions(p, why), "cache: %s", ft_last_error());
        CHECK(idx_read(p, 1, &t) != 0 && error_mentions(p, why), "idx: %s", ft_last_error());
        CHECK(image_read(p, &im) != 0 && error_mentions(p, why), "image: %s", ft_last_error());
        CHECK(png_read(p, &im) != 0 && jpeg_read(p, &im) != 0 && error_mentions(p, why), "png, jpeg: %s", ft_last_error());
    }
    /* a dataset folder whose split file, or a CUB folder whose images.txt, is a pipe */
    char *root = test_path("fifo-folder"), dir[600], img[700], split[700];
    snprintf(dir, sizeof dir, "%s/cls", root);
    CHECK(make_dirs(dir) == 0, "%s", ft_last_error());
    snprintf(img, sizeof img, "%s/a.png", dir);
    uint8_t rgb[12] = { 0 };
    CHECK(png_write_rgb(img, rgb, 2, 2) == 0, "%s", ft_last_error());
    snprintf(split, sizeof split, "%s/split.txt", root);
    CHECK(mkfifo(split, 0600) == 0, "mkfifo %s", split);
    SourceList s;
    CHECK(folder_sources(root, split, &s) != 0 && error_mentions(split, "a pipe"), "split file: %s", ft_last_error());
    snprintf(split, sizeof split, "%s/images.txt", root);
    CHECK(mkfifo(split, 0600) == 0, "mkfifo %s", split);
    CubIndex ix;
    CHECK(cub_index_load(root, &ix) != 0 && error_mentions(split, "a pipe"), "CUB: %s", ft_last_error());
    alarm(0);
}

/* A successful atomic write removes the temporary files of writers of the same file that were
 * killed (their pid no longer runs), and keeps a running writer's; make_dirs refuses a file. */
TEST(atomic_writes_clean_up_after_killed_writers) {
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char *path = test_path("result.json"), stale[600], live[600], other[600];
    snprintf(stale, sizeof stale, "%s.tmp.%d", path, (int)dead);
    snprintf(live, sizeof live, "%s.tmp.%d", path, (int)getppid());
    snprintf(other, sizeof other, "%s.tmpx.%d", path, (int)dead);
    const char *files[] = { stale, live, other };
    for (int i = 0; i < 3; i++) CHECK(write_file_atomic(files[i], "x", 1) == 0, "%s", ft_last_error());
    CHECK(write_file_atomic(path, "{}", 2) == 0, "%s", ft_last_error());
    CHECK(access(stale, F_OK) != 0, "the killed writer's %s is still there", stale);
    CHECK(access(live, F_OK) == 0 && access(other, F_OK) == 0, "a running writer's temporary file, or another name, was removed");
    char *sub = test_path("result.json/sub");
    CHECK(make_dirs(sub) != 0 && error_mentions("result.json", "exists and is not a directory"), "make_dirs through a file");
}

/* A write that runs out of room (a file-size limit stands in for a full disk: same code path,
 * EFBIG for ENOSPC) fails naming the file, leaves the previous version intact and no temporary
 * file behind. Checked in a child, whose limit cannot leak into the other tests. */
TEST(a_failed_write_names_the_file_and_keeps_the_old_one) {
    char *path = test_path("kept.safetensors");
    CHECK(write_file_atomic(path, "old", 3) == 0, "%s", ft_last_error());
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { 4096, 4096 };
        setrlimit(RLIMIT_FSIZE, &rl);
        static char big[65536];
        int rc = write_file_atomic(path, big, sizeof big);
        _exit(rc != 0 && strstr(ft_last_error(), "kept.safetensors: write failed: File too large") ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the failed write was not reported naming the file");
    size_t n;
    char *back = read_file(path, &n);
    CHECK(back && n == 3 && memcmp(back, "old", 3) == 0, "the previous version was damaged");
    free(back);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)pid);
    CHECK(access(tmp, F_OK) != 0, "%s was left behind", tmp);
}
