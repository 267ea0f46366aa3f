/* rollup.c: sextant-rollup: reads the metrics stream (group "rollup") and rolls data points into 1-minute, 5-minute and 1-hour rows and raw points in PostgreSQL.
 *
 * Design: one thread; the entries of one XREADGROUP (up to READ_COUNT) are
 * one batch and one transaction, every step a set-based statement or one
 * pipelined Redis round trip whatever the batch's size:
 *   1. every entry is checked and unpacked (malformed ones are dead-lettered
 *      and acknowledged at once); its ledger key is SHA-256 of project id and
 *      body, as sextant-persist's. Each data point's series (metric name +
 *      point and resource attributes) comes from an in-memory cache; the
 *      series the cache lacks are created or found with ONE multi-row
 *      INSERT ... ON CONFLICT DO NOTHING RETURNING joined with what exists
 *      (run again for series another instance committed meanwhile),
 *      committed on its own (a series row without points is harmless);
 *   2. BEGIN; the entries' ledger rows go into persist_ledger (stream
 *      "metrics") with one INSERT ... ON CONFLICT DO NOTHING RETURNING the
 *      new keys, in key order. Only entries whose row is new ("fresh") are
 *      applied: an entry applied before (redelivery, another instance) never
 *      moves anything twice, and all of the batch commits or none of it;
 *   3. one statement takes pg_advisory_xact_lock(LOCK_CLASS, series) for
 *      every series whose rollup reads what another entry wrote (cumulative
 *      sums, histograms, exponential histograms and summaries; delta
 *      exponential histograms too, whose stored buckets are merged in C), in
 *      ascending series order so two instances never deadlock. The locks
 *      are held to COMMIT, so a second instance (same consumer group,
 *      --instance 2) that gets an entry of the same series waits here and
 *      then reads the state the first one committed;
 *   4. cumulative points become deltas against the series' previous
 *      cumulative point, kept in Redis under <prefix>:{p<project>}:cum:<series>
 *      (lib/rollup_math.h: sums, explicit and exponential histograms, and
 *      summary count/sum), all read with one pipeline of GETs. Points are
 *      taken per series entry by entry in stream order (then by time), so a
 *      batch moves each state exactly as the same entries one transaction
 *      each would. A point not newer than the state (time <= the state's
 *      time, start time not newer) arrived out of order (another instance,
 *      a late batch): it is skipped, because its counts are inside the newer
 *      cumulative value already and taking it for a reset would count them
 *      twice. Delta points and gauges are taken as they are. Points are
 *      merged into one row per (series, minute), (series, 5 minutes) and (series, hour) for
 *      the whole batch; exponential buckets of different scales are merged
 *      by downscaling to the smaller scale, and lower still to stay within
 *      SX_ROLLUP_EXP_MAX buckets per side, and the rows' stored buckets are
 *      read with one SELECT ... FOR UPDATE per table and merged in C (one
 *      implementation, unit-tested). The minute, 5-minute and hour rows and the
 *      raw points (unless already older than metrics_raw_retention_s) are
 *      each written with COPY (into temp stage tables for the rows) and one
 *      INSERT ... SELECT ... ON CONFLICT DO UPDATE in key order that adds to
 *      what the row holds;
 *   5. the new cumulative states are written to Redis (one pipeline) *tagged*
 *      with the ledger key of the last entry that moved each of them:
 *      "<key hex>|<new state>|<old state>". A reader that finds a tagged
 *      state asks the ledger (one SELECT for all tags) whether that entry
 *      committed and takes the new or the old state accordingly, so the
 *      state only moves with a COMMIT, whatever crashes in between. (Whoever
 *      commits that entry later had it fresh, so it rewrote the state of
 *      every series the entry touches: a committed tag never vouches for a
 *      state another transaction wrote. A tag of an entry fresh in the
 *      reader's own batch is a failed earlier attempt of it: old state.);
 *   6. COMMIT, then the untagged new states (an optimization: skips the
 *      ledger look-up next time), written only where the key still holds our
 *      tagged value (a Lua compare-and-set): after COMMIT the lock is gone
 *      and another instance may already have tagged a newer state; then one
 *      XACK for the batch.
 * A failure rolls the whole batch back; its entries are read again from our
 * pending list. XREADGROUP, XACK or XAUTOCLAIM answering NOGROUP (stream or
 * group deleted, e.g. FLUSHALL) recreate the group, which starts at "0": the
 * entries still in the stream come again and the ledger skips them.
 * Entries of this consumer left pending by a crash are re-read from "0" at
 * start; entries of other (dead) consumers are reclaimed with XAUTOCLAIM.
 * Acknowledged entries are trimmed below the oldest entry any group still
 * needs, as sextant-persist trims its streams. Every RAW_EXPIRE_EVERY_NS the
 * raw points older than metrics_raw_retention_s are deleted in batches of
 * RAW_EXPIRE_BATCH rows.
 *
 * Why rows live in PostgreSQL from the first point rather than as open
 * buckets in Redis flushed when closed: each batch's deltas are upserted in
 * the batch's own transaction with its ledger rows, so exactly-once is one
 * COMMIT (no second ledger for flushes, no window where a bucket is in
 * neither place), charts are live without reading Redis, and a restart or a
 * second instance needs no hand-over of open buckets. The cost is one upsert
 * per (series, minute) and (series, hour) per batch instead of one per
 * closed bucket, all in one statement per table; the per-series state that
 * must be read before writing (the cumulative points) is still in Redis.
 *
 * Limits: explicit histogram points with more than SX_ROLLUP_MAX_BUCKETS
 * buckets, and exponential histograms with a scale outside [-10, 20], are
 * skipped (counted in the stats line); summary rows keep at most
 * MAX_QUANTILES quantiles; a batch is at most READ_COUNT entries and its
 * COPY text at most COPY_MAX bytes (a bigger one is retried, and stalls).
 * Settings persist_block_ms and
 * persist_claim_idle_ms are shared with sextant-persist. */
