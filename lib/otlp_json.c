/* otlp_json.c: OTLP/JSON trace request decoding into protobuf-c structs.
 *
 * Design: yajl's callback parser drives a small stack machine. Each frame is
 * either an object being filled (a protobuf-c message of a known kind, with
 * the field named by the last key) or an array appending to a repeated field
 * of its parent. Unknown keys holding objects or arrays are skipped as whole
 * subtrees by a counter, without frames. yajl and every struct allocate from
 * the request arena, so nothing is freed one by one.
 *
 * OTLP/JSON rules (opentelemetry-proto docs/specification.md, "JSON Protobuf
 * Encoding"): lowerCamelCase keys (snake_case accepted), trace and span ids
 * as hex (empty string = absent), 64-bit integers as strings or numbers,
 * enums as integers (names accepted too), bytes as base64, unknown fields
 * ignored, null = absent. A wrong type for a known field is a schema error. */
#include "otlp.h"

#include <yajl/yajl_parse.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_ss;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_arr;
typedef Opentelemetry__Proto__Common__V1__KeyValueList pb_kvlist;

/* JSON nesting allowed when the limits say nothing. */
#define JSON_DEFAULT_DEPTH 64

/* Frame kinds: objects (messages) and arrays (repeated fields). */
enum kind {
    K_REQ, K_RS, K_RES, K_SS, K_SCOPE, K_SPAN, K_EVENT, K_LINK, K_STATUS, K_KV, K_ANY, K_ARRVAL, K_KVLIST,
    A_RS, A_SS, A_SPAN, A_EVENT, A_LINK, A_KV, A_ANY
};

/* Field ids, shared by every object kind. */
enum field {
    F_NONE = 0, F_UNKNOWN, F_RESOURCE_SPANS, F_RESOURCE, F_SCOPE_SPANS, F_SCHEMA_URL, F_ATTRIBUTES,
    F_DROPPED_ATTRS, F_SCOPE, F_SPANS, F_NAME, F_VERSION, F_TRACE_ID, F_SPAN_ID, F_TRACE_STATE,
    F_PARENT_SPAN_ID, F_FLAGS, F_KIND, F_START, F_END, F_EVENTS, F_DROPPED_EVENTS, F_LINKS,
    F_DROPPED_LINKS, F_STATUS, F_TIME, F_MESSAGE, F_CODE, F_KEY, F_VALUE, F_STRING_VALUE, F_BOOL_VALUE,
    F_INT_VALUE, F_DOUBLE_VALUE, F_BYTES_VALUE, F_ARRAY_VALUE, F_KVLIST_VALUE, F_VALUES
};

struct fname {
    const char *name; /* lowerCamelCase; matched ignoring case and '_' */
    unsigned char id;
};

static const struct fname req_fields[] = {{"resourceSpans", F_RESOURCE_SPANS}, {NULL, 0}};
static const struct fname rs_fields[] = {
    {"resource", F_RESOURCE}, {"scopeSpans", F_SCOPE_SPANS}, {"schemaUrl", F_SCHEMA_URL}, {NULL, 0}};
static const struct fname res_fields[] = {
    {"attributes", F_ATTRIBUTES}, {"droppedAttributesCount", F_DROPPED_ATTRS}, {NULL, 0}};
static const struct fname ss_fields[] = {
    {"scope", F_SCOPE}, {"spans", F_SPANS}, {"schemaUrl", F_SCHEMA_URL}, {NULL, 0}};
static const struct fname scope_fields[] = {{"name", F_NAME},
                                            {"version", F_VERSION},
                                            {"attributes", F_ATTRIBUTES},
                                            {"droppedAttributesCount", F_DROPPED_ATTRS},
                                            {NULL, 0}};
static const struct fname span_fields[] = {{"traceId", F_TRACE_ID},
                                           {"spanId", F_SPAN_ID},
                                           {"parentSpanId", F_PARENT_SPAN_ID},
                                           {"name", F_NAME},
                                           {"kind", F_KIND},
                                           {"startTimeUnixNano", F_START},
                                           {"endTimeUnixNano", F_END},
                                           {"attributes", F_ATTRIBUTES},
                                           {"droppedAttributesCount", F_DROPPED_ATTRS},
                                           {"events", F_EVENTS},
                                           {"droppedEventsCount", F_DROPPED_EVENTS},
                                           {"links", F_LINKS},
                                           {"droppedLinksCount", F_DROPPED_LINKS},
                                           {"status", F_STATUS},
                                           {"traceState", F_TRACE_STATE},
                                           {"flags", F_FLAGS},
                                           {NULL, 0}};
