/* rollup_write.c: sextant-rollup's rows: deltas into minute and hour rows,
 * and their PostgreSQL staging (COPY) and upserts, raw points and their
 * expiry. See the design note in rollup.c. */
#include "rollup_int.h"

/* The last row of *rows if it is (series, bucket), else a new cleared one. */
static struct row *row_in(struct row **rows, size_t *n, size_t *cap, long long series, long long project,
                          int64_t bucket)
{
    if (*n && (*rows)[*n - 1].series == series && (*rows)[*n - 1].bucket == bucket) return &(*rows)[*n - 1];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *rows = xrealloc(*rows, *cap * sizeof(**rows));
    }
    struct row *w = &(*rows)[(*n)++];
    memset(w, 0, offsetof(struct row, buckets));
    w->bounds = NULL;
    w->exp.have = 0;
    w->summary = NULL;
    w->series = series;
    w->project = project;
    w->bucket = bucket;
    return w;
}

static void minmax(struct row *w, double lo, double hi)
{
    if (!w->has_minmax || lo < w->min) w->min = lo;
    if (!w->has_minmax || hi > w->max) w->max = hi;
    w->has_minmax = 1;
}

/* Takes a newer last value and summary point (by point time). */
static void take_last(struct row *w, uint64_t t, int has_last, double last, const summary_point_t *summary)
{
    if (w->last_ns && t < w->last_ns) return;
    w->last_ns = t;
    if (has_last) w->last = last, w->has_last = 1;
    if (summary) w->summary = summary;
}

/* Adds explicit bucket deltas (nb of them, bounds) into w. */
static void add_buckets(struct row *w, const uint64_t *db, size_t nb, const double *bounds)
{
    if (w->nb && (w->nb != nb || memcmp(w->bounds, bounds, (nb - 1) * sizeof(double)) != 0)) {
        /* Bounds changed inside one bucket: keep the newest layout. */
        w->nb = 0;
    }
    if (!w->nb && nb) {
        memset(w->buckets, 0, sizeof(w->buckets));
        w->nb = nb;
        w->bounds = bounds;
    }
    for (size_t b = 0; b < nb; b++) w->buckets[b] += db[b];
}

/* Adds minute row m into hour row h. */
static void merge_row(struct row *h, const struct row *m)
{
    h->count += m->count;
    h->sum += m->sum;
    if (m->has_minmax) minmax(h, m->min, m->max);
    if (m->last_ns) take_last(h, m->last_ns, m->has_last, m->last, m->summary);
    if (m->nb) add_buckets(h, m->buckets, m->nb, m->bounds);
    if (m->exp.have && sx_rollup_exp_merge(&h->exp, &m->exp) != SX_OK)
        sx_warn("exponential buckets of series %lld out of range; merged row keeps the older ones", h->series);
}

static struct raw *raw_add(struct rollup *R, const struct obs *o)
{
    if (R->raw_n == R->raw_cap) {
        R->raw_cap = R->raw_cap ? R->raw_cap * 2 : 256;
        R->raw = xrealloc(R->raw, R->raw_cap * sizeof(*R->raw));
    }
    struct raw *w = &R->raw[R->raw_n++];
    memset(w, 0, sizeof(*w));
    w->series = o->series;
    w->project = o->project;
    w->time_ns = SX_MIN(o->time_ns, (uint64_t)INT64_MAX); /* bigint */
    return w;
}

/* Locks, for the rest of the entry's transaction, every series whose rollup
 * reads what another entry wrote: cumulative series (their state) and
 * exponential histograms (their rows are merged in C). R->obs is sorted by
 * series, so locks are taken in one order by every instance: no deadlock.
 * SX_ERR on a database error. */
