/* ingest_stream.h: the guarded XADD of one batch to an ingest stream (stream.h contract). */
#ifndef SX_INGEST_STREAM_H
#define SX_INGEST_STREAM_H

#include "config.h"

#include <hiredis/hiredis.h>

/* Per-connection state of the XADD script: loaded with SCRIPT LOAD once per
 * connection. Embedded in the thread state; reset with
 * sx_ingest_script_reset whenever the Redis context is replaced. */
struct sx_ingest_script {
    int loaded;
    char sha[48];
};

/* One stream entry's fields (stream.h). */
struct sx_ingest_entry {
    long long project_id;
    long long key_id;
    size_t count;        /* items in the batch: spans, log records or data points */
    int64_t recv_ns;     /* receive time, unix ns */
    const uint8_t *body; /* packed Export*ServiceRequest */
    size_t body_len;
    const char *stream;  /* SX_STREAM_SPANS, _LOGS or _METRICS (stream.h); NULL: spans */
};

/* Per-project enforcement of one batch, checked and counted by the same
 * script as the XADD (usage.h names the keys). */
struct sx_ingest_limits {
    const char *signal;       /* "spans", "logs" or "metrics": counter field prefix */
    const char *usage_key;    /* today's usage hash */
    const char *bucket_key;   /* this signal's token bucket */
    const char *storage_key;  /* the storage estimate */
    long long rate;           /* items per second; 0: no rate limit */
    long long capacity;       /* bucket capacity (rate x burst seconds) */
    long long quota;          /* items per UTC day; -1: none */
    long long storage_quota;  /* bytes; -1: none */
    long long usage_ttl;      /* seconds the usage hash is kept */
    long long sampled_out, dropped, redacted; /* counted with an accepted batch */
};

/* Why the script refused a batch (SX_INGEST_REFUSED). */
enum sx_ingest_refusal { SX_INGEST_REFUSE_NONE = 0, SX_INGEST_REFUSE_RATE, SX_INGEST_REFUSE_QUOTA,
                         SX_INGEST_REFUSE_STORAGE };

#define SX_INGEST_REFUSED 1

struct sx_ingest_verdict {
    enum sx_ingest_refusal refusal;
    long long value;          /* RATE: ms until the bucket holds the batch (or is full);
                               * QUOTA: items accepted today */
};

/* Forgets the loaded script (the next add loads it again). */
void sx_ingest_script_reset(struct sx_ingest_script *s);

/* Appends e to "<prefix>:<e->stream>" unless the project is over its
 * storage quota, its daily quota or its rate (lim), or the stream holds
 * stream_high_water entries or more, all in one Lua script (one round trip,
 * atomic: concurrent ingest processes cannot all pass a check together).
 * The script also counts the batch in the usage hash: accepted and
 * lim->sampled_out/dropped/redacted when added, the refused items under
 * the refusal's counter otherwise. With e->count 0 (nothing left to store)
 * it only counts sampled_out/dropped/redacted and adds nothing.
 * Uses EVALSHA, falling back to EVAL on NOSCRIPT. Returns SX_OK with the
 * entry id in id (empty when nothing was added), SX_INGEST_REFUSED with *v
 * set, SX_AGAIN when the stream is over its high-water mark (nothing added
 * or counted), SX_ERR on a Redis error or a dead connection (reason in why;
 * rc may be dead afterwards and must then be rebuilt).
 * In a Redis Cluster the stream (global) and the project keys would live on
 * different slots: sharded streams per project group are then needed. */
int sx_ingest_stream_add(redisContext *rc, struct sx_ingest_script *s, const struct sx_config *c,
                         const struct sx_ingest_entry *e, const struct sx_ingest_limits *lim,
                         struct sx_ingest_verdict *v, char *id, size_t idlen, char *why, size_t whylen);

#endif
