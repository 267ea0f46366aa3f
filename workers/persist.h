/* persist.h: sextant-persist internals shared by its files: the PostgreSQL writer, batches and writer threads. */
#ifndef SX_PERSIST_H
#define SX_PERSIST_H

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "copyrow.h"
#include "entry.h"
#include "logrow.h"
#include "spanrow.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>

/* Result of a batch write, beyond SX_OK / SX_ERR (retry later, with back-off):
 * SX_AGAIN     deadlock or serialization failure: retry the batch at once;
 * SX_PERSIST_EDATA  the data itself was refused (SQLSTATE class 22, 23, 54):
 *              retrying the same rows cannot succeed, so the caller isolates
 *              the offending entry. */
#define SX_PERSIST_EDATA (-3)

/* Bytes of an entry's ledger key (the start of a SHA-256). */
#define SX_PERSIST_HASH_LEN SX_ENTRY_KEY_LEN

struct sx_persist_batch;
struct sx_persist_shared;

/* The signals sextant-persist carries from a stream to a table. */
enum sx_persist_kind { SX_PERSIST_SPANS, SX_PERSIST_LOGS, SX_PERSIST_NKINDS };

/* One signal: where its entries come from and where its rows go. The
 * table of them (persist.c) is filled at startup, then only read; every
 * stream is read, written, acknowledged, dead-lettered and trimmed by the
 * same code, which looks here for what differs. */
struct sx_persist_signal {
    enum sx_persist_kind kind;
    const char *name;          /* "spans", "logs": in log lines */
    const char *copy_sql;      /* COPY <table> (<columns>) FROM STDIN */
    const char *partition_sql; /* SELECT sextant_ensure_<x>_partition($1::bigint) */
    char stream[160];          /* <prefix>:stream:<name> */
    char dead[176];            /* <stream>:dead */
    char written_key[160];     /* rows written, for `sextantctl status` */
};

/* The PostgreSQL side of sextant-persist: one per writer thread and one for
 * the main thread (partitions ahead, ledger pruning); conn is rebuilt when
 * it breaks. The scratch fields serve one write at a time. */
struct sx_persist_db {
    const char *conninfo;   /* borrowed from the config */
    PGconn *conn;           /* NULL while disconnected */
    int session_ready;      /* traces_stage exists on conn */
    int64_t *days;          /* UTC days (+ kind) whose partition is known to exist */
    size_t ndays, days_cap;
    struct sx_buf sql;      /* ledger arrays, then traces_stage COPY text */
    struct sx_buf ids;      /* ledger entry id array */
    void *cand;             /* candidate entries sorted by key (struct cand) */
    size_t cand_cap;
    unsigned char *fresh;   /* per batch entry: 1 when new in this write */
    size_t fresh_cap;
    const struct sx_spanrow_meta **order; /* metas of the new rows, sorted by trace */
    size_t order_cap;
    void *svcs;             /* one trace's services (struct svc) */
    size_t svcs_cap;
    struct sx_buf post;     /* after COMMIT: PFADDs and live entries (persist_errors_db.c) */
    size_t npost;
    long long events;       /* error events written by the last successful write */
};

void sx_persist_db_init(struct sx_persist_db *db, const char *conninfo);
/* Closes the connection and frees the day cache and scratch. */
void sx_persist_db_term(struct sx_persist_db *db);

/* Connects when needed and prepares the session (temp traces_stage table).
 * SX_OK or SX_ERR (logged; the connection is dropped). */
int sx_persist_db_ready(struct sx_persist_db *db);

/* Makes sure the daily partitions of sig's table for the n day starts
 * (unix ns) exist, calling its partition function outside any transaction
 * for days not cached yet. SX_OK or SX_ERR (logged). */
int sx_persist_db_ensure_days(struct sx_persist_db *db, const struct sx_persist_signal *sig, const int64_t *days,
                              size_t n);

/* Forgets the cached days (after an error that may come from a dropped
 * partition). */
