/* safetensors: the header parser over memory, then every tensor read as finch reads it. */
#include "fuzz.h"
#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    SafeTensors st;
    if (st_open_memory(data, n, "fuzz.safetensors", &st) != 0) return 0;
    for (int i = 0; i < st.n; i++) {
        const StEntry *e = &st.entries[i];
        if (e->shape.ndim == 0 || (e->end - e->begin) > (1u << 24)) continue;
        Tensor *t = ft_tensor_new(e->dtype[0] == 'I' ? FT_I32 : FT_F32, e->shape, FT_CPU);
        st_read_into(&st, e, t);
        ft_tensor_free(t);
    }
    st_meta(&st, "arch");
    st_find(&st, "x");
    st_close(&st);
    return 0;
}