static int lock_series(struct rollup *R)
{
    long long last = 0;
    size_t n = 0;
    sx_buf_reset(&R->sql);
    sx_buf_putc(&R->sql, '{');
    for (size_t i = 0; i < R->obs_n; i++) {
        const struct obs *o = &R->obs[i];
        int shared = o->kind == OBS_SUM_CUM || o->kind == OBS_HIST_CUM || o->kind == OBS_EXP_CUM ||
                     o->kind == OBS_EXP_DELTA || o->kind == OBS_SUMMARY;
        if (!shared || o->series == last) continue;
        sx_buf_printf(&R->sql, "%s%lld", n ? "," : "", o->series);
        last = o->series;
        n++;
    }
    sx_buf_putc(&R->sql, '}');
    if (!n) return SX_OK;
    const char *params[1] = {R->sql.data};
    /* unnest keeps the array's (sorted) order; ids past 2^31 wrap, which
     * only risks a deadlock PostgreSQL detects (the entry is retried). */
    PGresult *r = sx_pg_query(R->pg,
                              "SELECT count(pg_advisory_xact_lock(" LOCK_CLASS ", (x % 2147483647)::integer)) "
                              "FROM unnest($1::bigint[]) AS x",
                              1, params, "pg_advisory_xact_lock");
    if (!r) return SX_ERR;
    PQclear(r);
    return SX_OK;
}

/* Lists in R->cum (series order) every cumulative series of R->obs (sorted)
 * and loads their states. SX_ERR on a Redis or database failure. */
static int cum_prepare(struct rollup *R)
{
    R->cum_n = 0;
    for (size_t i = 0; i < R->obs_n; i++) {
        const struct obs *o = &R->obs[i];
        int cumulative = o->kind == OBS_SUM_CUM || o->kind == OBS_HIST_CUM || o->kind == OBS_EXP_CUM ||
                         o->kind == OBS_SUMMARY;
        if (!cumulative || (R->cum_n && R->cum[R->cum_n - 1].series == o->series)) continue;
        if (R->cum_n == R->cum_cap) {
            R->cum_cap = R->cum_cap ? R->cum_cap * 2 : 64;
            R->cum = xrealloc(R->cum, R->cum_cap * sizeof(*R->cum));
        }
        struct cumchange *c = &R->cum[R->cum_n++];
        c->series = o->series, c->project = o->project, c->tag = o->ent, c->reply = NULL;
    }
    return R->cum_n ? cum_load_all(R) : SX_OK;
}

/* Loads an exponential histogram point into e; SX_ERR when out of range. */
static int exp_of(const exp_point_t *p, struct sx_rollup_exp *e)
{
    static const uint64_t none[1] = {0};
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *pos = p->positive, *neg = p->negative;
    return sx_rollup_exp_set(e, p->scale, p->zero_count, pos ? pos->offset : 0, pos ? pos->bucket_counts : none,
                             pos ? pos->n_bucket_counts : 0, neg ? neg->offset : 0, neg ? neg->bucket_counts : none,
                             neg ? neg->n_bucket_counts : 0);
}

