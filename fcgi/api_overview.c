/* api_overview.c: sextant-api's project overview and cross-project analytics, from the rollups, issues and error logs.
 *
 * Both answers are built from the same figures per project, gathered with
 * one query per figure over all the projects at once (grouped by project,
 * never one query per project):
 *   requests, errors, p50/p95/p99, services  red_1m (sql/007) over the
 *       minutes of the window, percentiles from the summed duration buckets
 *       as api_perf.c derives them (lib/red.h); whole hours of the window
 *       come from red_1h (sql/018) when the step is whole hours (and always
 *       for services and top endpoints): the same sums from far fewer rows;
 *   series  per step (steps aligned to the epoch, whole minutes;
 *       default: the smallest of 1m, 2m, 5m, ... 1d giving at most
 *       DEFAULT_STEPS points, SPARK_STEPS for cross-project), dense: every
 *       step of the window, 0 requests and null rates where there were none;
 *   openIssues  unresolved issues not merged (now); newIssues  issues first
 *       seen in the window; logErrors  log records of severity ERROR or above
 *       (>= 17) in the window (the partial index logs_severe_time);
 *   health  GET .../health's judgement (api_perf.c) of every endpoint over
 *       the last 15 minutes against the 24 hours before, the worst of them;
 *       "unknown" when the project had no request in those 15 minutes.
 * The window is from/to/timeRange (default the last day), from rounded down
 * to the minute as red_1m's buckets are. Every query filters on the
 * request's projects; RLS is the second wall. */
#include "api_perf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_NS 60000000000LL
#define HOUR_NS (60 * MINUTE_NS)
#define DEFAULT_STEPS 300  /* points of a series when no step is asked for */
#define SPARK_STEPS 48     /* cross-project: sparklines (a day is 24 hourly points, read from red_1h) */
#define MAX_STEPS 1500     /* points of a series at most */
#define TOP_ENDPOINTS 10
#define TOP_ISSUES 5
#define SEVERITY_ERROR 17

/* The window and the steps of the series. */
struct span {
    int64_t from_ns, to_ns; /* from rounded down to the minute */
    int64_t step_ns;
    int64_t first;          /* the first step's start / step_ns */
    size_t nsteps;
};

/* One project's figures; the series have span.nsteps points (arena). */
struct figures {
    int id;
    long long requests, errors, services, open_issues, new_issues, log_errors;
    double lo, hi, p50, p95, p99;
    double counts[SX_RED_NBUCKETS]; /* the window's duration buckets */
    int health;             /* enum sx_red_health; -1: unknown */
    long long *s_req, *s_err;
    double *s_p50, *s_p95, *s_p99;
};

/* Reads the window and the step; SX_ERR with a 400 set. */
static int span_read(struct sx_api_req *r, struct span *sp, int64_t default_steps)
{
    static const int64_t nice[] = {1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440};
    struct sx_api_window win;
    int bad = 0;
    const char *step = sx_api_param1(r, "step", &bad);
    if (bad || sx_api_window(r, &win) != SX_OK) return SX_ERR;
    sp->from_ns = win.from_ns - ((win.from_ns % MINUTE_NS) + MINUTE_NS) % MINUTE_NS;
    sp->to_ns = win.to_ns;
    int64_t range = sp->to_ns - sp->from_ns + 1;
    if (step) {
        long long ms = 0;
        int digits = strspn(step, "0123456789") == strlen(step);
        if (digits ? sx_api_parse_int(step, 60000, 86400000LL * 400, &ms) != SX_OK
                   : sx_api_parse_range(step, &sp->step_ns) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "step must be a duration (5m, 1h) or milliseconds");
        if (digits) sp->step_ns = (int64_t)ms * 1000000;
        if (sp->step_ns % MINUTE_NS != 0)
            return sx_api_fail(r, 400, "bad_request", "step must be a whole number of minutes (1m, 5m, 1h)");
    } else {
        sp->step_ns = 0;
        for (size_t i = 0; i < sizeof(nice) / sizeof(nice[0]) && !sp->step_ns; i++)
            if (range / (nice[i] * MINUTE_NS) < default_steps) sp->step_ns = nice[i] * MINUTE_NS;
        if (!sp->step_ns) sp->step_ns = (range / default_steps / MINUTE_NS + 1) * MINUTE_NS;
    }
    sp->first = sp->from_ns / sp->step_ns;
    int64_t steps = sp->to_ns / sp->step_ns - sp->first + 1;
    if (steps > MAX_STEPS)
        return sx_api_fail(r, 400, "bad_request", "%lld steps: at most %d, use a larger step or a shorter window",
                           (long long)steps, MAX_STEPS);
    sp->nsteps = (size_t)steps;
    return SX_OK;
}

