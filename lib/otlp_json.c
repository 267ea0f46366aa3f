/* otlp_json.c: OTLP/JSON request decoding into protobuf-c structs, for every
 * signal (traces, logs, metrics).
 *
 * Design: yajl's callback parser drives a small stack machine steered by the
 * protobuf-c descriptors of the request type, so one engine decodes every
 * OTLP message and the JSON result is exactly the struct protobuf-c's unpack
 * would give. Each frame is either an object being filled (a message, with
 * the field named by the last key) or an array appending to a repeated field
 * (of messages or of scalars) of its parent. Unknown keys holding objects or
 * arrays are skipped as whole subtrees by a counter, without frames. yajl and
 * every struct allocate from the request arena, so nothing is freed one by
 * one.
 *
 * OTLP/JSON rules (opentelemetry-proto docs/specification.md, "JSON Protobuf
 * Encoding"): lowerCamelCase keys (snake_case accepted: keys match field
 * names ignoring case and '_'), trace and span ids as hex (empty string =
 * absent), other bytes as base64, 64-bit integers as strings or numbers,
 * enums as integers (proto names accepted too), doubles as numbers or
 * strings ("NaN", "Infinity"), unknown fields ignored, null = absent. Setting
 * a member of a oneof selects it (AnyValue values, NumberDataPoint asInt /
 * asDouble, the histogram sum/min/max presence oneofs). A wrong type for a
 * known field is a schema error. */
#include "otlp_int.h"

#include <yajl/yajl_parse.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON nesting allowed when the limits say nothing. */
#define JSON_DEFAULT_DEPTH 64

struct frame {
    const ProtobufCMessageDescriptor *desc; /* object frames: the message's type */
    ProtobufCMessage *msg;                  /* object frames: the message being filled;
                                               array frames: the message owning the field */
    const ProtobufCFieldDescriptor *field;  /* object frames: named by the last key (NULL:
                                               unknown); array frames: the repeated field */
    size_t cap;                             /* array frames: elements allocated */
    int is_array;
};

/* Key lookups repeat (every span has the same keys): a small direct-mapped
 * cache of (message type, key) -> field, per request, skips the search. */
#define KEY_CACHE_SLOTS 128
#define KEY_CACHE_LEN 30

struct key_slot {
    const ProtobufCMessageDescriptor *desc; /* NULL: empty slot */
    const ProtobufCFieldDescriptor *fd;     /* NULL: unknown key */
    unsigned char len;
    char key[KEY_CACHE_LEN];
};