static int row_idx_cmp(const void *a, const void *b, void *arg)
{
    const struct row *rows = arg;
    const struct row *x = &rows[*(const size_t *)a], *y = &rows[*(const size_t *)b];
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (x->series != y->series) return x->series < y->series ? -1 : 1;
    if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Makes R->rows one row per (series, minute), sorted. Rows come out sorted
 * by series, and within a series in entry order: a later entry's point in
 * an earlier minute starts a second row of that minute. Those are merged in
 * the order they were made (what upserting them one entry after another
 * would store), so one upsert never touches a row twice. */
static void merge_minutes(struct rollup *R)
{
    int sorted = 1;
    for (size_t i = 1; i < R->rows_n && sorted; i++)
        sorted = R->rows[i - 1].series != R->rows[i].series || R->rows[i - 1].bucket < R->rows[i].bucket;
    if (sorted) return;
    if (R->idx_cap < R->rows_n) {
        R->idx_cap = R->rows_n;
        R->idx = xrealloc(R->idx, R->idx_cap * sizeof(*R->idx));
    }
    if (R->mrows_cap < R->rows_n) {
        R->mrows_cap = R->rows_n;
        R->mrows = xrealloc(R->mrows, R->mrows_cap * sizeof(*R->mrows));
    }
    for (size_t i = 0; i < R->rows_n; i++) R->idx[i] = i;
    qsort_r(R->idx, R->rows_n, sizeof(*R->idx), row_idx_cmp, R->rows);
    size_t n = 0;
    for (size_t i = 0; i < R->rows_n; i++) {
        const struct row *m = &R->rows[R->idx[i]];
        if (n && R->mrows[n - 1].series == m->series && R->mrows[n - 1].bucket == m->bucket) merge_row(&R->mrows[n - 1], m);
        else R->mrows[n++] = *m;
    }
    struct row *t = R->rows;
    size_t cap = R->rows_cap;
    R->rows = R->mrows, R->rows_cap = R->mrows_cap, R->rows_n = n;
    R->mrows = t, R->mrows_cap = cap;
}

/* Computes deltas (locking the shared series and loading the states of
 * cumulative ones) and merges the sorted observations of the batch's fresh
 * entries into R->rows (minutes), R->hrows (hours), R->raw and R->cum.
 * Cumulative points not newer than their series' state are skipped
 * (sx_rollup_cum_stale). SX_ERR on a Redis or database failure. */
int build_rows(struct rollup *R)
{
    struct sx_rollup_exp ex, dex;
    R->rows_n = R->hrows_n = R->frows_n = R->raw_n = R->cum_n = 0;
    qsort(R->obs, R->obs_n, sizeof(*R->obs), obs_cmp);
    if (lock_series(R) != SX_OK || cum_prepare(R) != SX_OK) return SX_ERR;
    struct cumchange *cc = NULL;
    size_t ci = 0;
    int64_t raw_from = sx_now_ns() - R->cfg.metrics_raw_retention_s * 1000000000LL;
    for (size_t i = 0; i < R->obs_n; i++) {
        const struct obs *o = &R->obs[i];
        int cumulative = o->kind == OBS_SUM_CUM || o->kind == OBS_HIST_CUM || o->kind == OBS_EXP_CUM ||
                         o->kind == OBS_SUMMARY;
        if (cumulative) {
            while (R->cum[ci].series != o->series) ci++; /* both in series order; cum_prepare listed it */
            cc = &R->cum[ci];
            cc->tag = o->ent;
            if (sx_rollup_cum_stale(&cc->cur, o->start_ns, o->time_ns)) {
                R->st_stale++;
                continue;
            }
        }
        int64_t t = o->time_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)o->time_ns;
        struct row *w = row_in(&R->rows, &R->rows_n, &R->rows_cap, o->series, o->project, t / MINUTE_NS * MINUTE_NS);
        struct raw *rw = t >= raw_from ? raw_add(R, o) : NULL;
        long long dcount = 0;
        double dsum = 0;
        switch (o->kind) {
        case OBS_GAUGE:
        case OBS_SUM_DELTA:
        case OBS_SUM_CUM:
            dcount = 1;
            dsum = o->kind == OBS_SUM_CUM ? sx_rollup_sum_delta(&cc->cur, o->start_ns, o->value, o->monotonic, NULL)
                                          : o->value;
            minmax(w, o->value, o->value);
            take_last(w, o->time_ns, 1, o->value, NULL);
            if (rw) rw->min = rw->max = rw->last = o->value, rw->has_minmax = rw->has_last = 1;
            break;
        case OBS_HIST_DELTA:
        case OBS_HIST_CUM: {
            const hist_point_t *h = o->hp;
            uint64_t dc = h->count, db[SX_ROLLUP_MAX_BUCKETS];
            double ds = h->sum_present_case ? h->sum : 0;
            size_t nb = h->n_bucket_counts;
            if (nb) memcpy(db, h->bucket_counts, nb * sizeof(db[0]));
            if (o->kind == OBS_HIST_CUM &&
                sx_rollup_hist_delta(&cc->cur, o->start_ns, h->count, ds, h->bucket_counts, nb, &dc, &ds, db, NULL) !=
                    SX_OK)
                continue;
            add_buckets(w, db, nb, h->explicit_bounds);
            dcount = (long long)dc, dsum = ds;
            take_last(w, o->time_ns, 0, 0, NULL);
            if (h->min_present_case && h->max_present_case && dc > 0) {
                minmax(w, h->min, h->max);
                if (rw) rw->min = h->min, rw->max = h->max, rw->has_minmax = 1;
            }
            break;
        }
        case OBS_EXP_DELTA:
        case OBS_EXP_CUM: {
            const exp_point_t *e = o->ep;
            uint64_t dc = e->count;
            double ds = e->sum_present_case ? e->sum : 0;
            if (exp_of(e, &ex) != SX_OK) {
                R->st_skipped++;
                continue;
            }
            if (o->kind == OBS_EXP_CUM) sx_rollup_exp_delta(&cc->cur, o->start_ns, e->count, ds, &ex, &dc, &ds, &dex, NULL);
            else dex = ex;
            if (sx_rollup_exp_merge(&w->exp, &dex) != SX_OK) {
                R->st_skipped++;
                if (o->kind == OBS_EXP_CUM) cc->cur.time_ns = o->time_ns;
                continue;
            }
            dcount = (long long)dc, dsum = ds;
            take_last(w, o->time_ns, 0, 0, NULL);
            if (e->min_present_case && e->max_present_case && dc > 0) {
                minmax(w, e->min, e->max);
                if (rw) rw->min = e->min, rw->max = e->max, rw->has_minmax = 1;
            }
            break;
        }
        case OBS_SUMMARY: {
            const summary_point_t *sp = o->sp;
            uint64_t dc;
            double ds;
            sx_rollup_hist_delta(&cc->cur, o->start_ns, sp->count, sp->sum, NULL, 0, &dc, &ds, NULL, NULL);
            dcount = (long long)dc, dsum = ds;
            take_last(w, o->time_ns, 0, 0, sp);
            break;
        }
        }
        if (cumulative) cc->cur.time_ns = o->time_ns;
        w->count += dcount;
        w->sum += dsum;
        if (rw) rw->count = dcount, rw->sum = dsum;
    }
    merge_minutes(R);
    /* Hour and 5-minute rows: the minute rows merged (they are sorted by
     * series, then time). */
    for (size_t i = 0; i < R->rows_n; i++) {
        const struct row *m = &R->rows[i];
        merge_row(row_in(&R->hrows, &R->hrows_n, &R->hrows_cap, m->series, m->project, m->bucket / HOUR_NS * HOUR_NS),
                  m);
        merge_row(row_in(&R->frows, &R->frows_n, &R->frows_cap, m->series, m->project,
                         m->bucket / FIVE_MIN_NS * FIVE_MIN_NS),
                  m);
    }
    return SX_OK;
}

