/* A checkpoint's metadata as `finch train --resume` reads it first. */
#include "fuzz.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    MemFile f = memfile_open(data, n);
    CheckpointInfo info;
    if (checkpoint_read_info(f.path, &info) == 0) checkpoint_info_free(&info);
    memfile_close(&f);
    return 0;
}
