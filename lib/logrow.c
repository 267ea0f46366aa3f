/* logrow.c: OTLP log record to PostgreSQL COPY text row encoding; see logrow.h. */
#include "logrow.h"

#include "copyrow.h"
#include "json.h"
#include "spanrow.h"

#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_rlogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_slogs;

void sx_logrow_init(struct sx_logrow *e, size_t max_json)
{
    memset(e, 0, sizeof(*e));
    sx_copyrow_scratch_init(&e->s, max_json);
}

void sx_logrow_term(struct sx_logrow *e)
{
    sx_copyrow_scratch_term(&e->s);
}

void sx_logrow_reset(struct sx_logrow *e)
{
    sx_copyrow_days_reset(&e->s.days);
    e->rows = 0;
    e->skipped = 0;
}

const int64_t *sx_logrow_days(struct sx_logrow *e, size_t *n)
{
    return sx_copyrow_days_get(&e->s.days, n);
}

/* ---- COPY text field writers ------------------------------------------- */

/* bytea in COPY text: the input form \x<hex> with its backslash escaped;
 * NULL unless the id has the expected length. */
static int put_id(struct sx_buf *out, const ProtobufCBinaryData *id, size_t want)
{
    if (id->len != want) return sx_buf_puts(out, "\\N");
    return sx_copyrow_bytea(out, id->data, want);
}

/* ---- JSON of AnyValues --------------------------------------------------- */

/* body and body_json: the string as it is, a structured value as JSON, or
 * NULL when there is none. */
static int put_body(struct sx_logrow *e, struct sx_buf *out, const pb_any *body)
{
    if (!body || body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
        return sx_buf_puts(out, "\\N\tf");
    if (body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        const char *s = body->string_value ? body->string_value : "";
        if (sx_copyrow_text(out, s, strlen(s)) != SX_OK) return SX_ERR;
        return sx_buf_puts(out, "\tf");
    }
    struct sx_json w;
    sx_buf_reset(&e->s.json);
    sx_json_init(&w, &e->s.json);
    sx_copyrow_json_any(&w, &e->s.b64, body, 0);
    if (w.err || sx_copyrow_json(out, e->s.json.data, e->s.json.len) != SX_OK) return SX_ERR;
    return sx_buf_puts(out, "\tt");
}

/* ---- rows ------------------------------------------------------------------ */

struct row_ctx {
    long long project_id;
    const char *service;
    const char *scope_name;
    const char *scope_version;
};

static int tab(struct sx_buf *out)
{
    return sx_buf_putc(out, '\t');
}

static int put_row(struct sx_logrow *e, struct sx_buf *out, const struct row_ctx *rc, const pb_log *lr, int64_t t)
{
    int64_t observed = lr->observed_time_unix_nano > (uint64_t)INT64_MAX ? INT64_MAX
                                                                         : (int64_t)lr->observed_time_unix_nano;
    int sev = (int)lr->severity_number;
    if (sev < 0 || sev > 24) sev = 0;

    if (sx_copyrow_int(out, rc->project_id) || tab(out) || sx_copyrow_int(out, t) || tab(out)) return SX_ERR;
    if (sx_copyrow_int(out, observed) || tab(out) || sx_copyrow_int(out, sev) || tab(out)) return SX_ERR;
    if (sx_copyrow_opt_text(out, lr->severity_text) || tab(out)) return SX_ERR;
    if (put_body(e, out, lr->body) || tab(out)) return SX_ERR;
    if (put_id(out, &lr->trace_id, 16) || tab(out) || put_id(out, &lr->span_id, 8) || tab(out)) return SX_ERR;
    if (sx_copyrow_int(out, (int32_t)lr->flags) || tab(out)) return SX_ERR;
    if (sx_copyrow_text(out, rc->service, strlen(rc->service)) || tab(out)) return SX_ERR;
    if (sx_copyrow_opt_text(out, rc->scope_name) || tab(out)) return SX_ERR;
    if (sx_copyrow_opt_text(out, rc->scope_version) || tab(out)) return SX_ERR;
    if (sx_copyrow_attrs(out, &e->s.json, &e->s.b64, lr->attributes, lr->n_attributes) || tab(out)) return SX_ERR;
    if (sx_buf_append(out, e->s.res.data, e->s.res.len) || sx_buf_putc(out, '\n')) return SX_ERR;
    return SX_OK;
}

/* Renders the resource attributes once per ResourceLogs, COPY-escaped. */
static int prepare_resource(struct sx_logrow *e, const pb_rlogs *rl, const char **service)
{
    pb_kv **kvs = rl->resource ? rl->resource->attributes : NULL;
    size_t n = rl->resource ? rl->resource->n_attributes : 0;
    const char *svc = sx_copyrow_find_str(kvs, n, "service.name");
    *service = svc ? svc : "unknown_service";
    sx_buf_reset(&e->s.res);
    return sx_copyrow_attrs(&e->s.res, &e->s.json, &e->s.b64, kvs, n);
}

/* The row's time (see logrow.h); -1 when it is past SX_COPYROW_TIME_MAX_NS. */
static int64_t row_time(const pb_log *lr, int64_t recv_ns)
{
    uint64_t t = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
    if (t == 0) return recv_ns >= 0 && recv_ns <= SX_COPYROW_TIME_MAX_NS ? recv_ns : -1;
    return t <= (uint64_t)SX_COPYROW_TIME_MAX_NS ? (int64_t)t : -1;
}

int sx_logrow_encode(struct sx_logrow *e, const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req,
                     long long project_id, int64_t recv_ns, struct sx_buf *out)
{
    size_t out_len = out->len, ndays = e->s.days.n, rows = e->rows, skipped = e->skipped;
    int sorted = e->s.days.sorted;
    struct row_ctx rc;
    rc.project_id = project_id;
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const pb_rlogs *rl = req->resource_logs[r];
        if (!rl || rl->n_scope_logs == 0) continue;
        if (prepare_resource(e, rl, &rc.service) != SX_OK) goto fail;
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            const pb_slogs *sl = rl->scope_logs[s];
            if (!sl) continue;
            rc.scope_name = sl->scope ? sl->scope->name : NULL;
            rc.scope_version = sl->scope ? sl->scope->version : NULL;
            for (size_t i = 0; i < sl->n_log_records; i++) {
                const pb_log *lr = sl->log_records[i];
                int64_t t = lr ? row_time(lr, recv_ns) : -1;
                if (t < 0) {
                    e->skipped++;
                    continue;
                }
                if (put_row(e, out, &rc, lr, t) != SX_OK) goto fail;
                if (sx_copyrow_days_add(&e->s.days, sx_spanrow_day(t)) != SX_OK) goto fail;
                e->rows++;
            }
        }
    }
    return SX_OK;

fail:
    out->len = out_len;
    if (out->data) out->data[out_len] = '\0';
    e->s.days.n = ndays;
    e->rows = rows;
    e->skipped = skipped;
    e->s.days.sorted = sorted;
    return SX_ERR;
}
