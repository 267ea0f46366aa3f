/* spanrow.c: OTLP span to PostgreSQL COPY text row encoding; see spanrow.h. */
#include "spanrow.h"

#include "copyrow.h"
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rspans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_sspans;

void sx_spanrow_init(struct sx_spanrow *e, size_t max_json)
{
    memset(e, 0, sizeof(*e));
    sx_copyrow_scratch_init(&e->s, max_json);
}

void sx_spanrow_term(struct sx_spanrow *e)
{
    sx_copyrow_scratch_term(&e->s);
    free(e->meta);
    e->meta = NULL;
    e->nmeta = e->meta_cap = 0;
}

void sx_spanrow_reset(struct sx_spanrow *e)
{
    sx_copyrow_days_reset(&e->s.days);
    e->nmeta = 0;
    e->rows = 0;
    e->skipped = 0;
}

int64_t sx_spanrow_day(int64_t start_ns)
{
    int64_t d = start_ns / SX_DAY_NS;
    if (start_ns < 0 && d * SX_DAY_NS != start_ns) d--;
    return d * SX_DAY_NS;
}

const int64_t *sx_spanrow_days(struct sx_spanrow *e, size_t *n)
{
    return sx_copyrow_days_get(&e->s.days, n);
}

/* A slot for the next row's meta; NULL when memory ran out. */
static struct sx_spanrow_meta *next_meta(struct sx_spanrow *e)
{
    if (e->nmeta == e->meta_cap) {
        size_t cap = e->meta_cap ? e->meta_cap * 2 : 256;
        struct sx_spanrow_meta *p = realloc(e->meta, cap * sizeof(*p));
        if (!p) return NULL;
        e->meta = p;
        e->meta_cap = cap;
    }
    return &e->meta[e->nmeta];
}

/* ---- JSON of events and links (field writers: copyrow.h) ---------------- */

