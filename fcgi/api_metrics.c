/* api_metrics.c: GET .../metrics and .../metrics/query: metric names and aggregated series from raw points and the 1-minute and 1-hour rollups.
 *
 * The query endpoint reads what sextant-rollup wrote (cumulative points are
 * deltas already) at one of four resolutions, chosen by step and range:
 *   raw  metric_points_raw, for steps under a minute (any whole number of
 *        seconds) over a window that starts inside metrics_raw_retention_s;
 *        an older window, or a percentile, is answered from 1m with a
 *        60 s step instead
 *   1h   metric_points_1h, for steps that are whole hours, and for windows
 *        over MAX_1M_RANGE_NS (2 days) whatever the step (then rounded up
 *        to whole hours)
 *   5m   metric_points_5m (sql/021), for other steps of whole 5 minutes, when
 *        the window starts at or after the table's start (metric_resolutions:
 *        it holds every 5 minutes from its migration on)
 *   1m   metric_points_1m otherwise (steps are whole minutes)
 * The answer names the resolution and the step used ("resolution",
 * "stepMs"). Steps are aligned to the epoch; a step holds the whole
 * resolution buckets (minutes, hours) that start in it, for the buckets
 * that overlap [from, to].
 *
 * Aggregations, per step and group (groupBy attributes):
 *   sum    the total of the values (sums: of the deltas) in the step
 *   count  the number of points (histograms, summaries: of measurements)
 *   avg    sum / count
 *   min, max, last (last: the newest bucket's, lowest series id on a tie)
 *   rate   sum per second of step (the same at every resolution: the
 *          deltas in the step over its length)
 *   p50, p90, p95, p99  from histogram buckets added up per step: explicit
 *          buckets (linear inside the bucket; rows with another layout than
 *          the step's first are left out), else exponential buckets (merged
 *          at the smallest scale; linear inside the bucket), else summary
 *          quantiles (each row holds its newest point's quantiles; linear
 *          between the two reported quantiles around p, the nearest outside
 *          them; rows of a step averaged weighted by their counts)
 *          (lib/rollup_math.h)
 * Attributes are those of metric_series: point attributes by their key,
 * resource attributes as "resource.<key>".
 *
 * Speed: the series (name, filters) and their labels are read once (one
 * row per series, not per point); the points are then read by series id and
 * time through the tables' primary keys, only the columns the aggregation
 * needs, and added up in C into a dense (group, step) array, so no JSON is
 * parsed and nothing is sorted per point. */
#include "api_metrics.h"

#include "log.h"
#include "rollup_math.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUP_KEYS 8
#define MAX_FILTERS 8
#define MAX_POINTS 20000 /* steps of one answer */
#define DEFAULT_STEPS 300 /* steps of an answer when no step is asked for */
#define MAX_CELLS 2000000 /* groups x steps of one answer */
#define MAX_PCT_BYTES ((size_t)64 << 20) /* percentile accumulators of one answer */
#define SECOND_NS 1000000000LL
#define MINUTE_NS 60000000000LL
#define HOUR_NS (60 * MINUTE_NS)
#define FIVE_MIN_NS (5 * MINUTE_NS)
#define MAX_1M_RANGE_NS (2 * 24 * HOUR_NS) /* longer windows read the 1-hour table */

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

#define MAX_LABEL_VALUES 200 /* values listed per key */