/* Parses a PostgreSQL bigint array text ("{1,2}") into out (at most max);
 * the count, or -1 when malformed or too long. */
static long parse_u64_array(const char *s, uint64_t *out, size_t max)
{
    size_t n = 0;
    if (*s != '{') return -1;
    s++;
    if (*s == '}') return 0;
    for (;;) {
        char *end;
        if (n == max || *s == '-') return -1;
        errno = 0;
        out[n++] = strtoull(s, &end, 10);
        if (end == s || errno) return -1;
        if (*end == '}') return (long)n;
        if (*end != ',') return -1;
        s = end + 1;
    }
}

static int row_key_cmp(long long series, int64_t bucket, const struct row *w)
{
    if (series != w->series) return series < w->series ? -1 : 1;
    return bucket < w->bucket ? -1 : bucket > w->bucket;
}

/* Merges what the table's rows already hold for the exponential buckets of
 * rows (sorted by series and bucket) into them, so that the upsert writes
 * the merged buckets: one SELECT ... FOR UPDATE of every such row (their
 * series are locked too). SX_ERR on a database error. */
static int exp_merge_stored(struct rollup *R, const char *table, struct row *rows, size_t nrows)
{
    char sql[640];
    size_t n = 0, off[3];
    int ok = 1;
    sx_buf_reset(&R->copy);
    for (int c = 0; c < 3; c++) {
        off[c] = R->copy.len;
        ok &= sx_buf_putc(&R->copy, '{') == SX_OK;
        n = 0;
        for (size_t i = 0; i < nrows; i++) {
            const struct row *w = &rows[i];
            if (!w->exp.have) continue;
            if (n++) ok &= sx_buf_putc(&R->copy, ',') == SX_OK;
            ok &= sx_buf_printf(&R->copy, "%lld", c == 0 ? w->project : c == 1 ? w->series : (long long)w->bucket) == SX_OK;
        }
        ok &= sx_buf_putc(&R->copy, '}') == SX_OK && sx_buf_putc(&R->copy, '\0') == SX_OK;
    }
    if (!n) return SX_OK;
    if (!ok) {
        sx_warn("exponential rows of one batch over %zu bytes", (size_t)COPY_MAX);
        return SX_ERR;
    }
    snprintf(sql, sizeof(sql),
             "SELECT t.series_id, t.bucket_start_ns, t.exp_scale, t.exp_zero, t.exp_pos_offset, t.exp_pos::text, "
             "t.exp_neg_offset, t.exp_neg::text FROM %s t JOIN unnest($1::int[], $2::bigint[], $3::bigint[]) AS "
             "u(p, s, b) ON t.project_id = u.p AND t.series_id = u.s AND t.bucket_start_ns = u.b "
             "WHERE t.exp_scale IS NOT NULL ORDER BY 1, 2 FOR UPDATE OF t",
             table);
    const char *params[3] = {R->copy.data + off[0], R->copy.data + off[1], R->copy.data + off[2]};
    PGresult *r = sx_pg_query(R->pg, sql, 3, params, "exp buckets select");
    if (!r) return SX_ERR;
    for (int row = 0; row < PQntuples(r); row++) {
        long long series = strtoll(PQgetvalue(r, row, 0), NULL, 10);
        int64_t bucket = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        size_t lo = 0, hi = nrows;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (row_key_cmp(series, bucket, &rows[mid]) > 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo == nrows || row_key_cmp(series, bucket, &rows[lo]) != 0 || !rows[lo].exp.have) continue;
        struct row *w = &rows[lo];
        static struct sx_rollup_exp old;
        memset(&old, 0, sizeof(old));
        old.have = 1;
        old.scale = (int32_t)strtol(PQgetvalue(r, row, 2), NULL, 10);
        old.zero = strtoull(PQgetvalue(r, row, 3), NULL, 10);
        old.pos.offset = (int32_t)strtol(PQgetvalue(r, row, 4), NULL, 10);
        old.neg.offset = (int32_t)strtol(PQgetvalue(r, row, 6), NULL, 10);
        long np = parse_u64_array(PQgetvalue(r, row, 5), old.pos.counts, SX_ROLLUP_EXP_MAX);
        long nn = parse_u64_array(PQgetvalue(r, row, 7), old.neg.counts, SX_ROLLUP_EXP_MAX);
        if (np < 0 || nn < 0 || old.scale < SX_ROLLUP_EXP_MIN_SCALE || old.scale > 20) {
            sx_warn("malformed exponential buckets in %s for series %lld; replacing them", table, series);
        } else {
            old.pos.n = (size_t)np, old.neg.n = (size_t)nn;
            if (sx_rollup_exp_merge(&old, &w->exp) == SX_OK) w->exp = old;
            else sx_warn("exponential buckets of series %lld out of range; keeping the newest", series);
        }
    }
    PQclear(r);
    return SX_OK;
}

