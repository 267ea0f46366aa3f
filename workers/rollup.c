/* rollup.c: sextant-rollup: reads the metrics stream (group "rollup") and rolls data points into 1-minute and 1-hour rows and raw points in PostgreSQL.
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
 *      merged into one row per (series, minute) and per (series, hour) for
 *      the whole batch; exponential buckets of different scales are merged
 *      by downscaling to the smaller scale, and lower still to stay within
 *      SX_ROLLUP_EXP_MAX buckets per side, and the rows' stored buckets are
 *      read with one SELECT ... FOR UPDATE per table and merged in C (one
 *      implementation, unit-tested). The minute rows, the hour rows and the
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
#include "arena.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "entry.h"
#include "json.h"
#include "ledger.h"
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
#include <stddef.h>
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
#define COPY_MAX ((size_t)256 << 20) /* COPY text and array parameters of one batch */
#define NO_PEND SIZE_MAX
#define HASH_LEN SX_ENTRY_KEY_LEN
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

/* One data point of the batch, with its entry and series. */
struct obs {
    long long series;        /* 0 until resolved (see pend) */
    long long project;
    size_t ent;              /* its entry in R->ents: cumulative points apply in stream order */
    size_t pend;             /* NO_PEND, or its series' index in R->pends while being resolved */
    enum obs_kind kind;
    int monotonic;
    uint64_t start_ns, time_ns;
    double value;            /* number points */
    const hist_point_t *hp;  /* histogram points */
    const exp_point_t *ep;   /* exponential histogram points */
    const summary_point_t *sp; /* summary points */
    size_t order;            /* position in the batch: ties keep it */
};

/* One (series, minute) or (series, hour) row to upsert. */
struct row {
    long long series, project;
    int64_t bucket;
    long long count;
    double sum, min, max, last;
    int has_minmax, has_last;
    uint64_t last_ns;                        /* newest point's time; 0: none */
    size_t nb;                               /* histogram buckets, 0 otherwise */
    uint64_t buckets[SX_ROLLUP_MAX_BUCKETS];
    const double *bounds;                    /* nb - 1 of them, in the batch's arena */
    struct sx_rollup_exp exp;                /* exponential histograms: delta buckets */
    const summary_point_t *summary;          /* summaries: the newest point (quantiles), in the arena */
};

/* One raw point to insert into metric_points_raw. */
struct raw {
    long long series, project;
    uint64_t time_ns;
    long long count;
    double sum, min, max, last;
    int has_minmax, has_last;
};

/* A series cache slot: key = SHA-256(project, name, attributes) cut to 16
 * bytes. A negative id is a series of the current batch not resolved yet:
 * -(its index in R->pends + 1). */
struct slot {
    uint8_t key[HASH_LEN];
    long long id; /* 0: empty */
};

/* A series the batch needs that is not in the cache: resolved for the whole
 * batch in one statement (series_resolve). */
struct pend {
    uint8_t key[HASH_LEN];   /* cache key */
    uint8_t ahash[HASH_LEN]; /* attrs_hash */
    long long project;
    const metric_t *m;       /* in the batch's arena */
    const char *type, *temporality;
    int monotonic;
    size_t json_off, json_len; /* the attribute document in R->pjson */
    long long id;
};

/* One valid entry of the batch. */
struct ent {
    const char *id;          /* stream id, in the XREADGROUP reply */
    size_t idlen;
    long long project;
    uint8_t hash[HASH_LEN];  /* ledger key: SHA-256(project id, body) */
    const sx_metrics_req *req; /* in the batch's arena */
    size_t npoints;
    int fresh;               /* its ledger row is new: it is applied */
};

/* The cumulative state of one series the batch touches. */
struct cumchange {
    long long series, project;
    size_t tag;              /* the last entry that moved it: its ledger key tags the state */
    struct sx_rollup_cum old, cur;
    redisReply *reply;       /* the GET reply until parsed */
};

