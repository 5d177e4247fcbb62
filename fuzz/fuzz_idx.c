/* IDX files (Fashion-MNIST), gzip-compressed or plain, read as images (3 dims) and labels (1). */
#include "fuzz.h"
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    MemFile f = memfile_open(data, n);
    Tensor *t;
    for (int dims = 1; dims <= 3; dims += 2)
        if (idx_read(f.path, dims, &t) == 0) ft_tensor_free(t);
    memfile_close(&f);
    return 0;
}
