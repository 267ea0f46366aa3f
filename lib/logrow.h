/* logrow.h: encodes OTLP log records as PostgreSQL COPY text rows of the logs table.
 *
 * One row per log record, fields separated by a tab, rows ended by a
 * newline, in the column order SX_LOGROW_COLUMNS (a subset of `logs` in
 * sql/004_logs.sql: the generated `search` column is left out, so COPY must
 * name the columns):
 *
 *   project_id, time_ns, observed_time_ns, severity_number, severity_text,
 *   body, body_json, trace_id, span_id, flags, service, scope_name,
 *   scope_version, attributes, resource
 *
 * Escaping is that of lib/copyrow.h (sx_copyrow_text): text is kept
 * byte for byte except that backslash, newline, CR and tab are escaped for
 * COPY and invalid UTF-8 or NUL becomes U+FFFD; bytea is \\x<hex>, NULL \N.
 *
 * Derived columns:
 *   time_ns      time_unix_nano, else observed_time_unix_nano, else the
 *                stream entry's receive time (the partition key);
 *   observed_time_ns  observed_time_unix_nano as given (0 when absent);
 *   body         a string body as it is; any other AnyValue (kvlist,
 *                array, int, double, bool, bytes as base64) as JSON text
 *                with body_json true; \N when the record has no body;
 *   trace_id / span_id  \N unless 16 / 8 bytes;
 *   service      resource attribute service.name, else "unknown_service";
 *   severity_text, scope name/version: \N when empty;
 *   attributes / resource: JSON objects with typed values.
 * severity numbers outside 0..24 are written as 0. A record whose time is
 * past the last day partition that can exist is skipped and counted. Not
 * thread-safe per encoder: one each. */
#ifndef SX_LOGROW_H
#define SX_LOGROW_H

#include "buf.h"
#include "copyrow.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

#define SX_LOGROW_COLUMNS \
    "project_id, time_ns, observed_time_ns, severity_number, severity_text, body, body_json, trace_id, " \
    "span_id, flags, service, scope_name, scope_version, attributes, resource"
#define SX_LOGROW_NCOLUMNS 15

/* Encoder state; embedded by the caller (init/term). Fields are private
 * except rows and skipped (read-only). */
struct sx_logrow {
    struct sx_copyrow_scratch s; /* scratch buffers, current resource JSON, row days */
    size_t rows;           /* rows written since the last reset */
    size_t skipped;        /* records skipped (time out of range) since the last reset */
};

/* Initializes an encoder whose scratch buffers may grow to max_json bytes
 * each (one attribute document or structured body). Term frees everything. */
void sx_logrow_init(struct sx_logrow *e, size_t max_json);
void sx_logrow_term(struct sx_logrow *e);

/* Forgets the days and counters collected so far; keeps the storage. */
void sx_logrow_reset(struct sx_logrow *e);

/* Appends one COPY row per log record of req for project_id to out;
 * recv_ns (the stream entry's receive time) stands in for records with
 * neither time nor observed time. Returns SX_OK, or SX_ERR when out (or a
 * scratch buffer) reached its maximum or memory ran out; out is then
 * truncated back to its length at the call and the counters and days are as
 * before the call. req stays owned by the caller. */
int sx_logrow_encode(struct sx_logrow *e, const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req,
                     long long project_id, int64_t recv_ns, struct sx_buf *out);

/* The distinct UTC day starts (unix ns) of the rows encoded since the last
 * reset, sorted ascending; *n gets the count. The array belongs to the
 * encoder and lives until the next encode/reset/term. */
const int64_t *sx_logrow_days(struct sx_logrow *e, size_t *n);

#endif
