/* rollup.c: sextant-rollup: reads the metrics stream (group "rollup") and rolls data points into 1-minute and 1-hour rows and raw points in PostgreSQL.
 *
 * Design: one thread, one stream entry per transaction. For each entry:
 *   1. unpack the ExportMetricsServiceRequest and resolve every data point's
 *      series (metric name + point and resource attributes) to a
 *      metric_series id: an in-memory cache, else INSERT ... ON CONFLICT DO
 *      NOTHING RETURNING / SELECT, committed on its own (a series row without
 *      points is harmless);
 *   2. BEGIN; insert the entry's ledger row into persist_ledger (stream
 *      "metrics", key = SHA-256 of project id and body, as sextant-persist
 *      does). An entry already there was applied before: ROLLBACK, XACK,
 *      nothing else (so it never moves the cumulative state twice);
 *   3. take pg_advisory_xact_lock(LOCK_CLASS, series) for every series whose
 *      rollup reads what another entry wrote (cumulative sums, histograms,
 *      exponential histograms and summaries; delta exponential histograms
 *      too, whose stored buckets are merged in C), in ascending series order
 *      so two instances never deadlock. The lock is held to COMMIT, so a
 *      second instance (same consumer group, --instance 2) that gets an
 *      entry of the same series waits here and then reads the state the
 *      first one committed;
 *   4. cumulative points become deltas against the series' previous
 *      cumulative point, kept in Redis under <prefix>:{p<project>}:cum:<series>
 *      (lib/rollup_math.h: sums, explicit and exponential histograms, and
 *      summary count/sum). A point not newer than the state (time <= the
 *      state's time, start time not newer) arrived out of order (another
 *      instance, a late batch): it is skipped, because its counts are inside
 *      the newer cumulative value already and taking it for a reset would
 *      count them twice. Delta points and gauges are taken as they are.
 *      Points are merged into one row per (series, minute) and upserted into
 *      metric_points_1m, adding to what the minute holds; the same rows,
 *      merged per hour, are upserted into metric_points_1h; every point goes
 *      to metric_points_raw (unless already older than
 *      metrics_raw_retention_s). Exponential buckets of different scales are
 *      merged by downscaling to the smaller scale, and lower still to stay
 *      within SX_ROLLUP_EXP_MAX buckets per side; the row's stored buckets
 *      are read FOR UPDATE and merged in C (one implementation, unit-tested);
 *   5. the new cumulative states are written to Redis *tagged* with the
 *      entry's ledger key: "<key hex>|<new state>|<old state>". A reader that
 *      finds a tagged state asks the ledger whether that entry committed and
 *      takes the new or the old state accordingly, so the state only moves
 *      with a COMMIT, whatever crashes in between;
 *   6. COMMIT, then the untagged new states (an optimization: skips the
 *      ledger look-up next time), written only where the key still holds our
 *      tagged value (a Lua compare-and-set): after COMMIT the lock is gone
 *      and another instance may already have tagged a newer state; then XACK.
 * Entries of this consumer left pending by a crash are re-read from "0" at
 * start; entries of other (dead) consumers are reclaimed with XAUTOCLAIM.
 * Acknowledged entries are trimmed below the oldest entry any group still
 * needs, as sextant-persist trims its streams. Every RAW_EXPIRE_EVERY_NS the
 * raw points older than metrics_raw_retention_s are deleted in batches of
 * RAW_EXPIRE_BATCH rows.
 *
 * Why rows live in PostgreSQL from the first point rather than as open
 * buckets in Redis flushed when closed: each entry's deltas are upserted in
 * the entry's own transaction with its ledger row, so exactly-once is one
 * COMMIT (no second ledger for flushes, no window where a bucket is in
 * neither place), charts are live without reading Redis, and a restart or a
 * second instance needs no hand-over of open buckets. The cost is one upsert
 * per (series, minute) and (series, hour) per entry instead of one per
 * closed bucket; the per-series state that must be read before writing (the
 * cumulative points) is still in Redis.
 *
 * Limits: explicit histogram points with more than SX_ROLLUP_MAX_BUCKETS
 * buckets, and exponential histograms with a scale outside [-10, 20], are
 * skipped (counted in the stats line); summary rows keep at most
 * MAX_QUANTILES quantiles. Settings persist_block_ms and
 * persist_claim_idle_ms are shared with sextant-persist. */
#include "arena.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "otlp.h"
#include "pg.h"
#include "redis.h"
#include "rollup_math.h"
#include "rollup_red.h"
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define GROUP "rollup"
#define LEDGER_STREAM "metrics"
#define READ_COUNT 64
#define ARENA_CHUNK ((size_t)1 << 20)
#define ARENA_MAX ((size_t)1 << 30)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define TRIM_EVERY_NS 1000000000LL
#define STATS_EVERY_NS (10LL * 1000000000LL)
#define MINUTE_NS 60000000000LL
#define HOUR_NS (60LL * MINUTE_NS)
#define RAW_EXPIRE_EVERY_NS (5LL * 1000000000LL)
#define RAW_EXPIRE_BATCH 5000  /* rows per DELETE (in its SQL too): short transactions, short locks */
#define RAW_EXPIRE_ROUNDS 20   /* DELETEs per round at most; the rest waits for the next round */
#define MAX_QUANTILES 32       /* summary quantiles kept per row */
#define LOCK_CLASS "1398295890" /* pg_advisory_xact_lock(LOCK_CLASS, series id): 'SXMR' */
#define RAW_CHUNK 2000         /* raw points per INSERT (the statement buffer holds 1 MB) */
#define HASH_LEN 16
#define SERIES_CACHE_MAX ((size_t)1 << 20) /* entries; the cache is emptied when full */

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_point_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_point_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_point_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint summary_point_t;

