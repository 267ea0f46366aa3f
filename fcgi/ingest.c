/* ingest.c: sextant-ingest, the OTLP/HTTP edge: authenticate, read, gunzip, decode, validate, XADD, answer.
 *
 * Each FastCGI worker thread owns one Redis context (key cache and stream),
 * one lazily opened PostgreSQL connection (key cache misses only) and its
 * counters; the request arena belongs to the server loop (fcgi_server.h).
 * Every answer follows the OTLP/HTTP spec: 200 with an Export response
 * (partial_success when items were dropped or trimmed) once XADD returned an
 * id, otherwise a google.rpc.Status body in the request's encoding with
 * 400/401/403/404/405/413/415, 429 with Retry-After when a project limit
 * (rate, daily quota, storage quota) refuses it, or 503 with Retry-After
 * when Redis, PostgreSQL or the stream cannot take the batch. Never 500 for
 * load.
 *
 * Project settings (ingest_settings.c) apply between validation and the
 * XADD: trace sampling (sample.h), attribute rules and secret redaction
 * (scrub.h); the limits and the usage counters are checked and counted in
 * the XADD's own Lua script (ingest_stream.h, usage.h).
 *
 * The three signals (POST /v1/traces, /v1/logs, /v1/metrics) share one code
 * path: a small table (signals[]) holds what differs: the decoders, the
 * validator, the packer, the response type and the stream. */
#include "buf.h"
#include "config.h"
#include "cli.h"
#include "fcgi_server.h"
#include "gzip.h"
#include "ingest_auth.h"
#include "ingest_http.h"
#include "ingest_settings.h"
#include "ingest_stream.h"
#include "json.h"
#include "log.h"
#include "otlp.h"
#include "redis.h"
#include "sample.h"
#include "scrub.h"
#include "stream.h"
#include "usage.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_CONNECT_TIMEOUT_MS 500
#define REDIS_COMMAND_TIMEOUT_MS 2000
#define ARENA_CHUNK (256 * 1024)
#define DRAIN_CHUNK (16 * 1024)

/* gRPC status codes carried in google.rpc.Status bodies. */
#define GRPC_INVALID_ARGUMENT 3
#define GRPC_NOT_FOUND 5
#define GRPC_PERMISSION_DENIED 7
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_UNIMPLEMENTED 12
#define GRPC_UNAVAILABLE 14
#define GRPC_UNAUTHENTICATED 16

/* Read-only after startup; shared by every thread. */
struct ingest_ctx {
    struct sx_config cfg;
    struct sx_otlp_limits limits;
};

/* One OTLP signal: what differs between /v1/traces, /v1/logs and
 * /v1/metrics. The functions wrap the typed otlp.h ones. */
struct signal {
    const char *noun;   /* item noun for logs: "spans" */
    const char *stream; /* stream.h name */
    int (*decode)(int json, const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                  ProtobufCMessage **out, char *err, size_t errlen);
    void (*validate)(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                     struct sx_otlp_stats *st);
    uint8_t *(*pack)(const ProtobufCMessage *req, struct sx_arena *a, size_t *len);
    uint8_t *(*response)(int json, int64_t rejected, const char *message, struct sx_arena *a, size_t *len);
    void (*scrub)(ProtobufCMessage *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                  struct sx_scrub_stats *st);
    const char *usage;  /* usage.h signal name */
    const char *quota_noun; /* "spans", "log records", "data points" */
};

enum { SIG_TRACES, SIG_LOGS, SIG_METRICS, SIG_COUNT };

struct ingest_counters {
    unsigned long long requests;
    unsigned long long ok;
    unsigned long long client_errors; /* 4xx */
    unsigned long long unavailable;   /* 503 */
    unsigned long long limited;       /* 429 */
    unsigned long long items[SIG_COUNT];    /* items added to the streams, per signal */
    unsigned long long rejected[SIG_COUNT]; /* items dropped by validation, per signal */
    unsigned long long bytes;         /* request bodies as received */
};

