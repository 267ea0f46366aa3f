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

#define MAX_TRACE_SPANS 50000   /* spans returned for one trace at most */
#define MAX_SERVICES 10000
#define SQL_MAX 16384
#define TRACE_WALK_FIRST 1000   /* traces the first walk of a list by service looks at, at least */

static double ns_to_ms(int64_t ns)
{
    return (double)ns / 1e6;
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
    if (sx_api_window(r, &f->win) != SX_OK) return SX_ERR;
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
    if (sx_api_limit(r, &f->limit) != SX_OK) return SX_ERR;
    if ((v = sx_api_param1(r, "cursor", &bad))) {
        if (sx_api_cursor_decode(v, &f->cursor_ns, f->cursor_id) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid cursor");
        f->has_cursor = 1;
    }
    if (bad) return SX_ERR;
    return sx_api_attr_check(r);
}

/* Where a query of the list starts: after the cursor's trace or after the
 * last trace the previous step looked at ((start, trace id) descending). */
struct trace_bound {
    int set;
    int64_t start_ns;
    uint8_t id[16];
};

/* How one query of the list reads the traces (see sx_api_traces_list). */
enum trace_mode {
    TRACE_PLAIN, /* newest first through traces_recent, filtered */
    TRACE_WALK,  /* the newest `budget` traces, each tested against the filters */
    TRACE_SPANS  /* traces of the service's spans since `lo` (spans_service_time) */
};

#define TRACE_COLS(a)                                                                                          \
    "encode(" a ".trace_id, 'hex'), " a ".start_time_ns, " a ".end_time_ns, " a ".root_service, " a             \
    ".root_name, " a ".span_count, " a ".error_count, array_to_json(" a ".services)::text, " a ".has_root"

enum { TC_HIT = 9, TC_RN = 10 }; /* TRACE_WALK's extra columns */

/* Appends the filters on the trace `t` (each " AND ..."); SX_ERR when out of room. */
static int list_conds(struct sx_api_req *r, const struct list_filters *f, int pproj, int pfrom, int *psvc,
                      struct sx_api_qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, ok = 1;

    *psvc = 0;
    if (f->service) {
        if (!(*psvc = sx_api_qb_param(b, f->service))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND $%d = ANY (t.services)", *psvc) == SX_OK;
    }
    if (f->status) ok &= sx_buf_puts(s, strcmp(f->status, "error") == 0 ? " AND t.error_count > 0"
                                                                          : " AND t.error_count = 0") == SX_OK;
    if (f->min_ns >= 0) {
        if (!(p = sx_api_qb_num(b, f->min_ns))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND t.end_time_ns - t.start_time_ns >= $%d", p) == SX_OK;
    }
    if (f->max_ns >= 0) {
        if (!(p = sx_api_qb_num(b, f->max_ns))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND t.end_time_ns - t.start_time_ns <= $%d", p) == SX_OK;
    }
    /* Span conditions: the span's start lies within its trace, which lets the
     * planner prune partitions; $pfrom bounds it statically too. */
    static const char span_exists[] =
        " AND EXISTS (SELECT 1 FROM spans s WHERE s.project_id = $%d AND s.trace_id = t.trace_id"
        " AND s.start_time_ns >= $%d AND s.start_time_ns BETWEEN t.start_time_ns AND t.end_time_ns";
    if (f->operation) {
        if (!(p = sx_api_qb_param(b, f->operation))) return SX_ERR;
        ok &= sx_buf_printf(s, span_exists, pproj, pfrom) == SX_OK;
        ok &= sx_buf_printf(s, " AND s.name = $%d", p) == SX_OK;
        if (*psvc) ok &= sx_buf_printf(s, " AND s.service = $%d", *psvc) == SX_OK;
        ok &= sx_buf_puts(s, ")") == SX_OK;
    }
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        int pk, pv;
        if (sx_api_qb_attr(b, r->q.params[i].value, &pk, &pv) != SX_OK) return SX_ERR;
        ok &= sx_buf_printf(s, span_exists, pproj, pfrom) == SX_OK;
        ok &= sx_buf_printf(s, " AND (s.attributes ->> $%d) = $%d)", pk, pv) == SX_OK;
    }
    return ok ? SX_OK : SX_ERR;
}

/* Builds one query of the list: traces after `after` (TRACE_SPANS: starting
 * at lo or later), at most `limit` of them (TRACE_WALK: among the newest
 * `budget`); SX_ERR when out of room. */
static int list_sql(struct sx_api_req *r, const struct list_filters *f, enum trace_mode mode,
                    const struct trace_bound *after, long long limit, long long budget, int64_t lo,
                    struct sx_api_qb *b)
{
    struct sx_buf *s = &b->sql;
    int p, psvc, pb = 0, ok = 1;
    int pproj = sx_api_qb_num(b, r->project_id), pfrom = sx_api_qb_num(b, mode == TRACE_SPANS ? lo : f->win.from_ns);
    int pto = sx_api_qb_num(b, f->win.to_ns);

    if (!pproj || !pfrom || !pto) return SX_ERR;
    if (mode == TRACE_WALK) {
        /* Innermost: the newest `budget` traces, numbered. Middle: each
         * tested against the filters once (OFFSET 0 keeps the test from
         * being copied into the outer WHERE). Outer: the matches, at most
         * `limit`, and trace number `budget` whether it matches or not: it
         * is where the next step goes on. */
        if (!(pb = sx_api_qb_num(b, budget))) return SX_ERR;
        ok &= sx_buf_puts(s, "SELECT " TRACE_COLS("t") ", t.hit, t.rn FROM (SELECT t.*, (TRUE") == SX_OK;
        if (!ok || list_conds(r, f, pproj, pfrom, &psvc, b) != SX_OK) return SX_ERR;
        ok &= sx_buf_puts(s, ") AS hit FROM (SELECT t.*, row_number() OVER (ORDER BY t.start_time_ns DESC, "
                             "t.trace_id DESC) AS rn FROM traces t") == SX_OK;
    } else if (mode == TRACE_SPANS) {
        /* Every span of a trace starts at or after the trace, so the
         * service's spans since lo name every trace since lo that has the
         * service (as long as spans are kept as long as traces). Each is
         * looked up by its key: LIMIT 1 keeps the planner from turning the
         * lookups into a walk of traces_recent, the very walk avoided. */
        int ps = sx_api_qb_param(b, f->service);
        if (!ps) return SX_ERR;
        ok &= sx_buf_printf(s,
                            "SELECT " TRACE_COLS("t") " FROM (SELECT DISTINCT s.trace_id FROM spans s"
                            " WHERE s.project_id = $%d AND s.service = $%d AND s.start_time_ns >= $%d) c,"
                            " LATERAL (SELECT t.* FROM traces t WHERE t.trace_id = c.trace_id AND",
                            pproj, ps, pfrom) == SX_OK;
    } else {
        ok &= sx_buf_puts(s, "SELECT " TRACE_COLS("t") " FROM traces t WHERE") == SX_OK;
    }
    if (mode == TRACE_WALK) ok &= sx_buf_puts(s, " WHERE") == SX_OK;
    ok &= sx_buf_printf(s, " t.project_id = $%d AND t.start_time_ns >= $%d AND t.start_time_ns <= $%d", pproj, pfrom,
                        pto) == SX_OK;
    if (mode != TRACE_WALK && list_conds(r, f, pproj, pfrom, &psvc, b) != SX_OK) return SX_ERR;
    if (after->set) {
        int pc = sx_api_qb_num(b, after->start_ns);
        int pi = sx_api_qb_bytea(b, after->id, 16);
        if (!pc || !pi) return SX_ERR;
        ok &= sx_buf_printf(s, " AND t.start_time_ns <= $%d AND (t.start_time_ns, t.trace_id) < ($%d::bigint, $%d::bytea)",
                            pc, pc, pi) == SX_OK;
    }
    if (!(p = sx_api_qb_num(b, mode == TRACE_WALK ? limit + 1 : limit))) return SX_ERR;
    if (mode == TRACE_WALK)
        ok &= sx_buf_printf(s,
                            " ORDER BY t.start_time_ns DESC, t.trace_id DESC LIMIT $%d) t OFFSET 0) t"
                            " WHERE t.hit OR t.rn = $%d ORDER BY t.start_time_ns DESC, t.trace_id DESC LIMIT $%d",
                            pb, pb, p) == SX_OK;
    else
        ok &= sx_buf_printf(s, "%s ORDER BY t.start_time_ns DESC, t.trace_id DESC LIMIT $%d",
                            mode == TRACE_SPANS ? " LIMIT 1) t" : "", p) == SX_OK;
    return ok ? SX_OK : SX_ERR;
}

/* One trace summary of the list. */
static void write_trace(struct sx_json *w, const PGresult *res, int i)
{
    int64_t start = sx_api_col_i64(res, i, 1), end = sx_api_col_i64(res, i, 2);
    sx_json_obj_open(w);
    sx_json_key(w, "traceId");
    sx_json_strz(w, sx_api_col_str(res, i, 0));
    sx_json_key(w, "rootService");
    sx_json_strz(w, sx_api_col_str(res, i, 3));
    sx_json_key(w, "rootName");
    sx_json_strz(w, sx_api_col_str(res, i, 4));
    sx_json_key(w, "hasRoot");
    sx_json_bool(w, strcmp(PQgetvalue(res, i, 8), "t") == 0);
    sx_json_key(w, "startTimeUnixNano");
    sx_json_int_str(w, start);
    sx_json_key(w, "durationMs");
    sx_json_double(w, ns_to_ms(end - start));
    sx_json_key(w, "spanCount");
    sx_json_int(w, sx_api_col_i64(res, i, 5));
    sx_json_key(w, "errorCount");
    sx_json_int(w, sx_api_col_i64(res, i, 6));
    sx_json_key(w, "services");
    sx_api_col_json(w, res, i, 7, "[]");
    sx_json_obj_close(w);
}

/* The cursor after row i: its start time and trace id. */
static int trace_cursor(const PGresult *res, int i, char *cur)
{
    uint8_t id[16];
    const char *hex = PQgetvalue(res, i, 0);
    if (sx_hex_decode(hex, strlen(hex), id, sizeof(id)) != SX_OK) return SX_ERR;
    sx_api_cursor_encode(sx_api_col_i64(res, i, 1), id, cur);
    return SX_OK;
}

static int list_build(struct sx_api_req *r, const void *f, struct sx_api_qb *b)
{
    const struct list_filters *lf = f;
    struct trace_bound after = {.set = lf->has_cursor, .start_ns = lf->cursor_ns};
    memcpy(after.id, lf->cursor_id, 16);
    return list_sql(r, lf, TRACE_PLAIN, &after, lf->limit + 1, 0, 0, b);
}

static const struct sx_api_list trace_list = {"traces", "SELECT traces", SQL_MAX, list_build, write_trace,
                                              trace_cursor};

/* Runs one step of a list with a service filter: returns its result (the
 * caller PQclears it or hands it to the page) with *found set to the traces
 * in it that match. TRACE_WALK: *after moves to the last trace the step
 * looked at, or after->set becomes 0 when it saw every trace there is. NULL
 * with the error response set. */
static PGresult *list_step(struct sx_api_req *r, const struct list_filters *f, enum trace_mode mode, long long need,
                           long long budget, int64_t lo, struct trace_bound *after, int *found)
{
    struct sx_api_qb b;
    PGresult *res = NULL;

    sx_api_qb_init(&b, r, SQL_MAX);
    if (list_sql(r, f, mode, after, need, budget, lo, &b) != SX_OK) {
        sx_api_fail(r, 400, "bad_request", "query too large");
        goto out;
    }
    res = sx_api_exec(r, b.sql.data, b.n, b.params, mode == TRACE_WALK ? "SELECT traces (walk)" : "SELECT traces (spans)");
    if (!res) goto out;
    int n = PQntuples(res);
    *found = 0;
    for (int i = 0; i < n; i++)
        if (mode != TRACE_WALK || strcmp(PQgetvalue(res, i, TC_HIT), "t") == 0) (*found)++;
    if (mode == TRACE_WALK) {
        /* Only the trace numbered `budget` says there may be more. */
        after->set = n > 0 && sx_api_col_i64(res, n - 1, TC_RN) == budget;
        if (after->set) {
            const char *hex = PQgetvalue(res, n - 1, 0);
            if (sx_hex_decode(hex, strlen(hex), after->id, 16) != SX_OK) {
                PQclear(res);
                res = NULL;
                sx_api_fail(r, 500, "internal", "internal error");
                goto out;
            }
            after->start_ns = sx_api_col_i64(res, n - 1, 1);
        }
    }
out:
    sx_api_qb_term(&b);
    return res;
}

/* Hands a step's result to the page and takes its matching traces; SX_ERR
 * with a 500 set when the page holds too many results. */
static int list_take(struct sx_api_req *r, struct sx_api_page *page, PGresult *res, enum trace_mode mode)
{
    int idx = sx_api_page_add(page, r, res);
    if (idx < 0) return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++)
        if (mode != TRACE_WALK || strcmp(PQgetvalue(res, i, TC_HIT), "t") == 0) sx_api_page_take(page, idx, i);
    return SX_OK;
}

/* Whether the filters leave only a test of each trace, in the list's order:
 * no index serves operation, attr, the durations or status=ok, so when few
 * of the newest traces match, a plain query reads every trace of the range
 * (seconds at 10M spans). */
static int needs_walk(const struct sx_api_req *r, const struct list_filters *f)
{
    if (f->operation || f->min_ns >= 0 || f->max_ns >= 0 || (f->status && strcmp(f->status, "ok") == 0)) return 1;
    for (size_t i = 0; i < r->q.n; i++)
        if (strcmp(r->q.params[i].key, "attr") == 0) return 1;
    return 0;
}

/* A list whose filters need a test of each trace: walks the newest traces in
 * steps growing 4x and stops when the page is full, when there are no more,
 * or when api_trace_scan_max traces were read or api_trace_scan_ms passed.
 * Then the page is partial: the reply says "partial": true and nextCursor
 * resumes after the last trace read, as Jaeger and Tempo bound a search
 * instead of timing out. A step is sized from the cost per trace of the
 * steps before it (span conditions cost 10x a duration test), so the last
 * one ends near the time budget rather than far past it. */
static int list_walk(struct sx_api_req *r, const struct list_filters *f)
{
    struct sx_api_page page;
    struct trace_bound after = {.set = f->has_cursor, .start_ns = f->cursor_ns};
    long long cap = r->cfg->api_trace_scan_max, scanned = 0;
    int rc = SX_ERR, found;
    PGresult *res;

    memcpy(after.id, f->cursor_id, 16);
    if (sx_api_page_init(&page, r, f->limit) != SX_OK) return SX_ERR;
    /* Steps stay few (SX_API_PAGE_STEPS): at most about 5 to reach the
     * largest step, then at most 8 of it. */
    long long step_max = SX_MAX(65536, cap / 8);
    long long budget = SX_MAX(TRACE_WALK_FIRST, 8 * (long long)sx_api_page_need(&page));
    int64_t t0 = sx_mono_ns(), deadline = t0 + r->cfg->api_trace_scan_ms * 1000000LL;
    for (;;) {
        budget = SX_MIN(SX_MIN(budget, step_max), cap - scanned);
        if (scanned > 0) { /* what is left of the time, at the cost per trace so far */
            int64_t now = sx_mono_ns(), per = (now - t0) / scanned + 1;
            budget = SX_MIN(budget, SX_MAX((deadline - now) / per, 1));
        }
        if (!(res = list_step(r, f, TRACE_WALK, sx_api_page_need(&page), budget, 0, &after, &found))) goto out;
        if (found) {
            if (list_take(r, &page, res, TRACE_WALK) != SX_OK) goto out;
        } else {
            PQclear(res);
        }
        scanned += budget;
        if (sx_api_page_need(&page) == 0 || !after.set) break;
        if (scanned >= cap || sx_mono_ns() >= deadline) {
            sx_api_cursor_encode(after.start_ns, after.id, page.resume);
            break;
        }
        budget *= 4;
    }
    rc = sx_api_page_reply(r, &trace_list, &page);
out:
    sx_api_page_term(&page);
    return rc;
}

int sx_api_traces_list(struct sx_api_req *r)
{
    struct list_filters f;
    struct sx_api_page page;
    PGresult *res;
    int rc = SX_ERR, found;

    if (list_filters(r, &f) != SX_OK) return SX_ERR;
    if (!f.service && needs_walk(r, &f)) return list_walk(r, &f);
    if (!f.service) return sx_api_list_run(r, &trace_list, &f, f.limit);

    /* With service: the newest traces are walked first, which is cheap
     * when the service is in many of them. When it is not (a service that
     * went quiet, or a rare one), walking on would read every newer trace
     * (896,000 in the bench: 2 s); instead the service's own spans
     * (spans_service_time) name the candidates, in windows of trace start
     * that start as wide as the time the walk covered and grow 4x, until one holds the
     * rest of the page or reaches `from`. A window's query is exact for the
     * traces starting in it; one too narrow is asked again wider, which
     * costs at most a third more than the last. */
    struct trace_bound after = {.set = f.has_cursor, .start_ns = f.has_cursor ? f.cursor_ns : f.win.to_ns};
    memcpy(after.id, f.cursor_id, 16);
    int64_t top = after.start_ns;
    if (sx_api_page_init(&page, r, f.limit) != SX_OK) return SX_ERR;
    long long budget = SX_MAX(TRACE_WALK_FIRST, 8 * (long long)sx_api_page_need(&page));
    if (!(res = list_step(r, &f, TRACE_WALK, sx_api_page_need(&page), budget, 0, &after, &found))) goto out;
    if (list_take(r, &page, res, TRACE_WALK) != SX_OK) goto out;
    if (after.set && sx_api_page_need(&page) > 0) {
        int64_t width = top - after.start_ns;
        if (width < 1000000000LL) width = 1000000000LL;
        for (int step = 0;; step++) {
            if (step) width = width > INT64_MAX / 4 ? INT64_MAX : width * 4;
            int last = after.start_ns - f.win.from_ns <= width;
            int64_t lo = last ? f.win.from_ns : after.start_ns - width;
            if (!(res = list_step(r, &f, TRACE_SPANS, sx_api_page_need(&page), 0, lo, &after, &found))) goto out;
            if (found >= sx_api_page_need(&page) || last) {
                if (list_take(r, &page, res, TRACE_SPANS) != SX_OK) goto out;
                break;
            }
            PQclear(res);
        }
    }
    rc = sx_api_page_reply(r, &trace_list, &page);
out:
    sx_api_page_term(&page);
    return rc;
}

/* ---- GET /api/v1/projects/{project}/traces/{traceId} -------------------------- */

enum span_col {
    SC_ID, SC_PARENT, SC_NAME, SC_KIND, SC_SERVICE, SC_START, SC_END, SC_STATUS, SC_STATUS_MSG,
    SC_ATTRS, SC_EVENTS, SC_LINKS, SC_RESOURCE, SC_SCOPE_NAME, SC_SCOPE_VERSION
};

static void write_span(struct sx_json *w, const PGresult *res, int i, int64_t trace_start, uint32_t depth)
{
    int64_t start = sx_api_col_i64(res, i, SC_START), end = sx_api_col_i64(res, i, SC_END);
    sx_json_obj_open(w);
    sx_json_key(w, "spanId");
    sx_json_strz(w, sx_api_col_str(res, i, SC_ID));
    sx_json_key(w, "parentSpanId");
    sx_json_strz(w, sx_api_col_str(res, i, SC_PARENT));
    sx_json_key(w, "name");
    sx_json_strz(w, sx_api_col_str(res, i, SC_NAME));
    sx_json_key(w, "kind");
    sx_json_int(w, sx_api_col_i64(res, i, SC_KIND));
    sx_json_key(w, "service");
    sx_json_strz(w, sx_api_col_str(res, i, SC_SERVICE));
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
    sx_json_int(w, sx_api_col_i64(res, i, SC_STATUS));
    sx_json_key(w, "message");
    sx_json_strz(w, sx_api_col_str(res, i, SC_STATUS_MSG));
    sx_json_obj_close(w);
    sx_json_key(w, "attributes");
    sx_api_col_json(w, res, i, SC_ATTRS, "{}");
    sx_json_key(w, "events");
    sx_api_col_json(w, res, i, SC_EVENTS, "[]");
    sx_json_key(w, "links");
    sx_api_col_json(w, res, i, SC_LINKS, "[]");
    sx_json_key(w, "resource");
    sx_api_col_json(w, res, i, SC_RESOURCE, "{}");
    sx_json_key(w, "scope");
    sx_json_obj_open(w);
    sx_json_key(w, "name");
    sx_json_strz(w, sx_api_col_str(res, i, SC_SCOPE_NAME));
    sx_json_key(w, "version");
    sx_json_strz(w, sx_api_col_str(res, i, SC_SCOPE_VERSION));
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
    int64_t tstart = sx_api_col_i64(tres, 0, 0), tend = sx_api_col_i64(tres, 0, 1);
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
        wf[i].start_ns = sx_api_col_i64(sres, (int)i, SC_START);
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
    sx_json_int(&w, sx_api_col_i64(tres, 0, 2));
    sx_json_key(&w, "errorCount");
    sx_json_int(&w, sx_api_col_i64(tres, 0, 3));
    sx_json_key(&w, "services");
    sx_api_col_json(&w, tres, 0, 4, "[]");
    sx_json_key(&w, "rootService");
    sx_json_strz(&w, sx_api_col_str(tres, 0, 5));
    sx_json_key(&w, "rootName");
    sx_json_strz(&w, sx_api_col_str(tres, 0, 6));
    sx_json_key(&w, "hasRoot");
    sx_json_bool(&w, strcmp(PQgetvalue(tres, 0, 7), "t") == 0);
    sx_json_key(&w, "logCount");
    sx_json_int(&w, sx_api_col_i64(lres, 0, 0));
    sx_json_key(&w, "spansTruncated");
    sx_json_bool(&w, truncated);
    sx_json_key(&w, "spans");
    sx_json_arr_open(&w);
    for (size_t k = 0; k < n && !w.err; k++) write_span(&w, sres, (int)order[k], tstart, depth[order[k]]);
    sx_json_arr_close(&w);
    rc = sx_api_reply(r, &w);
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

    if (sx_api_window(r, &win) != SX_OK) return SX_ERR;
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
        sx_json_strz(&w, sx_api_col_str(res, i, 0));
        sx_json_key(&w, "spanCount");
        sx_json_int(&w, sx_api_col_i64(res, i, 1));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}
