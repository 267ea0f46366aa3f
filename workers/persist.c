/* persist.c: sextant-persist: reads the span and log streams (group "persist") and writes PostgreSQL in batches.
 *
 * Design: the main thread reads stream entries (first this consumer's own
 * pending ones, from "0", stream by stream, then new ones of every stream
 * with one XREADGROUP ">"), unpacks each entry's protobuf and encodes its
 * spans or log records as COPY rows into that stream's batch until
 * persist_batch_spans rows are buffered or the streams have nothing more
 * right now. Both streams go through the same code: what differs (request
 * type, row encoder, table, partition function) is looked up in the
 * signal table (struct sx_persist_signal). Writer threads
 * (persist_writer.c) write each batch in one transaction (persist_db.c)
 * and acknowledge its entries with one XACK only after COMMIT. PostgreSQL
 * failures roll back and retry the same entries with back-off; Redis
 * failures reconnect and let the unacknowledged entries be delivered again
 * (writes are idempotent). An entry that cannot be decoded is copied to its
 * stream's dead letter stream (<stream>:dead) with an "error" field and
 * acknowledged. Entries of dead consumers are reclaimed with XAUTOCLAIM;
 * acknowledged entries are trimmed below the oldest entry any consumer group
 * still needs. */
#include "arena.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "entry.h"
#include "log.h"
#include "live.h"
#include "logrow.h"
#include "persist.h"
#include "redis.h"
#include "spanrow.h"
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define READ_COUNT 256
#define ARENA_CHUNK ((size_t)1 << 20)
#define ARENA_MAX ((size_t)1 << 30)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define AHEAD_EVERY_NS (3600LL * 1000000000LL)
#define TRIM_EVERY_NS 1000000000LL
#define STATS_EVERY_NS (10LL * 1000000000LL)
#define PRUNE_EVERY_NS (3600LL * 1000000000LL)
#define WRITERS_DEFAULT 2
#define USERS_FLUSH_EVERY_NS (2LL * 1000000000LL)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;

/* The main thread's reading state of one stream. */
struct reader {
    const struct sx_persist_signal *sig;
    struct sx_persist_batch *cur; /* the batch being filled */
    int history;               /* still re-reading our own pending entries */
    char cursor[64];           /* history read position */
};

/* The main thread's state; one instance, owned by main. */
struct persist {
    struct sx_config cfg;
    char consumer[96];
    char last_write_key[160];
    struct sx_persist_signal signals[SX_PERSIST_NKINDS]; /* by kind; read by the writers */
    struct reader rd[SX_PERSIST_NKINDS];                  /* by kind */
    int nwriters;
    struct sx_persist_shared shared; /* with the writer threads */
    redisContext *rc;          /* NULL or dead (err set) while disconnected */
    struct sx_persist_db db;   /* partitions made ahead of time */
    struct sx_arena *arena;    /* one entry's unpacked request at a time */
    struct sx_persist_errctx *errcx; /* error event derivation (project rules cache) */
    struct sx_live_watch watch;  /* which projects sextant-sse watches (live.h) */
    struct sx_buf live_items;    /* one entry's live items (scratch) */
    int64_t next_claim_ns, next_trim_ns, next_ahead_ns, next_stats_ns, next_prune_ns, next_users_ns;
};

/* What differs between the streams; names are filled in by setup(). */
static const struct sx_persist_signal signal_defs[SX_PERSIST_NKINDS] = {
    [SX_PERSIST_SPANS] = {SX_PERSIST_SPANS, "spans", "COPY spans (" SX_SPANROW_COLUMNS ") FROM STDIN",
                          "SELECT sextant_ensure_span_partition($1::bigint)", "", "", ""},
    [SX_PERSIST_LOGS] = {SX_PERSIST_LOGS, "logs", "COPY logs (" SX_LOGROW_COLUMNS ") FROM STDIN",
                         "SELECT sextant_ensure_log_partition($1::bigint)", "", "", ""},
};

static void on_signal(int sig)
{
    SX_UNUSED(sig);
    sx_persist_stop = 1;
}

/* ---- Redis ---------------------------------------------------------------- */

static int redis_alive(const struct persist *P)
{
    return P->rc && !P->rc->err;
}