#include "rollup_int.h"

volatile sig_atomic_t stop_flag; /* set by SIGTERM/SIGINT: finish the batch and exit */

static void on_signal(int sig)
{
    SX_UNUSED(sig);
    stop_flag = 1;
}

static void nap(int ms)
{
    for (int i = 0; i < ms / 50 && !stop_flag; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- Redis ------------------------------------------------------------------ */

static int redis_alive(const struct rollup *R)
{
    return R->rc && !R->rc->err;
}

void redis_failed(const struct rollup *R, const char *what, const redisReply *r)
{
    sx_redis_warn(R->rc, what, r);
}

static int redis_ready(struct rollup *R)
{
    if (redis_alive(R)) return SX_OK;
    int timeout = (int)R->cfg.persist_block_ms + 10000;
    if (sx_redis_ensure(&R->rc, &R->cfg, 2000, timeout) != SX_OK) return SX_ERR;
    if (sx_redis_group_create(R->rc, R->stream, GROUP) != SX_OK) {
        redisFree(R->rc);
        R->rc = NULL;
        return SX_ERR;
    }
    sx_info("connected to redis; group %s on %s, consumer %s", GROUP, R->stream, R->consumer);
    R->history = 1;
    return SX_OK;
}

static int xack(struct rollup *R, const char *id, size_t idlen)
{
    redisReply *r = redisCommand(R->rc, "XACK %s %s %b", R->stream, GROUP, id, idlen);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? SX_OK : SX_ERR;
    if (rc != SX_OK && !nogroup(R, r)) redis_failed(R, "XACK", r);
    if (r) freeReplyObject(r);
    if (rc == SX_OK) R->acked = 1;
    return rc;
}

/* Queues the live entries of the batch's applied entries whose project
 * sextant-sse watches (sent with the XACK, after COMMIT). A failure only
 * loses live entries. */
static void live_prepare(struct rollup *R)
{
    sx_buf_reset(&R->live);
    R->nlive = 0;
    for (size_t e = 0; e < R->ents_n; e++) {
        size_t total = 0;
        const struct ent *E = &R->ents[e];
        if (!E->fresh || !sx_live_watched(&R->watch, R->rc, &R->cfg, E->project)) continue;
        sx_buf_reset(&R->live_items);
        if (sx_live_metrics_json(&R->live_items, E->req, &total) == SX_OK && total > 0 &&
            sx_live_xadd_format(&R->live, &R->cfg, E->project, "metrics", total, R->live_items.data,
                                R->live_items.len) == SX_OK)
            R->nlive++;
    }
}

/* Acknowledges every entry of R->ents with one XACK, in one round trip with
 * the batch's live entries. */
static int xack_batch(struct rollup *R)
{
    if (!R->ents_n) return SX_OK;
    const char **argv = xrealloc(NULL, (R->ents_n + 3) * sizeof(*argv));
    size_t *argl = xrealloc(NULL, (R->ents_n + 3) * sizeof(*argl));
    argv[0] = "XACK", argl[0] = 4;
    argv[1] = R->stream, argl[1] = strlen(R->stream);
    argv[2] = GROUP, argl[2] = strlen(GROUP);
    for (size_t i = 0; i < R->ents_n; i++) argv[i + 3] = R->ents[i].id, argl[i + 3] = R->ents[i].idlen;
    redisAppendCommandArgv(R->rc, (int)R->ents_n + 3, argv, argl);
    free(argv);
    free(argl);
    size_t nlive = R->nlive && redisAppendFormattedCommand(R->rc, R->live.data, R->live.len) == REDIS_OK ? R->nlive : 0;
    R->nlive = 0;
    redisReply *r = NULL;
    if (redisGetReply(R->rc, (void **)&r) != REDIS_OK) r = NULL;
    int rc = r && r->type == REDIS_REPLY_INTEGER ? SX_OK : SX_ERR;
    if (rc != SX_OK && !nogroup(R, r)) redis_failed(R, "XACK", r);
    if (r) freeReplyObject(r);
    for (size_t i = 0; i < nlive && !R->rc->err; i++) {
        redisReply *x = NULL;
        if (redisGetReply(R->rc, (void **)&x) != REDIS_OK) break;
        if (x->type != REDIS_REPLY_STRING) redis_failed(R, "XADD live", x);
        freeReplyObject(x);
    }
    if (rc == SX_OK) R->acked = 1;
    return rc;
}

/* Copies an undecodable entry to <stream>:dead with an "error" field and
 * acknowledges it, atomically (lib/entry.h). */
static int dead_letter(struct rollup *R, const char *id, size_t idlen, const redisReply *fields, const char *why)
{
    int rc = sx_entry_dead_letter(R->rc, R->stream, R->dead, GROUP, id, idlen, fields, why);
    if (rc == SX_OK) R->st_dead++;
    return rc;
}

/* ---- one entry ---------------------------------------------------------------- */

static struct obs *obs_add(struct rollup *R)
{
    if (R->obs_n == R->obs_cap) {
        R->obs_cap = R->obs_cap ? R->obs_cap * 2 : 256;
        R->obs = xrealloc(R->obs, R->obs_cap * sizeof(*R->obs));
    }
    struct obs *o = &R->obs[R->obs_n];
    memset(o, 0, sizeof(*o));
    o->order = R->obs_n++;
    return o;
}

/* By series, then entry (a series' cumulative points apply entry by entry in
 * stream order, as if each entry were its own transaction), then time. */
int obs_cmp(const void *a, const void *b)
{
    const struct obs *x = a, *y = b;
    if (x->series != y->series) return x->series < y->series ? -1 : 1;
    if (x->ent != y->ent) return x->ent < y->ent ? -1 : 1;
    if (x->time_ns != y->time_ns) return x->time_ns < y->time_ns ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static double num_value(const num_point_t *p)
{
    return p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT ? (double)p->as_int
                                                                                                : p->as_double;
}

/* Whether an exponential histogram point can be rolled up. */
static int exp_point_ok(const exp_point_t *e)
{
    return e->scale >= SX_ROLLUP_EXP_MIN_SCALE && e->scale <= 20;
}

/* Appends the data points of entry e to R->obs, with their series or the
 * series to resolve (series_of). SX_ERR when a series' attributes are too
 * big (retry the batch later). */
static int collect(struct rollup *R, size_t e)
{
    long long project = R->ents[e].project;
    const sx_metrics_req *req = R->ents[e].req;
    size_t first = R->obs_n;
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        kv_t **res = rm->resource ? rm->resource->attributes : NULL;
        size_t nres = rm->resource ? rm->resource->n_attributes : 0;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const metric_t *m = sm->metrics[k];
                num_point_t **np = NULL;
                hist_point_t **hp = NULL;
                exp_point_t **ep = NULL;
                summary_point_t **sp = NULL;
                size_t n = 0;
                int temporality = 0, monotonic = 0;
                const char *type;
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    type = "gauge", np = m->gauge->data_points, n = m->gauge->n_data_points;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    type = "sum", np = m->sum->data_points, n = m->sum->n_data_points;
                    temporality = (int)m->sum->aggregation_temporality, monotonic = m->sum->is_monotonic;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    type = "histogram", hp = m->histogram->data_points, n = m->histogram->n_data_points;
                    temporality = (int)m->histogram->aggregation_temporality;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    type = "exp_histogram", ep = m->exponential_histogram->data_points;
                    n = m->exponential_histogram->n_data_points;
                    temporality = (int)m->exponential_histogram->aggregation_temporality;
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    /* OTLP summaries carry no temporality: count and sum are cumulative. */
                    type = "summary", sp = m->summary->data_points, n = m->summary->n_data_points;
                    temporality = 2;
                    break;
                default: continue;
                }
                const char *temp = temporality == 1 ? "delta" : temporality == 2 ? "cumulative" : "unspecified";
                for (size_t p = 0; p < n; p++) {
                    kv_t **pa;
                    size_t npa;
                    uint32_t flags;
                    uint64_t start, time;
                    if (np) pa = np[p]->attributes, npa = np[p]->n_attributes, flags = np[p]->flags,
                            start = np[p]->start_time_unix_nano, time = np[p]->time_unix_nano;
                    else if (hp) pa = hp[p]->attributes, npa = hp[p]->n_attributes, flags = hp[p]->flags,
                            start = hp[p]->start_time_unix_nano, time = hp[p]->time_unix_nano;
                    else if (ep) pa = ep[p]->attributes, npa = ep[p]->n_attributes, flags = ep[p]->flags,
                            start = ep[p]->start_time_unix_nano, time = ep[p]->time_unix_nano;
                    else pa = sp[p]->attributes, npa = sp[p]->n_attributes, flags = sp[p]->flags,
                            start = sp[p]->start_time_unix_nano, time = sp[p]->time_unix_nano;
                    if (flags & 1u) continue; /* no recorded value */
                    if (hp && (hp[p]->n_bucket_counts > SX_ROLLUP_MAX_BUCKETS ||
                               (hp[p]->n_bucket_counts && hp[p]->n_bucket_counts != hp[p]->n_explicit_bounds + 1))) {
                        R->st_skipped++;
                        continue;
                    }
                    if ((np && !isfinite(num_value(np[p]))) || (ep && !exp_point_ok(ep[p]))) {
                        R->st_skipped++;
                        continue;
                    }
                    long long sid;
                    size_t pend;
                    if (series_of(R, project, m, type, temp, monotonic, res, nres, pa, npa, &sid, &pend) != SX_OK)
                        return SX_ERR;
                    struct obs *o = obs_add(R);
                    o->series = sid;
                    o->pend = pend;
                    o->project = project;
                    o->ent = e;
                    o->monotonic = monotonic;
                    o->start_ns = start;
                    o->time_ns = time;
                    if (np) {
                        o->value = num_value(np[p]);
                        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE) o->kind = OBS_GAUGE;
                        else o->kind = temporality == 2 ? OBS_SUM_CUM : OBS_SUM_DELTA;
                    } else if (hp) {
                        o->hp = hp[p];
                        o->kind = temporality == 2 ? OBS_HIST_CUM : OBS_HIST_DELTA;
                    } else if (ep) {
                        o->ep = ep[p];
                        o->kind = temporality == 2 ? OBS_EXP_CUM : OBS_EXP_DELTA;
                    } else {
                        o->sp = sp[p];
                        o->kind = OBS_SUMMARY;
                    }
                }
            }
        }
    }
    R->ents[e].npoints = R->obs_n - first;
    return SX_OK;
}