/* One per worker thread, owned by that thread (made in thread_init, freed in
 * thread_term). */
struct ingest_thread {
    int thread_no;
    redisContext *redis;
    PGconn *pg;
    struct sx_ingest_script script;
    struct sx_ingest_settings_cache settings;
    struct ingest_counters n;
};

/* The state of one request while it is handled. */
struct ingest_req {
    struct sx_fcgi_req *r;
    const struct ingest_ctx *ctx;
    struct ingest_thread *ts;
    const char *path;
    const struct signal *sig; /* NULL until routed */
    int json;           /* answer in JSON (JSON requests and unknown types) */
    int body_read;      /* the body was consumed from the FastCGI stream */
};

/* --- the signal table ------------------------------------------------------------- */

static int traces_decode(int json, const uint8_t *buf, size_t len, struct sx_arena *a,
                         const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen)
{
    sx_trace_req *req = NULL;
    int rc = json ? sx_otlp_trace_decode_json(buf, len, a, l, &req, err, errlen)
                  : sx_otlp_trace_decode_pb(buf, len, a, l, &req, err, errlen);
    *out = req ? &req->base : NULL;
    return rc;
}

static void traces_validate(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                            struct sx_otlp_stats *st)
{
    sx_otlp_trace_validate((sx_trace_req *)req, l, a, st);
}

static uint8_t *traces_pack(const ProtobufCMessage *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_trace_pack((const sx_trace_req *)req, a, len);
}

static int logs_decode(int json, const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                       ProtobufCMessage **out, char *err, size_t errlen)
{
    sx_logs_req *req = NULL;
    int rc = json ? sx_otlp_logs_decode_json(buf, len, a, l, &req, err, errlen)
                  : sx_otlp_logs_decode_pb(buf, len, a, l, &req, err, errlen);
    *out = req ? &req->base : NULL;
    return rc;
}

static void logs_validate(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                          struct sx_otlp_stats *st)
{
    sx_otlp_logs_validate((sx_logs_req *)req, l, a, st);
}

static uint8_t *logs_pack(const ProtobufCMessage *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_logs_pack((const sx_logs_req *)req, a, len);
}

static int metrics_decode(int json, const uint8_t *buf, size_t len, struct sx_arena *a,
                          const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen)
{
    sx_metrics_req *req = NULL;
    int rc = json ? sx_otlp_metrics_decode_json(buf, len, a, l, &req, err, errlen)
                  : sx_otlp_metrics_decode_pb(buf, len, a, l, &req, err, errlen);
    *out = req ? &req->base : NULL;
    return rc;
}

static void metrics_validate(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                             struct sx_otlp_stats *st)
{
    sx_otlp_metrics_validate((sx_metrics_req *)req, l, a, st);
}

static uint8_t *metrics_pack(const ProtobufCMessage *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_metrics_pack((const sx_metrics_req *)req, a, len);
}

static void traces_scrub(ProtobufCMessage *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                         struct sx_scrub_stats *st)
{
    sx_scrub_trace_req((sx_trace_req *)req, rules, secrets, a, st);
}

static void logs_scrub(ProtobufCMessage *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                       struct sx_scrub_stats *st)
{
    sx_scrub_logs_req((sx_logs_req *)req, rules, secrets, a, st);
}

static void metrics_scrub(ProtobufCMessage *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                          struct sx_scrub_stats *st)
{
    sx_scrub_metrics_req((sx_metrics_req *)req, rules, secrets, a, st);
}

static const struct signal signals[SIG_COUNT] = {
    [SIG_TRACES] = {"spans", SX_STREAM_SPANS, traces_decode, traces_validate, traces_pack,
                    sx_otlp_trace_response, traces_scrub, "spans", "spans"},
    [SIG_LOGS] = {"log records", SX_STREAM_LOGS, logs_decode, logs_validate, logs_pack,
                  sx_otlp_logs_response, logs_scrub, "logs", "log records"},
    [SIG_METRICS] = {"data points", SX_STREAM_METRICS, metrics_decode, metrics_validate,
                     metrics_pack, sx_otlp_metrics_response, metrics_scrub, "metrics", "data points"},
};