/* Starts over with this consumer's own pending entries of every stream. */
static void rescan_history(struct persist *P)
{
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
        P->rd[k].history = 1;
        snprintf(P->rd[k].cursor, sizeof(P->rd[k].cursor), "0");
    }
}

/* Connects when needed; after a (re)connect makes sure the groups exist
 * and starts over with this consumer's own pending entries. */
static int redis_ready(struct persist *P)
{
    if (redis_alive(P)) return SX_OK;
    int timeout = (int)P->cfg.persist_block_ms + 10000; /* never shorter than the BLOCK */
    if (sx_redis_ensure(&P->rc, &P->cfg, 2000, timeout) != SX_OK) return SX_ERR;
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
        if (sx_redis_group_create(P->rc, P->signals[k].stream, SX_GROUP_PERSIST) != SX_OK) {
            redisFree(P->rc);
            P->rc = NULL;
            return SX_ERR;
        }
        sx_info("connected to redis; group %s on %s, consumer %s", SX_GROUP_PERSIST, P->signals[k].stream,
                P->consumer);
    }
    rescan_history(P);
    return SX_OK;
}

/* Logs a failed command; a NULL reply means the connection is dead. */
static void redis_failed(struct persist *P, const char *what, const redisReply *r)
{
    sx_redis_warn(P->rc, what, r);
}

static int poison(struct persist *P, struct reader *rd, const char *id, size_t idlen, const redisReply *fields,
                  const char *why)
{
    int rc = sx_persist_dead_letter(P->rc, rd->sig, id, idlen, fields, why);
    if (rc == SX_OK) {
        pthread_mutex_lock(&P->shared.mu);
        P->shared.dead_letters++;
        pthread_mutex_unlock(&P->shared.mu);
    }
    return rc;
}

/* ---- batches ------------------------------------------------------------- */

/* Hands a stream's current batch to the writers and takes an empty one
 * (waiting while every writer is busy: back-pressure). */
static void submit(struct persist *P, struct reader *rd)
{
    if (rd->cur->nents == 0) return;
    sx_persist_batch_submit(&P->shared, rd->cur);
    rd->cur = sx_persist_batch_get(&P->shared, rd->sig);
}

static void submit_all(struct persist *P)
{
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) submit(P, &P->rd[k]);
}

static int batch_full(const struct persist *P, const struct reader *rd)
{
    return (long long)sx_persist_batch_rows(rd->cur) >= P->cfg.persist_batch_spans;
}

/* Queues the live entry of an entry of project (spans or logs) in b, to be
 * XADDed after its COMMIT, when sextant-sse watches the project. A failure
 * only loses the live entry. */
static void live_prepare(struct persist *P, struct sx_persist_batch *b, long long project, const void *req,
                         int64_t recv_ns)
{
    size_t total = 0;
    int logs = b->sig->kind == SX_PERSIST_LOGS;
    if (!sx_live_watched(&P->watch, P->rc, &P->cfg, project)) return;
    sx_buf_reset(&P->live_items);
    int rc = logs ? sx_live_logs_json(&P->live_items, req, recv_ns, &total)
                  : sx_live_spans_json(&P->live_items, req, &total);
    if (rc == SX_OK && total > 0)
        rc = sx_live_xadd_format(&b->live, &P->cfg, project, logs ? "logs" : "spans", total, P->live_items.data,
                                 P->live_items.len);
    if (rc == SX_OK && total > 0) b->nlive++;
    else if (rc != SX_OK) sx_warn("live entry of project %lld dropped: too large", project);
}

/* Unpacks body as the stream's request type and appends its rows to b.
 * SX_OK; SX_AGAIN when the rows do not fit b (b unchanged); SX_ERR when
 * the body cannot be unpacked (why says so). Logs with neither time nor
 * observed time take recv_ns, the entry's receive time. */
