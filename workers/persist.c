/* persist.c: sextant-persist: reads the span stream (consumer group "persist") and writes PostgreSQL in batches.
 *
 * Design: the main thread reads stream entries (first this consumer's own
 * pending ones, from "0", then new ones with ">"), unpacks each entry's
 * protobuf and encodes its spans as COPY rows into a batch until
 * persist_batch_spans spans are buffered or the stream has nothing more right
 * now. Writer threads (persist_writer.c) write each batch in one transaction
 * (persist_db.c) and acknowledge its entries with one XACK only after
 * COMMIT. PostgreSQL failures roll back and retry the same entries with
 * back-off; Redis failures reconnect and let the unacknowledged entries be
 * delivered again (writes are idempotent). An entry that cannot be decoded
 * is copied to the dead letter stream with an "error" field and
 * acknowledged. Entries of dead consumers are reclaimed with XAUTOCLAIM;
 * acknowledged entries are trimmed below the oldest entry any consumer group
 * still needs. */
#include "arena.h"
#include "buf.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "persist.h"
#include "redis.h"
#include "spanrow.h"
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
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

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;

/* The main thread's state; one instance, owned by main. */
struct persist {
    struct sx_config cfg;
    char consumer[96];
    char stream[160], dead[176], last_write_key[160], written_key[160];
    int nwriters;
    struct sx_persist_shared shared; /* with the writer threads */
    redisContext *rc;          /* NULL or dead (err set) while disconnected */
    struct sx_persist_db db;   /* partitions made ahead of time */
    struct sx_arena *arena;    /* one entry's unpacked request at a time */
    struct sx_persist_batch *cur; /* the batch being filled */
    int history;               /* still re-reading our own pending entries */
    char cursor[64];           /* history read position */
    int64_t next_claim_ns, next_trim_ns, next_ahead_ns, next_stats_ns, next_prune_ns;
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

/* Connects when needed; after a (re)connect makes sure the group exists
 * and starts over with this consumer's own pending entries. */
static int redis_ready(struct persist *P)
{
    if (redis_alive(P)) return SX_OK;
    int timeout = (int)P->cfg.persist_block_ms + 10000; /* never shorter than the BLOCK */
    if (sx_redis_ensure(&P->rc, &P->cfg, 2000, timeout) != SX_OK) return SX_ERR;
    if (sx_redis_group_create(P->rc, P->stream, SX_GROUP_PERSIST) != SX_OK) {
        redisFree(P->rc);
        P->rc = NULL;
        return SX_ERR;
    }
    P->history = 1;
    snprintf(P->cursor, sizeof(P->cursor), "0");
    sx_info("connected to redis; group %s on %s, consumer %s", SX_GROUP_PERSIST, P->stream, P->consumer);
    return SX_OK;
}

/* Logs a failed command; a NULL reply means the connection is dead. */
static void redis_failed(struct persist *P, const char *what, const redisReply *r)
{
    if (!r)
        sx_warn("%s failed: %s", what, P->rc ? P->rc->errstr : "not connected");
    else if (r->type == REDIS_REPLY_ERROR)
        sx_warn("%s failed: %.*s", what, (int)r->len, r->str);
    else
        sx_warn("%s failed: unexpected reply type %d", what, r->type);
}

/* The value of field name in a flat field/value array, or NULL. */
static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == nl && memcmp(k->str, name, nl) == 0) {
            const redisReply *v = fields->element[i + 1];
            return v->type == REDIS_REPLY_STRING ? v : NULL;
        }
    }
    return NULL;
}

static int poison(struct persist *P, const char *id, size_t idlen, const redisReply *fields, const char *why)
{
    int rc = sx_persist_dead_letter(P->rc, &P->shared, id, idlen, fields, why);
    if (rc == SX_OK) {
        pthread_mutex_lock(&P->shared.mu);
        P->shared.dead_letters++;
        pthread_mutex_unlock(&P->shared.mu);
    }
    return rc;
}

/* ---- batches ------------------------------------------------------------- */

/* The entry's ledger key: SHA-256 of "<project>\n" and the packed body, cut
 * to SX_PERSIST_HASH_LEN bytes. The same batch added to the stream again
 * gets the same key (the receive time and key id are left out). Aborts when
 * OpenSSL cannot hash (out of memory). */
