/* rollup_red.c: sextant-rollup's span rollup thread: RED per operation, service edges and database statements, one-minute buckets, batched.
 *
 * Design. One thread with its own Redis and PostgreSQL connections reads the
 * spans stream with its own XREADGROUP (group "rollup", up to READ_COUNT
 * entries, never together with the metrics stream of workers/rollup.c, so a
 * missing group on one stream cannot stall the other). A batch is applied
 * in ONE transaction whatever its size, because sextant-persist trims the
 * stream only below what every group has consumed: this group must keep up
 * with persist or ingest answers 503 at the high-water mark. Per batch:
 *   1. every entry is checked and unpacked (malformed ones are
 *      dead-lettered to <stream>:dead and acknowledged at once); its ledger
 *      key is SHA-256(project id, body) cut to 16 bytes, as everywhere; its
 *      spans become compact records, strings interned for the batch;
 *   2. edges: a span whose parent is in the batch (same project) with
 *      another service is an edge parent -> child. A parent or child in
 *      another batch goes through two short-lived Redis keys (SPANMAP_TTL_S)
 *      per project, in one pipelined round trip of a Lua script per span
 *      that takes the other side's key or else leaves its own, atomically:
 *        <prefix>:{p<id>}:ss:<span id>  the service of a CLIENT/PRODUCER span
 *            (not a database call) that had no child in its batch;
 *        <prefix>:{p<id>}:pc:<span id>  "<minute> <error> <ms> <service>" of
 *            a SERVER/CONSUMER child whose parent was not found: the parent,
 *            when it comes, counts the edge.
 *      So the edge is counted once, by whichever of the two comes second,
 *      if it comes within the TTL, also with several instances at once; the
 *      keys are bounded by the TTL and by holding only spans that crossed a
 *      batch;
 *   3. aggregation in memory, keyed by (project, service, operation, kind,
 *      minute) for SERVER and CONSUMER spans, (project, parent service,
 *      child service, minute) for edges and (project, service, db system,
 *      statement hash, minute) for CLIENT spans with db.system[.name]
 *      (statement normalized by lib/sqlnorm.c);
 *   4. BEGIN; one INSERT of every entry's ledger row (stream "spans-red")
 *      ON CONFLICT DO NOTHING RETURNING the keys that are new. When some
 *      were applied before (redelivery), the aggregate is rebuilt from the
 *      records of the new entries only; then COPY into three temp tables
 *      and one INSERT ... SELECT ... ON CONFLICT DO UPDATE per table that
 *      adds counts and bucket arrays; COMMIT; one XACK for the whole batch.
 *      After a read that was not full the thread waits GATHER_MS, so that
 *      keeping up means a few large transactions a second, not hundreds of
 *      small ones.
 * Pending entries of this consumer are re-read from "0" at start and after
 * a failure; idle pending entries of dead consumers are reclaimed with
 * XAUTOCLAIM; NOGROUP (stream or group deleted, e.g. FLUSHALL) recreates the
 * group. Acknowledged entries are trimmed with sx_redis_trim_consumed.
 *
 * Several instances may run at once (the ledger and the atomic edge keys
 * keep every count exact). Limits: strings are cut (service 256, operation 512, statement 4096 bytes); a batch
 * holds at most READ_COUNT entries. */
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

static pthread_t red_thread;
static int red_started;
static atomic_int red_stop;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "sextant-rollup: out of memory\n");
        abort();
    }
    return q;
}