static int encode_entry(struct persist *P, struct sx_persist_batch *b, const redisReply *body, long long project,
                        int64_t recv_ns, const uint8_t *hash, size_t *nev, char *why, size_t whylen)
{
    ProtobufCAllocator pa;
    struct sx_persist_errs_mark mark;
    int rc;
    sx_persist_errs_mark(b->errs, &mark);
    *nev = 0;
    sx_arena_reset(P->arena);
    sx_arena_pb_allocator(P->arena, &pa);
    if (b->sig->kind == SX_PERSIST_LOGS) {
        logs_req *req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
            &pa, body->len, (const uint8_t *)body->str);
        if (!req) goto undecodable;
        size_t skipped0 = b->logs.skipped;
        /* Error events first: when the rows then do not fit, they are rewound. */
        rc = sx_persist_errors_derive(P->errcx, b->errs, SX_PERSIST_LOGS, req, project, recv_ns, hash, nev, b->nents);
        if (rc == SX_OK) rc = sx_logrow_encode(&b->logs, req, project, recv_ns, &b->copy);
        if (rc == SX_OK) live_prepare(P, b, project, req, recv_ns);
        if (rc == SX_OK && b->logs.skipped > skipped0)
            sx_warn("%zu log records with times out of range skipped", b->logs.skipped - skipped0);
    } else {
        trace_req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            &pa, body->len, (const uint8_t *)body->str);
        if (!req) goto undecodable;
        size_t skipped0 = b->enc.skipped;
        rc = sx_persist_errors_derive(P->errcx, b->errs, SX_PERSIST_SPANS, req, project, recv_ns, hash, nev, b->nents);
        if (rc == SX_OK) rc = sx_spanrow_encode(&b->enc, req, project, &b->copy);
        if (rc == SX_OK) live_prepare(P, b, project, req, recv_ns);
        if (rc == SX_OK && b->enc.skipped > skipped0)
            sx_warn("%zu spans with invalid ids or times skipped", b->enc.skipped - skipped0);
    }
    if (rc == SX_OK) return SX_OK;
    sx_persist_errs_rewind(b->errs, &mark);
    *nev = 0;
    return SX_AGAIN;

undecodable:
    snprintf(why, whylen, "%s", sx_arena_failed(P->arena) ? "request too large to unpack"
                                                          : "protobuf unpack of field 'b' failed");
    return SX_ERR;
}

/* Decodes one entry into its stream's batch, submitting it first when full.
 * Undecodable entries go to the dead letter stream. SX_ERR on a Redis
 * failure (the caller ends the cycle). */
static int take_entry(struct persist *P, struct reader *rd, const redisReply *item)
{
    char why[160];
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 || item->element[0]->type != REDIS_REPLY_STRING)
        return SX_OK; /* not an entry: nothing we could even acknowledge */
    const char *id = item->element[0]->str;
    size_t idlen = item->element[0]->len;
    const redisReply *fields = item->element[1];

    if (batch_full(P, rd)) submit(P, rd);
    if (fields->type == REDIS_REPLY_NIL) {
        /* Deleted while pending (trimmed by hand): only acknowledge it. */
        sx_persist_batch_add(rd->cur, id, idlen, NULL, rd->cur->copy.len, sx_persist_batch_rows(rd->cur));
        return SX_OK;
    }
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2)
        return poison(P, rd, id, idlen, fields->type == REDIS_REPLY_ARRAY ? fields : NULL, "malformed entry");
    long long project = sx_entry_ll(sx_entry_field(fields, SX_FIELD_PROJECT), 1, INT32_MAX, 0);
    const redisReply *b = sx_entry_field(fields, SX_FIELD_BODY);
    if (!project) return poison(P, rd, id, idlen, fields, "missing or invalid project id field 'p'");
    if (!b) return poison(P, rd, id, idlen, fields, "missing body field 'b'");
    int64_t recv_ns = sx_entry_ll(sx_entry_field(fields, SX_FIELD_TIME), 1, INT64_MAX, 0);
    if (!recv_ns) recv_ns = sx_now_ns(); /* ingest always sets t; this only keeps old entries usable */

    uint8_t hash[SX_PERSIST_HASH_LEN];
    sx_entry_key(project, b->str, b->len, hash); /* first: error event ids derive from it */
    struct sx_persist_batch *B = rd->cur;
    size_t rows0 = sx_persist_batch_rows(B), off = B->copy.len, eoff = B->errs->copy.len, nev = 0;
    int rc = encode_entry(P, B, b, project, recv_ns, hash, &nev, why, sizeof(why));
    if (rc == SX_AGAIN && B->nents > 0) {
        /* The rows did not fit after the others: alone in a new batch. */
        submit(P, rd);
        B = rd->cur;
        rows0 = sx_persist_batch_rows(B);
        off = B->copy.len;
        eoff = B->errs->copy.len;
        rc = encode_entry(P, B, b, project, recv_ns, hash, &nev, why, sizeof(why));
    }
    if (rc == SX_AGAIN) snprintf(why, sizeof(why), "rows do not fit the COPY buffer");
    if (rc != SX_OK) return poison(P, rd, id, idlen, fields, why);
    sx_persist_batch_add_ev(B, id, idlen, hash, off, rows0, eoff, nev);
    return SX_OK;
}