enum obs_kind {
    OBS_GAUGE,
    OBS_SUM_DELTA,
    OBS_SUM_CUM,
    OBS_HIST_DELTA,
    OBS_HIST_CUM,
    OBS_EXP_DELTA,
    OBS_EXP_CUM,
    OBS_SUMMARY /* cumulative count and sum, quantiles of the point */
};

/* One data point of the entry being processed, with its series. */
struct obs {
    long long series;
    enum obs_kind kind;
    int monotonic;
    uint64_t start_ns, time_ns;
    double value;            /* number points */
    const hist_point_t *hp;  /* histogram points */
    const exp_point_t *ep;   /* exponential histogram points */
    const summary_point_t *sp; /* summary points */
    size_t order;            /* position in the request: ties keep it */
};

/* One (series, minute) or (series, hour) row to upsert. */
struct row {
    long long series;
    int64_t bucket;
    long long count;
    double sum, min, max, last;
    int has_minmax, has_last;
    uint64_t last_ns;                        /* newest point's time; 0: none */
    size_t nb;                               /* histogram buckets, 0 otherwise */
    uint64_t buckets[SX_ROLLUP_MAX_BUCKETS];
    const double *bounds;                    /* nb - 1 of them, in the request's arena */
    struct sx_rollup_exp exp;                /* exponential histograms: delta buckets */
    const summary_point_t *summary;          /* summaries: the newest point (quantiles), in the arena */
};

/* One raw point to insert into metric_points_raw. */
struct raw {
    long long series;
    uint64_t time_ns;
    long long count;
    double sum, min, max, last;
    int has_minmax, has_last;
};

/* A series cache slot: key = SHA-256(project, name, attributes) cut to 16 bytes. */
struct slot {
    uint8_t key[HASH_LEN];
    long long id; /* 0: empty */
};

/* A cumulative state changed by the current entry. */
struct cumchange {
    long long series;
    struct sx_rollup_cum old, cur;
};

/* The process state; one instance, owned by main. */
struct rollup {
    struct sx_config cfg;
    char consumer[96];
    char stream[160];
    char dead[176];
    redisContext *rc;        /* NULL or dead while disconnected */
    PGconn *pg;              /* NULL while disconnected */
    struct sx_arena *arena;  /* one entry's unpacked request */
    int history;             /* re-reading our own pending entries from "0" */
    struct slot *cache;      /* series ids; power-of-two size */
    size_t cache_cap, cache_n;
    struct obs *obs;
    size_t obs_n, obs_cap;
    struct row *rows;        /* minute rows of the entry */
    size_t rows_n, rows_cap;
    struct row *hrows;       /* hour rows of the entry (merged minute rows) */
    size_t hrows_n, hrows_cap;
    struct raw *raw;
    size_t raw_n, raw_cap;
    struct cumchange *cum;
    size_t cum_n, cum_cap;
    struct sx_buf json, sql;
    long long st_entries, st_points, st_skipped, st_dup, st_dead, st_stale, st_expired;
    int acked;
    int64_t next_claim_ns, next_trim_ns, next_stats_ns, next_expire_ns;
};

static volatile sig_atomic_t stop_flag;

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

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "sextant-rollup: out of memory\n");
        abort();
    }
    return q;
}

/* ---- hashing ---------------------------------------------------------------- */

/* SHA-256 over up to three byte ranges, cut to HASH_LEN. Aborts when OpenSSL
 * cannot hash (out of memory). */
