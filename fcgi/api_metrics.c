/* api_metrics.c: GET .../metrics and .../metrics/query: metric names and aggregated series from the one-minute rollups.
 *
 * The query endpoint reads metric_points_1m (written by sextant-rollup,
 * where cumulative points are already deltas) joined to metric_series,
 * filtered by name, time window and attribute equality (filter=k=v,k2=v2),
 * grouped by step (a multiple of one minute) and the groupBy attributes:
 *   sum    the total of the values (sums: of the deltas) in the step
 *   count  the number of points (histograms: of measurements)
 *   avg    sum / count
 *   min, max, last
 *   rate   sum per second of step
 *   p50, p90, p95, p99  from the histogram bucket counts added up per
 *          step (lib/rollup_math.h: linear inside the bucket)
 * Attributes are those of metric_series: point attributes by their key,
 * resource attributes as "resource.<key>". */
#include "api_metrics.h"

#include "log.h"
#include "rollup_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUP_KEYS 8
#define MAX_FILTERS 8
#define MAX_POINTS 20000 /* steps x series of one answer */
#define MINUTE_NS 60000000000LL

int sx_api_metrics_list(struct sx_api_req *r)
{
    char proj[16];
    struct sx_json w;
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    const char *params[1] = {proj};
    PGresult *res = sx_api_exec(r,
                                "SELECT name, min(type), min(unit), min(description), count(*) FROM metric_series "
                                "WHERE project_id = $1 GROUP BY name ORDER BY name COLLATE \"C\" LIMIT 10000",
                                1, params, "SELECT metric names");
    if (!res) return SX_ERR;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "metrics");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "name");
        sx_json_strz(&w, PQgetvalue(res, i, 0));
        sx_json_key(&w, "type");
        sx_json_strz(&w, PQgetvalue(res, i, 1));
        sx_json_key(&w, "unit");
        sx_json_strz(&w, PQgetvalue(res, i, 2));
        sx_json_key(&w, "description");
        sx_json_strz(&w, PQgetvalue(res, i, 3));
        sx_json_key(&w, "seriesCount");
        sx_json_int(&w, strtoll(PQgetvalue(res, i, 4), NULL, 10));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_obj_close(&w);
    PQclear(res);
    if (w.err) return sx_api_fail(r, 500, "internal", "response too large");
    r->status = 200;
    return SX_OK;
}

enum agg { AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_COUNT, AGG_LAST, AGG_RATE, AGG_PCT };

struct query {
    const char *name;
    enum agg agg;
    double q;             /* AGG_PCT */
    int64_t step_ns;
    struct sx_api_window win;
    char *keys[MAX_GROUP_KEYS];
    size_t nkeys;
    char *fk[MAX_FILTERS], *fv[MAX_FILTERS];
    size_t nfilters;
};

static int parse_agg(const char *s, struct query *q)
{
    static const struct {
        const char *name;
        enum agg agg;
        double q;
    } aggs[] = {{"sum", AGG_SUM, 0},     {"avg", AGG_AVG, 0},    {"min", AGG_MIN, 0},    {"max", AGG_MAX, 0},
                {"count", AGG_COUNT, 0}, {"last", AGG_LAST, 0},  {"rate", AGG_RATE, 0},  {"p50", AGG_PCT, 0.5},
                {"p90", AGG_PCT, 0.9},   {"p95", AGG_PCT, 0.95}, {"p99", AGG_PCT, 0.99}};
    for (size_t i = 0; i < SX_ARRAY_LEN(aggs); i++)
        if (strcmp(s, aggs[i].name) == 0) {
            q->agg = aggs[i].agg;
            q->q = aggs[i].q;
            return SX_OK;
        }
    return SX_ERR;
}

/* Splits a copy of s at commas into out (at most max non-empty parts). */
static int split_commas(struct sx_api_req *r, const char *s, char **out, size_t max, size_t *n)
{
    char *copy = sx_api_strf(r, "%s", s);
    if (!copy) return SX_ERR;
    *n = 0;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (!*tok) continue;
        if (*n == max) return SX_ERR;
        out[(*n)++] = tok;
    }
    return SX_OK;
}

