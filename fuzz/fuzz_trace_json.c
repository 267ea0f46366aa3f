/* fuzz_trace_json.c: libFuzzer target for the OTLP/JSON trace decoder,
 * validation and packing (scripts/fuzz.sh builds and runs it). */
#include <stdint.h>
#include <stdlib.h>

#include "otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sx_arena *a;
    static struct sx_otlp_limits l;
    if (!a) {
        struct sx_config c;
        sx_config_defaults(&c);
        sx_otlp_limits_from_config(&l, &c);
        l.max_json_depth = 32;
        l.max_attr_value_len = 64;
        l.max_attributes = 4;
        l.max_events = 2;
        l.max_links = 2;
        l.max_any_value_depth = 3;
        a = sx_arena_create(64 * 1024, 64u << 20);
    }
    sx_trace_req *req = NULL;
    char err[256];
    if (sx_otlp_trace_decode_json(data, size, a, &l, &req, err, sizeof(err)) == SX_OTLP_OK) {
        struct sx_otlp_stats st;
        size_t n;
        sx_otlp_trace_validate(req, &l, a, &st);
        if (st.spans_kept != sx_otlp_trace_count(req)) abort();
        uint8_t *p = sx_otlp_trace_pack(req, a, &n);
        sx_trace_req *again = NULL;
        if (p && sx_otlp_trace_decode_pb(p, n, a, &l, &again, err, sizeof(err)) == SX_OTLP_OK &&
            sx_otlp_trace_count(again) != st.spans_kept)
            abort();
        sx_otlp_trace_response(1, (int64_t)st.spans_rejected, st.reason, a, &n);
    }
    sx_arena_reset(a);
    return 0;
}