static void nap(int ms)
{
    for (int i = 0; i < ms / 50 && !atomic_load(&red_stop); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SHA-256 of up to two byte ranges into out (outlen <= 32). Aborts when
 * OpenSSL cannot hash (out of memory). */
static void sha(const void *a, size_t an, const void *b, size_t bn, uint8_t *out, size_t outlen)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
        EVP_DigestUpdate(ctx, b, bn) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < outlen) {
        fprintf(stderr, "sextant-rollup: sha-256 failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, outlen);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* ---- interned strings ------------------------------------------------------- */

/* The batch's copy of s[0..n) (cut to max bytes at a UTF-8 boundary); equal
 * strings give the same pointer. NULL when the arena is exhausted. */
static const char *intern(struct red *R, const char *s, size_t n, size_t max)
{
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    uint64_t h = fnv(s, n, 14695981039346656037ULL);
    if ((R->in + 1) * 2 > R->icap) {
        struct istr *old = R->itab;
        size_t oldcap = R->icap;
        R->icap = oldcap ? oldcap * 2 : 4096;
        R->itab = xrealloc(NULL, R->icap * sizeof(*R->itab));
        memset(R->itab, 0, R->icap * sizeof(*R->itab));
        for (size_t i = 0; i < oldcap; i++) {
            if (!old[i].s) continue;
            size_t j = old[i].h & (R->icap - 1);
            while (R->itab[j].s) j = (j + 1) & (R->icap - 1);
            R->itab[j] = old[i];
        }
        free(old);
    }
    size_t j = h & (R->icap - 1);
    for (; R->itab[j].s; j = (j + 1) & (R->icap - 1))
        if (R->itab[j].h == h && R->itab[j].len == n && memcmp(R->itab[j].s, s, n) == 0) return R->itab[j].s;
    char *c = sx_arena_strndup(R->strs, s, n);
    if (!c) return NULL;
    R->itab[j].h = h;
    R->itab[j].s = c;
    R->itab[j].len = n;
    R->in++;
    return c;
}

static const char *intern_z(struct red *R, const char *s, size_t max)
{
    return intern(R, s, strlen(s), max);
}

/* ---- span attributes ------------------------------------------------------------ */

static const any_t *attr_find(kv_t **kv, size_t n, const char *key)
{
    const any_t *v = NULL;
    for (size_t i = 0; i < n; i++) /* the last duplicate wins, as in jsonb */
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0) v = kv[i]->value;
    return v;
}

static const char *attr_str(kv_t **kv, size_t n, const char *key)
{
    const any_t *v = attr_find(kv, n, key);
    return v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value &&
                   *v->string_value
               ? v->string_value
               : NULL;
}

static const char *attr_str2(kv_t **kv, size_t n, const char *key, const char *old_key)
{
    const char *s = attr_str(kv, n, key);
    return s ? s : attr_str(kv, n, old_key);
}

/* The HTTP status of a span (an integer or a numeric string), 0 when none. */
static int http_status(const span_t *sp)
{
    static const char *const keys[] = {"http.response.status_code", "http.status_code"};
    for (size_t k = 0; k < SX_ARRAY_LEN(keys); k++) {
        const any_t *v = attr_find(sp->attributes, sp->n_attributes, keys[k]);
        if (!v) continue;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
            return v->int_value >= 100 && v->int_value < 1000 ? (int)v->int_value : 0;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value) {
            char *end;
            long x = strtol(v->string_value, &end, 10);
            return end == v->string_value || *end || x < 100 || x >= 1000 ? 0 : (int)x;
        }
    }
    return 0;
}

static int64_t minute_of(uint64_t t)
{
    int64_t s = t > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t;
    return s / MINUTE_NS * MINUTE_NS;
}

/* Fills the database fields of a CLIENT span with db.system[.name]. SX_ERR
 * when the string arena is exhausted. */
static int db_fields(struct red *R, struct rec *f, const span_t *sp)
{
    kv_t **a = sp->attributes;
    size_t n = sp->n_attributes;
    const char *sys = attr_str2(a, n, "db.system.name", "db.system");
    if (!sys) return SX_OK;
    const char *text = attr_str2(a, n, "db.query.text", "db.statement");
    size_t len;
    if (text) {
        len = sx_sqlnorm(text, strlen(text), R->norm, STATEMENT_MAX + 1);
    } else {
        const char *op = attr_str2(a, n, "db.operation.name", "db.operation");
        const char *coll = attr_str2(a, n, "db.collection.name", "db.sql.table");
        int k = op ? snprintf(R->norm, STATEMENT_MAX + 1, "%s%s%s", op, coll ? " " : "", coll ? coll : "")
                   : snprintf(R->norm, STATEMENT_MAX + 1, "%s", sp->name && *sp->name ? sp->name : "unknown");
        len = k < 0 ? 0 : SX_MIN((size_t)k, (size_t)STATEMENT_MAX);
    }
    uint8_t h[8];
    sha(R->norm, len, "", 0, h, sizeof(h));
    uint64_t u;
    memcpy(&u, h, sizeof(u));
    f->stmt_hash = (int64_t)(u >> 1); /* non-negative: easier to read */
    f->db_system = intern_z(R, sys, SERVICE_MAX);
    f->statement = intern(R, R->norm, len, STATEMENT_MAX);
    const char *dbn = attr_str2(a, n, "db.namespace", "db.name");
    f->db_name = dbn ? intern_z(R, dbn, SERVICE_MAX) : NULL;
    return f->db_system && f->statement && (!dbn || f->db_name) ? SX_OK : SX_ERR;
}

/* Adds the spans of one unpacked request to R->recs. SX_ERR when the string
 * arena is exhausted. */
static int collect(struct red *R, size_t ent, long long project, const sx_trace_req *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        const char *svc = rs->resource ? attr_str(rs->resource->attributes, rs->resource->n_attributes, "service.name")
                                       : NULL;
        const char *service = intern_z(R, svc ? svc : "unknown_service", SERVICE_MAX);
        if (!service) return SX_ERR;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const span_t *sp = ss->spans[k];
                if (R->nrecs == R->recs_cap) {
                    R->recs_cap = R->recs_cap ? R->recs_cap * 2 : 4096;
                    R->recs = xrealloc(R->recs, R->recs_cap * sizeof(*R->recs));
                }
                struct rec *f = &R->recs[R->nrecs];
                memset(f, 0, sizeof(*f));
                f->project = project;
                f->ent = ent;
                if (sp->span_id.len == 8) memcpy(&f->id, sp->span_id.data, 8);
                f->has_parent = sp->parent_span_id.len == 8;
                if (f->has_parent) memcpy(&f->parent, sp->parent_span_id.data, 8);
                f->kind = (int)sp->kind;
                f->status = http_status(sp);
                f->error = (sp->status && sp->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) ||
                           (f->kind == KIND_SERVER && f->status >= 500);
                f->bucket = minute_of(sp->start_time_unix_nano);
                f->ms = sp->end_time_unix_nano > sp->start_time_unix_nano
                            ? (double)(sp->end_time_unix_nano - sp->start_time_unix_nano) / 1e6
                            : 0;
                f->service = service;
                if (f->kind == KIND_SERVER || f->kind == KIND_CONSUMER) {
                    const char *route = attr_str(sp->attributes, sp->n_attributes, "http.route");
                    const char *method = route ? attr_str2(sp->attributes, sp->n_attributes, "http.request.method",
                                                           "http.method")
                                               : NULL;
                    char op[OPERATION_MAX + 1];
                    if (route && method) snprintf(op, sizeof(op), "%s %s", method, route);
                    else snprintf(op, sizeof(op), "%s", route ? route : sp->name && *sp->name ? sp->name : "unknown");
                    if (!(f->operation = intern_z(R, op, OPERATION_MAX))) return SX_ERR;
                } else if (f->kind == KIND_CLIENT && db_fields(R, f, sp) != SX_OK) {
                    return SX_ERR;
                }
                if (sp->span_id.len == 8) R->nrecs++; /* spans without an id cannot be parents or counted apart */
            }
        }
    }
    return SX_OK;
}

