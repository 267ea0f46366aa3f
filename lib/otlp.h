/* otlp.h: OTLP request decoding (protobuf and JSON), validation and
 * normalization for the three signals: traces, logs and metrics. Decoders do
 * no I/O: bytes, length and an arena in; a protobuf-c request (allocated in
 * the arena) or a typed error out.
 *
 * Both encodings produce the same protobuf-c structs, so everything after the
 * edge (validation, the Redis stream entry, sextant-persist) has one input
 * per signal: the normalized Export*ServiceRequest, packed as protobuf.
 * Every signal uses the same error codes, limits and stats structs. */
#ifndef SX_OTLP_H
#define SX_OTLP_H

#include "arena.h"
#include "config.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest sx_trace_req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse sx_trace_resp;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest sx_logs_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse sx_logs_resp;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest sx_metrics_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse sx_metrics_resp;

/* Decode errors. Each maps to one HTTP answer at the edge. */
enum sx_otlp_err {
    SX_OTLP_OK = 0,
    SX_OTLP_E_PROTOBUF,    /* undecodable protobuf (truncated, bad wire type): 400 */
    SX_OTLP_E_JSON,        /* JSON syntax error or invalid UTF-8: 400 */
    SX_OTLP_E_JSON_DEPTH,  /* JSON nested deeper than max_json_depth: 400 */
    SX_OTLP_E_SCHEMA,      /* valid JSON of the wrong shape (bad hex id, wrong type): 400 */
    SX_OTLP_E_TOO_MANY,    /* more items (spans, log records, data points) than allowed: 400 */
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
    /* Logs and metrics. 0 means: no limit for the counts, 64 KiB for the body. */
    size_t max_log_records;     /* per request; more: SX_OTLP_E_TOO_MANY */
    size_t max_points;          /* data points per request; more: SX_OTLP_E_TOO_MANY */
    size_t max_log_body_len;    /* string log bodies longer are truncated (UTF-8 safe) */
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

/* What validation kept, dropped and trimmed. The item counters have a span
 * name (traces) and a generic one (every signal: spans, log records or data
 * points); both name the same storage. */
struct sx_otlp_stats {
    union {
        size_t spans_in;      /* spans in the request */
        size_t items_in;      /* items in the request */
    };
    union {
        size_t spans_kept;    /* spans left after validation */
        size_t items_kept;
    };
    union {
        size_t spans_rejected; /* dropped spans (bad ids, end before start, no time) */
        size_t items_rejected; /* dropped items, rejected_* of partial_success */
    };
    size_t attrs_dropped;     /* over max_attributes, key too long, too deep */
    size_t values_truncated;  /* string values cut at max_attr_value_len */
    size_t events_dropped;
    size_t links_dropped;
    char reason[256];         /* first reason something was dropped, for partial_success */
    size_t bodies_truncated;  /* logs: string bodies cut at max_log_body_len */
    size_t metrics_dropped;   /* metrics: dropped whole (no name, no data), their points counted as rejected */
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

/* --- logs ---------------------------------------------------------------------
 * Same contracts as the trace functions above, for ExportLogsServiceRequest.
 * The item limit is max_log_records. */

int sx_otlp_logs_decode_pb(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                           sx_logs_req **out, char *err, size_t errlen);

/* OTLP/JSON as for traces; traceId/spanId of log records are hex (empty =
 * absent; well-formed hex of the wrong length is decoded and dropped by
 * validation). */
int sx_otlp_logs_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                             sx_logs_req **out, char *err, size_t errlen);

/* Validates and normalizes req in place: drops log records whose trace id is
 * not empty or 16 bytes or whose span id is not empty or 8 bytes (all-zero
 * ids mean "no trace context" and become empty), trims attributes as for
 * spans, cuts string bodies at max_log_body_len and other strings at
 * max_attr_value_len, maps severity numbers outside 0..24 to 0, repairs
 * invalid UTF-8 and removes empty scopes and resources. A record with
 * neither time nor observed time is kept with both 0: decoders have no
 * clock, and consumers use the stream entry's receive time instead. Never
 * fails; counts in st (items_* are log records). */
void sx_otlp_logs_validate(sx_logs_req *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                           struct sx_otlp_stats *st);

/* Number of log records in req. */
size_t sx_otlp_logs_count(const sx_logs_req *req);

/* Packs req as protobuf into arena memory; NULL when the cap is hit. */
uint8_t *sx_otlp_logs_pack(const sx_logs_req *req, struct sx_arena *a, size_t *len);

/* ExportLogsServiceResponse as protobuf or JSON ("rejectedLogRecords" as a
 * string), with the same partial_success rule as sx_otlp_trace_response. */
uint8_t *sx_otlp_logs_response(int json, int64_t rejected, const char *message, struct sx_arena *a, size_t *len);

/* --- metrics -------------------------------------------------------------------
 * Same contracts for ExportMetricsServiceRequest. Items are data points of
 * every kind (number, histogram, exponential histogram, summary); the item
 * limit is max_points. */

int sx_otlp_metrics_decode_pb(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                              sx_metrics_req **out, char *err, size_t errlen);

/* OTLP/JSON as for traces: gauge, sum, histogram, exponentialHistogram and
 * summary; asDouble/asInt; histogram sum/min/max set the *_present oneofs;
 * bucketCounts as strings or numbers; exemplars decoded. */
int sx_otlp_metrics_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                                sx_metrics_req **out, char *err, size_t errlen);

/* Validates and normalizes req in place: a metric without a name is dropped
 * with its points (counted as rejected points and in metrics_dropped), one
 * without data too; a data point without timeUnixNano is dropped, and so is
 * a histogram point whose bucket_counts is not explicit_bounds + 1 long (or
 * both empty) or whose bounds are not increasing; exemplar ids of the wrong
 * length are cleared; attributes trimmed as for spans; invalid UTF-8
 * repaired; metrics, scopes and resources left empty removed. Never fails;
 * counts in st (items_* are data points). */
void sx_otlp_metrics_validate(sx_metrics_req *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                              struct sx_otlp_stats *st);

/* Number of data points in req. */
size_t sx_otlp_metrics_count(const sx_metrics_req *req);

/* Packs req as protobuf into arena memory; NULL when the cap is hit. */
uint8_t *sx_otlp_metrics_pack(const sx_metrics_req *req, struct sx_arena *a, size_t *len);

/* ExportMetricsServiceResponse as protobuf or JSON ("rejectedDataPoints" as
 * a string), with the same partial_success rule as sx_otlp_trace_response. */
uint8_t *sx_otlp_metrics_response(int json, int64_t rejected, const char *message, struct sx_arena *a,
                                  size_t *len);

#endif