int sx_api_metric_labels(struct sx_api_req *r, const char *name)
{
    char proj[16], maxv[16];
    struct sx_json w;
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    snprintf(maxv, sizeof(maxv), "%d", MAX_LABEL_VALUES);
    const char *params[3] = {proj, name, maxv};
    PGresult *cnt = sx_api_exec(r, "SELECT count(*) FROM metric_series WHERE project_id = $1 AND name = $2", 2,
                                params, "SELECT metric series count");
    if (!cnt) return SX_ERR;
    long long nseries = strtoll(PQgetvalue(cnt, 0, 0), NULL, 10);
    PQclear(cnt);
    if (nseries == 0) return sx_api_fail(r, 404, "not_found", "metric not found");
    /* Scalars as their text, arrays and maps as their JSON text. */
    PGresult *res = sx_api_exec(r,
                                "SELECT k, count(*), array_to_json((array_agg(v ORDER BY v COLLATE \"C\"))[1:$3::int])::text "
                                "FROM (SELECT DISTINCT a.key AS k, a.value AS v FROM metric_series s, "
                                "json_each_text(s.attributes) a WHERE s.project_id = $1 AND s.name = $2 "
                                "AND a.value IS NOT NULL) d GROUP BY k ORDER BY k COLLATE \"C\" LIMIT 1000",
                                3, params, "SELECT metric labels");
    if (!res) return SX_ERR;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "name");
    sx_json_strz(&w, name);
    sx_json_key(&w, "seriesCount");
    sx_json_int(&w, nseries);
    sx_json_key(&w, "labels");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "key");
        sx_json_strz(&w, PQgetvalue(res, i, 0));
        sx_json_key(&w, "valueCount");
        sx_json_int(&w, strtoll(PQgetvalue(res, i, 1), NULL, 10));
        sx_json_key(&w, "values");
        sx_api_col_json(&w, res, i, 2, "[]");
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
enum res { RES_RAW, RES_1M, RES_1H, RES_5M };
static const char *const res_name[] = {"raw", "1m", "1h", "5m"};

/* The start of metric_points_5m (sql/021): the table holds every 5 minutes
 * from there on. Read once per process (it never changes); 0 until then.
 * Returns INT64_MAX when it cannot be read (then 5m is never used). */
static int64_t five_min_since(struct sx_api_req *r)
{
    static int64_t cached;
    int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v) return v;
    PGresult *res = sx_api_exec(r, "SELECT since_ns FROM metric_resolutions WHERE resolution = '5m'", 0, NULL,
                                "SELECT metric_resolutions");
    if (!res) return INT64_MAX;
    v = PQntuples(res) == 1 ? sx_api_col_i64(res, 0, 0) : INT64_MAX;
    PQclear(res);
    if (v != INT64_MAX) __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

struct query {
    const char *name;
    enum agg agg;
    double q;             /* AGG_PCT */
    int64_t step_ns;
    enum res res;
    struct sx_api_window win;
    char *keys[MAX_GROUP_KEYS];
    size_t nkeys;
    char *fk[MAX_FILTERS], *fv[MAX_FILTERS];
    size_t nfilters;
};

/* The step when none is asked for: the smallest of 1m, 2m, 5m, 10m, 15m,
 * 30m, 1h, 2h, 3h, 6h, 12h, 1d giving at most DEFAULT_STEPS steps, as a
 * chart's maxDataPoints does (24 h: 5 minutes, 288 points a series). */