/* ---- Redis ------------------------------------------------------------------- */

static int redis_alive(const struct red *R)
{
    return R->rc && !R->rc->err;
}

static int redis_ready(struct red *R)
{
    if (redis_alive(R)) return SX_OK;
    int timeout = (int)R->cfg->persist_block_ms + 10000;
    if (sx_redis_ensure(&R->rc, R->cfg, 2000, timeout) != SX_OK) return SX_ERR;
    if (sx_redis_group_create(R->rc, R->stream, GROUP) != SX_OK) {
        redisFree(R->rc);
        R->rc = NULL;
        return SX_ERR;
    }
    sx_info("span rollup: connected to redis; group %s on %s, consumer %s", GROUP, R->stream, R->consumer);
    R->history = 1;
    return SX_OK;
}

/* An error reply NOGROUP (the stream or the group was deleted, e.g. by
 * FLUSHALL): recreate the group and re-read our history. Returns 1 when r
 * was such a reply. */
static int nogroup(struct red *R, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOGROUP", 7) != 0) return 0;
    sx_warn("span rollup: group %s on %s is gone; creating it again", GROUP, R->stream);
    if (sx_redis_group_create(R->rc, R->stream, GROUP) == SX_OK) R->history = 1;
    return 1;
}

static void pkey(const struct red *R, long long project, const char *kind, uint64_t id, char *out, size_t outlen)
{
    char suffix[32];
    uint8_t b[8];
    static const char digits[] = "0123456789abcdef";
    memcpy(b, &id, 8);
    size_t o = (size_t)snprintf(suffix, sizeof(suffix), "%s:", kind);
    for (int i = 0; i < 8; i++) {
        suffix[o++] = digits[b[i] >> 4];
        suffix[o++] = digits[b[i] & 15];
    }
    suffix[o] = '\0';
    sx_redis_pkey(out, outlen, R->cfg, project, suffix);
}

/* Reads n pipelined replies; each is handed to fn (NULL-safe: fn sees only
 * good replies). SX_ERR when the connection failed or a reply is an error. */
static int drain(struct red *R, size_t n, const char *what, void (*fn)(struct red *, size_t, const redisReply *))
{
    int rc = SX_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r) {
            sx_redis_warn(R->rc, what, r);
            return SX_ERR;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (rc == SX_OK) sx_redis_warn(R->rc, what, r);
            rc = SX_ERR;
        } else if (fn) {
            fn(R, i, r);
        }
        freeReplyObject(r);
    }
    return rc;
}

static int idx_cmp(const void *a, const void *b)
{
    const struct idx *x = a, *y = b;
    if (x->project != y->project) return x->project < y->project ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->rec < y->rec ? -1 : x->rec > y->rec;
}

