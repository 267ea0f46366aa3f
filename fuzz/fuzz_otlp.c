/* fuzz_otlp.c: libFuzzer target for the OTLP decoders (protobuf or JSON),
 * validation, packing and the response of one signal. scripts/fuzz.sh builds
 * it once per target, choosing the signal and the encoding with defines:
 *   -DSX_FUZZ_TRACE, -DSX_FUZZ_LOGS or -DSX_FUZZ_METRICS (exactly one)
 *   -DSX_FUZZ_JSON=1 for OTLP/JSON, 0 for protobuf */
#include <stdint.h>
#include <stdlib.h>

#include "otlp.h"

#if defined(SX_FUZZ_TRACE) + defined(SX_FUZZ_LOGS) + defined(SX_FUZZ_METRICS) != 1
#error "define exactly one of SX_FUZZ_TRACE, SX_FUZZ_LOGS, SX_FUZZ_METRICS"
#endif
#ifndef SX_FUZZ_JSON
#error "define SX_FUZZ_JSON as 1 (OTLP/JSON) or 0 (protobuf)"
#endif

#if defined(SX_FUZZ_TRACE)
#define FZ(name) sx_otlp_trace_##name
typedef sx_trace_req fz_req;
#elif defined(SX_FUZZ_LOGS)
#define FZ(name) sx_otlp_logs_##name
typedef sx_logs_req fz_req;
#else
#define FZ(name) sx_otlp_metrics_##name
typedef sx_metrics_req fz_req;
#endif

#if SX_FUZZ_JSON
#define FZ_DECODE FZ(decode_json)
#else
#define FZ_DECODE FZ(decode_pb)
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sx_arena *a;
    static struct sx_otlp_limits l;
    if (!a) {
        struct sx_config c;
        sx_config_defaults(&c);
        sx_otlp_limits_from_config(&l, &c);
        /* Small limits reach the trimming paths. */
#if SX_FUZZ_JSON || !defined(SX_FUZZ_TRACE)
        l.max_json_depth = 32;
#endif
        l.max_attr_value_len = 64;
#if defined(SX_FUZZ_TRACE)
        l.max_attributes = 4;
        l.max_events = 2;
        l.max_links = 2;
        l.max_any_value_depth = 3;
#else
        l.max_log_body_len = 64;
        l.max_attributes = 4;
        l.max_any_value_depth = 3;
        l.max_log_records = 1000;
        l.max_points = 1000;
#endif
        a = sx_arena_create(64 * 1024, 64u << 20);
    }
    fz_req *req = NULL;
    char err[256];
    if (FZ_DECODE(data, size, a, &l, &req, err, sizeof(err)) == SX_OTLP_OK) {
        struct sx_otlp_stats st;
        size_t n;
#if defined(SX_FUZZ_TRACE)
        FZ(validate)(req, &l, a, &st);
        if (st.items_kept != FZ(count)(req)) abort();
#else
        size_t before = FZ(count)(req);
        FZ(validate)(req, &l, a, &st);
        if (st.items_in != before || st.items_kept != FZ(count)(req) ||
            st.items_kept + st.items_rejected != st.items_in)
            abort();
#endif
        uint8_t *p = FZ(pack)(req, a, &n);
        /* What validation kept must decode again to the same count. */
        fz_req *again = NULL;
        if (p && FZ(decode_pb)(p, n, a, &l, &again, err, sizeof(err)) == SX_OTLP_OK &&
            FZ(count)(again) != st.items_kept)
            abort();
        FZ(response)(SX_FUZZ_JSON, (int64_t)st.items_rejected, st.reason, a, &n);
    }
    sx_arena_reset(a);
    return 0;
}
