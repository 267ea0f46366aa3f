/* live.c: live stream entries: publishing (items JSON, XADD text, the
 * watch cache) and, for sextant-sse, parsing, filtering and SSE formatting;
 * see live.h. */
#include "live.h"

#include "apiutil.h"
#include "copyrow.h"
#include "json.h"
#include "jsonval.h"
#include "redis.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;

#define ITEMS_TEXT_MAX ((size_t)1 << 20) /* publisher: one items array at most */

/* ---- producers -------------------------------------------------------------- */

int sx_live_watched(struct sx_live_watch *w, redisContext *rc, const struct sx_config *cfg, long long project)
{
    int64_t now = sx_mono_ns();
    size_t i = (size_t)project % SX_LIVE_WATCH_SLOTS;
    if (w->slot[i].project == project && w->slot[i].expires_mono > now) return w->slot[i].watched;
    if (!rc || rc->err) return 0;
    char key[256];
    sx_redis_pkey(key, sizeof(key), cfg, project, SX_LIVE_WATCH_SUFFIX);
    redisReply *r = redisCommand(rc, "EXISTS %s", key);
    if (!r) return 0;
    int watched = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    w->slot[i].project = project;
    w->slot[i].watched = watched;
    w->slot[i].expires_mono = now + (w->ttl_ns ? w->ttl_ns : 2000000000LL);
    return watched;
}

/* The HTTP status of a span's attributes (http.response.status_code, else
 * http.status_code), as an integer or a string of digits; 0 when absent. */
static int http_status(pb_kv **kvs, size_t n)
{
    static const char *const names[2] = {"http.response.status_code", "http.status_code"};
    for (int k = 0; k < 2; k++)
        for (size_t i = n; i-- > 0;) {
            const pb_any *v = kvs[i] && kvs[i]->key && strcmp(kvs[i]->key, names[k]) == 0 ? kvs[i]->value : NULL;
            if (!v) continue;
            if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE &&
                v->int_value > 0 && v->int_value < 1000)
                return (int)v->int_value;
            if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
                int x = atoi(v->string_value);
                if (x > 0 && x < 1000) return x;
            }
            break;
        }
    return 0;
}

static void json_id(struct sx_json *w, const char *key, ProtobufCBinaryData id, size_t want)
{
    sx_json_key(w, key);
    int zero = 1;
    for (size_t i = 0; i < id.len; i++) zero &= id.data[i] == 0;
    if (id.len == want && !zero) sx_json_hex(w, id.data, id.len);
    else sx_json_strz(w, "");
}

static const char *service_of(const Opentelemetry__Proto__Resource__V1__Resource *res)
{
    const char *s = res ? sx_copyrow_find_str(res->attributes, res->n_attributes, "service.name") : NULL;
    return s ? s : "unknown_service";
}

static int items_end(struct sx_buf *items, struct sx_json *w, size_t len0)
{
    sx_json_arr_close(w);
    if (w->err == SX_OK) return SX_OK;
    items->len = len0;
    if (items->data) items->data[len0] = '\0';
    return SX_ERR;
}

int sx_live_spans_json(struct sx_buf *items, const sx_trace_req *req, size_t *total)
{
    struct sx_json w;
    size_t len0 = items->len, n = 0;
    *total = 0;
    sx_json_init(&w, items);
    sx_json_arr_open(&w);
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        if (!rs) continue;
        const char *svc = service_of(rs->resource);
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            if (!ss) continue;
            *total += ss->n_spans;
            for (size_t i = 0; i < ss->n_spans && n < SX_LIVE_MAX_ITEMS; i++, n++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[i];
                int code = sp->status ? (int)sp->status->code : 0;
                int st = http_status(sp->attributes, sp->n_attributes);
                uint64_t start = sp->start_time_unix_nano, end = sp->end_time_unix_nano;
                sx_json_obj_open(&w);
                json_id(&w, "traceId", sp->trace_id, 16);
                json_id(&w, "spanId", sp->span_id, 8);
                json_id(&w, "parentSpanId", sp->parent_span_id, 8);
                sx_json_key(&w, "name");
                sx_json_strz(&w, sp->name ? sp->name : "");
                sx_json_key(&w, "service");
                sx_json_strz(&w, svc);
                sx_json_key(&w, "kind");
                sx_json_int(&w, sp->kind >= 0 && sp->kind <= 5 ? (int)sp->kind : 0);
                sx_json_key(&w, "startUnixNano");
                sx_json_int_str(&w, start > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)start);
                sx_json_key(&w, "durationMs");
                sx_json_double(&w, end > start ? (double)(end - start) / 1e6 : 0.0);
                sx_json_key(&w, "status");
                sx_json_strz(&w, code == 2 ? "error" : code == 1 ? "ok" : "unset");
                if (st) {
                    sx_json_key(&w, "httpStatus");
                    sx_json_int(&w, st);
                }
                sx_json_obj_close(&w);
            }
        }
    }
    return items_end(items, &w, len0);
}