static void sha16(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn, uint8_t out[HASH_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
        EVP_DigestUpdate(ctx, b, bn) != 1 || EVP_DigestUpdate(ctx, c, cn) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < HASH_LEN) {
        fprintf(stderr, "sextant-rollup: sha-256 failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, HASH_LEN);
}

static void hex16(const uint8_t h[HASH_LEN], char out[2 * HASH_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HASH_LEN; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * HASH_LEN] = '\0';
}

/* "\x<hex>": a bytea as a text parameter. */
static void bytea_param(const uint8_t h[HASH_LEN], char out[2 * HASH_LEN + 3])
{
    out[0] = '\\';
    out[1] = 'x';
    hex16(h, out + 2);
}

/* ---- series cache ------------------------------------------------------------ */

static size_t slot_of(const struct rollup *R, const uint8_t key[HASH_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return (size_t)h & (R->cache_cap - 1);
}

static long long cache_get(const struct rollup *R, const uint8_t key[HASH_LEN])
{
    for (size_t i = slot_of(R, key);; i = (i + 1) & (R->cache_cap - 1)) {
        if (!R->cache[i].id) return 0;
        if (memcmp(R->cache[i].key, key, HASH_LEN) == 0) return R->cache[i].id;
    }
}

static void cache_put(struct rollup *R, const uint8_t key[HASH_LEN], long long id)
{
    if ((R->cache_n + 1) * 2 > R->cache_cap) {
        if (R->cache_cap >= SERIES_CACHE_MAX * 2) { /* bounded: start over */
            memset(R->cache, 0, R->cache_cap * sizeof(*R->cache));
            R->cache_n = 0;
        } else {
            struct slot *old = R->cache;
            size_t oldcap = R->cache_cap;
            R->cache_cap = oldcap ? oldcap * 2 : 1024;
            R->cache = xrealloc(NULL, R->cache_cap * sizeof(*R->cache));
            memset(R->cache, 0, R->cache_cap * sizeof(*R->cache));
            R->cache_n = 0;
            for (size_t i = 0; i < oldcap; i++)
                if (old[i].id) cache_put(R, old[i].key, old[i].id);
            free(old);
        }
    }
    size_t i = slot_of(R, key);
    while (R->cache[i].id) i = (i + 1) & (R->cache_cap - 1);
    memcpy(R->cache[i].key, key, HASH_LEN);
    R->cache[i].id = id;
    R->cache_n++;
}

/* ---- attributes ---------------------------------------------------------------- */

static void json_any(struct sx_json *w, const Opentelemetry__Proto__Common__V1__AnyValue *v)
{
    if (!v) {
        sx_json_null(w);
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: sx_json_strz(w, v->string_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: sx_json_bool(w, v->bool_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: sx_json_int(w, v->int_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE: sx_json_double(w, v->double_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        sx_json_arr_open(w);
        if (w->depth < SX_JSON_MAX_DEPTH - 1)
            for (size_t i = 0; i < v->array_value->n_values; i++) json_any(w, v->array_value->values[i]);
        sx_json_arr_close(w);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        sx_json_obj_open(w);
        if (w->depth < SX_JSON_MAX_DEPTH - 1)
            for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
                sx_json_key(w, v->kvlist_value->values[i]->key);
                json_any(w, v->kvlist_value->values[i]->value);
            }
        sx_json_obj_close(w);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        sx_json_hex(w, v->bytes_value.data, v->bytes_value.len);
        break;
    default: sx_json_null(w); break;
    }
}

/* The series' attribute document into R->json: point attributes under their
 * keys, resource attributes under "resource.<key>". SX_ERR when too big. */
static int attrs_json(struct rollup *R, kv_t **res, size_t nres, kv_t **pt, size_t npt)
{
    struct sx_json w;
    char key[512];
    sx_buf_reset(&R->json);
    sx_json_init(&w, &R->json);
    sx_json_obj_open(&w);
    for (size_t i = 0; i < npt; i++) {
        sx_json_key(&w, pt[i]->key);
        json_any(&w, pt[i]->value);
    }
    for (size_t i = 0; i < nres; i++) {
        snprintf(key, sizeof(key), "resource.%s", res[i]->key);
        sx_json_key(&w, key);
        json_any(&w, res[i]->value);
    }
    sx_json_obj_close(&w);
    return w.err ? SX_ERR : SX_OK;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

static int pg_ready(struct rollup *R)
{
    if (sx_pg_ensure(&R->pg, R->cfg.pg_conninfo) != SX_OK) return SX_ERR;
    return SX_OK;
}

/* Resolves a series to its id (creating it); 0 on a database error. */
static long long series_id(struct rollup *R, long long project, const metric_t *m, const char *type,
                           const char *temporality, int monotonic, kv_t **res, size_t nres, kv_t **pt, size_t npt)
{
    uint8_t key[HASH_LEN], ahash[HASH_LEN];
    char pfx[32], proj[24], ah[2 * HASH_LEN + 3];
    if (attrs_json(R, res, nres, pt, npt) != SX_OK) return 0;
    int n = snprintf(pfx, sizeof(pfx), "%lld\n", project);
    sha16(pfx, (size_t)n, m->name, strlen(m->name) + 1, R->json.data, R->json.len, key);
    long long id = cache_get(R, key);
    if (id) return id;
    sha16(type, strlen(type) + 1, R->json.data, R->json.len, "", 0, ahash);
    bytea_param(ahash, ah);
    snprintf(proj, sizeof(proj), "%lld", project);
    const char *params[9] = {proj,        m->name, type, m->unit ? m->unit : "", m->description ? m->description : "",
                             temporality, monotonic ? "true" : "false", R->json.data, ah};
    PGresult *res_ = sx_pg_query(
        R->pg,
        "WITH ins AS (INSERT INTO metric_series (project_id, name, type, unit, description, temporality, monotonic, "
        "attributes, attrs_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bytea) "
        "ON CONFLICT (project_id, name, attrs_hash) DO NOTHING RETURNING id) "
        "SELECT id FROM ins UNION ALL SELECT id FROM metric_series "
        "WHERE project_id = $1 AND name = $2 AND attrs_hash = $9::bytea LIMIT 1",
        9, params, "metric_series upsert");
    if (!res_) return 0;
    if (PQntuples(res_) == 1) id = strtoll(PQgetvalue(res_, 0, 0), NULL, 10);
    PQclear(res_);
    if (id > 0) cache_put(R, key, id);
    return id;
}

/* ---- Redis ------------------------------------------------------------------ */

static int redis_alive(const struct rollup *R)
{
    return R->rc && !R->rc->err;
}

static void redis_failed(const struct rollup *R, const char *what, const redisReply *r)
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

static void cum_key(const struct rollup *R, long long project, long long series, char *out, size_t outlen)
{
    char suffix[48];
    snprintf(suffix, sizeof(suffix), "cum:%lld", series);
    sx_redis_pkey(out, outlen, &R->cfg, project, suffix);
}

/* Loads a series' cumulative state. A tagged state ("<hex>|<new>|<old>")
 * resolves through the ledger (the caller's transaction sees committed
 * rows). SX_ERR on a Redis or PostgreSQL failure. */
static int cum_load(struct rollup *R, long long project, long long series, struct sx_rollup_cum *c)
{
    char key[224];
    memset(c, 0, sizeof(*c));
    cum_key(R, project, series, key, sizeof(key));
    redisReply *r = redisCommand(R->rc, "GET %s", key);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        redis_failed(R, "GET cum", r);
        if (r) freeReplyObject(r);
        return SX_ERR;
    }
    int rc = SX_OK;
    if (r->type == REDIS_REPLY_STRING) {
        const char *s = r->str;
        size_t len = r->len;
        if (len > 2 * HASH_LEN && s[2 * HASH_LEN] == '|') {
            const char *bar = memchr(s + 2 * HASH_LEN + 1, '|', len - 2 * HASH_LEN - 1);
            char ah[2 * HASH_LEN + 3] = "\\x";
            memcpy(ah + 2, s, 2 * HASH_LEN);
            ah[2 * HASH_LEN + 2] = '\0';
            const char *params[2] = {LEDGER_STREAM, ah};
            PGresult *q = bar ? sx_pg_query(R->pg,
                                            "SELECT 1 FROM persist_ledger WHERE stream = $1 AND entry_hash = $2::bytea",
                                            2, params, "ledger look-up")
                              : NULL;
            if (!bar) {
                sx_warn("malformed cumulative state under %s; starting over", key);
            } else if (!q) {
                rc = SX_ERR;
            } else {
                const char *nw = s + 2 * HASH_LEN + 1;
                if (PQntuples(q) > 0)
                    sx_rollup_cum_parse(nw, (size_t)(bar - nw), c);
                else
                    sx_rollup_cum_parse(bar + 1, (size_t)(s + len - bar - 1), c);
            }
            if (q) PQclear(q);
        } else if (sx_rollup_cum_parse(s, len, c) != SX_OK) {
            sx_warn("malformed cumulative state under %s; starting over", key);
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Replaces a key's value only while it still holds ARGV[1]: the plain state
 * written after COMMIT must not overwrite what another instance tagged after
 * taking the series' lock from us. */
static const char CAS_SCRIPT[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end return 0";

/* Writes the changed states: tagged with the entry's key (before COMMIT),
 * or plain (after COMMIT, only where the tagged value is still there).
 * SX_ERR on a Redis failure. */
static int cum_store(struct rollup *R, long long project, const uint8_t hash[HASH_LEN], int tagged)
{
    static char val[2 * SX_ROLLUP_CUM_TEXT_MAX + 64], nw[SX_ROLLUP_CUM_TEXT_MAX], old[SX_ROLLUP_CUM_TEXT_MAX];
    char key[224], hex[2 * HASH_LEN + 1];
    size_t sent = 0;
    int rc = SX_OK;
    hex16(hash, hex);
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        size_t nn = sx_rollup_cum_format(&c->cur, nw, sizeof(nw));
        size_t on = sx_rollup_cum_format(&c->old, old, sizeof(old));
        if (nn == 0) continue;
        int n = snprintf(val, sizeof(val), "%s|%.*s|%.*s", hex, (int)nn, nw, (int)on, old);
        if (n < 0 || (size_t)n >= sizeof(val)) continue;
        cum_key(R, project, c->series, key, sizeof(key));
        int ok = tagged ? redisAppendCommand(R->rc, "SET %s %b", key, val, (size_t)n)
                        : redisAppendCommand(R->rc, "EVAL %s 1 %s %b %b", CAS_SCRIPT, key, val, (size_t)n, nw, nn);
        if (ok != REDIS_OK) return SX_ERR;
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR) {
            redis_failed(R, tagged ? "SET cum" : "EVAL cum", r);
            rc = SX_ERR;
            if (!r) break;
        }
        if (r) freeReplyObject(r);
    }
    return rc;
}

static int xack(struct rollup *R, const char *id, size_t idlen)
{
    redisReply *r = redisCommand(R->rc, "XACK %s %s %b", R->stream, GROUP, id, idlen);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? SX_OK : SX_ERR;
    if (rc != SX_OK) redis_failed(R, "XACK", r);
    if (r) freeReplyObject(r);
    if (rc == SX_OK) R->acked = 1;
    return rc;
}

/* Copies an undecodable entry to <stream>:dead with an "error" field and
 * acknowledges it, atomically. */
static int dead_letter(struct rollup *R, const char *id, size_t idlen, const redisReply *fields, const char *why)
{
    sx_warn("entry %.*s dead-lettered: %s", (int)idlen, id, why);
    const char *argv[2 + 2 + 64];
    size_t argl[2 + 2 + 64];
    int argc = 0;
    argv[argc] = "XADD", argl[argc++] = 4;
    argv[argc] = R->dead, argl[argc++] = strlen(R->dead);
    argv[argc] = "*", argl[argc++] = 1;
    argv[argc] = "error", argl[argc++] = 5;
    argv[argc] = why, argl[argc++] = strlen(why);
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i < fields->elements && argc < 64; i++)
        if (fields->element[i]->type == REDIS_REPLY_STRING)
            argv[argc] = fields->element[i]->str, argl[argc++] = fields->element[i]->len;
    if (argc % 2 == 0) argc--; /* field/value pairs only */
    redisAppendCommand(R->rc, "MULTI");
    redisAppendCommandArgv(R->rc, argc, argv, argl);
    redisAppendCommand(R->rc, "XACK %s %s %b", R->stream, GROUP, id, idlen);
    redisAppendCommand(R->rc, "EXEC");
    int rc = SX_OK;
    for (int i = 0; i < 4; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r) {
            rc = SX_ERR;
            break;
        }
        if (i == 3 && r->type != REDIS_REPLY_ARRAY) rc = SX_ERR;
        freeReplyObject(r);
    }
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

static int obs_cmp(const void *a, const void *b)
{
    const struct obs *x = a, *y = b;
    if (x->series != y->series) return x->series < y->series ? -1 : 1;
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

/* Turns the request into R->obs (series resolved). SX_ERR on a database
 * error (retry the entry later). */
static int collect(struct rollup *R, long long project, const sx_metrics_req *req)
{
    R->obs_n = 0;
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
                    long long sid = series_id(R, project, m, type, temp, monotonic, res, nres, pa, npa);
                    if (!sid) return SX_ERR;
                    struct obs *o = obs_add(R);
                    o->series = sid;
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
    return SX_OK;
}

/* The last row of *rows if it is (series, bucket), else a new cleared one. */
static struct row *row_in(struct row **rows, size_t *n, size_t *cap, long long series, int64_t bucket)
{
    if (*n && (*rows)[*n - 1].series == series && (*rows)[*n - 1].bucket == bucket) return &(*rows)[*n - 1];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *rows = xrealloc(*rows, *cap * sizeof(**rows));
    }
    struct row *w = &(*rows)[(*n)++];
    memset(w, 0, sizeof(*w));
    w->series = series;
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
        sx_warn("exponential buckets of series %lld out of range; hour row keeps the older ones", h->series);
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
    w->time_ns = o->time_ns;
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

/* The cumulative state entry of o's series, loaded on first use. */
static struct cumchange *cum_for(struct rollup *R, long long project, struct cumchange *cc, long long series)
{
    if (cc && cc->series == series) return cc;
    if (R->cum_n == R->cum_cap) {
        R->cum_cap = R->cum_cap ? R->cum_cap * 2 : 64;
        R->cum = xrealloc(R->cum, R->cum_cap * sizeof(*R->cum));
    }
    cc = &R->cum[R->cum_n++];
    cc->series = series;
    if (cum_load(R, project, series, &cc->old) != SX_OK) return NULL;
    cc->cur = cc->old;
    return cc;
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

/* Computes deltas (locking the shared series and loading the states of
 * cumulative ones) and merges the sorted observations into R->rows (minutes),
 * R->hrows (hours), R->raw and R->cum. Cumulative points not newer than
 * their series' state are skipped (sx_rollup_cum_stale). SX_ERR on a Redis
 * or database failure. */
static int build_rows(struct rollup *R, long long project)
{
    struct sx_rollup_exp ex, dex;
    R->rows_n = R->hrows_n = R->raw_n = R->cum_n = 0;
    qsort(R->obs, R->obs_n, sizeof(*R->obs), obs_cmp);
    if (lock_series(R) != SX_OK) return SX_ERR;
    struct cumchange *cc = NULL;
    int64_t raw_from = sx_now_ns() - R->cfg.metrics_raw_retention_s * 1000000000LL;
    for (size_t i = 0; i < R->obs_n; i++) {
        const struct obs *o = &R->obs[i];
        int cumulative = o->kind == OBS_SUM_CUM || o->kind == OBS_HIST_CUM || o->kind == OBS_EXP_CUM ||
                         o->kind == OBS_SUMMARY;
        if (cumulative) {
            if (!(cc = cum_for(R, project, cc, o->series))) return SX_ERR;
            if (sx_rollup_cum_stale(&cc->cur, o->start_ns, o->time_ns)) {
                R->st_stale++;
                continue;
            }
        }
        int64_t t = o->time_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)o->time_ns;
        struct row *w = row_in(&R->rows, &R->rows_n, &R->rows_cap, o->series, t / MINUTE_NS * MINUTE_NS);
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
    /* Hour rows: the minute rows merged (they are sorted by series, then time). */
    for (size_t i = 0; i < R->rows_n; i++) {
        const struct row *m = &R->rows[i];
        merge_row(row_in(&R->hrows, &R->hrows_n, &R->hrows_cap, m->series, m->bucket / HOUR_NS * HOUR_NS), m);
    }
    return SX_OK;
}

static void put_double(struct sx_buf *b, double v)
{
    sx_buf_printf(b, "%.17g", v);
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

/* Merges what the table's row already holds for w's exponential buckets into
 * w->exp (the row is locked FOR UPDATE; the series is locked too), so the
 * upsert can write the merged buckets. SX_ERR on a database error. */
static int exp_merge_stored(struct rollup *R, const char *table, const char *proj, const char *series,
                            const char *bucket, struct row *w)
{
    char sql[384];
    snprintf(sql, sizeof(sql),
             "SELECT exp_scale, exp_zero, exp_pos_offset, exp_pos::text, exp_neg_offset, exp_neg::text FROM %s "
             "WHERE project_id = $1 AND series_id = $2 AND bucket_start_ns = $3 AND exp_scale IS NOT NULL FOR UPDATE",
             table);
    const char *params[3] = {proj, series, bucket};
    PGresult *r = sx_pg_query(R->pg, sql, 3, params, "exp buckets select");
    if (!r) return SX_ERR;
    if (PQntuples(r) == 1) {
        struct sx_rollup_exp old;
        memset(&old, 0, sizeof(old));
        old.have = 1;
        old.scale = (int32_t)strtol(PQgetvalue(r, 0, 0), NULL, 10);
        old.zero = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        old.pos.offset = (int32_t)strtol(PQgetvalue(r, 0, 2), NULL, 10);
        old.neg.offset = (int32_t)strtol(PQgetvalue(r, 0, 4), NULL, 10);
        long np = parse_u64_array(PQgetvalue(r, 0, 3), old.pos.counts, SX_ROLLUP_EXP_MAX);
        long nn = parse_u64_array(PQgetvalue(r, 0, 5), old.neg.counts, SX_ROLLUP_EXP_MAX);
        if (np < 0 || nn < 0 || old.scale < SX_ROLLUP_EXP_MIN_SCALE || old.scale > 20) {
            sx_warn("malformed exponential buckets in %s for series %s; replacing them", table, series);
        } else {
            old.pos.n = (size_t)np, old.neg.n = (size_t)nn;
            if (sx_rollup_exp_merge(&old, &w->exp) == SX_OK) w->exp = old;
            else sx_warn("exponential buckets of series %s out of range; keeping the newest", series);
        }
    }
    PQclear(r);
    return SX_OK;
}

static void put_side(struct sx_buf *b, const struct sx_rollup_exp_side *side)
{
    sx_buf_putc(b, '{');
    for (size_t i = 0; i < side->n; i++) sx_buf_printf(b, "%s%" PRIu64, i ? "," : "", side->counts[i]);
    sx_buf_putc(b, '}');
    sx_buf_putc(b, '\0');
}

/* The upsert of one row into metric_points_1m or metric_points_1h: adds
 * counts, sums and explicit buckets; min/max by LEAST/GREATEST; last and the
 * summary quantiles from the newer point; exponential buckets arrive merged
 * already (exp_merge_stored). */
#define UPSERT_SQL(T)                                                                                                  \
    "INSERT INTO " T " (project_id, series_id, bucket_start_ns, count, sum, min, max, last, bucket_counts, bounds, "  \
    "last_ns, exp_scale, exp_zero, exp_pos_offset, exp_pos, exp_neg_offset, exp_neg, q_quantiles, q_values) "        \
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bigint[], $10::float8[], $11, $12, $13, $14, $15::bigint[], $16, "  \
    "$17::bigint[], $18::float8[], $19::float8[]) "                                                                   \
    "ON CONFLICT (project_id, series_id, bucket_start_ns) DO UPDATE SET "                                             \
    "count = " T ".count + EXCLUDED.count, sum = " T ".sum + EXCLUDED.sum, "                                          \
    "min = LEAST(" T ".min, EXCLUDED.min), max = GREATEST(" T ".max, EXCLUDED.max), "                                 \
    "last = CASE WHEN EXCLUDED.last IS NOT NULL AND (" T ".last_ns IS NULL OR EXCLUDED.last_ns >= " T ".last_ns) "    \
    "THEN EXCLUDED.last ELSE " T ".last END, "                                                                        \
    "q_quantiles = CASE WHEN EXCLUDED.q_values IS NOT NULL AND (" T ".last_ns IS NULL OR EXCLUDED.last_ns >= " T     \
    ".last_ns) THEN EXCLUDED.q_quantiles ELSE " T ".q_quantiles END, "                                                \
    "q_values = CASE WHEN EXCLUDED.q_values IS NOT NULL AND (" T ".last_ns IS NULL OR EXCLUDED.last_ns >= " T        \
    ".last_ns) THEN EXCLUDED.q_values ELSE " T ".q_values END, "                                                      \
    "last_ns = GREATEST(" T ".last_ns, EXCLUDED.last_ns), "                                                           \
    "bucket_counts = CASE WHEN EXCLUDED.bucket_counts IS NULL THEN " T ".bucket_counts "                              \
    "WHEN " T ".bucket_counts IS NULL OR " T ".bounds IS DISTINCT FROM EXCLUDED.bounds THEN EXCLUDED.bucket_counts "  \
    "ELSE ARRAY(SELECT a + b FROM unnest(" T ".bucket_counts, EXCLUDED.bucket_counts) AS u(a, b)) END, "             \
    "bounds = COALESCE(EXCLUDED.bounds, " T ".bounds), "                                                              \
    "exp_scale = COALESCE(EXCLUDED.exp_scale, " T ".exp_scale), exp_zero = COALESCE(EXCLUDED.exp_zero, " T            \
    ".exp_zero), exp_pos_offset = COALESCE(EXCLUDED.exp_pos_offset, " T ".exp_pos_offset), "                          \
    "exp_pos = COALESCE(EXCLUDED.exp_pos, " T ".exp_pos), exp_neg_offset = COALESCE(EXCLUDED.exp_neg_offset, " T      \
    ".exp_neg_offset), exp_neg = COALESCE(EXCLUDED.exp_neg, " T ".exp_neg)"

/* Upserts rows into table (metric_points_1m or metric_points_1h). SX_ERR on
 * a database error. */
static int write_rows(struct rollup *R, long long project, const char *table, struct row *rows, size_t nrows)
{
    char proj[24], series[24], bucket[24], count[24], sum[40], mn[40], mx[40], last[40], lastns[24];
    char scale[16], zero[24], poff[16], noff[16];
    const char *sql = strcmp(table, "metric_points_1h") == 0 ? UPSERT_SQL("metric_points_1h")
                                                               : UPSERT_SQL("metric_points_1m");
    snprintf(proj, sizeof(proj), "%lld", project);
    for (size_t i = 0; i < nrows; i++) {
        struct row *w = &rows[i];
        snprintf(series, sizeof(series), "%lld", w->series);
        snprintf(bucket, sizeof(bucket), "%" PRId64, w->bucket);
        if (w->exp.have && exp_merge_stored(R, table, proj, series, bucket, w) != SX_OK) return SX_ERR;
        snprintf(count, sizeof(count), "%lld", w->count);
        snprintf(sum, sizeof(sum), "%.17g", w->sum);
        snprintf(mn, sizeof(mn), "%.17g", w->min);
        snprintf(mx, sizeof(mx), "%.17g", w->max);
        snprintf(last, sizeof(last), "%.17g", w->last);
        snprintf(lastns, sizeof(lastns), "%" PRIu64, w->last_ns);
        const char *bc = NULL, *bounds = NULL, *ep = NULL, *en = NULL, *qq = NULL, *qv = NULL;
        size_t off[6] = {0};
        sx_buf_reset(&R->sql);
        if (w->nb) {
            sx_buf_putc(&R->sql, '{');
            for (size_t b = 0; b < w->nb; b++) sx_buf_printf(&R->sql, "%s%" PRIu64, b ? "," : "", w->buckets[b]);
            sx_buf_puts(&R->sql, "}");
            sx_buf_putc(&R->sql, '\0');
            off[1] = R->sql.len;
            sx_buf_putc(&R->sql, '{');
            for (size_t b = 0; b + 1 < w->nb; b++) {
                if (b) sx_buf_putc(&R->sql, ',');
                put_double(&R->sql, w->bounds[b]);
            }
            sx_buf_putc(&R->sql, '}');
            sx_buf_putc(&R->sql, '\0');
        }
        if (w->exp.have) {
            snprintf(scale, sizeof(scale), "%" PRId32, w->exp.scale);
            snprintf(zero, sizeof(zero), "%" PRIu64, w->exp.zero);
            snprintf(poff, sizeof(poff), "%" PRId32, w->exp.pos.offset);
            snprintf(noff, sizeof(noff), "%" PRId32, w->exp.neg.offset);
            off[2] = R->sql.len;
            put_side(&R->sql, &w->exp.pos);
            off[3] = R->sql.len;
            put_side(&R->sql, &w->exp.neg);
        }
        if (w->summary && w->summary->n_quantile_values) {
            size_t nq = SX_MIN(w->summary->n_quantile_values, (size_t)MAX_QUANTILES);
            off[4] = R->sql.len;
            sx_buf_putc(&R->sql, '{');
            for (size_t q = 0; q < nq; q++) {
                if (q) sx_buf_putc(&R->sql, ',');
                put_double(&R->sql, w->summary->quantile_values[q]->quantile);
            }
            sx_buf_putc(&R->sql, '}');
            sx_buf_putc(&R->sql, '\0');
            off[5] = R->sql.len;
            sx_buf_putc(&R->sql, '{');
            for (size_t q = 0; q < nq; q++) {
                if (q) sx_buf_putc(&R->sql, ',');
                put_double(&R->sql, w->summary->quantile_values[q]->value);
            }
            sx_buf_putc(&R->sql, '}');
            sx_buf_putc(&R->sql, '\0');
        }
        if (w->nb) bc = R->sql.data, bounds = R->sql.data + off[1];
        if (w->exp.have) ep = R->sql.data + off[2], en = R->sql.data + off[3];
        if (w->summary && w->summary->n_quantile_values) qq = R->sql.data + off[4], qv = R->sql.data + off[5];
        const char *params[19] = {proj, series, bucket, count, sum, w->has_minmax ? mn : NULL,
                                  w->has_minmax ? mx : NULL, w->has_last ? last : NULL, bc, bounds,
                                  w->last_ns ? lastns : NULL, w->exp.have ? scale : NULL, w->exp.have ? zero : NULL,
                                  w->exp.have ? poff : NULL, ep, w->exp.have ? noff : NULL, en, qq, qv};
        PGresult *r = sx_pg_query(R->pg, sql, 19, params, "metric points upsert");
        if (!r) return SX_ERR;
        PQclear(r);
    }
    return SX_OK;
}

/* Inserts raw points [from, to) of R->raw with one statement. SX_ERR on a
 * database error or when they do not fit the statement buffer. */
static int write_raw_chunk(struct rollup *R, const char *proj, size_t from, size_t to)
{
    size_t off[7];
    int ok = 1;
    sx_buf_reset(&R->sql);
    for (int c = 0; c < 7; c++) {
        off[c] = R->sql.len;
        ok &= sx_buf_putc(&R->sql, '{') == SX_OK;
        for (size_t i = from; i < to; i++) {
            const struct raw *w = &R->raw[i];
            if (i > from) ok &= sx_buf_putc(&R->sql, ',') == SX_OK;
            switch (c) {
            case 0: ok &= sx_buf_printf(&R->sql, "%lld", w->series) == SX_OK; break;
            case 1: ok &= sx_buf_printf(&R->sql, "%" PRIu64, w->time_ns) == SX_OK; break;
            case 2: ok &= sx_buf_printf(&R->sql, "%lld", w->count) == SX_OK; break;
            case 3: ok &= sx_buf_printf(&R->sql, "%.17g", w->sum) == SX_OK; break;
            case 4: ok &= (w->has_minmax ? sx_buf_printf(&R->sql, "%.17g", w->min) : sx_buf_puts(&R->sql, "NULL")) == SX_OK; break;
            case 5: ok &= (w->has_minmax ? sx_buf_printf(&R->sql, "%.17g", w->max) : sx_buf_puts(&R->sql, "NULL")) == SX_OK; break;
            default: ok &= (w->has_last ? sx_buf_printf(&R->sql, "%.17g", w->last) : sx_buf_puts(&R->sql, "NULL")) == SX_OK; break;
            }
        }
        ok &= sx_buf_putc(&R->sql, '}') == SX_OK;
        ok &= sx_buf_putc(&R->sql, '\0') == SX_OK;
    }
    if (!ok) {
        sx_warn("raw points over the statement buffer");
        return SX_ERR;
    }
    const char *params[8] = {proj};
    for (int c = 0; c < 7; c++) params[c + 1] = R->sql.data + off[c];
    PGresult *r = sx_pg_query(R->pg,
                              "INSERT INTO metric_points_raw (project_id, series_id, time_ns, count, sum, min, max, last) "
                              "SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::float8[], "
                              "$6::float8[], $7::float8[], $8::float8[])",
                              8, params, "metric_points_raw insert");
    if (!r) return SX_ERR;
    PQclear(r);
    return SX_OK;
}

/* Inserts R->raw into metric_points_raw, RAW_CHUNK points per statement.
 * SX_ERR on a database error. */
static int write_raw(struct rollup *R, long long project)
{
    char proj[24];
    snprintf(proj, sizeof(proj), "%lld", project);
    for (size_t i = 0; i < R->raw_n; i += RAW_CHUNK)
        if (write_raw_chunk(R, proj, i, SX_MIN(R->raw_n, i + RAW_CHUNK)) != SX_OK) return SX_ERR;
    return SX_OK;
}

/* Deletes raw points older than metrics_raw_retention_s, RAW_EXPIRE_BATCH
 * rows per statement (each its own short transaction), at most
 * RAW_EXPIRE_ROUNDS statements per call. Failures are logged; the next
 * call tries again. */
static void raw_expire(struct rollup *R)
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

/* Parses a decimal field; 0 when absent or malformed. */
static long long field_ll(const redisReply *f)
{
    char buf[24], *end;
    if (!f || f->type != REDIS_REPLY_STRING || f->len == 0 || f->len >= sizeof(buf)) return 0;
    memcpy(buf, f->str, f->len);
    buf[f->len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    return errno || *end || v < 1 || v > INT32_MAX ? 0 : v;
}

static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == nl && memcmp(k->str, name, nl) == 0)
            return fields->element[i + 1];
    }
    return NULL;
}

/* Applies one stream entry (see the design note). SX_OK when it is done
 * (applied, already applied or dead-lettered, and acknowledged); SX_ERR to
 * retry it later. */
static int process_entry(struct rollup *R, const redisReply *item)
{
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 || item->element[0]->type != REDIS_REPLY_STRING)
        return SX_OK;
    const char *id = item->element[0]->str;
    size_t idlen = item->element[0]->len;
    const redisReply *fields = item->element[1];
    if (fields->type == REDIS_REPLY_NIL) return xack(R, id, idlen); /* deleted while pending */
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) return dead_letter(R, id, idlen, NULL, "malformed entry");
    long long project = field_ll(entry_field(fields, SX_FIELD_PROJECT));
    const redisReply *body = entry_field(fields, SX_FIELD_BODY);
    if (!project) return dead_letter(R, id, idlen, fields, "missing or invalid project id field 'p'");
    if (!body || body->type != REDIS_REPLY_STRING) return dead_letter(R, id, idlen, fields, "missing body field 'b'");

    ProtobufCAllocator pa;
    sx_arena_reset(R->arena);
    sx_arena_pb_allocator(R->arena, &pa);
    sx_metrics_req *req = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
        &pa, body->len, (const uint8_t *)body->str);
    if (!req) return dead_letter(R, id, idlen, fields, "protobuf unpack of field 'b' failed");

    uint8_t hash[HASH_LEN];
    char pfx[32], ah[2 * HASH_LEN + 3], eid[64];
    int n = snprintf(pfx, sizeof(pfx), "%lld\n", project);
    sha16(pfx, (size_t)n, body->str, body->len, "", 0, hash);
    bytea_param(hash, ah);
    snprintf(eid, sizeof(eid), "%.*s", (int)SX_MIN(idlen, sizeof(eid) - 1), id);

    if (pg_ready(R) != SX_OK) return SX_ERR;
    if (collect(R, project, req) != SX_OK) return SX_ERR;
    if (sx_pg_exec(R->pg, "BEGIN", "BEGIN") != SX_OK) return SX_ERR;
    const char *lp[3] = {LEDGER_STREAM, ah, eid};
    PGresult *r = sx_pg_query(R->pg,
                              "INSERT INTO persist_ledger (stream, entry_hash, entry_id) VALUES ($1, $2::bytea, $3) "
                              "ON CONFLICT DO NOTHING RETURNING 1",
                              3, lp, "persist_ledger insert");
    if (!r) goto rollback;
    int fresh = PQntuples(r) == 1;
    PQclear(r);
    if (!fresh) {
        sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
        R->st_dup++;
        return xack(R, id, idlen);
    }
    if (build_rows(R, project) != SX_OK || write_rows(R, project, "metric_points_1m", R->rows, R->rows_n) != SX_OK ||
        write_rows(R, project, "metric_points_1h", R->hrows, R->hrows_n) != SX_OK || write_raw(R, project) != SX_OK)
        goto rollback;
    if (R->cum_n && cum_store(R, project, hash, 1) != SX_OK) goto rollback;
    if (sx_pg_exec(R->pg, "COMMIT", "COMMIT") != SX_OK) return SX_ERR;
    R->st_entries++;
    R->st_points += (long long)R->obs_n;
    if (R->cum_n) cum_store(R, project, hash, 0); /* best effort: the tagged state is right too */
    return xack(R, id, idlen);

rollback:
    if (R->pg && PQstatus(R->pg) == CONNECTION_OK) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
    return SX_ERR;
}

/* Processes an array of entries in order; stops at the first failure. */
static int process_entries(struct rollup *R, const redisReply *arr, size_t *done)
{
    *done = 0;
    if (arr->type != REDIS_REPLY_ARRAY) return SX_OK;
    for (size_t i = 0; i < arr->elements && !stop_flag; i++) {
        if (process_entry(R, arr->element[i]) != SX_OK) return SX_ERR;
        (*done)++;
    }
    return SX_OK;
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
        redis_failed(R, "XREADGROUP", r);
        if (r) freeReplyObject(r);
        return SX_ERR;
    }
    size_t got = 0, done = 0;
    int rc = SX_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        got = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
        rc = process_entries(R, entries, &done);
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
            redis_failed(R, "XAUTOCLAIM", r);
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        size_t done = 0;
        int rc = process_entries(R, r->element[1], &done);
        claimed += (long long)done;
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
            "Reads the metrics stream (consumer group \"rollup\") and rolls data points into one-minute\n"
            "buckets in PostgreSQL (metric_series, metric_points_1m and _1h, metric_points_raw). Any number\n"
            "of instances may run at once, each with its own --instance name.\n"
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
            sx_info("rolled up %lld points of %lld entries; %lld already applied, %lld dead-lettered, %lld points "
                    "skipped (invalid or oversized), %lld older than their series' cumulative state; %lld raw points "
                    "expired",
                    R->st_points, R->st_entries, R->st_dup, R->st_dead, R->st_skipped, R->st_stale, R->st_expired);
        R->st_points = R->st_entries = R->st_dup = R->st_dead = R->st_skipped = R->st_stale = R->st_expired = 0;
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
    free(R.cache);
    free(R.obs);
    free(R.rows);
    free(R.hrows);
    free(R.raw);
    free(R.cum);
    sx_info("stopped");
    return 0;
}
