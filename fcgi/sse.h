/* sse.h: what sextant-sse's files share: the hub (one Redis reader per
 * process fanning live entries out to the open streams, sse_hub.c) and the
 * shared Redis command connection. Not used outside fcgi/sse*.c. */
#ifndef SX_SSE_H
#define SX_SSE_H

#include "config.h"
#include "live.h"

#include <hiredis/hiredis.h>

/* One open stream as the hub sees it: its project and its bounded queue of
 * shared events (lib/live.h). Embedded in the stream's handler (its
 * thread's stack); registered with sx_sse_hub_add, removed with
 * sx_sse_hub_remove before it goes away. */
struct sx_sse_sub {
    int project;
    struct sx_live_queue queue;
    struct sx_sse_sub *next;  /* the hub's list (guarded by the hub's lock) */
};

/* Starts the hub's reader thread (one per process). SX_ERR when it cannot. */
int sx_sse_hub_start(const struct sx_config *cfg);
/* Subscribes s to its project's live stream. When the hub does not read
 * that project yet it starts after from_id (entries after it are
 * delivered); otherwise it goes on from where it is, and the stream skips
 * what it has sent already. */
void sx_sse_hub_add(struct sx_sse_sub *s, const char *from_id);
/* Unsubscribes s; the hub stops reading a project nobody watches. */
void sx_sse_hub_remove(struct sx_sse_sub *s);
/* Open streams now (for logs and the bench). */
int sx_sse_hub_streams(void);

/* Parses one entry of an XREAD/XRANGE reply ([id, [field, value...]]) into
 * a new event (one reference), or NULL when it is not one we send. */
struct sx_live_event *sx_sse_event_of(const redisReply *entry);

/* Runs fn with the process's shared Redis command connection (for the
 * short commands of a stream's start: the resume range, the watch key),
 * serialized by a lock. fn gets NULL when Redis is unreachable. Returns
 * what fn returns. */
int sx_sse_redis_with(const struct sx_config *cfg, int (*fn)(redisContext *c, void *arg), void *arg);

#endif