static void json_uint_str(struct sx_json *w, uint64_t v)
{
    char tmp[32];
    char *p = tmp + sizeof(tmp);
    *--p = '"';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    *--p = '"';
    sx_json_raw(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int put_events(struct sx_spanrow *e, struct sx_buf *out, const pb_span *sp)
{
    if (sp->n_events == 0) return sx_buf_puts(out, "\\N");
    struct sx_json w;
    sx_buf_reset(&e->s.json);
    sx_json_init(&w, &e->s.json);
    sx_json_arr_open(&w);
    for (size_t i = 0; i < sp->n_events; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Event *ev = sp->events[i];
        if (!ev) continue;
        sx_json_obj_open(&w);
        sx_json_key(&w, "timeUnixNano");
        json_uint_str(&w, ev->time_unix_nano);
        sx_json_key(&w, "name");
        sx_json_strz(&w, ev->name ? ev->name : "");
        sx_json_key(&w, "attributes");
        sx_copyrow_json_kvs(&w, &e->s.b64, ev->attributes, ev->n_attributes, 0);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    if (w.err) return SX_ERR;
    return sx_copyrow_json(out, e->s.json.data, e->s.json.len);
}

static int put_links(struct sx_spanrow *e, struct sx_buf *out, const pb_span *sp)
{
    if (sp->n_links == 0) return sx_buf_puts(out, "\\N");
    struct sx_json w;
    sx_buf_reset(&e->s.json);
    sx_json_init(&w, &e->s.json);
    sx_json_arr_open(&w);
    for (size_t i = 0; i < sp->n_links; i++) {
        const Opentelemetry__Proto__Trace__V1__Span__Link *ln = sp->links[i];
        if (!ln) continue;
        sx_json_obj_open(&w);
        sx_json_key(&w, "traceId");
        sx_json_hex(&w, ln->trace_id.data, ln->trace_id.len);
        sx_json_key(&w, "spanId");
        sx_json_hex(&w, ln->span_id.data, ln->span_id.len);
        sx_json_key(&w, "traceState");
        sx_json_strz(&w, ln->trace_state ? ln->trace_state : "");
        sx_json_key(&w, "attributes");
        sx_copyrow_json_kvs(&w, &e->s.b64, ln->attributes, ln->n_attributes, 0);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    if (w.err) return SX_ERR;
    return sx_copyrow_json(out, e->s.json.data, e->s.json.len);
}

/* ---- promoted fields ---------------------------------------------------- */

/* The last attribute named key (jsonb keeps the last duplicate too). */
static const pb_any *find_attr(pb_kv **kvs, size_t n, const char *key)
{
    for (size_t i = n; i-- > 0;)
        if (kvs[i] && kvs[i]->key && kvs[i]->value && strcmp(kvs[i]->key, key) == 0) return kvs[i]->value;
    return NULL;
}

/* An HTTP status from an int, an integral double or a decimal string; SX_ERR
 * when absent or not representable as an integer column. */
static int status_value(const pb_any *v, int32_t *out)
{
    long long x;
    if (!v) return SX_ERR;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        x = v->int_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (!(v->double_value >= INT32_MIN && v->double_value <= INT32_MAX)) return SX_ERR;
        x = (long long)v->double_value;
        if ((double)x != v->double_value) return SX_ERR;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        const char *s = v->string_value;
        char *end;
        if (!s || !*s || !((*s >= '0' && *s <= '9') || *s == '-')) return SX_ERR;
        errno = 0;
        x = strtoll(s, &end, 10);
        if (errno || *end) return SX_ERR;
        break;
    }
    default:
        return SX_ERR;
    }
    if (x < INT32_MIN || x > INT32_MAX) return SX_ERR;
    *out = (int32_t)x;
    return SX_OK;
}

static int put_http_status(struct sx_buf *out, pb_kv **kvs, size_t n)
{
    int32_t st;
    if (status_value(find_attr(kvs, n, "http.response.status_code"), &st) == SX_OK ||
        status_value(find_attr(kvs, n, "http.status_code"), &st) == SX_OK)
        return sx_copyrow_int(out, st);
    return sx_buf_puts(out, "\\N");
}

/* ---- rows ------------------------------------------------------------------ */

struct row_ctx {
    long long project_id;
    const char *service;
    const char *scope_name;
    const char *scope_version;
};

static int put_row(struct sx_spanrow *e, struct sx_buf *out, const struct row_ctx *rc, const pb_span *sp,
                   int64_t start, struct sx_spanrow_meta *m)
{
    const char *s;
    size_t at;
    int64_t end = sp->end_time_unix_nano > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)sp->end_time_unix_nano;
    int kind = (int)sp->kind;
    int status = sp->status ? (int)sp->status->code : 0;
    if (kind < 0 || kind > 5) kind = 0;
    if (status < 0 || status > 2) status = 0;

    if (sx_copyrow_int(out, rc->project_id) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_bytea(out, sp->trace_id.data, sp->trace_id.len) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_bytea(out, sp->span_id.data, sp->span_id.len) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sp->parent_span_id.len == 8) {
        if (sx_copyrow_bytea(out, sp->parent_span_id.data, 8)) return SX_ERR;
    } else if (sx_buf_puts(out, "\\N")) return SX_ERR;
    if (sx_buf_putc(out, '\t') || sx_copyrow_int(out, start) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_int(out, end) || sx_buf_putc(out, '\t')) return SX_ERR;
    s = sp->name ? sp->name : "";
    at = out->len;
    if (sx_copyrow_text(out, s, strlen(s))) return SX_ERR;
    m->name_off = at;
    m->name_len = (uint32_t)(out->len - at);
    if (sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_int(out, kind) || sx_buf_putc(out, '\t')) return SX_ERR;
    at = out->len;
    if (sx_copyrow_text(out, rc->service, strlen(rc->service))) return SX_ERR;
    m->svc_off = at;
    m->svc_len = (uint32_t)(out->len - at);
    if (sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_int(out, status) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_opt_text(out, sp->status ? sp->status->message : NULL) || sx_buf_putc(out, '\t')) return SX_ERR;
    s = sx_copyrow_find_str(sp->attributes, sp->n_attributes, "http.request.method");
    if (!s) s = sx_copyrow_find_str(sp->attributes, sp->n_attributes, "http.method");
    if (sx_copyrow_opt_text(out, s) || sx_buf_putc(out, '\t')) return SX_ERR;
    s = sx_copyrow_find_str(sp->attributes, sp->n_attributes, "http.route");
    if (sx_copyrow_opt_text(out, s) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_http_status(out, sp->attributes, sp->n_attributes) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_opt_text(out, sp->trace_state) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_opt_text(out, rc->scope_name) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_opt_text(out, rc->scope_version) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_copyrow_attrs(out, &e->s.json, &e->s.b64, sp->attributes, sp->n_attributes) || sx_buf_putc(out, '\t'))
        return SX_ERR;
    if (put_events(e, out, sp) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_links(e, out, sp) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_buf_append(out, e->s.res.data, e->s.res.len) || sx_buf_putc(out, '\n')) return SX_ERR;
    memcpy(m->trace_id, sp->trace_id.data, 16);
    m->start = start;
    m->end = end;
    m->project_id = (int32_t)rc->project_id;
    m->error = status == 2;
    m->root = sp->parent_span_id.len != 8;
    return SX_OK;
}

/* Renders the resource attributes once per ResourceSpans, COPY-escaped. */
static int prepare_resource(struct sx_spanrow *e, const pb_rspans *rs, const char **service)
{
    pb_kv **kvs = rs->resource ? rs->resource->attributes : NULL;
    size_t n = rs->resource ? rs->resource->n_attributes : 0;
    const char *svc = sx_copyrow_find_str(kvs, n, "service.name");
    *service = svc ? svc : "unknown_service";
    sx_buf_reset(&e->s.res);
    return sx_copyrow_attrs(&e->s.res, &e->s.json, &e->s.b64, kvs, n);
}

int sx_spanrow_encode(struct sx_spanrow *e, const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req,
                      long long project_id, struct sx_buf *out)
{
    size_t out_len = out->len, ndays = e->s.days.n, rows = e->rows, skipped = e->skipped, nmeta = e->nmeta;
    int sorted = e->s.days.sorted;
    struct row_ctx rc;
    rc.project_id = project_id;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const pb_rspans *rs = req->resource_spans[r];
        if (!rs || rs->n_scope_spans == 0) continue;
        if (prepare_resource(e, rs, &rc.service) != SX_OK) goto fail;
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const pb_sspans *ss = rs->scope_spans[s];
            if (!ss) continue;
            rc.scope_name = ss->scope ? ss->scope->name : NULL;
            rc.scope_version = ss->scope ? ss->scope->version : NULL;
            for (size_t i = 0; i < ss->n_spans; i++) {
                const pb_span *sp = ss->spans[i];
                if (!sp || sp->trace_id.len != 16 || sp->span_id.len != 8 ||
                    sp->start_time_unix_nano > (uint64_t)SX_COPYROW_TIME_MAX_NS) {
                    e->skipped++;
                    continue;
                }
                int64_t start = (int64_t)sp->start_time_unix_nano;
                struct sx_spanrow_meta *m = next_meta(e);
                if (!m || put_row(e, out, &rc, sp, start, m) != SX_OK) goto fail;
                if (sx_copyrow_days_add(&e->s.days, sx_spanrow_day(start)) != SX_OK) goto fail;
                e->nmeta++;
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
    e->nmeta = nmeta;
    e->s.days.sorted = sorted;
    return SX_ERR;
}