static int64_t default_step(int64_t range_ns)
{
    static const int minutes[] = {1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440};
    for (size_t i = 0; i < SX_ARRAY_LEN(minutes); i++)
        if (range_ns / (minutes[i] * MINUTE_NS) <= DEFAULT_STEPS) return minutes[i] * MINUTE_NS;
    return 1440 * MINUTE_NS;
}

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
    if (step && (sx_api_parse_range(step, &q->step_ns) != SX_OK ||
                 (q->step_ns >= MINUTE_NS && q->step_ns % MINUTE_NS != 0)))
        return sx_api_fail(r, 400, "bad_request",
                           "step must be a whole number of seconds under a minute, else of minutes (10s, 5m, 1h)");
    if (sx_api_time_window(from, to, range, r->now_ns, 3600LL * 1000000000LL, &q->win, err, sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    if (!step) q->step_ns = default_step(q->win.to_ns - q->win.from_ns);
    /* The resolution (see the top of the file). */
    if (q->step_ns < MINUTE_NS) {
        int64_t raw_from = r->now_ns - r->cfg->metrics_raw_retention_s * SECOND_NS;
        if (q->agg == AGG_PCT || q->win.from_ns < raw_from) q->step_ns = MINUTE_NS, q->res = RES_1M;
        else q->res = RES_RAW;
    }
    if (q->step_ns >= MINUTE_NS) {
        if (q->win.to_ns - q->win.from_ns > MAX_1M_RANGE_NS && q->step_ns % HOUR_NS != 0)
            q->step_ns = (q->step_ns / HOUR_NS + 1) * HOUR_NS;
        q->res = q->step_ns % HOUR_NS == 0 ? RES_1H : RES_1M;
        /* Whole 5 minutes read the 5-minute table, when it holds the window. */
        int64_t from5 = q->win.from_ns - (((q->win.from_ns % FIVE_MIN_NS) + FIVE_MIN_NS) % FIVE_MIN_NS);
        if (q->res == RES_1M && q->step_ns % FIVE_MIN_NS == 0 && from5 >= five_min_since(r)) q->res = RES_5M;
    }
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

/* Bucket counts of one (group, step) for percentiles. */
struct pct {
    int nb, nbounds;                     /* explicit: -1 until the first row */
    double bounds[SX_ROLLUP_MAX_BUCKETS];
    double counts[SX_ROLLUP_MAX_BUCKETS];
    struct sx_rollup_exp exp;            /* exponential */
    double qsum, qweight;                /* summaries: weighted estimates */
};

/* One (group, step). */
struct acc {
    double sum, count, min, max, last;
    int64_t last_t;
    long long last_series;
    unsigned any : 1, has_min : 1, has_max : 1, has_last : 1;
    struct pct *pct;
};

/* The query's series: ids ascending, each with its group. */
struct series_set {
    PGresult *res;   /* id, then one label column per groupBy key */
    int n;
    long long *id;   /* [n], ascending */
    int *group;      /* [n] */
    int *first;      /* [ngroups]: a series row of each group (for its labels) */
    int ngroups;
    int nkeys;
};

static int label_cmp(const void *a, const void *b, void *ctx)
{
    const struct series_set *ss = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    for (int k = 0; k < ss->nkeys; k++) {
        int nx = PQgetisnull(ss->res, x, 1 + k), ny = PQgetisnull(ss->res, y, 1 + k);
        if (nx != ny) return nx ? -1 : 1; /* NULLS FIRST */
        if (nx) continue;
        int c = strcmp(PQgetvalue(ss->res, x, 1 + k), PQgetvalue(ss->res, y, 1 + k));
        if (c) return c;
    }
    return 0;
}

/* Groups the series by their labels (groups in label order, NULL first). */
static int group_series(struct series_set *ss)
{
    int *order = malloc(sizeof(int) * (size_t)(ss->n ? ss->n : 1));
    ss->id = malloc(sizeof(long long) * (size_t)(ss->n ? ss->n : 1));
    ss->group = malloc(sizeof(int) * (size_t)(ss->n ? ss->n : 1));
    ss->first = malloc(sizeof(int) * (size_t)(ss->n ? ss->n : 1));
    if (!order || !ss->id || !ss->group || !ss->first) {
        free(order);
        return SX_ERR;
    }
    for (int i = 0; i < ss->n; i++) {
        order[i] = i;
        ss->id[i] = strtoll(PQgetvalue(ss->res, i, 0), NULL, 10);
    }
    qsort_r(order, (size_t)ss->n, sizeof(int), label_cmp, ss);
    ss->ngroups = 0;
    for (int i = 0; i < ss->n; i++) {
        if (i == 0 || label_cmp(&order[i - 1], &order[i], ss) != 0) ss->first[ss->ngroups++] = order[i];
        ss->group[order[i]] = ss->ngroups - 1;
    }
    free(order);
    return SX_OK;
}

/* The group of a series id; -1 when not one of the set. */
static int group_of(const struct series_set *ss, long long id)
{
    int lo = 0, hi = ss->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (ss->id[mid] == id) return ss->group[mid];
        if (ss->id[mid] < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static void write_labels(struct sx_json *w, const struct query *q, const struct series_set *ss, int row)
{
    sx_json_key(w, "labels");
    sx_json_obj_open(w);
    for (size_t k = 0; k < q->nkeys; k++) {
        sx_json_key(w, q->keys[k]);
        if (PQgetisnull(ss->res, row, 1 + (int)k))
            sx_json_null(w);
        else
            sx_json_strz(w, PQgetvalue(ss->res, row, 1 + (int)k));
    }
    sx_json_obj_close(w);
}

static long long col_ll(PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double col_d(PGresult *res, int row, int col)
{
    return strtod(PQgetvalue(res, row, col), NULL);
}

/* Parses a bigint array text into counts (at most max); -1 when malformed. */
static long parse_counts(const char *s, uint64_t *out, size_t max)
{
    double tmp[SX_ROLLUP_EXP_MAX];
    int n = parse_pg_array(s, tmp, (int)SX_MIN(max, (size_t)SX_ROLLUP_EXP_MAX));
    for (int i = 0; i < n; i++) out[i] = tmp[i] > 0 ? (uint64_t)tmp[i] : 0;
    return n;
}

/* Adds one row's buckets (columns from c: bounds, bucket_counts, exp_scale,
 * exp_zero, exp_pos_offset, exp_pos, exp_neg_offset, exp_neg, q_quantiles,
 * q_values, count) into p. */
static void add_pct(struct pct *p, PGresult *res, int row, int c, double q)
{
    double rowc[SX_ROLLUP_MAX_BUCKETS], bounds[SX_ROLLUP_MAX_BUCKETS];
    if (!PQgetisnull(res, row, c) && !PQgetisnull(res, row, c + 1)) {
        int bn = parse_pg_array(PQgetvalue(res, row, c), bounds, SX_ROLLUP_MAX_BUCKETS);
        int cn = parse_pg_array(PQgetvalue(res, row, c + 1), rowc, SX_ROLLUP_MAX_BUCKETS);
        if (bn < 0 || cn != bn + 1) return;
        if (p->nb < 0) {
            p->nb = cn;
            p->nbounds = bn;
            memcpy(p->bounds, bounds, sizeof(double) * (size_t)bn);
        }
        if (cn != p->nb || memcmp(p->bounds, bounds, sizeof(double) * (size_t)bn) != 0) return; /* another layout */
        for (int b = 0; b < cn; b++) p->counts[b] += rowc[b];
        return;
    }
    if (!PQgetisnull(res, row, c + 2)) {
        struct sx_rollup_exp e;
        memset(&e, 0, sizeof(e));
        e.have = 1;
        e.scale = (int32_t)col_ll(res, row, c + 2);
        e.zero = (uint64_t)col_ll(res, row, c + 3);
        e.pos.offset = (int32_t)col_ll(res, row, c + 4);
        e.neg.offset = (int32_t)col_ll(res, row, c + 6);
        long np = parse_counts(PQgetvalue(res, row, c + 5), e.pos.counts, SX_ROLLUP_EXP_MAX);
        long nn = parse_counts(PQgetvalue(res, row, c + 7), e.neg.counts, SX_ROLLUP_EXP_MAX);
        if (np < 0 || nn < 0 || e.scale < SX_ROLLUP_EXP_MIN_SCALE || e.scale > 20) return;
        e.pos.n = (size_t)np, e.neg.n = (size_t)nn;
        sx_rollup_exp_merge(&p->exp, &e); /* out of range: the row is left out */
        return;
    }
    if (!PQgetisnull(res, row, c + 8) && !PQgetisnull(res, row, c + 9)) {
        double qs[SX_ROLLUP_MAX_BUCKETS], vs[SX_ROLLUP_MAX_BUCKETS];
        int nq = parse_pg_array(PQgetvalue(res, row, c + 8), qs, SX_ROLLUP_MAX_BUCKETS);
        int nv = parse_pg_array(PQgetvalue(res, row, c + 9), vs, SX_ROLLUP_MAX_BUCKETS);
        if (nq <= 0 || nv != nq) return;
        double v = sx_rollup_summary_quantile(qs, vs, (size_t)nq, q), wgt = col_d(res, row, c + 10);
        if (!(wgt > 0)) wgt = 1;
        if (isfinite(v)) p->qsum += v * wgt, p->qweight += wgt;
    }
}

static double pct_value(const struct pct *p, double q)
{
    if (p->nb > 0) {
        double v = sx_rollup_quantile(p->bounds, (size_t)p->nbounds, p->counts, q);
        if (!isnan(v)) return v;
    }
    if (p->exp.have) {
        double v = sx_rollup_exp_quantile(&p->exp, q);
        if (!isnan(v)) return v;
    }
    return p->qweight > 0 ? p->qsum / p->qweight : NAN;
}

int sx_api_metrics_query(struct sx_api_req *r)
{
    static const char *const table[] = {"metric_points_raw", "metric_points_1m", "metric_points_1h",
                                        "metric_points_5m"};
    static const char *const tcol[] = {"time_ns", "bucket_start_ns", "bucket_start_ns", "bucket_start_ns"};
    static const int64_t res_ns[] = {1, MINUTE_NS, HOUR_NS, FIVE_MIN_NS};
    struct query q;
    struct sx_buf sql;
    struct sx_json w;
    const char *params[2 + MAX_GROUP_KEYS + 2 * MAX_FILTERS];
    int np = 0, ok = 1, rc = SX_ERR;
    struct series_set ss;
    PGresult *pts = NULL;
    struct acc *accs = NULL;
    struct pct **pcts = NULL;
    size_t npcts = 0;

    memset(&ss, 0, sizeof(ss));
    if (parse_query(r, &q) != SX_OK) return SX_ERR;
    ss.nkeys = (int)q.nkeys;
    const char *proj = sx_api_strf(r, "%d", r->project_id);
    if (!proj) return sx_api_fail(r, 500, "internal", "out of memory");

    /* 1. The series and their labels, once per series. */
    params[np++] = proj;
    params[np++] = q.name;
    sx_buf_init(&sql, 16384);
    ok &= sx_buf_puts(&sql, "SELECT id") == SX_OK;
    for (size_t k = 0; k < q.nkeys; k++) {
        params[np] = q.keys[k];
        ok &= sx_buf_printf(&sql, ", attributes ->> $%d", ++np) == SX_OK;
    }
    ok &= sx_buf_puts(&sql, " FROM metric_series WHERE project_id = $1 AND name = $2") == SX_OK;
    for (size_t i = 0; i < q.nfilters; i++) {
        params[np] = q.fk[i];
        params[np + 1] = q.fv[i];
        ok &= sx_buf_printf(&sql, " AND (attributes ->> $%d) = $%d", np + 1, np + 2) == SX_OK;
        np += 2;
    }
    ok &= sx_buf_puts(&sql, " ORDER BY id") == SX_OK;
    if (ok) ss.res = sx_api_exec(r, sql.data, np, params, "SELECT metric series");
    if (!ok) {
        sx_buf_term(&sql);
        return sx_api_fail(r, 500, "internal", "query too long");
    }
    if (!ss.res) goto done;
    ss.n = PQntuples(ss.res);
    if (group_series(&ss) != SX_OK) {
        sx_api_fail(r, 500, "internal", "out of memory");
        goto done;
    }

    /* 2. The steps: aligned to the epoch (floor, so negative times too). */
    int64_t rn = res_ns[q.res];
    int64_t from = q.win.from_ns - (((q.win.from_ns % rn) + rn) % rn);
    int64_t first = from - (((from % q.step_ns) + q.step_ns) % q.step_ns);
    long long nsteps = (q.win.to_ns - first) / q.step_ns + 1;
    if ((long long)ss.ngroups * nsteps > MAX_CELLS) {
        sx_api_fail(r, 400, "bad_request", "too many points (%d groups x %lld steps): use a larger step, a shorter "
                    "window, fewer groupBy keys or a filter", ss.ngroups, nsteps);
        goto done;
    }

    /* 3. The points of those series, only the columns the aggregation needs. */
    /* Added up in SQL per (group, step) when that makes fewer rows (not for
     * last and percentiles, which need each row). */
    int presum = q.agg != AGG_LAST && q.agg != AGG_PCT && (ss.ngroups < ss.n || q.step_ns > rn);
    if (ss.n > 0) {
        const char *pp[5];
        sx_buf_reset(&sql);
        ok &= sx_buf_putc(&sql, '{') == SX_OK;
        for (int i = 0; i < ss.n; i++) ok &= sx_buf_printf(&sql, "%s%lld", i ? "," : "", ss.id[i]) == SX_OK;
        ok &= sx_buf_putc(&sql, '}') == SX_OK;
        pp[0] = proj;
        pp[1] = sx_api_strf(r, "%s", sql.data);
        pp[2] = sx_api_strf(r, "%lld", (long long)from);
        pp[3] = sx_api_strf(r, "%lld", (long long)q.win.to_ns);
        sx_buf_reset(&sql);
        ok &= sx_buf_putc(&sql, '{') == SX_OK;
        for (int i = 0; i < ss.n; i++) ok &= sx_buf_printf(&sql, "%s%d", i ? "," : "", ss.group[i]) == SX_OK;
        ok &= sx_buf_putc(&sql, '}') == SX_OK;
        pp[4] = sx_api_strf(r, "%s", sql.data);
        const char *cols;
        switch (q.agg) {
        case AGG_SUM:
        case AGG_RATE: cols = "sum"; break;
        case AGG_COUNT: cols = "count"; break;
        case AGG_AVG: cols = "sum, count"; break;
        case AGG_MIN: cols = "min"; break;
        case AGG_MAX: cols = "max"; break;
        case AGG_LAST: cols = "last"; break;
        default:
            cols = "bounds::text, bucket_counts::text, exp_scale, exp_zero, exp_pos_offset, exp_pos::text, "
                   "exp_neg_offset, exp_neg::text, q_quantiles::text, q_values::text, count";
            break;
        }
        sx_buf_reset(&sql);
        if (presum) {
            const char *aggcols = q.agg == AGG_AVG     ? "sum(p.sum), sum(p.count)"
                                  : q.agg == AGG_COUNT ? "sum(p.count)"
                                  : q.agg == AGG_MIN   ? "min(p.min)"
                                  : q.agg == AGG_MAX   ? "max(p.max)"
                                                       : "sum(p.sum)";
            ok &= sx_buf_printf(&sql,
                                "SELECT g.gid, p.%s - (((p.%s %% %lld) + %lld) %% %lld) AS t, %s FROM %s p "
                                "JOIN unnest($2::bigint[], $5::integer[]) AS g(id, gid) ON g.id = p.series_id "
                                "WHERE p.project_id = $1 AND p.series_id = ANY ($2::bigint[]) AND p.%s >= $3 AND p.%s <= $4",
                                tcol[q.res], tcol[q.res], (long long)q.step_ns, (long long)q.step_ns,
                                (long long)q.step_ns, aggcols, table[q.res], tcol[q.res], tcol[q.res]) == SX_OK;
            if (q.agg == AGG_MIN || q.agg == AGG_MAX) ok &= sx_buf_printf(&sql, " AND p.%s IS NOT NULL", cols) == SX_OK;
            ok &= sx_buf_puts(&sql, " GROUP BY 1, 2") == SX_OK;
        } else {
            ok &= sx_buf_printf(&sql, "SELECT series_id, %s, %s FROM %s WHERE project_id = $1 AND series_id = ANY ($2::bigint[]) "
                                      "AND %s >= $3 AND %s <= $4",
                                tcol[q.res], cols, table[q.res], tcol[q.res], tcol[q.res]) == SX_OK;
        }
        if (!presum && (q.agg == AGG_MIN || q.agg == AGG_MAX || q.agg == AGG_LAST))
            ok &= sx_buf_printf(&sql, " AND %s IS NOT NULL", cols) == SX_OK;
        if (q.agg == AGG_PCT)
            ok &= sx_buf_puts(&sql, " AND (bucket_counts IS NOT NULL OR exp_scale IS NOT NULL OR q_values IS NOT NULL)") ==
                  SX_OK;
        if (!ok || !pp[1] || !pp[2] || !pp[3] || !pp[4]) {
            sx_api_fail(r, 500, "internal", "query too long");
            goto done;
        }
        if (!(pts = sx_api_exec(r, sql.data, presum ? 5 : 4, pp, "SELECT metric points"))) goto done;
    }

    /* 4. Added up per (group, step). */
    accs = calloc((size_t)(ss.ngroups ? ss.ngroups : 1) * (size_t)nsteps, sizeof(*accs));
    if (!accs) {
        sx_api_fail(r, 500, "internal", "out of memory");
        goto done;
    }
    for (int i = 0, n = pts ? PQntuples(pts) : 0; i < n; i++) {
        long long sid = col_ll(pts, i, 0);
        int64_t t = col_ll(pts, i, 1);
        int g = presum ? (int)sid : group_of(&ss, sid);
        if (g < 0 || g >= ss.ngroups || t < first) continue;
        long long st = (t - first) / q.step_ns;
        if (st >= nsteps) continue;
        struct acc *a = &accs[(size_t)g * (size_t)nsteps + (size_t)st];
        switch (q.agg) {
        case AGG_SUM:
        case AGG_RATE: a->sum += col_d(pts, i, 2); break;
        case AGG_COUNT: a->count += col_d(pts, i, 2); break;
        case AGG_AVG:
            a->sum += col_d(pts, i, 2);
            a->count += col_d(pts, i, 3);
            break;
        case AGG_MIN: {
            double v = col_d(pts, i, 2);
            if (!a->has_min || v < a->min) a->min = v, a->has_min = 1;
            break;
        }
        case AGG_MAX: {
            double v = col_d(pts, i, 2);
            if (!a->has_max || v > a->max) a->max = v, a->has_max = 1;
            break;
        }
        case AGG_LAST:
            if (!a->has_last || t > a->last_t || (t == a->last_t && sid < a->last_series))
                a->last = col_d(pts, i, 2), a->last_t = t, a->last_series = sid, a->has_last = 1;
            break;
        case AGG_PCT:
            if (!a->pct) {
                if ((npcts + 1) * sizeof(struct pct) > MAX_PCT_BYTES) {
                    sx_api_fail(r, 400, "bad_request", "too many points for percentiles: use a larger step, a "
                                                       "shorter window or fewer groupBy keys");
                    goto done;
                }
                struct pct **np2 = realloc(pcts, (npcts + 1) * sizeof(*pcts));
                if (!np2 || !(a->pct = calloc(1, sizeof(struct pct)))) {
                    if (np2) pcts = np2;
                    sx_api_fail(r, 500, "internal", "out of memory");
                    goto done;
                }
                pcts = np2;
                pcts[npcts++] = a->pct;
                a->pct->nb = -1;
            }
            add_pct(a->pct, pts, i, 2, q.q);
            break;
        }
        a->any = 1;
    }

    /* 5. The answer. */
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "resolution");
    sx_json_strz(&w, res_name[q.res]);
    sx_json_key(&w, "stepMs");
    sx_json_int(&w, q.step_ns / 1000000);
    sx_json_key(&w, "series");
    sx_json_arr_open(&w);
    for (int g = 0; g < ss.ngroups; g++) {
        const struct acc *row = &accs[(size_t)g * (size_t)nsteps];
        long long st = 0;
        while (st < nsteps && !row[st].any) st++;
        if (st == nsteps) continue;
        sx_json_obj_open(&w);
        write_labels(&w, &q, &ss, ss.first[g]);
        sx_json_key(&w, "points");
        sx_json_arr_open(&w);
        for (; st < nsteps; st++) {
            const struct acc *a = &row[st];
            if (!a->any) continue;
            double v = NAN;
            switch (q.agg) {
            case AGG_SUM: v = a->sum; break;
            case AGG_COUNT: v = a->count; break;
            case AGG_AVG: v = a->count > 0 ? a->sum / a->count : NAN; break;
            case AGG_RATE: v = a->sum / ((double)q.step_ns / 1e9); break;
            case AGG_MIN: v = a->has_min ? a->min : NAN; break;
            case AGG_MAX: v = a->has_max ? a->max : NAN; break;
            case AGG_LAST: v = a->has_last ? a->last : NAN; break;
            case AGG_PCT: v = a->pct ? pct_value(a->pct, q.q) : NAN; break;
            }
            sx_json_arr_open(&w);
            sx_json_int(&w, (first + st * q.step_ns) / 1000000);
            sx_json_double(&w, v); /* null when there is no value */
            sx_json_arr_close(&w);
        }
        sx_json_arr_close(&w);
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_obj_close(&w);
    if (w.err) {
        sx_api_fail(r, 500, "internal", "response too large");
        goto done;
    }
    r->status = 200;
    rc = SX_OK;

done:
    sx_buf_term(&sql);
    for (size_t i = 0; i < npcts; i++) free(pcts[i]);
    free(pcts);
    free(accs);
    if (pts) PQclear(pts);
    if (ss.res) PQclear(ss.res);
    free(ss.id);
    free(ss.group);
    free(ss.first);
    return rc;
}