struct ctx {
    struct key_slot keys[KEY_CACHE_SLOTS];
    struct sx_arena *a;
    const struct sx_otlp_limits *l;
    const struct sx_otlp_schema *schema;
    ProtobufCMessage *req;
    struct frame *st; /* frames; st[nframes - 1] is the top */
    size_t nframes;
    size_t depth;     /* open containers: frames + skipped ones */
    size_t max_depth;
    size_t skip;      /* > 0 while inside an unknown subtree */
    size_t nitems;
    size_t max_items;
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


/* --- field names ---------------------------------------------------------------- */

/* Lowercase ASCII letter, else the byte itself. */
static unsigned char lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/* The field of desc that JSON key k names: its proto name compared ignoring
 * case and '_', so "startTimeUnixNano" and "start_time_unix_nano" both find
 * start_time_unix_nano. NULL when unknown. The usual keys (lowerCamelCase or
 * snake_case) are found by protobuf-c's binary search on the snake_case
 * spelling; anything else falls back to a scan with the lenient comparison. */
static const ProtobufCFieldDescriptor *field_lookup(const ProtobufCMessageDescriptor *desc, const unsigned char *k,
                                                   size_t n)
{
    char snake[64];
    size_t o = 0, j = 0;
    for (; j < n && o + 2 < sizeof(snake); j++) {
        unsigned char ch = k[j];
        if (ch >= 'A' && ch <= 'Z') {
            snake[o++] = '_';
            ch = lower(ch);
        } else if (!ch) {
            break;
        }
        snake[o++] = (char)ch;
    }
    if (j == n) {
        snake[o] = '\0';
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(desc, snake);
        if (fd) return fd;
    }
    for (unsigned f = 0; f < desc->n_fields; f++) {
        const unsigned char *s = (const unsigned char *)desc->fields[f].name;
        size_t i = 0;
        for (;;) {
            while (i < n && k[i] == '_') i++;
            while (*s == '_') s++;
            if (i == n || !*s) break;
            if (lower(k[i]) != lower(*s)) break;
            i++;
            s++;
        }
        if (i == n && !*s) return &desc->fields[f];
    }
    return NULL;
}

/* The lowerCamelCase JSON name of a field, for error messages. */
static const char *json_name(const ProtobufCFieldDescriptor *fd, char *out, size_t outlen)
{
    size_t o = 0;
    int up = 0;
    for (const char *s = fd->name; *s && o + 1 < outlen; s++) {
        if (*s == '_') {
            up = 1;
            continue;
        }
        out[o++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        up = 0;
    }
    out[o] = '\0';
    return out;
}

/* Bytes fields holding trace/span ids are hex in OTLP/JSON: their length in
 * bytes, or 0 for a base64 field. */
static size_t id_len(const ProtobufCFieldDescriptor *fd)
{
    if (!strcmp(fd->name, "trace_id")) return 16;
    if (!strcmp(fd->name, "span_id") || !strcmp(fd->name, "parent_span_id")) return 8;
    return 0;
}

/* --- small parsers ---------------------------------------------------------- */

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

/* One scalar of any field type, parsed before it is stored. */
union scalar {
    char *str;
    ProtobufCBinaryData bytes;
    protobuf_c_boolean boolean;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f;
    double d;
    int e;
};

/* Bytes one value of a field type takes in a protobuf-c struct. */
static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Enum as an integer, or its proto name (e.g. "SPAN_KIND_SERVER"). */
static int parse_enum(struct ctx *c, const struct val *v, const ProtobufCEnumDescriptor *ed, int *dst,
                      const char *what)
{
    int64_t x;
    if (v->t == V_STRING) {
        char tmp[64];
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
    if (!parse_i64_tok(c, v->s, v->n, &x) || x < INT32_MIN || x > INT32_MAX)
        return fail(c, SX_OTLP_E_SCHEMA, "%s is out of range", what);
    *dst = (int)x;
    return 1;
}

/* Parses a non-null scalar for field fd into *out; 0 (error set) when it
 * has the wrong type or does not fit. */
static int parse_scalar(struct ctx *c, const ProtobufCFieldDescriptor *fd, const struct val *v, union scalar *out)
{
    char what[64]; /* the JSON name, made only for ids, enums and errors */
    int64_t i;
    uint64_t u;
#define WHAT json_name(fd, what, sizeof(what))
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (v->t != V_STRING) return wrong_type(c, v, WHAT);
        out->str = sx_arena_strndup(c->a, (const char *)v->s, v->n);
        return out->str ? 1 : nomem(c);
    case PROTOBUF_C_TYPE_BYTES: {
        size_t want = id_len(fd);
        if (v->t != V_STRING) return wrong_type(c, v, WHAT);
        if (want) return parse_id(c, v->s, v->n, want, &out->bytes, WHAT);
        if (!parse_b64(c, v->s, v->n, &out->bytes)) return 0;
        return 1;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (v->t == V_BOOL) {
            out->boolean = v->b ? 1 : 0;
        } else if (v->t == V_STRING && v->n == 4 && !memcmp(v->s, "true", 4)) {
            out->boolean = 1;
        } else if (v->t == V_STRING && v->n == 5 && !memcmp(v->s, "false", 5)) {
            out->boolean = 0;
        } else {
            return wrong_type(c, v, WHAT);
        }
        return 1;
    case PROTOBUF_C_TYPE_ENUM:
        return parse_enum(c, v, fd->descriptor, &out->e, WHAT);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d;
        if (v->t != V_NUMBER && v->t != V_STRING) return wrong_type(c, v, WHAT);
        if (!parse_double_tok(c, v->s, v->n, &d)) return fail(c, SX_OTLP_E_SCHEMA, "%s is not a number", WHAT);
        if (fd->type == PROTOBUF_C_TYPE_FLOAT)
            out->f = (float)d;
        else
            out->d = d;
        return 1;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    default: /* integers */
        if (v->t != V_NUMBER && v->t != V_STRING) return wrong_type(c, v, WHAT);
        break;
    }
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!parse_i64_tok(c, v->s, v->n, &i)) return fail(c, SX_OTLP_E_SCHEMA, "%s is not an integer", WHAT);
        if (i < INT32_MIN || i > INT32_MAX) return fail(c, SX_OTLP_E_SCHEMA, "%s is out of range", WHAT);
        out->i32 = (int32_t)i;
        return 1;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!parse_u64_tok(c, v->s, v->n, &u))
            return fail(c, SX_OTLP_E_SCHEMA, "%s is not an unsigned 64-bit integer", WHAT);
        if (u > UINT32_MAX) return fail(c, SX_OTLP_E_SCHEMA, "%s is out of range", WHAT);
        out->u32 = (uint32_t)u;
        return 1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!parse_i64_tok(c, v->s, v->n, &i))
            return fail(c, SX_OTLP_E_SCHEMA, "%s is not a 64-bit integer", WHAT);
        out->i64 = i;
        return 1;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!parse_u64_tok(c, v->s, v->n, &u))
            return fail(c, SX_OTLP_E_SCHEMA, "%s is not an unsigned 64-bit integer", WHAT);
        out->u64 = u;
        return 1;
    default:
        /* A known field that holds an object or array got a scalar. */
        return fail(c, SX_OTLP_E_SCHEMA, "%s must be an object or array, not %s", WHAT, vtype_name(v->t));
    }
}
#undef WHAT

