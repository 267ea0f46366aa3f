/* api_perf.c: GET .../services/{name}/performance, .../services/{name}/dependencies and .../service-map from the span rollups.
 *
 * red_1m and edges_1m (sql/007_red.sql, written by sextant-rollup) hold per
 * minute counts and a duration histogram over fixed bounds (RED_BOUNDS,
 * the same as workers/rollup.c). Answers add the minutes of the window up:
 * the buckets element by element in SQL, the percentiles by linear
 * interpolation inside the bucket holding the rank (lib/rollup_math.h),
 * kept inside [min, max] for an endpoint; a rank in the overflow bucket
 * answers its lower bound, 10000 ms. The window
 * (from/to/timeRange, default the last day) selects the minutes whose start
 * lies in [from rounded down to the minute, to]. */
#include "api_perf.h"

#include "rollup_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_NS 60000000000LL
#define MAX_ENDPOINTS 1000
#define MAX_MINUTES 20000
#define MAX_EDGES 5000

static const double red_bounds[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
#define NBUCKETS (SX_ARRAY_LEN(red_bounds) + 1)

/* The element-wise sum of dur_buckets: "ARRAY[sum(dur_buckets[1]), ...]". */
#define SUM_BUCKETS \
    "ARRAY[sum(dur_buckets[1]), sum(dur_buckets[2]), sum(dur_buckets[3]), sum(dur_buckets[4]), " \
    "sum(dur_buckets[5]), sum(dur_buckets[6]), sum(dur_buckets[7]), sum(dur_buckets[8]), " \
    "sum(dur_buckets[9]), sum(dur_buckets[10]), sum(dur_buckets[11]), sum(dur_buckets[12]), " \
    "sum(dur_buckets[13]), sum(dur_buckets[14])]"

/* Parses a "{1,2,...}" array of NBUCKETS counts; missing ones are 0. */
static void parse_buckets(const char *s, double *out)
{
    memset(out, 0, NBUCKETS * sizeof(*out));
    if (!s || *s != '{') return;
    s++;
    for (size_t i = 0; i < NBUCKETS && *s && *s != '}'; i++) {
        char *end;
        out[i] = strtod(s, &end);
        if (end == s) out[i] = 0;
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s != '}') break;
    }
}

static double pct(const double *counts, double q)
{
    return sx_rollup_quantile(red_bounds, SX_ARRAY_LEN(red_bounds), counts, q);
}

/* A percentile of an endpoint never lies outside the durations it has seen:
 * interpolation inside a bucket would otherwise answer past min or max. */
static double clamp(double v, double lo, double hi)
{
    if (isfinite(lo) && v < lo) return lo;
    if (isfinite(hi) && v > hi) return hi;
    return v;
}

static void json_num(struct sx_json *w, double v)
{
    if (isfinite(v))
        sx_json_double(w, v);
    else
        sx_json_null(w);
}

/* The window's bounds as text parameters. */
static int window_params(struct sx_api_req *r, char *proj, char *from_s, char *to_s)
{
    struct sx_api_window win;
    if (sx_api_window(r, &win) != SX_OK) return SX_ERR;
    int64_t from = win.from_ns - ((win.from_ns % MINUTE_NS) + MINUTE_NS) % MINUTE_NS;
    snprintf(proj, 16, "%d", r->project_id);
    snprintf(from_s, 24, "%lld", (long long)from);
    snprintf(to_s, 24, "%lld", (long long)win.to_ns);
    return SX_OK;
}

