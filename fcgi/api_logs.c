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

#define DEFAULT_LIMIT 100
#define SQL_MAX 8192

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
    if (sx_api_window_params(r, &from, &to, &range) != SX_OK) return SX_ERR;
    f->q = sx_api_param1(r, "q", &bad);
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
    } else if (sx_api_time_window(from, to, range, r->now_ns, SX_API_DAY_NS, &f->win, err, sizeof(err)) != SX_OK) {
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    }
    if (sx_api_limit(r, &f->limit) != SX_OK) return SX_ERR;
    if ((v = sx_api_param1(r, "cursor", &bad))) {
        if (sx_api_log_cursor_decode(v, &f->cursor_ns, &f->cursor_block, &f->cursor_off) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid cursor");
        f->has_cursor = 1;
    }
    if (bad) return SX_ERR;
    return sx_api_attr_check(r);
}

/* Builds the query; SX_ERR when out of room. */
static int log_sql(struct sx_api_req *r, const struct log_filters *f, struct sx_api_qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, ok = 1;
    int pproj = sx_api_qb_num(b, r->project_id), pfrom = sx_api_qb_num(b, f->win.from_ns);
    int pto = sx_api_qb_num(b, f->win.to_ns);

    if (!pproj || !pfrom || !pto) return SX_ERR;
    ok &= sx_buf_printf(s,
                        "SELECT l.time_ns, l.observed_time_ns, l.severity_number, l.severity_text, l.body, "
                        "l.body_json, encode(l.trace_id, 'hex'), encode(l.span_id, 'hex'), l.service, "
                        "l.attributes::text, l.resource::text, l.row_tid::text "
                        "FROM logs_visible l WHERE l.project_id = $%d AND l.time_ns >= $%d AND l.time_ns <= $%d",
                        pproj, pfrom, pto) == SX_OK;
    if (f->severity > 0) {
        if (!(p = sx_api_qb_num(b, f->severity))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.severity_number >= $%d", p) == SX_OK;
    }
    if (f->service) {
        if (!(p = sx_api_qb_param(b, f->service))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.service = $%d", p) == SX_OK;
    }
    if (f->has_trace) {
        if (!(p = sx_api_qb_bytea(b, f->trace_id, 16))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.trace_id = $%d::bytea", p) == SX_OK;
    }
    if (f->has_span) {
        if (!(p = sx_api_qb_bytea(b, f->span_id, 8))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.span_id = $%d::bytea", p) == SX_OK;
    }
    if (f->q) {
        if (!(p = sx_api_qb_param(b, f->q))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.search @@ websearch_to_tsquery('simple', $%d)", p) == SX_OK;
    }
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        int pk, pv;
        if (sx_api_qb_attr(b, r->q.params[i].value, &pk, &pv) != SX_OK) return SX_ERR;
        ok &= sx_buf_printf(s, " AND (l.attributes ->> $%d) = $%d", pk, pv) == SX_OK;
    }
    if (f->has_cursor) {
        /* The plain bound lets the index range stop early; the row
         * comparison breaks ties within one time (one partition). */
        int pc = sx_api_qb_num(b, f->cursor_ns);
        int pt = sx_api_qb_param(b, sx_api_strf(r, "(%u,%u)", (unsigned)f->cursor_block, (unsigned)f->cursor_off));
        if (!pc || !pt) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.time_ns <= $%d AND (l.time_ns, l.row_tid) < ($%d::bigint, $%d::tid)", pc, pc,
                            pt) == SX_OK;
    }
    if (!(p = sx_api_qb_num(b, f->limit + 1))) return SX_ERR;
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
    sx_json_int_str(w, sx_api_col_i64(res, i, LC_TIME));
    sx_json_key(w, "observedTimeUnixNano");
    sx_json_int_str(w, sx_api_col_i64(res, i, LC_OBSERVED));
    sx_json_key(w, "severityNumber");
    sx_json_int(w, sx_api_col_i64(res, i, LC_SEV));
    sx_json_key(w, "severityText");
    sx_json_strz(w, sx_api_col_str(res, i, LC_SEVTEXT));
    sx_json_key(w, "body");
    if (PQgetisnull(res, i, LC_BODY)) sx_json_null(w);
    else if (strcmp(PQgetvalue(res, i, LC_BODY_JSON), "t") == 0) sx_api_col_json(w, res, i, LC_BODY, "null");
    else sx_json_str(w, PQgetvalue(res, i, LC_BODY), (size_t)PQgetlength(res, i, LC_BODY));
    sx_json_key(w, "traceId");
    sx_json_strz(w, sx_api_col_str(res, i, LC_TRACE));
    sx_json_key(w, "spanId");
    sx_json_strz(w, sx_api_col_str(res, i, LC_SPAN));
    sx_json_key(w, "service");
    sx_json_strz(w, sx_api_col_str(res, i, LC_SERVICE));
    sx_json_key(w, "attributes");
    sx_api_col_json(w, res, i, LC_ATTRS, "{}");
    sx_json_key(w, "resource");
    sx_api_col_json(w, res, i, LC_RES, "{}");
    sx_json_obj_close(w);
}

/* The cursor after row i: its time and tuple id. */
static int log_cursor(const PGresult *res, int i, char *cur)
{
    uint32_t blk;
    uint16_t off;
    if (parse_tid(PQgetvalue(res, i, LC_CTID), &blk, &off) != SX_OK) return SX_ERR;
    sx_api_log_cursor_encode(sx_api_col_i64(res, i, LC_TIME), blk, off, cur);
    return SX_OK;
}

static int log_build(struct sx_api_req *r, const void *f, struct sx_api_qb *b)
{
    return log_sql(r, f, b);
}

static const struct sx_api_list log_list = {"logs", "SELECT logs", SQL_MAX, log_build, write_log, log_cursor};

int sx_api_logs_list(struct sx_api_req *r)
{
    struct log_filters f;
    if (log_filters(r, &f) != SX_OK) return SX_ERR;
    return sx_api_list_run(r, &log_list, &f, f.limit);
}