/* The process state; one instance, owned by main. */
struct rollup {
    struct sx_config cfg;
    char consumer[96];
    char stream[160];
    char dead[176];
    redisContext *rc;        /* NULL or dead while disconnected */
    PGconn *pg;              /* NULL while disconnected */
    int pg_session;          /* temp stage tables made on this connection */
    struct sx_arena *arena;  /* the batch's unpacked requests */
    int history;             /* re-reading our own pending entries from "0" */
    struct slot *cache;      /* series ids; power-of-two size */
    size_t cache_cap, cache_n;
    struct ent *ents;        /* valid entries of the batch, in stream order */
    size_t ents_n, ents_cap;
    struct pend *pends;      /* series of the batch to resolve */
    size_t pends_n, pends_cap;
    struct obs *obs;
    size_t obs_n, obs_cap;
    struct row *rows;        /* minute rows of the batch */
    size_t rows_n, rows_cap;
    struct row *hrows;       /* hour rows of the batch (merged minute rows) */
    size_t hrows_n, hrows_cap;
    struct row *mrows;       /* scratch: minute rows merged when out of order */
    size_t mrows_cap;
    size_t *idx;             /* scratch: row order */
    size_t idx_cap;
    struct sx_ledger_item *litems; /* scratch: the batch's ledger rows */
    size_t litems_cap;
    struct raw *raw;
    size_t raw_n, raw_cap;
    struct cumchange *cum;
    size_t cum_n, cum_cap;
    struct sx_buf json, pjson, sql, copy;
    long long st_entries, st_points, st_skipped, st_dup, st_dead, st_stale, st_expired, st_batches;
    double st_db_ms;
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

/* Sets key's id, adding the key when it is not there (the cache may have
 * started over since it was added). */
static void cache_set(struct rollup *R, const uint8_t key[HASH_LEN], long long id)
{
    for (size_t i = slot_of(R, key);; i = (i + 1) & (R->cache_cap - 1)) {
        if (!R->cache[i].id) break;
        if (memcmp(R->cache[i].key, key, HASH_LEN) == 0) {
            R->cache[i].id = id;
            return;
        }
    }
    cache_put(R, key, id);
}

/* Forgets every id: after a failed batch, whose unresolved series (negative
 * ids) must not stay. */
static void cache_clear(struct rollup *R)
{
    memset(R->cache, 0, R->cache_cap * sizeof(*R->cache));
    R->cache_n = 0;
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

/* Staging tables for the batch's rows: COPY in, then one upsert per table. */
static const char SESSION_SQL[] =
    "SET jit = off; "
    "CREATE TEMP TABLE IF NOT EXISTS m1_stage (LIKE metric_points_1m) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS h1_stage (LIKE metric_points_1h) ON COMMIT DELETE ROWS";

static int pg_ready(struct rollup *R)
{
    if (R->pg && PQstatus(R->pg) != CONNECTION_OK) R->pg_session = 0;
    if (sx_pg_ensure(&R->pg, R->cfg.pg_conninfo) != SX_OK) {
        R->pg_session = 0;
        return SX_ERR;
    }
    if (!R->pg_session) {
        if (PQtransactionStatus(R->pg) != PQTRANS_IDLE) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
        if (sx_pg_exec(R->pg, SESSION_SQL, "rollup session") != SX_OK) return SX_ERR;
        R->pg_session = 1;
    }
    return SX_OK;
}

/* The series of a data point: its id when cached (*pend = NO_PEND), else 0
 * and *pend its index in R->pends (one per distinct series of the batch),
 * resolved later by series_resolve. SX_ERR when the attributes are too big. */
static int series_of(struct rollup *R, long long project, const metric_t *m, const char *type, const char *temporality,
                     int monotonic, kv_t **res, size_t nres, kv_t **pt, size_t npt, long long *id, size_t *pend)
{
    uint8_t key[HASH_LEN];
    char pfx[32];
    if (attrs_json(R, res, nres, pt, npt) != SX_OK) return SX_ERR;
    int n = snprintf(pfx, sizeof(pfx), "%lld\n", project);
    sha16(pfx, (size_t)n, m->name, strlen(m->name) + 1, R->json.data, R->json.len, key);
    long long c = cache_get(R, key);
    *id = c > 0 ? c : 0;
    *pend = c < 0 ? (size_t)(-c - 1) : NO_PEND;
    if (c) return SX_OK;
    if (R->pends_n == R->pends_cap) {
        R->pends_cap = R->pends_cap ? R->pends_cap * 2 : 64;
        R->pends = xrealloc(R->pends, R->pends_cap * sizeof(*R->pends));
    }
    struct pend *q = &R->pends[R->pends_n];
    memcpy(q->key, key, HASH_LEN);
    sha16(type, strlen(type) + 1, R->json.data, R->json.len, "", 0, q->ahash);
    q->project = project, q->m = m, q->type = type, q->temporality = temporality, q->monotonic = monotonic;
    q->json_off = R->pjson.len, q->json_len = R->json.len, q->id = 0;
    if (sx_buf_append(&R->pjson, R->json.data, R->json.len) != SX_OK) return SX_ERR;
    *pend = R->pends_n++;
    cache_put(R, key, -(long long)*pend - 1);
    return SX_OK;
}

/* Appends s[0..n) as one quoted element of a PostgreSQL array literal. */
static int arr_str(struct sx_buf *b, const char *s, size_t n)
{
    int ok = sx_buf_putc(b, '"') == SX_OK;
    for (size_t i = 0; i < n && ok; i++) {
        if (s[i] == '"' || s[i] == '\\') ok &= sx_buf_putc(b, '\\') == SX_OK;
        ok &= sx_buf_putc(b, s[i]) == SX_OK;
    }
    return ok && sx_buf_putc(b, '"') == SX_OK ? SX_OK : SX_ERR;
}

/* Creates or finds every series of R->pends with one statement (multi-row
 * INSERT ... ON CONFLICT DO NOTHING RETURNING, joined with what exists). A
 * series another instance inserted and committed while the statement ran
 * is invisible to its snapshot: the statement runs a second time for those.
 * Committed on its own: a series row without points is harmless. Fills
 * pends[].id and the cache. SX_ERR on a database error. */
static int series_resolve(struct rollup *R)
{
    static const char sql[] =
        "WITH v AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
        "$7::bool[], $8::text[], $9::text[]) WITH ORDINALITY AS v(p, n, ty, u, d, te, mo, a, h, k)), "
        "ins AS (INSERT INTO metric_series (project_id, name, type, unit, description, temporality, monotonic, "
        "attributes, attrs_hash) SELECT p, n, ty, u, d, te, mo, a::json, decode(h, 'hex') FROM v ORDER BY p, n, h "
        "ON CONFLICT (project_id, name, attrs_hash) DO NOTHING RETURNING id, project_id, name, attrs_hash) "
        "SELECT v.k, COALESCE(i.id, s.id) FROM v "
        "LEFT JOIN ins i ON i.project_id = v.p AND i.name = v.n AND i.attrs_hash = decode(v.h, 'hex') "
        "LEFT JOIN metric_series s ON s.project_id = v.p AND s.name = v.n AND s.attrs_hash = decode(v.h, 'hex')";
    size_t off[9];
    int ok = 1;
    if (!R->pends_n) return SX_OK;
    sx_buf_reset(&R->copy);
    for (int c = 0; c < 9 && ok; c++) {
        off[c] = R->copy.len;
        ok &= sx_buf_putc(&R->copy, '{') == SX_OK;
        for (size_t i = 0; i < R->pends_n && ok; i++) {
            const struct pend *q = &R->pends[i];
            const char *u = q->m->unit ? q->m->unit : "", *d = q->m->description ? q->m->description : "";
            char hx[2 * HASH_LEN + 1];
            if (i) ok &= sx_buf_putc(&R->copy, ',') == SX_OK;
            switch (c) {
            case 0: ok &= sx_buf_printf(&R->copy, "%lld", q->project) == SX_OK; break;
            case 1: ok &= arr_str(&R->copy, q->m->name, strlen(q->m->name)) == SX_OK; break;
            case 2: ok &= sx_buf_puts(&R->copy, q->type) == SX_OK; break;
            case 3: ok &= arr_str(&R->copy, u, strlen(u)) == SX_OK; break;
            case 4: ok &= arr_str(&R->copy, d, strlen(d)) == SX_OK; break;
            case 5: ok &= sx_buf_puts(&R->copy, q->temporality) == SX_OK; break;
            case 6: ok &= sx_buf_puts(&R->copy, q->monotonic ? "t" : "f") == SX_OK; break;
            case 7: ok &= arr_str(&R->copy, R->pjson.data + q->json_off, q->json_len) == SX_OK; break;
            default: hex16(q->ahash, hx), ok &= sx_buf_puts(&R->copy, hx) == SX_OK; break;
            }
        }
        ok &= sx_buf_putc(&R->copy, '}') == SX_OK && sx_buf_putc(&R->copy, '\0') == SX_OK;
    }
    if (!ok) {
        sx_warn("series of one batch over %zu bytes", (size_t)COPY_MAX);
        return SX_ERR;
    }
    const char *params[9];
    for (int c = 0; c < 9; c++) params[c] = R->copy.data + off[c];
    size_t missing = R->pends_n;
    for (int attempt = 0; attempt < 2 && missing; attempt++) {
        PGresult *r = sx_pg_query(R->pg, sql, 9, params, "metric_series upsert");
        if (!r) return SX_ERR;
        for (int row = 0; row < PQntuples(r); row++) {
            long long k = strtoll(PQgetvalue(r, row, 0), NULL, 10);
            if (k < 1 || (size_t)k > R->pends_n || PQgetisnull(r, row, 1) || R->pends[k - 1].id) continue;
            R->pends[k - 1].id = strtoll(PQgetvalue(r, row, 1), NULL, 10);
            if (R->pends[k - 1].id > 0) missing--;
        }
        PQclear(r);
    }
    if (missing) {
        sx_warn("metric_series upsert: %zu series neither inserted nor found", missing);
        return SX_ERR;
    }
    for (size_t i = 0; i < R->pends_n; i++) cache_set(R, R->pends[i].key, R->pends[i].id);
    return SX_OK;
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

/* An error reply NOGROUP (the stream or the group was deleted, e.g. by
 * FLUSHALL): recreate the group and re-read our history. Returns 1 when r
 * was such a reply. */
static int nogroup(struct rollup *R, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOGROUP", 7) != 0) return 0;
    sx_warn("group %s on %s is gone; creating it again", GROUP, R->stream);
    if (sx_redis_group_create(R->rc, R->stream, GROUP) == SX_OK) R->history = 1;
    return 1;
}

static int ent_is_fresh_key(const struct rollup *R, const char *hex)
{
    char h[2 * HASH_LEN + 1];
    for (size_t i = 0; i < R->ents_n; i++) {
        if (!R->ents[i].fresh) continue;
        hex16(R->ents[i].hash, h);
        if (memcmp(h, hex, 2 * HASH_LEN) == 0) return 1;
    }
    return 0;
}

/* Loads the cumulative states of R->cum (series set, old cleared) with one
 * pipelined GET per series. A tagged state ("<hex>|<new>|<old>") takes the
 * new state when the tagging entry's ledger row is committed, else the old
 * one; every tag is looked up in one statement (the caller's transaction
 * sees committed rows). A tag of an entry fresh in this batch was left by a
 * failed earlier attempt of it: its ledger row seen now is our own, not
 * committed, so it takes the old state. SX_ERR on a Redis or PostgreSQL
 * failure. */
static int cum_load_all(struct rollup *R)
{
    char key[224];
    int rc = SX_OK;
    size_t sent = 0, ntag = 0;
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        c->reply = NULL;
        cum_key(R, c->project, c->series, key, sizeof(key));
        if (redisAppendCommand(R->rc, "GET %s", key) != REDIS_OK) return SX_ERR;
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r) {
            redis_failed(R, "GET cum", r);
            rc = SX_ERR;
            break;
        }
        if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
            if (rc == SX_OK) redis_failed(R, "GET cum", r);
            rc = SX_ERR;
        }
        R->cum[i].reply = r;
    }
    /* Tags to look up, as a text[] of hex keys. */
    sx_buf_reset(&R->sql);
    sx_buf_putc(&R->sql, '{');
    for (size_t i = 0; rc == SX_OK && i < R->cum_n; i++) {
        const redisReply *r = R->cum[i].reply;
        if (r->type == REDIS_REPLY_STRING && r->len > 2 * HASH_LEN && r->str[2 * HASH_LEN] == '|' &&
            !ent_is_fresh_key(R, r->str)) {
            if (ntag++) sx_buf_putc(&R->sql, ',');
            sx_buf_append(&R->sql, r->str, 2 * HASH_LEN);
        }
    }
    PGresult *q = NULL;
    if (rc == SX_OK && ntag) {
        if (sx_buf_putc(&R->sql, '}') != SX_OK || sx_buf_putc(&R->sql, '\0') != SX_OK) {
            sx_warn("cumulative state tags over the statement buffer");
            rc = SX_ERR;
        } else {
            const char *params[2] = {LEDGER_STREAM, R->sql.data};
            q = sx_pg_query(R->pg,
                            "SELECT encode(entry_hash, 'hex') FROM persist_ledger WHERE stream = $1 AND entry_hash = "
                            "ANY (SELECT decode(h, 'hex') FROM unnest($2::text[]) AS h)",
                            2, params, "ledger look-up");
            if (!q) rc = SX_ERR;
        }
    }
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        redisReply *r = c->reply;
        c->reply = NULL;
        memset(&c->old, 0, sizeof(c->old));
        if (rc == SX_OK && r->type == REDIS_REPLY_STRING) {
            const char *s = r->str;
            size_t len = r->len;
            if (len > 2 * HASH_LEN && s[2 * HASH_LEN] == '|') {
                const char *bar = memchr(s + 2 * HASH_LEN + 1, '|', len - 2 * HASH_LEN - 1);
                int committed = 0;
                for (int row = 0; q && bar && !committed && row < PQntuples(q); row++)
                    committed = memcmp(PQgetvalue(q, row, 0), s, 2 * HASH_LEN) == 0;
                const char *nw = s + 2 * HASH_LEN + 1;
                if (!bar) {
                    cum_key(R, c->project, c->series, key, sizeof(key));
                    sx_warn("malformed cumulative state under %s; starting over", key);
                } else if (committed) {
                    sx_rollup_cum_parse(nw, (size_t)(bar - nw), &c->old);
                } else {
                    sx_rollup_cum_parse(bar + 1, (size_t)(s + len - bar - 1), &c->old);
                }
            } else if (sx_rollup_cum_parse(s, len, &c->old) != SX_OK) {
                cum_key(R, c->project, c->series, key, sizeof(key));
                sx_warn("malformed cumulative state under %s; starting over", key);
            }
        }
        c->cur = c->old;
        if (r) freeReplyObject(r);
    }
    if (q) PQclear(q);
    return rc;
}