/* Marks singular field fd of m present: the oneof case, or proto2 has_. */
static void mark_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    char *base = (char *)m;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(void *)(base + fd->quantifier_offset) = fd->id;
    else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->type != PROTOBUF_C_TYPE_MESSAGE &&
             fd->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(void *)(base + fd->quantifier_offset) = 1;
}

/* Appends one element slot to the repeated field of array frame f, growing
 * geometrically; NULL (error set) when the cap is hit. */
static void *append_slot(struct ctx *c, struct frame *f)
{
    size_t es = type_size(f->field->type);
    char *base = (char *)f->msg;
    size_t *n = (size_t *)(void *)(base + f->field->quantifier_offset);
    void **arr = (void **)(void *)(base + f->field->offset);
    if (*n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 4;
        if (ncap < *n + 1) ncap = *n + 1;
        if (ncap > SIZE_MAX / es) {
            nomem(c);
            return NULL;
        }
        void *p = sx_arena_realloc(c->a, *arr, f->cap * es, ncap * es);
        if (!p) {
            nomem(c);
            return NULL;
        }
        *arr = p;
        f->cap = ncap;
    }
    return (char *)*arr + (*n)++ * es;
}

/* A scalar for the top frame: a field of an object, or an array element. */
static int on_scalar(struct ctx *c, const struct val *v)
{
    union scalar x;
    char what[64];
    if (c->err) return 0;
    if (c->skip) return 1;
    if (c->nframes == 0) return fail(c, SX_OTLP_E_SCHEMA, "top-level JSON value must be an object");
    struct frame *f = &c->st[c->nframes - 1];
    const ProtobufCFieldDescriptor *fd = f->field;
    if (f->is_array) {
        if (v->t == V_NULL) return 1;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
            return fail(c, SX_OTLP_E_SCHEMA, "array element must be an object, not %s", vtype_name(v->t));
        memset(&x, 0, sizeof(x));
        if (!parse_scalar(c, fd, v, &x)) return 0;
        void *slot = append_slot(c, f);
        if (!slot) return 0;
        memcpy(slot, &x, type_size(fd->type));
        return 1;
    }
    if (!fd || v->t == V_NULL) return 1; /* unknown field, or absent */
    if (fd->label == PROTOBUF_C_LABEL_REPEATED)
        return fail(c, SX_OTLP_E_SCHEMA, "%s must be an array, not %s", json_name(fd, what, sizeof(what)),
                    vtype_name(v->t));
    memset(&x, 0, sizeof(x));
    if (!parse_scalar(c, fd, v, &x)) return 0;
    memcpy((char *)f->msg + fd->offset, &x, type_size(fd->type));
    mark_present(f->msg, fd);
    return 1;
}

/* --- containers -------------------------------------------------------------- */

static int enter(struct ctx *c)
{
    if (c->err) return 0;
    if (c->depth + 1 > c->max_depth)
        return fail(c, SX_OTLP_E_JSON_DEPTH, "JSON nested deeper than %zu", c->max_depth);
    c->depth++;
    return 1;
}

static void push_object(struct ctx *c, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *m)
{
    struct frame *f = &c->st[c->nframes++];
    memset(f, 0, sizeof(*f));
    f->desc = desc;
    f->msg = m;
}