/* The signal of a route; NULL for SX_INGEST_ROUTE_NONE. */
static const struct signal *signal_of(enum sx_ingest_route route)
{
    switch (route) {
    case SX_INGEST_ROUTE_TRACES: return &signals[SIG_TRACES];
    case SX_INGEST_ROUTE_LOGS: return &signals[SIG_LOGS];
    case SX_INGEST_ROUTE_METRICS: return &signals[SIG_METRICS];
    default: return NULL;
    }
}

static void *thread_init(int thread_no, void *vctx)
{
    const struct ingest_ctx *ctx = vctx;
    struct ingest_thread *ts = sx_xcalloc(1, sizeof(*ts));
    ts->thread_no = thread_no;
    sx_ingest_script_reset(&ts->script);
    /* A Redis that is down now is retried per request. */
    sx_redis_ensure(&ts->redis, &ctx->cfg, REDIS_CONNECT_TIMEOUT_MS, REDIS_COMMAND_TIMEOUT_MS);
    return ts;
}

static void thread_term(void *state, void *vctx)
{
    struct ingest_thread *ts = state;
    SX_UNUSED(vctx);
    if (!ts) return;
    sx_info("thread %d: %llu requests, %llu ok, %llu client errors, %llu unavailable, %llu body bytes; "
            "%llu limited (429); stored/rejected: %llu/%llu spans, %llu/%llu log records, %llu/%llu data points",
            ts->thread_no, ts->n.requests, ts->n.ok, ts->n.client_errors, ts->n.unavailable, ts->n.bytes, ts->n.limited,
            ts->n.items[SIG_TRACES], ts->n.rejected[SIG_TRACES], ts->n.items[SIG_LOGS], ts->n.rejected[SIG_LOGS],
            ts->n.items[SIG_METRICS], ts->n.rejected[SIG_METRICS]);
    if (ts->redis) redisFree(ts->redis);
    PQfinish(ts->pg);
    sx_ingest_settings_cache_term(&ts->settings);
    free(ts);
}

/* A body we answer without reading must not stay in the FastCGI connection:
 * libfcgi would read it as the next request's records. Small ones are read
 * and dropped; over max_body_bytes the connection is closed after this
 * request instead (nginx then opens a new one). keepConnection is marked
 * "don't use" in fcgiapp.h but is the only way to ask FCGX_Finish_r to close
 * a kept connection; FCGX_Finish_r reads it for exactly that. */
static void discard_body(struct ingest_req *q)
{
    unsigned long long cl = 0;
    char sink[DRAIN_CHUNK];
    if (q->body_read) return;
    q->body_read = 1;
    int lrc = sx_ingest_parse_length(sx_fcgi_param(q->r, "CONTENT_LENGTH"), &cl);
    if (lrc == SX_OK && cl == 0) return;
    if (lrc == SX_OK && cl > (unsigned long long)q->ctx->cfg.max_body_bytes) {
        q->r->fcgx->keepConnection = 0;
        return;
    }
    unsigned long long got = 0;
    for (;;) {
        int n = FCGX_GetStr(sink, (int)sizeof(sink), q->r->fcgx->in);
        if (n <= 0) break;
        got += (unsigned)n;
        if (got > (unsigned long long)q->ctx->cfg.max_body_bytes) {
            q->r->fcgx->keepConnection = 0;
            break;
        }
    }
}

