/* A model file as `finch eval --model-file` reads it: metadata -> architecture -> weights. */
#include "fuzz.h"
#include "models/model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    MemFile f = memfile_open(data, n);
    ModelConfig cfg;
    Model *m = model_load(f.path, FT_CPU, &cfg);
    model_free(m);
    memfile_close(&f);
    return 0;
}
