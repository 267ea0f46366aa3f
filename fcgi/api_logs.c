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
 * With q the search runs in steps (sx_api_logs_list), each continuing
 * after the last row the previous one looked at: a walk of the newest rows
 * through the time index, testing each against q (a common word fills the
 * page after a few hundred rows; reading the GIN matches of `request`, 31%
 * of 1.1M rows, and sorting them took 1.2 s); a second, longer walk when
 * the matches seen say it would fill the page within LOG_WALK_MAX rows;
 * then the GIN index for the rest, ordered, in windows of time going back
 * (4x wider each), so a step costs what its window matches: a rare word
 * little, and a word common in older rows but absent from the newest no
 * longer every match of the range sorted. The page is the one a single
 * ordered query would give.
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
#define LOG_WALK_FIRST 1000  /* rows the first walk of a search with q looks at, at least */
#define LOG_WALK_MAX 40000   /* rows one walk looks at, at most */
#define LOG_WINDOW_MIN_NS (60LL * 1000000000LL) /* the first GIN window: at least a minute */

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

/* Where a query of the search starts: after the cursor's row, or after the
 * last row the previous step looked at. Rows are ordered by (time_ns,
 * row_tid) descending, so "after" means a smaller pair. */
struct log_bound {
    int set;
    int64_t time_ns;
    uint32_t block;
    uint16_t off;
};

/* How one query of the search reads the rows (see the note at the top). */
enum log_mode {
    LOG_PLAIN, /* no q: newest first through a (project, [service,] time) index */
    LOG_WALK,  /* q: the newest `budget` rows, each tested against q */
    LOG_GIN    /* q: every match from the GIN index, then ordered */
};

/* The conditions other than q; SX_ERR when out of room. */
static int log_where(struct sx_api_req *r, const struct log_filters *f, const struct log_bound *after,
                     struct sx_api_qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, ok = 1;
    int pproj = sx_api_qb_num(b, r->project_id), pfrom = sx_api_qb_num(b, f->win.from_ns);
    int pto = sx_api_qb_num(b, f->win.to_ns);

    if (!pproj || !pfrom || !pto) return SX_ERR;
    ok &= sx_buf_printf(s, " WHERE l.project_id = $%d AND l.time_ns >= $%d AND l.time_ns <= $%d", pproj, pfrom,
                        pto) == SX_OK;
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
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        int pk, pv;
        if (sx_api_qb_attr(b, r->q.params[i].value, &pk, &pv) != SX_OK) return SX_ERR;
        ok &= sx_buf_printf(s, " AND (l.attributes ->> $%d) = $%d", pk, pv) == SX_OK;
    }
    if (after->set) {
        /* The plain bound lets the index range stop early; the row
         * comparison breaks ties within one time (one partition). */
        int pc = sx_api_qb_num(b, after->time_ns);
        int pt = sx_api_qb_param(b, sx_api_strf(r, "(%u,%u)", (unsigned)after->block, (unsigned)after->off));
        if (!pc || !pt) return SX_ERR;
        ok &= sx_buf_printf(s, " AND l.time_ns <= $%d AND (l.time_ns, l.row_tid) < ($%d::bigint, $%d::tid)", pc, pc,
                            pt) == SX_OK;
    }
    return ok ? SX_OK : SX_ERR;
}

/* The columns of a log row (enum log_col) from the row source `a`. */
#define LOG_COLS(a)                                                                                             \
    a ".time_ns, " a ".observed_time_ns, " a ".severity_number, " a ".severity_text, " a ".body, " a             \
    ".body_json, encode(" a ".trace_id, 'hex'), encode(" a ".span_id, 'hex'), " a ".service, " a                 \
    ".attributes::text, " a ".resource::text, " a ".row_tid::text"

/* Builds one query of the search: rows after `after`, at most `limit` of
 * them (LOG_WALK: among the newest `budget`); SX_ERR when out of room. */