/* Inserts the ledger rows of every entry of the batch with one statement
 * (lib/ledger.h: keys in one order, two instances never deadlock on them)
 * and sets fresh on the entries whose row is new (of equal keys, the first
 * in the stream). Returns the number of entries not fresh, or SX_ERR. */
static long long ledger(struct rollup *R)
{
    size_t nv = R->ents_n;
    if (R->litems_cap < nv) {
        R->litems_cap = nv;
        R->litems = xrealloc(R->litems, R->litems_cap * sizeof(*R->litems));
    }
    for (size_t i = 0; i < nv; i++)
        R->litems[i] = (struct sx_ledger_item){R->ents[i].hash, R->ents[i].id, R->ents[i].idlen, 0};
    long long dup = sx_ledger_insert(R->pg, LEDGER_STREAM, R->litems, nv, &R->copy);
    if (dup < 0) return SX_ERR;
    for (size_t i = 0; i < nv; i++) R->ents[i].fresh = R->litems[i].fresh;
    return dup;
}

/* Drops the observations of entries that are not fresh (applied before). */
static void keep_fresh_obs(struct rollup *R)
{
    size_t n = 0;
    for (size_t i = 0; i < R->obs_n; i++)
        if (R->ents[R->obs[i].ent].fresh) R->obs[n++] = R->obs[i];
    R->obs_n = n;
}

