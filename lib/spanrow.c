/* spanrow.c: OTLP span to PostgreSQL COPY text row encoding; see spanrow.h. */
#include "spanrow.h"

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

/* Deeper array/kvlist values are written as null (ingest limits nesting far
 * below this already; this only keeps recursion bounded). */
#define ANY_MAX_DEPTH 24
/* Largest start time whose day partition sextant_ensure_span_partition can
 * create: the upper bound of the next day must still fit in a bigint. */
#define START_MAX_NS ((INT64_MAX / SX_DAY_NS) * SX_DAY_NS - 1)

static const char hexdig[] = "0123456789abcdef";

void sx_spanrow_init(struct sx_spanrow *e, size_t max_json)
{
    memset(e, 0, sizeof(*e));
    sx_buf_init(&e->json, max_json);
    sx_buf_init(&e->b64, max_json);
    sx_buf_init(&e->res, max_json * 2);
    e->days_sorted = 1;
}

void sx_spanrow_term(struct sx_spanrow *e)
{
    sx_buf_term(&e->json);
    sx_buf_term(&e->b64);
    sx_buf_term(&e->res);
    free(e->days);
    e->days = NULL;
    e->ndays = e->days_cap = 0;
    free(e->meta);
    e->meta = NULL;
    e->nmeta = e->meta_cap = 0;
}

void sx_spanrow_reset(struct sx_spanrow *e)
{
    e->ndays = 0;
    e->days_sorted = 1;
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

static int day_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

const int64_t *sx_spanrow_days(struct sx_spanrow *e, size_t *n)
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
 * appends (sx_spanrow_days sorts and dedupes later). */
static int add_day(struct sx_spanrow *e, int64_t day)
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

/* ---- COPY text field writers ------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (2-4 bytes), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int sx_spanrow_copy_text(struct sx_buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* run: start of bytes copied verbatim */
    while (i < n) {
        unsigned char c = s[i];
        const char *esc;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_seq(s + i, n - i);
            if (l) {
                i += l;
                continue;
            }
            esc = "\xEF\xBF\xBD";
        } else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == 0) esc = "\xEF\xBF\xBD";
        else {
            i++; /* other control characters are literal in COPY text */
            continue;
        }
        if (i > run && sx_buf_append(out, s + run, i - run) != SX_OK) return SX_ERR;
        if (sx_buf_puts(out, esc) != SX_OK) return SX_ERR;
        i++;
        run = i;
    }
    if (i > run && sx_buf_append(out, s + run, i - run) != SX_OK) return SX_ERR;
    return SX_OK;
}

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