static void entry_hash(long long project, const redisReply *body, uint8_t out[SX_PERSIST_HASH_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char pfx[32];
    int n = snprintf(pfx, sizeof(pfx), "%lld\n", project);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, pfx, (size_t)n) != 1 ||
        EVP_DigestUpdate(ctx, body->str, body->len) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 ||
        mdlen < SX_PERSIST_HASH_LEN) {
        fprintf(stderr, "sha-256 of a stream entry failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, SX_PERSIST_HASH_LEN);
}

/* Hands the current batch to the writers and takes an empty one (waiting
 * while every writer is busy: back-pressure). */
static void submit(struct persist *P)
{
    if (P->cur->nents == 0) return;
    sx_persist_batch_submit(&P->shared, P->cur);
    P->cur = sx_persist_batch_get(&P->shared);
}

/* Decodes one entry into the current batch, submitting it first when full.
 * Undecodable entries go to the dead letter stream. SX_ERR on a Redis
 * failure (the caller ends the cycle). */
static int take_entry(struct persist *P, const redisReply *item)
{
    char why[160];
    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 || item->element[0]->type != REDIS_REPLY_STRING)
        return SX_OK; /* not an entry: nothing we could even acknowledge */
    const char *id = item->element[0]->str;
    size_t idlen = item->element[0]->len;
    const redisReply *fields = item->element[1];

    if ((long long)P->cur->enc.rows >= P->cfg.persist_batch_spans) submit(P);
    if (fields->type == REDIS_REPLY_NIL) {
        /* Deleted while pending (trimmed by hand): only acknowledge it. */
        sx_persist_batch_add(P->cur, id, idlen, NULL, P->cur->copy.len, P->cur->enc.nmeta);
        return SX_OK;
    }
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2)
        return poison(P, id, idlen, fields->type == REDIS_REPLY_ARRAY ? fields : NULL, "malformed entry");
    const redisReply *p = entry_field(fields, SX_FIELD_PROJECT);
    const redisReply *b = entry_field(fields, SX_FIELD_BODY);
    char pbuf[24];
    long long project = 0;
    if (p && p->len > 0 && p->len < sizeof(pbuf)) {
        char *end;
        memcpy(pbuf, p->str, p->len);
        pbuf[p->len] = '\0';
        errno = 0;
        project = strtoll(pbuf, &end, 10);
        if (errno || *end || project <= 0 || project > INT32_MAX) project = 0;
    }
    if (!project) return poison(P, id, idlen, fields, "missing or invalid project id field 'p'");
    if (!b) return poison(P, id, idlen, fields, "missing body field 'b'");

    ProtobufCAllocator pa;
    sx_arena_reset(P->arena);
    sx_arena_pb_allocator(P->arena, &pa);
    trace_req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        &pa, b->len, (const uint8_t *)b->str);
    if (!req) {
        snprintf(why, sizeof(why), "%s", sx_arena_failed(P->arena) ? "request too large to unpack"
                                                                  : "protobuf unpack of field 'b' failed");
        return poison(P, id, idlen, fields, why);
    }
    struct sx_persist_batch *B = P->cur;
    size_t meta0 = B->enc.nmeta, skipped0 = B->enc.skipped, off = B->copy.len;
    if (sx_spanrow_encode(&B->enc, req, project, &B->copy) != SX_OK) {
        int retry = B->nents > 0;
        if (retry) {
            submit(P);
            B = P->cur;
            meta0 = B->enc.nmeta;
            skipped0 = B->enc.skipped;
            off = B->copy.len;
        }
        if (!retry || sx_spanrow_encode(&B->enc, req, project, &B->copy) != SX_OK)
            return poison(P, id, idlen, fields, "rows do not fit the COPY buffer");
    }
    if (B->enc.skipped > skipped0)
        sx_warn("entry %.*s: %zu spans with invalid ids or times skipped", (int)idlen, id, B->enc.skipped - skipped0);
    uint8_t hash[SX_PERSIST_HASH_LEN];
    entry_hash(project, b, hash);
    sx_persist_batch_add(B, id, idlen, hash, off, meta0);
    return SX_OK;
}

/* Takes every entry of an entries array (XREADGROUP / XAUTOCLAIM shape). */
static int take_entries(struct persist *P, const redisReply *arr, size_t *taken)
{
    *taken = 0;
    if (arr->type != REDIS_REPLY_ARRAY) return SX_OK;
    for (size_t i = 0; i < arr->elements; i++) {
        if (take_entry(P, arr->element[i]) != SX_OK) return SX_ERR;
        (*taken)++;
    }
    return SX_OK;
}

/* One XREADGROUP; returns the reply (caller frees) with *arr set to its
 * entries array, or NULL with *arr NULL when nothing came; *failed is set
 * on a Redis failure. */
static redisReply *read_group(struct persist *P, const char *from, int block, const redisReply **arr, int *failed)
{
    char count[16], blockms[24];
    const char *argv[12];
    size_t argl[12];
    int argc = 0;
    *arr = NULL;
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
    argv[argc++] = P->stream;
    argv[argc++] = from;
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
        /* The stream or group was deleted: create it again. */
        redis_failed(P, "XREADGROUP", r);
        freeReplyObject(r);
        sx_redis_group_create(P->rc, P->stream, SX_GROUP_PERSIST);
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        redis_failed(P, "XREADGROUP", r);
        freeReplyObject(r);
        *failed = 1;
        return NULL;
    }
    *arr = r->element[0]->element[1];
    return r;
}