/* Checks one entry and adds it to R->ents (unpacked into the batch's
 * arena). Malformed entries are dead-lettered and acknowledged at once,
 * deleted ones acknowledged. SX_ERR on a Redis failure. */
static int take_entry(struct rollup *R, const redisReply *item)
{
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 || item->element[0]->type != REDIS_REPLY_STRING)
        return SX_OK;
    const char *id = item->element[0]->str;
    size_t idlen = item->element[0]->len;
    const redisReply *fields = item->element[1];
    if (fields->type == REDIS_REPLY_NIL) return xack(R, id, idlen); /* deleted while pending */
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) return dead_letter(R, id, idlen, NULL, "malformed entry");
    long long project = sx_entry_ll(sx_entry_field(fields, SX_FIELD_PROJECT), 1, INT32_MAX, 0);
    const redisReply *body = sx_entry_field(fields, SX_FIELD_BODY);
    if (!project) return dead_letter(R, id, idlen, fields, "missing or invalid project id field 'p'");
    if (!body || body->type != REDIS_REPLY_STRING) return dead_letter(R, id, idlen, fields, "missing body field 'b'");

    ProtobufCAllocator pa;
    sx_arena_pb_allocator(R->arena, &pa);
    sx_metrics_req *req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
        &pa, body->len, (const uint8_t *)body->str);
    if (!req) return dead_letter(R, id, idlen, fields, "protobuf unpack of field 'b' failed");
    if (R->ents_n == R->ents_cap) {
        R->ents_cap = R->ents_cap ? R->ents_cap * 2 : READ_COUNT;
        R->ents = xrealloc(R->ents, R->ents_cap * sizeof(*R->ents));
    }
    struct ent *e = &R->ents[R->ents_n++];
    sx_entry_key(project, body->str, body->len, e->hash);
    e->id = id, e->idlen = idlen, e->project = project, e->req = req, e->npoints = 0, e->fresh = 0;
    return SX_OK;
}

