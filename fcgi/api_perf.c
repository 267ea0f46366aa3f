/* api_perf.c: API performance from the span rollups: per-endpoint RED, service edges, endpoint health and database statements.
 *
 * red_1m, edges_1m and db_statements_1m (sql/007_red.sql, written by
 * sextant-rollup's span thread) hold per-minute counts and a duration
 * histogram over the fixed bounds of lib/red.h. Answers add the minutes of
 * the window up: the buckets element by element in SQL, the percentiles in
 * C by linear interpolation inside the bucket holding the rank (kept inside
 * [min, max] where those are known). The window (from/to/timeRange, default
 * the last day) selects the minutes whose start lies in [from rounded down
 * to the minute, to]. Every query filters on the request's project; RLS is
 * the second wall. */
#include "api_perf.h"

#include "red.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_NS 60000000000LL
#define MAX_ENDPOINTS 1000
#define MAX_POINTS 20000
#define MAX_EDGES 5000
#define MAX_STATEMENT_GROUPS 5000
#define DEFAULT_STATEMENTS 50
#define SERIES_TARGET 120 /* default step: about this many points */
#define HEALTH_DEFAULT_NS SX_API_HEALTH_WINDOW_NS
#define HOUR_NS (60 * MINUTE_NS)
#define HEALTH_BASELINE_NS (24 * 60 * MINUTE_NS)

void sx_api_red_sum_buckets(char *out, size_t len, const char *filter)
{
    size_t o = (size_t)snprintf(out, len, "ARRAY[");
    for (int i = 1; i <= SX_RED_NBUCKETS && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%scoalesce(sum(dur_buckets[%d])%s, 0)", i > 1 ? ", " : "", i,
                              filter);
    if (o < len) snprintf(out + o, len - o, "]");
}

void sx_api_red_hours(int64_t from, int64_t to, int hours, int64_t *a, int64_t *h)
{
    int64_t fa = from + ((HOUR_NS - from % HOUR_NS) % HOUR_NS), th = (to + 1) - ((to + 1) % HOUR_NS);
    if (!hours || from < 0 || fa >= th) fa = th = to + 1; /* no whole hour inside: minutes only */
    *a = fa;
    *h = th;
}

int sx_api_red_source(char *out, size_t len, const char *where, int pfrom, int pa, int ph, int pto)
{
    int n = snprintf(out, len,
                     /* Three plain ranges: with an OR of two, the planner
                      * filters every row of the projects instead. */
                     "(SELECT * FROM red_1m WHERE %s AND bucket_start_ns >= $%d AND bucket_start_ns < $%d "
                     "UNION ALL SELECT * FROM red_1h WHERE %s AND bucket_start_ns >= $%d AND bucket_start_ns < $%d "
                     "UNION ALL SELECT * FROM red_1m WHERE %s AND bucket_start_ns >= $%d AND bucket_start_ns <= $%d)",
                     where, pfrom, pa, where, pa, ph, where, ph, pto);
    return n > 0 && (size_t)n < len ? SX_OK : SX_ERR;
}

void sx_api_red_parse_buckets(const char *s, double *out)
{
    memset(out, 0, SX_RED_NBUCKETS * sizeof(*out));
    if (!s || *s != '{') return;
    s++;
    for (size_t i = 0; i < SX_RED_NBUCKETS && *s && *s != '}'; i++) {
        char *end;
        double v = strtod(s, &end);
        if (end == s) return;
        out[i] = v;
        s = *end == ',' ? end + 1 : end;
    }
}