static int log_sql(struct sx_api_req *r, const struct log_filters *f, enum log_mode mode, const struct log_bound *after,
                   long long limit, long long budget, struct sx_api_qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, pq = 0, pb = 0, ok = 1;

    if (mode != LOG_PLAIN && !(pq = sx_api_qb_param(b, f->q))) return SX_ERR;
    if (mode == LOG_WALK) {
        /* The newest `budget` rows that pass the other filters, numbered;
         * those that match q come back (at most `limit`), and so does row
         * number `budget` whether it matches or not: it is where the next
         * step goes on. */
        if (!(pb = sx_api_qb_num(b, budget))) return SX_ERR;
        ok &= sx_buf_printf(s,
                            "SELECT " LOG_COLS("w") ", w.hit, w.rn FROM (SELECT l.time_ns, l.observed_time_ns, "
                            "l.severity_number, l.severity_text, l.body, l.body_json, l.trace_id, l.span_id, "
                            "l.service, l.attributes, l.resource, l.row_tid, "
                            "l.search @@ websearch_to_tsquery('simple', $%d) AS hit, "
                            "row_number() OVER (ORDER BY l.time_ns DESC, l.row_tid DESC) AS rn "
                            "FROM logs_visible l",
                            pq) == SX_OK;
    } else {
        ok &= sx_buf_puts(s, "SELECT " LOG_COLS("l") " FROM logs_visible l") == SX_OK;
    }
    if (!ok || log_where(r, f, after, b) != SX_OK) return SX_ERR;
    if (mode == LOG_GIN) ok &= sx_buf_printf(s, " AND l.search @@ websearch_to_tsquery('simple', $%d)", pq) == SX_OK;
    if (!(p = sx_api_qb_num(b, mode == LOG_WALK ? limit + 1 : limit))) return SX_ERR;
    if (mode == LOG_WALK) {
        ok &= sx_buf_printf(s,
                            " ORDER BY l.time_ns DESC, l.row_tid DESC LIMIT $%d) w WHERE w.hit OR w.rn = $%d "
                            "ORDER BY w.time_ns DESC, w.row_tid DESC LIMIT $%d",
                            pb, pb, p) == SX_OK;
    } else {
        /* LOG_GIN: "time_ns + 0" keeps the planner from walking the time
         * index backwards and filtering each row by the text search: it
         * expects a word it has no statistics for (an id, a rare token) in
         * 0.5% of the rows, so it would read the whole time range for a
         * word that occurs once. Ordering the GIN matches instead costs
         * what they number, which the walk before it keeps small. */
        ok &= sx_buf_printf(s, " ORDER BY l.time_ns%s DESC, l.row_tid DESC LIMIT $%d",
                            mode == LOG_GIN ? " + 0" : "", p) == SX_OK;
    }
    return ok ? SX_OK : SX_ERR;
}

enum log_col {
    LC_TIME, LC_OBSERVED, LC_SEV, LC_SEVTEXT, LC_BODY, LC_BODY_JSON, LC_TRACE, LC_SPAN, LC_SERVICE, LC_ATTRS,
    LC_RES, LC_CTID, LC_HIT, LC_RN /* LC_HIT, LC_RN: LOG_WALK only */
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
    const struct log_filters *lf = f;
    struct log_bound after = {lf->has_cursor, lf->cursor_ns, lf->cursor_block, lf->cursor_off};
    return log_sql(r, lf, LOG_PLAIN, &after, lf->limit + 1, 0, b);
}

static const struct sx_api_list log_list = {"logs", "SELECT logs", SQL_MAX, log_build, write_log, log_cursor};

/* Runs one step of a search with q and takes its matches into the page.
 * LOG_WALK: *after moves to the last row the step looked at, or *after->set
 * becomes 0 when the step saw every row there is; *hits counts the matches.
 * SX_ERR with the error response set. */
static int log_step(struct sx_api_req *r, const struct log_filters *f, enum log_mode mode, long long budget,
                    struct log_bound *after, struct sx_api_page *page, int *hits)
{
    struct sx_api_qb b;
    PGresult *res;
    int idx, rc = SX_ERR;

