/* otlp_logs.c: OTLP logs requests: decoding (protobuf and JSON through the
 * shared engines), validation and normalization, counting, packing and the
 * ExportLogsServiceResponse.
 *
 * Validation is one pass in place, as for traces: records with ids of the
 * wrong length are dropped and counted; all-zero ids (how some senders spell
 * "no trace context") become empty; attributes are trimmed to the span
 * limits; string bodies are cut at max_log_body_len (structured bodies: each
 * string leaf), other strings at max_attr_value_len; invalid UTF-8 becomes
 * U+FFFD; scopes and resources left empty are removed. Times are never
 * invented here (no clock): a record with neither time nor observed time
 * keeps both 0 and the consumer uses the stream entry's receive time. */
#include "otlp_int.h"

#include <string.h>

typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_rl;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_sl;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log;

/* String bodies are cut here when the limits say 0. */
#define LOG_BODY_DEFAULT_MAX (64 * 1024)
/* Highest SeverityNumber (FATAL4). */
#define SEVERITY_MAX 24

static const ProtobufCMessageDescriptor *const log_items[] = {&opentelemetry__proto__logs__v1__log_record__descriptor,
                                                              NULL};

static void logs_schema(struct sx_otlp_schema *s, const struct sx_otlp_limits *l)
{
    s->request = &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    s->items = log_items;
    s->max_items = l->max_log_records;
    s->noun = "log records";
}

int sx_otlp_logs_decode_pb(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                           sx_logs_req **out, char *err, size_t errlen)
{
    struct sx_otlp_schema s;
    logs_schema(&s, l);
    return sx_otlp_pb_decode(buf, len, &s, a, l, (ProtobufCMessage **)out, err, errlen);
}

int sx_otlp_logs_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                             sx_logs_req **out, char *err, size_t errlen)
{
    struct sx_otlp_schema s;
    logs_schema(&s, l);
    return sx_otlp_json_decode(buf, len, &s, a, l, (ProtobufCMessage **)out, err, errlen);
}

size_t sx_otlp_logs_count(const sx_logs_req *req)
{
    size_t n = 0;
    if (!req) return 0;
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const pb_rl *rl = req->resource_logs[i];
        if (!rl) continue;
        for (size_t j = 0; j < rl->n_scope_logs; j++)
            if (rl->scope_logs[j]) n += rl->scope_logs[j]->n_log_records;
    }
    return n;
}

uint8_t *sx_otlp_logs_pack(const sx_logs_req *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_pack_msg(&req->base, a, len);
}

uint8_t *sx_otlp_logs_response(int json, int64_t rejected, const char *message, struct sx_arena *a, size_t *len)
{
    if (!message) message = "";
    if (json) return sx_otlp_response_json(rejected, "rejectedLogRecords", message, a, len);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
    if (rejected > 0 || message[0]) {
        ps.rejected_log_records = rejected > 0 ? rejected : 0;
        ps.error_message = (char *)message;
        resp.partial_success = &ps;
    }
    return sx_otlp_pack_msg(&resp.base, a, len);
}

/* --- validation ------------------------------------------------------------------ */

/* Empties an all-zero id: the sender had no trace context. */
static void clear_zero_id(ProtobufCBinaryData *id)
{
    if (id->len && sx_otlp_all_zero(id->data, id->len)) {
        id->len = 0;
        id->data = NULL;
    }
}

/* Why a record must be dropped, or NULL when it is kept. */
static const char *log_invalid(pb_log *r)
{
    if (!r) return "missing log record";
    clear_zero_id(&r->trace_id);
    clear_zero_id(&r->span_id);
    if (r->trace_id.len != 0 && r->trace_id.len != 16) return "invalid trace id";
    if (r->span_id.len != 0 && r->span_id.len != 8) return "invalid span id";
    return NULL;
}

static void fix_log(struct sx_otlp_vctx *v, pb_log *r)
{
    size_t body_max = v->l->max_log_body_len ? v->l->max_log_body_len : LOG_BODY_DEFAULT_MAX;
    if ((int)r->severity_number < 0 || (int)r->severity_number > SEVERITY_MAX)
        r->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_UNSPECIFIED;
    sx_otlp_fix_value_str(v, &r->severity_text);
    sx_otlp_fix_value_str(v, &r->event_name);
    v->st->bodies_truncated += sx_otlp_fix_any_max(v, r->body, body_max);
    sx_otlp_fix_attrs(v, r->attributes, &r->n_attributes, &r->dropped_attributes_count);
}

static void build_reason(const struct sx_otlp_vctx *v)
{
    struct sx_otlp_stats *st = v->st;
    const struct sx_otlp_limits *l = v->l;
    st->reason[0] = '\0';
    if (st->items_rejected)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu log record%s rejected: %s", st->items_rejected,
                           st->items_rejected == 1 ? "" : "s", v->item_reason ? v->item_reason : "invalid");
    if (st->bodies_truncated)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu log bod%s truncated to %zu bytes",
                           st->bodies_truncated, st->bodies_truncated == 1 ? "y" : "ies",
                           l->max_log_body_len ? l->max_log_body_len : (size_t)LOG_BODY_DEFAULT_MAX);
    sx_otlp_reason_attrs(v);
}

void sx_otlp_logs_validate(sx_logs_req *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                           struct sx_otlp_stats *st)
{
    struct sx_otlp_vctx v = {l, a, st, NULL, NULL, NULL};
    memset(st, 0, sizeof(*st));
    if (!req) return;

    size_t rw = 0;
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        pb_rl *rl = req->resource_logs[i];
        if (!rl) continue;
        size_t sw = 0;
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            pb_sl *sl = rl->scope_logs[j];
            if (!sl) continue;
            size_t kw = 0;
            for (size_t k = 0; k < sl->n_log_records; k++) {
                pb_log *r = sl->log_records[k];
                st->items_in++;
                const char *why = log_invalid(r);
                if (why) {
                    st->items_rejected++;
                    if (!v.item_reason) v.item_reason = why;
                    continue;
                }
                fix_log(&v, r);
                sl->log_records[kw++] = r;
            }
            sl->n_log_records = kw;
            if (kw == 0) continue; /* scope left empty */
            sx_otlp_fix_scope(&v, sl->scope);
            sx_otlp_repair_utf8(&v, &sl->schema_url);
            rl->scope_logs[sw++] = sl;
        }
        rl->n_scope_logs = sw;
        if (sw == 0) continue; /* resource left empty */
        sx_otlp_fix_resource(&v, rl->resource);
        sx_otlp_repair_utf8(&v, &rl->schema_url);
        req->resource_logs[rw++] = rl;
    }
    req->n_resource_logs = rw;
    st->items_kept = st->items_in - st->items_rejected;
    build_reason(&v);
}
