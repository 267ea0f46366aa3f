/* otlp.h: OTLP trace request decoding (protobuf and JSON), validation and
 * normalization. Decoders do no I/O: bytes, length and an arena in; a
 * protobuf-c request (allocated in the arena) or a typed error out.
 *
 * Both encodings produce the same protobuf-c structs, so everything after the
 * edge (validation, the Redis stream entry, sextant-persist) has one input:
 * the normalized ExportTraceServiceRequest, packed as protobuf. */
#ifndef SX_OTLP_H
#define SX_OTLP_H

#include "arena.h"
#include "config.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest sx_trace_req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse sx_trace_resp;

/* Decode errors. Each maps to one HTTP answer at the edge. */
enum sx_otlp_err {
    SX_OTLP_OK = 0,
    SX_OTLP_E_PROTOBUF,    /* undecodable protobuf (truncated, bad wire type): 400 */
    SX_OTLP_E_JSON,        /* JSON syntax error or invalid UTF-8: 400 */
    SX_OTLP_E_JSON_DEPTH,  /* JSON nested deeper than max_json_depth: 400 */
    SX_OTLP_E_SCHEMA,      /* valid JSON of the wrong shape (bad hex id, wrong type): 400 */
    SX_OTLP_E_TOO_MANY,    /* more spans than max_spans_per_request: 400 */
    SX_OTLP_E_NOMEM        /* arena cap reached while decoding: 413 */
};

struct sx_otlp_limits {
    size_t max_json_depth;
    size_t max_spans;
    size_t max_attributes;      /* per span / event / link / resource / scope */
    size_t max_attr_key_len;
    size_t max_attr_value_len;  /* string values longer are truncated (UTF-8 safe) */
    size_t max_any_value_depth;
    size_t max_events;
    size_t max_links;
};

void sx_otlp_limits_from_config(struct sx_otlp_limits *l, const struct sx_config *c);

/* Decodes a protobuf ExportTraceServiceRequest. Returns SX_OTLP_OK and *out,
 * or an error code with a short human message in err. Everything lives in a. */
int sx_otlp_trace_decode_pb(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                            sx_trace_req **out, char *err, size_t errlen);

/* Decodes OTLP/JSON (lowerCamelCase keys, snake_case also accepted; hex trace
 * and span ids; 64-bit integers as strings or numbers; enums as integers;
 * bytes values base64). Unknown fields are ignored, as the spec requires. */
int sx_otlp_trace_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                              sx_trace_req **out, char *err, size_t errlen);

/* What validation kept, dropped and trimmed. */
struct sx_otlp_stats {
    size_t spans_in;          /* spans in the request */
    size_t spans_kept;        /* spans left after validation */
    size_t spans_rejected;    /* dropped spans (bad ids, end before start, no time) */
    size_t attrs_dropped;     /* over max_attributes, key too long, too deep */
    size_t values_truncated;  /* string values cut at max_attr_value_len */
    size_t events_dropped;
    size_t links_dropped;
    char reason[256];         /* first reason something was dropped, for partial_success */
};

/* Validates and normalizes req in place: drops invalid spans (trace id not 16
 * non-zero bytes, span id not 8 non-zero bytes, parent id not 0 or 8 bytes,
 * zero start time, end before start), trims attributes/events/links to the
 * limits, truncates long string values, repairs invalid UTF-8 in strings with
 * U+FFFD, and removes scope/resource groups left empty. Never fails: what it
 * drops is counted in st. Allocations (if any) come from a. */
void sx_otlp_trace_validate(sx_trace_req *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                            struct sx_otlp_stats *st);

/* Number of spans in req. */
size_t sx_otlp_trace_count(const sx_trace_req *req);

/* Packs req as protobuf into arena memory; returns NULL (cap reached) or the
 * bytes with *len set. */
uint8_t *sx_otlp_trace_pack(const sx_trace_req *req, struct sx_arena *a, size_t *len);

/* Encodes an ExportTraceServiceResponse as protobuf or JSON into arena memory.
 * partial_success is present when rejected > 0 or message is non-empty (with
 * rejected 0 that is the OTLP way to warn that items were trimmed); otherwise
 * the empty success response. NULL when the cap is hit. */
uint8_t *sx_otlp_trace_response(int json, int64_t rejected, const char *message, struct sx_arena *a, size_t *len);

/* Encodes a google.rpc.Status {code, message} as protobuf or JSON, the OTLP
 * error body. NULL when the cap is hit. */
uint8_t *sx_otlp_status(int json, int code, const char *message, struct sx_arena *a, size_t *len);

#endif