/* Writes a log body as a string of at most SX_LIVE_BODY_MAX bytes, cut on
 * a UTF-8 boundary; bodies that are not strings as their JSON text. */
static void json_body(struct sx_json *w, const pb_any *body)
{
    char tmp[SX_LIVE_BODY_MAX + 8];
    const char *s = "";
    size_t n = 0;
    struct sx_buf js, b64;
    sx_buf_init(&js, SX_LIVE_BODY_MAX * 4);
    sx_buf_init(&b64, SX_LIVE_BODY_MAX * 4);
    if (body && body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        s = body->string_value ? body->string_value : "";
        n = strlen(s);
    } else if (body && body->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
        struct sx_json jw;
        sx_json_init(&jw, &js);
        sx_copyrow_json_any(&jw, &b64, body, 0);
        s = js.data ? js.data : "";
        n = js.len; /* on overflow: the part written, cut below */
    }
    if (n > SX_LIVE_BODY_MAX) {
        n = SX_LIVE_BODY_MAX;
        /* back off to the start of a UTF-8 sequence */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(tmp, s, n);
    sx_json_key(w, "body");
    sx_json_str(w, tmp, n); /* the writer replaces invalid UTF-8 */
    sx_buf_term(&js);
    sx_buf_term(&b64);
}

int sx_live_logs_json(struct sx_buf *items, const sx_logs_req *req, int64_t recv_ns, size_t *total)
{
    struct sx_json w;
    size_t len0 = items->len, n = 0;
    *total = 0;
    sx_json_init(&w, items);
    sx_json_arr_open(&w);
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[r];
        if (!rl) continue;
        const char *svc = service_of(rl->resource);
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[s];
            if (!sl) continue;
            *total += sl->n_log_records;
            for (size_t i = 0; i < sl->n_log_records && n < SX_LIVE_MAX_ITEMS; i++, n++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[i];
                uint64_t t = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
                int sev = (int)lr->severity_number;
                sx_json_obj_open(&w);
                sx_json_key(&w, "timeUnixNano");
                sx_json_int_str(&w, t == 0 ? recv_ns : t > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t);
                sx_json_key(&w, "severityNumber");
                sx_json_int(&w, sev >= 0 && sev <= 24 ? sev : 0);
                sx_json_key(&w, "severityText");
                sx_json_strz(&w, lr->severity_text ? lr->severity_text : "");
                sx_json_key(&w, "service");
                sx_json_strz(&w, svc);
                json_body(&w, lr->body);
                json_id(&w, "traceId", lr->trace_id, 16);
                json_id(&w, "spanId", lr->span_id, 8);
                sx_json_obj_close(&w);
            }
        }
    }
    return items_end(items, &w, len0);
}

static void point_time(struct sx_json *w, uint64_t t)
{
    sx_json_key(w, "timeUnixNano");
    sx_json_int_str(w, t > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t);
}

/* One histogram or summary point: {"timeUnixNano","count","sum"} (sum null
 * when the point has none). */
static void count_point(struct sx_json *w, uint64_t t, uint64_t count, int has_sum, double sum)
{
    sx_json_obj_open(w);
    point_time(w, t);
    sx_json_key(w, "count");
    sx_json_uint(w, count);
    sx_json_key(w, "sum");
    if (has_sum) sx_json_double(w, sum);
    else sx_json_null(w);
    sx_json_obj_close(w);
}

/* The number of data points of metric m. */
static size_t metric_npoints(const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return m->gauge->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return m->summary->n_data_points;
    default: return 0;
    }
}

