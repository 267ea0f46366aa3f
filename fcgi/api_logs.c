/* api_logs.c: sextant-api's log search: GET /api/v1/projects/{project}/logs.
 *
 * Filters: q (full text in web search syntax: words, "exact phrase",
 * -excluded; served by the GIN index logs_search through
 * websearch_to_tsquery('simple', q)), severity (minimum: a name or 1..24),
 * service, traceId, spanId, attr=key=value (repeatable, string compare of
 * the attribute's text), from/to/timeRange (default the last 24 h; with
 * traceId and no time filter, all time, so a trace's logs are found
 * wherever they lie), limit/cursor. Newest first; ties in time are ordered
 * by the row's tuple id, which the cursor carries (see apiutil.h).
 *
 * With q, the rows come from the GIN index and are then sorted (see
 * log_sql), so a rare word costs as much as its matches.
 *
 * Rows are read through the view logs_visible (sql/004_logs.sql), which
 * restricts them to sextant.project_ids like the table's RLS policy does
 * but lets the planner use the GIN index for q (under RLS it cannot: @@ is
 * not leakproof). Every query still filters on project_id.
 *
 * SQL is built only from fixed fragments and $n placeholders; every value
 * from the request travels as a parameter. */
#include "api_int.h"

#include "keys.h"

#include <stdlib.h>
#include <string.h>

#define DAY_NS (86400LL * 1000000000LL)
#define MAX_PARAMS 64
#define MAX_ATTR_FILTERS 16
#define DEFAULT_LIMIT 100
#define SQL_MAX 8192

/* A query under construction: SQL text and its text parameters. */
struct qb {
    struct sx_api_req *r;
    struct sx_buf sql;
    const char *params[MAX_PARAMS];
    int n;
};

/* Adds a parameter and returns its number ($n), or 0 when full. */
static int qb_param(struct qb *b, const char *v)
{
    if (!v || b->n >= MAX_PARAMS) return 0;
    b->params[b->n++] = v;
    return b->n;
}

/* Adds a decimal parameter; 0 when full or out of arena. */
static int qb_num(struct qb *b, long long v)
{
    return qb_param(b, sx_api_strf(b->r, "%lld", v));
}

/* Adds a bytea parameter (\x<hex>) of n bytes; 0 when full or out of arena. */
static int qb_bytea(struct qb *b, const uint8_t *p, size_t n)
{
    char *hex = sx_arena_alloc(b->r->fr->arena, 2 + 2 * n + 1);
    if (!hex) return 0;
    hex[0] = '\\';
    hex[1] = 'x';
    sx_hex_encode(p, n, hex + 2);
    return qb_param(b, hex);
}

struct log_filters {
    struct sx_api_window win;
    const char *q, *service;
    int severity;               /* 0: any */
    uint8_t trace_id[16], span_id[8];
    int has_trace, has_span;
    long long limit;
    int has_cursor;
    int64_t cursor_ns;
    uint32_t cursor_block;
    uint16_t cursor_off;
};

/* Decodes a hex id of exactly n bytes; SX_ERR otherwise. */
static int hex_id(const char *s, uint8_t *out, size_t n)
{
    return strlen(s) == 2 * n && sx_hex_decode(s, 2 * n, out, n) == SX_OK ? SX_OK : SX_ERR;
}