static int grpc_code(int status)
{
    switch (status) {
    case 400: return GRPC_INVALID_ARGUMENT;
    case 401: return GRPC_UNAUTHENTICATED;
    case 403: return GRPC_PERMISSION_DENIED;
    case 404: return GRPC_NOT_FOUND;
    case 405: return GRPC_UNIMPLEMENTED;
    case 413: return GRPC_RESOURCE_EXHAUSTED;
    case 429: return GRPC_RESOURCE_EXHAUSTED;
    case 415: return GRPC_INVALID_ARGUMENT;
    case 503: return GRPC_UNAVAILABLE;
    default: return GRPC_INVALID_ARGUMENT;
    }
}

static const char *content_type_of(int json)
{
    return json ? "application/json" : "application/x-protobuf";
}

/* Answers an error with a google.rpc.Status body in the request's encoding.
 * msg must not live in the request arena: the arena is reset when it is
 * full (after a 413 for NOMEM) so the answer can still be encoded. */
static void fail_retry(struct ingest_req *q, int status, const char *msg, long long retry_after)
{
    char headers[96] = "";
    size_t len = 0;
    uint8_t *body;

    discard_body(q);
    if (retry_after > 0)
        snprintf(headers, sizeof(headers), "Retry-After: %lld\r\n", retry_after);
    else if (status == 503)
        snprintf(headers, sizeof(headers), "Retry-After: %lld\r\n", q->ctx->cfg.retry_after_seconds);
    else if (status == 405)
        snprintf(headers, sizeof(headers), "Allow: POST\r\n");
    body = sx_otlp_status(q->json, grpc_code(status), msg, q->r->arena, &len);
    if (!body) {
        sx_arena_reset(q->r->arena);
        body = sx_otlp_status(q->json, grpc_code(status), msg, q->r->arena, &len);
    }
    if (body)
        sx_fcgi_respond(q->r, status, content_type_of(q->json), headers, body, len);
    else
        sx_fcgi_respond(q->r, status, "text/plain", headers, msg, strlen(msg));

    if (status == 503)
        q->ts->n.unavailable++;
    else if (status == 429)
        q->ts->n.limited++;
    else
        q->ts->n.client_errors++;
    sx_rinfo(q->r->reqid, "%d %.64s: %s", status, q->path ? q->path : "-", msg);
}

static void fail(struct ingest_req *q, int status, const char *msg)
{
    fail_retry(q, status, msg, 0);
}

/* Answers 200 with the signal's Export*ServiceResponse: partial_success
 * when rejected > 0 or message is non-empty (a warning when only trimmed). */
static void succeed(struct ingest_req *q, int64_t rejected, const char *message)
{
    size_t len = 0;
    const char *m = message && message[0] ? message : NULL;
    uint8_t *body = q->sig->response(q->json, rejected, m, q->r->arena, &len);
    if (!body) {
        /* The batch is in the stream already: the arena may be reused. */
        sx_arena_reset(q->r->arena);
        body = q->sig->response(q->json, rejected, m, q->r->arena, &len);
    }
    if (body)
        sx_fcgi_respond(q->r, 200, content_type_of(q->json), NULL, body, len);
    else
        sx_fcgi_respond(q->r, 200, content_type_of(q->json), NULL, "", 0);
    q->ts->n.ok++;
}