static const struct idx *idx_find(const struct red *R, long long project, uint64_t id)
{
    struct idx probe = {project, id, 0};
    size_t lo = 0, hi = R->nrecs;
    while (lo < hi) { /* the first entry >= (project, id, 0) */
        size_t mid = lo + (hi - lo) / 2;
        if (idx_cmp(&R->index[mid], &probe) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < R->nrecs && R->index[lo].project == project && R->index[lo].id == id) return &R->index[lo];
    return NULL;
}

static int is_child_kind(int k)
{
    return k == KIND_SERVER || k == KIND_CONSUMER;
}

/* A CLIENT or PRODUCER span that may have a remote child: not a database call. */
static int is_parent_kind(const struct rec *f)
{
    return (f->kind == KIND_CLIENT && !f->db_system) || f->kind == KIND_PRODUCER;
}

/* Replies of round 1: pend[i] is a child (GET ss) or a parent (GET pc). */
static void on_lookup(struct red *R, size_t i, const redisReply *r)
{
    struct rec *f = &R->recs[R->pend[i]];
    if (r->type != REDIS_REPLY_STRING) return;
    if (is_child_kind(f->kind) && !f->as_child.from) {
        const char *svc = intern(R, r->str, r->len, SERVICE_MAX);
        if (svc && svc != f->service)
            f->as_child = (struct edge){svc, f->service, f->bucket, f->error, f->ms};
        f->has_parent = 2; /* resolved: no pc key */
        return;
    }
    /* "<minute> <error> <ms> <service>" */
    char buf[SERVICE_MAX + 96], *end;
    size_t n = SX_MIN(r->len, sizeof(buf) - 1);
    memcpy(buf, r->str, n);
    buf[n] = '\0';
    errno = 0;
    long long bucket = strtoll(buf, &end, 10);
    if (*end != ' ') return;
    long err = strtol(end + 1, &end, 10);
    if (*end != ' ') return;
    double ms = strtod(end + 1, &end);
    if (*end != ' ' || errno || !isfinite(ms)) return;
    const char *svc = intern_z(R, end + 1, SERVICE_MAX);
    if (svc && svc != f->service)
        f->as_parent = (struct edge){f->service, svc, (int64_t)bucket, err != 0, ms};
    f->has_child = 1;
}

/* Finds the edges of the batch (see the design note, step 2). SX_ERR on a
 * Redis failure. */
static int resolve_edges(struct red *R)
{
    char key[256], val[SERVICE_MAX + 96];
    if (R->nrecs > R->index_cap) {
        R->index_cap = R->nrecs;
        R->index = xrealloc(R->index, R->index_cap * sizeof(*R->index));
    }
    if (R->nrecs > R->pend_cap) {
        R->pend_cap = R->nrecs;
        R->pend = xrealloc(R->pend, R->pend_cap * sizeof(*R->pend));
    }
    for (size_t i = 0; i < R->nrecs; i++) R->index[i] = (struct idx){R->recs[i].project, R->recs[i].id, i};
    qsort(R->index, R->nrecs, sizeof(*R->index), idx_cmp);
    for (size_t i = 0; i < R->nrecs; i++) {
        struct rec *f = &R->recs[i];
        if (!f->has_parent) continue;
        const struct idx *p = idx_find(R, f->project, f->parent);
        if (!p) continue;
        struct rec *par = &R->recs[p->rec];
        par->has_child = 1;
        f->has_parent = 2; /* found */
        if (par->service != f->service)
            f->as_child = (struct edge){par->service, f->service, f->bucket, f->error, f->ms};
    }
    /* One pipelined round for what crossed a batch: each span takes the
     * other side's key, or else leaves its own, atomically (SPANMAP_LUA), so
     * with two instances at once the edge is still counted exactly once. */
    size_t np = 0;
    for (size_t i = 0; i < R->nrecs; i++) {
        struct rec *f = &R->recs[i];
        char mine[256];
        int n;
        if (is_child_kind(f->kind) && f->has_parent == 1) {
            pkey(R, f->project, "ss", f->parent, key, sizeof(key));
            pkey(R, f->project, "pc", f->parent, mine, sizeof(mine));
            n = snprintf(val, sizeof(val), "%" PRId64 " %d %.17g %s", f->bucket, f->error, f->ms, f->service);
        } else if (is_parent_kind(f) && !f->has_child) {
            pkey(R, f->project, "pc", f->id, key, sizeof(key));
            pkey(R, f->project, "ss", f->id, mine, sizeof(mine));
            n = snprintf(val, sizeof(val), "%s", f->service);
        } else {
            continue;
        }
        if (n < 0 || (size_t)n >= sizeof(val)) continue;
        if (redisAppendCommand(R->rc, "EVAL %s 2 %s %s %b %d", SPANMAP_LUA, key, mine, val, (size_t)n,
                               SPANMAP_TTL_S) != REDIS_OK)
            return SX_ERR;
        R->pend[np++] = i;
    }
    return np ? drain(R, np, "EVAL span map", on_lookup) : SX_OK;
}

/* ---- aggregation ------------------------------------------------------------------ */

static uint64_t agg_hash(const struct agg *k)
{
    uint64_t h = (uint64_t)k->type * 31 + (uint64_t)k->kind;
    h = mix(h ^ (uint64_t)k->project);
    h = mix(h ^ (uint64_t)(uintptr_t)k->s1);
    h = mix(h ^ (uint64_t)(uintptr_t)k->s2);
    h = mix(h ^ (uint64_t)(uintptr_t)k->s3);
    h = mix(h ^ (uint64_t)k->bucket);
    return mix(h ^ (uint64_t)k->hash);
}

static int agg_eq(const struct agg *a, const struct agg *b)
{
    return a->type == b->type && a->kind == b->kind && a->project == b->project && a->s1 == b->s1 && a->s2 == b->s2 &&
           a->s3 == b->s3 && a->bucket == b->bucket && a->hash == b->hash;
}

static void agg_grow(struct red *R)
{
    struct agg *old = R->aggs;
    size_t oldcap = R->acap;
    R->acap = oldcap ? oldcap * 2 : 1024;
    R->aggs = xrealloc(NULL, R->acap * sizeof(*R->aggs));
    for (size_t i = 0; i < R->acap; i++) R->aggs[i].type = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].type) continue;
        size_t j = agg_hash(&old[i]) & (R->acap - 1);
        while (R->aggs[j].type) j = (j + 1) & (R->acap - 1);
        R->aggs[j] = old[i];
    }
    free(old);
}

/* The row of key k, made empty when new. */
static struct agg *agg_row(struct red *R, const struct agg *k)
{
    if ((R->an + 1) * 2 > R->acap) agg_grow(R);
    size_t j = agg_hash(k) & (R->acap - 1);
    for (; R->aggs[j].type; j = (j + 1) & (R->acap - 1))
        if (agg_eq(&R->aggs[j], k)) return &R->aggs[j];
    struct agg *a = &R->aggs[j];
    memset(a, 0, sizeof(*a));
    a->type = k->type;
    a->kind = k->kind;
    a->project = k->project;
    a->s1 = k->s1, a->s2 = k->s2, a->s3 = k->s3;
    a->bucket = k->bucket;
    a->hash = k->hash;
    R->an++;
    return a;
}

static void agg_add(struct agg *a, int error, int status, double ms)
{
    a->count++;
    a->errors += error != 0;
    if (status >= 200 && status < 600) a->cls[status / 100 - 2]++;
    a->sum += ms;
    if (a->count == 1 || ms < a->min) a->min = ms;
    if (a->count == 1 || ms > a->max) a->max = ms;
    a->buckets[sx_red_bucket(ms)]++;
}

static void agg_edge(struct red *R, long long project, const struct edge *e)
{
    if (!e->from) return;
    struct agg k = {.type = ROW_EDGE, .project = project, .s1 = e->from, .s2 = e->to, .bucket = e->bucket};
    agg_add(agg_row(R, &k), e->error, 0, e->ms);
}