static int put_side(struct sx_buf *b, const struct sx_rollup_exp_side *side)
{
    int ok = sx_buf_putc(b, '{') == SX_OK;
    for (size_t i = 0; i < side->n; i++) ok &= sx_buf_printf(b, "%s%" PRIu64, i ? "," : "", side->counts[i]) == SX_OK;
    return ok && sx_buf_putc(b, '}') == SX_OK ? SX_OK : SX_ERR;
}

/* A COPY text field: tab, then the double, or \N when absent. */
static int put_opt_double(struct sx_buf *b, int have, double v)
{
    return have ? sx_buf_printf(b, "\t%.17g", v) : sx_buf_puts(b, "\t\\N");
}

#define ROW_COLUMNS                                                                                                    \
    "project_id, series_id, bucket_start_ns, count, sum, min, max, last, bucket_counts, bounds, last_ns, exp_scale, "  \
    "exp_zero, exp_pos_offset, exp_pos, exp_neg_offset, exp_neg, q_quantiles, q_values"

/* One row as COPY text (ROW_COLUMNS) into R->copy. SX_ERR when full. */
static int copy_row(struct rollup *R, const struct row *w)
{
    struct sx_buf *b = &R->copy;
    int ok = sx_buf_printf(b, "%lld\t%lld\t%" PRId64 "\t%lld\t%.17g", w->project, w->series, w->bucket, w->count,
                           w->sum) == SX_OK;
    ok &= put_opt_double(b, w->has_minmax, w->min) == SX_OK;
    ok &= put_opt_double(b, w->has_minmax, w->max) == SX_OK;
    ok &= put_opt_double(b, w->has_last, w->last) == SX_OK;
    if (w->nb) {
        ok &= sx_buf_puts(b, "\t{") == SX_OK;
        for (size_t i = 0; i < w->nb; i++) ok &= sx_buf_printf(b, "%s%" PRIu64, i ? "," : "", w->buckets[i]) == SX_OK;
        ok &= sx_buf_puts(b, "}\t{") == SX_OK;
        for (size_t i = 0; i + 1 < w->nb; i++) ok &= sx_buf_printf(b, "%s%.17g", i ? "," : "", w->bounds[i]) == SX_OK;
        ok &= sx_buf_putc(b, '}') == SX_OK;
    } else {
        ok &= sx_buf_puts(b, "\t\\N\t\\N") == SX_OK;
    }
    ok &= (w->last_ns ? sx_buf_printf(b, "\t%" PRIu64, SX_MIN(w->last_ns, (uint64_t)INT64_MAX))
                      : sx_buf_puts(b, "\t\\N")) == SX_OK;
    if (w->exp.have) {
        ok &= sx_buf_printf(b, "\t%" PRId32 "\t%" PRIu64 "\t%" PRId32 "\t", w->exp.scale, w->exp.zero,
                            w->exp.pos.offset) == SX_OK;
        ok &= put_side(b, &w->exp.pos) == SX_OK;
        ok &= sx_buf_printf(b, "\t%" PRId32 "\t", w->exp.neg.offset) == SX_OK;
        ok &= put_side(b, &w->exp.neg) == SX_OK;
    } else {
        ok &= sx_buf_puts(b, "\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N") == SX_OK;
    }
    if (w->summary && w->summary->n_quantile_values) {
        size_t nq = SX_MIN(w->summary->n_quantile_values, (size_t)MAX_QUANTILES);
        ok &= sx_buf_puts(b, "\t{") == SX_OK;
        for (size_t q = 0; q < nq; q++)
            ok &= sx_buf_printf(b, "%s%.17g", q ? "," : "", w->summary->quantile_values[q]->quantile) == SX_OK;
        ok &= sx_buf_puts(b, "}\t{") == SX_OK;
        for (size_t q = 0; q < nq; q++)
            ok &= sx_buf_printf(b, "%s%.17g", q ? "," : "", w->summary->quantile_values[q]->value) == SX_OK;
        ok &= sx_buf_putc(b, '}') == SX_OK;
    } else {
        ok &= sx_buf_puts(b, "\t\\N\t\\N") == SX_OK;
    }
    return ok && sx_buf_putc(b, '\n') == SX_OK ? SX_OK : SX_ERR;
}

