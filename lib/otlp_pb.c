/* otlp_pb.c: OTLP protobuf decoding (every signal), trace packing, export
 * responses and google.rpc.Status bodies.
 *
 * Before protobuf-c unpacks a request, one cheap pass over the wire format
 * (schema-aware, iterative) checks message nesting and counts items (spans,
 * log records, data points). That bounds the recursion depth of
 * protobuf_c_message_unpack (which has no depth limit of its own: a body of
 * nested AnyValue arrays could overflow the stack) and rejects a request with
 * too many items before allocating it. */
#include "otlp_int.h"

#include "buf.h"
#include "json.h"

#include "google/rpc/status.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Message nesting allowed in protobuf bodies when the limits say nothing. */
#define PB_DEFAULT_DEPTH 64

static void set_err(char *err, size_t errlen, const char *fmt, ...) SX_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void sx_otlp_limits_from_config(struct sx_otlp_limits *l, const struct sx_config *c)
{
    l->max_json_depth = (size_t)c->max_json_depth;
    l->max_spans = (size_t)c->max_spans_per_request;
    l->max_attributes = (size_t)c->max_attributes;
    l->max_attr_key_len = (size_t)c->max_attr_key_len;
    l->max_attr_value_len = (size_t)c->max_attr_value_len;
    l->max_any_value_depth = (size_t)c->max_any_value_depth;
    l->max_events = (size_t)c->max_events_per_span;
    l->max_links = (size_t)c->max_links_per_span;
    l->max_log_records = (size_t)c->max_log_records_per_request;
    l->max_points = (size_t)c->max_points_per_request;
    l->max_log_body_len = (size_t)c->max_log_body_len;
}

/* Reads a varint at *p (< end); 0 on success, -1 when truncated or > 10 bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    const uint8_t *q = *p;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (q >= end) return -1;
        uint8_t b = *q++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *v = r;
            return 0;
        }
    }
    return -1;
}

struct scan_frame {
    const ProtobufCMessageDescriptor *desc;
    const uint8_t *end;
};

/* Nonzero when d is one of the item descriptors (NULL-terminated). */
static int is_item(const ProtobufCMessageDescriptor *const *items, const ProtobufCMessageDescriptor *d)
{
    for (; *items; items++)
        if (*items == d) return 1;
    return 0;
}

/* Walks the wire format of a message of type desc without allocating
 * anything but the frame stack. Returns SX_OTLP_OK, SX_OTLP_E_PROTOBUF
 * (malformed or nested deeper than max_depth), SX_OTLP_E_TOO_MANY or
 * SX_OTLP_E_NOMEM; counts messages of the item types in *count. */
static int pb_prescan(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *desc,
                      const ProtobufCMessageDescriptor *const *items, size_t max_count, const char *noun,
                      size_t max_depth, struct sx_arena *a, size_t *count, char *err, size_t errlen)
{
    struct scan_frame *st = sx_arena_alloc(a, (max_depth + 1) * sizeof(*st));
    if (!st) {
        set_err(err, errlen, "out of memory");
        return SX_OTLP_E_NOMEM;
    }
    size_t top = 0;
    const uint8_t *p = buf;
    st[0].desc = desc;
    st[0].end = buf + len;
    *count = 0;

    for (;;) {
        if (p == st[top].end) {
            if (top == 0) return SX_OTLP_OK;
            top--;
            continue;
        }
        uint64_t tag, v;
        if (read_varint(&p, st[top].end, &tag) != 0) goto bad;
        uint64_t field = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (field == 0 || field > 0x1fffffff) goto bad;
        switch (wt) {
        case 0: /* varint */
            if (read_varint(&p, st[top].end, &v) != 0) goto bad;
            break;
        case 1: /* 64-bit */
            if ((size_t)(st[top].end - p) < 8) goto bad;
            p += 8;
            break;
        case 5: /* 32-bit */
            if ((size_t)(st[top].end - p) < 4) goto bad;
            p += 4;
            break;
        case 2: { /* length-delimited */
            if (read_varint(&p, st[top].end, &v) != 0) goto bad;
            if (v > (uint64_t)(st[top].end - p)) goto bad;
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(st[top].desc, (unsigned)field);
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (top + 1 > max_depth) {
                    set_err(err, errlen, "protobuf messages nested deeper than %zu", max_depth);
                    return SX_OTLP_E_PROTOBUF;
                }
                top++;
                st[top].desc = fd->descriptor;
                st[top].end = p + v;
                if (is_item(items, fd->descriptor) && ++*count > max_count) {
                    set_err(err, errlen, "more than %zu %s in one request", max_count, noun);
                    return SX_OTLP_E_TOO_MANY;
                }
            } else {
                p += v;
            }
            break;
        }
        default: /* groups (3, 4) and reserved wire types: protobuf-c rejects them too */
            goto bad;
        }
    }
bad:
    set_err(err, errlen, "undecodable protobuf at byte %zu", (size_t)(p - buf));
    return SX_OTLP_E_PROTOBUF;
}