/* Allocates and initializes one message; NULL (error set) when the cap is hit. */
static ProtobufCMessage *new_msg(struct ctx *c, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = sx_arena_alloc(c->a, desc->sizeof_message);
    if (!m) {
        nomem(c);
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

/* Nonzero when d is one of the schema's counted item types. */
static int is_item(const struct ctx *c, const ProtobufCMessageDescriptor *d)
{
    for (const ProtobufCMessageDescriptor *const *p = c->schema->items; p && *p; p++)
        if (*p == d) return 1;
    return 0;
}

/* Opens an object as an element of array frame f. */
static int open_element(struct ctx *c, struct frame *f)
{
    char what[64];
    const ProtobufCFieldDescriptor *fd = f->field;
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
        return fail(c, SX_OTLP_E_SCHEMA, "%s elements must not be objects", json_name(fd, what, sizeof(what)));
    if (is_item(c, fd->descriptor) && ++c->nitems > c->max_items)
        return fail(c, SX_OTLP_E_TOO_MANY, "more than %zu %s in one request", c->max_items, c->schema->noun);
    ProtobufCMessage *m = new_msg(c, fd->descriptor);
    if (!m) return 0;
    ProtobufCMessage **slot = append_slot(c, f);
    if (!slot) return 0;
    *slot = m;
    push_object(c, fd->descriptor, m);
    return 1;
}

/* Opens an object as the value of the current field of object frame f. */
static int open_member(struct ctx *c, struct frame *f)
{
    char what[64];
    const ProtobufCFieldDescriptor *fd = f->field;
    if (!fd) {
        c->skip = 1;
        return 1;
    }
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE || fd->label == PROTOBUF_C_LABEL_REPEATED)
        return fail(c, SX_OTLP_E_SCHEMA, "%s must not be an object", json_name(fd, what, sizeof(what)));
    char *base = (char *)f->msg;
    ProtobufCMessage **slot = (ProtobufCMessage **)(void *)(base + fd->offset);
    /* A repeated key merges into the same message, unless a oneof held
     * another member (its union slot then is not this message). */
    int reuse = *slot != NULL;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        reuse = reuse && *(const uint32_t *)(const void *)(base + fd->quantifier_offset) == fd->id;
    if (!reuse) {
        *slot = new_msg(c, fd->descriptor);
        if (!*slot) return 0;
    }
    mark_present(f->msg, fd);
    push_object(c, fd->descriptor, *slot);
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
        push_object(c, c->schema->request, c->req);
        return 1;
    }
    struct frame *f = &c->st[c->nframes - 1];
    if (f->is_array) return open_element(c, f);
    return open_member(c, f);
}

static int cb_start_array(void *ctx)
{
    struct ctx *c = ctx;
    char what[64];
    if (!enter(c)) return 0;
    if (c->skip) {
        c->skip++;
        return 1;
    }
    if (c->nframes == 0) return fail(c, SX_OTLP_E_SCHEMA, "top-level JSON value must be an object");
    struct frame *f = &c->st[c->nframes - 1];
    if (f->is_array) return fail(c, SX_OTLP_E_SCHEMA, "array element must not be an array");
    const ProtobufCFieldDescriptor *fd = f->field;
    if (!fd) {
        c->skip = 1;
        return 1;
    }
    if (fd->label != PROTOBUF_C_LABEL_REPEATED)
        return fail(c, SX_OTLP_E_SCHEMA, "%s must not be an array", json_name(fd, what, sizeof(what)));
    ProtobufCMessage *owner = f->msg;
    struct frame *af = &c->st[c->nframes++];
    memset(af, 0, sizeof(*af));
    af->is_array = 1;
    af->msg = owner;
    af->field = fd;
    af->cap = *(const size_t *)(const void *)((const char *)owner + fd->quantifier_offset); /* a repeated key appends */
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
    if (n > KEY_CACHE_LEN) {
        f->field = field_lookup(f->desc, k, n);
        return 1;
    }
    uint32_t h = (uint32_t)((uintptr_t)f->desc >> 4) * 2654435761u;
    for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
    struct key_slot *s = &c->keys[(h >> 8) % KEY_CACHE_SLOTS];
    if (s->desc == f->desc && s->len == n && !memcmp(s->key, k, n)) {
        f->field = s->fd;
        return 1;
    }
    f->field = field_lookup(f->desc, k, n);
    s->desc = f->desc;
    s->fd = f->field;
    s->len = (unsigned char)n;
    memcpy(s->key, k, n);
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

int sx_otlp_json_decode(const uint8_t *buf, size_t len, const struct sx_otlp_schema *s, struct sx_arena *a,
                        const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen)
{
    struct ctx c;
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, a};

    *out = NULL;
    if (err && errlen) err[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.l = l;
    c.schema = s;
    c.errbuf = err;
    c.errlen = errlen;
    c.max_depth = l->max_json_depth ? l->max_json_depth : JSON_DEFAULT_DEPTH;
    c.max_items = s->max_items ? s->max_items : SIZE_MAX;
    c.st = sx_arena_alloc(a, (c.max_depth + 1) * sizeof(*c.st));
    c.req = sx_arena_alloc(a, s->request->sizeof_message);
    if (!c.st || !c.req) {
        nomem(&c);
        return c.err;
    }
    protobuf_c_message_init(s->request, c.req);

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

static const ProtobufCMessageDescriptor *const trace_items[] = {&opentelemetry__proto__trace__v1__span__descriptor,
                                                                NULL};

int sx_otlp_trace_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                              sx_trace_req **out, char *err, size_t errlen)
{
    struct sx_otlp_schema s = {&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                               trace_items, l->max_spans, "spans"};
    return sx_otlp_json_decode(buf, len, &s, a, l, (ProtobufCMessage **)out, err, errlen);
}