int sx_api_perf_service(struct sx_api_req *r, const char *service)
{
    char proj[16], from_s[24], to_s[24], lim_s[24];
    double counts[NBUCKETS];
    struct sx_json w;
    if (window_params(r, proj, from_s, to_s) != SX_OK) return SX_ERR;
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_ENDPOINTS);
    const char *params[5] = {proj, service, from_s, to_s, lim_s};
    PGresult *ep = sx_api_exec(
        r,
        "SELECT operation, kind, sum(requests), sum(errors), sum(s2xx), sum(s3xx), sum(s4xx), sum(s5xx), "
        "sum(dur_sum_ms), min(dur_min_ms), max(dur_max_ms), " SUM_BUCKETS " FROM red_1m "
        "WHERE project_id = $1 AND service = $2 AND bucket_start_ns >= $3 AND bucket_start_ns <= $4 "
        "GROUP BY operation, kind ORDER BY sum(requests) DESC, operation COLLATE \"C\", kind LIMIT $5",
        5, params, "SELECT red_1m endpoints");
    if (!ep) return SX_ERR;
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_MINUTES);
    PGresult *se = sx_api_exec(r,
                               "SELECT bucket_start_ns / 1000000, sum(requests), sum(errors), " SUM_BUCKETS
                               " FROM red_1m WHERE project_id = $1 AND service = $2 AND bucket_start_ns >= $3 "
                               "AND bucket_start_ns <= $4 GROUP BY bucket_start_ns ORDER BY bucket_start_ns LIMIT $5",
                               5, params, "SELECT red_1m series");
    if (!se) {
        PQclear(ep);
        return SX_ERR;
    }
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "endpoints");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(ep); i++) {
        int64_t req = sx_api_col_i64(ep, i, 2), err = sx_api_col_i64(ep, i, 3);
        static const char *const cls[4] = {"2xx", "3xx", "4xx", "5xx"};
        sx_json_obj_open(&w);
        sx_json_key(&w, "operation");
        sx_json_strz(&w, sx_api_col_str(ep, i, 0));
        sx_json_key(&w, "kind");
        sx_json_strz(&w, sx_api_col_i64(ep, i, 1) == 5 ? "consumer" : "server");
        sx_json_key(&w, "requests");
        sx_json_int(&w, req);
        sx_json_key(&w, "errors");
        sx_json_int(&w, err);
        sx_json_key(&w, "errorRate");
        json_num(&w, req ? (double)err / (double)req : 0);
        sx_json_key(&w, "status");
        sx_json_obj_open(&w);
        for (int c = 0; c < 4; c++) {
            sx_json_key(&w, cls[c]);
            sx_json_int(&w, sx_api_col_i64(ep, i, 4 + c));
        }
        sx_json_obj_close(&w);
        parse_buckets(sx_api_col_str(ep, i, 11), counts);
        const char *mn = sx_api_col_str(ep, i, 9), *mx = sx_api_col_str(ep, i, 10);
        double lo = mn ? strtod(mn, NULL) : NAN, hi = mx ? strtod(mx, NULL) : NAN;
        sx_json_key(&w, "durationMs");
        sx_json_obj_open(&w);
        sx_json_key(&w, "min");
        json_num(&w, lo);
        sx_json_key(&w, "avg");
        json_num(&w, req ? strtod(sx_api_col_str(ep, i, 8) ? sx_api_col_str(ep, i, 8) : "0", NULL) / (double)req : NAN);
        sx_json_key(&w, "max");
        json_num(&w, hi);
        sx_json_key(&w, "p50");
        json_num(&w, clamp(pct(counts, 0.50), lo, hi));
        sx_json_key(&w, "p95");
        json_num(&w, clamp(pct(counts, 0.95), lo, hi));
        sx_json_key(&w, "p99");
        json_num(&w, clamp(pct(counts, 0.99), lo, hi));
        sx_json_obj_close(&w);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_key(&w, "series");
    sx_json_obj_open(&w);
    for (int s = 0; s < 3; s++) {
        static const char *const names[3] = {"requests", "errors", "p95"};
        sx_json_key(&w, names[s]);
        sx_json_arr_open(&w);
        for (int i = 0; i < PQntuples(se); i++) {
            sx_json_arr_open(&w);
            sx_json_int(&w, sx_api_col_i64(se, i, 0));
            if (s < 2) {
                sx_json_int(&w, sx_api_col_i64(se, i, 1 + s));
            } else {
                parse_buckets(sx_api_col_str(se, i, 3), counts);
                json_num(&w, pct(counts, 0.95));
            }
            sx_json_arr_close(&w);
        }
        sx_json_arr_close(&w);
    }
    sx_json_obj_close(&w);
    PQclear(ep);
    PQclear(se);
    return sx_api_reply(r, &w);
}

int sx_api_perf_edges(struct sx_api_req *r, const char *service)
{
    char proj[16], from_s[24], to_s[24], lim_s[24];
    double counts[NBUCKETS];
    struct sx_json w;
    if (window_params(r, proj, from_s, to_s) != SX_OK) return SX_ERR;
    snprintf(lim_s, sizeof(lim_s), "%d", MAX_EDGES);
    const char *params[5] = {proj, from_s, to_s, lim_s, service};
    PGresult *res = sx_api_exec(
        r,
        "SELECT parent_service, child_service, sum(calls), sum(errors), " SUM_BUCKETS " FROM edges_1m "
        "WHERE project_id = $1 AND bucket_start_ns >= $2 AND bucket_start_ns <= $3 "
        "AND ($5::text IS NULL OR parent_service = $5 OR child_service = $5) "
        "GROUP BY parent_service, child_service ORDER BY parent_service COLLATE \"C\", child_service COLLATE \"C\" "
        "LIMIT $4",
        5, params, "SELECT edges_1m");
    if (!res) return SX_ERR;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "edges");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "from");
        sx_json_strz(&w, sx_api_col_str(res, i, 0));
        sx_json_key(&w, "to");
        sx_json_strz(&w, sx_api_col_str(res, i, 1));
        sx_json_key(&w, "calls");
        sx_json_int(&w, sx_api_col_i64(res, i, 2));
        sx_json_key(&w, "errors");
        sx_json_int(&w, sx_api_col_i64(res, i, 3));
        parse_buckets(sx_api_col_str(res, i, 4), counts);
        sx_json_key(&w, "p95Ms");
        json_num(&w, pct(counts, 0.95));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}
