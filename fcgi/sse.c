/* sse.c: sextant-sse, live events over Server-Sent Events:
 * GET /api/v1/projects/{project}/stream (README "Live stream").
 *
 * Each open stream holds one FastCGI request and so one thread: the thread
 * budget is sse_threads (one of them kept to answer 503 when the others all
 * hold streams), with small stacks (128 KB; a stream needs little: its
 * output buffer, which grows with the events it writes at once, is on the
 * heap). The request is checked before
 * the stream starts (400 bad parameters, 401 no or bad credentials, 404
 * unknown project or not a member, 503 PostgreSQL or Redis down), with the
 * same authentication as sextant-api (lib/auth.c). PostgreSQL serves only
 * that check, so the process keeps a small pool of connections (POOL_SIZE)
 * instead of one per thread: a thousand open streams must not hold a
 * thousand connections (PostgreSQL's max_connections is 100 by default).
 *
 * Then: "retry: 2000", the replay of the entries after Last-Event-ID (or
 * the lastEventId parameter) that are still in the live stream, preceded
 * by "event: gap" when that id is older than the oldest entry left; then
 * live entries from the hub (sse_hub.c), filtered per client; ": ping"
 * after sse_heartbeat_s of silence. Every event is flushed at once
 * (nginx has fastcgi_buffering off here). A client that left is noticed at
 * the next flush (an event or a ping), which ends the request and frees
 * the thread. SIGTERM ends every stream within a second. */
#include "sse.h"

#include "apiutil.h"
#include "auth.h"
#include "buf.h"
#include "cli.h"
#include "fcgi_server.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
#include "stream.h"

#include <signal.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "sextant-sse"
#define POOL_SIZE 4
#ifdef __SANITIZE_ADDRESS__
#define STACK_SIZE ((size_t)512 << 10) /* AddressSanitizer's redzones need room */
#else
#define STACK_SIZE ((size_t)128 << 10)
#endif
#define OUT_MAX ((size_t)1 << 20)     /* one write of events at most */
#define POP_MAX 64                    /* events taken from the queue at once */
#define REPLAY_COUNT 200              /* entries per XRANGE of a replay */
#define REPLAY_MAX 20000              /* entries replayed at most (more: gap) */
#define MAX_QUERY_PARAMS 16

/* ---- the PostgreSQL pool (auth only) ----------------------------------------------- */

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static PGconn *pool[POOL_SIZE];     /* idle connections (NULL: none yet); owned by the pool */
static int pool_free = POOL_SIZE;   /* slots not lent out */

/* Borrows a connection slot: the connection (maybe NULL or dead: the
 * caller redials with sx_pg_ensure) goes back with pool_put. */
static PGconn *pool_get(void)
{
    pthread_mutex_lock(&pool_mu);
    while (pool_free == 0) pthread_cond_wait(&pool_cv, &pool_mu);
    PGconn *c = pool[--pool_free];
    pool[pool_free] = NULL;
    pthread_mutex_unlock(&pool_mu);
    return c;
}