static int log_filters(struct sx_api_req *r, struct log_filters *f)
{
    char err[256];
    int bad = 0;
    const char *v, *from, *to, *range;

    memset(f, 0, sizeof(*f));
    f->limit = DEFAULT_LIMIT;
    if (f->limit > r->cfg->api_max_limit) f->limit = r->cfg->api_max_limit;
    from = sx_api_param1(r, "from", &bad);
    to = bad ? NULL : sx_api_param1(r, "to", &bad);
    range = bad ? NULL : sx_api_param1(r, "timeRange", &bad);
    if (!bad) f->q = sx_api_param1(r, "q", &bad);
    if (!bad) f->service = sx_api_param1(r, "service", &bad);
    if (bad) return SX_ERR;
    if (f->q && sx_api_search_check(f->q, NULL, err, sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    if ((v = sx_api_param1(r, "severity", &bad)) && sx_api_severity_parse(v, &f->severity) != SX_OK)
        return sx_api_fail(r, 400, "bad_request",
                           "invalid severity: expected TRACE, DEBUG, INFO, WARN, ERROR, FATAL or 1 to 24");
    if (bad) return SX_ERR;
    if ((v = sx_api_param1(r, "traceId", &bad))) {
        if (hex_id(v, f->trace_id, 16) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid traceId: expected 32 hex characters");
        f->has_trace = 1;
    }
    if (bad) return SX_ERR;
    if ((v = sx_api_param1(r, "spanId", &bad))) {
        if (hex_id(v, f->span_id, 8) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid spanId: expected 16 hex characters");
        f->has_span = 1;
    }
    if (bad) return SX_ERR;
    if (f->has_trace && !from && !to && !range) {
        f->win.from_ns = INT64_MIN;
        f->win.to_ns = INT64_MAX;
    } else if (sx_api_time_window(from, to, range, r->now_ns, DAY_NS, &f->win, err, sizeof(err)) != SX_OK) {
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    }
    if ((v = sx_api_param1(r, "limit", &bad)) && sx_api_parse_int(v, 1, r->cfg->api_max_limit, &f->limit) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid limit: expected an integer from 1 to %lld",
                           r->cfg->api_max_limit);
    if (bad) return SX_ERR;
    if ((v = sx_api_param1(r, "cursor", &bad))) {
        if (sx_api_log_cursor_decode(v, &f->cursor_ns, &f->cursor_block, &f->cursor_off) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid cursor");
        f->has_cursor = 1;
    }
    if (bad) return SX_ERR;
    if (sx_api_query_count(&r->q, "attr") > MAX_ATTR_FILTERS)
        return sx_api_fail(r, 400, "bad_request", "invalid attr: at most %d attr filters", MAX_ATTR_FILTERS);
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        const char *eq = strchr(r->q.params[i].value, '=');
        if (!eq || eq == r->q.params[i].value)
            return sx_api_fail(r, 400, "bad_request", "invalid attr: expected key=value");
    }
    return SX_OK;
}

/* Builds the query; SX_ERR when out of room. */
static int log_sql(struct sx_api_req *r, const struct log_filters *f, struct qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, ok = 1;
    int pproj = qb_num(b, r->project_id), pfrom = qb_num(b, f->win.from_ns), pto = qb_num(b, f->win.to_ns);

    if (!pproj || !pfrom || !pto) return SX_ERR;
    ok &= sx_buf_printf(s,
                        "SELECT l.time_ns, l.observed_time_ns, l.severity_number, l.severity_text, l.body, "
                        "l.body_json, encode(l.trace_id, 'hex'), encode(l.span_id, 'hex'), l.service, "
                        "l.attributes::text, l.resource::text, l.row_tid::text "
                        "FROM logs_visible l WHERE l.project_id = $%d AND l.time_ns >= $%d AND l.time_ns <= $%d",
                        pproj, pfrom, pto) == SX_OK;
    if (f->severity > 0) {
        if (!(p = qb_num(b, f->severity))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.severity_number >= $%d", p) == SX_OK;
    }
    if (f->service) {
        if (!(p = qb_param(b, f->service))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.service = $%d", p) == SX_OK;
    }
    if (f->has_trace) {
        if (!(p = qb_bytea(b, f->trace_id, 16))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.trace_id = $%d::bytea", p) == SX_OK;
    }
    if (f->has_span) {
        if (!(p = qb_bytea(b, f->span_id, 8))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.span_id = $%d::bytea", p) == SX_OK;
    }
    if (f->q) {
        if (!(p = qb_param(b, f->q))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.search @@ websearch_to_tsquery('simple', $%d)", p) == SX_OK;
    }
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        const char *kv = r->q.params[i].value, *eq = strchr(kv, '=');
        int pk = qb_param(b, sx_arena_strndup(r->fr->arena, kv, (size_t)(eq - kv))), pv = qb_param(b, eq + 1);
        if (!pk || !pv) return SX_ERR;
        ok &= sx_buf_printf(s, " AND (l.attributes ->> $%d) = $%d", pk, pv) == SX_OK;
    }
    if (f->has_cursor) {
        /* The plain bound lets the index range stop early; the row
         * comparison breaks ties within one time (one partition). */
        int pc = qb_num(b, f->cursor_ns);
        int pt = qb_param(b, sx_api_strf(r, "(%u,%u)", (unsigned)f->cursor_block, (unsigned)f->cursor_off));
        if (!pc || !pt) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.time_ns <= $%d AND (l.time_ns, l.row_tid) < ($%d::bigint, $%d::tid)", pc, pc,
                            pt) == SX_OK;
    }
    if (!(p = qb_num(b, f->limit + 1))) return SX_ERR;
    /* With q, "time_ns + 0" keeps the planner from walking the time index
     * backwards and filtering each row by the text search: it expects a
     * word it has no statistics for (an id, a rare token) in 0.5% of the
     * rows, so it would read the whole time range for a word that occurs
     * once. Ordering the GIN matches instead costs what they number. */
    ok &= sx_buf_printf(s, " ORDER BY l.time_ns%s DESC, l.row_tid DESC LIMIT $%d", f->q ? " + 0" : "", p) == SX_OK;
    return ok ? SX_OK : SX_ERR;
}

enum log_col {
    LC_TIME, LC_OBSERVED, LC_SEV, LC_SEVTEXT, LC_BODY, LC_BODY_JSON, LC_TRACE, LC_SPAN, LC_SERVICE, LC_ATTRS,
    LC_RES, LC_CTID
};

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* A JSON column written by PostgreSQL (or by sextant-persist's JSON
 * writer, for structured bodies) as it is; dflt when NULL. */
static void col_json(struct sx_json *w, const PGresult *res, int row, int col, const char *dflt)
{
    if (PQgetisnull(res, row, col)) sx_json_raw(w, dflt, strlen(dflt));
    else sx_json_raw(w, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

/* Parses a tid's text form "(block,offset)". */
static int parse_tid(const char *s, uint32_t *block, uint16_t *off)
{
    char *end;
    if (*s++ != '(' || *s < '0' || *s > '9') return SX_ERR;
    unsigned long b = strtoul(s, &end, 10);
    if (*end != ',' || end[1] < '0' || end[1] > '9' || b > UINT32_MAX) return SX_ERR;
    unsigned long o = strtoul(end + 1, &end, 10);
    if (end[0] != ')' || end[1] != '\0' || o > UINT16_MAX) return SX_ERR;
    *block = (uint32_t)b;
    *off = (uint16_t)o;
    return SX_OK;
}

static void write_log(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    sx_json_key(w, "timeUnixNano");
    sx_json_int_str(w, col_i64(res, i, LC_TIME));
    sx_json_key(w, "observedTimeUnixNano");
    sx_json_int_str(w, col_i64(res, i, LC_OBSERVED));
    sx_json_key(w, "severityNumber");
    sx_json_int(w, col_i64(res, i, LC_SEV));
    sx_json_key(w, "severityText");
    sx_json_strz(w, col_str(res, i, LC_SEVTEXT));
    sx_json_key(w, "body");
    if (PQgetisnull(res, i, LC_BODY)) sx_json_null(w);
    else if (strcmp(PQgetvalue(res, i, LC_BODY_JSON), "t") == 0) col_json(w, res, i, LC_BODY, "null");
    else sx_json_str(w, PQgetvalue(res, i, LC_BODY), (size_t)PQgetlength(res, i, LC_BODY));
    sx_json_key(w, "traceId");
    sx_json_strz(w, col_str(res, i, LC_TRACE));
    sx_json_key(w, "spanId");
    sx_json_strz(w, col_str(res, i, LC_SPAN));
    sx_json_key(w, "service");
    sx_json_strz(w, col_str(res, i, LC_SERVICE));
    sx_json_key(w, "attributes");
    col_json(w, res, i, LC_ATTRS, "{}");
    sx_json_key(w, "resource");
    col_json(w, res, i, LC_RES, "{}");
    sx_json_obj_close(w);
}

int sx_api_logs_list(struct sx_api_req *r)
{
    struct log_filters f;
    struct qb b;
    struct sx_json w;
    PGresult *res = NULL;
    int rc = SX_ERR;

    b.r = r;
    b.n = 0;
    sx_buf_init(&b.sql, SQL_MAX);
    if (log_filters(r, &f) != SX_OK) goto out;
    if (log_sql(r, &f, &b) != SX_OK) {
        sx_api_fail(r, 400, "bad_request", "query too large");
        goto out;
    }
    res = sx_api_exec(r, b.sql.data, b.n, b.params, "SELECT logs");
    if (!res) goto out;

    int rows = PQntuples(res), shown = rows > f.limit ? (int)f.limit : rows;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "logs");
    sx_json_arr_open(&w);
    for (int i = 0; i < shown && !w.err; i++) write_log(&w, res, i);
    sx_json_arr_close(&w);
    sx_json_key(&w, "nextCursor");
    if (rows > f.limit) {
        char cur[SX_API_CURSOR_LEN + 1];
        uint32_t blk;
        uint16_t off;
        if (parse_tid(PQgetvalue(res, shown - 1, LC_CTID), &blk, &off) != SX_OK) {
            sx_api_fail(r, 500, "internal", "internal error");
            goto out;
        }
        sx_api_log_cursor_encode(col_i64(res, shown - 1, LC_TIME), blk, off, cur);
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