double sx_api_col_dbl(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

static void json_num(struct sx_json *w, const char *key, double v)
{
    sx_json_key(w, key);
    if (isfinite(v)) sx_json_double(w, v);
    else sx_json_null(w);
}

static void json_int(struct sx_json *w, const char *key, int64_t v)
{
    sx_json_key(w, key);
    sx_json_int(w, v);
}

static const char *kind_name(int64_t k)
{
    return k == 5 ? "consumer" : k == 2 ? "server" : "other";
}

/* The window with from rounded down to the minute, as text parameters. */
static int window_params(struct sx_api_req *r, struct sx_api_window *win, char *proj, char *from_s, char *to_s)
{
    if (sx_api_window(r, win) != SX_OK) return SX_ERR;
    win->from_ns -= ((win->from_ns % MINUTE_NS) + MINUTE_NS) % MINUTE_NS;
    snprintf(proj, 16, "%d", r->project_id);
    snprintf(from_s, 24, "%lld", (long long)win->from_ns);
    snprintf(to_s, 24, "%lld", (long long)win->to_ns);
    return SX_OK;
}

int sx_api_perf_service(struct sx_api_req *r, const char *service)
{
    char proj[16], from_s[24], to_s[24], lim_s[24], step_s[24], sb[4096], sql[8192];
    double counts[SX_RED_NBUCKETS];
    struct sx_api_window win;
    struct sx_json w;
    int bad = 0;
    const char *step_p = sx_api_param1(r, "step", &bad);
    if (bad || window_params(r, &win, proj, from_s, to_s) != SX_OK) return SX_ERR;
    int64_t span = win.to_ns - win.from_ns + 1, step = MINUTE_NS;
    if (step_p) {
        if (sx_api_parse_range(step_p, &step) != SX_OK || step % MINUTE_NS != 0)
            return sx_api_fail(r, 400, "bad_request", "step must be a whole number of minutes (60s, 5m, 1h)");
    } else {
        int64_t minutes = (span + MINUTE_NS - 1) / MINUTE_NS;
        step = SX_MAX((minutes + SERIES_TARGET - 1) / SERIES_TARGET, 1) * MINUTE_NS;
    }
    if (span / step > MAX_POINTS)
        return sx_api_fail(r, 400, "bad_request", "too many steps: use a larger step or a shorter window");
    snprintf(step_s, sizeof(step_s), "%lld", (long long)step);
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_ENDPOINTS);
    sx_api_red_sum_buckets(sb, sizeof(sb), "");

    const char *params[6] = {proj, service, from_s, to_s, lim_s, step_s};
    snprintf(sql, sizeof(sql),
             "SELECT operation, kind, sum(requests), sum(errors), sum(s2xx), sum(s3xx), sum(s4xx), sum(s5xx), "
             "sum(dur_sum_ms), min(dur_min_ms), max(dur_max_ms), %s FROM red_1m "
             "WHERE project_id = $1 AND service = $2 AND bucket_start_ns >= $3 AND bucket_start_ns <= $4 "
             "GROUP BY operation, kind ORDER BY sum(requests) DESC, operation COLLATE \"C\", kind LIMIT $5",
             sb);
    PGresult *ep = sx_api_exec(r, sql, 5, params, "SELECT red_1m endpoints");
    if (!ep) return SX_ERR;
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_POINTS);
    snprintf(sql, sizeof(sql),
             "SELECT (bucket_start_ns - (bucket_start_ns - $3) %% $6) / 1000000, sum(requests), sum(errors), %s "
             "FROM red_1m WHERE project_id = $1 AND service = $2 AND bucket_start_ns >= $3 AND bucket_start_ns <= $4 "
             "GROUP BY 1 ORDER BY 1 LIMIT $5",
             sb);
    PGresult *se = sx_api_exec(r, sql, 6, params, "SELECT red_1m series");
    if (!se) {
        PQclear(ep);
        return SX_ERR;
    }
    double secs = (double)span / 1e9;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "service");
    sx_json_strz(&w, service);
    sx_json_key(&w, "fromUnixNano");
    sx_json_strz(&w, from_s);
    sx_json_key(&w, "toUnixNano");
    sx_json_strz(&w, to_s);
    json_int(&w, "stepMs", step / 1000000);
    sx_json_key(&w, "endpoints");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(ep); i++) {
        int64_t req = sx_api_col_i64(ep, i, 2), err = sx_api_col_i64(ep, i, 3);
        double lo = sx_api_col_dbl(ep, i, 9), hi = sx_api_col_dbl(ep, i, 10);
        static const char *const cls[4] = {"s2xx", "s3xx", "s4xx", "s5xx"};
        sx_api_red_parse_buckets(sx_api_col_str(ep, i, 11), counts);
        sx_json_obj_open(&w);
        sx_json_key(&w, "operation");
        sx_json_strz(&w, sx_api_col_str(ep, i, 0));
        sx_json_key(&w, "kind");
        sx_json_strz(&w, kind_name(sx_api_col_i64(ep, i, 1)));
        json_int(&w, "requests", req);
        json_int(&w, "errors", err);
        json_num(&w, "errorRate", req ? (double)err / (double)req : 0);
        json_num(&w, "rps", secs > 0 ? (double)req / secs : 0);
        for (int c = 0; c < 4; c++) json_int(&w, cls[c], sx_api_col_i64(ep, i, 4 + c));
        json_num(&w, "minMs", lo);
        json_num(&w, "avgMs", req ? sx_api_col_dbl(ep, i, 8) / (double)req : NAN);
        json_num(&w, "maxMs", hi);
        json_num(&w, "p50Ms", sx_red_quantile(counts, 0.50, lo, hi));
        json_num(&w, "p95Ms", sx_red_quantile(counts, 0.95, lo, hi));
        json_num(&w, "p99Ms", sx_red_quantile(counts, 0.99, lo, hi));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_key(&w, "series");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(se); i++) {
        sx_api_red_parse_buckets(sx_api_col_str(se, i, 3), counts);
        sx_json_obj_open(&w);
        json_int(&w, "timeUnixMs", sx_api_col_i64(se, i, 0));
        json_int(&w, "requests", sx_api_col_i64(se, i, 1));
        json_int(&w, "errors", sx_api_col_i64(se, i, 2));
        json_num(&w, "p50Ms", sx_red_quantile(counts, 0.50, NAN, NAN));
        json_num(&w, "p95Ms", sx_red_quantile(counts, 0.95, NAN, NAN));
        json_num(&w, "p99Ms", sx_red_quantile(counts, 0.99, NAN, NAN));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(ep);
    PQclear(se);
    return sx_api_reply(r, &w);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sx_api_perf_edges(struct sx_api_req *r, const char *service)
{
    char proj[16], from_s[24], to_s[24], lim_s[24], sb[4096], sql[8192];
    double counts[SX_RED_NBUCKETS];
    struct sx_api_window win;
    struct sx_json w;
    if (window_params(r, &win, proj, from_s, to_s) != SX_OK) return SX_ERR;
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_EDGES);
    sx_api_red_sum_buckets(sb, sizeof(sb), "");
    const char *params[5] = {proj, from_s, to_s, lim_s, service};
    snprintf(sql, sizeof(sql),
             "SELECT parent_service, child_service, sum(calls), sum(errors), %s FROM edges_1m "
             "WHERE project_id = $1 AND bucket_start_ns >= $2 AND bucket_start_ns <= $3 "
             "AND ($5::text IS NULL OR parent_service = $5 OR child_service = $5) "
             "GROUP BY parent_service, child_service "
             "ORDER BY parent_service COLLATE \"C\", child_service COLLATE \"C\" LIMIT $4",
             sb);
    PGresult *res = sx_api_exec(r, sql, 5, params, "SELECT edges_1m");
    if (!res) return SX_ERR;
    int n = PQntuples(res);
    /* Nodes: the services of the edges, distinct, sorted bytewise. */
    const char **nodes = sx_arena_alloc(r->fr->arena, (size_t)(2 * n + 1) * sizeof(*nodes));
    if (!nodes) {
        PQclear(res);
        return sx_api_fail(r, 500, "internal", "out of memory");
    }
    int nn = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) nodes[nn++] = PQgetvalue(res, i, c);
    qsort(nodes, (size_t)nn, sizeof(*nodes), str_cmp);
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "nodes");
    sx_json_arr_open(&w);
    for (int i = 0; i < nn; i++) {
        if (i && strcmp(nodes[i], nodes[i - 1]) == 0) continue;
        sx_json_obj_open(&w);
        sx_json_key(&w, "service");
        sx_json_strz(&w, nodes[i]);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_key(&w, "edges");
    sx_json_arr_open(&w);
    for (int i = 0; i < n; i++) {
        int64_t calls = sx_api_col_i64(res, i, 2), errs = sx_api_col_i64(res, i, 3);
        sx_api_red_parse_buckets(sx_api_col_str(res, i, 4), counts);
        sx_json_obj_open(&w);
        sx_json_key(&w, "from");
        sx_json_strz(&w, sx_api_col_str(res, i, 0));
        sx_json_key(&w, "to");
        sx_json_strz(&w, sx_api_col_str(res, i, 1));
        json_int(&w, "calls", calls);
        json_int(&w, "errors", errs);
        json_num(&w, "errorRate", calls ? (double)errs / (double)calls : 0);
        json_num(&w, "p95Ms", sx_red_quantile(counts, 0.95, NAN, NAN));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

/* One endpoint judged by the health endpoint. */
struct judged {
    int row;
    enum sx_red_health h;
    struct sx_red_period recent, base;
    char reason[192];
};

static int judged_cmp(const void *a, const void *b)
{
    const struct judged *x = a, *y = b;
    if (x->h != y->h) return x->h > y->h ? -1 : 1;
    if (x->recent.requests != y->recent.requests) return x->recent.requests > y->recent.requests ? -1 : 1;
    return x->row - y->row;
}

static void period_json(struct sx_json *w, const struct sx_red_period *p)
{
    json_int(w, "requests", p->requests);
    json_int(w, "errors", p->errors);
    json_num(w, "errorRate", p->requests ? (double)p->errors / (double)p->requests : 0);
    json_num(w, "p95Ms", p->p95_ms);
}

PGresult *sx_api_perf_health_rows(struct sx_api_req *r, const char *projects, size_t nprojects, int64_t window,
                                  const char *service, int64_t *recent_from, int64_t *base_from)
{
    char recent_s[24], base_s[24], now_s[24], lim_s[24], a_s[24], h_s[24], last_s[24], sb[4096], src[1024],
        sub[2][6144], sql[14336];
    int64_t recent = r->now_ns - window, a, h;
    recent -= ((recent % MINUTE_NS) + MINUTE_NS) % MINUTE_NS;
    *recent_from = recent;
    /* The baseline starts on the hour at or before 24 h before the window
     * (24 to 25 hours long), so it is whole hours from red_1h and only the
     * minutes of the window's own hour from red_1m. */
    *base_from = recent - HEALTH_BASELINE_NS;
    *base_from -= *base_from % HOUR_NS;
    sx_api_red_hours(*base_from, recent - 1, 1, &a, &h);
    snprintf(recent_s, sizeof(recent_s), "%lld", (long long)recent);
    snprintf(base_s, sizeof(base_s), "%lld", (long long)*base_from);
    snprintf(now_s, sizeof(now_s), "%lld", (long long)r->now_ns);
    snprintf(lim_s, sizeof(lim_s), "%lld", (long long)MAX_ENDPOINTS * (long long)SX_MAX(nprojects, 1));
    snprintf(a_s, sizeof(a_s), "%lld", (long long)a);
    snprintf(h_s, sizeof(h_s), "%lld", (long long)h);
    snprintf(last_s, sizeof(last_s), "%lld", (long long)(recent - 1));
    sx_api_red_sum_buckets(sb, sizeof(sb), "");
    if (sx_api_red_source(src, sizeof(src), "project_id = ANY ($1::integer[]) AND ($6::text IS NULL OR service = $6)",
                          3, 7, 8, 9) != SX_OK)
        return NULL;
    /* The two periods are grouped apart and joined: one pass with FILTERed
     * sums of every bucket was 15x slower over a day of many projects. */
    const char *from_k[2] = {"red_1m", src};
    static const char *const range[2] = {
        "WHERE project_id = ANY ($1::integer[]) AND bucket_start_ns >= $2 AND bucket_start_ns <= $4 "
        "AND ($6::text IS NULL OR service = $6)",
        ""};
    for (int k = 0; k < 2; k++)
        snprintf(sub[k], sizeof(sub[k]),
                 "SELECT project_id, service, operation, kind, sum(requests) AS requests, sum(errors) AS errors, "
                 "min(dur_min_ms) AS lo, max(dur_max_ms) AS hi, %s AS buckets FROM %s s %s "
                 "GROUP BY project_id, service, operation, kind",
                 sb, from_k[k], range[k]);
    const char *params[9] = {projects, recent_s, base_s, now_s, lim_s, service, a_s, h_s, last_s};
    snprintf(sql, sizeof(sql),
             "SELECT project_id, service, operation, kind, coalesce(r.requests, 0), coalesce(r.errors, 0), r.lo, r.hi, "
             "coalesce(b.requests, 0), coalesce(b.errors, 0), b.lo, b.hi, r.buckets, b.buckets "
             "FROM (%s) r FULL JOIN (%s) b USING (project_id, service, operation, kind) "
             "ORDER BY project_id, service COLLATE \"C\", operation COLLATE \"C\", kind LIMIT $5",
             sub[0], sub[1]);
    return sx_api_exec(r, sql, 9, params, "SELECT red health");
}

enum sx_red_health sx_api_perf_judge_row(const PGresult *res, int row, struct sx_red_period *recent,
                                         struct sx_red_period *base, char *reason, size_t reasonlen)
{
    double counts[SX_RED_NBUCKETS];
    recent->requests = sx_api_col_i64(res, row, 4);
    recent->errors = sx_api_col_i64(res, row, 5);
    sx_api_red_parse_buckets(sx_api_col_str(res, row, 12), counts);
    recent->p95_ms = sx_red_quantile(counts, 0.95, sx_api_col_dbl(res, row, 6), sx_api_col_dbl(res, row, 7));
    base->requests = sx_api_col_i64(res, row, 8);
    base->errors = sx_api_col_i64(res, row, 9);
    sx_api_red_parse_buckets(sx_api_col_str(res, row, 13), counts);
    base->p95_ms = sx_red_quantile(counts, 0.95, sx_api_col_dbl(res, row, 10), sx_api_col_dbl(res, row, 11));
    return sx_red_judge(recent, base, reason, reasonlen);
}

int sx_api_perf_health(struct sx_api_req *r)
{
    char proj[16], recent_s[24], base_s[24];
    struct sx_json w;
    int bad = 0;
    const char *win_p = sx_api_param1(r, "window", &bad);
    const char *service = bad ? NULL : sx_api_param1(r, "service", &bad);
    if (bad) return SX_ERR;
    int64_t window = HEALTH_DEFAULT_NS, recent, base;
    if (win_p && (sx_api_parse_range(win_p, &window) != SX_OK || window < MINUTE_NS || window > HEALTH_BASELINE_NS))
        return sx_api_fail(r, 400, "bad_request", "window must be a duration from 1m to 24h (15m, 1h)");
    snprintf(proj, sizeof(proj), "{%d}", r->project_id);
    PGresult *res = sx_api_perf_health_rows(r, proj, 1, window, service, &recent, &base);
    if (!res) return SX_ERR;
    snprintf(recent_s, sizeof(recent_s), "%lld", (long long)recent);
    snprintf(base_s, sizeof(base_s), "%lld", (long long)base);
    int n = PQntuples(res);
    struct judged *j = sx_arena_calloc(r->fr->arena, (size_t)n + 1, sizeof(*j));
    if (!j) {
        PQclear(res);
        return sx_api_fail(r, 500, "internal", "out of memory");
    }
    int summary[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        j[i].row = i;
        j[i].h = sx_api_perf_judge_row(res, i, &j[i].recent, &j[i].base, j[i].reason, sizeof(j[i].reason));
        summary[j[i].h]++;
    }
    qsort(j, (size_t)n, sizeof(*j), judged_cmp);
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    json_int(&w, "windowMs", window / 1000000);
    sx_json_key(&w, "fromUnixNano");
    sx_json_strz(&w, recent_s);
    sx_json_key(&w, "baselineFromUnixNano");
    sx_json_strz(&w, base_s);
    sx_json_key(&w, "endpoints");
    sx_json_arr_open(&w);
    for (int i = 0; i < n; i++) {
        int row = j[i].row;
        sx_json_obj_open(&w);
        sx_json_key(&w, "service");
        sx_json_strz(&w, sx_api_col_str(res, row, 1));
        sx_json_key(&w, "operation");
        sx_json_strz(&w, sx_api_col_str(res, row, 2));
        sx_json_key(&w, "kind");
        sx_json_strz(&w, kind_name(sx_api_col_i64(res, row, 3)));
        sx_json_key(&w, "status");
        sx_json_strz(&w, sx_red_health_name(j[i].h));
        sx_json_key(&w, "reason");
        sx_json_strz(&w, j[i].reason);
        period_json(&w, &j[i].recent);
        sx_json_key(&w, "baseline");
        sx_json_obj_open(&w);
        period_json(&w, &j[i].base);
        sx_json_obj_close(&w);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_key(&w, "summary");
    sx_json_obj_open(&w);
    for (int h = 0; h < 3; h++) json_int(&w, sx_red_health_name((enum sx_red_health)h), summary[h]);
    sx_json_obj_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

/* One statement group with its percentiles. */
struct stmt {
    int row;
    double p50, p95, p99;
};

static int stmt_cmp(const void *a, const void *b)
{
    const struct stmt *x = a, *y = b;
    double px = isfinite(x->p95) ? x->p95 : -1, py = isfinite(y->p95) ? y->p95 : -1;
    if (px != py) return px > py ? -1 : 1;
    return x->row - y->row;
}

int sx_api_perf_database(struct sx_api_req *r, const char *service)
{
    char proj[16], from_s[24], to_s[24], lim_s[24], sb[4096], sql[8192];
    double counts[SX_RED_NBUCKETS];
    struct sx_api_window win;
    struct sx_json w;
    long long limit = DEFAULT_STATEMENTS;
    if (sx_api_limit(r, &limit) != SX_OK || window_params(r, &win, proj, from_s, to_s) != SX_OK) return SX_ERR;
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_STATEMENT_GROUPS);
    sx_api_red_sum_buckets(sb, sizeof(sb), "");
    const char *params[5] = {proj, service, from_s, to_s, lim_s};
    snprintf(sql, sizeof(sql),
             "SELECT db_system, min(statement), min(db_name), sum(calls), sum(errors), sum(dur_sum_ms), "
             "max(dur_max_ms), %s FROM db_statements_1m "
             "WHERE project_id = $1 AND service = $2 AND bucket_start_ns >= $3 AND bucket_start_ns <= $4 "
             "GROUP BY db_system, stmt_hash ORDER BY sum(calls) DESC, db_system, stmt_hash LIMIT $5",
             sb);
    PGresult *res = sx_api_exec(r, sql, 5, params, "SELECT db_statements_1m");
    if (!res) return SX_ERR;
    int n = PQntuples(res);
    struct stmt *s = sx_arena_calloc(r->fr->arena, (size_t)n + 1, sizeof(*s));
    if (!s) {
        PQclear(res);
        return sx_api_fail(r, 500, "internal", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        double hi = sx_api_col_dbl(res, i, 6);
        sx_api_red_parse_buckets(sx_api_col_str(res, i, 7), counts);
        s[i].row = i;
        s[i].p50 = sx_red_quantile(counts, 0.50, 0, hi);
        s[i].p95 = sx_red_quantile(counts, 0.95, 0, hi);
        s[i].p99 = sx_red_quantile(counts, 0.99, 0, hi);
    }
    qsort(s, (size_t)n, sizeof(*s), stmt_cmp);
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "service");
    sx_json_strz(&w, service);
    sx_json_key(&w, "statements");
    sx_json_arr_open(&w);
    for (int i = 0; i < n && i < limit; i++) {
        int row = s[i].row;
        int64_t calls = sx_api_col_i64(res, row, 3), errs = sx_api_col_i64(res, row, 4);
        sx_json_obj_open(&w);
        sx_json_key(&w, "statement");
        sx_json_strz(&w, sx_api_col_str(res, row, 1));
        sx_json_key(&w, "dbSystem");
        sx_json_strz(&w, sx_api_col_str(res, row, 0));
        sx_json_key(&w, "dbName");
        if (sx_api_col_str(res, row, 2)) sx_json_strz(&w, sx_api_col_str(res, row, 2));
        else sx_json_null(&w);
        json_int(&w, "calls", calls);
        json_int(&w, "errors", errs);
        json_num(&w, "errorRate", calls ? (double)errs / (double)calls : 0);
        json_num(&w, "avgMs", calls ? sx_api_col_dbl(res, row, 5) / (double)calls : NAN);
        json_num(&w, "maxMs", sx_api_col_dbl(res, row, 6));
        json_num(&w, "p50Ms", s[i].p50);
        json_num(&w, "p95Ms", s[i].p95);
        json_num(&w, "p99Ms", s[i].p99);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}
