/* live.h: the per-project live streams "<prefix>:{p<id>}:live" (stream.h):
 * what producers publish after COMMIT and how sextant-sse turns an entry
 * into Server-Sent Events for one client's filters.
 *
 * Producers (sextant-persist for spans and logs, sextant-rollup for
 * metrics) publish only while someone watches the project: sextant-sse keeps
 * "<prefix>:{p<id>}:live:watch" alive (SET EX 60, refreshed every 20 s) and
 * producers look it up through a small cache (sx_live_watch). An entry holds
 * the fields type, project, total (items in the ingest entry) and items (a
 * compact JSON array of at most SX_LIVE_MAX_ITEMS items). The formats of the
 * items are in README ("Live stream").
 *
 * The consumer side parses an entry once into a shared, reference-counted
 * event (sx_live_event) whose items are kept as JSON text with the fields
 * the filters need, so formatting it for each of many clients is string
 * work only. No I/O here except sx_live_watched's EXISTS. */
#ifndef SX_LIVE_H
#define SX_LIVE_H

#include "buf.h"
#include "config.h"
#include "otlp.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>

#define SX_LIVE_MAX_ITEMS 50      /* items of one published entry at most */
#define SX_LIVE_MAX_POINTS 10     /* points of one metric item at most */
#define SX_LIVE_BODY_MAX 1024     /* bytes of a log body in a live item at most */
#define SX_LIVE_ITEMS_MAX ((size_t)256 << 10) /* bytes of one items array at most (consumer limit) */
#define SX_LIVE_WATCH_SUFFIX "live:watch"
#define SX_LIVE_WATCH_TTL_S 60
#define SX_LIVE_WATCH_SLOTS 256

/* ---- producers ------------------------------------------------------------------ */

/* Which projects are watched, as a producer last saw it (one per producer
 * thread; zero-initialize it). */
struct sx_live_watch {
    struct {
        long long project;
        int watched;
        int64_t expires_mono;
    } slot[SX_LIVE_WATCH_SLOTS];
    int64_t ttl_ns;           /* how long an answer is trusted; 0 means 2 s */
};

/* Whether a client watches project: cached for w->ttl_ns, else one EXISTS
 * on rc. A Redis failure answers 0 (nothing is published) and leaves rc's
 * error set for the caller to see. */
int sx_live_watched(struct sx_live_watch *w, redisContext *rc, const struct sx_config *cfg, long long project);

/* Appends to items the JSON array of the first SX_LIVE_MAX_ITEMS spans of
 * req (README "Live stream"); *total gets every span's count. SX_ERR when
 * items reached its maximum (items is then left as it was). */
int sx_live_spans_json(struct sx_buf *items, const sx_trace_req *req, size_t *total);
/* The same for log records; records without any time take recv_ns. */
int sx_live_logs_json(struct sx_buf *items, const sx_logs_req *req, int64_t recv_ns, size_t *total);

/* The same for metrics: one item per metric (at most SX_LIVE_MAX_ITEMS),
 * {"name","service","type","points":[{"timeUnixNano","value"} or
 * {"timeUnixNano","count","sum"}, at most SX_LIVE_MAX_POINTS]}; *total
 * gets every data point's count. */
int sx_live_metrics_json(struct sx_buf *items, const sx_metrics_req *req, size_t *total);

/* Appends to cmds the RESP text of "XADD <live key of project> MAXLEN ~
 * <live_maxlen> * type <type> project <id> total <total> items <items>",
 * for redisAppendFormattedCommand after COMMIT. SX_ERR when out of room. */
int sx_live_xadd_format(struct sx_buf *cmds, const struct sx_config *cfg, long long project, const char *type,
                        size_t total, const char *items, size_t len);

/* ---- sextant-sse ---------------------------------------------------------------- */

enum sx_live_topic { SX_LIVE_SPANS = 1, SX_LIVE_LOGS = 2, SX_LIVE_METRICS = 4, SX_LIVE_ISSUES = 8 };
#define SX_LIVE_ALL_TOPICS (SX_LIVE_SPANS | SX_LIVE_LOGS | SX_LIVE_METRICS | SX_LIVE_ISSUES)

