/* fuzz_scrub.c: libFuzzer target for the secret scan and the attribute rules parser (scripts/fuzz.sh):
 * the first byte picks the part. Secret scan: any bytes either come back unchanged (NULL) or as a
 * copy that no longer holds what was found, never longer than the input plus the replacements.
 * Rules: any JSON either parses into at most SX_SCRUB_MAX_RULES rules or fails with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sx_arena *a;
    if (size < 1 || size > 65536) return 0;
    if (!a) a = sx_arena_create(64 * 1024, 8u << 20);
    sx_arena_reset(a);
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        char err[300];
        struct sx_scrub_rules *r = sx_scrub_rules_parse(s, n, err, sizeof(err));
        if (!r && !err[0]) abort();
        if (r && r->n > SX_SCRUB_MAX_RULES) abort();
        sx_scrub_rules_destroy(r);
        return 0;
    }
    /* Values are C strings (protobuf-c): scan up to the first NUL, as ingest does. */
    n = strnlen(s, n);
    int failed = 0;
    char *out = sx_scrub_secret_value(s, n, a, &failed);
    if (out) {
        size_t m = strlen(out);
        if (!strstr(out, SX_SCRUB_REDACTED)) abort();
        /* At most 32 replacements, each no longer than the marker. */
        if (m > n + 32 * strlen(SX_SCRUB_REDACTED)) abort();
        /* The output is a valid input too. */
        (void)sx_scrub_secret_value(out, m, a, &failed);
    }
    return 0;
}
