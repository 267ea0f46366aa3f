/* rollup_red_int.h: the span rollup thread's private declarations, shared by
 * rollup_red.c (thread, stream, batch, PostgreSQL writes) and rollup_red_agg.c
 * (span records, edges, aggregation). The design note is at the top of
 * rollup_red.c. */
#ifndef SX_ROLLUP_RED_INT_H
#define SX_ROLLUP_RED_INT_H

#include "rollup_red.h"

#include "arena.h"
#include "buf.h"
#include "copyrow.h"
#include "entry.h"
#include "ledger.h"
#include "log.h"
#include "otlp.h"
#include "pg.h"
#include "red.h"
#include "redis.h"
#include "sqlnorm.h"
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUP "rollup"
#define LEDGER_STREAM "spans-red"
#define READ_COUNT 512
#define GATHER_MS 250 /* after a short read, let entries gather: fewer, larger transactions */
#define ENTRY_ARENA_CHUNK ((size_t)1 << 20)
#define ENTRY_ARENA_MAX ((size_t)1 << 30)
#define STR_ARENA_MAX ((size_t)1 << 30)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define TRIM_EVERY_NS 1000000000LL
#define STATS_EVERY_NS (10LL * 1000000000LL)
#define MINUTE_NS 60000000000LL
#define HASH_LEN SX_ENTRY_KEY_LEN
#define SPANMAP_TTL_S 120
/* KEYS[1]: the other side's key, KEYS[2]: ours. Returns the other side's
 * value, or leaves ours (EX ARGV[2]) and returns nil. */
#define SPANMAP_LUA                                                                                                   \
    "local v = redis.call('GET', KEYS[1]) if v then return v end "                                                   \
    "redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]) return false"
#define SERVICE_MAX 256
#define OPERATION_MAX 512
#define STATEMENT_MAX 4096
#define COPY_MAX ((size_t)256 << 20)

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

enum { KIND_SERVER = 2, KIND_CLIENT = 3, KIND_PRODUCER = 4, KIND_CONSUMER = 5 };
enum row_type { ROW_RED = 1, ROW_EDGE, ROW_DB };

/* One edge contribution: from -> to in minute bucket, of a child span. */
struct edge {
    const char *from, *to; /* interned; from NULL: none */
    int64_t bucket;
    int error;
    double ms;
};

/* One span of the batch, reduced to what the rollup needs. Strings are
 * interned in R->strs for the batch. */
struct rec {
    long long project;
    size_t ent;              /* its entry in R->ents */
    uint64_t id, parent;     /* span ids as 8 raw bytes */
    int has_parent;
    int kind;
    int error;
    int status;              /* HTTP status, 0 when none */
    int64_t bucket;
    double ms;
    const char *service, *operation;
    const char *db_system, *statement, *db_name; /* db_system NULL: not a database call */
    int64_t stmt_hash;
    int has_child;           /* a child was found in the batch */
    struct edge as_child;    /* parent found (batch or ss key) */
    struct edge as_parent;   /* child found through a pc key */
};

/* One stream entry of the batch. */
struct ent {
    const char *id;
    size_t idlen;
    long long project;
    uint8_t hash[HASH_LEN];
    int valid;               /* unpacked: gets a ledger row */
    int fresh;               /* its ledger row is new: its spans count */
};

/* One aggregated row (any table); the key is the first fields. */
struct agg {
    int type;                /* 0: empty slot */
    int kind;
    long long project;
    const char *s1, *s2, *s3; /* red: service, operation; edge: from, to; db: service, system, statement */
    int64_t bucket, hash;
    const char *db_name;
    long long count, errors, cls[4];
    double sum, min, max;
    long long buckets[SX_RED_NBUCKETS];
};

/* An interned string. */
struct istr {
    uint64_t h;
    const char *s; /* NULL: empty slot */
    size_t len;
};

/* A lookup of the index of span ids. */
struct idx {
    long long project;
    uint64_t id;
    size_t rec;
};

/* The thread's state; one instance, owned by the thread (made in
 * sx_rollup_red_start, freed when the thread ends). */
struct red {
    const struct sx_config *cfg;
    char consumer[96], stream[160], dead[176];
    redisContext *rc;
    PGconn *pg;
    int pg_session;          /* temp tables made on this connection */
    int history, acked;
    struct sx_arena *arena;  /* one entry's unpacked request */
    struct sx_arena *strs;   /* the batch's interned strings */
    struct istr *itab;
    size_t icap, in;
    struct ent *ents;
    size_t nents, ents_cap;
    struct rec *recs;
    size_t nrecs, recs_cap;
    struct idx *index;
    size_t index_cap;
    struct agg *aggs;
    size_t acap, an;
    size_t *pend;            /* records waiting for a Redis reply */
    size_t pend_cap;
    char *norm;              /* STATEMENT_MAX + 1 */
    struct sx_ledger_item *litems; /* scratch: the valid entries' ledger rows */
    size_t litems_cap;
    struct sx_buf copy, keys;       /* keys: the ledger's array parameters */
    long long st_spans, st_entries, st_batches, st_dup, st_dead, st_rows;
    double st_db_ms;
    int64_t next_claim_ns, next_trim_ns, next_stats_ns, st_cpu_ns;
};

/* rollup_red.c */
void *red_xrealloc(void *p, size_t n);
void red_sha(const void *a, size_t an, const void *b, size_t bn, uint8_t *out, size_t outlen);
uint64_t red_fnv(const void *p, size_t n, uint64_t h);
uint64_t red_mix(uint64_t h);

/* rollup_red_agg.c */
int red_collect(struct red *R, size_t ent, long long project, const sx_trace_req *req);
int red_resolve_edges(struct red *R);
void red_agg_grow(struct red *R);
void red_aggregate(struct red *R);

#endif