/* Authenticates the request; SX_OK with *key set, else the answer is sent. */
static int authenticate(struct ingest_req *q, struct sx_ingest_key *key)
{
    const char *secret;
    size_t secret_len;
    char why[128];
    struct ingest_thread *ts = q->ts;

    if (sx_ingest_key_extract(sx_fcgi_param(q->r, "HTTP_X_API_KEY"), sx_fcgi_param(q->r, "HTTP_AUTHORIZATION"),
                              &secret, &secret_len) != SX_OK) {
        fail(q, 401, "missing API key: send it in X-API-Key or Authorization: Bearer");
        return SX_ERR;
    }
    /* The lookup is the first Redis command of a request: a connection that
     * died since the last one (Redis restarted) is found here and replaced
     * once, so the restart costs no 503 when Redis is back. */
    int rc = SX_ERR;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ts->redis || ts->redis->err) sx_ingest_script_reset(&ts->script);
        if (sx_redis_ensure(&ts->redis, &q->ctx->cfg, REDIS_CONNECT_TIMEOUT_MS, REDIS_COMMAND_TIMEOUT_MS) != SX_OK) {
            snprintf(why, sizeof(why), "Redis is unavailable");
            break;
        }
        rc = sx_ingest_key_lookup(ts->redis, &ts->pg, &q->ctx->cfg, secret, secret_len, key, q->r->reqid, why,
                                  sizeof(why));
        if (rc == SX_OK || !ts->redis->err) break;
    }
    if (rc != SX_OK) {
        fail(q, 503, why);
        return SX_ERR;
    }
    switch (key->state) {
    case SX_INGEST_KEY_ACTIVE: return SX_OK;
    case SX_INGEST_KEY_REVOKED: fail(q, 403, "API key revoked"); return SX_ERR;
    case SX_INGEST_KEY_SUSPENDED: fail(q, 403, "project suspended"); return SX_ERR;
    default: fail(q, 401, "unknown API key"); return SX_ERR;
    }
}

/* Reads (and gunzips) the body; SX_OK with *data set, else the answer is sent. */
static int read_body(struct ingest_req *q, enum sx_ingest_cenc enc, uint8_t **data, size_t *len)
{
    const struct sx_config *c = &q->ctx->cfg;
    unsigned long long cl = 0;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    char msg[160];

    if (sx_ingest_parse_length(sx_fcgi_param(q->r, "CONTENT_LENGTH"), &cl) == SX_OK &&
        cl > (unsigned long long)c->max_body_bytes) {
        snprintf(msg, sizeof(msg), "request body of %llu bytes is over the limit of %lld bytes", cl,
                 c->max_body_bytes);
        fail(q, 413, msg);
        return SX_ERR;
    }
    q->body_read = 1; /* whatever happens next, the stream is consumed or the connection closed */
    int rc = sx_fcgi_read_body(q->r, (size_t)c->max_body_bytes, &raw, &raw_len);
    if (rc == SX_AGAIN) {
        q->r->fcgx->keepConnection = 0; /* the rest of the body may still be unread */
        snprintf(msg, sizeof(msg), "request body is over the limit of %lld bytes", c->max_body_bytes);
        fail(q, 413, msg);
        return SX_ERR;
    }
    if (rc != SX_OK) {
        q->r->fcgx->keepConnection = 0; /* the stream is in an unknown state */
        fail(q, 400, "could not read the request body (shorter than Content-Length)");
        return SX_ERR;
    }
    q->ts->n.bytes += raw_len;
    if (enc != SX_INGEST_CE_GZIP) {
        *data = raw;
        *len = raw_len;
        return SX_OK;
    }
    rc = sx_gunzip(raw, raw_len, (size_t)c->max_inflated_bytes, q->r->arena, data, len);
    switch (rc) {
    case SX_GZIP_OK: return SX_OK;
    case SX_GZIP_E_CORRUPT: fail(q, 400, "request body is not valid gzip"); return SX_ERR;
    default:
        snprintf(msg, sizeof(msg), "request body inflates past the limit of %lld bytes", c->max_inflated_bytes);
        fail(q, 413, msg);
        return SX_ERR;
    }
}

/* Decodes data; SX_OK with *req set, else the answer is sent. */
static int decode(struct ingest_req *q, const uint8_t *data, size_t len, ProtobufCMessage **req)
{
    char err[256] = "", msg[300];
    int rc = q->sig->decode(q->json, data, len, q->r->arena, &q->ctx->limits, req, err, sizeof(err));
    if (rc == SX_OTLP_OK) return SX_OK;
    if (rc == SX_OTLP_E_NOMEM) {
        snprintf(msg, sizeof(msg), "request too large to decode%s%s", err[0] ? ": " : "", err);
        fail(q, 413, msg);
        return SX_ERR;
    }
    snprintf(msg, sizeof(msg), "%s", err[0] ? err : "undecodable request");
    fail(q, 400, msg);
    return SX_ERR;
}