int sx_otlp_pb_decode(const uint8_t *buf, size_t len, const struct sx_otlp_schema *s, struct sx_arena *a,
                      const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen)
{
    static const uint8_t empty[1];
    ProtobufCAllocator alloc;
    size_t nitems = 0;
    size_t max_depth = l->max_json_depth ? l->max_json_depth : PB_DEFAULT_DEPTH;
    size_t max_items = s->max_items ? s->max_items : SIZE_MAX;

    *out = NULL;
    if (!buf) {
        buf = empty;
        len = 0;
    }
    int rc = pb_prescan(buf, len, s->request, s->items, max_items, s->noun, max_depth, a, &nitems, err, errlen);
    if (rc != SX_OTLP_OK) return rc;

    sx_arena_pb_allocator(a, &alloc);
    ProtobufCMessage *req = protobuf_c_message_unpack(s->request, &alloc, len, buf);
    if (!req) {
        if (sx_arena_failed(a)) {
            set_err(err, errlen, "request too large to decode");
            return SX_OTLP_E_NOMEM;
        }
        set_err(err, errlen, "undecodable protobuf");
        return SX_OTLP_E_PROTOBUF;
    }
    *out = req;
    return SX_OTLP_OK;
}

static const ProtobufCMessageDescriptor *const trace_items[] = {&opentelemetry__proto__trace__v1__span__descriptor,
                                                                NULL};

int sx_otlp_trace_decode_pb(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                            sx_trace_req **out, char *err, size_t errlen)
{
    struct sx_otlp_schema s = {&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
                               trace_items, l->max_spans, "spans"};
    return sx_otlp_pb_decode(buf, len, &s, a, l, (ProtobufCMessage **)out, err, errlen);
}

size_t sx_otlp_trace_count(const sx_trace_req *req)
{
    size_t n = 0;
    if (!req) return 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        if (!rs) continue;
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            if (rs->scope_spans[j]) n += rs->scope_spans[j]->n_spans;
    }
    return n;
}

uint8_t *sx_otlp_pack_msg(const ProtobufCMessage *m, struct sx_arena *a, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = sx_arena_alloc(a, n ? n : 1);
    if (!p) return NULL;
    *len = protobuf_c_message_pack(m, p);
    return p;
}

uint8_t *sx_otlp_trace_pack(const sx_trace_req *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_pack_msg(&req->base, a, len);
}

/* Copies the text of b (which the caller terms) into the arena. */
static uint8_t *buf_to_arena(struct sx_buf *b, struct sx_arena *a, size_t *len)
{
    uint8_t *p = (uint8_t *)sx_arena_strndup(a, b->data ? b->data : "", b->len);
    if (p) *len = b->len;
    return p;
}

/* Room for a JSON body: the escaped message can be 6x longer (\u00XX). */
static size_t json_max(const char *message)
{
    return 256 + (message ? strlen(message) * 6 : 0);
}

uint8_t *sx_otlp_response_json(int64_t rejected, const char *rejected_key, const char *message,
                               struct sx_arena *a, size_t *len)
{
    struct sx_buf b;
    struct sx_json w;
    uint8_t *p = NULL;
    if (!message) message = "";
    sx_buf_init(&b, json_max(message));
    sx_json_init(&w, &b);
    sx_json_obj_open(&w);
    if (rejected > 0 || message[0]) {
        sx_json_key(&w, "partialSuccess");
        sx_json_obj_open(&w);
        if (rejected > 0) {
            sx_json_key(&w, rejected_key);
            sx_json_int_str(&w, rejected);
        }
        sx_json_key(&w, "errorMessage");
        sx_json_strz(&w, message);
        sx_json_obj_close(&w);
    }
    sx_json_obj_close(&w);
    if (w.err == SX_OK) p = buf_to_arena(&b, a, len);
    sx_buf_term(&b);
    return p;
}

uint8_t *sx_otlp_trace_response(int json, int64_t rejected, const char *message, struct sx_arena *a, size_t *len)
{
    if (!message) message = "";
    if (json) return sx_otlp_response_json(rejected, "rejectedSpans", message, a, len);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    if (rejected > 0 || message[0]) {
        ps.rejected_spans = rejected > 0 ? rejected : 0;
        ps.error_message = (char *)message;
        resp.partial_success = &ps;
    }
    return sx_otlp_pack_msg(&resp.base, a, len);
}

uint8_t *sx_otlp_status(int json, int code, const char *message, struct sx_arena *a, size_t *len)
{
    if (!message) message = "";
    if (json) {
        struct sx_buf b;
        struct sx_json w;
        uint8_t *p = NULL;
        sx_buf_init(&b, json_max(message));
        sx_json_init(&w, &b);
        sx_json_obj_open(&w);
        sx_json_key(&w, "code");
        sx_json_int(&w, code);
        sx_json_key(&w, "message");
        sx_json_strz(&w, message);
        sx_json_obj_close(&w);
        if (w.err == SX_OK) p = buf_to_arena(&b, a, len);
        sx_buf_term(&b);
        return p;
    }
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)message;
    return sx_otlp_pack_msg(&st.base, a, len);
}