/* The figures of project id, or NULL. */
static struct figures *find(struct figures *f, size_t n, const char *id)
{
    int pid = atoi(id);
    for (size_t i = 0; i < n; i++)
        if (f[i].id == pid) return &f[i];
    return NULL;
}

/* Fills f[0..n) (ids in f[i].id) over the span: one query per figure. */
static int gather(struct sx_api_req *r, const struct span *sp, const char *ids, struct figures *f, size_t n)
{
    char from_s[24], to_s[24], step_s[24], a_s[24], h_s[24], sb[4096], src[1024], sql[8192];
    double counts[SX_RED_NBUCKETS];
    PGresult *res;
    int64_t hour_a, hour_h;
    snprintf(from_s, sizeof(from_s), "%lld", (long long)sp->from_ns);
    snprintf(to_s, sizeof(to_s), "%lld", (long long)sp->to_ns);
    snprintf(step_s, sizeof(step_s), "%lld", (long long)sp->step_ns);
    /* $1 projects, $2 from, $3 to, $4 and $5 the whole hours (sx_api_red_hours), $6 step */
    const char *params[6] = {ids, from_s, to_s, a_s, h_s, step_s};
    if (sx_api_red_source(src, sizeof(src), "project_id = ANY ($1::integer[])", 2, 4, 5, 3) != SX_OK)
        return sx_api_fail(r, 500, "internal", "query too large");
    for (size_t i = 0; i < n; i++) {
        f[i].s_req = sx_arena_calloc(r->fr->arena, sp->nsteps, sizeof(*f[i].s_req));
        f[i].s_err = sx_arena_calloc(r->fr->arena, sp->nsteps, sizeof(*f[i].s_err));
        f[i].s_p50 = sx_arena_calloc(r->fr->arena, sp->nsteps, sizeof(*f[i].s_p50));
        f[i].s_p95 = sx_arena_calloc(r->fr->arena, sp->nsteps, sizeof(*f[i].s_p95));
        f[i].s_p99 = sx_arena_calloc(r->fr->arena, sp->nsteps, sizeof(*f[i].s_p99));
        if (!f[i].s_req || !f[i].s_err || !f[i].s_p50 || !f[i].s_p95 || !f[i].s_p99)
            return sx_api_fail(r, 500, "internal", "out of memory");
        for (size_t k = 0; k < sp->nsteps; k++) f[i].s_p50[k] = f[i].s_p95[k] = f[i].s_p99[k] = NAN;
        f[i].p50 = f[i].p95 = f[i].p99 = f[i].lo = f[i].hi = NAN;
        f[i].health = -1;
    }
    sx_api_red_sum_buckets(sb, sizeof(sb), "");

    /* Services with RED figures: whole hours from red_1h. */
    sx_api_red_hours(sp->from_ns, sp->to_ns, 1, &hour_a, &hour_h);
    snprintf(a_s, sizeof(a_s), "%lld", (long long)hour_a);
    snprintf(h_s, sizeof(h_s), "%lld", (long long)hour_h);
    snprintf(sql, sizeof(sql), "SELECT project_id, count(DISTINCT service) FROM %s s GROUP BY project_id", src);
    if (!(res = sx_api_exec(r, sql, 5, params, "SELECT red services"))) return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++) {
        struct figures *p = find(f, n, PQgetvalue(res, i, 0));
        if (p) p->services = sx_api_col_i64(res, i, 1);
    }
    PQclear(res);

    /* RED series, one row per (project, step), added up into the totals
     * here: summing the bucket arrays is most of the work, done once. */
    snprintf(sql, sizeof(sql),
             "SELECT project_id, bucket_start_ns / $6::bigint, sum(requests), sum(errors), min(dur_min_ms), "
             "max(dur_max_ms), %s FROM %s s GROUP BY 1, 2",
             sb, src);
    /* An hour row falls in one step only when the step is whole hours. */
    sx_api_red_hours(sp->from_ns, sp->to_ns, sp->step_ns % HOUR_NS == 0, &hour_a, &hour_h);
    snprintf(a_s, sizeof(a_s), "%lld", (long long)hour_a);
    snprintf(h_s, sizeof(h_s), "%lld", (long long)hour_h);
    if (!(res = sx_api_exec(r, sql, 6, params, "SELECT red series"))) return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++) {
        struct figures *p = find(f, n, PQgetvalue(res, i, 0));
        int64_t k = sx_api_col_i64(res, i, 1) - sp->first;
        if (!p || k < 0 || (size_t)k >= sp->nsteps) continue;
        double lo = sx_api_col_dbl(res, i, 4), hi = sx_api_col_dbl(res, i, 5);
        p->s_req[k] = sx_api_col_i64(res, i, 2);
        p->s_err[k] = sx_api_col_i64(res, i, 3);
        sx_api_red_parse_buckets(sx_api_col_str(res, i, 6), counts);
        p->s_p50[k] = sx_red_quantile(counts, 0.50, lo, hi);
        p->s_p95[k] = sx_red_quantile(counts, 0.95, lo, hi);
        p->s_p99[k] = sx_red_quantile(counts, 0.99, lo, hi);
        p->requests += p->s_req[k];
        p->errors += p->s_err[k];
        if (isfinite(lo) && !(p->lo <= lo)) p->lo = lo; /* NAN until the first known one */
        if (isfinite(hi) && !(p->hi >= hi)) p->hi = hi;
        for (int b = 0; b < SX_RED_NBUCKETS; b++) p->counts[b] += counts[b];
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++) {
        f[i].p50 = sx_red_quantile(f[i].counts, 0.50, f[i].lo, f[i].hi);
        f[i].p95 = sx_red_quantile(f[i].counts, 0.95, f[i].lo, f[i].hi);
        f[i].p99 = sx_red_quantile(f[i].counts, 0.99, f[i].lo, f[i].hi);
    }

    /* Issues: open now, new in the window. */
    if (!(res = sx_api_exec(r,
                    "SELECT project_id, count(*) FILTER (WHERE status = 'unresolved'), "
                    "count(*) FILTER (WHERE first_seen_ns >= $2 AND first_seen_ns <= $3) FROM issues "
                    "WHERE project_id = ANY ($1::integer[]) AND merged_into IS NULL "
                    "GROUP BY project_id",
                    3, params, "SELECT issues counts")))
        return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++) {
        struct figures *p = find(f, n, PQgetvalue(res, i, 0));
        if (!p) continue;
        p->open_issues = sx_api_col_i64(res, i, 1);
        p->new_issues = sx_api_col_i64(res, i, 2);
    }
    PQclear(res);

    /* Error logs. */
    snprintf(sql, sizeof(sql),
             "SELECT project_id, count(*) FROM logs WHERE project_id = ANY ($1::integer[]) "
             "AND severity_number >= %d AND time_ns >= $2 AND time_ns <= $3 GROUP BY project_id",
             SEVERITY_ERROR);
    if (!(res = sx_api_exec(r, sql, 3, params, "SELECT logs errors"))) return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++) {
        struct figures *p = find(f, n, PQgetvalue(res, i, 0));
        if (p) p->log_errors = sx_api_col_i64(res, i, 1);
    }
    PQclear(res);

    /* Health: the worst endpoint now (api_perf.c's judgement). */
    int64_t recent, base;
    struct sx_red_period rp, bp;
    char reason[192];
    if (!(res = sx_api_perf_health_rows(r, ids, n, SX_API_HEALTH_WINDOW_NS, NULL, &recent, &base))) return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++) {
        struct figures *p = find(f, n, PQgetvalue(res, i, 0));
        if (!p) continue;
        int h = (int)sx_api_perf_judge_row(res, i, &rp, &bp, reason, sizeof(reason));
        if (rp.requests > 0 && h > p->health) p->health = h;
    }
    PQclear(res);
    return SX_OK;
}