/* Writes the points array of metric m and returns its number of points. */
static size_t metric_points(struct sx_json *w, const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_t;
    num_t **np = NULL;
    size_t n = 0;
    sx_json_key(w, "points");
    sx_json_arr_open(w);
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: np = m->gauge->data_points, n = m->gauge->n_data_points; break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: np = m->sum->data_points, n = m->sum->n_data_points; break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        n = m->histogram->n_data_points;
        for (size_t i = 0; i < n && i < SX_LIVE_MAX_POINTS; i++) {
            const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = m->histogram->data_points[i];
            count_point(w, p->time_unix_nano, p->count, p->sum_present_case != 0, p->sum);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        n = m->exponential_histogram->n_data_points;
        for (size_t i = 0; i < n && i < SX_LIVE_MAX_POINTS; i++) {
            const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p = m->exponential_histogram->data_points[i];
            count_point(w, p->time_unix_nano, p->count, p->sum_present_case != 0, p->sum);
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        n = m->summary->n_data_points;
        for (size_t i = 0; i < n && i < SX_LIVE_MAX_POINTS; i++) {
            const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *p = m->summary->data_points[i];
            count_point(w, p->time_unix_nano, p->count, 1, p->sum);
        }
        break;
    default: break;
    }
    for (size_t i = 0; np && i < n && i < SX_LIVE_MAX_POINTS; i++) {
        sx_json_obj_open(w);
        point_time(w, np[i]->time_unix_nano);
        sx_json_key(w, "value");
        if (np[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
            sx_json_int(w, np[i]->as_int);
        else sx_json_double(w, np[i]->as_double);
        sx_json_obj_close(w);
    }
    sx_json_arr_close(w);
    return n;
}

static const char *metric_type(const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return "gauge";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return "sum";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return "histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: return "exponential_histogram";
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return "summary";
    default: return "unknown";
    }
}

int sx_live_metrics_json(struct sx_buf *items, const sx_metrics_req *req, size_t *total)
{
    struct sx_json w;
    size_t len0 = items->len, n = 0;
    *total = 0;
    sx_json_init(&w, items);
    sx_json_arr_open(&w);
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[r];
        if (!rm) continue;
        const char *svc = service_of(rm->resource);
        for (size_t s = 0; s < rm->n_scope_metrics; s++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[s];
            for (size_t i = 0; sm && i < sm->n_metrics; i++) {
                const Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[i];
                if (!m) continue;
                if (n++ >= SX_LIVE_MAX_ITEMS) {
                    *total += metric_npoints(m); /* counted, not listed */
                    continue;
                }
                sx_json_obj_open(&w);
                sx_json_key(&w, "name");
                sx_json_strz(&w, m->name ? m->name : "");
                sx_json_key(&w, "service");
                sx_json_strz(&w, svc);
                sx_json_key(&w, "type");
                sx_json_strz(&w, metric_type(m));
                *total += metric_points(&w, m);
                sx_json_obj_close(&w);
            }
        }
    }
    return items_end(items, &w, len0);
}

int sx_live_xadd_format(struct sx_buf *cmds, const struct sx_config *cfg, long long project, const char *type,
                        size_t total, const char *items, size_t len)
{
    char key[256], maxlen[24], pid[24], tot[24];
    sx_redis_pkey(key, sizeof(key), cfg, project, SX_LIVE_SUFFIX);
    snprintf(maxlen, sizeof(maxlen), "%lld", cfg->live_maxlen);
    snprintf(pid, sizeof(pid), "%lld", project);
    snprintf(tot, sizeof(tot), "%zu", total);
    const char *argv[13] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "type", type, "project", pid, "total", tot,
                            "items"};
    size_t argl[14];
    const char *av[14];
    for (int i = 0; i < 13; i++) {
        av[i] = argv[i];
        argl[i] = strlen(argv[i]);
    }
    av[13] = items;
    argl[13] = len;
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, 14, av, argl);
    if (n < 0 || !cmd) return SX_ERR;
    int rc = sx_buf_append(cmds, cmd, (size_t)n);
    free(cmd);
    return rc;
}

/* ---- sextant-sse: events ------------------------------------------------------ */