/* Answers 429 for a batch the project's limits refused (ingest_stream.h).
 * Rate limit: Retry-After = the time until the bucket holds the batch,
 * rounded up to whole seconds, 1..rate_retry_max, so SDKs retry soon.
 * Daily quota: Retry-After = the seconds left until 00:00 UTC, longer than
 * any SDK's export timeout, so SDKs drop the batch at once instead of
 * retrying into the same answer; collectors with a queue back off until the
 * reset. Storage quota: Retry-After 3600 (the estimate is refreshed by
 * sextantctl maintain, hourly). */
static void refuse(struct ingest_req *q, const struct sx_ingest_settings *set, const struct sx_ingest_verdict *v,
                   size_t items, int64_t recv_ns)
{
    char msg[300];
    int sidx = q->sig == &signals[SIG_TRACES] ? SX_SIG_SPANS : q->sig == &signals[SIG_LOGS] ? SX_SIG_LOGS : SX_SIG_METRICS;
    long long retry;
    switch (v->refusal) {
    case SX_INGEST_REFUSE_RATE:
        retry = (v->value + 999) / 1000;
        retry = SX_MAX(1, SX_MIN(retry, q->ctx->cfg.rate_retry_max));
        snprintf(msg, sizeof(msg), "rate limit exceeded: this project may send %lld %s per second (%zu in this request); retry after %lld s",
                 set->rate[sidx], q->sig->quota_noun, items, retry);
        break;
    case SX_INGEST_REFUSE_QUOTA: {
        long long now_s = recv_ns / 1000000000LL;
        retry = 86400 - now_s % 86400;
        snprintf(msg, sizeof(msg), "daily quota exceeded: %lld of %lld %s accepted today (UTC), %zu more refused; the quota resets at 00:00 UTC",
                 v->value, set->quota[sidx], q->sig->quota_noun, items);
        break;
    }
    default:
        retry = 3600;
        snprintf(msg, sizeof(msg), "storage quota exceeded: this project stores its quota of %lld bytes; data expires with retention, or raise the quota",
                 set->storage_quota);
        break;
    }
    fail_retry(q, 429, msg, retry);
}