void sx_persist_db_forget_days(struct sx_persist_db *db);

/* Writes the n entries of batch b listed in ents (indexes into b->ents) in
 * one transaction: ledger rows for their keys under b's stream (ON CONFLICT
 * DO NOTHING), then COPY of the rows of the entries that were new into b's
 * table, then (spans) the trace summaries of those rows (aggregated here,
 * upserted in (project_id, trace_id) order), then COMMIT. Entries already
 * in the ledger (or twice in the list) add nothing. Before COMMIT the
 * batch's error events are written too (sx_persist_errors_write; then
 * db->events and db->post tell what was written and what to send to Redis).
 * *inserted gets the number of rows written. Returns SX_OK, SX_AGAIN, SX_PERSIST_EDATA or
 * SX_ERR (see above), with the error message in err; the transaction is
 * rolled back on every failure. */
int sx_persist_db_write(struct sx_persist_db *db, const struct sx_persist_batch *b, const size_t *ents, size_t n,
                        long long *inserted, char *err, size_t errlen);

/* Records the failure of step what (res may be NULL: the connection's
 * error), clears res and drains further results. Returns SX_AGAIN,
 * SX_PERSIST_EDATA or SX_ERR by SQLSTATE; err gets the message. */
int sx_persist_db_fail(struct sx_persist_db *db, PGresult *res, const char *what, char *err, size_t errlen);

/* Runs COPY sql and feeds it the bytes of text. SX_OK or a failure code as
 * sx_persist_db_fail's. */
int sx_persist_db_copy_text(struct sx_persist_db *db, const char *sql, const char *what, const struct sx_buf *text,
                            char *err, size_t errlen);

/* Deletes ledger rows older than the ledger's bound (see
 * sql/002_persist_ledger.sql). SX_OK or SX_ERR (logged). */
int sx_persist_db_prune(struct sx_persist_db *db);

/* ---- batches and writer threads (persist_writer.c) ------------------------
 *
 * The main thread reads and decodes stream entries into a batch; full
 * batches go to a queue that writer threads (each with its own PostgreSQL
 * and Redis connection) write and acknowledge, so decoding overlaps writing
 * and several PostgreSQL backends work at once. Batches come from a fixed
 * pool: when every writer is busy the main thread waits (back-pressure). */

/* Set by SIGTERM/SIGINT: finish the current batch, then exit. */
extern volatile sig_atomic_t sx_persist_stop;

/* One stream entry inside a batch. */
struct sx_persist_entry {
    size_t id_off, idlen;  /* its id in batch.ids */
    size_t off, len;       /* its rows in batch.copy */
    size_t meta0, rows;    /* its rows: the batch's rows meta0 .. meta0 + rows (spans:
                            * their metas enc.meta[meta0 ..]) */
    size_t eoff, elen, nev; /* its error events: COPY text in batch.errs.copy */
    uint8_t hash[SX_PERSIST_HASH_LEN]; /* ledger key: SHA-256 of project id and body */
};

/* Rows and entry ids of one transaction. Owned by the main thread while it
 * fills it, then by one writer until it goes back to the free list. */
struct sx_persist_batch {
    const struct sx_persist_signal *sig; /* the stream and table; set by batch_get */
    struct sx_buf copy;          /* COPY text rows */
    struct sx_spanrow enc;       /* spans: metas, row count and days of the rows */
    struct sx_logrow logs;       /* logs: row count and days of the rows */
    struct sx_persist_errs *errs; /* error events derived from the rows (persist_errors.c) */
    struct sx_buf ids;           /* entry ids back to back */
    struct sx_buf live;          /* XADDs of live entries (RESP text), sent after COMMIT with the XACK */
    size_t nlive;                /* commands in live */
    struct sx_persist_entry *ents;
    size_t nents, ents_cap;
    struct sx_persist_batch *next;
};

/* State shared by the main thread and the writers; fields after mu are
 * guarded by it. Lives in main for the whole process. */
