/* rollup.c: sextant-rollup: reads the metrics stream (group "rollup") and rolls data points into one-minute buckets in PostgreSQL.
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
 *   3. cumulative sums and histograms become deltas against the series'
 *      previous cumulative point, kept in Redis under
 *      <prefix>:{p<project>}:cum:<series> (lib/rollup_math.h); delta sums
 *      and gauges are taken as they are; points are merged into one row per
 *      (series, minute) and upserted into metric_points_1m, adding to what
 *      the minute holds;
 *   4. the new cumulative states are written to Redis *tagged* with the
 *      entry's ledger key: "<key hex>|<new state>|<old state>". A reader that
 *      finds a tagged state asks the ledger whether that entry committed and
 *      takes the new or the old state accordingly, so the state only moves
 *      with a COMMIT, whatever crashes in between;
 *   5. COMMIT, then the untagged new states (an optimization: skips the
 *      ledger look-up next time), then XACK.
 * Entries of this consumer left pending by a crash are re-read from "0" at
 * start; entries of other (dead) consumers are reclaimed with XAUTOCLAIM.
 * Acknowledged entries are trimmed below the oldest entry any group still
 * needs, as sextant-persist trims its streams.
 *
 * Limits of this first version: one instance (the cumulative state assumes
 * one writer per series); exponential histograms and summaries are skipped
 * (counted in the stats line); histogram points with more than
 * SX_ROLLUP_MAX_BUCKETS buckets are skipped. Settings persist_block_ms and
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
#define HASH_LEN 16
#define SERIES_CACHE_MAX ((size_t)1 << 20) /* entries; the cache is emptied when full */

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_point_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_point_t;

enum obs_kind { OBS_GAUGE, OBS_SUM_DELTA, OBS_SUM_CUM, OBS_HIST_DELTA, OBS_HIST_CUM };

/* One data point of the entry being processed, with its series. */
struct obs {
    long long series;
    enum obs_kind kind;
    int monotonic;
    uint64_t start_ns, time_ns;
    double value;            /* number points */
    const hist_point_t *hp;  /* histogram points */
    size_t order;            /* position in the request: ties keep it */
};

/* One (series, minute) row to upsert. */
struct row {
    long long series;
    int64_t bucket;
    long long count;
    double sum, min, max, last;
    int has_minmax, has_last;
    size_t nb;                               /* histogram buckets, 0 otherwise */
    uint64_t buckets[SX_ROLLUP_MAX_BUCKETS];
    const double *bounds;                    /* nb - 1 of them, in the request's arena */
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
    struct row *rows;
    size_t rows_n, rows_cap;
    struct cumchange *cum;
    size_t cum_n, cum_cap;
    struct sx_buf json, sql;
    long long st_entries, st_points, st_skipped, st_dup, st_dead;
    int acked;
    int64_t next_claim_ns, next_trim_ns, next_stats_ns;
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

/* Writes the changed states: tagged with the entry's key (before COMMIT)
 * or plain (after). SX_ERR on a Redis failure. */
static int cum_store(struct rollup *R, long long project, const uint8_t hash[HASH_LEN], int tagged)
{
    char key[224], val[2048], hex[2 * HASH_LEN + 1];
    size_t sent = 0;
    int rc = SX_OK;
    hex16(hash, hex);
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        char nw[900], old[900];
        size_t nn = sx_rollup_cum_format(&c->cur, nw, sizeof(nw));
        size_t on = sx_rollup_cum_format(&c->old, old, sizeof(old));
        if (nn == 0) continue;
        int n = tagged ? snprintf(val, sizeof(val), "%s|%.*s|%.*s", hex, (int)nn, nw, (int)on, old)
                       : snprintf(val, sizeof(val), "%.*s", (int)nn, nw);
        if (n < 0 || (size_t)n >= sizeof(val)) continue;
        cum_key(R, project, c->series, key, sizeof(key));
        if (redisAppendCommand(R->rc, "SET %s %b", key, val, (size_t)n) != REDIS_OK) return SX_ERR;
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR) {
            redis_failed(R, "SET cum", r);
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
                    R->st_skipped += (long long)m->exponential_histogram->n_data_points;
                    continue;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    R->st_skipped += (long long)m->summary->n_data_points;
                    continue;
                default: continue;
                }
                const char *temp = temporality == 1 ? "delta" : temporality == 2 ? "cumulative" : "unspecified";
                for (size_t p = 0; p < n; p++) {
                    kv_t **pa = np ? np[p]->attributes : hp[p]->attributes;
                    size_t npa = np ? np[p]->n_attributes : hp[p]->n_attributes;
                    uint32_t flags = np ? np[p]->flags : hp[p]->flags;
                    if (flags & 1u) continue; /* no recorded value */
                    if (hp && (hp[p]->n_bucket_counts > SX_ROLLUP_MAX_BUCKETS ||
                               (hp[p]->n_bucket_counts && hp[p]->n_bucket_counts != hp[p]->n_explicit_bounds + 1))) {
                        R->st_skipped++;
                        continue;
                    }
                    if (np && !isfinite(num_value(np[p]))) {
                        R->st_skipped++;
                        continue;
                    }
                    long long sid = series_id(R, project, m, type, temp, monotonic, res, nres, pa, npa);
                    if (!sid) return SX_ERR;
                    struct obs *o = obs_add(R);
                    o->series = sid;
                    o->monotonic = monotonic;
                    if (np) {
                        o->start_ns = np[p]->start_time_unix_nano;
                        o->time_ns = np[p]->time_unix_nano;
                        o->value = num_value(np[p]);
                        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE) o->kind = OBS_GAUGE;
                        else o->kind = temporality == 2 ? OBS_SUM_CUM : OBS_SUM_DELTA;
                    } else {
                        o->hp = hp[p];
                        o->start_ns = hp[p]->start_time_unix_nano;
                        o->time_ns = hp[p]->time_unix_nano;
                        o->kind = temporality == 2 ? OBS_HIST_CUM : OBS_HIST_DELTA;
                    }
                }
            }
        }
    }
    return SX_OK;
}