static void handle(struct sx_fcgi_req *r, void *vctx)
{
    struct ingest_req q = {.r = r, .ctx = vctx, .ts = r->thread_state};
    const struct sx_config *c = &q.ctx->cfg;
    int64_t recv_ns = sx_now_ns();
    struct sx_ingest_key key;
    struct sx_otlp_stats st;
    uint8_t *data = NULL;
    size_t len = 0;
    ProtobufCMessage *req = NULL;
    char msg[512], id[64], why[128];

    q.ts->n.requests++;
    q.path = sx_fcgi_param(r, "DOCUMENT_URI");
    if (!q.path) q.path = sx_fcgi_param(r, "SCRIPT_NAME");
    const char *method = sx_fcgi_param(r, "REQUEST_METHOD");
    const char *ctype = sx_fcgi_param(r, "CONTENT_TYPE");
    enum sx_ingest_ctype ct = sx_ingest_ctype_parse(ctype);
    q.json = ct != SX_INGEST_CT_PROTOBUF;

    q.sig = signal_of(sx_ingest_route_parse(q.path));
    if (!q.sig) {
        snprintf(msg, sizeof(msg),
                 "no OTLP endpoint at %.100s: this server accepts POST /v1/traces, /v1/logs and /v1/metrics",
                 q.path ? q.path : "?");
        fail(&q, 404, msg);
        return;
    }
    size_t sig_no = (size_t)(q.sig - signals);
    if (!method || strcmp(method, "POST") != 0) {
        fail(&q, 405, "method not allowed: use POST");
        return;
    }
    if (ct == SX_INGEST_CT_UNKNOWN) {
        snprintf(msg, sizeof(msg), "unsupported Content-Type '%.80s': use application/x-protobuf or application/json",
                 ctype ? ctype : "");
        fail(&q, 415, msg);
        return;
    }
    if (authenticate(&q, &key) != SX_OK) return;
    const struct sx_ingest_settings *set =
        sx_ingest_settings_get(&q.ts->settings, q.ts->redis, &q.ts->pg, c, key.project_id, r->reqid, why, sizeof(why));
    if (!set) {
        fail(&q, 503, why);
        return;
    }
    if (set->suspended) {
        fail(&q, 403, "project suspended");
        return;
    }

    const char *cenc = sx_fcgi_param(r, "HTTP_CONTENT_ENCODING");
    enum sx_ingest_cenc enc = sx_ingest_cenc_parse(cenc);
    if (enc == SX_INGEST_CE_UNKNOWN) {
        snprintf(msg, sizeof(msg), "unsupported Content-Encoding '%.80s': use gzip or none", cenc);
        fail(&q, 415, msg);
        return;
    }
    if (read_body(&q, enc, &data, &len) != SX_OK) return;
    if (decode(&q, data, len, &req) != SX_OK) return;

    memset(&st, 0, sizeof(st));
    q.sig->validate(req, &q.ctx->limits, r->arena, &st);
    int trimmed = sx_ingest_partial_message(&st, msg, sizeof(msg));
    size_t rejected = SX_MAX(st.items_rejected, st.items_in - SX_MIN(st.items_kept, st.items_in));
    q.ts->n.rejected[sig_no] += rejected;

    /* Sampling (traces) and attribute rules, on the validated request. Spans
     * sampled out are not rejected: the answer does not count them. */
    size_t sampled_out = 0;
    if (sig_no == SIG_TRACES && st.items_kept && set->sampling_rate < 1) {
        sampled_out = sx_sample_traces((sx_trace_req *)req, set->sampling_rate,
                                       (uint64_t)set->slow_trace_ms * 1000000u);
        st.items_kept -= SX_MIN(sampled_out, st.items_kept);
    }
    struct sx_scrub_stats sc = {0, 0, 0};
    if (st.items_kept) q.sig->scrub(req, set->rules, set->redact_secrets, r->arena, &sc);

    char usage_key[200], bucket_key[200], storage_key[200], bsuffix[48];
    snprintf(bsuffix, sizeof(bsuffix), SX_BUCKET_SUFFIX ":%s", q.sig->usage);
    sx_usage_key(usage_key, sizeof(usage_key), c, key.project_id, recv_ns / 1000000000LL);
    sx_redis_pkey(bucket_key, sizeof(bucket_key), c, key.project_id, bsuffix);
    sx_redis_pkey(storage_key, sizeof(storage_key), c, key.project_id, SX_STORAGE_SUFFIX);
    int sidx = sig_no == SIG_TRACES ? SX_SIG_SPANS : sig_no == SIG_LOGS ? SX_SIG_LOGS : SX_SIG_METRICS;
    struct sx_ingest_limits lim = {
        .signal = q.sig->usage, .usage_key = usage_key, .bucket_key = bucket_key, .storage_key = storage_key,
        .rate = set->rate[sidx], .capacity = set->rate[sidx] * c->rate_burst_seconds, .quota = set->quota[sidx],
        .storage_quota = set->storage_quota, .usage_ttl = c->usage_days * 86400, .sampled_out = (long long)sampled_out,
        .dropped = (long long)rejected, .redacted = (long long)sc.redacted};
    struct sx_ingest_verdict verdict;

    struct sx_ingest_entry e = {.project_id = key.project_id, .key_id = key.key_id, .count = st.items_kept,
                                .recv_ns = recv_ns, .stream = q.sig->stream};
    if (st.items_kept) {
        e.body = q.sig->pack(req, r->arena, &e.body_len);
        if (!e.body) {
            fail(&q, 413, "request too large to store after decoding");
            return;
        }
    }
    /* The stream holds what sextant-persist reads: answer only after XADD. */
    if (!q.ts->redis || q.ts->redis->err) sx_ingest_script_reset(&q.ts->script);
    if (sx_redis_ensure(&q.ts->redis, c, REDIS_CONNECT_TIMEOUT_MS, REDIS_COMMAND_TIMEOUT_MS) != SX_OK) {
        fail(&q, 503, "Redis is unavailable");
        return;
    }
    int rc = SX_OK;
    id[0] = '\0';
    /* Nothing to store and nothing to count: no round trip. */
    if (st.items_kept || sampled_out || rejected || sc.redacted)
        rc = sx_ingest_stream_add(q.ts->redis, &q.ts->script, c, &e, &lim, &verdict, id, sizeof(id), why,
                                  sizeof(why));
    if (rc == SX_INGEST_REFUSED) {
        refuse(&q, set, &verdict, st.items_kept, recv_ns);
        return;
    }
    if (rc != SX_OK) {
        /* Nothing stored: an empty or all-invalid request still succeeds
         * (its counters are lost with Redis). */
        if (st.items_kept) {
            fail(&q, 503, why);
            return;
        }
    }
    q.ts->n.items[sig_no] += st.items_kept;
    succeed(&q, (int64_t)rejected, trimmed ? msg : NULL);
    sx_rdebug(r->reqid, "200 %s: %zu %s stored, %zu rejected, %zu sampled out, %zu redacted, %zu bytes, project %lld, entry %s",
              q.path, st.items_kept, q.sig->noun, rejected, sampled_out, sc.redacted, e.body_len, key.project_id,
              id[0] ? id : "-");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sextant-ingest [--config FILE] [--set name=value]... [--instance NAME] [--help]\n"
            "\n"
            "OTLP/HTTP ingest (POST /v1/traces, /v1/logs, /v1/metrics) behind nginx over FastCGI.\n"
            "  --config FILE     settings file (default: $SEXTANT_CONFIG, else $SEXTANT_HOME/sextant.conf,\n"
            "                    else ./var/sextant.conf; a missing default file is fine)\n"
            "  --set name=value  override one setting (may repeat; applied after the file)\n"
            "  --instance NAME   instance name shown in every log line\n"
            "  --help            this text and every setting\n"
            "\n");
}

