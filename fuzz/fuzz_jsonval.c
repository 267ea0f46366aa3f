/* fuzz_jsonval.c: libFuzzer target for the small-document JSON parser (scripts/fuzz.sh builds and
 * runs it): any bytes either parse into a tree whose child counts match its links, or fail with a
 * message; the arena is large enough that yajl's own allocations never fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const struct sx_jv *v, int depth)
{
    size_t seen = 1, n = 0;
    if (depth > 8) abort();
    for (const struct sx_jv *c = v->first; c; c = c->next, n++) {
        if (v->type == SX_JV_OBJECT && !c->key) abort();
        seen += walk(c, depth + 1);
    }
    if (n != v->n) abort();
    if ((v->type == SX_JV_STRING || v->type == SX_JV_NUMBER) && (!v->str || strlen(v->str) != v->len)) abort();
    return seen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sx_arena *a;
    char err[256];
    struct sx_jv *v;
    if (size > 65536) return 0;
    if (!a) a = sx_arena_create(64 * 1024, 64u << 20);
    sx_arena_reset(a);
    if (sx_jv_parse((const char *)data, size, NULL, a, &v, err, sizeof(err)) == SX_OK) {
        if (walk(v, 1) > 10000) abort();
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