/* Applies the entries of one read as one batch (see the design note). SX_OK
 * when every entry is done (applied, already applied or dead-lettered) and
 * acknowledged; SX_ERR to retry them all later. */
static int process_batch(struct rollup *R, const redisReply *arr)
{
    R->ents_n = R->pends_n = R->obs_n = R->cum_n = 0;
    sx_buf_reset(&R->pjson);
    sx_arena_reset(R->arena);
    if (arr->type != REDIS_REPLY_ARRAY) return SX_OK;
    for (size_t i = 0; i < arr->elements && !stop_flag; i++)
        if (take_entry(R, arr->element[i]) != SX_OK) return SX_ERR;
    if (!R->ents_n || stop_flag) return stop_flag ? SX_ERR : SX_OK;

    int64_t t0 = sx_mono_ns();
    if (pg_ready(R) != SX_OK) return SX_ERR;
    for (size_t e = 0; e < R->ents_n; e++)
        if (collect(R, e) != SX_OK) goto forget;
    if (series_resolve(R) != SX_OK) goto forget;
    for (size_t i = 0; i < R->obs_n; i++)
        if (R->obs[i].pend != NO_PEND) R->obs[i].series = R->pends[R->obs[i].pend].id;

    if (sx_pg_exec(R->pg, "BEGIN", "BEGIN") != SX_OK) return SX_ERR;
    long long dup = ledger(R);
    if (dup < 0) goto rollback;
    keep_fresh_obs(R);
    long long points = (long long)R->obs_n;
    if (build_rows(R) != SX_OK || write_rows(R, ROLLUP_1M, R->rows, R->rows_n) != SX_OK ||
        write_rows(R, ROLLUP_5M, R->frows, R->frows_n) != SX_OK || write_rows(R, ROLLUP_1H, R->hrows, R->hrows_n) != SX_OK ||
        write_raw(R) != SX_OK)
        goto rollback;
    if (R->cum_n && cum_store(R, 1) != SX_OK) goto rollback;
    if (sx_pg_exec(R->pg, "COMMIT", "COMMIT") != SX_OK) return SX_ERR;
    R->st_entries += (long long)R->ents_n - dup;
    R->st_dup += dup;
    R->st_points += points;
    R->st_batches++;
    R->st_db_ms += (double)(sx_mono_ns() - t0) / 1e6;
    if (R->cum_n) cum_store(R, 0); /* best effort: the tagged state is right too */
    live_prepare(R);
    return xack_batch(R);

rollback:
    if (R->pg && PQstatus(R->pg) == CONNECTION_OK) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
    return SX_ERR;
forget:
    cache_clear(R); /* it holds the batch's unresolved series */
    return SX_ERR;
}