/* Aggregates the records of the fresh entries into R->aggs. */
static void aggregate(struct red *R)
{
    for (size_t i = 0; i < R->acap; i++) R->aggs[i].type = 0;
    R->an = 0;
    for (size_t i = 0; i < R->nrecs; i++) {
        const struct rec *f = &R->recs[i];
        if (!R->ents[f->ent].fresh) continue;
        if (is_child_kind(f->kind)) {
            struct agg k = {.type = ROW_RED, .kind = f->kind, .project = f->project, .s1 = f->service,
                            .s2 = f->operation, .bucket = f->bucket};
            agg_add(agg_row(R, &k), f->error, f->status, f->ms);
        } else if (f->db_system) {
            struct agg k = {.type = ROW_DB, .project = f->project, .s1 = f->service, .s2 = f->db_system,
                            .s3 = f->statement, .bucket = f->bucket, .hash = f->stmt_hash};
            struct agg *a = agg_row(R, &k);
            if (!a->db_name) a->db_name = f->db_name;
            agg_add(a, f->error, 0, f->ms);
        }
        agg_edge(R, f->project, &f->as_child);
        agg_edge(R, f->project, &f->as_parent);
    }
}

/* ---- PostgreSQL ------------------------------------------------------------------ */

static const char session_sql[] =
    "SET jit = off; "
    "CREATE TEMP TABLE IF NOT EXISTS red_stage (LIKE red_1m) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS edges_stage (LIKE edges_1m) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS db_stage (LIKE db_statements_1m) ON COMMIT DELETE ROWS";

#define ADD_BUCKETS(t) \
    "dur_buckets = ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0) FROM unnest(" t ".dur_buckets, " \
    "EXCLUDED.dur_buckets) WITH ORDINALITY AS u(a, b, o) ORDER BY o)"

static const char red_upsert[] =
    "INSERT INTO red_1m AS t SELECT * FROM red_stage ORDER BY project_id, service, operation, kind, bucket_start_ns "
    "ON CONFLICT (project_id, service, operation, kind, bucket_start_ns) DO UPDATE SET "
    "requests = t.requests + EXCLUDED.requests, errors = t.errors + EXCLUDED.errors, "
    "s2xx = t.s2xx + EXCLUDED.s2xx, s3xx = t.s3xx + EXCLUDED.s3xx, s4xx = t.s4xx + EXCLUDED.s4xx, "
    "s5xx = t.s5xx + EXCLUDED.s5xx, dur_sum_ms = t.dur_sum_ms + EXCLUDED.dur_sum_ms, "
    "dur_min_ms = LEAST(t.dur_min_ms, EXCLUDED.dur_min_ms), dur_max_ms = GREATEST(t.dur_max_ms, EXCLUDED.dur_max_ms), "
    ADD_BUCKETS("t");

static const char edges_upsert[] =
    "INSERT INTO edges_1m AS t SELECT * FROM edges_stage "
    "ORDER BY project_id, parent_service, child_service, bucket_start_ns "
    "ON CONFLICT (project_id, parent_service, child_service, bucket_start_ns) DO UPDATE SET "
    "calls = t.calls + EXCLUDED.calls, errors = t.errors + EXCLUDED.errors, " ADD_BUCKETS("t");

static const char db_upsert[] =
    "INSERT INTO db_statements_1m AS t SELECT * FROM db_stage "
    "ORDER BY project_id, service, db_system, stmt_hash, bucket_start_ns "
    "ON CONFLICT (project_id, service, db_system, stmt_hash, bucket_start_ns) DO UPDATE SET "
    "calls = t.calls + EXCLUDED.calls, errors = t.errors + EXCLUDED.errors, "
    "dur_sum_ms = t.dur_sum_ms + EXCLUDED.dur_sum_ms, dur_max_ms = GREATEST(t.dur_max_ms, EXCLUDED.dur_max_ms), "
    "db_name = COALESCE(t.db_name, EXCLUDED.db_name), " ADD_BUCKETS("t");

static int pg_ready(struct red *R)
{
    if (R->pg && PQstatus(R->pg) != CONNECTION_OK) R->pg_session = 0;
    if (sx_pg_ensure(&R->pg, R->cfg->pg_conninfo) != SX_OK) {
        R->pg_session = 0;
        return SX_ERR;
    }
    if (!R->pg_session) {
        if (PQtransactionStatus(R->pg) != PQTRANS_IDLE) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
        if (sx_pg_exec(R->pg, session_sql, "span rollup session") != SX_OK) return SX_ERR;
        R->pg_session = 1;
    }
    return SX_OK;
}

static void put_dbl(struct sx_buf *b, double v)
{
    sx_buf_printf(b, "%.17g", isfinite(v) ? v : 0);
}

static void put_buckets(struct sx_buf *b, const long long *v)
{
    sx_buf_putc(b, '{');
    for (size_t i = 0; i < SX_RED_NBUCKETS; i++) sx_buf_printf(b, "%s%lld", i ? "," : "", v[i]);
    sx_buf_putc(b, '}');
}

