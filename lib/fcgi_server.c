/* fcgi_server.c: multi-threaded libfcgi responder loop; see fcgi_server.h.
 *
 * Design notes (PITFALLS.md, "libfcgi behind nginx"):
 * - No mutex around FCGX_Accept_r: with fastcgi_keep_conn a thread parks in
 *   FCGX_Accept_r on its kept connection and would hold the mutex forever.
 * - FCGX_Init's signal handlers only set a flag. We block TERM/INT in every
 *   thread and sigwait in the main thread; on a signal we set the shutdown
 *   flag and shutdown() the listening socket so accept() returns.
 * - Threads parked on a kept-alive connection never return from accept; the
 *   main thread waits only for requests in progress, then returns.
 * - FCGX_OpenSocket unlinks an existing path (stealing a live instance's
 *   socket) and exit()s on paths over 107 bytes: both are checked first. */
#include "fcgi_server.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

struct worker {
    const struct sx_fcgi_server *srv;
    int thread_no;
    int listen_fd;
    pthread_t tid;
};

static atomic_int busy_requests;  /* requests between accept and finish */
static atomic_int threads_ready;  /* threads that finished their init hook */
static atomic_int stopping;
/* The server copy and the workers live until the process exits (idle
 * threads are never joined); static roots keep LeakSanitizer from calling
 * them leaks once those threads have ended. */
static struct sx_fcgi_server *volatile live_server; /* volatile: the stores must stay (roots only) */
static struct worker *volatile live_workers;

/* Refuses to take over a unix socket that a live process still accepts on. */
static int check_socket_free(const char *path)
{
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        sx_error("socket path too long (%zu bytes, at most %zu): %s", strlen(path), sizeof(sa.sun_path) - 1, path);
        return SX_ERR;
    }
    struct stat st;
    if (stat(path, &st) != 0) return SX_OK;
    if (!S_ISSOCK(st.st_mode)) {
        sx_error("%s exists and is not a socket", path);
        return SX_ERR;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return SX_OK;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    if (live) {
        sx_error("another process is listening on %s", path);
        return SX_ERR;
    }
    return SX_OK;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct sx_fcgi_server *s = w->srv;
    FCGX_Request fcgx;
    struct sx_fcgi_req r;
    unsigned long counter = 0;

    memset(&r, 0, sizeof(r));
    r.fcgx = &fcgx;
    r.thread_no = w->thread_no;
    r.arena = sx_arena_create(s->arena_chunk, s->arena_max);
    r.thread_state = s->thread_init ? s->thread_init(w->thread_no, s->ctx) : NULL;
    if (FCGX_InitRequest(&fcgx, w->listen_fd, 0) != 0) {
        sx_error("FCGX_InitRequest failed in thread %d", w->thread_no);
        atomic_fetch_add(&threads_ready, 1);
        goto out;
    }
    atomic_fetch_add(&threads_ready, 1);

    while (!atomic_load(&stopping)) {
        if (FCGX_Accept_r(&fcgx) < 0) break;
        atomic_fetch_add(&busy_requests, 1);
        snprintf(r.reqid, sizeof(r.reqid), "t%d-%lu", w->thread_no, ++counter);
        s->handle(&r, s->ctx);
        FCGX_Finish_r(&fcgx);
        sx_arena_reset(r.arena);
        atomic_fetch_sub(&busy_requests, 1);
    }
    FCGX_Free(&fcgx, 1);
out:
    if (s->thread_term) s->thread_term(r.thread_state, s->ctx);
    sx_arena_destroy(r.arena);
    return NULL;
}

