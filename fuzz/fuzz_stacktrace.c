/* fuzz_stacktrace.c: libFuzzer target for stack parsing and grouping (scripts/fuzz.sh builds and runs
 * it): arbitrary bytes are parsed under every language hint, with and without project rules, then
 * fingerprinted, titled and given a culprit. Checks: frames respect the limits, strings are
 * NUL-terminated, outputs fit their buffers, message normalization is bounded and idempotent (when not cut at its maximum). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grouping.h"
#include "stacktrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frames(const struct sx_st_frame *f, size_t n)
{
    if (n > SX_ST_MAX_FRAMES || (n && !f)) abort();
    for (size_t i = 0; i < n; i++) {
        if (f[i].function) (void)strlen(f[i].function);
        if (f[i].module) (void)strlen(f[i].module);
        if (f[i].file) (void)strlen(f[i].file);
        if (f[i].line < 0 || f[i].column < 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sx_arena *a;
    if (!a) a = sx_arena_create(256 * 1024, 8 << 20);
    const char *text = (const char *)data;
    const char *const inc[] = {"*node_modules/@acme/", "com.acme."}, *const exc[] = {"*vendor/"};
    struct sx_st_rules rules = {inc, 2, exc, 1};
    for (int hint = SX_ST_UNKNOWN; hint <= SX_ST_DOTNET; hint++) {
        struct sx_st_trace t;
        sx_arena_reset(a);
        if (sx_st_parse(text, size, (enum sx_st_lang)hint, hint & 1 ? &rules : NULL, a, &t) != SX_OK) abort();
        if (strlen(t.message) > SX_ST_MAX_MESSAGE || t.ncauses > SX_ST_MAX_CAUSES) abort();
        (void)strlen(t.type);
        check_frames(t.frames, t.n);
        for (size_t i = 0; i < t.ncauses; i++) check_frames(t.causes[i].frames, t.causes[i].n);
        struct sx_grouping g;
        if (sx_grouping_fingerprint(NULL, NULL, NULL, &t, &g) != SX_OK || strlen(g.hex) != 32) abort();
        char title[80], culprit[80];
        size_t n = sx_grouping_title(t.type, t.message, title, sizeof(title));
        if (n >= sizeof(title) || strlen(title) != n) abort();
        n = sx_grouping_culprit(&t, culprit, sizeof(culprit));
        if (n >= sizeof(culprit) || strlen(culprit) != n) abort();
    }
    /* Message normalization on the raw bytes: bounded, NUL-terminated, idempotent. */
    static char out[SX_GROUPING_MSG_MAX + 1], again[SX_GROUPING_MSG_MAX + 1];
    size_t n = sx_grouping_normalize_message(text, size, out, sizeof(out));
    if (n > SX_GROUPING_MSG_MAX || out[n] != '\0') abort();
    size_t m = sx_grouping_normalize_message(out, n, again, sizeof(again));
    if (n + 8 < SX_GROUPING_MSG_MAX && (m != n || memcmp(out, again, n) != 0)) abort(); /* a cut result may differ */
    return 0;
}