    sx_api_qb_init(&b, r, SQL_MAX);
    if (log_sql(r, f, mode, after, sx_api_page_need(page), budget, &b) != SX_OK) {
        sx_api_fail(r, 400, "bad_request", "query too large");
        goto out;
    }
    if (!(res = sx_api_exec(r, b.sql.data, b.n, b.params, mode == LOG_WALK ? "SELECT logs (walk)" : "SELECT logs")))
        goto out;
    if ((idx = sx_api_page_add(page, r, res)) < 0) goto out;
    int n = PQntuples(res);
    *hits = 0;
    for (int i = 0; i < n; i++) {
        if (mode == LOG_WALK && strcmp(PQgetvalue(res, i, LC_HIT), "t") != 0) continue;
        sx_api_page_take(page, idx, i);
        (*hits)++;
    }
    if (mode == LOG_WALK) {
        /* Only the row numbered `budget` says there may be more. */
        after->set = n > 0 && sx_api_col_i64(res, n - 1, LC_RN) == budget;
        if (after->set) {
            after->time_ns = sx_api_col_i64(res, n - 1, LC_TIME);
            if (parse_tid(PQgetvalue(res, n - 1, LC_CTID), &after->block, &after->off) != SX_OK) {
                sx_api_fail(r, 500, "internal", "internal error");
                goto out;
            }
        }
    } else {
        after->set = 0;
    }
    rc = SX_OK;
out:
    sx_api_qb_term(&b);
    return rc;
}

int sx_api_logs_list(struct sx_api_req *r)
{
    struct log_filters f;
    struct sx_api_page page;
    int rc = SX_ERR, hits;

    if (log_filters(r, &f) != SX_OK) return SX_ERR;
    if (!f.q) return sx_api_list_run(r, &log_list, &f, f.limit);

    /* With q: walk the newest rows first (cheap when the words are common),
     * then, if the page is not full, once more with a budget sized by the
     * matches seen when that is cheap enough, and the GIN index for all
     * the rest (cheap when they are rare). Each step starts after the last
     * row the previous one looked at, so no row is read twice or missed. */
    struct log_bound after = {f.has_cursor, f.cursor_ns, f.cursor_block, f.cursor_off};
    if (sx_api_page_init(&page, r, f.limit) != SX_OK) return SX_ERR;
    long long need = sx_api_page_need(&page), budget = SX_MAX(LOG_WALK_FIRST, 8 * need);
    if (budget > LOG_WALK_MAX) budget = LOG_WALK_MAX;
    if (log_step(r, &f, LOG_WALK, budget, &after, &page, &hits) != SX_OK) goto out;
    if (after.set && sx_api_page_need(&page) > 0 && hits > 0) {
        /* Rows needed at the rate seen, twice over. */
        long long more = 2 * (long long)sx_api_page_need(&page) * budget / hits;
        if (more <= LOG_WALK_MAX &&
            log_step(r, &f, LOG_WALK, SX_MAX(more, LOG_WALK_FIRST), &after, &page, &hits) != SX_OK)
            goto out;
    }
    /* The GIN index for the rest, window by window going back in time: a
     * word common in older rows but absent from the newest ones would
     * otherwise have every match in the range read and sorted (0.8-1.4 s
     * for 190k-340k matches); a window costs what it matches. The first is
     * four times the time the walks covered (at least LOG_WINDOW_MIN_NS),
     * each next one four times wider, the last one reaching `from`. */
    int64_t top = f.has_cursor ? f.cursor_ns : f.win.to_ns, width = 4 * (top - after.time_ns);
    if (width < LOG_WINDOW_MIN_NS) width = LOG_WINDOW_MIN_NS;
    while (after.set && sx_api_page_need(&page) > 0) {
        struct log_filters wf = f;
        int last = after.time_ns - f.win.from_ns <= width;
        if (!last) wf.win.from_ns = after.time_ns - width;
        if (log_step(r, &wf, LOG_GIN, 0, &after, &page, &hits) != SX_OK) goto out;
        if (last) break;
        /* Every match at or after the window's start is in the page now:
         * go on below it ((t, (0,0)) is before every row of time t). */
        after = (struct log_bound){1, wf.win.from_ns, 0, 0};
        width = width > INT64_MAX / 4 ? INT64_MAX : width * 4;
    }
    rc = sx_api_page_reply(r, &log_list, &page);
out:
    sx_api_page_term(&page);
    return rc;
}

