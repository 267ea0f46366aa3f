/* api_traces.c: sextant-api's trace endpoints: trace search, one trace as a
 * waterfall, and the services seen in a time window.
 *
 * SQL is built only from fixed fragments and $n placeholders; every value
 * from the request travels as a parameter. Span lookups for a trace are
 * bounded by the trace's own [start, end] so PostgreSQL prunes the daily
 * partitions of spans. */
#include "api_int.h"

#include "keys.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define DAY_NS (86400LL * 1000000000LL)
#define MAX_PARAMS 64
#define MAX_ATTR_FILTERS 16
#define MAX_TRACE_SPANS 50000   /* spans returned for one trace at most */
#define MAX_SERVICES 10000
#define SQL_MAX 16384

/* A query under construction: SQL text and its text parameters. */
struct qb {
    struct sx_buf sql;
    const char *params[MAX_PARAMS];
    int n;
};

/* Adds a parameter and returns its number ($n), or 0 when full. */
static int qb_param(struct qb *b, const char *v)
{
    if (b->n >= MAX_PARAMS) return 0;
    b->params[b->n++] = v;
    return b->n;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* Writes a column that holds JSON text produced by PostgreSQL, or dflt (JSON
 * text too) when it is NULL. */
static void col_json(struct sx_json *w, const PGresult *res, int row, int col, const char *dflt)
{
    if (PQgetisnull(res, row, col)) sx_json_raw(w, dflt, strlen(dflt));
    else sx_json_raw(w, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static double ns_to_ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* Reads from/to/timeRange; 400 on error. */
static int time_window(struct sx_api_req *r, struct sx_api_window *win)
{
    char err[256];
    int bad = 0;
    const char *from = sx_api_param1(r, "from", &bad);
    const char *to = bad ? NULL : sx_api_param1(r, "to", &bad);
    const char *range = bad ? NULL : sx_api_param1(r, "timeRange", &bad);
    if (bad) return SX_ERR;
    if (sx_api_time_window(from, to, range, r->now_ns, DAY_NS, win, err, sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    return SX_OK;
}

/* ---- GET /api/v1/projects/{project}/traces ----------------------------------- */

struct list_filters {
    struct sx_api_window win;
    const char *service, *operation, *status;
    int64_t min_ns, max_ns;     /* -1: absent */
    long long limit;
    int has_cursor;
    int64_t cursor_ns;
    uint8_t cursor_id[16];
};

static int list_filters(struct sx_api_req *r, struct list_filters *f)
{
    int bad = 0;
    const char *v;

    memset(f, 0, sizeof(*f));
    f->min_ns = f->max_ns = -1;
    f->limit = 20;
    if (time_window(r, &f->win) != SX_OK) return SX_ERR;
    f->service = sx_api_param1(r, "service", &bad);
    if (!bad) f->operation = sx_api_param1(r, "operation", &bad);
    if (!bad) f->status = sx_api_param1(r, "status", &bad);
    if (bad) return SX_ERR;
    if (f->status && strcmp(f->status, "error") != 0 && strcmp(f->status, "ok") != 0)
        return sx_api_fail(r, 400, "bad_request", "invalid status: expected error or ok");
    if ((v = sx_api_param1(r, "minDuration", &bad)) && sx_api_parse_ms(v, &f->min_ns) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid minDuration: expected milliseconds >= 0");
    if (bad) return SX_ERR;
    if ((v = sx_api_param1(r, "maxDuration", &bad)) && sx_api_parse_ms(v, &f->max_ns) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid maxDuration: expected milliseconds >= 0");
    if (bad) return SX_ERR;
    if (f->min_ns >= 0 && f->max_ns >= 0 && f->min_ns > f->max_ns)
        return sx_api_fail(r, 400, "bad_request", "invalid minDuration: it is above maxDuration");
    if ((v = sx_api_param1(r, "limit", &bad)) && sx_api_parse_int(v, 1, r->cfg->api_max_limit, &f->limit) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid limit: expected an integer from 1 to %lld",
                           r->cfg->api_max_limit);
    if (bad) return SX_ERR;
    if ((v = sx_api_param1(r, "cursor", &bad))) {
        if (sx_api_cursor_decode(v, &f->cursor_ns, f->cursor_id) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid cursor");
        f->has_cursor = 1;
    }
    if (bad) return SX_ERR;
    size_t nattr = sx_api_query_count(&r->q, "attr");
    if (nattr > MAX_ATTR_FILTERS)
        return sx_api_fail(r, 400, "bad_request", "invalid attr: at most %d attr filters", MAX_ATTR_FILTERS);
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        const char *eq = strchr(r->q.params[i].value, '=');
        if (!eq || eq == r->q.params[i].value)
            return sx_api_fail(r, 400, "bad_request", "invalid attr: expected key=value");
    }
    return SX_OK;
}

/* Appends the filters to the traces query; SX_ERR when out of room. */
static int list_sql(struct sx_api_req *r, const struct list_filters *f, struct qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, psvc = 0, ok = 1;
    char *v;

#define NUM(x) ((v = sx_api_strf(r, "%lld", (long long)(x))) != NULL ? qb_param(b, v) : 0)
    int pproj = NUM(r->project_id), pfrom = NUM(f->win.from_ns), pto = NUM(f->win.to_ns);
    if (!pproj || !pfrom || !pto) return SX_ERR;
    ok &= sx_buf_printf(s,
                        "SELECT encode(t.trace_id, 'hex'), t.start_time_ns, t.end_time_ns, t.root_service, "
                        "t.root_name, t.span_count, t.error_count, array_to_json(t.services)::text, t.has_root "
                        "FROM traces t WHERE t.project_id = $%d AND t.start_time_ns >= $%d AND "
                        "t.start_time_ns <= $%d",
                        pproj, pfrom, pto) == SX_OK;
    if (f->service) {
        if (!(psvc = qb_param(b, f->service))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND $%d = ANY (t.services)", psvc) == SX_OK;
    }
    if (f->status) ok &= sx_buf_puts(s, strcmp(f->status, "error") == 0 ? " AND t.error_count > 0"
                                                                          : " AND t.error_count = 0") == SX_OK;
    if (f->min_ns >= 0) {
        if (!(p = NUM(f->min_ns))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND t.end_time_ns - t.start_time_ns >= $%d", p) == SX_OK;
    }
    if (f->max_ns >= 0) {
        if (!(p = NUM(f->max_ns))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND t.end_time_ns - t.start_time_ns <= $%d", p) == SX_OK;
    }
    /* Span conditions: the span's start lies within its trace, which lets the
     * planner prune partitions; $pfrom bounds it statically too. */
    static const char span_exists[] =
        " AND EXISTS (SELECT 1 FROM spans s WHERE s.project_id = $%d AND s.trace_id = t.trace_id"
        " AND s.start_time_ns >= $%d AND s.start_time_ns BETWEEN t.start_time_ns AND t.end_time_ns";
    if (f->operation) {
        if (!(p = qb_param(b, f->operation))) return SX_ERR;
        ok &= sx_buf_printf(s, span_exists, pproj, pfrom) == SX_OK;
        ok &= sx_buf_printf(s, " AND s.name = $%d", p) == SX_OK;
        if (psvc) ok &= sx_buf_printf(s, " AND s.service = $%d", psvc) == SX_OK;
        ok &= sx_buf_puts(s, ")") == SX_OK;
    }
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        const char *kv = r->q.params[i].value, *eq = strchr(kv, '=');
        char *key = sx_arena_strndup(r->fr->arena, kv, (size_t)(eq - kv));
        int pk = key ? qb_param(b, key) : 0, pv = qb_param(b, eq + 1);
        if (!pk || !pv) return SX_ERR;
        ok &= sx_buf_printf(s, span_exists, pproj, pfrom) == SX_OK;
        ok &= sx_buf_printf(s, " AND (s.attributes ->> $%d) = $%d)", pk, pv) == SX_OK;
    }
    if (f->has_cursor) {
        char hex[2 + 32 + 1] = "\\x";
        sx_hex_encode(f->cursor_id, 16, hex + 2);
        int pc = NUM(f->cursor_ns);
        char *hx = sx_arena_strndup(r->fr->arena, hex, strlen(hex));
        int pi = hx ? qb_param(b, hx) : 0;
        if (!pc || !pi) return SX_ERR;
        ok &= sx_buf_printf(s, " AND (t.start_time_ns, t.trace_id) < ($%d::bigint, $%d::bytea)", pc, pi) == SX_OK;
    }
    if (!(p = NUM(f->limit + 1))) return SX_ERR;
    ok &= sx_buf_printf(s, " ORDER BY t.start_time_ns DESC, t.trace_id DESC LIMIT $%d", p) == SX_OK;
#undef NUM
    return ok ? SX_OK : SX_ERR;
}

int sx_api_traces_list(struct sx_api_req *r)
{
    struct list_filters f;
    struct qb b;
    struct sx_json w;
    PGresult *res = NULL;
    int rc = SX_ERR;

    b.n = 0;
    sx_buf_init(&b.sql, SQL_MAX);
    if (list_filters(r, &f) != SX_OK) goto out;
    if (list_sql(r, &f, &b) != SX_OK) {
        sx_api_fail(r, 400, "bad_request", "query too large");
        goto out;
    }
    res = sx_api_exec(r, b.sql.data, b.n, b.params, "SELECT traces");
    if (!res) goto out;

    int rows = PQntuples(res), shown = rows > f.limit ? (int)f.limit : rows;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "traces");
    sx_json_arr_open(&w);
    for (int i = 0; i < shown; i++) {
        int64_t start = col_i64(res, i, 1), end = col_i64(res, i, 2);
        sx_json_obj_open(&w);
        sx_json_key(&w, "traceId");
        sx_json_strz(&w, col_str(res, i, 0));
        sx_json_key(&w, "rootService");
        sx_json_strz(&w, col_str(res, i, 3));
        sx_json_key(&w, "rootName");
        sx_json_strz(&w, col_str(res, i, 4));
        sx_json_key(&w, "hasRoot");
        sx_json_bool(&w, strcmp(PQgetvalue(res, i, 8), "t") == 0);
        sx_json_key(&w, "startTimeUnixNano");
        sx_json_int_str(&w, start);
        sx_json_key(&w, "durationMs");
        sx_json_double(&w, ns_to_ms(end - start));
        sx_json_key(&w, "spanCount");
        sx_json_int(&w, col_i64(res, i, 5));
        sx_json_key(&w, "errorCount");
        sx_json_int(&w, col_i64(res, i, 6));
        sx_json_key(&w, "services");
        col_json(&w, res, i, 7, "[]");
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_key(&w, "nextCursor");
    if (rows > f.limit) {
        uint8_t id[16];
        char cur[SX_API_CURSOR_LEN + 1];
        const char *hex = PQgetvalue(res, shown - 1, 0);
        if (sx_hex_decode(hex, strlen(hex), id, sizeof(id)) != SX_OK) {
            sx_api_fail(r, 500, "internal", "internal error");
            goto out;
        }
        sx_api_cursor_encode(col_i64(res, shown - 1, 1), id, cur);
        sx_json_strz(&w, cur);
    } else {
        sx_json_null(&w);
    }
    sx_json_obj_close(&w);
    if (w.err) {
        sx_api_fail(r, 500, "internal", "response too large");
        goto out;
    }
    r->status = 200;
    rc = SX_OK;
out:
    PQclear(res);
    sx_buf_term(&b.sql);
    return rc;
}

/* ---- GET /api/v1/projects/{project}/traces/{traceId} -------------------------- */

enum span_col {
    SC_ID, SC_PARENT, SC_NAME, SC_KIND, SC_SERVICE, SC_START, SC_END, SC_STATUS, SC_STATUS_MSG,
    SC_ATTRS, SC_EVENTS, SC_LINKS, SC_RESOURCE, SC_SCOPE_NAME, SC_SCOPE_VERSION
};

static void write_span(struct sx_json *w, const PGresult *res, int i, int64_t trace_start, uint32_t depth)
{
    int64_t start = col_i64(res, i, SC_START), end = col_i64(res, i, SC_END);
    sx_json_obj_open(w);
    sx_json_key(w, "spanId");
    sx_json_strz(w, col_str(res, i, SC_ID));
    sx_json_key(w, "parentSpanId");
    sx_json_strz(w, col_str(res, i, SC_PARENT));
    sx_json_key(w, "name");
    sx_json_strz(w, col_str(res, i, SC_NAME));
    sx_json_key(w, "kind");
    sx_json_int(w, col_i64(res, i, SC_KIND));
    sx_json_key(w, "service");
    sx_json_strz(w, col_str(res, i, SC_SERVICE));
    sx_json_key(w, "startTimeUnixNano");
    sx_json_int_str(w, start);
    sx_json_key(w, "endTimeUnixNano");
    sx_json_int_str(w, end);
    sx_json_key(w, "durationMs");
    sx_json_double(w, ns_to_ms(end - start));
    sx_json_key(w, "offsetMs");
    sx_json_double(w, ns_to_ms(start - trace_start));
    sx_json_key(w, "depth");
    sx_json_uint(w, depth);
    sx_json_key(w, "status");
    sx_json_obj_open(w);
    sx_json_key(w, "code");
    sx_json_int(w, col_i64(res, i, SC_STATUS));
    sx_json_key(w, "message");
    sx_json_strz(w, col_str(res, i, SC_STATUS_MSG));
    sx_json_obj_close(w);
    sx_json_key(w, "attributes");
    col_json(w, res, i, SC_ATTRS, "{}");
    sx_json_key(w, "events");
    col_json(w, res, i, SC_EVENTS, "[]");
    sx_json_key(w, "links");
    col_json(w, res, i, SC_LINKS, "[]");
    sx_json_key(w, "resource");
    col_json(w, res, i, SC_RESOURCE, "{}");
    sx_json_key(w, "scope");
    sx_json_obj_open(w);
    sx_json_key(w, "name");
    sx_json_strz(w, col_str(res, i, SC_SCOPE_NAME));
    sx_json_key(w, "version");
    sx_json_strz(w, col_str(res, i, SC_SCOPE_VERSION));
    sx_json_obj_close(w);
    sx_json_obj_close(w);
}

int sx_api_trace_get(struct sx_api_req *r, const char *trace_id_hex)
{
    uint8_t id[16];
    char idparam[2 + 32 + 1] = "\\x";
    char proj[16], start_s[24], end_s[24], lim_s[24];
    PGresult *tres = NULL, *sres = NULL, *lres = NULL;
    struct sx_json w;
    int rc = SX_ERR;

    if (sx_hex_decode(trace_id_hex, strlen(trace_id_hex), id, sizeof(id)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid traceId: expected 32 hex characters");
    sx_hex_encode(id, sizeof(id), idparam + 2);
    snprintf(proj, sizeof(proj), "%d", r->project_id);

    const char *tparams[2] = {proj, idparam};
    tres = sx_api_exec(r,
                       "SELECT start_time_ns, end_time_ns, span_count, error_count, "
                       "array_to_json(services)::text, root_service, root_name, has_root "
                       "FROM traces WHERE project_id = $1 AND trace_id = $2::bytea",
                       2, tparams, "SELECT traces");
    if (!tres) goto out;
    if (PQntuples(tres) == 0) {
        sx_api_fail(r, 404, "not_found", "trace not found");
        goto out;
    }
    int64_t tstart = col_i64(tres, 0, 0), tend = col_i64(tres, 0, 1);
    snprintf(start_s, sizeof(start_s), "%lld", (long long)tstart);
    snprintf(end_s, sizeof(end_s), "%lld", (long long)tend);
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_TRACE_SPANS + 1);
    const char *sparams[5] = {proj, idparam, start_s, end_s, lim_s};
    /* DISTINCT ON drops exact duplicates: spans has no unique key (see
     * sql/003_spans_no_pk.sql), so a batch accepted twice in different
     * bytes (an SDK resending it) can store a span twice. */
    sres = sx_api_exec(r,
                       "SELECT DISTINCT ON (start_time_ns, span_id) "
                       "encode(span_id, 'hex'), encode(parent_span_id, 'hex'), name, kind, service, "
                       "start_time_ns, end_time_ns, status_code, status_message, attributes::text, "
                       "events::text, links::text, resource::text, scope_name, scope_version "
                       "FROM spans WHERE project_id = $1 AND trace_id = $2::bytea "
                       "AND start_time_ns BETWEEN $3 AND $4 ORDER BY start_time_ns, span_id LIMIT $5",
                       5, sparams, "SELECT spans");
    if (!sres) goto out;

    size_t n = (size_t)PQntuples(sres);
    int truncated = n > MAX_TRACE_SPANS;
    if (truncated) n = MAX_TRACE_SPANS;
    struct sx_api_wf_span *wf = sx_arena_calloc(r->fr->arena, n ? n : 1, sizeof(*wf));
    size_t *order = sx_arena_alloc(r->fr->arena, (n ? n : 1) * sizeof(*order));
    uint32_t *depth = sx_arena_alloc(r->fr->arena, (n ? n : 1) * sizeof(*depth));
    if (!wf || !order || !depth) {
        sx_api_fail(r, 500, "internal", "trace too large");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *sid = PQgetvalue(sres, (int)i, SC_ID);
        sx_hex_decode(sid, strlen(sid), wf[i].span_id, 8);
        if (!PQgetisnull(sres, (int)i, SC_PARENT)) {
            const char *pid = PQgetvalue(sres, (int)i, SC_PARENT);
            wf[i].has_parent = sx_hex_decode(pid, strlen(pid), wf[i].parent_id, 8) == SX_OK;
        }
        wf[i].start_ns = col_i64(sres, (int)i, SC_START);
    }
    if (sx_api_waterfall(r->fr->arena, wf, n, order, depth) != SX_OK) {
        sx_api_fail(r, 500, "internal", "trace too large");
        goto out;
    }

    /* Logs of the trace wherever they lie in time (logs_trace index). */
    lres = sx_api_exec(r, "SELECT count(*) FROM logs WHERE project_id = $1 AND trace_id = $2::bytea", 2, tparams,
                       "SELECT logs count");
    if (!lres) goto out;

    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "traceId");
    sx_json_hex(&w, id, sizeof(id));
    sx_json_key(&w, "startTimeUnixNano");
    sx_json_int_str(&w, tstart);
    sx_json_key(&w, "durationMs");
    sx_json_double(&w, ns_to_ms(tend - tstart));
    sx_json_key(&w, "spanCount");
    sx_json_int(&w, col_i64(tres, 0, 2));
    sx_json_key(&w, "errorCount");
    sx_json_int(&w, col_i64(tres, 0, 3));
    sx_json_key(&w, "services");
    col_json(&w, tres, 0, 4, "[]");
    sx_json_key(&w, "rootService");
    sx_json_strz(&w, col_str(tres, 0, 5));
    sx_json_key(&w, "rootName");
    sx_json_strz(&w, col_str(tres, 0, 6));
    sx_json_key(&w, "hasRoot");
    sx_json_bool(&w, strcmp(PQgetvalue(tres, 0, 7), "t") == 0);
    sx_json_key(&w, "logCount");
    sx_json_int(&w, col_i64(lres, 0, 0));
    sx_json_key(&w, "spansTruncated");
    sx_json_bool(&w, truncated);
    sx_json_key(&w, "spans");
    sx_json_arr_open(&w);
    for (size_t k = 0; k < n && !w.err; k++) write_span(&w, sres, (int)order[k], tstart, depth[order[k]]);
    sx_json_arr_close(&w);
    sx_json_obj_close(&w);
    if (w.err) {
        sx_api_fail(r, 500, "internal", "response too large");
        goto out;
    }
    r->status = 200;
    rc = SX_OK;
out:
    PQclear(lres);
    PQclear(sres);
    PQclear(tres);
    return rc;
}

/* ---- GET /api/v1/projects/{project}/services ---------------------------------- */

int sx_api_services_list(struct sx_api_req *r)
{
    struct sx_api_window win;
    char proj[16], from_s[24], to_s[24], lim_s[24];
    struct sx_json w;
    PGresult *res = NULL;

    if (time_window(r, &win) != SX_OK) return SX_ERR;
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    snprintf(from_s, sizeof(from_s), "%lld", (long long)win.from_ns);
    snprintf(to_s, sizeof(to_s), "%lld", (long long)win.to_ns);
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_SERVICES);
    const char *params[4] = {proj, from_s, to_s, lim_s};
    res = sx_api_exec(r,
                      "SELECT service, count(*) FROM spans WHERE project_id = $1 "
                      "AND start_time_ns >= $2 AND start_time_ns <= $3 "
                      "GROUP BY service ORDER BY service COLLATE \"C\" LIMIT $4",
                      4, params, "SELECT services");
    if (!res) return SX_ERR;

    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "services");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "name");
        sx_json_strz(&w, col_str(res, i, 0));
        sx_json_key(&w, "spanCount");
        sx_json_int(&w, col_i64(res, i, 1));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_obj_close(&w);
    PQclear(res);
    if (w.err) return sx_api_fail(r, 500, "internal", "response too large");
    r->status = 200;
    return SX_OK;
}