/* The COPY text of the rows of one type into R->copy; SX_ERR when too big. */
static int copy_rows(struct red *R, int type, size_t *nrows)
{
    struct sx_buf *b = &R->copy;
    sx_buf_reset(b);
    *nrows = 0;
    for (size_t i = 0; i < R->acap; i++) {
        const struct agg *a = &R->aggs[i];
        if (a->type != type) continue;
        int ok = sx_buf_printf(b, "%lld\t", a->project) == SX_OK;
        if (type == ROW_RED) {
            ok &= sx_copyrow_text(b, a->s1, strlen(a->s1)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= sx_copyrow_text(b, a->s2, strlen(a->s2)) == SX_OK;
            ok &= sx_buf_printf(b, "\t%d\t%" PRId64 "\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t", a->kind, a->bucket,
                                a->count, a->errors, a->cls[0], a->cls[1], a->cls[2], a->cls[3]) == SX_OK;
            put_dbl(b, a->sum);
            sx_buf_putc(b, '\t');
            put_dbl(b, a->min);
            sx_buf_putc(b, '\t');
            put_dbl(b, a->max);
        } else if (type == ROW_EDGE) {
            ok &= sx_copyrow_text(b, a->s1, strlen(a->s1)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= sx_copyrow_text(b, a->s2, strlen(a->s2)) == SX_OK;
            ok &= sx_buf_printf(b, "\t%" PRId64 "\t%lld\t%lld", a->bucket, a->count, a->errors) == SX_OK;
        } else {
            ok &= sx_copyrow_text(b, a->s1, strlen(a->s1)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= sx_copyrow_text(b, a->s2, strlen(a->s2)) == SX_OK;
            ok &= sx_buf_printf(b, "\t%" PRId64 "\t%" PRId64 "\t", a->hash, a->bucket) == SX_OK;
            ok &= sx_copyrow_text(b, a->s3, strlen(a->s3)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= (a->db_name ? sx_copyrow_text(b, a->db_name, strlen(a->db_name)) : sx_buf_puts(b, "\\N")) == SX_OK;
            ok &= sx_buf_printf(b, "\t%lld\t%lld\t", a->count, a->errors) == SX_OK;
            put_dbl(b, a->sum);
            sx_buf_putc(b, '\t');
            put_dbl(b, a->max);
        }
        sx_buf_putc(b, '\t');
        put_buckets(b, a->buckets);
        if (!ok || sx_buf_putc(b, '\n') != SX_OK) return SX_ERR;
        (*nrows)++;
    }
    return SX_OK;
}

/* COPY R->copy into table; SX_ERR (logged) on failure. */
static int copy_in(struct red *R, const char *table)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table);
    PGresult *res = PQexec(R->pg, sql);
    int ok = res && PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!ok) {
        sx_warn("COPY %s failed: %s", table, PQerrorMessage(R->pg));
        return SX_ERR;
    }
    ok = PQputCopyData(R->pg, R->copy.data, (int)R->copy.len) == 1;
    if (PQputCopyEnd(R->pg, ok ? NULL : "client failed") != 1) ok = 0;
    while ((res = PQgetResult(R->pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (ok) sx_warn("COPY %s failed: %s", table, PQresultErrorMessage(res));
            ok = 0;
        }
        PQclear(res);
    }
    return ok ? SX_OK : SX_ERR;
}

static int write_table(struct red *R, int type, const char *stage, const char *upsert, const char *what)
{
    size_t n;
    if (copy_rows(R, type, &n) != SX_OK) {
        sx_warn("span rollup: %s rows over %zu bytes", what, (size_t)COPY_MAX);
        return SX_ERR;
    }
    if (!n) return SX_OK;
    if (copy_in(R, stage) != SX_OK) return SX_ERR;
    PGresult *res = sx_pg_query(R->pg, upsert, 0, NULL, what);
    if (!res) return SX_ERR;
    PQclear(res);
    R->st_rows += (long long)n;
    return SX_OK;
}

/* Inserts the ledger rows of the valid entries (lib/ledger.h) and sets
 * fresh on the new ones (of equal keys, the first). Returns the number of
 * valid entries that are not fresh, or SX_ERR. Stream ids are at most 41
 * bytes: the 63-byte cap of the ledger's entry_id never cuts one. */
static long long ledger(struct red *R)
{
    size_t nv = 0;
    if (R->nents > R->litems_cap) {
        R->litems_cap = R->nents;
        R->litems = xrealloc(R->litems, R->litems_cap * sizeof(*R->litems));
    }
    for (size_t i = 0; i < R->nents; i++) {
        R->ents[i].fresh = 0;
        if (R->ents[i].valid) R->litems[nv++] = (struct sx_ledger_item){R->ents[i].hash, R->ents[i].id, R->ents[i].idlen, 0};
    }
    if (!nv) return 0;
    long long dup = sx_ledger_insert(R->pg, LEDGER_STREAM, R->litems, nv, &R->keys);
    if (dup < 0) return SX_ERR;
    for (size_t i = 0, k = 0; i < R->nents; i++)
        if (R->ents[i].valid) R->ents[i].fresh = R->litems[k++].fresh;
    return dup;
}

/* Step 4 of the design note. SX_ERR after a rollback. */
static int write_batch(struct red *R)
{
    int64_t t0 = sx_mono_ns();
    if (pg_ready(R) != SX_OK) return SX_ERR;
    if (sx_pg_exec(R->pg, "BEGIN", "BEGIN") != SX_OK) return SX_ERR;
    long long dup = ledger(R);
    if (dup < 0) goto rollback;
    if (dup > 0) {
        aggregate(R); /* from the fresh entries only */
        R->st_dup += dup;
    }
    if (write_table(R, ROW_RED, "red_stage", red_upsert, "red_1m upsert") != SX_OK ||
        write_table(R, ROW_EDGE, "edges_stage", edges_upsert, "edges_1m upsert") != SX_OK ||
        write_table(R, ROW_DB, "db_stage", db_upsert, "db_statements_1m upsert") != SX_OK)
        goto rollback;
    if (sx_pg_exec(R->pg, "COMMIT", "COMMIT") != SX_OK) return SX_ERR;
    R->st_db_ms += (double)(sx_mono_ns() - t0) / 1e6;
    return SX_OK;
rollback:
    if (R->pg && PQstatus(R->pg) == CONNECTION_OK) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
    return SX_ERR;
}

/* ---- the batch ------------------------------------------------------------------- */

/* Copies an undecodable entry to <stream>:dead with an "error" field and
 * acknowledges it, atomically (lib/entry.h). */
static int dead_letter(struct red *R, const char *id, size_t idlen, const redisReply *fields, const char *why)
{
    int rc = sx_entry_dead_letter(R->rc, R->stream, R->dead, GROUP, id, idlen, fields, why);
    if (rc == SX_OK) R->st_dead++;
    return rc;
}

/* Acknowledges every entry of the batch (dead-lettered ones again: XACK of
 * an acknowledged id is a no-op) in one command. */
static int xack_all(struct red *R)
{
    if (!R->nents) return SX_OK;
    size_t argc = 3 + R->nents;
    const char **argv = xrealloc(NULL, argc * sizeof(*argv));
    size_t *argl = xrealloc(NULL, argc * sizeof(*argl));
    argv[0] = "XACK", argl[0] = 4;
    argv[1] = R->stream, argl[1] = strlen(R->stream);
    argv[2] = GROUP, argl[2] = strlen(GROUP);
    for (size_t i = 0; i < R->nents; i++) argv[3 + i] = R->ents[i].id, argl[3 + i] = R->ents[i].idlen;
    redisReply *r = redisCommandArgv(R->rc, (int)argc, argv, argl);
    free(argv);
    free(argl);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? SX_OK : SX_ERR;
    if (rc != SX_OK && !nogroup(R, r)) sx_redis_warn(R->rc, "XACK", r);
    if (r) freeReplyObject(r);
    if (rc == SX_OK) R->acked = 1;
    return rc;
}

/* Applies an array of stream entries as one batch (see the design note).
 * SX_OK when every entry is done and acknowledged; SX_ERR to retry them. */
static int process_batch(struct red *R, const redisReply *arr)
{
    if (!arr || arr->type != REDIS_REPLY_ARRAY || arr->elements == 0) return SX_OK;
    int64_t cpu0 = thread_cpu_ns();
    sx_arena_reset(R->strs);
    if (R->icap) memset(R->itab, 0, R->icap * sizeof(*R->itab));
    R->in = 0;
    R->nents = R->nrecs = 0;
    if (arr->elements > R->ents_cap) {
        R->ents_cap = arr->elements;
        R->ents = xrealloc(R->ents, R->ents_cap * sizeof(*R->ents));
    }
    for (size_t i = 0; i < arr->elements && !atomic_load(&red_stop); i++) {
        const redisReply *item = arr->element[i];
        if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 || item->element[0]->type != REDIS_REPLY_STRING)
            continue;
        struct ent *e = &R->ents[R->nents++];
        memset(e, 0, sizeof(*e));
        e->id = item->element[0]->str;
        e->idlen = item->element[0]->len;
        const redisReply *fields = item->element[1];
        if (fields->type == REDIS_REPLY_NIL) continue; /* deleted while pending: just XACK */
        if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) {
            if (dead_letter(R, e->id, e->idlen, NULL, "malformed entry") != SX_OK) return SX_ERR;
            continue;
        }
        long long project = sx_entry_ll(sx_entry_field(fields, SX_FIELD_PROJECT), 1, INT32_MAX, 0);
        const redisReply *body = sx_entry_field(fields, SX_FIELD_BODY);
        const char *why = !project ? "missing or invalid project id field 'p'"
                          : !body || body->type != REDIS_REPLY_STRING ? "missing body field 'b'"
                                                                       : NULL;
        ProtobufCAllocator pa;
        sx_arena_reset(R->arena);
        sx_arena_pb_allocator(R->arena, &pa);
        sx_trace_req *req = why ? NULL
                                : opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                                      &pa, body->len, (const uint8_t *)body->str);
        if (!why && !req) why = "protobuf unpack of field 'b' failed";
        if (why) {
            if (dead_letter(R, e->id, e->idlen, fields, why) != SX_OK) return SX_ERR;
            continue;
        }
        sx_entry_key(project, body->str, body->len, e->hash);
        e->project = project;
        e->valid = e->fresh = 1;
        if (collect(R, R->nents - 1, project, req) != SX_OK) {
            sx_warn("span rollup: batch strings over %zu bytes", (size_t)STR_ARENA_MAX);
            return SX_ERR;
        }
    }
    if (atomic_load(&red_stop)) return SX_ERR; /* stopping: leave the rest pending */
    if (resolve_edges(R) != SX_OK) return SX_ERR;
    aggregate(R);
    if (write_batch(R) != SX_OK) return SX_ERR;
    if (xack_all(R) != SX_OK) return SX_ERR;
    R->st_batches++;
    R->st_entries += (long long)R->nents;
    R->st_spans += (long long)R->nrecs;
    R->st_cpu_ns += thread_cpu_ns() - cpu0;
    return SX_OK;
}