static int parse_query(struct sx_api_req *r, struct query *q)
{
    int bad = 0;
    char err[256];
    const char *agg, *step, *group, *filter, *from, *to, *range;
    memset(q, 0, sizeof(*q));
    q->name = sx_api_param1(r, "name", &bad);
    agg = bad ? NULL : sx_api_param1(r, "agg", &bad);
    step = bad ? NULL : sx_api_param1(r, "step", &bad);
    group = bad ? NULL : sx_api_param1(r, "groupBy", &bad);
    filter = bad ? NULL : sx_api_param1(r, "filter", &bad);
    from = bad ? NULL : sx_api_param1(r, "from", &bad);
    to = bad ? NULL : sx_api_param1(r, "to", &bad);
    range = bad ? NULL : sx_api_param1(r, "timeRange", &bad);
    if (bad) return SX_ERR;
    if (!q->name) return sx_api_fail(r, 400, "bad_request", "name is required");
    q->agg = AGG_SUM;
    if (agg && parse_agg(agg, q) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "agg must be one of sum, avg, min, max, count, last, rate, p50, "
                                                  "p90, p95, p99");
    q->step_ns = MINUTE_NS;
    if (step && (sx_api_parse_range(step, &q->step_ns) != SX_OK || q->step_ns % MINUTE_NS != 0))
        return sx_api_fail(r, 400, "bad_request", "step must be a whole number of minutes (60s, 5m, 1h)");
    if (sx_api_time_window(from, to, range, r->now_ns, 3600LL * 1000000000LL, &q->win, err, sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    if ((q->win.to_ns - q->win.from_ns) / q->step_ns > MAX_POINTS)
        return sx_api_fail(r, 400, "bad_request", "too many steps: use a larger step or a shorter window");
    if (group && split_commas(r, group, q->keys, MAX_GROUP_KEYS, &q->nkeys) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "groupBy takes at most %d keys", MAX_GROUP_KEYS);
    if (filter) {
        if (split_commas(r, filter, q->fk, MAX_FILTERS, &q->nfilters) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "filter takes at most %d key=value pairs", MAX_FILTERS);
        for (size_t i = 0; i < q->nfilters; i++) {
            char *eq = strchr(q->fk[i], '=');
            if (!eq || eq == q->fk[i]) return sx_api_fail(r, 400, "bad_request", "filter must be key=value[,key=value]");
            *eq = '\0';
            q->fv[i] = eq + 1;
        }
    }
    return SX_OK;
}

/* Parses a PostgreSQL array text ("{1,2.5,3}") into out (at most max);
 * returns the count, or -1 when malformed or too long. */
static int parse_pg_array(const char *s, double *out, int max)
{
    int n = 0;
    if (*s != '{') return -1;
    s++;
    if (*s == '}') return 0;
    for (;;) {
        char *end;
        if (n == max) return -1;
        out[n++] = strtod(s, &end);
        if (end == s) return -1;
        if (*end == '}') return n;
        if (*end != ',') return -1;
        s = end + 1;
    }
}

static void write_labels(struct sx_json *w, const struct query *q, PGresult *res, int row)
{
    sx_json_key(w, "labels");
    sx_json_obj_open(w);
    for (size_t k = 0; k < q->nkeys; k++) {
        sx_json_key(w, q->keys[k]);
        if (PQgetisnull(res, row, 1 + (int)k))
            sx_json_null(w);
        else
            sx_json_strz(w, PQgetvalue(res, row, 1 + (int)k));
    }
    sx_json_obj_close(w);
}

/* Whether rows a and b have the same labels. */
static int same_labels(const struct query *q, PGresult *res, int a, int b)
{
    for (size_t k = 0; k < q->nkeys; k++) {
        int c = 1 + (int)k;
        if (PQgetisnull(res, a, c) != PQgetisnull(res, b, c)) return 0;
        if (!PQgetisnull(res, a, c) && strcmp(PQgetvalue(res, a, c), PQgetvalue(res, b, c)) != 0) return 0;
    }
    return 1;
}

int sx_api_metrics_query(struct sx_api_req *r)
{
    struct query q;
    struct sx_buf sql;
    struct sx_json w;
    const char *params[4 + MAX_GROUP_KEYS + 2 * MAX_FILTERS];
    int np = 0, ok = 1;
    PGresult *res = NULL;

    if (parse_query(r, &q) != SX_OK) return SX_ERR;
    params[np++] = sx_api_strf(r, "%d", r->project_id);
    params[np++] = q.name;
    params[np++] = sx_api_strf(r, "%lld", (long long)(q.win.from_ns / MINUTE_NS * MINUTE_NS));
    params[np++] = sx_api_strf(r, "%lld", (long long)q.win.to_ns);
    for (int i = 0; i < np; i++)
        if (!params[i]) return sx_api_fail(r, 500, "internal", "out of memory");

    sx_buf_init(&sql, 16384);
    /* Step starts are aligned to the step from the epoch (floor, so negative
     * times too). Percentiles need each row's buckets: no SQL aggregate. */
    ok &= sx_buf_printf(&sql, "SELECT (p.bucket_start_ns - (((p.bucket_start_ns %% %lld) + %lld) %% %lld)) AS t",
                        (long long)q.step_ns, (long long)q.step_ns, (long long)q.step_ns) == SX_OK;
    for (size_t k = 0; k < q.nkeys; k++) {
        params[np] = q.keys[k];
        ok &= sx_buf_printf(&sql, ", (s.attributes ->> $%d) COLLATE \"C\" AS g%zu", ++np, k) == SX_OK;
    }
    if (q.agg == AGG_PCT)
        ok &= sx_buf_puts(&sql, ", p.bounds::text, p.bucket_counts::text") == SX_OK;
    else
        ok &= sx_buf_puts(&sql, ", sum(p.sum), sum(p.count), min(p.min), max(p.max), "
                                "(array_agg(p.last ORDER BY p.bucket_start_ns DESC, p.series_id) "
                                "FILTER (WHERE p.last IS NOT NULL))[1]") == SX_OK;
    ok &= sx_buf_puts(&sql, " FROM metric_points_1m p JOIN metric_series s ON s.id = p.series_id "
                            "WHERE p.project_id = $1 AND s.project_id = $1 AND s.name = $2 "
                            "AND p.bucket_start_ns >= $3 AND p.bucket_start_ns <= $4") == SX_OK;
    for (size_t i = 0; i < q.nfilters; i++) {
        params[np] = q.fk[i];
        params[np + 1] = q.fv[i];
        ok &= sx_buf_printf(&sql, " AND (s.attributes ->> $%d) = $%d", np + 1, np + 2) == SX_OK;
        np += 2;
    }
    if (q.agg == AGG_PCT) {
        ok &= sx_buf_puts(&sql, " AND p.bucket_counts IS NOT NULL ORDER BY ") == SX_OK;
    } else {
        ok &= sx_buf_puts(&sql, " GROUP BY t") == SX_OK;
        for (size_t k = 0; k < q.nkeys; k++) ok &= sx_buf_printf(&sql, ", g%zu", k) == SX_OK;
        ok &= sx_buf_puts(&sql, " ORDER BY ") == SX_OK;
    }
    for (size_t k = 0; k < q.nkeys; k++) ok &= sx_buf_printf(&sql, "g%zu NULLS FIRST, ", k) == SX_OK;
    ok &= sx_buf_puts(&sql, "t") == SX_OK;
    if (ok) res = sx_api_exec(r, sql.data, np, params, "SELECT metric points");
    sx_buf_term(&sql);
    if (!ok) return sx_api_fail(r, 500, "internal", "query too long");
    if (!res) return SX_ERR;

    int nrows = PQntuples(res), vcol = 1 + (int)q.nkeys;
    double bounds[SX_ROLLUP_MAX_BUCKETS], counts[SX_ROLLUP_MAX_BUCKETS], rowc[SX_ROLLUP_MAX_BUCKETS];
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "series");
    sx_json_arr_open(&w);
    for (int i = 0; i < nrows;) {
        /* One series: the rows with these labels. */
        int end = i + 1;
        while (end < nrows && same_labels(&q, res, i, end)) end++;
        sx_json_obj_open(&w);
        write_labels(&w, &q, res, i);
        sx_json_key(&w, "points");
        sx_json_arr_open(&w);
        for (int j = i; j < end;) {
            long long t = strtoll(PQgetvalue(res, j, 0), NULL, 10);
            double v = NAN;
            int next = j + 1;
            if (q.agg == AGG_PCT) {
                /* Add up the bucket counts of every row of this step. */
                int nb = -1, nbounds = -1;
                for (next = j; next < end && strtoll(PQgetvalue(res, next, 0), NULL, 10) == t; next++) {
                    int bn = parse_pg_array(PQgetvalue(res, next, vcol), bounds, SX_ROLLUP_MAX_BUCKETS);
                    int cn = parse_pg_array(PQgetvalue(res, next, vcol + 1), rowc, SX_ROLLUP_MAX_BUCKETS);
                    if (bn < 0 || cn != bn + 1) continue;
                    if (nb < 0) {
                        nb = cn;
                        nbounds = bn;
                        memset(counts, 0, sizeof(counts));
                    }
                    if (cn != nb) continue; /* another bucket layout: not comparable */
                    for (int b = 0; b < cn; b++) counts[b] += rowc[b];
                }
                /* bounds holds the last row's bounds; rows of one metric share them. */
                if (nb > 0) v = sx_rollup_quantile(bounds, (size_t)nbounds, counts, q.q);
            } else {
                double sum = strtod(PQgetvalue(res, j, vcol), NULL);
                double cnt = strtod(PQgetvalue(res, j, vcol + 1), NULL);
                switch (q.agg) {
                case AGG_SUM: v = sum; break;
                case AGG_COUNT: v = cnt; break;
                case AGG_AVG: v = cnt > 0 ? sum / cnt : NAN; break;
                case AGG_RATE: v = sum / ((double)q.step_ns / 1e9); break;
                case AGG_MIN:
                    if (!PQgetisnull(res, j, vcol + 2)) v = strtod(PQgetvalue(res, j, vcol + 2), NULL);
                    break;
                case AGG_MAX:
                    if (!PQgetisnull(res, j, vcol + 3)) v = strtod(PQgetvalue(res, j, vcol + 3), NULL);
                    break;
                case AGG_LAST:
                    if (!PQgetisnull(res, j, vcol + 4)) v = strtod(PQgetvalue(res, j, vcol + 4), NULL);
                    break;
                case AGG_PCT: break;
                }
            }
            sx_json_arr_open(&w);
            sx_json_int(&w, t / 1000000);
            sx_json_double(&w, v); /* null when there is no value */
            sx_json_arr_close(&w);
            j = next;
        }
        sx_json_arr_close(&w);
        sx_json_obj_close(&w);
        i = end;
    }
    sx_json_arr_close(&w);
    sx_json_obj_close(&w);
    PQclear(res);
    if (w.err) return sx_api_fail(r, 500, "internal", "response too large");
    r->status = 200;
    return SX_OK;
}