static const struct fname event_fields[] = {{"timeUnixNano", F_TIME},
                                            {"name", F_NAME},
                                            {"attributes", F_ATTRIBUTES},
                                            {"droppedAttributesCount", F_DROPPED_ATTRS},
                                            {NULL, 0}};
static const struct fname link_fields[] = {{"traceId", F_TRACE_ID},
                                           {"spanId", F_SPAN_ID},
                                           {"traceState", F_TRACE_STATE},
                                           {"attributes", F_ATTRIBUTES},
                                           {"droppedAttributesCount", F_DROPPED_ATTRS},
                                           {"flags", F_FLAGS},
                                           {NULL, 0}};
static const struct fname status_fields[] = {{"message", F_MESSAGE}, {"code", F_CODE}, {NULL, 0}};
static const struct fname kv_fields[] = {{"key", F_KEY}, {"value", F_VALUE}, {NULL, 0}};
static const struct fname any_fields[] = {{"stringValue", F_STRING_VALUE}, {"intValue", F_INT_VALUE},
                                          {"boolValue", F_BOOL_VALUE},     {"doubleValue", F_DOUBLE_VALUE},
                                          {"arrayValue", F_ARRAY_VALUE},   {"kvlistValue", F_KVLIST_VALUE},
                                          {"bytesValue", F_BYTES_VALUE},   {NULL, 0}};
static const struct fname values_fields[] = {{"values", F_VALUES}, {NULL, 0}};

static const struct fname *const kind_fields[] = {
    [K_REQ] = req_fields,     [K_RS] = rs_fields,         [K_RES] = res_fields,   [K_SS] = ss_fields,
    [K_SCOPE] = scope_fields, [K_SPAN] = span_fields,     [K_EVENT] = event_fields, [K_LINK] = link_fields,
    [K_STATUS] = status_fields, [K_KV] = kv_fields,       [K_ANY] = any_fields,   [K_ARRVAL] = values_fields,
    [K_KVLIST] = values_fields,
};

/* The JSON name of a field id, for error messages. */
static const char *field_name(unsigned id)
{
    for (size_t k = 0; k < SX_ARRAY_LEN(kind_fields); k++)
        for (const struct fname *f = kind_fields[k]; f->name; f++)
            if (f->id == id) return f->name;
    return "?";
}

struct frame {
    unsigned char kind;
    unsigned char field; /* object frames: field named by the last key */
    void *obj;           /* object frames: the message being filled */
    void ***items;       /* array frames: the parent's repeated field */
    size_t *n;
    size_t cap;
};

struct ctx {
    struct sx_arena *a;
    const struct sx_otlp_limits *l;
    sx_trace_req *req;
    struct frame *st; /* frames; st[nframes - 1] is the top */
    size_t nframes;
    size_t depth;     /* open containers: frames + skipped ones */
    size_t max_depth;
    size_t skip;      /* > 0 while inside an unknown subtree */
    size_t nspans;
    size_t max_spans;
    int err;
    char *errbuf;
    size_t errlen;
};

static int fail(struct ctx *c, int code, const char *fmt, ...) SX_PRINTF(3, 4);