/* One XREADGROUP: our pending entries from "0" while history is set, else
 * new ones (blocking). SX_ERR on a failure (back off). */
static int read_cycle(struct red *R)
{
    char count[16], block[24];
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(block, sizeof(block), "%lld", R->cfg->persist_block_ms);
    const char *argv[11] = {"XREADGROUP", "GROUP", GROUP, R->consumer, "COUNT", count, "BLOCK", block, "STREAMS",
                            R->stream,    ">"};
    int argc = 11;
    if (R->history) { /* no BLOCK for history */
        argv[6] = "STREAMS", argv[7] = R->stream, argv[8] = "0";
        argc = 9;
    }
    redisReply *r = redisCommandArgv(R->rc, argc, argv, NULL);
    if (!r || (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL)) {
        int gone = nogroup(R, r);
        if (!gone) sx_redis_warn(R->rc, "XREADGROUP", r);
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
        sx_info("span rollup: own pending entries done; reading new entries");
    }
    /* Keeping up, a read returns the few entries of the last moment: one
     * transaction each would cost PostgreSQL more than the rows (fe65cae's
     * lesson). Waiting a little makes batches of hundreds of entries. */
    if (!R->history && got > 0 && got < READ_COUNT) nap(GATHER_MS);
    return SX_OK;
}

