/* JPEG decoding as CUB and dataset folders use it. */
#include "fuzz.h"
#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    MemFile f = memfile_open(data, n);
    Image im;
    if (jpeg_read(f.path, &im) == 0) image_free(&im);
    memfile_close(&f);
    return 0;
}