static enum sx_live_topic topic_of(const char *type, size_t n)
{
    if (n == 5 && memcmp(type, "spans", 5) == 0) return SX_LIVE_SPANS;
    if (n == 4 && memcmp(type, "logs", 4) == 0) return SX_LIVE_LOGS;
    if (n == 7 && memcmp(type, "metrics", 7) == 0) return SX_LIVE_METRICS;
    if ((n == strlen(SX_LIVE_ISSUE_NEW) && memcmp(type, SX_LIVE_ISSUE_NEW, n) == 0) ||
        (n == strlen(SX_LIVE_ISSUE_REGRESSED) && memcmp(type, SX_LIVE_ISSUE_REGRESSED, n) == 0))
        return SX_LIVE_ISSUES;
    return 0;
}

static const char *field(size_t nf, const char *const *names, const size_t *nlens, const char *const *vals,
                         const size_t *vlens, const char *name, size_t *len)
{
    size_t want = strlen(name);
    for (size_t i = 0; i < nf; i++)
        if (nlens[i] == want && memcmp(names[i], name, want) == 0) {
            *len = vlens[i];
            return vals[i];
        }
    return NULL;
}

/* Fills ev's text, items and issue JSON from the parsed fields. */
static int event_build(struct sx_live_event *ev, struct sx_arena *a, size_t nf, const char *const *names,
                       const size_t *nlens, const char *const *vals, const size_t *vlens)
{
    struct sx_buf text;
    struct sx_json w;
    size_t len = 0;
    char err[128];
    sx_buf_init(&text, SX_LIVE_ITEMS_MAX * 2);
    sx_json_init(&w, &text);
    if (ev->topic == SX_LIVE_ISSUES) {
        static const char *const keys[4] = {"project", "issue", "shortId", "title"};
        sx_json_obj_open(&w);
        sx_json_key(&w, "type");
        sx_json_strz(&w, ev->type);
        for (int k = 0; k < 4; k++) {
            const char *v = field(nf, names, nlens, vals, vlens, keys[k], &len);
            sx_json_key(&w, keys[k]);
            if (v) sx_json_str(&w, v, len);
            else sx_json_null(&w);
        }
        sx_json_obj_close(&w);
        if (w.err != SX_OK) goto fail;
        ev->text = text.data;
        ev->issue_json = text.data;
        return SX_OK;
    }
    const char *tot = field(nf, names, nlens, vals, vlens, "total", &len);
    ev->total = tot ? strtoll(tot, NULL, 10) : 0;
    const char *items = field(nf, names, nlens, vals, vlens, "items", &len);
    if (!items || len > SX_LIVE_ITEMS_MAX) goto fail;
    struct sx_jv *root = NULL;
    struct sx_jv_limits lim = {.max_depth = 8, .max_items = 20000, .max_string = 8192};
    if (sx_jv_parse(items, len, &lim, a, &root, err, sizeof(err)) != SX_OK || root->type != SX_JV_ARRAY) goto fail;
    ev->items = sx_xcalloc(root->n ? root->n : 1, sizeof(*ev->items));
    /* Item texts first (offsets: the buffer may move while it grows), the
     * filter strings after them, each NUL-terminated. */
    size_t *off = sx_xcalloc(root->n ? root->n : 1, sizeof(*off) * 4);
    size_t i = 0;
    for (const struct sx_jv *it = root->first; it; it = it->next) {
        if (it->type != SX_JV_OBJECT) continue;
        off[4 * i] = text.len;
        sx_json_init(&w, &text);
        sx_jv_write(&w, it);
        off[4 * i + 1] = text.len - off[4 * i];
        if (sx_buf_putc(&text, '\0') != SX_OK) w.err = SX_ERR;
        const struct sx_jv *svc = sx_jv_get(it, "service");
        const struct sx_jv *txt = sx_jv_get(it, ev->topic == SX_LIVE_LOGS ? "body" : "name");
        const struct sx_jv *sev = sx_jv_get(it, "severityNumber");
        off[4 * i + 2] = text.len;
        if (svc && svc->type == SX_JV_STRING) sx_buf_append(&text, svc->str, svc->len);
        if (sx_buf_putc(&text, '\0') != SX_OK) w.err = SX_ERR;
        off[4 * i + 3] = text.len;
        if (txt && txt->type == SX_JV_STRING) sx_buf_append(&text, txt->str, txt->len);
        if (sx_buf_putc(&text, '\0') != SX_OK) w.err = SX_ERR;
        long long sv = 0;
        if (sev) sx_jv_int(sev, 0, 24, &sv);
        ev->items[i].severity = (int)sv;
        i++;
        if (w.err != SX_OK) break;
    }
    if (w.err != SX_OK || !text.data) {
        free(off);
        goto fail;
    }
    ev->nitems = i;
    for (size_t k = 0; k < i; k++) {
        ev->items[k].json = text.data + off[4 * k];
        ev->items[k].len = off[4 * k + 1];
        ev->items[k].service = text.data + off[4 * k + 2];
        ev->items[k].text = text.data + off[4 * k + 3];
    }
    free(off);
    ev->text = text.data;
    return SX_OK;
fail:
    sx_buf_term(&text);
    return SX_ERR;
}