/* Records the first error; returns 0 so callbacks can `return fail(...)`. */
static int fail(struct ctx *c, int code, const char *fmt, ...)
{
    if (c->err) return 0;
    c->err = code;
    if (c->errbuf && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errbuf, c->errlen, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static int nomem(struct ctx *c)
{
    return fail(c, SX_OTLP_E_NOMEM, "request too large to decode");
}

/* --- yajl allocation from the arena ---------------------------------------
 * yajl reallocs its buffers, and sx_arena_realloc needs the old size: each
 * block carries its size in a 16-byte header (keeping 16-byte alignment). */
#define YHDR 16

static void *y_malloc(void *ctx, size_t n)
{
    if (n > SIZE_MAX - YHDR) return NULL;
    unsigned char *p = sx_arena_alloc(ctx, n + YHDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof(n));
    return p + YHDR;
}

static void *y_realloc(void *ctx, void *ptr, size_t n)
{
    if (!ptr) return y_malloc(ctx, n);
    unsigned char *h = (unsigned char *)ptr - YHDR;
    size_t old;
    memcpy(&old, h, sizeof(old));
    if (n <= old) return ptr;
    if (n > SIZE_MAX - YHDR) return NULL;
    unsigned char *q = sx_arena_realloc(ctx, h, old + YHDR, n + YHDR);
    if (!q) return NULL;
    memcpy(q, &n, sizeof(n));
    return q + YHDR;
}

static void y_free(void *ctx, void *ptr)
{
    SX_UNUSED(ctx);
    SX_UNUSED(ptr);
}

/* --- small parsers ---------------------------------------------------------- */

static unsigned char field_lookup(unsigned kind, const unsigned char *k, size_t n)
{
    for (const struct fname *f = kind_fields[kind]; f->name; f++) {
        const char *s = f->name;
        size_t i = 0;
        for (; i < n; i++) {
            unsigned char ch = k[i];
            if (ch == '_') continue;
            if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
            unsigned char want = (unsigned char)*s;
            if (want >= 'A' && want <= 'Z') want = (unsigned char)(want - 'A' + 'a');
            if (!want || ch != want) break;
            s++;
        }
        if (i == n && !*s) return f->id;
    }
    return F_UNKNOWN;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Hex id into out (empty = absent). Well-formed hex of the wrong length is
 * decoded as is, so validation drops just that span and counts it in
 * partial_success, exactly as for a protobuf body; only text that is not an
 * id at all (odd length, non-hex, absurdly long) fails the request. */
static int parse_id(struct ctx *c, const unsigned char *s, size_t n, size_t want, ProtobufCBinaryData *out,
                    const char *what)
{
    if (n == 0) {
        out->len = 0;
        out->data = NULL;
        return 1;
    }
    if (n % 2 != 0 || n > 4 * want)
        return fail(c, SX_OTLP_E_SCHEMA, "%s must be %zu hex digits, got %zu", what, want * 2, n);
    size_t len = n / 2;
    uint8_t *d = sx_arena_alloc(c->a, len);
    if (!d) return nomem(c);
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return fail(c, SX_OTLP_E_SCHEMA, "%s is not hex", what);
        d[i] = (uint8_t)(hi << 4 | lo);
    }
    out->data = d;
    out->len = len;
    return 1;
}

static int b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62; /* standard and URL-safe alphabets */
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

/* Base64 (padding optional) into arena bytes. */
static int parse_b64(struct ctx *c, const unsigned char *s, size_t n, ProtobufCBinaryData *out)
{
    while (n > 0 && s[n - 1] == '=') n--;
    if (n % 4 == 1) return fail(c, SX_OTLP_E_SCHEMA, "bytesValue is not base64");
    size_t olen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    uint8_t *d = sx_arena_alloc(c->a, olen ? olen : 1);
    if (!d) return nomem(c);
    uint32_t acc = 0;
    size_t o = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(s[i]);
        if (v < 0) return fail(c, SX_OTLP_E_SCHEMA, "bytesValue is not base64");
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = d;
    out->len = o;
    return 1;
}

/* NUL-terminated copy of a short token, for strtod. NULL when too long. */
static const char *token_z(struct ctx *c, const unsigned char *s, size_t n, char *tmp, size_t tmplen)
{
    if (n < tmplen) {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        return tmp;
    }
    return sx_arena_strndup(c->a, (const char *)s, n);
}

/* Whole-token strtod; accepts NaN / Infinity spellings. 0 when not a number. */
static int parse_double_tok(struct ctx *c, const unsigned char *s, size_t n, double *out)
{
    char tmp[80];
    if (n == 0) return 0;
    const char *z = token_z(c, s, n, tmp, sizeof(tmp));
    if (!z) return 0;
    char *end;
    errno = 0;
    double d = strtod(z, &end);
    if (end != z + n) return 0;
    *out = d;
    return 1;
}

/* Unsigned 64-bit decimal (or an integral float like 1.5e18). */
static int parse_u64_tok(struct ctx *c, const unsigned char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (n == 0) return 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) return 0;
        v = v * 10 + dgt;
    }
    if (i == n) {
        *out = v;
        return 1;
    }
    double d;
    if (!parse_double_tok(c, s, n, &d)) return 0;
    if (!(d >= 0 && d < 18446744073709551616.0) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* Signed 64-bit decimal (or an integral float). */
static int parse_i64_tok(struct ctx *c, const unsigned char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    size_t start = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) return 0;
        v = v * 10 + dgt;
    }
    if (i == n && i > start) {
        if (neg) {
            if (v > (uint64_t)INT64_MAX + 1) return 0;
            *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        } else {
            if (v > (uint64_t)INT64_MAX) return 0;
            *out = (int64_t)v;
        }
        return 1;
    }
    double d;
    if (!parse_double_tok(c, s, n, &d)) return 0;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

/* --- scalar values ---------------------------------------------------------- */

enum vtype { V_NULL, V_BOOL, V_NUMBER, V_STRING };

struct val {
    enum vtype t;
    int b;
    const unsigned char *s; /* number text or string bytes (not NUL-terminated) */
    size_t n;
};

static const char *vtype_name(enum vtype t)
{
    switch (t) {
    case V_NULL: return "null";
    case V_BOOL: return "a boolean";
    case V_NUMBER: return "a number";
    case V_STRING: return "a string";
    }
    return "?";
}

static int wrong_type(struct ctx *c, const struct val *v, const char *what)
{
    return fail(c, SX_OTLP_E_SCHEMA, "%s must not be %s", what, vtype_name(v->t));
}

static int set_str(struct ctx *c, const struct val *v, char **dst, const char *what)
{
    if (v->t == V_NULL) return 1;
    if (v->t != V_STRING) return wrong_type(c, v, what);
    char *s = sx_arena_strndup(c->a, (const char *)v->s, v->n);
    if (!s) return nomem(c);
    *dst = s;
    return 1;
}

static int set_u64(struct ctx *c, const struct val *v, uint64_t *dst, const char *what)
{
    if (v->t == V_NULL) return 1;
    if (v->t != V_NUMBER && v->t != V_STRING) return wrong_type(c, v, what);
    if (!parse_u64_tok(c, v->s, v->n, dst))
        return fail(c, SX_OTLP_E_SCHEMA, "%s is not an unsigned 64-bit integer", what);
    return 1;
}

static int set_u32(struct ctx *c, const struct val *v, uint32_t *dst, const char *what)
{
    uint64_t x = 0;
    if (v->t == V_NULL) return 1;
    if (!set_u64(c, v, &x, what)) return 0;
    if (x > UINT32_MAX) return fail(c, SX_OTLP_E_SCHEMA, "%s is out of range", what);
    *dst = (uint32_t)x;
    return 1;
}

/* Enum as an integer, or its proto name (e.g. "SPAN_KIND_SERVER"). */
static int set_enum(struct ctx *c, const struct val *v, const ProtobufCEnumDescriptor *ed, int *dst, const char *what)
{
    if (v->t == V_NULL) return 1;
    if (v->t == V_STRING) {
        char tmp[64];
        int64_t x;
        if (parse_i64_tok(c, v->s, v->n, &x) && x >= INT32_MIN && x <= INT32_MAX) {
            *dst = (int)x;
            return 1;
        }
        if (v->n < sizeof(tmp)) {
            memcpy(tmp, v->s, v->n);
            tmp[v->n] = '\0';
            const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, tmp);
            if (ev) {
                *dst = ev->value;
                return 1;
            }
        }
        return fail(c, SX_OTLP_E_SCHEMA, "%s: unknown value", what);
    }
    if (v->t != V_NUMBER) return wrong_type(c, v, what);
    int64_t x;
    if (!parse_i64_tok(c, v->s, v->n, &x) || x < INT32_MIN || x > INT32_MAX)
        return fail(c, SX_OTLP_E_SCHEMA, "%s is out of range", what);
    *dst = (int)x;
    return 1;
}

