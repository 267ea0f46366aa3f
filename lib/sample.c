/* sample.c: trace sampling by trace id at ingest; see sample.h. */
#include "sample.h"

#include <math.h>
#include <string.h>

uint64_t sx_sample_threshold(double rate)
{
    if (!(rate > 0)) return 0; /* also NaN */
    if (rate >= 1) return SX_SAMPLE_ONE;
    return (uint64_t)ldexp(rate, 56);
}

int sx_sample_keep(const uint8_t *id, size_t len, uint64_t threshold)
{
    if (threshold >= SX_SAMPLE_ONE || len < 8) return 1;
    uint64_t v = 0;
    for (size_t i = len - 7; i < len; i++) v = (v << 8) | id[i];
    return v < threshold;
}

static int always_keep(const Opentelemetry__Proto__Trace__V1__Span *sp, uint64_t slow_ns)
{
    if (sp->status && sp->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR)
        return 1;
    for (size_t e = 0; e < sp->n_events; e++)
        if (sp->events[e] && sp->events[e]->name && strcmp(sp->events[e]->name, "exception") == 0) return 1;
    return slow_ns > 0 && sp->end_time_unix_nano >= sp->start_time_unix_nano &&
           sp->end_time_unix_nano - sp->start_time_unix_nano >= slow_ns;
}

size_t sx_sample_traces(sx_trace_req *req, double rate, uint64_t slow_ns)
{
    uint64_t th = sx_sample_threshold(rate);
    size_t dropped = 0, wr = 0;
    if (th >= SX_SAMPLE_ONE) return 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        size_t ws = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            size_t w = 0;
            for (size_t k = 0; k < ss->n_spans; k++) {
                Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                if (sx_sample_keep(sp->trace_id.data, sp->trace_id.len, th) || always_keep(sp, slow_ns))
                    ss->spans[w++] = sp;
                else
                    dropped++;
            }
            ss->n_spans = w;
            if (w) rs->scope_spans[ws++] = ss;
        }
        rs->n_scope_spans = ws;
        if (ws) req->resource_spans[wr++] = rs;
    }
    req->n_resource_spans = wr;
    return dropped;
}