struct sx_persist_shared {
    const struct sx_config *cfg;
    const char *last_write_key;
    int nwriters;
    pthread_t threads[8];
    pthread_mutex_t mu;
    pthread_cond_t work, freed;
    struct sx_persist_batch *queue_head, *queue_tail, *free_list;
    struct sx_persist_batch *all;   /* the pool, for freeing */
    size_t nbatches;
    int exiting;                    /* writers leave once the queue is empty */
    int rescan;                     /* an ack failed: re-read our pending entries */
    int acked[SX_PERSIST_NKINDS];   /* entries acknowledged since the last trim, by kind */
    long long rows[SX_PERSIST_NKINDS], batches, dead_letters;
    long long error_events;         /* error events written since the last stats line */
    void *touched;                  /* issues whose user HLL grew since the last flush (persist_errors_db.c) */
    size_t ntouched, touched_cap;
};

/* Sleeps ms milliseconds in small steps unless sx_persist_stop is set. */
void sx_persist_nap(int ms);

/* Builds the batch pool (nwriters + SX_PERSIST_NKINDS batches: one being
 * filled per signal) and starts nwriters writer threads (1..8). Aborts when
 * threads cannot be created. */
void sx_persist_writers_start(struct sx_persist_shared *S, int nwriters);
/* Lets the writers finish every queued batch, joins them and frees the pool. */
void sx_persist_writers_stop(struct sx_persist_shared *S);

/* A free batch for signal sig, emptied; waits while all are in use. */
struct sx_persist_batch *sx_persist_batch_get(struct sx_persist_shared *S, const struct sx_persist_signal *sig);
/* Rows encoded into b so far. */
size_t sx_persist_batch_rows(const struct sx_persist_batch *b);
/* The distinct UTC days of b's rows (see sx_spanrow_days). */
const int64_t *sx_persist_batch_days(struct sx_persist_batch *b, size_t *n);
/* Queues a filled batch for the writers (an empty one goes back to the pool). */
void sx_persist_batch_submit(struct sx_persist_shared *S, struct sx_persist_batch *b);
/* Records an entry whose rows were appended to b->copy from offset off and
 * are the batch's rows from meta0 on (sx_persist_batch_rows before the
 * encode; for spans the index of their first meta); hash is its ledger key
 * (ignored when it has no rows). Aborts on out-of-memory (ids are small). */
void sx_persist_batch_add(struct sx_persist_batch *b, const char *id, size_t idlen,
                          const uint8_t hash[SX_PERSIST_HASH_LEN], size_t off, size_t meta0);
/* Like sx_persist_batch_add, for an entry whose error events were appended
 * to b->errs->copy from offset eoff on (nev of them). */
void sx_persist_batch_add_ev(struct sx_persist_batch *b, const char *id, size_t idlen,
                             const uint8_t hash[SX_PERSIST_HASH_LEN], size_t off, size_t meta0, size_t eoff,
                             size_t nev);

/* Copies an entry of sig's stream (fields may be NULL) to its dead letter
 * stream with an "error" field and acknowledges it, atomically
 * (MULTI/EXEC). SX_ERR on a Redis failure: the entry stays pending and
 * comes back. */
int sx_persist_dead_letter(redisContext *rc, const struct sx_persist_signal *sig, const char *id, size_t idlen,
                           const redisReply *fields, const char *why);

/* ---- error events (persist_errors.c derives, persist_errors_db.c writes) --
 *
 * While the main thread encodes an entry's rows it derives the entry's error
 * events (span events named "exception", log records with exception.*
 * attributes or at ERROR and above) as COPY text rows of a temp staging
 * table; the writer stages the events of the entries it writes in the same
 * transaction as their ledger rows and turns the fresh ones into
 * error_events rows, issues, hourly counts and releases. After COMMIT it
 * adds affected users to HyperLogLogs and publishes new and regressed
 * issues on the project's live stream. */