/* One XREADGROUP: our pending entries from "0" while history is set, else
 * new ones (blocking). SX_ERR on a failure (back off). */
static int read_cycle(struct rollup *R)
{
    char count[16], block[24];
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(block, sizeof(block), "%lld", R->cfg.persist_block_ms);
    const char *argv[] = {"XREADGROUP", "GROUP", GROUP,     R->consumer, "COUNT", count, "BLOCK",
                          block,        "STREAMS", R->stream, R->history ? "0" : ">"};
    int argc = (int)SX_ARRAY_LEN(argv);
    if (R->history) { /* no BLOCK for history */
        argv[6] = "STREAMS", argv[7] = R->stream, argv[8] = "0";
        argc = 9;
    }
    redisReply *r = redisCommandArgv(R->rc, argc, argv, NULL);
    if (!r || (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL)) {
        int gone = nogroup(R, r);
        if (!gone) redis_failed(R, "XREADGROUP", r);
        if (r) freeReplyObject(r);
        return gone ? SX_OK : SX_ERR;
    }
    size_t got = 0;
    int rc = SX_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        got = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
        rc = process_batch(R, entries);
    }
    freeReplyObject(r);
    if (rc != SX_OK) {
        R->history = 1; /* retry our pending entries */
        return SX_ERR;
    }
    if (R->history && got == 0) {
        R->history = 0;
        sx_info("own pending entries done; reading new entries");
    }
    return SX_OK;
}