static void pool_put(PGconn *c)
{
    pthread_mutex_lock(&pool_mu);
    pool[pool_free++] = c;
    pthread_cond_signal(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
}

/* ---- one request ----------------------------------------------------------------------- */

struct req {
    struct sx_fcgi_req *fr;
    const struct sx_config *cfg;
    PGconn *pg;
    int may_retry;            /* nothing sent on pg yet: a dead connection may be redialled */
    int status;               /* error response, once set */
    char code[32];
    char msg[256];
    struct sx_auth_caller who;
};

static int fail(struct req *r, int status, const char *code, const char *fmt, ...) SX_PRINTF(4, 5);
static int fail(struct req *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    r->status = status;
    snprintf(r->code, sizeof(r->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    return SX_ERR;
}

static int io_fail(void *ud, int status, const char *code, const char *msg)
{
    return fail(ud, status, code, "%s", msg);
}

static PGresult *io_exec(void *ud, const char *sql, int nparams, const char *const *params, const char *what)
{
    struct req *r = ud;
    for (int attempt = 0;; attempt++) {
        PGresult *res = PQexecParams(r->pg, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            r->may_retry = 0;
            return res;
        }
        int gone = PQstatus(r->pg) == CONNECTION_BAD;
        sx_rwarn(r->fr->reqid, "%s failed: %s", what, PQerrorMessage(r->pg));
        PQclear(res);
        if (gone && r->may_retry && attempt == 0 && sx_pg_ensure(&r->pg, r->cfg->pg_conninfo) == SX_OK) continue;
        if (gone) fail(r, 503, "unavailable", "the database is unavailable, retry later");
        else fail(r, 500, "internal", "internal error");
        return NULL;
    }
}

/* Authenticates the caller and finds {project}: SX_OK with *pid, or SX_ERR
 * with the error set. What it looks up goes into arena (r->who points there). */
static int authorize(struct req *r, struct sx_arena *arena, const char *project, int *pid)
{
    struct sx_auth_io io = {.arena = arena, .exec = io_exec, .fail = io_fail, .ud = r};
    size_t len = 0;
    const char *tok = sx_auth_bearer(sx_fcgi_param(r->fr, "HTTP_AUTHORIZATION"), &len);
    const char *cookie = tok ? NULL : sx_auth_cookie(arena, sx_fcgi_param(r->fr, "HTTP_COOKIE"), "sx_session");
    int rc = SX_ERR;
    if (!tok && !cookie) return fail(r, 401, "unauthorized", "missing bearer token or session");
    r->pg = pool_get();
    if (sx_pg_ensure(&r->pg, r->cfg->pg_conninfo) != SX_OK) {
        fail(r, 503, "unavailable", "the database is unavailable, retry later");
        goto out;
    }
    if (PQtransactionStatus(r->pg) != PQTRANS_IDLE) sx_pg_exec(r->pg, "ROLLBACK", "ROLLBACK");
    r->may_retry = 1;
    if (tok) {
        if (sx_auth_token(&io, &r->who, tok, len) != SX_OK) goto out;
    } else if (sx_auth_session(&io, &r->who, cookie, strlen(cookie)) != SX_OK || sx_auth_roles(&io, &r->who) != SX_OK) {
        goto out;
    }
    rc = sx_auth_project(&io, &r->who, project, pid);
out:
    pool_put(r->pg);
    r->pg = NULL;
    return rc;
}

/* Answers the error set in r as {"error":{"code","message"}}. */
static void respond_error(struct req *r)
{
    struct sx_buf b;
    struct sx_json w;
    char headers[128];
    sx_buf_init(&b, 4096);
    sx_json_init(&w, &b);
    sx_json_obj_open(&w);
    sx_json_key(&w, "error");
    sx_json_obj_open(&w);
    sx_json_key(&w, "code");
    sx_json_strz(&w, r->code);
    sx_json_key(&w, "message");
    sx_json_strz(&w, r->msg);
    sx_json_obj_close(&w);
    sx_json_obj_close(&w);
    snprintf(headers, sizeof(headers), "Cache-Control: no-store\r\n%s",
             r->status == 401   ? "WWW-Authenticate: Bearer\r\n"
             : r->status == 503 ? "Retry-After: 2\r\n"
             : r->status == 405 ? "Allow: GET\r\n"
                                : "");
    if (r->status >= 500) sx_rwarn(r->fr->reqid, "stream refused: %d %s", r->status, r->msg);
    else sx_rdebug(r->fr->reqid, "stream refused: %d %s", r->status, r->msg);
    sx_fcgi_respond(r->fr, r->status, "application/json", headers, b.data ? b.data : "{}", b.data ? b.len : 2);
    sx_buf_term(&b);
}

/* The {project} of /api/v1/projects/{project}/stream (arena copy), or NULL. */
static const char *project_of(struct sx_fcgi_req *fr, const char *path)
{
    static const char base[] = "/api/v1/projects/";
    static const char tail[] = "/stream";
    size_t n = strlen(path), bl = sizeof(base) - 1, tl = sizeof(tail) - 1;
    if (n <= bl + tl || strncmp(path, base, bl) != 0 || strcmp(path + n - tl, tail) != 0) return NULL;
    const char *p = path + bl;
    size_t plen = n - bl - tl;
    if (memchr(p, '/', plen)) return NULL;
    return sx_arena_strndup(fr->arena, p, plen);
}

/* ---- the stream ----------------------------------------------------------------------- */

struct stream {
    struct req *r;
    FCGX_Stream *out;
    struct sx_live_filter filter;
    struct sx_buf buf;        /* events waiting for the next flush */
    char last_id[48];         /* the last entry sent or skipped */
    int64_t last_write;       /* mono ns of the last flush */
    int broken;               /* the client left */
};

/* Writes buf and flushes; marks the stream broken when the client left. */
static int flush(struct stream *s)
{
    if (s->broken) return SX_ERR;
    if (s->buf.len && FCGX_PutStr(s->buf.data, (int)s->buf.len, s->out) < 0) s->broken = 1;
    sx_buf_reset(&s->buf);
    if (!s->broken && FCGX_FFlush(s->out) < 0) s->broken = 1;
    s->last_write = sx_mono_ns();
    return s->broken ? SX_ERR : SX_OK;
}

/* Adds ev to buf when it is newer than what was sent and passes the
 * filter; flushes first when buf is full. */
static void send_event(struct stream *s, const struct sx_live_event *ev)
{
    if (sx_live_id_cmp(ev->id, s->last_id) <= 0) return;
    snprintf(s->last_id, sizeof(s->last_id), "%s", ev->id);
    if (sx_live_format(&s->buf, ev, &s->filter) == SX_ERR) {
        flush(s);
        if (sx_live_format(&s->buf, ev, &s->filter) == SX_ERR)
            sx_rwarn(s->r->fr->reqid, "live entry %s too large for a stream: skipped", ev->id);
    }
}

static void send_gap(struct stream *s)
{
    sx_buf_puts(&s->buf, "event: gap\ndata: {\"type\":\"gap\"}\n\n");
}

/* What a stream's start needs from Redis, under the shared connection. */
struct start {
    const struct sx_config *cfg;
    int project;
    const char *resume;       /* Last-Event-ID, or NULL */
    char last[48];            /* out: the newest entry id now ("0-0": none) */
    int gap;                  /* out: resume is older than the oldest entry left */
};

static int start_redis(redisContext *c, void *arg)
{
    struct start *st = arg;
    char key[256], watch[256];
    if (!c) return SX_ERR;
    sx_redis_pkey(key, sizeof(key), st->cfg, st->project, SX_LIVE_SUFFIX);
    sx_redis_pkey(watch, sizeof(watch), st->cfg, st->project, SX_LIVE_WATCH_SUFFIX);
    redisAppendCommand(c, "SET %s 1 EX %d", watch, SX_LIVE_WATCH_TTL_S);
    redisAppendCommand(c, "XREVRANGE %s + - COUNT 1", key);
    redisAppendCommand(c, "XRANGE %s - + COUNT 1", key);
    redisReply *rep[3] = {NULL, NULL, NULL};
    int rc = SX_OK;
    for (int i = 0; i < 3; i++)
        if (redisGetReply(c, (void **)&rep[i]) != REDIS_OK || !rep[i]) {
            sx_redis_warn(c, "XREVRANGE live", NULL);
            rc = SX_ERR;
            break;
        }
    snprintf(st->last, sizeof(st->last), "0-0");
    if (rc == SX_OK && (rep[1]->type != REDIS_REPLY_ARRAY || rep[2]->type != REDIS_REPLY_ARRAY)) rc = SX_ERR;
    if (rc == SX_OK && rep[1]->elements == 1 && rep[1]->element[0]->type == REDIS_REPLY_ARRAY &&
        rep[1]->element[0]->elements == 2)
        snprintf(st->last, sizeof(st->last), "%s", rep[1]->element[0]->element[0]->str);
    if (rc == SX_OK && st->resume && rep[2]->elements == 1 && rep[2]->element[0]->type == REDIS_REPLY_ARRAY &&
        rep[2]->element[0]->elements == 2)
        st->gap = sx_live_id_cmp(st->resume, rep[2]->element[0]->element[0]->str) < 0;
    for (int i = 0; i < 3; i++) freeReplyObject(rep[i]);
    return rc;
}

/* One page of a replay: entries after from up to to (inclusive). */
struct replay {
    const struct sx_config *cfg;
    int project;
    const char *from, *to;
    redisReply *page;         /* out: the XRANGE reply (the caller frees it) */
};

static int replay_redis(redisContext *c, void *arg)
{
    struct replay *rp = arg;
    char key[256], from[64];
    if (!c) return SX_ERR;
    sx_redis_pkey(key, sizeof(key), rp->cfg, rp->project, SX_LIVE_SUFFIX);
    snprintf(from, sizeof(from), "(%s", rp->from);
    rp->page = redisCommand(c, "XRANGE %s %s %s COUNT %d", key, from, rp->to, REPLAY_COUNT);
    if (!rp->page || rp->page->type != REDIS_REPLY_ARRAY) {
        sx_redis_warn(c, "XRANGE live", rp->page);
        freeReplyObject(rp->page);
        rp->page = NULL;
        return SX_ERR;
    }
    return SX_OK;
}

/* Sends the entries after s->last_id up to last (the replay of a resume). */
static void replay(struct stream *s, int project, const char *last)
{
    size_t sent = 0;
    while (sx_live_id_cmp(s->last_id, last) < 0 && !s->broken) {
        struct replay rp = {.cfg = s->r->cfg, .project = project, .from = s->last_id, .to = last};
        if (sx_sse_redis_with(s->r->cfg, replay_redis, &rp) != SX_OK) {
            send_gap(s);
            break;
        }
        size_t n = rp.page->elements;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = rp.page->element[i];
            struct sx_live_event *ev = sx_sse_event_of(e);
            if (ev) send_event(s, ev);
            else if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING)
                snprintf(s->last_id, sizeof(s->last_id), "%s", e->element[0]->str); /* skipped, but passed */
            sx_live_event_put(ev);
        }
        freeReplyObject(rp.page);
        flush(s);
        sent += n;
        if (n == 0) break;
        if (sent >= REPLAY_MAX) {
            send_gap(s);
            break;
        }
    }
    if (sx_live_id_cmp(s->last_id, last) < 0) snprintf(s->last_id, sizeof(s->last_id), "%s", last);
}

/* Checks the stream's credentials again (the token or session may have been
 * revoked, the membership removed): SX_ERR when its access has ended. A
 * database that does not answer leaves the stream open. */
static int still_allowed(struct req *r, const char *seg, int project)
{
    struct sx_arena *a = sx_arena_create(4096, (size_t)256 << 10);
    int pid = 0, rc;
    memset(&r->who, 0, sizeof(r->who));
    r->status = 0;
    rc = authorize(r, a, seg, &pid);
    memset(&r->who, 0, sizeof(r->who)); /* it pointed into a */
    sx_arena_destroy(a);
    if (rc == SX_OK && pid == project) return SX_OK;
    if (rc != SX_OK && r->status >= 500) return SX_OK;
    sx_rinfo(r->fr->reqid, "stream of project %d ends: access ended (%d %s)", project, r->status ? r->status : 404,
             r->status ? r->msg : "another project");
    return SX_ERR;
}

/* Serves the stream until the client leaves or the process stops. */
static void serve(struct req *r, const char *seg, int project, const char *resume, const struct sx_live_filter *filter)
{
    struct stream s;
    struct sx_sse_sub sub;
    struct sx_live_event *evs[POP_MAX];
    struct start st = {.cfg = r->cfg, .project = project, .resume = resume};
    static const char head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                               "X-Accel-Buffering: no\r\n\r\nretry: 2000\n\n";

    if (sx_sse_redis_with(r->cfg, start_redis, &st) != SX_OK) {
        fail(r, 503, "unavailable", "live events are unavailable, retry later");
        respond_error(r);
        return;
    }
    memset(&s, 0, sizeof(s));
    s.r = r;
    s.out = r->fr->fcgx->out;
    sx_buf_init(&s.buf, OUT_MAX);
    /* Subscribe before the replay: whatever arrives meanwhile waits in the
     * queue, and send_event skips what the replay sent already. */
    s.filter = *filter;
    memset(&sub, 0, sizeof(sub));
    sub.project = project;
    sx_live_queue_init(&sub.queue, (size_t)r->cfg->sse_queue);
    sx_sse_hub_add(&sub, st.last);
    if (FCGX_PutStr(head, (int)sizeof(head) - 1, s.out) < 0) s.broken = 1;
    flush(&s);
    sx_rinfo(r->fr->reqid, "stream of project %d opened (%d open)", project, sx_sse_hub_streams());
    if (resume) {
        snprintf(s.last_id, sizeof(s.last_id), "%s", resume);
        if (st.gap) send_gap(&s);
        replay(&s, project, st.last);
    } else {
        snprintf(s.last_id, sizeof(s.last_id), "%s", st.last);
    }
    flush(&s);
    int64_t hb = r->cfg->sse_heartbeat_s * 1000000000LL, reauth = r->cfg->sse_reauth_s * 1000000000LL;
    int64_t next_auth = sx_mono_ns() + reauth;
    while (!s.broken && !sx_fcgi_stopping()) {
        if (sx_mono_ns() >= next_auth) {
            if (still_allowed(r, seg, project) != SX_OK) break;
            next_auth = sx_mono_ns() + reauth;
        }
        int64_t now = sx_mono_ns(), deadline = s.last_write + hb;
        if (deadline > now + 1000000000LL) deadline = now + 1000000000LL; /* look at the stop flag every second */
        int gap = 0;
        size_t n = sx_live_queue_pop(&sub.queue, evs, POP_MAX, &gap, deadline);
        if (gap) send_gap(&s);
        for (size_t i = 0; i < n; i++) {
            send_event(&s, evs[i]);
            sx_live_event_put(evs[i]);
        }
        if (s.buf.len) flush(&s);
        else if (sx_mono_ns() - s.last_write >= hb) {
            sx_buf_puts(&s.buf, ": ping\n\n");
            flush(&s);
        }
    }
    sx_sse_hub_remove(&sub);
    sx_live_queue_term(&sub.queue);
    sx_buf_term(&s.buf);
    sx_rinfo(r->fr->reqid, "stream of project %d closed (%s)", project,
             s.broken ? "client left" : sx_fcgi_stopping() ? "stopping" : "access ended");
}

/* The single value of a query parameter (NULL when absent or empty); a
 * repeated one is a 400. */
static const char *param1(struct req *r, const struct sx_api_query *q, const char *key, int *bad)
{
    if (sx_api_query_count(q, key) > 1) {
        *bad = fail(r, 400, "bad_request", "parameter %s may be given only once", key);
        return NULL;
    }
    const char *v = sx_api_query_get(q, key);
    return v && *v ? v : NULL;
}

/* Requests being handled (open streams and ones being checked). */
static atomic_int active;

static void handle_one(struct sx_fcgi_req *fr, const struct sx_config *cfg);

/* One thread of the budget is kept for refusals: when every other one holds
 * a stream, a new request gets 503 at once instead of waiting in the
 * socket's backlog until a stream ends. */
static void handle(struct sx_fcgi_req *fr, void *ctx)
{
    const struct sx_config *cfg = ctx;
    if (atomic_fetch_add(&active, 1) + 1 > (int)cfg->sse_threads - 1) {
        struct req r;
        memset(&r, 0, sizeof(r));
        r.fr = fr;
        r.cfg = cfg;
        fail(&r, 503, "unavailable", "too many open streams (sse_threads %lld), retry later", cfg->sse_threads);
        respond_error(&r);
    } else {
        handle_one(fr, cfg);
    }
    atomic_fetch_sub(&active, 1);
}

static void handle_one(struct sx_fcgi_req *fr, const struct sx_config *cfg)
{
    struct req r;
    struct sx_api_query q;
    struct sx_live_filter filter;
    char err[256];
    int bad = 0, pid = 0;

    memset(&r, 0, sizeof(r));
    r.fr = fr;
    r.cfg = cfg;
    const char *method = sx_fcgi_param(fr, "REQUEST_METHOD");
    const char *path = sx_fcgi_param(fr, "DOCUMENT_URI");
    if (!path || !*path) path = sx_fcgi_param(fr, "SCRIPT_NAME");
    const char *project = project_of(fr, path ? path : "");
    if (!project) {
        fail(&r, 404, "not_found", "no such endpoint");
        goto refuse;
    }
    if (!method || strcmp(method, "GET") != 0) {
        fail(&r, 405, "method_not_allowed", "method %.16s not allowed: use GET", method ? method : "");
        goto refuse;
    }
    if (sx_api_query_parse(fr->arena, sx_fcgi_param(fr, "QUERY_STRING"), MAX_QUERY_PARAMS, &q, err, sizeof(err)) !=
        SX_OK) {
        fail(&r, 400, "bad_request", "%s", err);
        goto refuse;
    }
    const char *topics = param1(&r, &q, "topics", &bad), *service = param1(&r, &q, "service", &bad);
    const char *severity = param1(&r, &q, "severity", &bad), *text = param1(&r, &q, "q", &bad);
    const char *resume = param1(&r, &q, "lastEventId", &bad);
    const char *header = sx_fcgi_param(fr, "HTTP_LAST_EVENT_ID");
    if (header && *header) resume = header; /* a browser's reconnection says where it is */
    if (bad) goto refuse;
    if (sx_live_filter_parse(&filter, topics, service, severity, text, err, sizeof(err)) != SX_OK) {
        fail(&r, 400, "bad_request", "%s", err);
        goto refuse;
    }
    if (resume && !sx_live_id_valid(resume)) {
        fail(&r, 400, "bad_request", "invalid Last-Event-ID: a stream id such as 1700000000000-0");
        goto refuse;
    }
    if (authorize(&r, fr->arena, project, &pid) != SX_OK) goto refuse;
    serve(&r, project, pid, resume, &filter);
    return;
refuse:
    respond_error(&r);
}

/* ---- command line ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    sx_cli_usage(f, PROGRAM, "Serves live events (GET /api/v1/projects/{p}/stream, Server-Sent Events) over FastCGI.");
}

int main(int argc, char **argv)
{
    static struct sx_config cfg; /* read by every thread; written only here */
    struct sx_cli cli = {.program = PROGRAM};
    int rc = sx_cli_parse(&cli, argc, argv, &cfg, usage);
    if (rc >= 0) return rc;
    sx_cli_log_init(&cli, &cfg);
    signal(SIGPIPE, SIG_IGN); /* hiredis: a dropped Redis connection must not kill us */
    /* Every open stream holds a socket: take the hard limit of descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)cfg.sse_threads + 64)
        sx_warn("RLIMIT_NOFILE %llu is below sse_threads + 64: streams may be refused", (unsigned long long)rl.rlim_cur);
    if (sx_sse_hub_start(&cfg) != SX_OK) return 1;

    /* Static: threads still read it while the process exits. */
    static struct sx_fcgi_server srv;
    srv.listen = cfg.sse_socket;
    srv.threads = (int)cfg.sse_threads;
    srv.backlog = 1024;
    srv.arena_chunk = 8 * 1024;
    srv.arena_max = 1u << 20;
    srv.stack_size = STACK_SIZE;
    srv.handle = handle;
    srv.ctx = &cfg;
    return sx_fcgi_serve(&srv) == SX_OK ? 0 : 1;
}
