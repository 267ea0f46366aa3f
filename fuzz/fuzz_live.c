/* fuzz_live.c: libFuzzer target for the live entry parser and SSE formatter of sextant-sse
 * (lib/live.c; scripts/fuzz.sh builds and runs it). The first byte picks the type field, the
 * rest is the items field: any bytes either become an event whose SSE text is one frame
 * ending in a blank line, or are refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[4] = {"spans", "logs", "metrics", "issue.new"};
    if (size < 1 || size > SX_LIVE_ITEMS_MAX) return 0;
    const char *names[5] = {"type", "total", "items", "title", "shortId"};
    const char *vals[5] = {types[data[0] & 3], "3", (const char *)data + 1, (const char *)data + 1, "X-1"};
    size_t nl[5], vl[5] = {strlen(vals[0]), 1, size - 1, size - 1, 3};
    for (int i = 0; i < 5; i++) nl[i] = strlen(names[i]);
    struct sx_live_event *ev = sx_live_event_create("1-1", 5, names, nl, vals, vl);
    if (!ev) return 0;
    struct sx_live_filter f;
    char err[128];
    struct sx_buf out;
    sx_buf_init(&out, (size_t)4 << 20);
    if (sx_live_filter_parse(&f, NULL, (data[0] & 4) ? "api" : NULL, (data[0] & 8) ? "WARN" : NULL,
                             (data[0] & 16) ? "a" : NULL, err, sizeof(err)) != SX_OK)
        abort();
    int rc = sx_live_format(&out, ev, &f);
    if (rc == 1 && (out.len < 2 || strcmp(out.data + out.len - 2, "\n\n") != 0)) abort();
    /* one frame: no blank line before its end */
    if (rc == 1 && strstr(out.data, "\n\n") != out.data + out.len - 2) abort();
    sx_buf_term(&out);
    sx_live_event_put(ev);
    return 0;
}