static struct row *row_for(struct rollup *R, long long series, int64_t bucket)
{
    if (R->rows_n && R->rows[R->rows_n - 1].series == series && R->rows[R->rows_n - 1].bucket == bucket)
        return &R->rows[R->rows_n - 1];
    if (R->rows_n == R->rows_cap) {
        R->rows_cap = R->rows_cap ? R->rows_cap * 2 : 64;
        R->rows = xrealloc(R->rows, R->rows_cap * sizeof(*R->rows));
    }
    struct row *w = &R->rows[R->rows_n++];
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

/* Computes deltas (loading the states of cumulative series) and merges the
 * sorted observations into R->rows and R->cum. SX_ERR on a Redis or
 * database failure. */
static int build_rows(struct rollup *R, long long project)
{
    R->rows_n = R->cum_n = 0;
    qsort(R->obs, R->obs_n, sizeof(*R->obs), obs_cmp);
    struct cumchange *cc = NULL;
    for (size_t i = 0; i < R->obs_n; i++) {
        const struct obs *o = &R->obs[i];
        int cumulative = o->kind == OBS_SUM_CUM || o->kind == OBS_HIST_CUM;
        if (cumulative && (!cc || cc->series != o->series)) {
            if (R->cum_n == R->cum_cap) {
                R->cum_cap = R->cum_cap ? R->cum_cap * 2 : 64;
                R->cum = xrealloc(R->cum, R->cum_cap * sizeof(*R->cum));
            }
            cc = &R->cum[R->cum_n++];
            cc->series = o->series;
            if (cum_load(R, project, o->series, &cc->old) != SX_OK) return SX_ERR;
            cc->cur = cc->old;
        }
        int64_t t = o->time_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)o->time_ns;
        struct row *w = row_for(R, o->series, t / MINUTE_NS * MINUTE_NS);
        switch (o->kind) {
        case OBS_GAUGE:
        case OBS_SUM_DELTA:
            w->count++;
            w->sum += o->value;
            minmax(w, o->value, o->value);
            w->last = o->value, w->has_last = 1;
            break;
        case OBS_SUM_CUM:
            w->count++;
            w->sum += sx_rollup_sum_delta(&cc->cur, o->start_ns, o->value, o->monotonic, NULL);
            minmax(w, o->value, o->value);
            w->last = o->value, w->has_last = 1;
            break;
        case OBS_HIST_DELTA:
        case OBS_HIST_CUM: {
            const hist_point_t *h = o->hp;
            uint64_t dcount = h->count, db[SX_ROLLUP_MAX_BUCKETS];
            double dsum = h->sum_present_case ? h->sum : 0;
            size_t nb = h->n_bucket_counts;
            if (nb) memcpy(db, h->bucket_counts, nb * sizeof(db[0]));
            if (o->kind == OBS_HIST_CUM &&
                sx_rollup_hist_delta(&cc->cur, o->start_ns, h->count, dsum, h->bucket_counts, nb, &dcount, &dsum, db,
                                     NULL) != SX_OK)
                continue;
            if (w->nb && (w->nb != nb || memcmp(w->bounds, h->explicit_bounds, (nb - 1) * sizeof(double)) != 0)) {
                /* Bounds changed inside one minute: keep the newest layout. */
                w->nb = 0;
            }
            if (!w->nb && nb) {
                memset(w->buckets, 0, sizeof(w->buckets));
                w->nb = nb;
                w->bounds = h->explicit_bounds;
            }
            for (size_t b = 0; b < nb; b++) w->buckets[b] += db[b];
            w->count += (long long)dcount;
            w->sum += dsum;
            if (h->min_present_case && h->max_present_case && dcount > 0) minmax(w, h->min, h->max);
            break;
        }
        }
    }
    return SX_OK;
}