/* Replaces a key's value only while it still holds ARGV[1]: the plain state
 * written after COMMIT must not overwrite what another instance tagged after
 * taking the series' lock from us. */
static const char CAS_SCRIPT[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end return 0";

/* Writes the states of R->cum, pipelined: each tagged with the ledger key of
 * the last entry that moved it (before COMMIT), or plain (after COMMIT, only
 * where the tagged value is still there). SX_ERR on a Redis failure. */
static int cum_store(struct rollup *R, int tagged)
{
    static char val[2 * SX_ROLLUP_CUM_TEXT_MAX + 64], nw[SX_ROLLUP_CUM_TEXT_MAX], old[SX_ROLLUP_CUM_TEXT_MAX];
    char key[224], hex[2 * HASH_LEN + 1];
    size_t sent = 0;
    int rc = SX_OK;
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        size_t nn = sx_rollup_cum_format(&c->cur, nw, sizeof(nw));
        size_t on = sx_rollup_cum_format(&c->old, old, sizeof(old));
        if (nn == 0) continue;
        hex16(R->ents[c->tag].hash, hex);
        int n = snprintf(val, sizeof(val), "%s|%.*s|%.*s", hex, (int)nn, nw, (int)on, old);
        if (n < 0 || (size_t)n >= sizeof(val)) continue;
        cum_key(R, c->project, c->series, key, sizeof(key));
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
    if (rc != SX_OK && !nogroup(R, r)) redis_failed(R, "XACK", r);
    if (r) freeReplyObject(r);
    if (rc == SX_OK) R->acked = 1;
    return rc;
}

/* Acknowledges every entry of R->ents with one XACK. */
static int xack_batch(struct rollup *R)
{
    if (!R->ents_n) return SX_OK;
    const char **argv = xrealloc(NULL, (R->ents_n + 3) * sizeof(*argv));
    size_t *argl = xrealloc(NULL, (R->ents_n + 3) * sizeof(*argl));
    argv[0] = "XACK", argl[0] = 4;
    argv[1] = R->stream, argl[1] = strlen(R->stream);
    argv[2] = GROUP, argl[2] = strlen(GROUP);
    for (size_t i = 0; i < R->ents_n; i++) argv[i + 3] = R->ents[i].id, argl[i + 3] = R->ents[i].idlen;
    redisReply *r = redisCommandArgv(R->rc, (int)R->ents_n + 3, argv, argl);
    free(argv);
    free(argl);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? SX_OK : SX_ERR;
    if (rc != SX_OK && !nogroup(R, r)) redis_failed(R, "XACK", r);
    if (r) freeReplyObject(r);
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
static int obs_cmp(const void *a, const void *b)
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
static int build_rows(struct rollup *R)
{
    struct sx_rollup_exp ex, dex;
    R->rows_n = R->hrows_n = R->raw_n = R->cum_n = 0;
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
    /* Hour rows: the minute rows merged (they are sorted by series, then time). */
    for (size_t i = 0; i < R->rows_n; i++) {
        const struct row *m = &R->rows[i];
        merge_row(row_in(&R->hrows, &R->hrows_n, &R->hrows_cap, m->series, m->project, m->bucket / HOUR_NS * HOUR_NS),
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

/* Upserts rows (sorted, one per key) into metric_points_1m (hour = 0) or
 * metric_points_1h: stored exponential buckets merged in, COPY into the
 * stage table, one INSERT ... ON CONFLICT. SX_ERR on a database error. */
static int write_rows(struct rollup *R, int hour, struct row *rows, size_t nrows)
{
    const char *table = hour ? "metric_points_1h" : "metric_points_1m";
    if (!nrows) return SX_OK;
    if (exp_merge_stored(R, table, rows, nrows) != SX_OK) return SX_ERR;
    sx_buf_reset(&R->copy);
    for (size_t i = 0; i < nrows; i++)
        if (copy_row(R, &rows[i]) != SX_OK) {
            sx_warn("%s rows of one batch over %zu bytes", table, (size_t)COPY_MAX);
            return SX_ERR;
        }
    if (copy_in(R, hour ? "COPY h1_stage (" ROW_COLUMNS ") FROM STDIN" : "COPY m1_stage (" ROW_COLUMNS ") FROM STDIN",
                hour ? "h1_stage" : "m1_stage") != SX_OK)
        return SX_ERR;
    PGresult *r = sx_pg_query(R->pg, hour ? UPSERT_SQL("metric_points_1h", "h1_stage") : UPSERT_SQL("metric_points_1m", "m1_stage"),
                              0, NULL, hour ? "metric_points_1h upsert" : "metric_points_1m upsert");
    if (!r) return SX_ERR;
    PQclear(r);
    return SX_OK;
}

/* COPYs R->raw into metric_points_raw. SX_ERR on a database error. */
static int write_raw(struct rollup *R)
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
    if (build_rows(R) != SX_OK || write_rows(R, 0, R->rows, R->rows_n) != SX_OK ||
        write_rows(R, 1, R->hrows, R->hrows_n) != SX_OK || write_raw(R) != SX_OK)
        goto rollback;
    if (R->cum_n && cum_store(R, 1) != SX_OK) goto rollback;
    if (sx_pg_exec(R->pg, "COMMIT", "COMMIT") != SX_OK) return SX_ERR;
    R->st_entries += (long long)R->ents_n - dup;
    R->st_dup += dup;
    R->st_points += points;
    R->st_batches++;
    R->st_db_ms += (double)(sx_mono_ns() - t0) / 1e6;
    if (R->cum_n) cum_store(R, 0); /* best effort: the tagged state is right too */
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
    free(R.cache);
    free(R.ents);
    free(R.pends);
    free(R.mrows);
    free(R.idx);
    free(R.obs);
    free(R.rows);
    free(R.hrows);
    free(R.raw);
    free(R.cum);
    sx_info("stopped");
    return 0;
}