/* COPY R->copy with the given COPY statement; SX_ERR (logged) on failure. */
static int copy_in(struct rollup *R, const char *sql, const char *what)
{
    PGresult *res = PQexec(R->pg, sql);
    int ok = res && PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!ok) {
        sx_warn("COPY %s failed: %s", what, PQerrorMessage(R->pg));
        return SX_ERR;
    }
    ok = PQputCopyData(R->pg, R->copy.data, (int)R->copy.len) == 1;
    if (PQputCopyEnd(R->pg, ok ? NULL : "client failed") != 1) ok = 0;
    while ((res = PQgetResult(R->pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (ok) sx_warn("COPY %s failed: %s", what, PQresultErrorMessage(res));
            ok = 0;
        }
        PQclear(res);
    }
    return ok ? SX_OK : SX_ERR;
}

/* The upsert of the staged rows into metric_points_1m or metric_points_1h
 * (in key order, so concurrent instances lock rows in one order): adds
 * counts, sums and explicit buckets; min/max by LEAST/GREATEST; last and the
 * summary quantiles from the newer point; exponential buckets arrive merged
 * already (exp_merge_stored). The batch has one row per key. */
#define UPSERT_SQL(T, S)                                                                                               \
    "INSERT INTO " T " AS t (" ROW_COLUMNS ") SELECT " ROW_COLUMNS " FROM " S                                          \
    " ORDER BY project_id, series_id, bucket_start_ns "                                                               \
    "ON CONFLICT (project_id, series_id, bucket_start_ns) DO UPDATE SET "                                             \
    "count = t.count + EXCLUDED.count, sum = t.sum + EXCLUDED.sum, "                                                  \
    "min = LEAST(t.min, EXCLUDED.min), max = GREATEST(t.max, EXCLUDED.max), "                                         \
    "last = CASE WHEN EXCLUDED.last IS NOT NULL AND (t.last_ns IS NULL OR EXCLUDED.last_ns >= t.last_ns) "            \
    "THEN EXCLUDED.last ELSE t.last END, "                                                                            \
    "q_quantiles = CASE WHEN EXCLUDED.q_values IS NOT NULL AND (t.last_ns IS NULL OR EXCLUDED.last_ns >= "            \
    "t.last_ns) THEN EXCLUDED.q_quantiles ELSE t.q_quantiles END, "                                                   \
    "q_values = CASE WHEN EXCLUDED.q_values IS NOT NULL AND (t.last_ns IS NULL OR EXCLUDED.last_ns >= "               \
    "t.last_ns) THEN EXCLUDED.q_values ELSE t.q_values END, "                                                         \
    "last_ns = GREATEST(t.last_ns, EXCLUDED.last_ns), "                                                               \
    "bucket_counts = CASE WHEN EXCLUDED.bucket_counts IS NULL THEN t.bucket_counts "                                  \
    "WHEN t.bucket_counts IS NULL OR t.bounds IS DISTINCT FROM EXCLUDED.bounds THEN EXCLUDED.bucket_counts "          \
    "ELSE ARRAY(SELECT a + b FROM unnest(t.bucket_counts, EXCLUDED.bucket_counts) AS u(a, b)) END, "                 \
    "bounds = COALESCE(EXCLUDED.bounds, t.bounds), "                                                                  \
    "exp_scale = COALESCE(EXCLUDED.exp_scale, t.exp_scale), exp_zero = COALESCE(EXCLUDED.exp_zero, t.exp_zero), "     \
    "exp_pos_offset = COALESCE(EXCLUDED.exp_pos_offset, t.exp_pos_offset), "                                          \
    "exp_pos = COALESCE(EXCLUDED.exp_pos, t.exp_pos), exp_neg_offset = COALESCE(EXCLUDED.exp_neg_offset, "            \
    "t.exp_neg_offset), exp_neg = COALESCE(EXCLUDED.exp_neg, t.exp_neg)"