/* Takes every entry of an entries array (XREADGROUP / XAUTOCLAIM shape)
 * into rd's batch. */
static int take_entries(struct persist *P, struct reader *rd, const redisReply *arr, size_t *taken)
{
    *taken = 0;
    if (arr->type != REDIS_REPLY_ARRAY) return SX_OK;
    for (size_t i = 0; i < arr->elements; i++) {
        if (take_entry(P, rd, arr->element[i]) != SX_OK) return SX_ERR;
        (*taken)++;
    }
    return SX_OK;
}

/* The reader of the stream named by a reply string, or NULL. */
static struct reader *reader_of(struct persist *P, const redisReply *name)
{
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
        const char *s = P->rd[k].sig->stream;
        if (name->type == REDIS_REPLY_STRING && strlen(s) == name->len && memcmp(s, name->str, name->len) == 0)
            return &P->rd[k];
    }
    return NULL;
}

/* One XREADGROUP over the n streams of rds, each from ids[i]; returns the
 * reply (caller frees: an array of [stream, entries] pairs), or NULL when
 * nothing came; *failed is set on a Redis failure. */
static redisReply *read_group(struct persist *P, struct reader *const *rds, const char *const *ids, int n, int block,
                              int *failed)
{
    char count[16], blockms[24];
    const char *argv[10 + 2 * SX_PERSIST_NKINDS];
    size_t argl[10 + 2 * SX_PERSIST_NKINDS];
    int argc = 0;
    *failed = 0;
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(blockms, sizeof(blockms), "%lld", P->cfg.persist_block_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = SX_GROUP_PERSIST;
    argv[argc++] = P->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (block) {
        argv[argc++] = "BLOCK";
        argv[argc++] = blockms;
    }
    argv[argc++] = "STREAMS";
    for (int i = 0; i < n; i++) argv[argc++] = rds[i]->sig->stream;
    for (int i = 0; i < n; i++) argv[argc++] = ids[i];
    for (int i = 0; i < argc; i++) argl[i] = strlen(argv[i]);

    redisReply *r = redisCommandArgv(P->rc, argc, argv, argl);
    if (!r) {
        redis_failed(P, "XREADGROUP", NULL);
        *failed = 1;
        return NULL;
    }
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0) {
        /* A stream or the group was deleted: create them again. */
        redis_failed(P, "XREADGROUP", r);
        freeReplyObject(r);
        for (int i = 0; i < n; i++) sx_redis_group_create(P->rc, rds[i]->sig->stream, SX_GROUP_PERSIST);
        return NULL;
    }
    int ok = r->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        ok = e->type == REDIS_REPLY_ARRAY && e->elements == 2 && reader_of(P, e->element[0]) &&
             e->element[1]->type == REDIS_REPLY_ARRAY;
    }
    if (!ok) {
        redis_failed(P, "XREADGROUP", r);
        freeReplyObject(r);
        *failed = 1;
        return NULL;
    }
    return r;
}

/* Takes the entries of an XREADGROUP reply into their streams' batches;
 * for a history read also moves the streams' cursors past them. *most gets
 * the most entries one stream returned. SX_ERR on a Redis failure. */
static int take_reply(struct persist *P, const redisReply *r, int history, size_t *most)
{
    *most = 0;
    for (size_t i = 0; i < r->elements; i++) {
        struct reader *rd = reader_of(P, r->element[i]->element[0]);
        const redisReply *arr = r->element[i]->element[1];
        size_t taken = 0;
        if (arr->elements > *most) *most = arr->elements;
        if (history && arr->elements) {
            const redisReply *last = arr->element[arr->elements - 1];
            if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 && last->element[0]->type == REDIS_REPLY_STRING)
                snprintf(rd->cursor, sizeof(rd->cursor), "%.*s", (int)last->element[0]->len, last->element[0]->str);
        }
        if (take_entries(P, rd, arr, &taken) != SX_OK) return SX_ERR;
    }
    return SX_OK;
}

