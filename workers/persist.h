/* persist.h: sextant-persist internals shared by its files: the PostgreSQL writer, batches and writer threads. */
#ifndef SX_PERSIST_H
#define SX_PERSIST_H

#include "buf.h"
#include "config.h"
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
#define SX_PERSIST_HASH_LEN 16

struct sx_persist_batch;

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
 * in the ledger (or twice in the list) add nothing. *inserted gets the
 * number of rows written. Returns SX_OK, SX_AGAIN, SX_PERSIST_EDATA or
 * SX_ERR (see above), with the error message in err; the transaction is
 * rolled back on every failure. */
int sx_persist_db_write(struct sx_persist_db *db, const struct sx_persist_batch *b, const size_t *ents, size_t n,
                        long long *inserted, char *err, size_t errlen);

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
    uint8_t hash[SX_PERSIST_HASH_LEN]; /* ledger key: SHA-256 of project id and body */
};

/* Rows and entry ids of one transaction. Owned by the main thread while it
 * fills it, then by one writer until it goes back to the free list. */
struct sx_persist_batch {
    const struct sx_persist_signal *sig; /* the stream and table; set by batch_get */
    struct sx_buf copy;          /* COPY text rows */
    struct sx_spanrow enc;       /* spans: metas, row count and days of the rows */
    struct sx_logrow logs;       /* logs: row count and days of the rows */
    struct sx_buf ids;           /* entry ids back to back */
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

/* Copies an entry of sig's stream (fields may be NULL) to its dead letter
 * stream with an "error" field and acknowledges it, atomically
 * (MULTI/EXEC). SX_ERR on a Redis failure: the entry stays pending and
 * comes back. */
int sx_persist_dead_letter(redisContext *rc, const struct sx_persist_signal *sig, const char *id, size_t idlen,
                           const redisReply *fields, const char *why);

#endif