int main(int argc, char **argv)
{
    static struct ingest_ctx ctx; /* lives for the whole process: threads read it */
    struct sx_cli cli = {.program = "sextant-ingest"};
    int rc;

    /* Freed request memory must go back to the OS: large blocks through
     * mmap, and few malloc arenas for our few threads. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 2);

    rc = sx_cli_parse(&cli, argc, argv, &ctx.cfg, usage);
    if (rc >= 0) return rc;
    sx_cli_log_init(&cli, &ctx.cfg);
    sx_otlp_limits_from_config(&ctx.limits, &ctx.cfg);

    /* Static: worker threads parked on kept connections still read it
     * after sx_fcgi_serve returned, until the process exits. */
    static struct sx_fcgi_server srv;
    srv.listen = ctx.cfg.ingest_listen;
    srv.threads = (int)ctx.cfg.ingest_threads;
    srv.backlog = 1024;
    srv.arena_chunk = ARENA_CHUNK;
    srv.arena_max = (size_t)ctx.cfg.max_body_bytes + 4 * (size_t)ctx.cfg.max_inflated_bytes + (1u << 20);
    srv.thread_init = thread_init;
    srv.thread_term = thread_term;
    srv.handle = handle;
    srv.ctx = &ctx;
    return sx_fcgi_serve(&srv) == SX_OK ? 0 : 1;
}
