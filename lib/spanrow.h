/* spanrow.h: encodes OTLP spans as PostgreSQL COPY text rows of the spans table.
 *
 * One row per span, fields separated by a tab, rows ended by a newline, in
 * exactly the column order of `spans` in sql/001_core.sql (SX_SPANROW_COLUMNS),
 * so a staging table made with `LIKE spans` takes the rows as they are:
 *
 *   project_id, trace_id, span_id, parent_span_id, start_time_ns, end_time_ns,
 *   name, kind, service, status_code, status_message, http_method, http_route,
 *   http_status_code, trace_state, scope_name, scope_version, attributes,
 *   events, links, resource
 *
 * bytea is written as \\x<hex>, NULL as \N; text and jsonb are escaped for COPY
 * text (backslash, newline, CR, tab) and repaired to valid UTF-8 without NUL
 * (invalid bytes and NUL become U+FFFD) so PostgreSQL never rejects a row.
 * Empty strings of optional columns (parent_span_id, status_message,
 * trace_state, scope name/version) are written as NULL.
 *
 * Derived columns: service is the resource attribute service.name
 * ("unknown_service" when missing); http_method from http.request.method or
 * http.method; http_route from http.route; http_status_code from
 * http.response.status_code or http.status_code (integer, or a numeric
 * string). attributes and resource are JSON objects with typed values;
 * events [{"timeUnixNano","name","attributes"}] and links
 * [{"traceId","spanId","traceState","attributes"}] are NULL when empty.
 *
 * Spans whose trace id is not 16 bytes or span id not 8 bytes cannot satisfy
 * the table's CHECKs: they are skipped and counted; a parent id of another
 * length than 8 is written as NULL. Not thread-safe per encoder: one each.
 *
 * Alongside each row the encoder records a struct sx_spanrow_meta (trace id,
 * times, error and root flags, where the row's name and service fields lie
 * in out), so a writer can derive trace summaries without decoding again. */
#ifndef SX_SPANROW_H
#define SX_SPANROW_H

#include "buf.h"
#include "copyrow.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define SX_SPANROW_COLUMNS \
    "project_id, trace_id, span_id, parent_span_id, start_time_ns, end_time_ns, name, kind, service, " \
    "status_code, status_message, http_method, http_route, http_status_code, trace_state, scope_name, " \
    "scope_version, attributes, events, links, resource"
#define SX_SPANROW_NCOLUMNS 21

/* What a trace summary needs of one encoded row. name_off/svc_off point
 * into the out buffer given to sx_spanrow_encode, at the row's name and
 * service fields as written there (COPY-escaped, without the tab). */
struct sx_spanrow_meta {
    uint8_t trace_id[16];
    int64_t start, end;
    size_t name_off, svc_off;
    uint32_t name_len, svc_len;
    int32_t project_id;
    uint8_t error;             /* status_code 2 */
    uint8_t root;              /* no (valid 8-byte) parent: parent_span_id is NULL */
};

/* Encoder state; embedded by the caller (init/term). Fields are private
 * except through the functions below and meta/nmeta (read-only). */
struct sx_spanrow {
    struct sx_copyrow_scratch s; /* scratch buffers, current resource JSON, row days */
    struct sx_spanrow_meta *meta; /* one per row since the last reset, in row order */
    size_t nmeta, meta_cap;
    size_t rows;           /* rows written since the last reset (== nmeta) */
    size_t skipped;        /* spans skipped (bad ids) since the last reset */
};

/* Initializes an encoder whose scratch buffers may grow to max_json bytes
 * each (one attribute document). Term frees everything. */
void sx_spanrow_init(struct sx_spanrow *e, size_t max_json);
void sx_spanrow_term(struct sx_spanrow *e);

/* Forgets the days and counters collected so far; keeps the storage. */
void sx_spanrow_reset(struct sx_spanrow *e);

/* Appends one COPY row per span of req for project_id to out and records
 * each row's day and meta. Returns SX_OK, or SX_ERR when out (or a scratch
 * buffer) reached its maximum or memory ran out; out is then truncated back
 * to its length at the call, so earlier rows stay valid, and the counters,
 * metas and days are as before the call. req stays owned by the caller.
 * Use one out buffer per reset: the metas' offsets refer to it. */
int sx_spanrow_encode(struct sx_spanrow *e, const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req,
                      long long project_id, struct sx_buf *out);

/* The distinct UTC day starts (unix ns, see sx_spanrow_day) of the rows
 * encoded since the last reset, sorted ascending; *n gets the count. The
 * array belongs to the encoder and lives until the next encode/reset/term. */
const int64_t *sx_spanrow_days(struct sx_spanrow *e, size_t *n);

/* start_ns floored to the start of its UTC day (also for negative times),
 * as sextant_ensure_span_partition does. */
int64_t sx_spanrow_day(int64_t start_ns);

#endif