static int put_str(struct sx_buf *out, const char *s)
{
    return sx_buf_puts(out, s);
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

/* bytea in COPY text: the input form \x<hex> with its backslash escaped. */
static int put_bytea(struct sx_buf *out, const uint8_t *p, size_t n)
{
    char *dst = sx_buf_reserve(out, 3 + 2 * n);
    if (!dst) return SX_ERR;
    dst[0] = '\\';
    dst[1] = '\\';
    dst[2] = 'x';
    for (size_t i = 0; i < n; i++) {
        dst[3 + 2 * i] = hexdig[p[i] >> 4];
        dst[4 + 2 * i] = hexdig[p[i] & 15];
    }
    sx_buf_commit(out, 3 + 2 * n);
    return SX_OK;
}

/* Optional text: NULL (\N) when absent or empty. */
static int put_opt_text(struct sx_buf *out, const char *s)
{
    if (!s || !*s) return put_str(out, "\\N");
    return sx_spanrow_copy_text(out, s, strlen(s));
}

/* ---- JSON of attributes ---------------------------------------------- */

static int base64(struct sx_buf *b, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sx_buf_reset(b);
    size_t outn = 2 + 4 * ((n + 2) / 3);
    char *d = sx_buf_reserve(b, outn);
    if (!d) return SX_ERR;
    size_t o = 0;
    d[o++] = '"';
    size_t i = 0;
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

static void json_kvs(struct sx_spanrow *e, struct sx_json *w, pb_kv **kvs, size_t n, int depth);

static void json_any(struct sx_spanrow *e, struct sx_json *w, const pb_any *v, int depth)
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
static void json_kvs(struct sx_spanrow *e, struct sx_json *w, pb_kv **kvs, size_t n, int depth)
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
static int put_attrs(struct sx_spanrow *e, struct sx_buf *out, pb_kv **kvs, size_t n)
{
    if (n == 0) return put_str(out, "{}");
    struct sx_json w;
    sx_buf_reset(&e->json);
    sx_json_init(&w, &e->json);
    json_kvs(e, &w, kvs, n, 0);
    if (w.err) return SX_ERR;
    return copy_json(out, e->json.data, e->json.len);
}

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
    if (sp->n_events == 0) return put_str(out, "\\N");
    struct sx_json w;
    sx_buf_reset(&e->json);
    sx_json_init(&w, &e->json);
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
        json_kvs(e, &w, ev->attributes, ev->n_attributes, 0);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    if (w.err) return SX_ERR;
    return copy_json(out, e->json.data, e->json.len);
}

static int put_links(struct sx_spanrow *e, struct sx_buf *out, const pb_span *sp)
{
    if (sp->n_links == 0) return put_str(out, "\\N");
    struct sx_json w;
    sx_buf_reset(&e->json);
    sx_json_init(&w, &e->json);
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
        json_kvs(e, &w, ln->attributes, ln->n_attributes, 0);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    if (w.err) return SX_ERR;
    return copy_json(out, e->json.data, e->json.len);
}

/* ---- promoted fields ---------------------------------------------------- */

/* The last attribute named key (jsonb keeps the last duplicate too). */
static const pb_any *find_attr(pb_kv **kvs, size_t n, const char *key)
{
    for (size_t i = n; i-- > 0;)
        if (kvs[i] && kvs[i]->key && kvs[i]->value && strcmp(kvs[i]->key, key) == 0) return kvs[i]->value;
    return NULL;
}

static const char *find_str(pb_kv **kvs, size_t n, const char *key)
{
    const pb_any *v = find_attr(kvs, n, key);
    if (!v || v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE || !v->string_value ||
        !v->string_value[0])
        return NULL;
    return v->string_value;
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
        return put_int(out, st);
    return put_str(out, "\\N");
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

    if (put_int(out, rc->project_id) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_bytea(out, sp->trace_id.data, sp->trace_id.len) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_bytea(out, sp->span_id.data, sp->span_id.len) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sp->parent_span_id.len == 8) {
        if (put_bytea(out, sp->parent_span_id.data, 8)) return SX_ERR;
    } else if (put_str(out, "\\N")) return SX_ERR;
    if (sx_buf_putc(out, '\t') || put_int(out, start) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_int(out, end) || sx_buf_putc(out, '\t')) return SX_ERR;
    s = sp->name ? sp->name : "";
    at = out->len;
    if (sx_spanrow_copy_text(out, s, strlen(s))) return SX_ERR;
    m->name_off = at;
    m->name_len = (uint32_t)(out->len - at);
    if (sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_int(out, kind) || sx_buf_putc(out, '\t')) return SX_ERR;
    at = out->len;
    if (sx_spanrow_copy_text(out, rc->service, strlen(rc->service))) return SX_ERR;
    m->svc_off = at;
    m->svc_len = (uint32_t)(out->len - at);
    if (sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_int(out, status) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_opt_text(out, sp->status ? sp->status->message : NULL) || sx_buf_putc(out, '\t')) return SX_ERR;
    s = find_str(sp->attributes, sp->n_attributes, "http.request.method");
    if (!s) s = find_str(sp->attributes, sp->n_attributes, "http.method");
    if (put_opt_text(out, s) || sx_buf_putc(out, '\t')) return SX_ERR;
    s = find_str(sp->attributes, sp->n_attributes, "http.route");
    if (put_opt_text(out, s) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_http_status(out, sp->attributes, sp->n_attributes) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_opt_text(out, sp->trace_state) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_opt_text(out, rc->scope_name) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_opt_text(out, rc->scope_version) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_attrs(e, out, sp->attributes, sp->n_attributes) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_events(e, out, sp) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (put_links(e, out, sp) || sx_buf_putc(out, '\t')) return SX_ERR;
    if (sx_buf_append(out, e->res.data, e->res.len) || sx_buf_putc(out, '\n')) return SX_ERR;
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
    const char *svc = find_str(kvs, n, "service.name");
    *service = svc ? svc : "unknown_service";
    sx_buf_reset(&e->res);
    return put_attrs(e, &e->res, kvs, n);
}

int sx_spanrow_encode(struct sx_spanrow *e, const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req,
                      long long project_id, struct sx_buf *out)
{
    size_t out_len = out->len, ndays = e->ndays, rows = e->rows, skipped = e->skipped, nmeta = e->nmeta;
    int sorted = e->days_sorted;
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
                    sp->start_time_unix_nano > (uint64_t)START_MAX_NS) {
                    e->skipped++;
                    continue;
                }
                int64_t start = (int64_t)sp->start_time_unix_nano;
                struct sx_spanrow_meta *m = next_meta(e);
                if (!m || put_row(e, out, &rc, sp, start, m) != SX_OK) goto fail;
                if (add_day(e, sx_spanrow_day(start)) != SX_OK) goto fail;
                e->nmeta++;
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
    e->nmeta = nmeta;
    e->days_sorted = sorted;
    return SX_ERR;
}