static int any_full(const struct persist *P)
{
    for (int k = 0; k < SX_PERSIST_NKINDS; k++)
        if (batch_full(P, &P->rd[k])) return 1;
    return 0;
}

/* Reads and decodes until a batch is full or the streams have no more
 * entries right now, then hands the batches to the writers: first this
 * consumer's own pending entries, stream by stream, then new entries of
 * every stream with one XREADGROUP (which blocks only when nothing is
 * buffered, so one quiet stream never delays another). */
static void read_cycle(struct persist *P)
{
    int failed, first = 1;
    size_t most;
    for (int k = 0; k < SX_PERSIST_NKINDS && !sx_persist_stop; k++) {
        struct reader *rd = &P->rd[k];
        while (rd->history && !sx_persist_stop) {
            const char *from = rd->cursor;
            redisReply *r = read_group(P, &rd, &from, 1, 0, &failed);
            if (failed) goto out;
            int rc = r ? take_reply(P, r, 1, &most) : SX_OK;
            if (!r) most = 0;
            if (r) freeReplyObject(r);
            if (rc != SX_OK) goto out;
            if (most == 0) {
                rd->history = 0;
                sx_info("own pending %s entries done; reading new entries", rd->sig->name);
            }
            if (any_full(P)) goto out;
        }
    }
    while (!sx_persist_stop) {
        struct reader *rds[SX_PERSIST_NKINDS];
        const char *ids[SX_PERSIST_NKINDS];
        int n = 0, empty = 1;
        for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
            if (P->rd[k].cur->nents) empty = 0;
            if (P->rd[k].history) continue; /* its turn comes in the next cycle */
            rds[n] = &P->rd[k];
            ids[n++] = ">";
        }
        if (n == 0) break;
        redisReply *r = read_group(P, rds, ids, n, first && empty, &failed);
        first = 0;
        if (failed || !r) break;
        int rc = take_reply(P, r, 0, &most);
        freeReplyObject(r);
        if (rc != SX_OK || any_full(P)) break;
        if (most < READ_COUNT) break; /* drained for now */
    }
out:
    submit_all(P);
}

/* Reclaims entries of rd's stream idle longer than persist_claim_idle_ms
 * from any consumer of the group (a crashed instance) and processes them. */
static void claim_cycle(struct persist *P, struct reader *rd)
{
    char cursor[64] = "0-0", idle[24];
    long long claimed = 0;
    snprintf(idle, sizeof(idle), "%lld", P->cfg.persist_claim_idle_ms);
    do {
        redisReply *r = redisCommand(P->rc, "XAUTOCLAIM %s %s %s %s %s COUNT %d", rd->sig->stream, SX_GROUP_PERSIST,
                                     P->consumer, idle, cursor, READ_COUNT);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            redis_failed(P, "XAUTOCLAIM", r);
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        size_t taken = 0;
        int rc = take_entries(P, rd, r->element[1], &taken);
        claimed += (long long)taken;
        freeReplyObject(r);
        if (rc != SX_OK) break;
    } while (strcmp(cursor, "0-0") != 0 && !sx_persist_stop);
    if (claimed) sx_info("reclaimed %lld idle pending %s entries", claimed, rd->sig->name);
    submit(P, rd);
}

/* ---- partitions ahead ------------------------------------------------------ */

static int ensure_ahead(struct persist *P)
{
    int64_t today = sx_spanrow_day(sx_now_ns());
    int64_t days[64];
    size_t n = 0;
    for (long long d = 0; d <= P->cfg.partition_days_ahead && n < SX_ARRAY_LEN(days); d++)
        days[n++] = today + d * SX_DAY_NS;
    if (sx_persist_db_ready(&P->db) != SX_OK) return SX_ERR;
    for (int k = 0; k < SX_PERSIST_NKINDS; k++)
        if (sx_persist_db_ensure_days(&P->db, &P->signals[k], days, n) != SX_OK) return SX_ERR;
    return sx_persist_db_ensure_days(&P->db, &sx_persist_errors_sig, days, n);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sextant-persist [--config FILE] [--set name=value]... [--instance NAME] [--help]\n"
            "\n"
            "Reads the span and log streams (consumer group \"persist\") and writes spans, trace\n"
            "summaries, log records, error events and issues to PostgreSQL in batches.\n"
            "  --config FILE     settings file (default: $SEXTANT_CONFIG, else $SEXTANT_HOME/sextant.conf,\n"
            "                    else ./var/sextant.conf; a missing default file is fine)\n"
            "  --set name=value  override one setting (may repeat; applied after the file)\n"
            "  --instance NAME   instance name (default 1); the consumer is persist-NAME, so keep it\n"
            "                    stable across restarts to pick up this instance's pending entries\n"
            "  --writers N       PostgreSQL writer threads, each with its own connection (1-8, default 2)\n"
            "  --help            this text and every setting\n"
            "\n");
}