struct sx_live_event *sx_live_event_create(const char *id, size_t nf, const char *const *names, const size_t *nlens,
                                           const char *const *vals, const size_t *vlens)
{
    size_t tlen = 0;
    const char *type = field(nf, names, nlens, vals, vlens, "type", &tlen);
    enum sx_live_topic topic = type ? topic_of(type, tlen) : 0;
    if (!topic || !sx_live_id_valid(id)) return NULL;
    struct sx_live_event *ev = sx_xcalloc(1, sizeof(*ev));
    atomic_init(&ev->refs, 1);
    snprintf(ev->id, sizeof(ev->id), "%s", id);
    ev->topic = topic;
    ev->type = topic == SX_LIVE_SPANS ? "spans"
               : topic == SX_LIVE_LOGS ? "logs"
               : topic == SX_LIVE_METRICS ? "metrics"
               : tlen == strlen(SX_LIVE_ISSUE_NEW) ? SX_LIVE_ISSUE_NEW
                                                  : SX_LIVE_ISSUE_REGRESSED;
    struct sx_arena *a = sx_arena_create(64 * 1024, SX_LIVE_ITEMS_MAX * 16);
    int rc = event_build(ev, a, nf, names, nlens, vals, vlens);
    sx_arena_destroy(a);
    if (rc != SX_OK) {
        free(ev->items);
        free(ev);
        return NULL;
    }
    return ev;
}

void sx_live_event_get(struct sx_live_event *ev)
{
    atomic_fetch_add(&ev->refs, 1);
}

void sx_live_event_put(struct sx_live_event *ev)
{
    if (!ev || atomic_fetch_sub(&ev->refs, 1) != 1) return;
    free(ev->items);
    free(ev->text);
    free(ev);
}

/* ---- sextant-sse: filters and formatting ----------------------------------------- */

int sx_live_filter_parse(struct sx_live_filter *f, const char *topics, const char *service, const char *severity,
                         const char *q, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->topics = SX_LIVE_ALL_TOPICS;
    if (topics && *topics) {
        f->topics = 0;
        for (const char *p = topics; *p;) {
            size_t n = strcspn(p, ",");
            if (n == 5 && strncmp(p, "spans", 5) == 0) f->topics |= SX_LIVE_SPANS;
            else if (n == 4 && strncmp(p, "logs", 4) == 0) f->topics |= SX_LIVE_LOGS;
            else if (n == 7 && strncmp(p, "metrics", 7) == 0) f->topics |= SX_LIVE_METRICS;
            else if (n == 6 && strncmp(p, "issues", 6) == 0) f->topics |= SX_LIVE_ISSUES;
            else {
                snprintf(err, errlen, "unknown topic '%.*s': use spans, logs, issues, metrics", (int)(n > 40 ? 40 : n),
                         p);
                return SX_ERR;
            }
            p += n;
            if (*p == ',') p++;
        }
    }
    if (service && strlen(service) >= sizeof(f->service)) {
        snprintf(err, errlen, "service is longer than %zu bytes", sizeof(f->service) - 1);
        return SX_ERR;
    }
    if (q && strlen(q) >= sizeof(f->q)) {
        snprintf(err, errlen, "q is longer than %zu bytes", sizeof(f->q) - 1);
        return SX_ERR;
    }
    if (service) snprintf(f->service, sizeof(f->service), "%s", service);
    if (q) snprintf(f->q, sizeof(f->q), "%s", q);
    if (severity && *severity && sx_api_severity_parse(severity, &f->min_severity) != SX_OK) {
        snprintf(err, errlen, "invalid severity: a number 1-24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL");
        return SX_ERR;
    }
    return SX_OK;
}

