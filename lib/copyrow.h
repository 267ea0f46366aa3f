/* copyrow.h: field writers shared by the PostgreSQL COPY text row encoders
 * (lib/spanrow.c, lib/logrow.c): text and JSON escaping, integers, bytea,
 * OTLP AnyValue/KeyValue as JSON, and the list of UTC days the rows touch.
 *
 * COPY text escaping: text is kept as UTF-8 with backslash, newline, CR and
 * tab escaped; invalid UTF-8 and NUL become U+FFFD. bytea is \\x<hex>, NULL
 * is \N. Every writer appends to out and returns SX_OK, or SX_ERR when out
 * reached its maximum (out then holds a partial field; the row encoders roll
 * back to the start of the row). */
#ifndef SX_COPYROW_H
#define SX_COPYROW_H

#include "buf.h"
#include "json.h"

#include "opentelemetry/proto/common/v1/common.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Array and kvlist values nested deeper than this are written as null (ingest
 * limits nesting far below this already; this only keeps recursion bounded). */
#define SX_COPYROW_ANY_MAX_DEPTH 24

/* Appends s[0..n) escaped for a COPY text field (backslash, newline, CR and
 * tab escaped; invalid UTF-8 and NUL become U+FFFD). SX_ERR on overflow. */
int sx_copyrow_text(struct sx_buf *out, const char *s, size_t n);

/* Appends the NUL-terminated s as COPY text, or NULL (\N) when s is NULL or
 * empty. SX_ERR on overflow. */
int sx_copyrow_opt_text(struct sx_buf *out, const char *s);

/* Appends JSON text written by sx_json (no raw control characters, valid
 * UTF-8) as a COPY text field: only its backslashes need doubling. SX_ERR on
 * overflow. */
int sx_copyrow_json(struct sx_buf *out, const char *s, size_t n);

/* Appends v in decimal. SX_ERR on overflow. */
int sx_copyrow_int(struct sx_buf *out, int64_t v);

/* Appends the n bytes at p as a bytea in COPY text (the input form \x<hex>
 * with its backslash escaped). SX_ERR on overflow. */
int sx_copyrow_bytea(struct sx_buf *out, const uint8_t *p, size_t n);

/* Resets b and writes into it the n bytes at p as a quoted base64 JSON
 * string. SX_ERR when b reached its maximum. */
int sx_copyrow_base64(struct sx_buf *b, const uint8_t *p, size_t n);

/* Writes one AnyValue as JSON: strings, bools, numbers, bytes as base64,
 * arrays, kvlists as objects; unset or deeper than SX_COPYROW_ANY_MAX_DEPTH
 * is null. b64 is scratch space for bytes values, owned by the caller. A
 * failure sticks in w->err. */
void sx_copyrow_json_any(struct sx_json *w, struct sx_buf *b64,
                         const Opentelemetry__Proto__Common__V1__AnyValue *v, int depth);

/* Writes a JSON object of the n key/value pairs (NULL entries skipped,
 * duplicate keys kept: jsonb keeps the last one); values as
 * sx_copyrow_json_any. A failure sticks in w->err. */
void sx_copyrow_json_kvs(struct sx_json *w, struct sx_buf *b64,
                         Opentelemetry__Proto__Common__V1__KeyValue **kvs, size_t n, int depth);

/* Appends the attribute object of the n key/value pairs COPY-escaped ({} when
 * n is 0), rendering it first into the caller's scratch buffer json (reset
 * here) with b64 as scratch for bytes values. SX_ERR when any buffer reached
 * its maximum. */
int sx_copyrow_attrs(struct sx_buf *out, struct sx_buf *json, struct sx_buf *b64,
                     Opentelemetry__Proto__Common__V1__KeyValue **kvs, size_t n);

/* The value of the last string attribute named key, or NULL when the last
 * attribute of that name is not a non-empty string or there is none (jsonb
 * keeps the last duplicate too). Points into kvs. */
const char *sx_copyrow_find_str(Opentelemetry__Proto__Common__V1__KeyValue **kvs, size_t n, const char *key);

/* The UTC day starts (unix ns) an encoder's rows touch, so the caller can
 * create their partitions. Embedded in the encoder, which owns v (malloc'd,
 * freed by _term). */
struct sx_copyrow_days {
    int64_t *v;   /* in arrival order until sx_copyrow_days_get sorts them */
    size_t n, cap;
    int sorted;   /* v[0..n) known sorted and distinct */
};

/* Starts an empty list. Cannot fail. */
void sx_copyrow_days_init(struct sx_copyrow_days *d);
/* Frees the storage; the list is empty afterwards. Accepts a zeroed list. */
void sx_copyrow_days_term(struct sx_copyrow_days *d);
/* Forgets the days; keeps the storage. */
void sx_copyrow_days_reset(struct sx_copyrow_days *d);

/* Records a row's day; consecutive rows mostly share one, so only a change
 * appends. SX_ERR when memory ran out (the list is left as it was). */
int sx_copyrow_days_add(struct sx_copyrow_days *d, int64_t day);

/* The distinct days, sorted; *n gets their count. The array belongs to d
 * and lives until the next add, reset or term. Cannot fail. */
const int64_t *sx_copyrow_days_get(struct sx_copyrow_days *d, size_t *n);

/* One UTC day in ns, the width of a daily partition. */
#define SX_DAY_NS 86400000000000LL
/* Latest time whose day partition the sextant_ensure_*_partition functions
 * can create: the upper bound of the next day must still fit in a bigint. */
#define SX_COPYROW_TIME_MAX_NS ((INT64_MAX / SX_DAY_NS) * SX_DAY_NS - 1)

/* Scratch state every row encoder keeps between calls; embedded in the
 * encoder, which owns the buffers (freed by sx_copyrow_scratch_term). */
struct sx_copyrow_scratch {
    struct sx_buf json;          /* one JSON document before COPY escaping */
    struct sx_buf b64;           /* base64 of bytes values */
    struct sx_buf res;           /* COPY-escaped resource JSON of the current resource group */
    struct sx_copyrow_days days; /* UTC day starts (ns) of the rows */
};

/* Empty buffers bounded by max_json (the resource one by twice that).
 * Cannot fail: buffers allocate on first use. */
void sx_copyrow_scratch_init(struct sx_copyrow_scratch *s, size_t max_json);
/* Frees every buffer and the days list. */
void sx_copyrow_scratch_term(struct sx_copyrow_scratch *s);

#endif