/* ---- GET .../logs/histogram ---------------------------------------------------
 *
 * Log volume per step and severity over the search's filters (the same
 * log_filters and log_where; q through the GIN index of logs_visible), in
 * one GROUP BY. Steps are aligned to the epoch; the answer is dense.
 *
 * The count runs inside a savepoint under statement_timeout =
 * api_log_hist_ms. When it is cancelled (a huge window of a busy project),
 * the histogram counts the newest api_log_hist_rows rows of the window
 * instead (a walk of the time index; the filters and q tested on each
 * row, so the rows read are bounded however few match): the
 * steps entirely newer than the oldest row read are exact, the older ones
 * come back with "count": null, and the answer says "partial": true and
 * "countedFromMs". If that walk read fewer rows than api_log_hist_rows it
 * saw the whole window and the answer is exact after all. api_log_hist_ms
 * 0 skips the exact count (always the walk). */

#define LOG_HIST_STEPS 120      /* buckets at most when no step is asked for */
#define LOG_HIST_MAX_STEPS 1500 /* buckets at most */
#define SECOND_NS 1000000000LL

/* Severity classes of a bucket: ERROR and FATAL (17..24), WARN (13..16),
 * INFO (9..12), DEBUG and TRACE (1..8); "other" (unset) is the rest. */
enum { HS_ERROR, HS_WARN, HS_INFO, HS_DEBUG, HS_N };
static const char *const hist_sev_name[HS_N] = {"error", "warn", "info", "debug"};

/* The aggregates of a bucket, counting the rows for which `cond` holds. */
#define HIST_AGGS(cond)                                                                                          \
    "count(*) FILTER (WHERE " cond "), count(*) FILTER (WHERE " cond " AND l.severity_number >= 17), "           \
    "count(*) FILTER (WHERE " cond " AND l.severity_number BETWEEN 13 AND 16), "                               \
    "count(*) FILTER (WHERE " cond " AND l.severity_number BETWEEN 9 AND 12), "                                \
    "count(*) FILTER (WHERE " cond " AND l.severity_number BETWEEN 1 AND 8)"

/* Reads step ("30s", "5m", or milliseconds; at least 1 s, whole seconds)
 * or picks the smallest nice step giving at most LOG_HIST_STEPS buckets.
 * SX_ERR with a 400 set. */
static int hist_step(struct sx_api_req *r, const struct sx_api_window *win, int64_t *step_ns)
{
    static const int64_t nice[] = {1,   2,    5,    10,   15,   30,    60,    120,   300,   600, 900,
                                   1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800};
    int bad = 0;
    long long ms;
    const char *step = sx_api_param1(r, "step", &bad);
    if (bad) return SX_ERR;
    int64_t range = win->to_ns - win->from_ns + 1;
    if (step) {
        int digits = strspn(step, "0123456789") == strlen(step);
        if (digits ? sx_api_parse_int(step, 1000, 86400000LL * 400, &ms) != SX_OK
                   : sx_api_parse_range(step, step_ns) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "step must be a duration (30s, 5m, 1h) or milliseconds, at least 1s");
        if (digits) *step_ns = (int64_t)ms * 1000000;
        if (*step_ns % SECOND_NS != 0)
            return sx_api_fail(r, 400, "bad_request", "step must be a whole number of seconds");
    } else {
        *step_ns = 0;
        for (size_t i = 0; i < sizeof(nice) / sizeof(nice[0]) && !*step_ns; i++)
            if (range / (nice[i] * SECOND_NS) < LOG_HIST_STEPS) *step_ns = nice[i] * SECOND_NS;
        if (!*step_ns) *step_ns = (range / LOG_HIST_STEPS / SECOND_NS + 1) * SECOND_NS;
    }
    int64_t steps = win->to_ns / *step_ns - win->from_ns / *step_ns + 1;
    if (steps > LOG_HIST_MAX_STEPS)
        return sx_api_fail(r, 400, "bad_request", "%lld steps: at most %d, use a larger step or a shorter window",
                           (long long)steps, LOG_HIST_MAX_STEPS);
    return SX_OK;
}