/* Reclaims entries idle longer than persist_claim_idle_ms from any consumer
 * of the group (a crashed instance) and processes them. */
static void claim_cycle(struct rollup *R)
{
    char cursor[64] = "0-0", idle[24];
    long long claimed = 0;
    snprintf(idle, sizeof(idle), "%lld", R->cfg.persist_claim_idle_ms);
    do {
        redisReply *r = redisCommand(R->rc, "XAUTOCLAIM %s %s %s %s %s COUNT %d", R->stream, GROUP, R->consumer, idle,
                                     cursor, READ_COUNT);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            if (!nogroup(R, r)) redis_failed(R, "XAUTOCLAIM", r);
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        const redisReply *entries = r->element[1];
        int rc = process_batch(R, entries);
        if (rc == SX_OK && entries->type == REDIS_REPLY_ARRAY) claimed += (long long)entries->elements;
        freeReplyObject(r);
        if (rc != SX_OK) break;
    } while (strcmp(cursor, "0-0") != 0 && !stop_flag);
    if (claimed) sx_info("reclaimed %lld idle pending entries", claimed);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sextant-rollup [--config FILE] [--set name=value]... [--instance NAME] [--help]\n"
            "\n"
            "Two threads, each with its own Redis and PostgreSQL connections:\n"
            "  metrics  reads the metrics stream (consumer group \"rollup\") and rolls data points into\n"
            "           metric_series, metric_points_1m, metric_points_1h and metric_points_raw, one\n"
            "           transaction per read of up to 64 entries, each entry applied exactly once;\n"
            "  spans    reads the spans stream (consumer group \"rollup\") and rolls spans into\n"
            "           red_1m (requests, errors, durations per operation), edges_1m (service map)\n"
            "           and db_statements_1m (database statements), one transaction per read.\n"
            "Several instances may run at once on the same streams, each with its own --instance\n"
            "name: entries are shared out by the consumer groups, every count stays exact.\n"
            "\n"
            "  --config FILE     settings file (default: $SEXTANT_CONFIG, else $SEXTANT_HOME/sextant.conf,\n"
            "                    else ./var/sextant.conf; a missing default file is fine)\n"
            "  --set name=value  override one setting (may repeat; applied after the file)\n"
            "  --instance NAME   instance name (default 1); the consumer is rollup-NAME\n"
            "  --help            this text and every setting\n"
            "\n");
}

static void periodic(struct rollup *R)
{
    int64_t now = sx_mono_ns();
    if (now >= R->next_claim_ns && redis_alive(R)) {
        claim_cycle(R);
        R->next_claim_ns = now + R->cfg.persist_claim_idle_ms / 2 * 1000000LL;
    }
    if (R->acked && now >= R->next_trim_ns && redis_alive(R)) {
        R->acked = 0;
        sx_redis_trim_consumed(R->rc, R->stream);
        R->next_trim_ns = now + TRIM_EVERY_NS;
    }
    if (now >= R->next_expire_ns && pg_ready(R) == SX_OK) {
        raw_expire(R);
        R->next_expire_ns = now + RAW_EXPIRE_EVERY_NS;
    }
    if (now >= R->next_stats_ns) {
        if (R->st_entries || R->st_dup || R->st_dead || R->st_skipped || R->st_stale || R->st_expired)
            sx_info("rolled up %lld points of %lld entries in %lld transactions (%.0f ms); %lld already applied, "
                    "%lld dead-lettered, %lld points skipped (invalid or oversized), %lld older than their series' "
                    "cumulative state; %lld raw points expired",
                    R->st_points, R->st_entries, R->st_batches, R->st_db_ms, R->st_dup, R->st_dead, R->st_skipped,
                    R->st_stale, R->st_expired);
        R->st_points = R->st_entries = R->st_dup = R->st_dead = R->st_skipped = R->st_stale = R->st_expired = 0;
        R->st_batches = 0;
        R->st_db_ms = 0;
        R->next_stats_ns = now + STATS_EVERY_NS;
    }
}