/* Upserts rows (sorted, one per key) into metric_points_1m, _1h or _5m:
 * stored exponential buckets merged in, COPY into the stage table, one
 * INSERT ... ON CONFLICT. SX_ERR on a database error. */
int write_rows(struct rollup *R, enum rollup_res res, struct row *rows, size_t nrows)
{
    static const char *const tables[] = {"metric_points_1m", "metric_points_1h", "metric_points_5m"};
    static const char *const stages[] = {"m1_stage", "h1_stage", "m5_stage"};
    static const char *const copies[] = {"COPY m1_stage (" ROW_COLUMNS ") FROM STDIN",
                                         "COPY h1_stage (" ROW_COLUMNS ") FROM STDIN",
                                         "COPY m5_stage (" ROW_COLUMNS ") FROM STDIN"};
    static const char *const upserts[] = {UPSERT_SQL("metric_points_1m", "m1_stage"),
                                          UPSERT_SQL("metric_points_1h", "h1_stage"),
                                          UPSERT_SQL("metric_points_5m", "m5_stage")};
    static const char *const whats[] = {"metric_points_1m upsert", "metric_points_1h upsert",
                                        "metric_points_5m upsert"};
    const char *table = tables[res];
    if (!nrows) return SX_OK;
    if (exp_merge_stored(R, table, rows, nrows) != SX_OK) return SX_ERR;
    sx_buf_reset(&R->copy);
    for (size_t i = 0; i < nrows; i++)
        if (copy_row(R, &rows[i]) != SX_OK) {
            sx_warn("%s rows of one batch over %zu bytes", table, (size_t)COPY_MAX);
            return SX_ERR;
        }
    if (copy_in(R, copies[res], stages[res]) != SX_OK) return SX_ERR;
    PGresult *r = sx_pg_query(R->pg, upserts[res], 0, NULL, whats[res]);
    if (!r) return SX_ERR;
    PQclear(r);
    return SX_OK;
}

