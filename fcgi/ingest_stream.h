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

/* Forgets the loaded script (the next add loads it again). */
void sx_ingest_script_reset(struct sx_ingest_script *s);

/* Appends e to "<prefix>:<e->stream>" unless the stream holds
 * stream_high_water entries or more, atomically (Lua: XLEN then XADD). Uses
 * EVALSHA, falling back to EVAL on NOSCRIPT. Returns SX_OK with the entry id
 * in id, SX_AGAIN when the stream is over its high-water mark (nothing
 * added), SX_ERR on a Redis error or a dead connection (reason in why; rc may
 * be dead afterwards and must then be rebuilt). */
int sx_ingest_stream_add(redisContext *rc, struct sx_ingest_script *s, const struct sx_config *c,
                         const struct sx_ingest_entry *e, char *id, size_t idlen, char *why, size_t whylen);

#endif
