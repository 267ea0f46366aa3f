/* logrow.c: OTLP log record to PostgreSQL COPY text row encoding; see logrow.h. */
#include "logrow.h"

#include "json.h"
#include "spanrow.h"

#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_rlogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_slogs;

/* Deeper array/kvlist values are written as null (ingest limits nesting far
 * below this already; this only keeps recursion bounded). */
#define ANY_MAX_DEPTH 24
/* Largest time whose day partition sextant_ensure_log_partition can create:
 * the upper bound of the next day must still fit in a bigint. */
#define TIME_MAX_NS ((INT64_MAX / SX_DAY_NS) * SX_DAY_NS - 1)

static const char hexdig[] = "0123456789abcdef";

void sx_logrow_init(struct sx_logrow *e, size_t max_json)
{
    memset(e, 0, sizeof(*e));
    sx_buf_init(&e->json, max_json);
    sx_buf_init(&e->b64, max_json);
    sx_buf_init(&e->res, max_json * 2);
    e->days_sorted = 1;
}

void sx_logrow_term(struct sx_logrow *e)
{
    sx_buf_term(&e->json);
    sx_buf_term(&e->b64);
    sx_buf_term(&e->res);
    free(e->days);
    e->days = NULL;
    e->ndays = e->days_cap = 0;
}

void sx_logrow_reset(struct sx_logrow *e)
{
    e->ndays = 0;
    e->days_sorted = 1;
    e->rows = 0;
    e->skipped = 0;
}

static int day_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

const int64_t *sx_logrow_days(struct sx_logrow *e, size_t *n)
{
    if (!e->days_sorted && e->ndays > 1) {
        qsort(e->days, e->ndays, sizeof(e->days[0]), day_cmp);
        size_t w = 1;
        for (size_t i = 1; i < e->ndays; i++)
            if (e->days[i] != e->days[w - 1]) e->days[w++] = e->days[i];
        e->ndays = w;
    }
    e->days_sorted = 1;
    *n = e->ndays;
    return e->days;
}

/* Records a row's day; consecutive rows mostly share one, so only a change
 * appends (sx_logrow_days sorts and dedupes later). */
static int add_day(struct sx_logrow *e, int64_t day)
{
    if (e->ndays && e->days[e->ndays - 1] == day) return SX_OK;
    if (e->ndays == e->days_cap) {
        size_t cap = e->days_cap ? e->days_cap * 2 : 16;
        int64_t *p = realloc(e->days, cap * sizeof(*p));
        if (!p) return SX_ERR;
        e->days = p;
        e->days_cap = cap;
    }
    e->days[e->ndays++] = day;
    if (e->ndays > 1) e->days_sorted = 0;
    return SX_OK;
}

/* ---- COPY text field writers ------------------------------------------- */

/* JSON from sx_json holds no raw control characters (it escapes them) and is
 * valid UTF-8, so COPY needs only its backslashes doubled. */
static int copy_json(struct sx_buf *out, const char *s, size_t n)
{
    while (n) {
        const char *bs = memchr(s, '\\', n);
        size_t chunk = bs ? (size_t)(bs - s) : n;
        if (chunk && sx_buf_append(out, s, chunk) != SX_OK) return SX_ERR;
        if (!bs) break;
        if (sx_buf_append(out, "\\\\", 2) != SX_OK) return SX_ERR;
        s = bs + 1;
        n -= chunk + 1;
    }
    return SX_OK;
}

