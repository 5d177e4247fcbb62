/* Market-1501 file names as finch reads them (data/market.c): the input is one name. */
#include "fuzz.h"
#include <string.h>
#include "data/market.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n > 255) return 0;   /* longer than any file name */
    char name[256];
    memcpy(name, data, n);
    name[n] = 0;
    int pid = 7, cam = 7;
    if (market_parse_name(name, &pid, &cam) == 0 && (pid < -1 || pid > 9999 || cam < 1 || cam > 9)) abort();
    return 0;
}
