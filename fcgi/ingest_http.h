/* ingest_http.h: pure request-parsing helpers of sextant-ingest (no I/O), unit tested. */
#ifndef SX_INGEST_HTTP_H
#define SX_INGEST_HTTP_H

#include "otlp.h"
#include "sx.h"

/* Signals routed under /v1/. */
enum sx_ingest_route {
    SX_INGEST_ROUTE_NONE = 0, /* anything else: 404 */
    SX_INGEST_ROUTE_TRACES,
    SX_INGEST_ROUTE_LOGS,
    SX_INGEST_ROUTE_METRICS
};

/* Request body encodings we decode. */
enum sx_ingest_ctype {
    SX_INGEST_CT_UNKNOWN = 0, /* 415 */
    SX_INGEST_CT_PROTOBUF,
    SX_INGEST_CT_JSON
};

enum sx_ingest_cenc {
    SX_INGEST_CE_UNKNOWN = 0, /* 415 */
    SX_INGEST_CE_IDENTITY,
    SX_INGEST_CE_GZIP
};

/* What the key cache (and PostgreSQL) know about an ingest key. */
enum sx_ingest_key_state {
    SX_INGEST_KEY_NONE = 0, /* unknown key: 401 */
    SX_INGEST_KEY_ACTIVE,
    SX_INGEST_KEY_REVOKED,  /* 403 */
    SX_INGEST_KEY_SUSPENDED /* project suspended: 403 */
};

struct sx_ingest_key {
    long long project_id;
    long long key_id;
    enum sx_ingest_key_state state;
};

/* Maps DOCUMENT_URI to a route (/v1/traces, /v1/logs, /v1/metrics, exactly);
 * NULL or unknown paths give SX_INGEST_ROUTE_NONE. */
enum sx_ingest_route sx_ingest_route_parse(const char *path);

/* Parses a Content-Type header, ignoring parameters (";charset=...") and
 * case. application/x-protobuf and application/protobuf are protobuf;
 * application/json is JSON; anything else (or NULL) is unknown. */
enum sx_ingest_ctype sx_ingest_ctype_parse(const char *ct);

/* Parses Content-Encoding: absent, empty, "identity" or "none" is identity;
 * "gzip" or "x-gzip" (any case, surrounding blanks ignored) is gzip; anything
 * else, including lists of encodings, is unknown. */
enum sx_ingest_cenc sx_ingest_cenc_parse(const char *ce);

/* Finds the ingest key: X-API-Key wins, else "Authorization: Bearer <key>"
 * (scheme case-insensitive). Surrounding blanks are ignored. On SX_OK *key
 * points into one of the inputs and *len is its length (at least 1); SX_ERR
 * when neither header carries a key. */
int sx_ingest_key_extract(const char *x_api_key, const char *authorization, const char **key, size_t *len);

/* Parses a key cache value: "<project_id> <key_id> <state>" with state
 * active|revoked|suspended, or "none". SX_ERR for anything else (a corrupt
 * entry is treated as a cache miss). */
int sx_ingest_key_cache_parse(const char *s, size_t n, struct sx_ingest_key *out);

/* Formats k as a key cache value into out; returns the length, or SX_ERR
 * when out is too small. */
int sx_ingest_key_cache_format(const struct sx_ingest_key *k, char *out, size_t outlen);

/* Parses a CONTENT_LENGTH value: only decimal digits, at most 2^62. Absent
 * or empty gives SX_AGAIN (length unknown); garbage gives SX_ERR. */
int sx_ingest_parse_length(const char *s, unsigned long long *out);

/* Writes the partial_success message for what validation dropped or trimmed
 * (any signal) into out: the validator's reason, else counts ("3 attributes
 * dropped, 1 values truncated"); empty when nothing was. Returns nonzero
 * when something was. */
int sx_ingest_partial_message(const struct sx_otlp_stats *st, char *out, size_t outlen);

#endif
