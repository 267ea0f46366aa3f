/* api.c: sextant-api, the JSON API: command line, routing, authentication,
 * project resolution and the per-request RLS transaction.
 *
 * Request flow: route on DOCUMENT_URI (404) and REQUEST_METHOD (405 with the
 * endpoint's Allow); authenticate (401): a bearer token is hashed and looked
 * up in access_tokens (a project token, cached per thread for a few
 * seconds, or a user's personal token, never cached), else the sx_session
 * cookie is looked up in sessions (api_auth.c); a user's memberships are
 * loaded. A state-changing request by cookie must pass the CSRF check (403).
 * Account routes (/auth/..., /me...) then run in api_auth.c as the login
 * role. Project routes find {project}: a project token's own project, or for
 * a user the project among their memberships (any for an instance admin),
 * 404 otherwise; then the route's role (required_role: 403). GET/POST
 * /projects and GET /audit run like the account routes; GET
 * /analytics/cross-project runs one READ ONLY transaction as sextant_reader
 * over every project the caller may see (at most SX_API_MAX_PROJECTS).
 * Project routes then run in one transaction
 * with sextant.project_ids set to that project (row-level security is the
 * second wall; every query still filters on project_id): READ ONLY as
 * sextant_reader for GET, read-write as sextant_issue_writer for error
 * triage (PATCH and POST of .../errors; sql/012_errors_api.sql) or as
 * sextant_project_writer for project administration (PUT/DELETE
 * /projects/{p}, members, keys; sql/015_project_api.sql) and dashboard
 * writes (sql/017_dashboards.sql); the role each
 * route needs is required_role's; resolve {project} (id or slug) again within
 * it (404 whether it is missing or forbidden, so existence does not leak);
 * run the handler; COMMIT or ROLLBACK. Resolving the project inside the
 * transaction lets the API log in as a role that does not own the tables:
 * `projects` has RLS too. PostgreSQL trouble is a 503 with Retry-After,
 * never a crash. The login role needs SELECT on access_tokens, membership in
 * sextant_reader and sextant_issue_writer, and sextant_auth
 * (sql/014_api_auth.sql) for the user lookups made before the switch. */
#include "api_int.h"
#include "api_errors.h"
#include "api_metrics.h"
#include "api_perf.h"
#include "cli.h"

#include "keys.h"
#include "log.h"
#include "password.h"
#include "pg.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROGRAM "sextant-api"
#define OUT_MAX ((size_t)128 << 20)     /* largest response body */
#define OUT_KEEP ((size_t)4 << 20)      /* larger buffers are freed after the request */
#define MAX_QUERY_PARAMS 64
#define MAX_TOKEN_LEN SX_AUTH_TOKEN_MAX
#define TOKEN_CACHE_SIZE 16
#define TOKEN_CACHE_TTL_NS (5LL * 1000000000LL)
#define MAX_SEGMENTS 8
#define BODY_MAX ((size_t)64 << 10) /* largest request body (JSON) */

/* A project token lookup remembered for TOKEN_CACHE_TTL_NS (revocation
 * takes effect within that time). Unknown tokens are remembered too, so a
 * flood of bad tokens costs one query per token per thread every few
 * seconds. Personal access tokens are never cached: their revocation, their
 * user's disabling and role changes take effect at once. */
struct token_entry {
    uint8_t hash[SX_SHA256_LEN];
    int64_t expires_mono;   /* 0: empty slot */
    uint64_t used;          /* LRU tick */
    int known;              /* the token exists and is valid */
    int token_id;
    int project_id;
};

/* Per-thread state; owned by its thread, made by thread_init, freed by
 * thread_term. */
struct api_thread {
    PGconn *pg;             /* lazy; redialled by sx_pg_ensure */
    redisContext *redis;    /* lazy (login throttling); redialled by sx_redis_ensure */
    struct sx_buf out;      /* response body */
    struct token_entry tokens[TOKEN_CACHE_SIZE];
    uint64_t tick;
};

enum endpoint { EP_NONE, EP_HEALTH, EP_TRACES, EP_TRACE, EP_SERVICES, EP_LOGS, EP_LOGS_HIST, EP_METRICS, EP_METRICS_QUERY,
                EP_METRIC_LABELS,
                EP_PERF, EP_DEPS, EP_DATABASE, EP_SERVICE_MAP, EP_PROJECT_HEALTH,
                EP_ERRORS, EP_ERROR_STATS, EP_ERROR_MERGE, EP_ERROR, EP_ERROR_EVENTS,
                EP_PROJECT, EP_MEMBERS, EP_MEMBER, EP_KEYS, EP_KEY, EP_USAGE, EP_AUDIT,
                EP_DASHBOARDS, EP_DASHBOARD, EP_OVERVIEW,
                /* below: outside the project scope (account_endpoint, analytics_endpoint) */
                EP_LOGIN, EP_LOGOUT, EP_ME, EP_ME_TOKENS, EP_ME_TOKEN, EP_PROJECTS, EP_AUDIT_ALL,
                EP_CROSS_PROJECT };

/* ---- helpers shared with api_traces.c ---------------------------------------- */