/* The array literal "{1,2,...}" of n ids (arena); NULL when out of memory. */
static const char *id_array(struct sx_api_req *r, const int *ids, size_t n)
{
    struct sx_buf b;
    sx_buf_init(&b, (size_t)SX_API_MAX_PROJECTS * 12 + 3);
    int ok = sx_buf_putc(&b, '{') == SX_OK;
    for (size_t i = 0; i < n && ok; i++) ok = sx_buf_printf(&b, "%s%d", i ? "," : "", ids[i]) == SX_OK;
    ok = ok && sx_buf_putc(&b, '}') == SX_OK;
    const char *s = ok ? sx_arena_strndup(r->fr->arena, b.data, b.len) : NULL;
    sx_buf_term(&b);
    return s;
}

/* Makes the figures of the n projects ids and gathers them; NULL with the
 * error response set. */
static struct figures *figures_of(struct sx_api_req *r, const struct span *sp, const int *ids, size_t n)
{
    const char *lit = id_array(r, ids, n);
    struct figures *f = sx_arena_calloc(r->fr->arena, n + 1, sizeof(*f));
    if (!lit || !f) {
        sx_api_fail(r, 500, "internal", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) f[i].id = ids[i];
    return gather(r, sp, lit, f, n) == SX_OK ? f : NULL;
}

static void num(struct sx_json *w, const char *key, double v)
{
    sx_json_key(w, key);
    if (isfinite(v)) sx_json_double(w, v);
    else sx_json_null(w);
}

static void integer(struct sx_json *w, const char *key, long long v)
{
    sx_json_key(w, key);
    sx_json_int(w, v);
}

static double rate(long long part, long long whole)
{
    return whole ? (double)part / (double)whole : 0;
}

static const char *health_name(const struct figures *p)
{
    return p->health < 0 ? "unknown" : sx_red_health_name((enum sx_red_health)p->health);
}

/* "from", "to" (unix ms) and "stepMs" of the answer. */
static void write_span(struct sx_json *w, const struct span *sp)
{
    integer(w, "from", sp->from_ns / 1000000);
    integer(w, "to", sp->to_ns / 1000000);
    integer(w, "stepMs", sp->step_ns / 1000000);
}

/* The RED totals: requests, errors, errorRate, rps, p50, p95, p99. */
static void write_red(struct sx_json *w, const struct span *sp, const struct figures *p)
{
    double secs = (double)(sp->to_ns - sp->from_ns + 1) / 1e9;
    integer(w, "requests", p->requests);
    integer(w, "errors", p->errors);
    num(w, "errorRate", rate(p->errors, p->requests));
    num(w, "rps", secs > 0 ? (double)p->requests / secs : 0);
    num(w, "p50", p->p50);
    num(w, "p95", p->p95);
    num(w, "p99", p->p99);
}

/* An array of the span's steps: v[k], null where not finite. */
static void num_series(struct sx_json *w, const char *key, const struct span *sp, const double *v)
{
    sx_json_key(w, key);
    sx_json_arr_open(w);
    for (size_t k = 0; k < sp->nsteps; k++) {
        if (isfinite(v[k])) sx_json_double(w, v[k]);
        else sx_json_null(w);
    }
    sx_json_arr_close(w);
}

/* "series": {"t", "requests", then "errors" (overview) or "errorRate"
 * (cross-project), "p50", "p95", "p99"}. */
static void write_series(struct sx_json *w, const struct span *sp, const struct figures *p, int error_rate)
{
    sx_json_key(w, "series");
    sx_json_obj_open(w);
    sx_json_key(w, "t");
    sx_json_arr_open(w);
    for (size_t k = 0; k < sp->nsteps; k++) sx_json_int(w, (sp->first + (int64_t)k) * sp->step_ns / 1000000);
    sx_json_arr_close(w);
    sx_json_key(w, "requests");
    sx_json_arr_open(w);
    for (size_t k = 0; k < sp->nsteps; k++) sx_json_int(w, p->s_req[k]);
    sx_json_arr_close(w);
    sx_json_key(w, error_rate ? "errorRate" : "errors");
    sx_json_arr_open(w);
    for (size_t k = 0; k < sp->nsteps; k++) {
        if (!error_rate) sx_json_int(w, p->s_err[k]);
        else if (p->s_req[k]) sx_json_double(w, rate(p->s_err[k], p->s_req[k]));
        else sx_json_null(w);
    }
    sx_json_arr_close(w);
    num_series(w, "p50", sp, p->s_p50);
    num_series(w, "p95", sp, p->s_p95);
    num_series(w, "p99", sp, p->s_p99);
    sx_json_obj_close(w);
}

/* topEndpoints: the busiest (service, operation) pairs of the window. */
static int write_top_endpoints(struct sx_api_req *r, struct sx_json *w, const struct span *sp)
{
    char pid[16], from_s[24], to_s[24], lim[16], a_s[24], h_s[24], sb[4096], src[1024], sql[8192];
    double counts[SX_RED_NBUCKETS];
    int64_t hour_a, hour_h;
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    snprintf(from_s, sizeof(from_s), "%lld", (long long)sp->from_ns);
    snprintf(to_s, sizeof(to_s), "%lld", (long long)sp->to_ns);
    snprintf(lim, sizeof(lim), "%d", TOP_ENDPOINTS);
    sx_api_red_hours(sp->from_ns, sp->to_ns, 1, &hour_a, &hour_h);
    snprintf(a_s, sizeof(a_s), "%lld", (long long)hour_a);
    snprintf(h_s, sizeof(h_s), "%lld", (long long)hour_h);
    sx_api_red_sum_buckets(sb, sizeof(sb), "");
    if (sx_api_red_source(src, sizeof(src), "project_id = $1::int", 2, 5, 6, 3) != SX_OK)
        return sx_api_fail(r, 500, "internal", "query too large");
    snprintf(sql, sizeof(sql),
             "SELECT service, operation, sum(requests), sum(errors), min(dur_min_ms), max(dur_max_ms), %s "
             "FROM %s s GROUP BY service, operation "
             "ORDER BY sum(requests) DESC, service COLLATE \"C\", operation COLLATE \"C\" LIMIT $4::int",
             sb, src);
    const char *params[6] = {pid, from_s, to_s, lim, a_s, h_s};
    PGresult *res = sx_api_exec(r, sql, 6, params, "SELECT red top endpoints");
    if (!res) return SX_ERR;
    sx_json_key(w, "topEndpoints");
    sx_json_arr_open(w);
    for (int i = 0; i < PQntuples(res); i++) {
        long long req = sx_api_col_i64(res, i, 2);
        sx_api_red_parse_buckets(sx_api_col_str(res, i, 6), counts);
        sx_json_obj_open(w);
        sx_json_key(w, "service");
        sx_json_strz(w, sx_api_col_str(res, i, 0));
        sx_json_key(w, "endpoint");
        sx_json_strz(w, sx_api_col_str(res, i, 1));
        integer(w, "requests", req);
        num(w, "errorRate", rate(sx_api_col_i64(res, i, 3), req));
        num(w, "p95", sx_red_quantile(counts, 0.95, sx_api_col_dbl(res, i, 4), sx_api_col_dbl(res, i, 5)));
        sx_json_obj_close(w);
    }
    sx_json_arr_close(w);
    PQclear(res);
    return SX_OK;
}

/* topIssues: the issues with the most events in the hours of the window
 * (issue_counts_hourly), merged ones left out. */
static int write_top_issues(struct sx_api_req *r, struct sx_json *w, const struct span *sp)
{
    const int64_t hour = 60 * MINUTE_NS;
    char pid[16], from_s[24], to_s[24], lim[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    snprintf(from_s, sizeof(from_s), "%lld", (long long)(sp->from_ns - sp->from_ns % hour));
    snprintf(to_s, sizeof(to_s), "%lld", (long long)sp->to_ns);
    snprintf(lim, sizeof(lim), "%d", TOP_ISSUES);
    const char *params[4] = {pid, from_s, to_s, lim};
    PGresult *res = sx_api_exec(
        r,
        "SELECT i.id, upper(p.slug) || '-' || i.short_seq, i.title, c.events, i.last_seen_ns, "
        "to_char(to_timestamp(i.last_seen_ns / 1000000000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "i.status FROM (SELECT issue_id, sum(events) AS events FROM issue_counts_hourly "
        "WHERE project_id = $1::int AND hour_ns >= $2 AND hour_ns <= $3 GROUP BY issue_id) c "
        "JOIN issues i ON i.id = c.issue_id AND i.project_id = $1::int AND i.merged_into IS NULL "
        "JOIN projects p ON p.id = i.project_id ORDER BY c.events DESC, i.id LIMIT $4::int",
        4, params, "SELECT issues top");
    if (!res) return SX_ERR;
    sx_json_key(w, "topIssues");
    sx_json_arr_open(w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(w);
        sx_json_key(w, "id");
        sx_json_strz(w, sx_api_col_str(res, i, 0));
        sx_json_key(w, "shortId");
        sx_json_strz(w, sx_api_col_str(res, i, 1));
        sx_json_key(w, "title");
        sx_json_strz(w, sx_api_col_str(res, i, 2));
        integer(w, "events", sx_api_col_i64(res, i, 3));
        sx_json_key(w, "lastSeen");
        sx_json_strz(w, sx_api_col_str(res, i, 5));
        sx_json_key(w, "lastSeenUnixNano");
        sx_json_strz(w, sx_api_col_str(res, i, 4));
        sx_json_key(w, "status");
        sx_json_strz(w, sx_api_col_str(res, i, 6));
        sx_json_obj_close(w);
    }
    sx_json_arr_close(w);
    PQclear(res);
    return SX_OK;
}

int sx_api_overview(struct sx_api_req *r)
{
    struct span sp;
    struct sx_json w;
    if (span_read(r, &sp, DEFAULT_STEPS) != SX_OK) return SX_ERR;
    struct figures *p = figures_of(r, &sp, &r->project_id, 1);
    if (!p) return SX_ERR;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    write_span(&w, &sp);
    sx_json_key(&w, "totals");
    sx_json_obj_open(&w);
    write_red(&w, &sp, p);
    integer(&w, "services", p->services);
    integer(&w, "openIssues", p->open_issues);
    integer(&w, "newIssues", p->new_issues);
    integer(&w, "logErrors", p->log_errors);
    sx_json_obj_close(&w);
    write_series(&w, &sp, p, 0);
    if (write_top_endpoints(r, &w, &sp) != SX_OK || write_top_issues(r, &w, &sp) != SX_OK) return SX_ERR;
    sx_json_key(&w, "health");
    sx_json_strz(&w, health_name(p));
    return sx_api_reply(r, &w);
}

/* The caller's role on project id as GET /projects names it: the
 * membership's, else "instance-admin" for an instance admin, "member" for
 * the project's own token. */
static const char *role_of(const struct sx_api_req *r, int id)
{
    for (size_t i = 0; i < r->nmembers; i++)
        if (r->members[i].project_id == id) return sx_api_role_name(r->members[i].role);
    return sx_api_role_name(sx_api_role(r, id));
}

int sx_api_cross_project(struct sx_api_req *r, const int *ids, size_t n, int truncated)
{
    struct span sp;
    struct sx_json w;
    if (span_read(r, &sp, SPARK_STEPS) != SX_OK) return SX_ERR;
    struct figures *f = figures_of(r, &sp, ids, n);
    if (!f) return SX_ERR;
    const char *lit = id_array(r, ids, n);
    const char *params[1] = {lit};
    PGresult *res = lit ? sx_api_exec(r, "SELECT id, slug, name FROM projects WHERE id = ANY ($1::integer[]) ORDER BY id",
                                      1, params, "SELECT projects")
                        : NULL;
    if (!res) return lit ? SX_ERR : sx_api_fail(r, 500, "internal", "out of memory");
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    write_span(&w, &sp);
    sx_json_key(&w, "truncated");
    sx_json_bool(&w, truncated);
    sx_json_key(&w, "projects");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        const struct figures *p = find(f, n, PQgetvalue(res, i, 0));
        if (!p) continue;
        sx_json_obj_open(&w);
        integer(&w, "id", p->id);
        sx_json_key(&w, "slug");
        sx_json_strz(&w, sx_api_col_str(res, i, 1));
        sx_json_key(&w, "name");
        sx_json_strz(&w, sx_api_col_str(res, i, 2));
        sx_json_key(&w, "role");
        sx_json_strz(&w, role_of(r, p->id));
        write_red(&w, &sp, p);
        integer(&w, "openIssues", p->open_issues);
        integer(&w, "newIssues", p->new_issues);
        integer(&w, "logErrors", p->log_errors);
        sx_json_key(&w, "health");
        sx_json_strz(&w, health_name(p));
        write_series(&w, &sp, p, 1);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}
