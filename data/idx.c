/* IDX files (yann.lecun.com/exdb/mnist): magic 0x00 0x00 <type> <ndims>, ndims big-endian
 * uint32 sizes, then the data. finch reads type 0x08 (unsigned byte). zlib's gzread reads both
 * gzip-compressed and plain files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <unistd.h>
#include "dataset.h"
#include "core/fileio.h"

/* Reads n bytes of `what`, whose first `done` of `whole` bytes are already in (for the message). */
static int read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what, size_t done, size_t whole) {
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int k = gzread(f, (char *)buf + got, chunk);
        if (k < 0) {
            int errnum;
            const char *msg = gzerror(f, &errnum);
            return ft_error("%s: corrupt file while reading %s: %s", path, what, msg);
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    if (got < n)
        return ft_error("%s: truncated: expected %zu bytes of %s, found %zu", path, whole, what, done + got);
    return 0;
}

int idx_read(const char *path, int ndims, Tensor **out) {
    *out = NULL;
    size_t file_size;
    int fd = open_regular(path, &file_size);
    if (fd < 0) return -1;
    gzFile f = gzdopen(fd, "rb");
    if (!f) { close(fd); return ft_error("%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM)); }
    unsigned char hdr[4], dims_be[4 * FT_MAX_DIMS];
    int rc = read_exact(f, path, hdr, 4, "header", 0, 4);
    if (rc == 0 && (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08 || hdr[3] != ndims))
        rc = ft_error("%s: not an IDX file of unsigned bytes with %d dimensions (magic %02x %02x %02x %02x, "
                      "expected 00 00 08 %02x)", path, ndims, hdr[0], hdr[1], hdr[2], hdr[3], ndims);
    if (rc == 0) rc = read_exact(f, path, dims_be, 4 * (size_t)ndims, "dimensions", 0, 4 * (size_t)ndims);
    Shape s = { .ndim = ndims };
    int64_t total = 1;
    for (int i = 0; rc == 0 && i < ndims; i++) {
        uint32_t d = (uint32_t)dims_be[4 * i] << 24 | (uint32_t)dims_be[4 * i + 1] << 16 |
                     (uint32_t)dims_be[4 * i + 2] << 8 | dims_be[4 * i + 3];
        if (d == 0 || d > (1u << 28)) { rc = ft_error("%s: dimension %d has size %u (expected 1..2^28)", path, i, d); break; }
        s.d[i] = (int)d;
        total *= d;
        if (total > ((int64_t)1 << 34)) rc = ft_error("%s: %lld elements is implausibly large", path, (long long)total);
    }
    /* the header's claim is not trusted with memory: the buffer grows with the data actually read
     * (a gzip stream can still expand about 1000-fold, so a claim is capped by the file too) */
    Tensor *t = NULL;
    if (rc == 0 && !gzdirect(f) && (uint64_t)total / 1032 > file_size + 1)
        rc = ft_error("%s: its header announces %lld bytes of data, more than a gzip file of %zu bytes can hold", path,
                      (long long)total, file_size);
    if (rc == 0 && gzdirect(f) && (uint64_t)total > file_size)
        rc = ft_error("%s: truncated: its header announces %lld bytes of data, the file has %zu bytes", path, (long long)total, file_size);
    uint8_t *buf = NULL;
    size_t got = 0;
    for (size_t cap = 0; rc == 0 && got < (size_t)total; ) {
        cap = cap ? cap * 2 : 1 << 20;
        if (cap > (size_t)total) cap = (size_t)total;
        buf = ft_xrealloc(buf, cap);
        rc = read_exact(f, path, buf + got, cap - got, "data", got, (size_t)total);
        got = cap;
    }
    if (rc == 0) t = ft_tensor_wrap(FT_U8, s, buf, free, buf);
    else free(buf);
    char extra;
    if (rc == 0 && gzread(f, &extra, 1) != 0)
        rc = ft_error("%s: unexpected data after the %lld elements its header announces", path, (long long)total);
    gzclose(f);
    if (rc != 0) { ft_tensor_free(t); return rc; }
    *out = t;
    return 0;
}

const char *const fashion_mnist_classes[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

int fashion_mnist_load(const char *dir, bool train, Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    char ip[1024], lp[1024];
    const char *split = train ? "train" : "t10k";
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    Tensor *img = NULL, *lab = NULL;
    if (idx_read(ip, 3, &img) != 0) return -1;
    if (idx_read(lp, 1, &lab) != 0) { ft_tensor_free(img); return -1; }
    int n = img->shape.d[0];
    int rc = 0;
    if (lab->shape.d[0] != n)
        rc = ft_error("%s has %d labels but %s has %d images", lp, lab->shape.d[0], ip, n);
    for (int i = 0; rc == 0 && i < n; i++)
        if (ft_u8(lab)[i] > 9) rc = ft_error("%s: label %d of sample %d is outside 0..9", lp, ft_u8(lab)[i], i);
    if (rc != 0) { ft_tensor_free(img); ft_tensor_free(lab); return rc; }
    ds->images = ft_tensor_view(img, 0, SHAPE(n, 1, img->shape.d[1], img->shape.d[2]));
    ft_tensor_free(img);
    ds->labels = ft_tensor_new(FT_I32, SHAPE(n), FT_CPU);
    for (int i = 0; i < n; i++) ft_i32(ds->labels)[i] = ft_u8(lab)[i];
    ft_tensor_free(lab);
    ds->num_classes = 10;
    ds->class_names = fashion_mnist_classes;
    snprintf(ds->name, sizeof ds->name, "fashion-mnist/%s", split);
    return 0;
}