/* The error events of one batch: COPY text rows of err_stage (see
 * persist_errors_db.c), the UTC days of their times, and their count. Owned by
 * the batch. */
struct sx_persist_errs {
    struct sx_buf copy;
    struct sx_copyrow_days days;
    size_t events;
    struct sx_buf json, b64, tmp; /* scratch of the deriving thread */
};

/* The main thread's derivation state (project rules cache, scratch arena);
 * opaque, owned by main. */
struct sx_persist_errctx;

/* The pseudo signal whose partitions are error_events' (kind SX_PERSIST_NKINDS
 * in the partition cache). */
extern const struct sx_persist_signal sx_persist_errors_sig;

/* Allocates the batch's error event state (aborts on out-of-memory). */
struct sx_persist_errs *sx_persist_errs_create(void);
/* Frees it; NULL is fine. */
void sx_persist_errs_destroy(struct sx_persist_errs *e);
/* Forgets the events; keeps the storage. */
void sx_persist_errs_reset(struct sx_persist_errs *e);
/* A position in a batch's events, to undo an entry's events. */
struct sx_persist_errs_mark {
    size_t len, ndays, events;
    int sorted;
};
void sx_persist_errs_mark(const struct sx_persist_errs *e, struct sx_persist_errs_mark *m);
/* Drops the events added after m was taken. */
void sx_persist_errs_rewind(struct sx_persist_errs *e, const struct sx_persist_errs_mark *m);
/* The distinct UTC days of the events, sorted; *n gets the count. */
const int64_t *sx_persist_errs_days(struct sx_persist_errs *e, size_t *n);

/* The derivation state; db is the main thread's connection (project rules
 * are read through it). Destroy accepts NULL. */
struct sx_persist_errctx *sx_persist_errctx_create(struct sx_persist_db *db);
void sx_persist_errctx_destroy(struct sx_persist_errctx *cx);

/* Appends the error events of one entry's request (trace request for
 * spans, logs request for logs, per sig->kind) to out. hash is the entry's
 * ledger key (event ids derive from it, so a redelivered entry gets the same
 * ids); recv_ns stands in for log records without times; ent is the
 * entry's index in the batch (b->nents before it is added). *nev gets the number
 * of events added. SX_OK, or SX_ERR when out reached its maximum (out is then
 * as before the call). */
int sx_persist_errors_derive(struct sx_persist_errctx *cx, struct sx_persist_errs *out,
                             enum sx_persist_kind kind, const void *req, long long project, int64_t recv_ns,
                             const uint8_t hash[SX_PERSIST_HASH_LEN], size_t *nev, size_t ent);

/* Inside the write transaction, after the ledger: stages the error events of
 * the listed entries, writes the fresh ones (db->fresh) as error_events,
 * issues (created per new fingerprint), hourly counts and releases, applies
 * status transitions, and records in db->post what to do after COMMIT.
 * *written gets the number of events written. SX_OK or a fail() code (err
 * set). */
int sx_persist_errors_write(struct sx_persist_db *db, const struct sx_persist_batch *b, const size_t *ents,
                            size_t n, long long *written, char *err, size_t errlen);

/* After COMMIT: PFADDs the affected users, XADDs the live entries recorded
 * by sx_persist_errors_write and marks the issues for the next user count
 * flush. Redis failures are logged (the counts catch up on redelivery or
 * the next event). */
void sx_persist_errors_after_commit(struct sx_persist_db *db, struct sx_persist_shared *S, redisContext *rc);

/* Main thread, every few seconds: PFCOUNT of every issue marked since the
 * last flush into issues.user_count. SX_OK or SX_ERR (marks kept). */
int sx_persist_errors_flush_users(struct sx_persist_shared *S, redisContext *rc, struct sx_persist_db *db);

/* Creates the writer session's temp staging table err_stage (run by
 * sx_persist_db_ready). */
extern const char sx_persist_errors_session_sql[];

#endif
