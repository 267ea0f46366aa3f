/* fcgi_server.h: the multi-threaded libfcgi responder loop shared by
 * sextant-ingest, sextant-api (and sextant-sse later).
 *
 * Threads call FCGX_Accept_r without a mutex (with fastcgi_keep_conn a mutex
 * stalls requests: see PITFALLS.md). SIGTERM/SIGINT are blocked in every
 * thread and taken by sigwait in the main thread, which then calls
 * FCGX_ShutdownPending() and shutdown()s the listening socket so accepts
 * return. Readiness is reported to systemd (sd_notify READY=1) once the
 * socket listens and every thread has run its init hook. */
#ifndef SX_FCGI_SERVER_H
#define SX_FCGI_SERVER_H

#include "arena.h"

#include <fcgiapp.h>

struct sx_fcgi_req {
    FCGX_Request *fcgx;
    struct sx_arena *arena;   /* reset after every request */
    void *thread_state;       /* what the init hook returned for this thread */
    char reqid[24];           /* short id for logs ("t3-1289") */
    int thread_no;
};

struct sx_fcgi_server {
    const char *listen;       /* unix socket path or host:port */
    int threads;
    int backlog;
    size_t arena_chunk;       /* first chunk of each thread's arena */
    size_t arena_max;         /* cap of each thread's arena */
    /* Called once in each worker thread before it accepts; returns its state
     * (may be NULL). */
    void *(*thread_init)(int thread_no, void *ctx);
    /* Called after the loop ends in each thread with its state. */
    void (*thread_term)(void *thread_state, void *ctx);
    /* Handles one request; the server finishes it and resets the arena. */
    void (*handle)(struct sx_fcgi_req *r, void *ctx);
    void *ctx;
    size_t stack_size;        /* worker thread stacks; 0: the system default */
};

/* Opens the socket (unix sockets get mode 0666 and refuse to steal a socket a
 * live process is listening on), starts the threads and serves until SIGTERM
 * or SIGINT. Returns SX_OK after a clean stop, SX_ERR if it could not start.
 * s is copied; the copy (not the strings or ctx it points to) stays alive for
 * the process's lifetime, since idle threads are not joined: listen and ctx
 * must therefore outlive the process's remaining run (static or heap). */
int sx_fcgi_serve(const struct sx_fcgi_server *s);

/* Whether a stop was requested (SIGTERM/SIGINT): long-running handlers
 * (sextant-sse's streams) poll it and end their request. */
int sx_fcgi_stopping(void);

/* Helpers for handlers. */
/* Returns the FastCGI parameter name, or NULL if absent. */
const char *sx_fcgi_param(struct sx_fcgi_req *r, const char *name);
/* Reads the whole body: up to max bytes. Returns SX_OK with *body and *len set (arena
 * memory), SX_AGAIN when it is over max (413), SX_ERR when the read failed or
 * fell short of CONTENT_LENGTH (400). */
int sx_fcgi_read_body(struct sx_fcgi_req *r, size_t max, uint8_t **body, size_t *len);
/* Writes status line, headers (each "Name: value\r\n", may be NULL) and body. */
int sx_fcgi_respond(struct sx_fcgi_req *r, int status, const char *content_type, const char *extra_headers,
                    const void *body, size_t len);

#endif