static void put_double(struct sx_buf *b, double v)
{
    sx_buf_printf(b, "%.17g", v);
}

/* Upserts R->rows. SX_ERR on a database error. */
static int write_rows(struct rollup *R, long long project)
{
    char proj[24], series[24], bucket[24], count[24], sum[40], mn[40], mx[40], last[40];
    snprintf(proj, sizeof(proj), "%lld", project);
    for (size_t i = 0; i < R->rows_n; i++) {
        const struct row *w = &R->rows[i];
        snprintf(series, sizeof(series), "%lld", w->series);
        snprintf(bucket, sizeof(bucket), "%" PRId64, w->bucket);
        snprintf(count, sizeof(count), "%lld", w->count);
        snprintf(sum, sizeof(sum), "%.17g", w->sum);
        snprintf(mn, sizeof(mn), "%.17g", w->min);
        snprintf(mx, sizeof(mx), "%.17g", w->max);
        snprintf(last, sizeof(last), "%.17g", w->last);
        const char *bc = NULL, *bounds = NULL;
        sx_buf_reset(&R->sql);
        if (w->nb) {
            sx_buf_putc(&R->sql, '{');
            for (size_t b = 0; b < w->nb; b++) sx_buf_printf(&R->sql, "%s%" PRIu64, b ? "," : "", w->buckets[b]);
            sx_buf_puts(&R->sql, "}");
            sx_buf_putc(&R->sql, '\0');
            size_t boff = R->sql.len;
            sx_buf_putc(&R->sql, '{');
            for (size_t b = 0; b + 1 < w->nb; b++) {
                if (b) sx_buf_putc(&R->sql, ',');
                put_double(&R->sql, w->bounds[b]);
            }
            sx_buf_putc(&R->sql, '}');
            bc = R->sql.data;
            bounds = R->sql.data + boff;
        }
        const char *params[10] = {proj, series, bucket, count, sum, w->has_minmax ? mn : NULL,
                                  w->has_minmax ? mx : NULL, w->has_last ? last : NULL, bc, bounds};
        PGresult *r = sx_pg_query(
            R->pg,
            "INSERT INTO metric_points_1m (project_id, series_id, bucket_start_ns, count, sum, min, max, last, "
            "bucket_counts, bounds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bigint[], $10::float8[]) "
            "ON CONFLICT (project_id, series_id, bucket_start_ns) DO UPDATE SET "
            "count = metric_points_1m.count + EXCLUDED.count, sum = metric_points_1m.sum + EXCLUDED.sum, "
            "min = LEAST(metric_points_1m.min, EXCLUDED.min), max = GREATEST(metric_points_1m.max, EXCLUDED.max), "
            "last = COALESCE(EXCLUDED.last, metric_points_1m.last), "
            "bucket_counts = CASE WHEN EXCLUDED.bucket_counts IS NULL THEN metric_points_1m.bucket_counts "
            "WHEN metric_points_1m.bucket_counts IS NULL OR metric_points_1m.bounds IS DISTINCT FROM EXCLUDED.bounds "
            "THEN EXCLUDED.bucket_counts "
            "ELSE ARRAY(SELECT a + b FROM unnest(metric_points_1m.bucket_counts, EXCLUDED.bucket_counts) AS u(a, b)) "
            "END, bounds = COALESCE(EXCLUDED.bounds, metric_points_1m.bounds)",
            10, params, "metric_points_1m upsert");
        if (!r) return SX_ERR;
        PQclear(r);
    }
    return SX_OK;
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
    if (build_rows(R, project) != SX_OK || write_rows(R, project) != SX_OK) goto rollback;
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
            "buckets in PostgreSQL (metric_series, metric_points_1m). Run one instance.\n"
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
    if (now >= R->next_stats_ns) {
        if (R->st_entries || R->st_dup || R->st_dead || R->st_skipped)
            sx_info("rolled up %lld points of %lld entries; %lld already applied, %lld dead-lettered, %lld points "
                    "skipped (exponential histograms, summaries, oversized)",
                    R->st_points, R->st_entries, R->st_dup, R->st_dead, R->st_skipped);
        R->st_points = R->st_entries = R->st_dup = R->st_dead = R->st_skipped = 0;
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
    free(R.cum);
    sx_info("stopped");
    return 0;
}