static int set_id(struct ctx *c, const struct val *v, size_t want, ProtobufCBinaryData *dst, const char *what)
{
    if (v->t == V_NULL) return 1;
    if (v->t != V_STRING) return wrong_type(c, v, what);
    return parse_id(c, v->s, v->n, want, dst, what);
}

static int any_scalar(struct ctx *c, pb_any *any, unsigned field, const struct val *v)
{
    if (v->t == V_NULL) return 1;
    switch (field) {
    case F_STRING_VALUE:
        if (!set_str(c, v, &any->string_value, "stringValue")) return 0;
        any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        return 1;
    case F_BOOL_VALUE:
        if (v->t == V_BOOL) {
            any->bool_value = v->b ? 1 : 0;
        } else if (v->t == V_STRING && v->n == 4 && !memcmp(v->s, "true", 4)) {
            any->bool_value = 1;
        } else if (v->t == V_STRING && v->n == 5 && !memcmp(v->s, "false", 5)) {
            any->bool_value = 0;
        } else {
            return wrong_type(c, v, "boolValue");
        }
        any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        return 1;
    case F_INT_VALUE: {
        int64_t x;
        if (v->t != V_NUMBER && v->t != V_STRING) return wrong_type(c, v, "intValue");
        if (!parse_i64_tok(c, v->s, v->n, &x))
            return fail(c, SX_OTLP_E_SCHEMA, "intValue is not a 64-bit integer");
        any->int_value = x;
        any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        return 1;
    }
    case F_DOUBLE_VALUE: {
        double d;
        if (v->t != V_NUMBER && v->t != V_STRING) return wrong_type(c, v, "doubleValue");
        if (!parse_double_tok(c, v->s, v->n, &d)) return fail(c, SX_OTLP_E_SCHEMA, "doubleValue is not a number");
        any->double_value = d;
        any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        return 1;
    }
    case F_BYTES_VALUE:
        if (v->t != V_STRING) return wrong_type(c, v, "bytesValue");
        if (!parse_b64(c, v->s, v->n, &any->bytes_value)) return 0;
        any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
        return 1;
    case F_ARRAY_VALUE:
        return wrong_type(c, v, "arrayValue");
    case F_KVLIST_VALUE:
        return wrong_type(c, v, "kvlistValue");
    default:
        return 1;
    }
}

