/* fuzz_logs_pb.c: libFuzzer target for the protobuf logs decoder,
 * validation, packing and the response (scripts/fuzz.sh builds and runs it). */
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
        l.max_log_body_len = 64;
        l.max_attributes = 4;
        l.max_any_value_depth = 3;
        l.max_log_records = 1000;
        l.max_points = 1000;
        a = sx_arena_create(64 * 1024, 64u << 20);
    }
    sx_logs_req *req = NULL;
    char err[256];
    if (sx_otlp_logs_decode_pb(data, size, a, &l, &req, err, sizeof(err)) == SX_OTLP_OK) {
        struct sx_otlp_stats st;
        size_t n;
        size_t before = sx_otlp_logs_count(req);
        sx_otlp_logs_validate(req, &l, a, &st);
        if (st.items_in != before || st.items_kept != sx_otlp_logs_count(req) ||
            st.items_kept + st.items_rejected != st.items_in)
            abort();
        uint8_t *p = sx_otlp_logs_pack(req, a, &n);
        sx_logs_req *again = NULL;
        if (p && sx_otlp_logs_decode_pb(p, n, a, &l, &again, err, sizeof(err)) == SX_OTLP_OK &&
            sx_otlp_logs_count(again) != st.items_kept)
            abort();
        sx_otlp_logs_response(0, (int64_t)st.items_rejected, st.reason, a, &n);
    }
    sx_arena_reset(a);
    return 0;
}
