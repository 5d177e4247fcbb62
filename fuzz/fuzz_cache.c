/* A prepared dataset cache (`--data cub:FILE`, `finch prepare info FILE`). */
#include "fuzz.h"
#include "data/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    MemFile f = memfile_open(data, n);
    Splits s;
    CacheHeader h;
    if (cache_open(f.path, &s, &h) == 0) splits_free(&s);
    memfile_close(&f);
    return 0;
}