/* Parses the command line and config into P; returns -1 to go on, else the
 * exit code. */
static int setup(struct persist *P, int argc, char **argv)
{
    static struct sx_cli cli = {.program = "sextant-persist", .extra = {"--writers"}};
    int rc = sx_cli_parse(&cli, argc, argv, &P->cfg, usage);
    if (rc >= 0) return rc;
    const char *instance = cli.instance ? cli.instance : "1";
    if (!*instance || strlen(instance) > 64) {
        fprintf(stderr, "sextant-persist: --instance must be 1 to 64 characters\n");
        return 2;
    }
    cli.instance = instance;
    P->nwriters = WRITERS_DEFAULT;
    if (cli.extra_val[0]) {
        char *end;
        long n = strtol(cli.extra_val[0], &end, 10);
        if (*end || n < 1 || n > 8) {
            fprintf(stderr, "sextant-persist: --writers must be 1 to 8\n");
            return 2;
        }
        P->nwriters = (int)n;
    }
    sx_cli_log_init(&cli, &P->cfg);
    snprintf(P->consumer, sizeof(P->consumer), "persist-%s", instance);
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
        struct sx_persist_signal *sig = &P->signals[k];
        char written[64];
        *sig = signal_defs[k];
        const char *suffix = k == SX_PERSIST_LOGS ? SX_STREAM_LOGS : SX_STREAM_SPANS;
        sx_redis_key(sig->stream, sizeof(sig->stream), &P->cfg, suffix);
        snprintf(sig->dead, sizeof(sig->dead), "%s:dead", sig->stream);
        snprintf(written, sizeof(written), "persist:%s_written", sig->name);
        sx_redis_key(sig->written_key, sizeof(sig->written_key), &P->cfg, written);
        P->rd[k].sig = sig;
    }
    sx_redis_key(P->last_write_key, sizeof(P->last_write_key), &P->cfg, "persist:last_write");
    return -1;
}

/* Waits until Redis (with the group) and PostgreSQL (with today's and the
 * coming partitions) are usable. SX_ERR when a stop came first. */