/* One item of an event: its JSON text and what the filters look at. */
struct sx_live_item {
    const char *json;         /* the item's JSON object (in the event's text) */
    size_t len;
    const char *service;      /* "" when absent */
    const char *text;         /* span name or log body ("" when absent) */
    int severity;             /* logs: severityNumber; 0 otherwise */
};

/* A parsed live entry, shared by every stream that sends it. Made by
 * sx_live_event_create with one reference; the last sx_live_event_put
 * frees it. Read-only once made. */
struct sx_live_event {
    atomic_int refs;
    char id[48];              /* the Redis stream id */
    enum sx_live_topic topic;
    const char *type;         /* the type field: spans, logs, metrics, issue.new... */
    long long total;
    size_t nitems;
    struct sx_live_item *items;
    char *issue_json;         /* SX_LIVE_ISSUES: the data object */
    char *text;               /* owns every string above */
};

/* Parses an entry (id, and nfields field/value pairs as hiredis hands them).
 * Returns a new event (one reference), or NULL when the entry is not one we
 * send (unknown type, malformed items: logged by the caller) or too large. */
struct sx_live_event *sx_live_event_create(const char *id, size_t nfields, const char *const *names,
                                           const size_t *nlens, const char *const *vals, const size_t *vlens);
/* Takes a reference. */
void sx_live_event_get(struct sx_live_event *ev);
/* Drops a reference; frees the event with the last one. Accepts NULL. */
void sx_live_event_put(struct sx_live_event *ev);

/* One client's filters (README "Live stream"). */
struct sx_live_filter {
    unsigned topics;          /* SX_LIVE_* bits */
    char service[256];        /* "" for every service */
    int min_severity;         /* logs below are left out; 0 for all */
    char q[256];              /* case-insensitive substring of span name / log body; "" for all */
};

/* Fills f from the query parameters (each NULL when absent). SX_ERR with a
 * message in err: unknown topic, bad severity, over-long service or q. */
int sx_live_filter_parse(struct sx_live_filter *f, const char *topics, const char *service, const char *severity,
                         const char *q, char *err, size_t errlen);

/* Appends ev as one SSE event for f ("id: ...\nevent: ...\ndata: ...\n\n").
 * Returns 1 when written, 0 when f leaves nothing of it (nothing written),
 * SX_ERR when out lacks room (out unchanged). */
int sx_live_format(struct sx_buf *out, const struct sx_live_event *ev, const struct sx_live_filter *f);

/* A stream's bounded queue of shared events (sextant-sse: the hub pushes,
 * the stream's thread pops). Embedded by its owner: _init, _term. */
struct sx_live_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* signalled on push (CLOCK_MONOTONIC waits) */
    struct sx_live_event **q; /* ring of cap references */
    size_t cap, head, len;
    int gap;                  /* events were dropped since the last pop */
};

/* Makes an empty queue of cap events (at least 1). Cannot fail. */
void sx_live_queue_init(struct sx_live_queue *q, size_t cap);
/* Drops the queued events' references and frees the ring. */
void sx_live_queue_term(struct sx_live_queue *q);
/* Queues a new reference to ev. A full queue is emptied first and marked
 * (gap): a client that falls cap events behind skips to the newest, and
 * memory stays bounded. Cannot fail. */
void sx_live_queue_push(struct sx_live_queue *q, struct sx_live_event *ev);
/* Moves up to max events into out (the caller owns those references) and
 * returns how many; *gap tells (and clears) whether events were dropped
 * before them. Waits while the queue is empty and has no gap, until
 * deadline_mono_ns (sx_mono_ns clock); returns 0 then. */
size_t sx_live_queue_pop(struct sx_live_queue *q, struct sx_live_event **out, size_t max, int *gap,
                         int64_t deadline_mono_ns);

/* Compares two Redis stream ids ("ms-seq"; "ms" alone means "ms-0"):
 * negative, 0 or positive. Malformed ids compare as 0-0. */
int sx_live_id_cmp(const char *a, const char *b);
/* Whether s is a stream id ("<digits>" or "<digits>-<digits>", at most 40 bytes). */
int sx_live_id_valid(const char *s);

#endif