/* A scalar for the field named by the last key of object frame f. */
static int on_scalar(struct ctx *c, const struct val *v)
{
    if (c->err) return 0;
    if (c->skip) return 1;
    if (c->nframes == 0) return fail(c, SX_OTLP_E_SCHEMA, "top-level JSON value must be an object");
    struct frame *f = &c->st[c->nframes - 1];
    if (f->kind >= A_RS) { /* a scalar inside an array of objects */
        if (v->t == V_NULL) return 1;
        return fail(c, SX_OTLP_E_SCHEMA, "array element must be an object, not %s", vtype_name(v->t));
    }
    unsigned field = f->field;
    if (field == F_UNKNOWN || field == F_NONE) return 1;

    switch (f->kind) {
    case K_RS: {
        pb_rs *rs = f->obj;
        if (field == F_SCHEMA_URL) return set_str(c, v, &rs->schema_url, "schemaUrl");
        break;
    }
    case K_RES: {
        pb_resource *r = f->obj;
        if (field == F_DROPPED_ATTRS) return set_u32(c, v, &r->dropped_attributes_count, "droppedAttributesCount");
        break;
    }
    case K_SS: {
        pb_ss *ss = f->obj;
        if (field == F_SCHEMA_URL) return set_str(c, v, &ss->schema_url, "schemaUrl");
        break;
    }
    case K_SCOPE: {
        pb_scope *s = f->obj;
        if (field == F_NAME) return set_str(c, v, &s->name, "scope name");
        if (field == F_VERSION) return set_str(c, v, &s->version, "scope version");
        if (field == F_DROPPED_ATTRS) return set_u32(c, v, &s->dropped_attributes_count, "droppedAttributesCount");
        break;
    }
    case K_SPAN: {
        pb_span *sp = f->obj;
        switch (field) {
        case F_TRACE_ID: return set_id(c, v, 16, &sp->trace_id, "traceId");
        case F_SPAN_ID: return set_id(c, v, 8, &sp->span_id, "spanId");
        case F_PARENT_SPAN_ID: return set_id(c, v, 8, &sp->parent_span_id, "parentSpanId");
        case F_NAME: return set_str(c, v, &sp->name, "span name");
        case F_TRACE_STATE: return set_str(c, v, &sp->trace_state, "traceState");
        case F_FLAGS: return set_u32(c, v, &sp->flags, "flags");
        case F_START: return set_u64(c, v, &sp->start_time_unix_nano, "startTimeUnixNano");
        case F_END: return set_u64(c, v, &sp->end_time_unix_nano, "endTimeUnixNano");
        case F_DROPPED_ATTRS: return set_u32(c, v, &sp->dropped_attributes_count, "droppedAttributesCount");
        case F_DROPPED_EVENTS: return set_u32(c, v, &sp->dropped_events_count, "droppedEventsCount");
        case F_DROPPED_LINKS: return set_u32(c, v, &sp->dropped_links_count, "droppedLinksCount");
        case F_KIND: {
            int k = (int)sp->kind;
            if (!set_enum(c, v, &opentelemetry__proto__trace__v1__span__span_kind__descriptor, &k, "kind")) return 0;
            sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)k;
            return 1;
        }
        default: break;
        }
        break;
    }
    case K_EVENT: {
        pb_event *e = f->obj;
        if (field == F_TIME) return set_u64(c, v, &e->time_unix_nano, "timeUnixNano");
        if (field == F_NAME) return set_str(c, v, &e->name, "event name");
        if (field == F_DROPPED_ATTRS) return set_u32(c, v, &e->dropped_attributes_count, "droppedAttributesCount");
        break;
    }
    case K_LINK: {
        pb_link *lk = f->obj;
        if (field == F_TRACE_ID) return set_id(c, v, 16, &lk->trace_id, "link traceId");
        if (field == F_SPAN_ID) return set_id(c, v, 8, &lk->span_id, "link spanId");
        if (field == F_TRACE_STATE) return set_str(c, v, &lk->trace_state, "link traceState");
        if (field == F_FLAGS) return set_u32(c, v, &lk->flags, "link flags");
        if (field == F_DROPPED_ATTRS) return set_u32(c, v, &lk->dropped_attributes_count, "droppedAttributesCount");
        break;
    }
    case K_STATUS: {
        pb_status *s = f->obj;
        if (field == F_MESSAGE) return set_str(c, v, &s->message, "status message");
        if (field == F_CODE) {
            int k = (int)s->code;
            if (!set_enum(c, v, &opentelemetry__proto__trace__v1__status__status_code__descriptor, &k, "status code"))
                return 0;
            s->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)k;
            return 1;
        }
        break;
    }
    case K_KV: {
        pb_kv *kv = f->obj;
        if (field == F_KEY) return set_str(c, v, &kv->key, "attribute key");
        break;
    }
    case K_ANY:
        return any_scalar(c, f->obj, field, v);
    default:
        break;
    }
    /* A known field that holds an object or array got a scalar. */
    if (v->t == V_NULL) return 1;
    return fail(c, SX_OTLP_E_SCHEMA, "%s must be an object or array, not %s", field_name(field), vtype_name(v->t));
}