static int connect_all(struct persist *P)
{
    int backoff = BACKOFF_MIN_MS;
    while (!sx_persist_stop) {
        if (redis_ready(P) == SX_OK && ensure_ahead(P) == SX_OK) return SX_OK;
        sx_warn("not ready; retrying in %d ms", backoff);
        sx_persist_nap(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return SX_ERR;
}

static void periodic(struct persist *P)
{
    struct sx_persist_shared *S = &P->shared;
    int64_t now = sx_mono_ns();
    int acked[SX_PERSIST_NKINDS], any_acked = 0, rescan;
    long long rows[SX_PERSIST_NKINDS], batches, dead, events;

    pthread_mutex_lock(&S->mu);
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) any_acked |= acked[k] = S->acked[k];
    rescan = S->rescan;
    S->rescan = 0;
    pthread_mutex_unlock(&S->mu);
    if (rescan) rescan_history(P); /* a writer could not acknowledge: read our pending entries again */
    if (now >= P->next_ahead_ns) {
        if (ensure_ahead(P) == SX_OK) P->next_ahead_ns = now + AHEAD_EVERY_NS;
        else P->next_ahead_ns = now + 60LL * 1000000000LL;
    }
    if (now >= P->next_prune_ns) {
        /* Ledger rows past their bound (see sql/002_persist_ledger.sql). */
        int ok = sx_persist_db_ready(&P->db) == SX_OK && sx_persist_db_prune(&P->db) == SX_OK;
        P->next_prune_ns = now + (ok ? PRUNE_EVERY_NS : 60LL * 1000000000LL);
    }
    if (now >= P->next_claim_ns && redis_alive(P)) {
        for (int k = 0; k < SX_PERSIST_NKINDS; k++) claim_cycle(P, &P->rd[k]);
        P->next_claim_ns = now + P->cfg.persist_claim_idle_ms / 2 * 1000000LL;
    }
    if (any_acked && now >= P->next_trim_ns && redis_alive(P)) {
        pthread_mutex_lock(&S->mu);
        for (int k = 0; k < SX_PERSIST_NKINDS; k++)
            if (acked[k]) S->acked[k] = 0;
        pthread_mutex_unlock(&S->mu);
        for (int k = 0; k < SX_PERSIST_NKINDS; k++)
            if (acked[k]) sx_redis_trim_consumed(P->rc, P->signals[k].stream);
        P->next_trim_ns = now + TRIM_EVERY_NS;
    }
    if (now >= P->next_users_ns) {
        /* Affected users: the HyperLogLogs the writers added to, into issues. */
        if (redis_alive(P)) sx_persist_errors_flush_users(S, P->rc, &P->db);
        P->next_users_ns = now + USERS_FLUSH_EVERY_NS;
    }
    if (now >= P->next_stats_ns) {
        pthread_mutex_lock(&S->mu);
        for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
            rows[k] = S->rows[k];
            S->rows[k] = 0;
        }
        batches = S->batches;
        dead = S->dead_letters;
        events = S->error_events;
        S->batches = S->dead_letters = 0;
        S->error_events = 0;
        pthread_mutex_unlock(&S->mu);
        if (batches || dead)
            sx_info("wrote %lld new spans, %lld new log records and %lld error events in %lld batches; "
                    "%lld entries dead-lettered",
                    rows[SX_PERSIST_SPANS], rows[SX_PERSIST_LOGS], events, batches, dead);
        P->next_stats_ns = now + STATS_EVERY_NS;
    }
}

int main(int argc, char **argv)
{
    static struct persist P; /* the process state; lives until exit */
    int rc = setup(&P, argc, argv);
    if (rc >= 0) return rc;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sx_persist_db_init(&P.db, P.cfg.pg_conninfo);
    P.arena = sx_arena_create(ARENA_CHUNK, ARENA_MAX);
    sx_buf_init(&P.live_items, (size_t)1 << 20);
    P.errcx = sx_persist_errctx_create(&P.db);
    P.shared.cfg = &P.cfg;
    P.shared.last_write_key = P.last_write_key;
    sx_persist_writers_start(&P.shared, P.nwriters);
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) P.rd[k].cur = sx_persist_batch_get(&P.shared, P.rd[k].sig);

    rc = 0;
    if (connect_all(&P) != SX_OK) goto cleanup;
    int64_t now = sx_mono_ns();
    P.next_ahead_ns = now + AHEAD_EVERY_NS;
    P.next_claim_ns = now; /* reclaim a crashed instance's entries right away */
    P.next_stats_ns = now + STATS_EVERY_NS;
    P.next_prune_ns = now + 60LL * 1000000000LL; /* first prune a minute after start */
    sd_notify(0, "READY=1");
    sx_info("ready: batch %lld rows, %d writers, block %lld ms, claim idle %lld ms", P.cfg.persist_batch_spans,
            P.nwriters, P.cfg.persist_block_ms, P.cfg.persist_claim_idle_ms);

    int backoff = BACKOFF_MIN_MS;
    while (!sx_persist_stop) {
        if (redis_ready(&P) != SX_OK) {
            sx_persist_nap(backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        read_cycle(&P);
        periodic(&P);
    }
    sd_notify(0, "STOPPING=1");
    sx_info("stopping: finishing queued batches");

cleanup:
    /* The batches being filled are written too ("finish the current batch"). */
    for (int k = 0; k < SX_PERSIST_NKINDS; k++) {
        sx_persist_batch_submit(&P.shared, P.rd[k].cur);
        P.rd[k].cur = NULL;
    }
    sx_persist_writers_stop(&P.shared);
    if (P.rc) redisFree(P.rc);
    sx_persist_errctx_destroy(P.errcx);
    sx_persist_db_term(&P.db);
    sx_arena_destroy(P.arena);
    sx_buf_term(&P.live_items);
    sx_info("stopped");
    return rc;
}
