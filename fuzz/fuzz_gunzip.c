/* fuzz_gunzip.c: libFuzzer target for the bounded gunzip, followed by the
 * trace decoders on whatever it inflates (scripts/fuzz.sh builds and runs it). */
#include <stdint.h>
#include <stdlib.h>

#include "gzip.h"
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
        a = sx_arena_create(64 * 1024, 16u << 20);
    }
    uint8_t *out = NULL;
    size_t n = 0;
    const size_t max_out = 1u << 20;
    int rc = sx_gunzip(data, size, max_out, a, &out, &n);
    if (rc == SX_GZIP_OK) {
        if (n > max_out || (n && !out)) abort();
        sx_trace_req *req = NULL;
        char err[128];
        if (size && (data[size - 1] & 1))
            sx_otlp_trace_decode_json(out, n, a, &l, &req, err, sizeof(err));
        else
            sx_otlp_trace_decode_pb(out, n, a, &l, &req, err, sizeof(err));
    } else if (out || n) {
        abort(); /* failures leave no output behind */
    }
    sx_arena_reset(a);
    return 0;
}