int sx_api_fail(struct sx_api_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "error");
    sx_json_obj_open(&w);
    sx_json_key(&w, "code");
    sx_json_strz(&w, code);
    sx_json_key(&w, "message");
    sx_json_strz(&w, msg);
    sx_json_obj_close(&w);
    sx_json_obj_close(&w);
    r->status = status;
    return SX_ERR;
}

char *sx_api_strf(struct sx_api_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = sx_arena_alloc(r->fr->arena, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

const char *sx_api_param1(struct sx_api_req *r, const char *key, int *bad)
{
    if (sx_api_query_count(&r->q, key) > 1) {
        sx_api_fail(r, 400, "bad_request", "parameter %s may be given only once", key);
        *bad = 1;
        return NULL;
    }
    const char *v = sx_api_query_get(&r->q, key);
    return v && *v ? v : NULL;
}

int sx_api_body_json(struct sx_api_req *r, struct sx_jv **out)
{
    char err[256];
    uint8_t *body = NULL;
    size_t len = 0;
    const char *ct = sx_fcgi_param(r->fr, "CONTENT_TYPE");
    if (ct && *ct && strncasecmp(ct, "application/json", 16) != 0)
        return sx_api_fail(r, 415, "unsupported_media_type", "send the body as application/json");
    int rc = sx_fcgi_read_body(r->fr, BODY_MAX, &body, &len);
    if (rc == SX_AGAIN) return sx_api_fail(r, 413, "too_large", "body over %zu bytes", BODY_MAX);
    if (rc != SX_OK) return sx_api_fail(r, 400, "bad_request", "could not read the body");
    if (len == 0) return sx_api_fail(r, 400, "bad_request", "a JSON body is required");
    if (sx_jv_parse((const char *)body, len, NULL, r->fr->arena, out, err, sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    return SX_OK;
}

/* One-line copy of a libpq message for the log. */
static const char *one_line(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg ? msg : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
    return buf;
}

/* SQLSTATE classes that mean "try again later" rather than a bug. */
static int transient_sqlstate(const char *st)
{
    if (!st) return 0;
    return strncmp(st, "08", 2) == 0 ||     /* connection exception */
           strncmp(st, "53", 2) == 0 ||     /* insufficient resources */
           strncmp(st, "57", 2) == 0 ||     /* operator intervention, query_canceled (timeout) */
           strncmp(st, "40", 2) == 0;       /* serialization / deadlock */
}

PGresult *sx_api_exec(struct sx_api_req *r, const char *sql, int nparams, const char *const *params, const char *what)
{
    char tmp[512];
    for (int attempt = 0;; attempt++) {
        PGconn *conn = *r->pgp;
        PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            r->may_retry = 0;
            return res;
        }
        /* A copy: the field lives in res, which is cleared before it is read below. */
        char statebuf[8] = "";
        const char *field = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (field) snprintf(statebuf, sizeof(statebuf), "%s", field);
        const char *state = field ? statebuf : NULL;
        int gone = PQstatus(conn) == CONNECTION_BAD;
        int transient = gone || transient_sqlstate(state);
        sx_rwarn(r->reqid, "%s failed: %s%s%s", what, state ? state : "", state ? " " : "",
                 one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQclear(res);
        /* A connection that died while idle (server restart) is redialled
         * once, but only before this request sent anything. */
        if (gone && r->may_retry && attempt == 0 && sx_pg_ensure(r->pgp, r->cfg->pg_conninfo) == SX_OK) continue;
        if (transient) sx_api_fail(r, 503, "unavailable", "the database is unavailable, retry later");
        else if (state && strncmp(state, "22", 2) == 0) /* data exception: a value PostgreSQL refused */
            sx_api_fail(r, 400, "bad_request", "invalid parameter value");
        else sx_api_fail(r, 500, "internal", "internal error");
        return NULL;
    }
}

/* ---- authentication and projects ---------------------------------------------- */

static struct token_entry *cache_find(struct api_thread *t, const uint8_t *hash, int64_t now)
{
    for (int i = 0; i < TOKEN_CACHE_SIZE; i++) {
        struct token_entry *e = &t->tokens[i];
        if (e->expires_mono > now && memcmp(e->hash, hash, SX_SHA256_LEN) == 0) {
            e->used = ++t->tick;
            return e;
        }
    }
    return NULL;
}

static void cache_put(struct api_thread *t, const uint8_t *hash, int known, int token_id, int project_id, int64_t now)
{
    struct token_entry *victim = &t->tokens[0];
    for (int i = 0; i < TOKEN_CACHE_SIZE; i++) {
        struct token_entry *e = &t->tokens[i];
        if (e->expires_mono <= now) {
            victim = e;
            break;
        }
        if (e->used < victim->used) victim = e;
    }
    memcpy(victim->hash, hash, SX_SHA256_LEN);
    victim->expires_mono = now + TOKEN_CACHE_TTL_NS;
    victim->used = ++t->tick;
    victim->known = known;
    victim->token_id = token_id;
    victim->project_id = project_id;
}

/* Authenticates the request: Authorization: Bearer (a project token, or a
 * user's personal access token), else the sx_session cookie. Fills r's auth
 * fields and, for a user, their memberships. SX_ERR with a 401 or 503 set. */
static int authenticate(struct sx_api_req *r, struct api_thread *t)
{
    size_t len = 0;
    const char *tok = sx_auth_bearer(sx_fcgi_param(r->fr, "HTTP_AUTHORIZATION"), &len);
    uint8_t hash[SX_SHA256_LEN];
    int64_t now = sx_mono_ns();
    struct sx_auth_io io;
    sx_api_auth_io(r, &io);

    if (!tok) {
        const char *cookie = sx_api_cookie(r, "sx_session");
        if (!cookie) return sx_api_fail(r, 401, "unauthorized", "missing bearer token or session");
        if (sx_auth_session(&io, &r->who, cookie, strlen(cookie)) != SX_OK) return SX_ERR;
        return sx_auth_roles(&io, &r->who);
    }
    if (len > MAX_TOKEN_LEN) return sx_api_fail(r, 401, "unauthorized", "invalid token");
    sx_sha256(tok, len, hash);

    struct token_entry *e = cache_find(t, hash, now);
    if (e) {
        if (!e->known) return sx_api_fail(r, 401, "unauthorized", "invalid token");
        r->auth = SX_AUTH_PROJECT_TOKEN;
        r->token_id = e->token_id;
        r->token_project_id = e->project_id;
        return SX_OK;
    }
    int rc = sx_auth_token(&io, &r->who, tok, len);
    if (rc == SX_AGAIN) cache_put(t, hash, 0, 0, 0, now);
    else if (rc == SX_OK && r->auth == SX_AUTH_PROJECT_TOKEN) cache_put(t, hash, 1, r->token_id, r->token_project_id, now);
    return rc == SX_OK ? SX_OK : SX_ERR;
}

/* The CSRF wall for requests authenticated by the session cookie (a
 * browser sends the cookie by itself; it sends neither a bearer token nor
 * X-CSRF-Token by itself): a state-changing method needs X-CSRF-Token equal
 * to the session's token, and an Origin header, when present, naming this
 * site. SX_ERR with a 403 set. */
static int csrf_check(struct sx_api_req *r)
{
    const char *m = r->method;
    if (r->auth != SX_AUTH_SESSION ||
        !(strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0 || strcmp(m, "DELETE") == 0))
        return SX_OK;
    if (!sx_api_origin_ok(r)) return sx_api_fail(r, 403, "csrf", "cross-site request refused (Origin)");
    const char *h = sx_fcgi_param(r->fr, "HTTP_X_CSRF_TOKEN");
    size_t n = h ? strlen(h) : 0, want = strlen(r->csrf_token);
    /* Constant time over the expected length. */
    unsigned diff = n != want;
    for (size_t i = 0; i < want; i++) diff |= (unsigned)(unsigned char)r->csrf_token[i] ^ (unsigned)(i < n ? (unsigned char)h[i] : 0);
    if (!h || diff) return sx_api_fail(r, 403, "csrf", "missing or wrong X-CSRF-Token header");
    return SX_OK;
}

/* For a user: finds {project} (id or slug) among the projects the user may
 * see (memberships; every project for an instance admin) and puts it in
 * allowed[0]. 404 when it is missing or not theirs. */
static int user_project(struct sx_api_req *r, const char *seg, int *allowed, size_t *nallowed)
{
    struct sx_auth_io io;
    int pid = 0;
    sx_api_auth_io(r, &io);
    if (sx_auth_project(&io, &r->who, seg, &pid) != SX_OK) return SX_ERR;
    allowed[0] = pid;
    *nallowed = 1;
    return SX_OK;
}

/* Resolves {project} (id or slug) among the allowed projects into
 * r->project_id. Missing and forbidden look the same: 404. */
static int resolve_project(struct sx_api_req *r, const char *seg, const int *allowed, size_t nallowed)
{
    char list[SX_API_MAX_PROJECTS * 12 + 3];
    size_t off = 0;
    long long id = 0;
    int numeric = strspn(seg, "0123456789") == strlen(seg);
    PGresult *res = NULL;
    int rc = SX_ERR;

    if (nallowed == 0 || (numeric && sx_api_parse_int(seg, 1, INT_MAX, &id) != SX_OK) || (!numeric && !sx_auth_slug_ok(seg)))
        return sx_api_fail(r, 404, "not_found", "project not found");
    list[off++] = '{';
    for (size_t i = 0; i < nallowed; i++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%d", i ? "," : "", allowed[i]);
        if (n < 0 || (size_t)n >= sizeof(list) - off) return sx_api_fail(r, 500, "internal", "internal error");
        off += (size_t)n;
    }
    list[off++] = '}';
    list[off] = '\0';

    const char *params[2] = {seg, list};
    res = sx_api_exec(r,
                      numeric ? "SELECT id, slug FROM projects WHERE id = $1::integer AND id = ANY ($2::integer[])"
                              : "SELECT id, slug FROM projects WHERE slug = $1 AND id = ANY ($2::integer[])",
                      2, params, "SELECT projects");
    if (!res) goto out;
    if (PQntuples(res) != 1) {
        sx_api_fail(r, 404, "not_found", "project not found");
        goto out;
    }
    r->project_id = atoi(PQgetvalue(res, 0, 0));
    if (!(r->project_slug = sx_arena_strndup(r->fr->arena, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1)))) {
        sx_api_fail(r, 500, "internal", "out of memory");
        goto out;
    }
    rc = SX_OK;
out:
    PQclear(res);
    return rc;
}

/* Opens the request's transaction, limited by row-level security to the
 * allowed projects: READ ONLY as sextant_reader, or, for a write route
 * (r->write), read-write as sextant_issue_writer. */
static int begin_txn(struct sx_api_req *r, const int *allowed, size_t nallowed)
{
    char csv[SX_API_MAX_PROJECTS * 12 + 1];
    size_t off = 0;
    PGresult *res = NULL;

    csv[0] = '\0';
    for (size_t i = 0; i < nallowed; i++) {
        int n = snprintf(csv + off, sizeof(csv) - off, "%s%d", i ? "," : "", allowed[i]);
        if (n < 0 || (size_t)n >= sizeof(csv) - off) return sx_api_fail(r, 500, "internal", "internal error");
        off += (size_t)n;
    }
    res = sx_api_exec(r, r->write ? "BEGIN" : "BEGIN READ ONLY", 0, NULL, "BEGIN");
    if (!res) return SX_ERR;
    PQclear(res);
    char setrole[64];
    snprintf(setrole, sizeof(setrole), "SET LOCAL ROLE %s", r->txn_role);
    res = sx_api_exec(r, setrole, 0, NULL, setrole);
    if (!res) return SX_ERR;
    PQclear(res);
    res = sx_api_exec(r, "SET LOCAL statement_timeout = 15000", 0, NULL, "SET statement_timeout");
    if (!res) return SX_ERR;
    PQclear(res);
    const char *params[1] = {csv};
    /* No JIT: the searches are planned to stop after a page of rows, but a
     * high cost estimate (a range of many rows) would make PostgreSQL spend
     * 80-100 ms here compiling expressions before the first row. */
    res = sx_api_exec(r, "SELECT set_config('sextant.project_ids', $1, true), set_config('jit', 'off', true)", 1,
                      params, "set_config");
    if (!res) return SX_ERR;
    PQclear(res);
    return SX_OK;
}

/* Ends the transaction: COMMIT after success, ROLLBACK otherwise. */
static void end_txn(struct sx_api_req *r)
{
    PGconn *conn = *r->pgp;
    if (!conn || PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) == PQTRANS_IDLE) return;
    if (r->status >= 200 && r->status < 300) {
        PGresult *res = sx_api_exec(r, "COMMIT", 0, NULL, "COMMIT");
        PQclear(res);
        if (res) return; /* on failure sx_api_exec set the error response */
    }
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        sx_pg_exec(conn, "ROLLBACK", "ROLLBACK");
}

/* ---- endpoints outside the project scope -------------------------------------- */

static void health(struct sx_api_req *r)
{
    struct sx_json w;
    PGresult *res = NULL;
    int ok = sx_pg_ensure(r->pgp, r->cfg->pg_conninfo) == SX_OK;
    if (ok) {
        if (PQtransactionStatus(*r->pgp) != PQTRANS_IDLE) sx_pg_exec(*r->pgp, "ROLLBACK", "ROLLBACK");
        r->may_retry = 1;
        res = sx_api_exec(r, "SELECT 1", 0, NULL, "SELECT 1");
        ok = res != NULL;
        PQclear(res);
    }
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "status");
    sx_json_strz(&w, ok ? "ok" : "unavailable");
    sx_json_obj_close(&w);
    r->status = ok ? 200 : 503;
}

/* ---- routing ------------------------------------------------------------------ */

/* Splits path below /api/v1/ into segments (arena copies). Returns the count,
 * or -1 when the path is not under /api/v1/ or has too many segments. */
static int split_path(struct sx_api_req *r, const char *path, char **seg)
{
    static const char base[] = "/api/v1/";
    if (strncmp(path, base, sizeof(base) - 1) != 0) return -1;
    const char *p = path + sizeof(base) - 1;
    char *copy = sx_arena_strndup(r->fr->arena, p, strlen(p));
    if (!copy) return -1;
    int n = 0;
    for (char *s = copy;;) {
        char *slash = strchr(s, '/');
        if (n == MAX_SEGMENTS) return -1;
        seg[n++] = s;
        if (!slash) break;
        *slash = '\0';
        s = slash + 1;
    }
    return n;
}

static enum endpoint route(int n, char **seg)
{
    if (n == 1 && strcmp(seg[0], "health") == 0) return EP_HEALTH;
    if (n == 2 && strcmp(seg[0], "auth") == 0 && strcmp(seg[1], "login") == 0) return EP_LOGIN;
    if (n == 2 && strcmp(seg[0], "auth") == 0 && strcmp(seg[1], "logout") == 0) return EP_LOGOUT;
    if (n == 1 && strcmp(seg[0], "me") == 0) return EP_ME;
    if (n == 2 && strcmp(seg[0], "me") == 0 && strcmp(seg[1], "tokens") == 0) return EP_ME_TOKENS;
    if (n == 3 && strcmp(seg[0], "me") == 0 && strcmp(seg[1], "tokens") == 0 && *seg[2]) return EP_ME_TOKEN;
    if (n == 1 && strcmp(seg[0], "projects") == 0) return EP_PROJECTS;
    if (n == 1 && strcmp(seg[0], "audit") == 0) return EP_AUDIT_ALL;
    if (n == 2 && strcmp(seg[0], "analytics") == 0 && strcmp(seg[1], "cross-project") == 0) return EP_CROSS_PROJECT;
    if (n < 2 || strcmp(seg[0], "projects") != 0 || !*seg[1]) return EP_NONE;
    if (n == 2) return EP_PROJECT;
    if (n == 3 && strcmp(seg[2], "members") == 0) return EP_MEMBERS;
    if (n == 4 && strcmp(seg[2], "members") == 0 && *seg[3]) return EP_MEMBER;
    if (n == 3 && strcmp(seg[2], "keys") == 0) return EP_KEYS;
    if (n == 4 && strcmp(seg[2], "keys") == 0 && *seg[3]) return EP_KEY;
    if (n == 3 && strcmp(seg[2], "usage") == 0) return EP_USAGE;
    if (n == 3 && strcmp(seg[2], "audit") == 0) return EP_AUDIT;
    if (n == 3 && strcmp(seg[2], "traces") == 0) return EP_TRACES;
    if (n == 4 && strcmp(seg[2], "traces") == 0 && *seg[3]) return EP_TRACE;
    if (n == 3 && strcmp(seg[2], "services") == 0) return EP_SERVICES;
    if (n == 3 && strcmp(seg[2], "logs") == 0) return EP_LOGS;
    if (n == 4 && strcmp(seg[2], "logs") == 0 && strcmp(seg[3], "histogram") == 0) return EP_LOGS_HIST;
    if (n == 3 && strcmp(seg[2], "metrics") == 0) return EP_METRICS;
    if (n == 4 && strcmp(seg[2], "metrics") == 0 && strcmp(seg[3], "query") == 0) return EP_METRICS_QUERY;
    if (n == 5 && strcmp(seg[2], "metrics") == 0 && *seg[3] && strcmp(seg[4], "labels") == 0) return EP_METRIC_LABELS;
    if (n == 5 && strcmp(seg[2], "services") == 0 && *seg[3] && strcmp(seg[4], "performance") == 0) return EP_PERF;
    if (n == 5 && strcmp(seg[2], "services") == 0 && *seg[3] && strcmp(seg[4], "dependencies") == 0) return EP_DEPS;
    if (n == 5 && strcmp(seg[2], "services") == 0 && *seg[3] && strcmp(seg[4], "database") == 0) return EP_DATABASE;
    if (n == 3 && strcmp(seg[2], "service-map") == 0) return EP_SERVICE_MAP;
    if (n == 3 && strcmp(seg[2], "health") == 0) return EP_PROJECT_HEALTH;
    if (n == 3 && strcmp(seg[2], "overview") == 0) return EP_OVERVIEW;
    if (n == 3 && strcmp(seg[2], "dashboards") == 0) return EP_DASHBOARDS;
    if (n == 4 && strcmp(seg[2], "dashboards") == 0 && *seg[3]) return EP_DASHBOARD;
    if (n >= 3 && strcmp(seg[2], "errors") == 0) {
        if (n == 3) return EP_ERRORS;
        if (n == 4 && strcmp(seg[3], "stats") == 0) return EP_ERROR_STATS;
        if (n == 4 && strcmp(seg[3], "merge") == 0) return EP_ERROR_MERGE;
        if (n == 4 && *seg[3]) return EP_ERROR;
        if (n == 5 && *seg[3] && strcmp(seg[4], "events") == 0) return EP_ERROR_EVENTS;
    }
    return EP_NONE;
}

/* The methods an endpoint answers, as its Allow header lists them. */
static const char *endpoint_allow(enum endpoint ep)
{
    switch (ep) {
    case EP_ERRORS:
    case EP_ERROR: return "GET, HEAD, PATCH";
    case EP_ERROR_MERGE:
    case EP_LOGIN:
    case EP_LOGOUT: return "POST";
    case EP_ME_TOKENS:
    case EP_DASHBOARDS:
    case EP_PROJECTS:
    case EP_MEMBERS:
    case EP_KEYS: return "GET, HEAD, POST";
    case EP_ME_TOKEN:
    case EP_MEMBER:
    case EP_KEY: return "DELETE";
    case EP_PROJECT:
    case EP_DASHBOARD: return "GET, HEAD, PUT, DELETE";
    default: return "GET, HEAD";
    }
}

/* Whether method is one of the comma-separated list allow. */
static int method_allowed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    if (n == 0) return 0;
    for (const char *p = allow; (p = strstr(p, method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

/* The weakest role that may call ep with this method (README, "Roles"). */
static enum sx_api_role required_role(enum endpoint ep, int write, const char *method)
{
    switch (ep) {
    case EP_PROJECT:
        if (strcmp(method, "DELETE") == 0) return SX_ROLE_OWNER;
        return write ? SX_ROLE_ADMIN : SX_ROLE_VIEWER;
    case EP_MEMBERS: return write ? SX_ROLE_ADMIN : SX_ROLE_VIEWER;
    case EP_MEMBER:
    case EP_KEYS:
    case EP_KEY:
    case EP_AUDIT: return SX_ROLE_ADMIN;
    default: return write ? SX_ROLE_MEMBER : SX_ROLE_VIEWER;
    }
}

/* The database role of ep's transaction (sql/012, sql/015, sql/017): the
 * project administration routes and dashboard writes write as
 * sextant_project_writer, and so read the members list (users' emails);
 * triage writes as sextant_issue_writer; every other read as sextant_reader.
 * A static string. */
static const char *txn_role(enum endpoint ep, int write)
{
    if ((ep == EP_DASHBOARDS || ep == EP_DASHBOARD) && write) return "sextant_project_writer";
    if (ep == EP_PROJECT || ep == EP_MEMBERS || ep == EP_MEMBER || ep == EP_KEYS || ep == EP_KEY)
        return write || ep == EP_MEMBERS ? "sextant_project_writer" : "sextant_reader";
    return write ? "sextant_issue_writer" : "sextant_reader";
}

/* The start of a request that needs PostgreSQL and a caller: the
 * connection (503), authentication (401) and the CSRF wall (403). SX_ERR
 * with the error response set. */
static int request_start(struct sx_api_req *r, struct api_thread *t)
{
    if (sx_pg_ensure(r->pgp, r->cfg->pg_conninfo) != SX_OK)
        return sx_api_fail(r, 503, "unavailable", "the database is unavailable, retry later");
    if (PQtransactionStatus(*r->pgp) != PQTRANS_IDLE) sx_pg_exec(*r->pgp, "ROLLBACK", "ROLLBACK");
    r->may_retry = 1;
    if (authenticate(r, t) != SX_OK || csrf_check(r) != SX_OK) return SX_ERR;
    return SX_OK;
}

/* Parses QUERY_STRING into r->q; SX_ERR with a 400 set. */
static int parse_query(struct sx_api_req *r)
{
    char err[256];
    if (sx_api_query_parse(r->fr->arena, sx_fcgi_param(r->fr, "QUERY_STRING"), MAX_QUERY_PARAMS, &r->q, err,
                           sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    return SX_OK;
}

/* Runs a project-scoped endpoint: auth, project, transaction, handler. */
static void project_endpoint(struct sx_api_req *r, struct api_thread *t, enum endpoint ep, char **seg)
{
    int allowed[SX_API_MAX_PROJECTS];
    size_t nallowed = 0;

    if (request_start(r, t) != SX_OK) return;
    if (r->user_id > 0) {
        if (user_project(r, seg[1], allowed, &nallowed) != SX_OK) return;
    } else if (r->token_project_id > 0) {
        allowed[nallowed++] = r->token_project_id;
    }
    if (nallowed == 0) {
        sx_api_fail(r, 404, "not_found", "project not found");
        return;
    }
    r->role = sx_api_role(r, allowed[0]);
    enum sx_api_role need = required_role(ep, r->write, r->method);
    if (r->role < need) {
        sx_api_fail(r, 403, "forbidden", "your role on this project (%s) may not do this (%s or above)",
                     sx_api_role_name(r->role), sx_api_role_name(need));
        return;
    }
    r->txn_role = txn_role(ep, r->write);
    if (begin_txn(r, allowed, nallowed) != SX_OK || resolve_project(r, seg[1], allowed, nallowed) != SX_OK) {
        end_txn(r);
        return;
    }
    if (parse_query(r) == SX_OK) {
        switch (ep) {
        case EP_TRACES: sx_api_traces_list(r); break;
        case EP_TRACE: sx_api_trace_get(r, seg[3]); break;
        case EP_SERVICES: sx_api_services_list(r); break;
        case EP_LOGS: sx_api_logs_list(r); break;
        case EP_LOGS_HIST: sx_api_logs_histogram(r); break;
        case EP_METRICS: sx_api_metrics_list(r); break;
        case EP_METRICS_QUERY: sx_api_metrics_query(r); break;
        case EP_METRIC_LABELS: sx_api_metric_labels(r, seg[3]); break;
        case EP_PERF: sx_api_perf_service(r, seg[3]); break;
        case EP_DEPS: sx_api_perf_edges(r, seg[3]); break;
        case EP_DATABASE: sx_api_perf_database(r, seg[3]); break;
        case EP_SERVICE_MAP: sx_api_perf_edges(r, NULL); break;
        case EP_PROJECT_HEALTH: sx_api_perf_health(r); break;
        case EP_ERRORS: r->write ? sx_api_errors_patch(r, NULL) : sx_api_errors_list(r); break;
        case EP_ERROR_STATS: sx_api_errors_stats(r); break;
        case EP_ERROR_MERGE: sx_api_errors_merge(r); break;
        case EP_ERROR: r->write ? sx_api_errors_patch(r, seg[3]) : sx_api_error_get(r, seg[3]); break;
        case EP_ERROR_EVENTS: sx_api_error_events(r, seg[3]); break;
        case EP_PROJECT:
            if (strcmp(r->method, "PUT") == 0) sx_api_project_put(r);
            else if (strcmp(r->method, "DELETE") == 0) sx_api_project_delete(r);
            else sx_api_project_get(r);
            break;
        case EP_MEMBERS: r->write ? sx_api_member_put(r) : sx_api_members_list(r); break;
        case EP_MEMBER: sx_api_member_delete(r, seg[3]); break;
        case EP_KEYS: r->write ? sx_api_key_create(r) : sx_api_keys_list(r); break;
        case EP_KEY: sx_api_key_revoke(r, seg[3]); break;
        case EP_USAGE: sx_api_usage(r); break;
        case EP_AUDIT: sx_api_project_audit(r); break;
        case EP_OVERVIEW: sx_api_overview(r); break;
        case EP_DASHBOARDS: r->write ? sx_api_dashboard_create(r) : sx_api_dashboards_list(r); break;
        case EP_DASHBOARD:
            if (strcmp(r->method, "PUT") == 0) sx_api_dashboard_put(r, seg[3]);
            else if (strcmp(r->method, "DELETE") == 0) sx_api_dashboard_delete(r, seg[3]);
            else sx_api_dashboard_get(r, seg[3]);
            break;
        default: sx_api_fail(r, 404, "not_found", "no such endpoint"); break;
        }
    }
    end_txn(r);
    /* Only a committed change invalidates ingest's caches. */
    if (r->status >= 200 && r->status < 300 && (r->drop_settings_pid || r->ndrop_keys)) sx_api_drop_caches(r);
}

/* Runs an account endpoint (login, logout, me, tokens): as the login role,
 * outside the RLS transaction. */
static void account_endpoint(struct sx_api_req *r, struct api_thread *t, enum endpoint ep, char **seg)
{
    if (sx_pg_ensure(r->pgp, r->cfg->pg_conninfo) != SX_OK) {
        sx_api_fail(r, 503, "unavailable", "the database is unavailable, retry later");
        return;
    }
    if (PQtransactionStatus(*r->pgp) != PQTRANS_IDLE) sx_pg_exec(*r->pgp, "ROLLBACK", "ROLLBACK");
    r->may_retry = 1;
    if (ep == EP_LOGIN) {
        sx_api_login(r);
        return;
    }
    if (authenticate(r, t) != SX_OK || csrf_check(r) != SX_OK || parse_query(r) != SX_OK) return;
    switch (ep) {
    case EP_LOGOUT: sx_api_logout(r); break;
    case EP_ME: sx_api_me(r); break;
    case EP_ME_TOKENS: strcmp(r->method, "POST") == 0 ? sx_api_token_create(r) : sx_api_tokens_list(r); break;
    case EP_ME_TOKEN: sx_api_token_revoke(r, seg[2]); break;
    case EP_PROJECTS: strcmp(r->method, "POST") == 0 ? sx_api_project_create(r) : sx_api_projects_list(r); break;
    case EP_AUDIT_ALL: sx_api_audit_all(r); break;
    default: sx_api_fail(r, 404, "not_found", "no such endpoint"); break;
    }
}

/* The projects the caller may see, at most SX_API_MAX_PROJECTS of them
 * (lowest ids first; *truncated set when there were more): a project
 * token's own, a user's memberships, every project for an instance admin.
 * SX_ERR with the error response set. */
static int caller_projects(struct sx_api_req *r, int *ids, size_t *n, int *truncated)
{
    *n = 0;
    *truncated = 0;
    if (r->auth == SX_AUTH_PROJECT_TOKEN) {
        if (r->token_project_id > 0) ids[(*n)++] = r->token_project_id;
        return SX_OK;
    }
    if (!r->is_admin) {
        /* Memberships, sorted, the lowest SX_API_MAX_PROJECTS ids kept. */
        for (size_t i = 0; i < r->nmembers; i++) {
            int pid = r->members[i].project_id;
            size_t k = *n;
            if (k == SX_API_MAX_PROJECTS) {
                *truncated = 1;
                if (pid > ids[k - 1]) continue;
                k--;
            } else {
                (*n)++;
            }
            while (k > 0 && ids[k - 1] > pid) {
                ids[k] = ids[k - 1];
                k--;
            }
            ids[k] = pid;
        }
        return SX_OK;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", SX_API_MAX_PROJECTS + 1);
    const char *params[1] = {lim};
    PGresult *res = sx_api_exec(r, "SELECT id FROM projects ORDER BY id LIMIT $1::int", 1, params, "SELECT projects");
    if (!res) return SX_ERR;
    for (int i = 0; i < PQntuples(res); i++) {
        if (*n == SX_API_MAX_PROJECTS) {
            *truncated = 1;
            break;
        }
        ids[(*n)++] = atoi(PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return SX_OK;
}

/* Runs GET /analytics/cross-project: auth, the caller's projects, one READ
 * ONLY transaction as sextant_reader with sextant.project_ids set to all of
 * them, the handler. */
static void analytics_endpoint(struct sx_api_req *r, struct api_thread *t)
{
    int ids[SX_API_MAX_PROJECTS];
    size_t n = 0;
    int truncated = 0;

    if (request_start(r, t) != SX_OK || parse_query(r) != SX_OK) return;
    if (caller_projects(r, ids, &n, &truncated) != SX_OK) return;
    r->txn_role = "sextant_reader";
    if (begin_txn(r, ids, n) == SX_OK) sx_api_cross_project(r, ids, n, truncated);
    end_txn(r);
}

static void handle(struct sx_fcgi_req *fr, void *ctx)
{
    const struct sx_config *cfg = ctx;
    struct api_thread *t = fr->thread_state;
    struct sx_api_req r;
    char *seg[MAX_SEGMENTS];
    char headers[1400];

    memset(&r, 0, sizeof(r));
    r.fr = fr;
    r.cfg = cfg;
    r.pgp = &t->pg;
    r.redisp = &t->redis;
    r.out = &t->out;
    r.reqid = fr->reqid;
    r.now_ns = sx_now_ns();
    sx_buf_reset(r.out);

    const char *method = sx_fcgi_param(fr, "REQUEST_METHOD");
    const char *path = sx_fcgi_param(fr, "DOCUMENT_URI");
    if (!path || !*path) path = sx_fcgi_param(fr, "SCRIPT_NAME");
    if (!method) method = "";
    if (!path) path = "";

    int n = split_path(&r, path, seg);
    enum endpoint ep = n > 0 ? route(n, seg) : EP_NONE;
    const char *allow = endpoint_allow(ep);
    r.method = method;
    r.write = strcmp(method, "PATCH") == 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
              strcmp(method, "DELETE") == 0;
    if (ep == EP_NONE) sx_api_fail(&r, 404, "not_found", "no such endpoint");
    else if (!method_allowed(allow, method))
        sx_api_fail(&r, 405, "method_not_allowed", "method %.16s not allowed: use %s", method, allow);
    else if (ep == EP_HEALTH) health(&r);
    else if (ep == EP_CROSS_PROJECT) analytics_endpoint(&r, t);
    else if (ep >= EP_LOGIN) account_endpoint(&r, t, ep, seg);
    else project_endpoint(&r, t, ep, seg);

    if ((r.out->len == 0 && r.status != 204) || r.status == 0) sx_api_fail(&r, 500, "internal", "internal error");
    if (r.status >= 500) sx_rwarn(r.reqid, "%s %.200s: %d", method, path, r.status);
    else sx_rdebug(r.reqid, "%s %.200s: %d", method, path, r.status);

    /* r.headers may carry Retry-After (429, 503 of login) and Set-Cookie. */
    int own_retry = r.headers && strstr(r.headers, "Retry-After:") != NULL;
    snprintf(headers, sizeof(headers), "Cache-Control: no-store\r\n%s%s%s",
             r.status == 503 && !own_retry ? "Retry-After: 2\r\n"
             : r.status == 401            ? "WWW-Authenticate: Bearer\r\n"
                                          : "",
             r.status == 405 ? "Allow: " : "", r.status == 405 ? allow : "");
    if (r.status == 405) snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers), "\r\n");
    if (r.headers) snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers), "%s", r.headers);
    if (sx_fcgi_respond(fr, r.status, "application/json", headers, r.out->data, r.out->len) != SX_OK)
        sx_rdebug(r.reqid, "client went away before the response was written");
    if (t->out.cap > OUT_KEEP) {
        sx_buf_term(&t->out);
        sx_buf_init(&t->out, OUT_MAX);
    }
}

static void *thread_init(int thread_no, void *ctx)
{
    SX_UNUSED(thread_no);
    SX_UNUSED(ctx);
    struct api_thread *t = sx_xcalloc(1, sizeof(*t));
    sx_buf_init(&t->out, OUT_MAX);
    return t;
}

static void thread_term(void *state, void *ctx)
{
    SX_UNUSED(ctx);
    struct api_thread *t = state;
    if (!t) return;
    if (t->pg) PQfinish(t->pg);
    if (t->redis) redisFree(t->redis);
    sx_buf_term(&t->out);
    free(t);
}

/* ---- command line ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    sx_cli_usage(f, PROGRAM, "Serves the JSON API (/api/v1/...) over FastCGI.");
}

int main(int argc, char **argv)
{
    static struct sx_config cfg; /* read by every thread; written only here */
    struct sx_cli cli = {.program = PROGRAM};
    int rc = sx_cli_parse(&cli, argc, argv, &cfg, usage);
    if (rc >= 0) return rc;
    sx_cli_log_init(&cli, &cfg);
    if (sx_password_init() != SX_OK) {
        sx_error("sodium_init failed: libsodium cannot start");
        return 1;
    }

    /* Static: worker threads still read it while the process exits after
     * sx_fcgi_serve returns (threads parked on kept connections never join). */
    static struct sx_fcgi_server srv;
    srv.listen = cfg.api_listen;
    srv.threads = (int)cfg.api_threads;
    srv.backlog = 1024;
    srv.arena_chunk = 64 * 1024;
    srv.arena_max = 64u << 20;
    srv.thread_init = thread_init;
    srv.thread_term = thread_term;
    srv.handle = handle;
    srv.ctx = &cfg;
    return sx_fcgi_serve(&srv) == SX_OK ? 0 : 1;
}
