/* sse_hub.c: sextant-sse's one Redis reader and its fan-out; see sse.h.
 *
 * Design: one reader thread per process runs XREAD BLOCK over the live
 * streams of the projects that have open streams, each from the last id it
 * read there. It parses every entry once into a shared event
 * (sx_live_event, reference-counted) and pushes a reference into the
 * bounded queue of every stream of that project. A stream that falls
 * qcap events behind loses its queued events and is told so (gap): memory
 * stays bounded whatever a client does. The BLOCK is short (250 ms) so that
 * a project whose first stream opens is read soon; its first id comes from
 * the opening stream (the stream's last entry before it subscribed), so
 * nothing published after the subscription is missed. The reader also
 * keeps "<prefix>:{p<id>}:live:watch" alive (SET EX 60 every 20 s) for
 * every project it reads: producers publish spans, logs and metrics only
 * while that key exists. */
#include "sse.h"

#include "fcgi_server.h"
#include "log.h"
#include "redis.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#define BLOCK_MS 250
#define READ_COUNT 500
#define WATCH_REFRESH_NS (20LL * 1000000000LL)
#define MAX_PROJECTS 4096

struct project {
    int id;
    char last_id[48];          /* the last entry read (or the start) */
    int nsubs;
    int64_t watch_due_mono;    /* next SET of its watch key */
};

/* The hub; one per process. Everything below mu is guarded by it. The
 * reader thread owns rc. */
static struct {
    const struct sx_config *cfg;
    pthread_t reader;
    redisContext *rc;
    pthread_mutex_t mu;
    struct sx_sse_sub *subs;
    struct project *projects;
    size_t nprojects, cap;
    int nstreams;
} hub = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The shared command connection of the streams (owned here). */
static pthread_mutex_t cmd_mu = PTHREAD_MUTEX_INITIALIZER;
static redisContext *cmd_rc;

/* ---- the hub's list ---------------------------------------------------------------- */

static struct project *project_find(int id)
{
    for (size_t i = 0; i < hub.nprojects; i++)
        if (hub.projects[i].id == id) return &hub.projects[i];
    return NULL;
}

void sx_sse_hub_add(struct sx_sse_sub *s, const char *from_id)
{
    pthread_mutex_lock(&hub.mu);
    struct project *p = project_find(s->project);
    if (!p && hub.nprojects < MAX_PROJECTS) {
        if (hub.nprojects == hub.cap) {
            size_t cap = hub.cap ? hub.cap * 2 : 16;
            struct project *np = realloc(hub.projects, cap * sizeof(*np));
            if (!np) abort();
            hub.projects = np;
            hub.cap = cap;
        }
        p = &hub.projects[hub.nprojects++];
        memset(p, 0, sizeof(*p));
        p->id = s->project;
        snprintf(p->last_id, sizeof(p->last_id), "%s", from_id);
        p->watch_due_mono = 0;
    }
    if (p) p->nsubs++;
    s->next = hub.subs;
    hub.subs = s;
    hub.nstreams++;
    pthread_mutex_unlock(&hub.mu);
}

void sx_sse_hub_remove(struct sx_sse_sub *s)
{
    pthread_mutex_lock(&hub.mu);
    for (struct sx_sse_sub **pp = &hub.subs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            hub.nstreams--;
            break;
        }
    struct project *p = project_find(s->project);
    if (p && --p->nsubs <= 0) *p = hub.projects[--hub.nprojects];
    pthread_mutex_unlock(&hub.mu);
}

int sx_sse_hub_streams(void)
{
    pthread_mutex_lock(&hub.mu);
    int n = hub.nstreams;
    pthread_mutex_unlock(&hub.mu);
    return n;
}

/* ---- the reader ---------------------------------------------------------------------- */

struct sx_live_event *sx_sse_event_of(const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    const redisReply *f = entry->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0 || f->elements > 64) return NULL;
    const char *names[32], *vals[32];
    size_t nl[32], vl[32], nf = f->elements / 2;
    for (size_t i = 0; i < nf; i++) {
        names[i] = f->element[2 * i]->str ? f->element[2 * i]->str : "";
        nl[i] = f->element[2 * i]->str ? f->element[2 * i]->len : 0;
        vals[i] = f->element[2 * i + 1]->str ? f->element[2 * i + 1]->str : "";
        vl[i] = f->element[2 * i + 1]->str ? f->element[2 * i + 1]->len : 0;
    }
    return sx_live_event_create(entry->element[0]->str, nf, names, nl, vals, vl);
}

/* Parses one XREAD entry of project pid and fans it out. */
static void fan_out(int pid, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *id = entry->element[0]->str;
    struct sx_live_event *ev = sx_sse_event_of(entry);
    if (!ev) sx_debug("live entry %s of project %d skipped (unknown or malformed)", id, pid);
    pthread_mutex_lock(&hub.mu);
    struct project *p = project_find(pid);
    if (p && sx_live_id_cmp(id, p->last_id) > 0) snprintf(p->last_id, sizeof(p->last_id), "%s", id);
    if (ev)
        for (struct sx_sse_sub *s = hub.subs; s; s = s->next)
            if (s->project == pid) sx_live_queue_push(&s->queue, ev);
    pthread_mutex_unlock(&hub.mu);
    sx_live_event_put(ev);
}