/* --- containers -------------------------------------------------------------- */

static struct frame *push(struct ctx *c, unsigned kind)
{
    struct frame *f = &c->st[c->nframes++];
    memset(f, 0, sizeof(*f));
    f->kind = (unsigned char)kind;
    return f;
}

static int enter(struct ctx *c)
{
    if (c->err) return 0;
    if (c->depth + 1 > c->max_depth)
        return fail(c, SX_OTLP_E_JSON_DEPTH, "JSON nested deeper than %zu", c->max_depth);
    c->depth++;
    return 1;
}

/* Allocates and initializes one message; NULL (error set) when the cap is hit. */
static void *new_msg(struct ctx *c, size_t size, void (*init)(void *))
{
    void *m = sx_arena_alloc(c->a, size);
    if (!m) {
        nomem(c);
        return NULL;
    }
    init(m);
    return m;
}

/* Casts of the generated __init functions, which take typed pointers. */
static void init_rs(void *m) { opentelemetry__proto__trace__v1__resource_spans__init(m); }
static void init_ss(void *m) { opentelemetry__proto__trace__v1__scope_spans__init(m); }
static void init_span(void *m) { opentelemetry__proto__trace__v1__span__init(m); }
static void init_event(void *m) { opentelemetry__proto__trace__v1__span__event__init(m); }
static void init_link(void *m) { opentelemetry__proto__trace__v1__span__link__init(m); }
static void init_status(void *m) { opentelemetry__proto__trace__v1__status__init(m); }
static void init_resource(void *m) { opentelemetry__proto__resource__v1__resource__init(m); }
static void init_scope(void *m) { opentelemetry__proto__common__v1__instrumentation_scope__init(m); }
static void init_kv(void *m) { opentelemetry__proto__common__v1__key_value__init(m); }
static void init_any(void *m) { opentelemetry__proto__common__v1__any_value__init(m); }
static void init_arr(void *m) { opentelemetry__proto__common__v1__array_value__init(m); }
static void init_kvlist(void *m) { opentelemetry__proto__common__v1__key_value_list__init(m); }

/* Appends item to the repeated field of array frame f, growing geometrically. */
static int append(struct ctx *c, struct frame *f, void *item)
{
    if (*f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 4;
        if (ncap < *f->n + 1) ncap = *f->n + 1;
        void **p = sx_arena_realloc(c->a, *f->items, f->cap * sizeof(void *), ncap * sizeof(void *));
        if (!p) return nomem(c);
        *f->items = p;
        f->cap = ncap;
    }
    (*f->items)[(*f->n)++] = item;
    return 1;
}

