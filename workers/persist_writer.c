/* persist_writer.c: sextant-persist's batch pool and writer threads (write, retry, acknowledge).
 *
 * Each writer owns one PostgreSQL connection (struct sx_persist_db) and one
 * Redis connection used only for XACK and the dead letter stream. A batch is
 * acknowledged with one XACK after its COMMIT; when PostgreSQL fails the
 * writer rolls back and retries the same batch with back-off (1 s doubling
 * to 30 s), at once after a deadlock. When PostgreSQL refuses the rows
 * themselves the batch is written entry by entry and only the refused
 * entries go to the dead letter stream. */
#include "persist.h"

#include "entry.h"

#include "log.h"
#include "redis.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define COPY_MAX ((size_t)256 << 20)
#define JSON_MAX ((size_t)64 << 20)
#define IDS_MAX ((size_t)64 << 20)
#define LIVE_MAX ((size_t)64 << 20)

volatile sig_atomic_t sx_persist_stop;

/* One writer thread's own state. */
struct writer {
    struct sx_persist_shared *S;
    int index;
    struct sx_persist_db db;
    redisContext *rc; /* NULL or dead while disconnected */
};

void sx_persist_nap(int ms)
{
    while (ms > 0 && !sx_persist_stop) {
        int step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* ---- batches ---------------------------------------------------------------- */

static void batch_reset(struct sx_persist_batch *b)
{
    sx_buf_reset(&b->copy);
    sx_buf_reset(&b->ids);
    sx_buf_reset(&b->live);
    b->nlive = 0;
    sx_spanrow_reset(&b->enc);
    sx_logrow_reset(&b->logs);
    sx_persist_errs_reset(b->errs);
    b->nents = 0;
    b->next = NULL;
}

size_t sx_persist_batch_rows(const struct sx_persist_batch *b)
{
    return b->sig->kind == SX_PERSIST_LOGS ? b->logs.rows : b->enc.rows;
}

const int64_t *sx_persist_batch_days(struct sx_persist_batch *b, size_t *n)
{
    return b->sig->kind == SX_PERSIST_LOGS ? sx_logrow_days(&b->logs, n) : sx_spanrow_days(&b->enc, n);
}

void sx_persist_batch_add(struct sx_persist_batch *b, const char *id, size_t idlen,
                          const uint8_t hash[SX_PERSIST_HASH_LEN], size_t off, size_t meta0)
{
    sx_persist_batch_add_ev(b, id, idlen, hash, off, meta0, b->errs->copy.len, 0);
}

void sx_persist_batch_add_ev(struct sx_persist_batch *b, const char *id, size_t idlen,
                             const uint8_t hash[SX_PERSIST_HASH_LEN], size_t off, size_t meta0, size_t eoff,
                             size_t nev)
{
    if (b->nents == b->ents_cap) {
        size_t cap = b->ents_cap ? b->ents_cap * 2 : 256;
        struct sx_persist_entry *p = realloc(b->ents, cap * sizeof(*p));
        if (!p) {
            fprintf(stderr, "out of memory\n");
            abort();
        }
        b->ents = p;
        b->ents_cap = cap;
    }
    struct sx_persist_entry *e = &b->ents[b->nents++];
    e->id_off = b->ids.len;
    e->idlen = idlen;
    e->off = off;
    e->len = b->copy.len - off;
    e->meta0 = meta0;
    e->rows = sx_persist_batch_rows(b) - meta0;
    e->eoff = eoff;
    e->elen = b->errs->copy.len - eoff;
    e->nev = nev;
    if (hash) memcpy(e->hash, hash, SX_PERSIST_HASH_LEN);
    else memset(e->hash, 0, SX_PERSIST_HASH_LEN);
    if (sx_buf_append(&b->ids, id, idlen) != SX_OK) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
}

struct sx_persist_batch *sx_persist_batch_get(struct sx_persist_shared *S, const struct sx_persist_signal *sig)
{
    pthread_mutex_lock(&S->mu);
    while (!S->free_list) pthread_cond_wait(&S->freed, &S->mu);
    struct sx_persist_batch *b = S->free_list;
    S->free_list = b->next;
    pthread_mutex_unlock(&S->mu);
    b->sig = sig;
    batch_reset(b);
    return b;
}

static void batch_put(struct sx_persist_shared *S, struct sx_persist_batch *b)
{
    pthread_mutex_lock(&S->mu);
    b->next = S->free_list;
    S->free_list = b;
    pthread_cond_signal(&S->freed);
    pthread_mutex_unlock(&S->mu);
}

void sx_persist_batch_submit(struct sx_persist_shared *S, struct sx_persist_batch *b)
{
    if (b->nents == 0) {
        batch_put(S, b);
        return;
    }
    pthread_mutex_lock(&S->mu);
    b->next = NULL;
    if (S->queue_tail) S->queue_tail->next = b;
    else S->queue_head = b;
    S->queue_tail = b;
    pthread_cond_signal(&S->work);
    pthread_mutex_unlock(&S->mu);
}

/* ---- Redis side of a writer ---------------------------------------------- */

static void redis_failed(redisContext *rc, const char *what, const redisReply *r)
{
    if (!r)
        sx_warn("%s failed: %s", what, rc ? rc->errstr : "not connected");
    else if (r->type == REDIS_REPLY_ERROR)
        sx_warn("%s failed: %.*s", what, (int)r->len, r->str);
    else
        sx_warn("%s failed: unexpected reply type %d", what, r->type);
}

int sx_persist_dead_letter(redisContext *rc, const struct sx_persist_signal *sig, const char *id, size_t idlen,
                           const redisReply *fields, const char *why)
{
    return sx_entry_dead_letter(rc, sig->stream, sig->dead, SX_GROUP_PERSIST, id, idlen, fields, why);
}

static int writer_redis(struct writer *w)
{
    return sx_redis_ensure(&w->rc, w->S->cfg, 2000, 5000);
}

/* Dead-letters an entry of a batch whose rows PostgreSQL refused: its
 * fields are read back with XRANGE (the batch keeps only ids). */
static int dead_letter_by_id(struct writer *w, const struct sx_persist_signal *sig, const char *id, size_t idlen,
                             const char *why)
{
    if (writer_redis(w) != SX_OK) return SX_ERR;
    redisReply *r = redisCommand(w->rc, "XRANGE %s %b %b", sig->stream, id, idlen, id, idlen);
    const redisReply *fields = NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        redis_failed(w->rc, "XRANGE", r);
        if (r) freeReplyObject(r);
        return SX_ERR;
    }
    if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        fields = r->element[0]->element[1];
    int rc = sx_persist_dead_letter(w->rc, sig, id, idlen, fields, why);
    freeReplyObject(r);
    if (rc == SX_OK) {
        pthread_mutex_lock(&w->S->mu);
        w->S->dead_letters++;
        pthread_mutex_unlock(&w->S->mu);
    }
    return rc;
}

/* Acknowledges every entry of the batch with one XACK and, after a commit,
 * records the write for `sextantctl status` (one pipelined round trip). */
static int ack_batch(struct writer *w, const struct sx_persist_batch *b, int committed, long long inserted)
{
    size_t argc = 3 + b->nents;
    const char **argv = sx_xcalloc(argc, sizeof(*argv));
    size_t *argl = sx_xcalloc(argc, sizeof(*argl));
    int rc = SX_ERR, nreplies = committed ? 3 : 1;
    argv[0] = "XACK";
    argv[1] = b->sig->stream;
    argv[2] = SX_GROUP_PERSIST;
    for (size_t i = 0; i < 3; i++) argl[i] = strlen(argv[i]);
    for (size_t i = 0; i < b->nents; i++) {
        argv[3 + i] = b->ids.data + b->ents[i].id_off;
        argl[3 + i] = b->ents[i].idlen;
    }
    if (writer_redis(w) != SX_OK) goto cleanup;
    redisAppendCommandArgv(w->rc, (int)argc, argv, argl);
    if (committed) {
        redisAppendCommand(w->rc, "SET %s %lld", w->S->last_write_key, (long long)sx_now_ms());
        redisAppendCommand(w->rc, "INCRBY %s %lld", b->sig->written_key, inserted);
        /* The live entries ride in the same round trip (README "Live stream"). */
        if (b->nlive && redisAppendFormattedCommand(w->rc, b->live.data, b->live.len) == REDIS_OK)
            nreplies += (int)b->nlive;
    }
    rc = SX_OK;
    for (int i = 0; i < nreplies; i++) {
        void *vr = NULL;
        const char *what = i == 0 ? "XACK" : i < 3 ? "SET/INCRBY persist stats" : "XADD live";
        if (redisGetReply(w->rc, &vr) != REDIS_OK) {
            redis_failed(w->rc, what, NULL);
            rc = i < 3 ? SX_ERR : rc;
            break;
        }
        redisReply *r = vr;
        int want = i == 0 || i == 2 ? REDIS_REPLY_INTEGER : i == 1 ? REDIS_REPLY_STATUS : REDIS_REPLY_STRING;
        if (r->type != want) {
            redis_failed(w->rc, what, r);
            if (i == 0) rc = SX_ERR;
        }
        freeReplyObject(r);
    }

cleanup:
    free(argv);
    free(argl);
    return rc;
}

/* ---- PostgreSQL side of a writer ------------------------------------------ */

/* Writes the listed entries of b with retries: at once after a deadlock,
 * with back-off after other failures (reconnecting as needed). Returns
 * SX_OK, SX_PERSIST_EDATA when the rows are refused twice (the second time
 * after re-creating the partitions, in case one was dropped under us), or
 * SX_ERR when a stop was requested before the write could succeed. */
static int write_retry(struct writer *w, struct sx_persist_batch *b, const size_t *ents, size_t n,
                       long long *inserted, char *err, size_t errlen)
{
    int backoff = BACKOFF_MIN_MS, data_failures = 0;
    for (;;) {
        if (sx_persist_db_ready(&w->db) == SX_OK) {
            size_t nd;
            const int64_t *days = sx_persist_batch_days(b, &nd);
            size_t ned = 0;
            const int64_t *edays = b->errs->events ? sx_persist_errs_days(b->errs, &ned) : NULL;
            if (sx_persist_db_ensure_days(&w->db, b->sig, days, nd) == SX_OK &&
                sx_persist_db_ensure_days(&w->db, &sx_persist_errors_sig, edays, ned) == SX_OK) {
                int rc = sx_persist_db_write(&w->db, b, ents, n, inserted, err, errlen);
                if (rc == SX_OK) return SX_OK;
                sx_warn("%s", err);
                if (rc == SX_AGAIN) {
                    sx_persist_nap(20);
                    if (sx_persist_stop) return SX_ERR;
                    continue;
                }
                sx_persist_db_forget_days(&w->db);
                if (rc == SX_PERSIST_EDATA && ++data_failures >= 2) return SX_PERSIST_EDATA;
                if (rc == SX_PERSIST_EDATA) continue;
            }
        }
        if (sx_persist_stop) return SX_ERR;
        sx_warn("postgresql write failed; retrying in %d ms", backoff);
        sx_persist_nap(backoff);
        if (sx_persist_stop) return SX_ERR;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

/* After a COMMIT: the affected users and live entries of its error events. */
static void after_commit(struct writer *w)
{
    if (!w->db.npost) return;
    if (writer_redis(w) != SX_OK) sx_warn("redis unreachable: user counts and live entries of a batch not sent");
    sx_persist_errors_after_commit(&w->db, w->S, w->rc);
}

/* Writes the batch; when PostgreSQL refuses its data, writes entry by entry
 * (each in its own transaction, with its own ledger row) so that only the
 * offending entries go to the dead letter stream. */
static int write_batch(struct writer *w, struct sx_persist_batch *b, long long *inserted, long long *events)
{
    char err[512];
    size_t *ents = sx_xcalloc(b->nents ? b->nents : 1, sizeof(*ents));
    size_t n = 0;
    int rc;
    *inserted = *events = 0;
    for (size_t i = 0; i < b->nents; i++)
        if (b->ents[i].rows) ents[n++] = i;
    rc = n ? write_retry(w, b, ents, n, inserted, err, sizeof(err)) : SX_OK;
    if (n && rc == SX_OK) {
        *events = w->db.events;
        after_commit(w);
    }
    if (rc == SX_PERSIST_EDATA) {
        sx_warn("batch of %zu entries refused; writing them one by one", b->nents);
        /* Its live entries are not published: some of them will not be in PostgreSQL. */
        sx_buf_reset(&b->live);
        b->nlive = 0;
        rc = SX_OK;
        for (size_t k = 0; k < n && rc == SX_OK; k++) {
            const struct sx_persist_entry *e = &b->ents[ents[k]];
            long long ins = 0;
            int r = write_retry(w, b, &ents[k], 1, &ins, err, sizeof(err));
            if (r == SX_OK) {
                *inserted += ins;
                *events += w->db.events;
                after_commit(w);
            }
            else if (r == SX_PERSIST_EDATA)
                rc = dead_letter_by_id(w, b->sig, b->ids.data + e->id_off, e->idlen, err);
            else
                rc = SX_ERR;
        }
    }
    free(ents);
    return rc;
}

/* Writes and acknowledges one batch. Failures leave its entries pending:
 * they are delivered again (writes are idempotent). */
static void process(struct writer *w, struct sx_persist_batch *b)
{
    long long inserted = 0, events = 0;
    int64_t t0 = sx_mono_ns();
    struct sx_persist_shared *S = w->S;
    if (write_batch(w, b, &inserted, &events) != SX_OK) {
        sx_warn("batch of %zu entries not written; they stay pending", b->nents);
        return;
    }
    size_t rows = sx_persist_batch_rows(b);
    int acked = ack_batch(w, b, rows > 0, inserted) == SX_OK;
    if (!acked) sx_warn("batch of %zu entries written but not acknowledged; they will be delivered again", b->nents);
    sx_debug("batch: %zu %s entries, %zu rows, %lld written, %zu bytes; written and acked in %.1f ms", b->nents,
             b->sig->name, rows, inserted, b->copy.len, (double)(sx_mono_ns() - t0) / 1e6);
    pthread_mutex_lock(&S->mu);
    S->rows[b->sig->kind] += inserted;
    S->error_events += events;
    S->batches++;
    if (acked) S->acked[b->sig->kind] = 1;
    else S->rescan = 1;
    pthread_mutex_unlock(&S->mu);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct sx_persist_shared *S = w->S;
    pthread_mutex_lock(&S->mu);
    for (;;) {
        while (!S->queue_head && !S->exiting) pthread_cond_wait(&S->work, &S->mu);
        struct sx_persist_batch *b = S->queue_head;
        if (!b) break; /* exiting and nothing left */
        S->queue_head = b->next;
        if (!S->queue_head) S->queue_tail = NULL;
        pthread_mutex_unlock(&S->mu);
        process(w, b);
        batch_put(S, b);
        pthread_mutex_lock(&S->mu);
    }
    pthread_mutex_unlock(&S->mu);
    sx_persist_db_term(&w->db);
    if (w->rc) redisFree(w->rc);
    w->rc = NULL;
    return NULL;
}

static struct writer writers[8]; /* one per thread; owned by the pool */

void sx_persist_writers_start(struct sx_persist_shared *S, int nwriters)
{
    if (nwriters < 1) nwriters = 1;
    if (nwriters > (int)SX_ARRAY_LEN(writers)) nwriters = (int)SX_ARRAY_LEN(writers);
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->work, NULL);
    pthread_cond_init(&S->freed, NULL);
    S->nbatches = (size_t)nwriters + SX_PERSIST_NKINDS;
    S->all = sx_xcalloc(S->nbatches, sizeof(*S->all));
    for (size_t i = 0; i < S->nbatches; i++) {
        struct sx_persist_batch *b = &S->all[i];
        sx_buf_init(&b->copy, COPY_MAX);
        sx_buf_init(&b->ids, IDS_MAX);
        sx_buf_init(&b->live, LIVE_MAX);
        sx_spanrow_init(&b->enc, JSON_MAX);
        sx_logrow_init(&b->logs, JSON_MAX);
        b->errs = sx_persist_errs_create();
        b->next = S->free_list;
        S->free_list = b;
    }
    S->nwriters = nwriters;
    for (int i = 0; i < nwriters; i++) {
        writers[i].S = S;
        writers[i].index = i;
        sx_persist_db_init(&writers[i].db, S->cfg->pg_conninfo);
        if (pthread_create(&S->threads[i], NULL, writer_main, &writers[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            abort();
        }
    }
}

void sx_persist_writers_stop(struct sx_persist_shared *S)
{
    pthread_mutex_lock(&S->mu);
    S->exiting = 1;
    pthread_cond_broadcast(&S->work);
    pthread_mutex_unlock(&S->mu);
    for (int i = 0; i < S->nwriters; i++) pthread_join(S->threads[i], NULL);
    for (size_t i = 0; i < S->nbatches; i++) {
        sx_buf_term(&S->all[i].copy);
        sx_buf_term(&S->all[i].ids);
        sx_buf_term(&S->all[i].live);
        sx_spanrow_term(&S->all[i].enc);
        sx_logrow_term(&S->all[i].logs);
        sx_persist_errs_destroy(S->all[i].errs);
        free(S->all[i].ents);
    }
    free(S->all);
    S->all = NULL;
    free(S->touched);
    S->touched = NULL;
    S->ntouched = S->touched_cap = 0;
    S->free_list = NULL;
    pthread_cond_destroy(&S->work);
    pthread_cond_destroy(&S->freed);
    pthread_mutex_destroy(&S->mu);
}