/* Builds the count: exact (one GROUP BY over every matching row), or for
 * the fallback over the newest api_log_hist_rows rows of the window, read
 * through the time index whatever the filters (so the rows read are
 * bounded even when few match), the filters then applied to them; a last
 * row with a NULL step carries the oldest time read and the rows read (its
 * second and third columns).
 * SX_ERR when out of room. */
static int hist_sql(struct sx_api_req *r, const struct log_filters *f, int64_t step_ns, int walk, struct sx_api_qb *b)
{
    static const struct log_bound none;
    struct sx_buf *s = &b->sql;
    int pq = 0, ps = sx_api_qb_num(b, step_ns), ok = 1;

    if (!ps || (f->q && !(pq = sx_api_qb_param(b, f->q)))) return SX_ERR;
    if (!walk) {
        ok &= sx_buf_printf(s, "SELECT l.time_ns / $%d::bigint, " HIST_AGGS("true") " FROM logs_visible l", ps) == SX_OK;
    } else {
        int pp = sx_api_qb_num(b, r->project_id), pf = sx_api_qb_num(b, f->win.from_ns);
        int pt = sx_api_qb_num(b, f->win.to_ns), pn = sx_api_qb_num(b, r->cfg->api_log_hist_rows);
        if (!pp || !pf || !pt || !pn) return SX_ERR;
        ok &= sx_buf_puts(s, "WITH w AS (SELECT l.project_id, l.time_ns, l.severity_number, l.service, l.trace_id, "
                             "l.span_id, l.attributes, ") == SX_OK;
        if (pq) ok &= sx_buf_printf(s, "l.search @@ websearch_to_tsquery('simple', $%d) AS hit", pq) == SX_OK;
        else ok &= sx_buf_puts(s, "true AS hit") == SX_OK;
        ok &= sx_buf_printf(s,
                            " FROM logs_visible l WHERE l.project_id = $%d AND l.time_ns >= $%d AND l.time_ns <= $%d "
                            "ORDER BY l.time_ns DESC LIMIT $%d) "
                            "SELECT l.time_ns / $%d::bigint, " HIST_AGGS("l.hit") " FROM w l",
                            pp, pf, pt, pn, ps) == SX_OK;
    }
    if (!ok || log_where(r, f, &none, b) != SX_OK) return SX_ERR;
    if (!walk && pq) ok &= sx_buf_printf(s, " AND l.search @@ websearch_to_tsquery('simple', $%d)", pq) == SX_OK;
    ok &= sx_buf_puts(s, " GROUP BY 1") == SX_OK;
    if (walk) ok &= sx_buf_puts(s, " UNION ALL SELECT NULL, min(time_ns), count(*), 0, 0, 0 FROM w") == SX_OK;
    return ok ? SX_OK : SX_ERR;
}

/* Runs one query of hist_sql; NULL with the error response set. */
static PGresult *hist_run(struct sx_api_req *r, const struct log_filters *f, int64_t step_ns, int walk)
{
    struct sx_api_qb b;
    PGresult *res = NULL;
    sx_api_qb_init(&b, r, SQL_MAX);
    if (hist_sql(r, f, step_ns, walk, &b) != SX_OK) sx_api_fail(r, 400, "bad_request", "query too large");
    else res = sx_api_exec(r, b.sql.data, b.n, b.params, walk ? "SELECT logs histogram (walk)" : "SELECT logs histogram");
    sx_api_qb_term(&b);
    return res;
}

/* Runs a statement without parameters; SX_ERR with the error response set. */
static int hist_cmd(struct sx_api_req *r, const char *sql)
{
    PGresult *res = sx_api_exec(r, sql, 0, NULL, sql);
    PQclear(res);
    return res ? SX_OK : SX_ERR;
}