/* Reads and decodes until the batch is full or the stream has no more
 * entries right now, then hands the batch to the writers. */
static void read_cycle(struct persist *P)
{
    int first = 1;
    while (!sx_persist_stop) {
        const redisReply *arr;
        size_t taken = 0;
        int failed, history = P->history;
        int block = !history && first && P->cur->nents == 0;
        redisReply *r = read_group(P, history ? P->cursor : ">", block, &arr, &failed);
        first = 0;
        if (failed) break;
        if (!arr || arr->elements == 0) {
            if (r) freeReplyObject(r);
            if (history) {
                P->history = 0;
                sx_info("own pending entries done; reading new entries");
                continue;
            }
            break;
        }
        if (history) {
            const redisReply *last = arr->element[arr->elements - 1];
            if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1 && last->element[0]->type == REDIS_REPLY_STRING)
                snprintf(P->cursor, sizeof(P->cursor), "%.*s", (int)last->element[0]->len, last->element[0]->str);
        }
        int rc = take_entries(P, arr, &taken);
        size_t got = arr->elements;
        freeReplyObject(r);
        if (rc != SX_OK) break;
        if ((long long)P->cur->enc.rows >= P->cfg.persist_batch_spans) break;
        if (!history && got < READ_COUNT) break; /* drained for now */
    }
    submit(P);
}

/* Reclaims entries idle longer than persist_claim_idle_ms from any consumer
 * of the group (a crashed instance) and processes them. */
static void claim_cycle(struct persist *P)
{
    char cursor[64] = "0-0", idle[24];
    long long claimed = 0;
    snprintf(idle, sizeof(idle), "%lld", P->cfg.persist_claim_idle_ms);
    do {
        redisReply *r = redisCommand(P->rc, "XAUTOCLAIM %s %s %s %s %s COUNT %d", P->stream, SX_GROUP_PERSIST,
                                     P->consumer, idle, cursor, READ_COUNT);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            redis_failed(P, "XAUTOCLAIM", r);
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        size_t taken = 0;
        int rc = take_entries(P, r->element[1], &taken);
        claimed += (long long)taken;
        freeReplyObject(r);
        if (rc != SX_OK) break;
    } while (strcmp(cursor, "0-0") != 0 && !sx_persist_stop);
    if (claimed) sx_info("reclaimed %lld idle pending entries", claimed);
    submit(P);
}

/* ---- trimming ------------------------------------------------------------- */

struct sid {
    uint64_t ms, seq;
};

static int parse_id(const char *s, size_t n, struct sid *out)
{
    char tmp[64], *end;
    if (n == 0 || n >= sizeof(tmp)) return SX_ERR;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    out->ms = strtoull(tmp, &end, 10);
    out->seq = 0;
    if (errno || end == tmp) return SX_ERR;
    if (*end == '-') {
        char *e2;
        out->seq = strtoull(end + 1, &e2, 10);
        if (errno || *e2) return SX_ERR;
    } else if (*end) {
        return SX_ERR;
    }
    return SX_OK;
}

static int sid_less(struct sid a, struct sid b)
{
    return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq);
}

/* The smallest pending id of group, or SX_ERR when it has none/failed. */
static int group_min_pending(struct persist *P, const char *group, size_t glen, struct sid *out)
{
    int rc = SX_ERR;
    redisReply *r = redisCommand(P->rc, "XPENDING %s %b", P->stream, group, glen);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        redis_failed(P, "XPENDING", r);
        goto cleanup;
    }
    if (r->element[1]->type == REDIS_REPLY_STRING)
        rc = parse_id(r->element[1]->str, r->element[1]->len, out);
cleanup:
    if (r) freeReplyObject(r);
    return rc;
}

/* XTRIM MINID below the oldest entry that any consumer group still needs:
 * its smallest pending id, or (nothing pending) the id just after its last
 * delivered one. Entries no group has read yet are never trimmed. */