/* Opens an object as an element of array frame f. */
static int open_element(struct ctx *c, struct frame *f)
{
    void *m = NULL;
    unsigned kind = 0;
    switch (f->kind) {
    case A_RS: m = new_msg(c, sizeof(pb_rs), init_rs); kind = K_RS; break;
    case A_SS: m = new_msg(c, sizeof(pb_ss), init_ss); kind = K_SS; break;
    case A_SPAN:
        if (++c->nspans > c->max_spans)
            return fail(c, SX_OTLP_E_TOO_MANY, "more than %zu spans in one request", c->max_spans);
        m = new_msg(c, sizeof(pb_span), init_span);
        kind = K_SPAN;
        break;
    case A_EVENT: m = new_msg(c, sizeof(pb_event), init_event); kind = K_EVENT; break;
    case A_LINK: m = new_msg(c, sizeof(pb_link), init_link); kind = K_LINK; break;
    case A_KV: m = new_msg(c, sizeof(pb_kv), init_kv); kind = K_KV; break;
    case A_ANY: m = new_msg(c, sizeof(pb_any), init_any); kind = K_ANY; break;
    default: return fail(c, SX_OTLP_E_SCHEMA, "unexpected object");
    }
    if (!m) return 0;
    if (!append(c, f, m)) return 0;
    push(c, kind)->obj = m;
    return 1;
}

/* Opens an object as the value of the current field of object frame f. */
static int open_member(struct ctx *c, struct frame *f)
{
    unsigned field = f->field;
    void **slot = NULL;
    void (*init)(void *) = NULL;
    size_t size = 0;
    unsigned kind = 0;

    if (field == F_UNKNOWN || field == F_NONE) {
        c->skip = 1;
        return 1;
    }
    if (f->kind == K_RS && field == F_RESOURCE) {
        slot = (void **)&((pb_rs *)f->obj)->resource;
        init = init_resource, size = sizeof(pb_resource), kind = K_RES;
    } else if (f->kind == K_SS && field == F_SCOPE) {
        slot = (void **)&((pb_ss *)f->obj)->scope;
        init = init_scope, size = sizeof(pb_scope), kind = K_SCOPE;
    } else if (f->kind == K_SPAN && field == F_STATUS) {
        slot = (void **)&((pb_span *)f->obj)->status;
        init = init_status, size = sizeof(pb_status), kind = K_STATUS;
    } else if (f->kind == K_KV && field == F_VALUE) {
        slot = (void **)&((pb_kv *)f->obj)->value;
        init = init_any, size = sizeof(pb_any), kind = K_ANY;
    } else if (f->kind == K_ANY && (field == F_ARRAY_VALUE || field == F_KVLIST_VALUE)) {
        pb_any *any = f->obj;
        if (field == F_ARRAY_VALUE) {
            pb_arr *arr = new_msg(c, sizeof(pb_arr), init_arr);
            if (!arr) return 0;
            any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            any->array_value = arr;
            push(c, K_ARRVAL)->obj = arr;
        } else {
            pb_kvlist *kl = new_msg(c, sizeof(pb_kvlist), init_kvlist);
            if (!kl) return 0;
            any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
            any->kvlist_value = kl;
            push(c, K_KVLIST)->obj = kl;
        }
        return 1;
    } else {
        return fail(c, SX_OTLP_E_SCHEMA, "%s must not be an object", field_name(field));
    }
    if (!*slot) { /* a repeated key merges into the same message */
        *slot = new_msg(c, size, init);
        if (!*slot) return 0;
    }
    push(c, kind)->obj = *slot;
    return 1;
}

static int cb_start_map(void *ctx)
{
    struct ctx *c = ctx;
    if (!enter(c)) return 0;
    if (c->skip) {
        c->skip++;
        return 1;
    }
    if (c->nframes == 0) {
        push(c, K_REQ)->obj = c->req;
        return 1;
    }
    struct frame *f = &c->st[c->nframes - 1];
    if (f->kind >= A_RS) return open_element(c, f);
    return open_member(c, f);
}