int sx_api_logs_histogram(struct sx_api_req *r)
{
    struct log_filters f;
    int64_t step_ns;
    PGresult *res;
    int walk = 0;

    if (log_filters(r, &f) != SX_OK) return SX_ERR;
    if (f.win.from_ns == INT64_MIN) { /* traceId without a time filter: the last day, as the search's default */
        f.win.to_ns = r->now_ns;
        f.win.from_ns = r->now_ns - SX_API_DAY_NS;
    }
    if (hist_step(r, &f.win, &step_ns) != SX_OK) return SX_ERR;
    int64_t first = f.win.from_ns / step_ns;
    size_t nsteps = (size_t)(f.win.to_ns / step_ns - first + 1);
    long long *cnt = sx_arena_calloc(r->fr->arena, nsteps * (HS_N + 1), sizeof(*cnt));
    if (!cnt) return sx_api_fail(r, 500, "internal", "out of memory");

    /* The exact count under the budget; the savepoint ends the timeout
     * (and a cancelled statement's error) whatever happens. */
    int cancelled = r->cfg->api_log_hist_ms == 0;
    res = NULL;
    if (!cancelled) {
        char set[96];
        snprintf(set, sizeof(set), "SET LOCAL statement_timeout = %lld", r->cfg->api_log_hist_ms);
        if (hist_cmd(r, "SAVEPOINT log_hist") != SX_OK || hist_cmd(r, set) != SX_OK) return SX_ERR;
        res = hist_run(r, &f, step_ns, 0);
        cancelled = !res && r->status == 503 && PQstatus(*r->pgp) == CONNECTION_OK &&
                    PQtransactionStatus(*r->pgp) == PQTRANS_INERROR;
        if (!res && !cancelled) return SX_ERR;
        if (hist_cmd(r, "ROLLBACK TO SAVEPOINT log_hist") != SX_OK) {
            PQclear(res);
            return SX_ERR;
        }
    }
    if (cancelled) {
        walk = 1;
        if (!(res = hist_run(r, &f, step_ns, 1))) return SX_ERR;
    }

    int64_t oldest = INT64_MAX;
    long long read = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (walk && PQgetisnull(res, i, 0)) { /* the walk's summary row */
            oldest = sx_api_col_i64(res, i, 1);
            read = sx_api_col_i64(res, i, 2);
            continue;
        }
        int64_t k = sx_api_col_i64(res, i, 0) - first;
        if (k < 0 || (size_t)k >= nsteps) continue;
        for (int c = 0; c <= HS_N; c++) cnt[(size_t)k * (HS_N + 1) + c] = sx_api_col_i64(res, i, 1 + c);
    }
    PQclear(res);
    int partial = walk && read >= r->cfg->api_log_hist_rows;

    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "from");
    sx_json_int(&w, f.win.from_ns / 1000000);
    sx_json_key(&w, "to");
    sx_json_int(&w, f.win.to_ns / 1000000);
    sx_json_key(&w, "stepMs");
    sx_json_int(&w, step_ns / 1000000);
    sx_json_key(&w, "partial");
    sx_json_bool(&w, partial);
    if (partial) {
        sx_json_key(&w, "countedFromMs");
        sx_json_int(&w, oldest / 1000000);
    }
    sx_json_key(&w, "buckets");
    sx_json_arr_open(&w);
    for (size_t k = 0; k < nsteps; k++) {
        int64_t t = (first + (int64_t)k) * step_ns;
        const long long *c = &cnt[k * (HS_N + 1)];
        int unknown = partial && t <= oldest; /* rows older than the oldest read were not counted */
        sx_json_obj_open(&w);
        sx_json_key(&w, "t");
        sx_json_int(&w, t / 1000000);
        sx_json_key(&w, "count");
        if (unknown) sx_json_null(&w);
        else sx_json_int(&w, c[0]);
        sx_json_key(&w, "bySeverity");
        if (unknown) {
            sx_json_null(&w);
        } else {
            long long other = c[0];
            sx_json_obj_open(&w);
            for (int s = 0; s < HS_N; s++) {
                sx_json_key(&w, hist_sev_name[s]);
                sx_json_int(&w, c[1 + s]);
                other -= c[1 + s];
            }
            sx_json_key(&w, "other");
            sx_json_int(&w, other);
            sx_json_obj_close(&w);
        }
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    return sx_api_reply(r, &w);
}