static int item_passes(const struct sx_live_item *it, enum sx_live_topic topic, const struct sx_live_filter *f)
{
    if (f->service[0] && strcmp(it->service, f->service) != 0) return 0;
    if (topic == SX_LIVE_LOGS && f->min_severity && it->severity < f->min_severity) return 0;
    if (f->q[0] && topic != SX_LIVE_METRICS && !strcasestr(it->text, f->q)) return 0;
    return 1;
}

int sx_live_format(struct sx_buf *out, const struct sx_live_event *ev, const struct sx_live_filter *f)
{
    if (!(f->topics & ev->topic)) return 0;
    size_t len0 = out->len;
    int rc = sx_buf_printf(out, "id: %s\nevent: %s\ndata: ", ev->id,
                           ev->topic == SX_LIVE_ISSUES ? "issue" : ev->type);
    if (ev->topic == SX_LIVE_ISSUES) {
        if (rc == SX_OK) rc = sx_buf_puts(out, ev->issue_json);
    } else {
        size_t sent = 0;
        if (rc == SX_OK)
            rc = sx_buf_printf(out, "{\"type\":\"%s\",\"total\":%lld,\"items\":[", ev->type, ev->total);
        for (size_t i = 0; i < ev->nitems && rc == SX_OK; i++) {
            if (!item_passes(&ev->items[i], ev->topic, f)) continue;
            if (sent++) rc = sx_buf_putc(out, ',');
            if (rc == SX_OK) rc = sx_buf_append(out, ev->items[i].json, ev->items[i].len);
        }
        if (rc == SX_OK) rc = sx_buf_puts(out, "]}");
        if (rc == SX_OK && sent == 0) {
            out->len = len0;
            if (out->data) out->data[len0] = '\0';
            return 0;
        }
    }
    if (rc == SX_OK) rc = sx_buf_puts(out, "\n\n");
    if (rc != SX_OK) {
        out->len = len0;
        if (out->data) out->data[len0] = '\0';
        return SX_ERR;
    }
    return 1;
}

/* ---- sextant-sse: a stream's queue ---------------------------------------------------- */

void sx_live_queue_init(struct sx_live_queue *q, size_t cap)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->cap = cap ? cap : 1;
    q->q = sx_xcalloc(q->cap, sizeof(*q->q));
}

/* Drops every queued reference; the caller holds q->mu (or owns q alone). */
static void queue_drop(struct sx_live_queue *q)
{
    for (size_t i = 0; i < q->len; i++) sx_live_event_put(q->q[(q->head + i) % q->cap]);
    q->head = q->len = 0;
}

void sx_live_queue_term(struct sx_live_queue *q)
{
    queue_drop(q);
    free(q->q);
    q->q = NULL;
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

void sx_live_queue_push(struct sx_live_queue *q, struct sx_live_event *ev)
{
    pthread_mutex_lock(&q->mu);
    if (q->len == q->cap) {
        queue_drop(q);
        q->gap = 1;
    }
    sx_live_event_get(ev);
    q->q[(q->head + q->len) % q->cap] = ev;
    q->len++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t sx_live_queue_pop(struct sx_live_queue *q, struct sx_live_event **out, size_t max, int *gap,
                         int64_t deadline)
{
    struct timespec ts = {(time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL)};
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && !q->gap && sx_mono_ns() < deadline)
        if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) != 0) break;
    *gap = q->gap;
    q->gap = 0;
    while (n < max && q->len > 0) {
        out[n++] = q->q[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- stream ids ------------------------------------------------------------------ */

static void id_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    *ms = *seq = 0;
    if (!sx_live_id_valid(s)) return;
    *ms = strtoull(s, &end, 10);
    if (*end == '-') *seq = strtoull(end + 1, NULL, 10);
}

int sx_live_id_cmp(const char *a, const char *b)
{
    unsigned long long am, as, bm, bs;
    id_parse(a, &am, &as);
    id_parse(b, &bm, &bs);
    if (am != bm) return am < bm ? -1 : 1;
    if (as != bs) return as < bs ? -1 : 1;
    return 0;
}

int sx_live_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0, d1 = s ? strspn(s, "0123456789") : 0;
    if (n == 0 || n > 40 || d1 == 0 || d1 > 20) return 0;
    if (d1 == n) return 1;
    if (s[d1] != '-') return 0;
    size_t d2 = strspn(s + d1 + 1, "0123456789");
    return d2 > 0 && d2 <= 20 && d1 + 1 + d2 == n;
}