static int cb_start_array(void *ctx)
{
    struct ctx *c = ctx;
    if (!enter(c)) return 0;
    if (c->skip) {
        c->skip++;
        return 1;
    }
    if (c->nframes == 0) return fail(c, SX_OTLP_E_SCHEMA, "top-level JSON value must be an object");
    struct frame *f = &c->st[c->nframes - 1];
    if (f->kind >= A_RS) return fail(c, SX_OTLP_E_SCHEMA, "array element must be an object, not an array");
    unsigned field = f->field;
    void ***items = NULL;
    size_t *n = NULL;
    unsigned kind = 0;

    if (field == F_UNKNOWN || field == F_NONE) {
        c->skip = 1;
        return 1;
    }
#define ARR(ptr, member, k) (items = (void ***)&(ptr)->member, n = &(ptr)->n_##member, kind = (k))
    switch (f->kind) {
    case K_REQ:
        if (field == F_RESOURCE_SPANS) ARR((sx_trace_req *)f->obj, resource_spans, A_RS);
        break;
    case K_RS:
        if (field == F_SCOPE_SPANS) ARR((pb_rs *)f->obj, scope_spans, A_SS);
        break;
    case K_SS:
        if (field == F_SPANS) ARR((pb_ss *)f->obj, spans, A_SPAN);
        break;
    case K_RES:
        if (field == F_ATTRIBUTES) ARR((pb_resource *)f->obj, attributes, A_KV);
        break;
    case K_SCOPE:
        if (field == F_ATTRIBUTES) ARR((pb_scope *)f->obj, attributes, A_KV);
        break;
    case K_SPAN:
        if (field == F_ATTRIBUTES) ARR((pb_span *)f->obj, attributes, A_KV);
        else if (field == F_EVENTS) ARR((pb_span *)f->obj, events, A_EVENT);
        else if (field == F_LINKS) ARR((pb_span *)f->obj, links, A_LINK);
        break;
    case K_EVENT:
        if (field == F_ATTRIBUTES) ARR((pb_event *)f->obj, attributes, A_KV);
        break;
    case K_LINK:
        if (field == F_ATTRIBUTES) ARR((pb_link *)f->obj, attributes, A_KV);
        break;
    case K_KVLIST:
        if (field == F_VALUES) ARR((pb_kvlist *)f->obj, values, A_KV);
        break;
    case K_ARRVAL:
        if (field == F_VALUES) ARR((pb_arr *)f->obj, values, A_ANY);
        break;
    default:
        break;
    }
#undef ARR
    if (!items) return fail(c, SX_OTLP_E_SCHEMA, "%s must not be an array", field_name(field));
    struct frame *af = push(c, kind);
    af->items = items;
    af->n = n;
    af->cap = *n; /* a repeated key appends to what is there */
    return 1;
}

static int cb_end(void *ctx)
{
    struct ctx *c = ctx;
    if (c->err) return 0;
    c->depth--;
    if (c->skip) {
        c->skip--;
        return 1;
    }
    c->nframes--;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *k, size_t n)
{
    struct ctx *c = ctx;
    if (c->err) return 0;
    if (c->skip) return 1;
    struct frame *f = &c->st[c->nframes - 1];
    f->field = field_lookup(f->kind, k, n);
    return 1;
}

static int cb_null(void *ctx)
{
    struct val v = {V_NULL, 0, NULL, 0};
    return on_scalar(ctx, &v);
}

static int cb_bool(void *ctx, int b)
{
    struct val v = {V_BOOL, b, NULL, 0};
    return on_scalar(ctx, &v);
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    struct val v = {V_NUMBER, 0, (const unsigned char *)s, n};
    return on_scalar(ctx, &v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct val v = {V_STRING, 0, s, n};
    return on_scalar(ctx, &v);
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string, cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

int sx_otlp_trace_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                              sx_trace_req **out, char *err, size_t errlen)
{
    struct ctx c;
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, a};

    *out = NULL;
    if (err && errlen) err[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.l = l;
    c.errbuf = err;
    c.errlen = errlen;
    c.max_depth = l->max_json_depth ? l->max_json_depth : JSON_DEFAULT_DEPTH;
    c.max_spans = l->max_spans ? l->max_spans : SIZE_MAX;
    c.st = sx_arena_alloc(a, (c.max_depth + 1) * sizeof(*c.st));
    c.req = sx_arena_alloc(a, sizeof(*c.req));
    if (!c.st || !c.req) {
        nomem(&c);
        return c.err;
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(c.req);

    yajl_handle h = yajl_alloc(&callbacks, &af, &c);
    if (!h) {
        nomem(&c);
        return c.err;
    }
    yajl_status ys = yajl_parse(h, buf ? buf : (const uint8_t *)"", len);
    if (ys == yajl_status_ok) ys = yajl_complete_parse(h);
    if (ys != yajl_status_ok && !c.err) {
        if (sx_arena_failed(a)) {
            nomem(&c);
        } else {
            unsigned char *msg = yajl_get_error(h, 0, buf, len);
            fail(&c, SX_OTLP_E_JSON, "invalid JSON: %s", msg ? (const char *)msg : "syntax error");
            if (msg) yajl_free_error(h, msg);
            /* yajl's message ends with a newline: drop it. */
            if (err && errlen) {
                size_t el = strlen(err);
                while (el > 0 && (err[el - 1] == '\n' || err[el - 1] == ' ')) err[--el] = '\0';
            }
        }
    }
    yajl_free(h);
    if (c.err) return c.err;
    *out = c.req;
    return SX_OTLP_OK;
}