/* Reclaims entries idle longer than persist_claim_idle_ms from any consumer
 * of the group (a crashed instance) and applies them, a batch at a time. */
static void claim_cycle(struct red *R)
{
    char cursor[64] = "0-0", idle[24], count[16];
    long long claimed = 0;
    snprintf(idle, sizeof(idle), "%lld", R->cfg->persist_claim_idle_ms);
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    do {
        const char *argv[8] = {"XAUTOCLAIM", R->stream, GROUP, R->consumer, idle, cursor, "COUNT", count};
        redisReply *r = redisCommandArgv(R->rc, 8, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            if (!nogroup(R, r)) sx_redis_warn(R->rc, "XAUTOCLAIM", r);
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        const redisReply *entries = r->element[1];
        size_t n = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
        int rc = process_batch(R, entries);
        freeReplyObject(r);
        if (rc != SX_OK) {
            R->history = 1;
            break;
        }
        claimed += (long long)n;
    } while (strcmp(cursor, "0-0") != 0 && !atomic_load(&red_stop));
    if (claimed) sx_info("span rollup: reclaimed %lld idle pending entries", claimed);
}

static void periodic(struct red *R)
{
    int64_t now = sx_mono_ns();
    if (now >= R->next_claim_ns && redis_alive(R)) {
        claim_cycle(R);
        R->next_claim_ns = now + R->cfg->persist_claim_idle_ms / 2 * 1000000LL;
    }
    if (R->acked && now >= R->next_trim_ns && redis_alive(R)) {
        R->acked = 0;
        sx_redis_trim_consumed(R->rc, R->stream);
        R->next_trim_ns = now + TRIM_EVERY_NS;
    }
    if (now >= R->next_stats_ns) {
        if (R->st_entries || R->st_dead)
            sx_info("span rollup: %lld spans of %lld entries in %lld batches (%lld rows, %.0f ms in PostgreSQL, "
                    "%.0f ms CPU); %lld entries already applied, %lld dead-lettered",
                    R->st_spans, R->st_entries, R->st_batches, R->st_rows, R->st_db_ms, (double)R->st_cpu_ns / 1e6,
                    R->st_dup, R->st_dead);
        R->st_spans = R->st_entries = R->st_batches = R->st_rows = R->st_dup = R->st_dead = 0;
        R->st_db_ms = 0;
        R->st_cpu_ns = 0;
        R->next_stats_ns = now + STATS_EVERY_NS;
    }
}

static void red_free(struct red *R)
{
    if (R->rc) redisFree(R->rc);
    if (R->pg) PQfinish(R->pg);
    sx_arena_destroy(R->arena);
    sx_arena_destroy(R->strs);
    sx_buf_term(&R->copy);
    sx_buf_term(&R->keys);
    free(R->itab);
    free(R->ents);
    free(R->recs);
    free(R->index);
    free(R->litems);
    free(R->aggs);
    free(R->pend);
    free(R->norm);
    free(R);
}

static void *red_main(void *arg)
{
    struct red *R = arg;
    int backoff = BACKOFF_MIN_MS;
    int64_t now = sx_mono_ns();
    R->next_claim_ns = now;
    R->next_stats_ns = now + STATS_EVERY_NS;
    R->history = 1;
    while (!atomic_load(&red_stop)) {
        if (redis_ready(R) != SX_OK || read_cycle(R) != SX_OK) {
            nap(backoff);
            backoff = SX_MIN(backoff * 2, BACKOFF_MAX_MS);
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        periodic(R);
    }
    red_free(R);
    return NULL;
}

int sx_rollup_red_start(const struct sx_config *cfg, const char *instance)
{
    struct red *R = sx_xcalloc(1, sizeof(*R));
    R->cfg = cfg;
    snprintf(R->consumer, sizeof(R->consumer), "rollup-%s", instance);
    sx_redis_key(R->stream, sizeof(R->stream), cfg, SX_STREAM_SPANS);
    snprintf(R->dead, sizeof(R->dead), "%s:dead", R->stream);
    R->arena = sx_arena_create(ENTRY_ARENA_CHUNK, ENTRY_ARENA_MAX);
    R->strs = sx_arena_create(ENTRY_ARENA_CHUNK, STR_ARENA_MAX);
    R->norm = sx_xmalloc(STATEMENT_MAX + 1);
    sx_buf_init(&R->copy, COPY_MAX);
    sx_buf_init(&R->keys, (size_t)2 << 20); /* hex keys and ids: the 1 MiB each they had apart */
    agg_grow(R);
    atomic_store(&red_stop, 0);

    /* Signals go to the main thread (its handler stops the process). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = pthread_create(&red_thread, NULL, red_main, R);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        sx_error("pthread_create(span rollup) failed: %s", strerror(err));
        red_free(R);
        return SX_ERR;
    }
    red_started = 1;
    return SX_OK;
}

void sx_rollup_red_stop(void)
{
    if (!red_started) return;
    atomic_store(&red_stop, 1);
    pthread_join(red_thread, NULL);
    red_started = 0;
}