static int put_int(struct sx_buf *out, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return sx_buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* bytea in COPY text: the input form \x<hex> with its backslash escaped;
 * NULL unless the id has the expected length. */
static int put_id(struct sx_buf *out, const ProtobufCBinaryData *id, size_t want)
{
    if (id->len != want) return sx_buf_puts(out, "\\N");
    char *dst = sx_buf_reserve(out, 3 + 2 * want);
    if (!dst) return SX_ERR;
    dst[0] = '\\';
    dst[1] = '\\';
    dst[2] = 'x';
    for (size_t i = 0; i < want; i++) {
        dst[3 + 2 * i] = hexdig[id->data[i] >> 4];
        dst[4 + 2 * i] = hexdig[id->data[i] & 15];
    }
    sx_buf_commit(out, 3 + 2 * want);
    return SX_OK;
}

/* Optional text: NULL (\N) when absent or empty. */
static int put_opt_text(struct sx_buf *out, const char *s)
{
    if (!s || !*s) return sx_buf_puts(out, "\\N");
    return sx_spanrow_copy_text(out, s, strlen(s));
}

/* ---- JSON of AnyValues --------------------------------------------------- */

static int base64(struct sx_buf *b, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sx_buf_reset(b);
    char *d = sx_buf_reserve(b, 2 + 4 * ((n + 2) / 3));
    if (!d) return SX_ERR;
    size_t o = 0, i = 0;
    d[o++] = '"';
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = tbl[(v >> 6) & 63];
        d[o++] = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = '=';
        d[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = tbl[(v >> 6) & 63];
        d[o++] = '=';
    }
    d[o++] = '"';
    sx_buf_commit(b, o);
    return SX_OK;
}

static void json_kvs(struct sx_logrow *e, struct sx_json *w, pb_kv **kvs, size_t n, int depth);

/* The JSON of one AnyValue, as spanrow writes attribute values: strings,
 * bools, numbers, bytes as base64, arrays, kvlists as objects; unset or too
 * deep is null. */
static void json_any(struct sx_logrow *e, struct sx_json *w, const pb_any *v, int depth)
{
    if (!v || depth > ANY_MAX_DEPTH) {
        sx_json_null(w);
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        sx_json_strz(w, v->string_value ? v->string_value : "");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        sx_json_bool(w, v->bool_value != 0);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        sx_json_int(w, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        sx_json_double(w, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        if (base64(&e->b64, v->bytes_value.data, v->bytes_value.len) != SX_OK) w->err = SX_ERR;
        else sx_json_raw(w, e->b64.data, e->b64.len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        sx_json_arr_open(w);
        if (v->array_value)
            for (size_t i = 0; i < v->array_value->n_values; i++) json_any(e, w, v->array_value->values[i], depth + 1);
        sx_json_arr_close(w);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (v->kvlist_value) json_kvs(e, w, v->kvlist_value->values, v->kvlist_value->n_values, depth + 1);
        else {
            sx_json_obj_open(w);
            sx_json_obj_close(w);
        }
        break;
    default:
        sx_json_null(w);
        break;
    }
}

/* A JSON object of key/value pairs; duplicate keys are kept (jsonb keeps the
 * last one). */
static void json_kvs(struct sx_logrow *e, struct sx_json *w, pb_kv **kvs, size_t n, int depth)
{
    sx_json_obj_open(w);
    for (size_t i = 0; i < n; i++) {
        if (!kvs[i]) continue;
        sx_json_key(w, kvs[i]->key ? kvs[i]->key : "");
        json_any(e, w, kvs[i]->value, depth);
    }
    sx_json_obj_close(w);
}

/* Renders an attribute object into e->json, then appends it COPY-escaped. */
static int put_attrs(struct sx_logrow *e, struct sx_buf *out, pb_kv **kvs, size_t n)
{
    if (n == 0) return sx_buf_puts(out, "{}");
    struct sx_json w;
    sx_buf_reset(&e->json);
    sx_json_init(&w, &e->json);
    json_kvs(e, &w, kvs, n, 0);
    if (w.err) return SX_ERR;
    return copy_json(out, e->json.data, e->json.len);
}

/* body and body_json: the string as it is, a structured value as JSON, or
 * NULL when there is none. */
static int put_body(struct sx_logrow *e, struct sx_buf *out, const pb_any *body)
{
    if (!body || body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
        return sx_buf_puts(out, "\\N\tf");
    if (body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        const char *s = body->string_value ? body->string_value : "";
        if (sx_spanrow_copy_text(out, s, strlen(s)) != SX_OK) return SX_ERR;
        return sx_buf_puts(out, "\tf");
    }
    struct sx_json w;
    sx_buf_reset(&e->json);
    sx_json_init(&w, &e->json);
    json_any(e, &w, body, 0);
    if (w.err || copy_json(out, e->json.data, e->json.len) != SX_OK) return SX_ERR;
    return sx_buf_puts(out, "\tt");
}

/* ---- rows ------------------------------------------------------------------ */

/* The last string attribute named key (jsonb keeps the last duplicate too). */
static const char *find_str(pb_kv **kvs, size_t n, const char *key)
{
    for (size_t i = n; i-- > 0;) {
        const pb_kv *kv = kvs[i];
        if (!kv || !kv->key || !kv->value || strcmp(kv->key, key) != 0) continue;
        if (kv->value->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ||
            !kv->value->string_value || !kv->value->string_value[0])
            return NULL;
        return kv->value->string_value;
    }
    return NULL;
}

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

    if (put_int(out, rc->project_id) || tab(out) || put_int(out, t) || tab(out)) return SX_ERR;
    if (put_int(out, observed) || tab(out) || put_int(out, sev) || tab(out)) return SX_ERR;
    if (put_opt_text(out, lr->severity_text) || tab(out)) return SX_ERR;
    if (put_body(e, out, lr->body) || tab(out)) return SX_ERR;
    if (put_id(out, &lr->trace_id, 16) || tab(out) || put_id(out, &lr->span_id, 8) || tab(out)) return SX_ERR;
    if (put_int(out, (int32_t)lr->flags) || tab(out)) return SX_ERR;
    if (sx_spanrow_copy_text(out, rc->service, strlen(rc->service)) || tab(out)) return SX_ERR;
    if (put_opt_text(out, rc->scope_name) || tab(out)) return SX_ERR;
    if (put_opt_text(out, rc->scope_version) || tab(out)) return SX_ERR;
    if (put_attrs(e, out, lr->attributes, lr->n_attributes) || tab(out)) return SX_ERR;
    if (sx_buf_append(out, e->res.data, e->res.len) || sx_buf_putc(out, '\n')) return SX_ERR;
    return SX_OK;
}

/* Renders the resource attributes once per ResourceLogs, COPY-escaped. */
static int prepare_resource(struct sx_logrow *e, const pb_rlogs *rl, const char **service)
{
    pb_kv **kvs = rl->resource ? rl->resource->attributes : NULL;
    size_t n = rl->resource ? rl->resource->n_attributes : 0;
    const char *svc = find_str(kvs, n, "service.name");
    *service = svc ? svc : "unknown_service";
    sx_buf_reset(&e->res);
    return put_attrs(e, &e->res, kvs, n);
}

/* The row's time (see logrow.h); -1 when it is past TIME_MAX_NS. */
static int64_t row_time(const pb_log *lr, int64_t recv_ns)
{
    uint64_t t = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
    if (t == 0) return recv_ns >= 0 && recv_ns <= TIME_MAX_NS ? recv_ns : -1;
    return t <= (uint64_t)TIME_MAX_NS ? (int64_t)t : -1;
}

int sx_logrow_encode(struct sx_logrow *e, const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *req,
                     long long project_id, int64_t recv_ns, struct sx_buf *out)
{
    size_t out_len = out->len, ndays = e->ndays, rows = e->rows, skipped = e->skipped;
    int sorted = e->days_sorted;
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
                if (add_day(e, sx_spanrow_day(t)) != SX_OK) goto fail;
                e->rows++;
            }
        }
    }
    return SX_OK;

fail:
    out->len = out_len;
    if (out->data) out->data[out_len] = '\0';
    e->ndays = ndays;
    e->rows = rows;
    e->skipped = skipped;
    e->days_sorted = sorted;
    return SX_ERR;
}