/* SETs the watch keys that are due (pipelined) on rc. */
static void refresh_watch(const int *ids, size_t n)
{
    char key[256];
    for (size_t i = 0; i < n; i++) {
        sx_redis_pkey(key, sizeof(key), hub.cfg, ids[i], SX_LIVE_WATCH_SUFFIX);
        redisAppendCommand(hub.rc, "SET %s 1 EX %d", key, SX_LIVE_WATCH_TTL_S);
    }
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(hub.rc, &r) != REDIS_OK) {
            sx_redis_warn(hub.rc, "SET live:watch", NULL);
            return;
        }
        freeReplyObject(r);
    }
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One XREAD over the watched projects; SX_ERR on a Redis failure. */
static int read_once(void)
{
    size_t n;
    int64_t now = sx_mono_ns();
    pthread_mutex_lock(&hub.mu);
    n = hub.nprojects;
    int *ids = sx_xcalloc(n ? n : 1, sizeof(*ids));
    int *due = sx_xcalloc(n ? n : 1, sizeof(*due));
    char (*from)[48] = sx_xcalloc(n ? n : 1, sizeof(*from));
    size_t ndue = 0;
    for (size_t i = 0; i < n; i++) {
        ids[i] = hub.projects[i].id;
        memcpy(from[i], hub.projects[i].last_id, sizeof(from[i]));
        if (hub.projects[i].watch_due_mono <= now) {
            due[ndue++] = ids[i];
            hub.projects[i].watch_due_mono = now + WATCH_REFRESH_NS;
        }
    }
    pthread_mutex_unlock(&hub.mu);
    int rc = SX_OK;
    if (ndue) refresh_watch(due, ndue);
    if (n == 0) {
        nap_ms(100);
        goto out;
    }
    size_t argc = 6 + 2 * n;
    const char **argv = sx_xcalloc(argc, sizeof(*argv));
    size_t *argl = sx_xcalloc(argc, sizeof(*argl));
    char (*keys)[128] = sx_xcalloc(n, sizeof(*keys));
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    argv[0] = "XREAD", argv[1] = "COUNT", argv[2] = count, argv[3] = "BLOCK", argv[4] = block, argv[5] = "STREAMS";
    for (size_t i = 0; i < n; i++) {
        sx_redis_pkey(keys[i], sizeof(keys[i]), hub.cfg, ids[i], SX_LIVE_SUFFIX);
        argv[6 + i] = keys[i];
        argv[6 + n + i] = from[i];
    }
    for (size_t i = 0; i < argc; i++) argl[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(hub.rc, (int)argc, argv, argl);
    if (!r) {
        sx_redis_warn(hub.rc, "XREAD live", NULL);
        rc = SX_ERR;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[0]->type != REDIS_REPLY_STRING)
                continue;
            const char *brace = strstr(st->element[0]->str, "{p");
            int pid = brace ? atoi(brace + 2) : 0;
            const redisReply *entries = st->element[1];
            if (entries->type != REDIS_REPLY_ARRAY) continue;
            for (size_t e = 0; e < entries->elements; e++) fan_out(pid, entries->element[e]);
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        sx_redis_warn(hub.rc, "XREAD live", r);
        nap_ms(500);
    }
    freeReplyObject(r);
    free(keys);
    free(argl);
    free(argv);
out:
    free(from);
    free(due);
    free(ids);
    return rc;
}

static void *reader_main(void *arg)
{
    SX_UNUSED(arg);
    while (!sx_fcgi_stopping()) {
        if (sx_redis_ensure(&hub.rc, hub.cfg, 1000, BLOCK_MS + 5000) != SX_OK) {
            nap_ms(1000);
            continue;
        }
        if (read_once() != SX_OK && hub.rc && hub.rc->err) {
            redisFree(hub.rc);
            hub.rc = NULL;
            nap_ms(200);
        }
    }
    return NULL;
}

int sx_sse_hub_start(const struct sx_config *cfg)
{
    hub.cfg = cfg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);
    int rc = pthread_create(&hub.reader, &attr, reader_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        sx_error("pthread_create (live reader) failed");
        return SX_ERR;
    }
    pthread_detach(hub.reader);
    return SX_OK;
}

int sx_sse_redis_with(const struct sx_config *cfg, int (*fn)(redisContext *c, void *arg), void *arg)
{
    pthread_mutex_lock(&cmd_mu);
    redisContext *c = sx_redis_ensure(&cmd_rc, cfg, 1000, 5000) == SX_OK ? cmd_rc : NULL;
    int rc = fn(c, arg);
    if (cmd_rc && cmd_rc->err) {
        redisFree(cmd_rc);
        cmd_rc = NULL;
    }
    pthread_mutex_unlock(&cmd_mu);
    return rc;
}
