/* otlp_int.h: machinery shared by the OTLP decoders of every signal
 * (otlp_pb.c, otlp_json.c, otlp_validate.c, otlp_logs.c, otlp_metrics.c).
 * Internal to lib/: programs use otlp.h only. */
#ifndef SX_OTLP_INT_H
#define SX_OTLP_INT_H

#include "otlp.h"

/* --- decoding (otlp_pb.c, otlp_json.c) ------------------------------------------ */

/* What one signal's decoder needs to know: the request message, the item
 * messages it counts against max_items (NULL-terminated), and their plural
 * noun for error messages ("spans"). max_items 0 means no limit. */
struct sx_otlp_schema {
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *const *items;
    size_t max_items;
    const char *noun;
};

/* Decodes a protobuf request of schema s: one bounded pass over the wire
 * format (nesting at most max_json_depth, item count), then protobuf-c's
 * unpack into the arena. Returns SX_OTLP_OK with *out, or an error code with
 * a message in err. */
int sx_otlp_pb_decode(const uint8_t *buf, size_t len, const struct sx_otlp_schema *s, struct sx_arena *a,
                      const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen);

/* Decodes an OTLP/JSON request of schema s into protobuf-c structs (see
 * otlp_json.c for the rules). Same returns as sx_otlp_pb_decode. */
int sx_otlp_json_decode(const uint8_t *buf, size_t len, const struct sx_otlp_schema *s, struct sx_arena *a,
                        const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen);

/* --- encoding (otlp_pb.c) ----------------------------------------------------------- */

/* Packs any message into arena memory; NULL when the cap is hit. */
uint8_t *sx_otlp_pack_msg(const ProtobufCMessage *m, struct sx_arena *a, size_t *len);

/* The JSON Export*ServiceResponse: {} or {"partialSuccess": {rejected_key:
 * "<n>" (when rejected > 0), "errorMessage": message}} when rejected > 0 or
 * message is non-empty. NULL when the cap is hit. */
uint8_t *sx_otlp_response_json(int64_t rejected, const char *rejected_key, const char *message,
                               struct sx_arena *a, size_t *len);

/* --- validation helpers (otlp_validate.c) ------------------------------------------ */

/* One validation pass: the limits, the arena for repaired strings, the
 * stats, and the first reason of each kind of drop. */
struct sx_otlp_vctx {
    const struct sx_otlp_limits *l;
    struct sx_arena *a;
    struct sx_otlp_stats *st;
    const char *item_reason; /* first reason an item was rejected */
    const char *attr_reason; /* first reason an attribute was dropped */
    const char *metric_reason; /* metrics: first reason a whole metric was dropped */
};

/* Makes *sp valid UTF-8 (each bad byte becomes U+FFFD, in a new arena copy)
 * and returns its length; NULL stays NULL (length 0). */
size_t sx_otlp_repair_utf8(struct sx_otlp_vctx *v, char **sp);

/* Repairs *sp, then cuts it to at most max bytes at a code point boundary.
 * Returns 1 when it was cut (the caller counts it), else 0. */
int sx_otlp_cut_str(struct sx_otlp_vctx *v, char **sp, size_t max);

/* Repairs *sp and cuts it at max_attr_value_len, counting values_truncated. */
void sx_otlp_fix_value_str(struct sx_otlp_vctx *v, char **sp);

/* Repairs every key and string of an AnyValue and cuts string leaves at
 * max bytes; returns how many were cut. Depth is bounded by the decoders. */
size_t sx_otlp_fix_any_max(struct sx_otlp_vctx *v, Opentelemetry__Proto__Common__V1__AnyValue *any, size_t max);

/* Trims one attribute list in place (count, key length, nesting depth),
 * repairs and cuts its strings, and adds what it dropped to *dropped (may
 * be NULL) and to attrs_dropped. */
void sx_otlp_fix_attrs(struct sx_otlp_vctx *v, Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t *n,
                       uint32_t *dropped);

/* Repairs and trims an instrumentation scope / a resource (NULL is fine). */
void sx_otlp_fix_scope(struct sx_otlp_vctx *v, Opentelemetry__Proto__Common__V1__InstrumentationScope *sc);
void sx_otlp_fix_resource(struct sx_otlp_vctx *v, Opentelemetry__Proto__Resource__V1__Resource *r);

/* Nonzero when all n bytes at p are zero. */
int sx_otlp_all_zero(const uint8_t *p, size_t n);

/* Appends "; " (when not first) and a formatted part to the reason r. */
void sx_otlp_reason_add(char *r, size_t rlen, const char *fmt, ...) SX_PRINTF(3, 4);

/* Appends the attribute-level parts (attributes dropped, values truncated)
 * to st->reason. */
void sx_otlp_reason_attrs(const struct sx_otlp_vctx *v);

#endif