int main(int argc, char **argv)
{
    static struct rollup R; /* the process state; lives until exit */
    static struct sx_cli cli = {.program = "sextant-rollup"};
    int rc = sx_cli_parse(&cli, argc, argv, &R.cfg, usage);
    if (rc >= 0) return rc;
    const char *instance = cli.instance ? cli.instance : "1";
    if (!*instance || strlen(instance) > 64) {
        fprintf(stderr, "sextant-rollup: --instance must be 1 to 64 characters\n");
        return 2;
    }
    cli.instance = instance;
    sx_cli_log_init(&cli, &R.cfg);
    snprintf(R.consumer, sizeof(R.consumer), "rollup-%s", instance);
    sx_redis_key(R.stream, sizeof(R.stream), &R.cfg, SX_STREAM_METRICS);
    snprintf(R.dead, sizeof(R.dead), "%s:dead", R.stream);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sx_rollup_red_start(&R.cfg, instance) != SX_OK) return 1; /* spans: workers/rollup_red.c */

    R.arena = sx_arena_create(ARENA_CHUNK, ARENA_MAX);
    sx_buf_init(&R.json, (size_t)1 << 20);
    sx_buf_init(&R.sql, (size_t)1 << 20);
    sx_buf_init(&R.pjson, COPY_MAX);
    sx_buf_init(&R.copy, COPY_MAX);
    sx_buf_init(&R.live, (size_t)16 << 20);
    sx_buf_init(&R.live_items, (size_t)1 << 20);
    R.cache_cap = 1024;
    R.cache = xrealloc(NULL, R.cache_cap * sizeof(*R.cache));
    memset(R.cache, 0, R.cache_cap * sizeof(*R.cache));

    int backoff = BACKOFF_MIN_MS;
    while (!stop_flag && (redis_ready(&R) != SX_OK || pg_ready(&R) != SX_OK)) {
        sx_warn("not ready; retrying in %d ms", backoff);
        nap(backoff);
        backoff = SX_MIN(backoff * 2, BACKOFF_MAX_MS);
    }
    if (!stop_flag) {
        int64_t now = sx_mono_ns();
        R.next_claim_ns = now;
        R.next_stats_ns = now + STATS_EVERY_NS;
        sd_notify(0, "READY=1");
        sx_info("ready: block %lld ms, claim idle %lld ms", R.cfg.persist_block_ms, R.cfg.persist_claim_idle_ms);
    }
    backoff = BACKOFF_MIN_MS;
    while (!stop_flag) {
        if (redis_ready(&R) != SX_OK || read_cycle(&R) != SX_OK) {
            nap(backoff);
            backoff = SX_MIN(backoff * 2, BACKOFF_MAX_MS);
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        periodic(&R);
    }
    sd_notify(0, "STOPPING=1");
    sx_rollup_red_stop();
    if (R.rc) redisFree(R.rc);
    if (R.pg) PQfinish(R.pg);
    sx_arena_destroy(R.arena);
    sx_buf_term(&R.json);
    sx_buf_term(&R.sql);
    sx_buf_term(&R.pjson);
    sx_buf_term(&R.copy);
    sx_buf_term(&R.live);
    sx_buf_term(&R.live_items);
    free(R.cache);
    free(R.ents);
    free(R.pends);
    free(R.mrows);
    free(R.idx);
    free(R.obs);
    free(R.rows);
    free(R.hrows);
    free(R.frows);
    free(R.raw);
    free(R.cum);
    sx_info("stopped");
    return 0;
}
