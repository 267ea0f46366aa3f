/* fuzz_sqlnorm.c: libFuzzer target for the SQL normalizer (scripts/fuzz.sh builds and runs it):
 * the output is never longer than the input, always NUL-terminated, fits any room given, and
 * normalizing it again never grows it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlnorm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = malloc(size + 1), *again = malloc(size + 1), small[17];
    if (!out || !again) abort();
    size_t n = sx_sqlnorm((const char *)data, size, out, size + 1);
    if (n > size || out[n] != '\0') abort();
    size_t m = sx_sqlnorm(out, n, again, n + 1);
    if (m > n || again[m] != '\0') abort();
    size_t k = sx_sqlnorm((const char *)data, size, small, sizeof(small));
    if (k >= sizeof(small) || small[k] != '\0') abort();
    free(out);
    free(again);
    return 0;
}