static void trim(struct persist *P)
{
    struct sid min = {UINT64_MAX, UINT64_MAX};
    int groups = 0, ok = 1;
    redisReply *r = redisCommand(P->rc, "XINFO GROUPS %s", P->stream);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        redis_failed(P, "XINFO GROUPS", r);
        goto cleanup;
    }
    for (size_t g = 0; g < r->elements && ok; g++) {
        const redisReply *info = r->element[g];
        const redisReply *name = NULL, *last = NULL;
        long long pending = -1;
        if (info->type != REDIS_REPLY_ARRAY) {
            ok = 0;
            break;
        }
        for (size_t i = 0; i + 1 < info->elements; i += 2) {
            const redisReply *k = info->element[i], *v = info->element[i + 1];
            if (k->type != REDIS_REPLY_STRING) continue;
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING) name = v;
            else if (strcmp(k->str, "last-delivered-id") == 0 && v->type == REDIS_REPLY_STRING) last = v;
            else if (strcmp(k->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER) pending = v->integer;
        }
        struct sid need;
        if (!name || !last || pending < 0 || parse_id(last->str, last->len, &need) != SX_OK) {
            ok = 0;
            break;
        }
        if (pending > 0) {
            if (group_min_pending(P, name->str, name->len, &need) != SX_OK) {
                ok = 0;
                break;
            }
        } else if (need.seq == UINT64_MAX) { /* the entry after the last delivered one */
            need.ms++;
            need.seq = 0;
        } else {
            need.seq++;
        }
        if (sid_less(need, min)) min = need;
        groups++;
    }
    if (!ok || groups == 0 || (min.ms == 0 && min.seq == 0)) goto cleanup;
    freeReplyObject(r);
    char minid[48];
    snprintf(minid, sizeof(minid), "%" PRIu64 "-%" PRIu64, min.ms, min.seq);
    r = redisCommand(P->rc, "XTRIM %s MINID %s", P->stream, minid);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        redis_failed(P, "XTRIM", r);
    else if (r->integer > 0)
        sx_debug("trimmed %lld entries below %s", r->integer, minid);

cleanup:
    if (r) freeReplyObject(r);
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
    return sx_persist_db_ensure_days(&P->db, days, n);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sextant-persist [--config FILE] [--set name=value]... [--instance NAME] [--help]\n"
            "\n"
            "Reads the span stream (consumer group \"persist\") and writes spans and trace summaries\n"
            "to PostgreSQL in batches.\n"
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
    sx_redis_key(P->stream, sizeof(P->stream), &P->cfg, SX_STREAM_SPANS);
    snprintf(P->dead, sizeof(P->dead), "%s:dead", P->stream);
    sx_redis_key(P->last_write_key, sizeof(P->last_write_key), &P->cfg, "persist:last_write");
    sx_redis_key(P->written_key, sizeof(P->written_key), &P->cfg, "persist:spans_written");
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
    int acked, rescan;
    long long spans, batches, dead;

    pthread_mutex_lock(&S->mu);
    acked = S->acked;
    rescan = S->rescan;
    S->rescan = 0;
    pthread_mutex_unlock(&S->mu);
    if (rescan) {
        /* A writer could not acknowledge: read our pending entries again. */
        P->history = 1;
        snprintf(P->cursor, sizeof(P->cursor), "0");
    }
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
        claim_cycle(P);
        P->next_claim_ns = now + P->cfg.persist_claim_idle_ms / 2 * 1000000LL;
    }
    if (acked && now >= P->next_trim_ns && redis_alive(P)) {
        pthread_mutex_lock(&S->mu);
        S->acked = 0;
        pthread_mutex_unlock(&S->mu);
        trim(P);
        P->next_trim_ns = now + TRIM_EVERY_NS;
    }
    if (now >= P->next_stats_ns) {
        pthread_mutex_lock(&S->mu);
        spans = S->spans;
        batches = S->batches;
        dead = S->dead_letters;
        S->spans = S->batches = S->dead_letters = 0;
        pthread_mutex_unlock(&S->mu);
        if (batches || dead)
            sx_info("wrote %lld new spans in %lld batches; %lld entries dead-lettered", spans, batches, dead);
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
    P.shared.cfg = &P.cfg;
    P.shared.stream = P.stream;
    P.shared.dead = P.dead;
    P.shared.last_write_key = P.last_write_key;
    P.shared.written_key = P.written_key;
    sx_persist_writers_start(&P.shared, P.nwriters);
    P.cur = sx_persist_batch_get(&P.shared);

    rc = 0;
    if (connect_all(&P) != SX_OK) goto cleanup;
    int64_t now = sx_mono_ns();
    P.next_ahead_ns = now + AHEAD_EVERY_NS;
    P.next_claim_ns = now; /* reclaim a crashed instance's entries right away */
    P.next_stats_ns = now + STATS_EVERY_NS;
    P.next_prune_ns = now + 60LL * 1000000000LL; /* first prune a minute after start */
    sd_notify(0, "READY=1");
    sx_info("ready: batch %lld spans, %d writers, block %lld ms, claim idle %lld ms", P.cfg.persist_batch_spans,
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
    /* The batch being filled is written too ("finish the current batch"). */
    sx_persist_batch_submit(&P.shared, P.cur);
    P.cur = NULL;
    sx_persist_writers_stop(&P.shared);
    if (P.rc) redisFree(P.rc);
    sx_persist_db_term(&P.db);
    sx_arena_destroy(P.arena);
    sx_info("stopped");
    return rc;
}