int sx_fcgi_serve(const struct sx_fcgi_server *caller)
{
    sigset_t set;
    /* Detached threads may still run after we return (parked on kept
     * connections): they read a copy that lives until the process exits. */
    struct sx_fcgi_server *s = sx_xmalloc(sizeof(*s));
    *s = *caller;
    live_server = s;
    int listen_fd = -1, rc = SX_ERR, started = 0;
    struct worker *workers = NULL;
    int is_unix = strchr(s->listen, '/') != NULL;

    /* Block TERM/INT before any thread exists: threads inherit the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (FCGX_Init() != 0) {
        sx_error("FCGX_Init failed");
        return SX_ERR;
    }
    signal(SIGPIPE, SIG_IGN); /* a client that left must not kill us */

    if (is_unix && check_socket_free(s->listen) != SX_OK) return SX_ERR;
    listen_fd = FCGX_OpenSocket(s->listen, s->backlog > 0 ? s->backlog : 1024);
    if (listen_fd < 0) {
        sx_error("FCGX_OpenSocket(%s) failed: %s", s->listen, strerror(errno));
        return SX_ERR;
    }
    if (is_unix && chmod(s->listen, 0666) != 0) {
        sx_error("chmod(%s) failed: %s", s->listen, strerror(errno));
        goto out;
    }

    workers = sx_xcalloc((size_t)s->threads, sizeof(*workers));
    live_workers = workers;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (s->stack_size && pthread_attr_setstacksize(&attr, s->stack_size) != 0)
        sx_warn("pthread_attr_setstacksize(%zu) failed: default stacks", s->stack_size);
    for (int i = 0; i < s->threads; i++) {
        workers[i].srv = s;
        workers[i].thread_no = i;
        workers[i].listen_fd = listen_fd;
        if (pthread_create(&workers[i].tid, &attr, worker_main, &workers[i]) != 0) {
            sx_error("pthread_create failed for thread %d", i);
            break;
        }
        pthread_detach(workers[i].tid);
        started++;
    }
    pthread_attr_destroy(&attr);
    if (started == 0) goto out;
    while (atomic_load(&threads_ready) < started) usleep(1000);

    sx_info("listening on %s with %d threads", s->listen, started);
    sd_notify(0, "READY=1");

    int sig = 0;
    sigwait(&set, &sig);
    sx_info("signal %d: stopping", sig);
    sd_notify(0, "STOPPING=1");
    atomic_store(&stopping, 1);
    FCGX_ShutdownPending();
    shutdown(listen_fd, SHUT_RDWR);

    /* Let requests in progress finish (bounded), then return: idle threads
     * parked on kept connections end with the process. */
    for (int waited = 0; atomic_load(&busy_requests) > 0 && waited < 10000; waited += 10) usleep(10000);
    rc = SX_OK;
out:
    if (is_unix) unlink(s->listen);
    close(listen_fd);
    /* workers stay allocated: detached threads may still reference them. */
    return rc;
}

int sx_fcgi_stopping(void)
{
    return atomic_load(&stopping);
}

const char *sx_fcgi_param(struct sx_fcgi_req *r, const char *name)
{
    return FCGX_GetParam(name, r->fcgx->envp);
}

int sx_fcgi_read_body(struct sx_fcgi_req *r, size_t max, uint8_t **body, size_t *len)
{
    const char *cl = sx_fcgi_param(r, "CONTENT_LENGTH");
    *body = NULL;
    *len = 0;
    if (cl && *cl) {
        char *end;
        errno = 0;
        unsigned long long want = strtoull(cl, &end, 10);
        if (errno || *end) return SX_ERR;
        if (want > max) return SX_AGAIN;
        uint8_t *p = sx_arena_alloc(r->arena, want ? (size_t)want : 1);
        if (!p) return SX_AGAIN;
        size_t got = 0;
        while (got < want) {
            int chunk = want - got > (1u << 30) ? (1 << 30) : (int)(want - got);
            int n = FCGX_GetStr((char *)p + got, chunk, r->fcgx->in);
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (got != want) return SX_ERR;
        *body = p;
        *len = got;
        return SX_OK;
    }
    /* No CONTENT_LENGTH (request buffering off): read to EOF, bounded. */
    size_t cap = 64 * 1024, got = 0;
    uint8_t *p = sx_arena_alloc(r->arena, cap);
    if (!p) return SX_AGAIN;
    for (;;) {
        if (got == cap) {
            if (cap > max) return SX_AGAIN;
            size_t ncap = cap * 2;
            uint8_t *q = sx_arena_realloc(r->arena, p, cap, ncap);
            if (!q) return SX_AGAIN;
            p = q;
            cap = ncap;
        }
        int n = FCGX_GetStr((char *)p + got, (int)(cap - got), r->fcgx->in);
        if (n <= 0) break;
        got += (size_t)n;
        if (got > max) return SX_AGAIN;
    }
    if (FCGX_GetError(r->fcgx->in) != 0) return SX_ERR;
    *body = p;
    *len = got;
    return SX_OK;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

int sx_fcgi_respond(struct sx_fcgi_req *r, int status, const char *content_type, const char *extra_headers,
                    const void *body, size_t len)
{
    char head[512];
    /* FCGX_FPrintF truncates %zu: format with snprintf, write with FCGX_PutStr. */
    int n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                     reason_phrase(status), content_type ? content_type : "text/plain", len);
    if (n < 0 || (size_t)n >= sizeof(head)) return SX_ERR;
    if (FCGX_PutStr(head, n, r->fcgx->out) < 0) return SX_ERR;
    if (extra_headers && *extra_headers &&
        FCGX_PutStr(extra_headers, (int)strlen(extra_headers), r->fcgx->out) < 0)
        return SX_ERR;
    if (FCGX_PutStr("\r\n", 2, r->fcgx->out) < 0) return SX_ERR;
    if (len && FCGX_PutStr(body, (int)len, r->fcgx->out) < 0) return SX_ERR;
    return SX_OK;
}