/* COPYs R->raw into metric_points_raw. SX_ERR on a database error. */
int write_raw(struct rollup *R)
{
    struct sx_buf *b = &R->copy;
    int ok = 1;
    if (!R->raw_n) return SX_OK;
    sx_buf_reset(b);
    for (size_t i = 0; i < R->raw_n && ok; i++) {
        const struct raw *w = &R->raw[i];
        ok &= sx_buf_printf(b, "%lld\t%lld\t%" PRIu64 "\t%lld\t%.17g", w->project, w->series, w->time_ns, w->count,
                            w->sum) == SX_OK;
        ok &= put_opt_double(b, w->has_minmax, w->min) == SX_OK;
        ok &= put_opt_double(b, w->has_minmax, w->max) == SX_OK;
        ok &= put_opt_double(b, w->has_last, w->last) == SX_OK;
        ok &= sx_buf_putc(b, '\n') == SX_OK;
    }
    if (!ok) {
        sx_warn("raw points of one batch over %zu bytes", (size_t)COPY_MAX);
        return SX_ERR;
    }
    return copy_in(R, "COPY metric_points_raw (project_id, series_id, time_ns, count, sum, min, max, last) FROM STDIN",
                   "metric_points_raw");
}

/* Deletes raw points older than metrics_raw_retention_s, RAW_EXPIRE_BATCH
 * rows per statement (each its own short transaction), at most
 * RAW_EXPIRE_ROUNDS statements per call. Failures are logged; the next
 * call tries again. */
void raw_expire(struct rollup *R)
{
    char before[24];
    snprintf(before, sizeof(before), "%lld",
             (long long)(sx_now_ns() - R->cfg.metrics_raw_retention_s * 1000000000LL));
    const char *params[1] = {before};
    for (int i = 0; i < RAW_EXPIRE_ROUNDS && !stop_flag; i++) {
        PGresult *r = sx_pg_query(R->pg,
                                  "DELETE FROM metric_points_raw WHERE ctid = ANY (ARRAY(SELECT ctid FROM "
                                  "metric_points_raw WHERE time_ns < $1 LIMIT 5000))",
                                  1, params, "metric_points_raw expire");
        if (!r) return;
        long long n = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        R->st_expired += n;
        if (n < RAW_EXPIRE_BATCH) return;
    }
}
