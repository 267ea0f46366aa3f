/* rollup_int.h: sextant-rollup's private declarations, shared by rollup.c (main
 * loop, stream reading, entries, batches), rollup_state.c (series registry,
 * cumulative state in Redis) and rollup_write.c (rows and the PostgreSQL
 * staging and upserts). The design note is at the top of rollup.c. */
#ifndef SX_ROLLUP_INT_H
#define SX_ROLLUP_INT_H

#include "arena.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "entry.h"
#include "json.h"
#include "ledger.h"
#include "live.h"
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
#define FIVE_MIN_NS (5LL * MINUTE_NS)
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
    struct row *frows;       /* 5-minute rows of the batch (merged minute rows, sql/021) */
    size_t frows_n, frows_cap;
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
    struct sx_live_watch watch; /* which projects sextant-sse watches (live.h) */
    struct sx_buf live, live_items; /* the batch's live XADDs (RESP), sent with its XACK; scratch */
    size_t nlive;
    long long st_entries, st_points, st_skipped, st_dup, st_dead, st_stale, st_expired, st_batches;
    double st_db_ms;
    int acked;
    int64_t next_claim_ns, next_trim_ns, next_stats_ns, next_expire_ns;
};

extern volatile sig_atomic_t stop_flag;

static inline void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "sextant-rollup: out of memory\n");
        abort();
    }
    return q;
}

static inline void hex16(const uint8_t h[HASH_LEN], char out[2 * HASH_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HASH_LEN; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * HASH_LEN] = '\0';
}

/* rollup.c */
void redis_failed(const struct rollup *R, const char *what, const redisReply *r);
int obs_cmp(const void *a, const void *b);

/* rollup_state.c */
void cache_clear(struct rollup *R);
int pg_ready(struct rollup *R);
int series_of(struct rollup *R, long long project, const metric_t *m, const char *type, const char *temporality, int monotonic, kv_t **res, size_t nres, kv_t **pt, size_t npt, long long *id, size_t *pend);
int series_resolve(struct rollup *R);
int nogroup(struct rollup *R, const redisReply *r);
int cum_load_all(struct rollup *R);
int cum_store(struct rollup *R, int tagged);

/* rollup_write.c */
int build_rows(struct rollup *R);
/* The tables rows are written to (write_rows). */
enum rollup_res { ROLLUP_1M, ROLLUP_1H, ROLLUP_5M };
int write_rows(struct rollup *R, enum rollup_res res, struct row *rows, size_t nrows);
int write_raw(struct rollup *R);
void raw_expire(struct rollup *R);

#endif
