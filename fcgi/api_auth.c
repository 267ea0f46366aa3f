/* api_auth.c: sextant-api's users: login and logout (dashboard sessions),
 * /me, personal access tokens, the caller's roles, and the audit log.
 *
 * Sessions: login makes a random token (sx_key_generate "sxs", 32 random
 * bytes) that travels only in the sx_session cookie (HttpOnly, Secure,
 * SameSite=Strict, Path=/, Max-Age=session_ttl_s); only its SHA-256 is
 * stored. Each session has a CSRF token that the dashboard reads from the
 * login answer (or GET /me) and echoes in X-CSRF-Token on state-changing
 * requests (api.c checks it).
 *
 * Login throttling lives in Redis (where the other rate-limit buckets are):
 * failed logins count in "<prefix>:login:email:<sha256 of the lowercased
 * email>" and "<prefix>:login:ip:<REMOTE_ADDR>", each expiring
 * login_window_s after its first failure. At login_max_failures_email (or
 * _ip) further attempts get 429 with Retry-After (the key's TTL) before the
 * password is even looked at, so a correct password is refused too until
 * the window ends; a successful login clears the email's counter. Without
 * Redis, logins answer 503 (fail closed).
 *
 * Timing: an unknown email is verified against a dummy hash and a disabled
 * user's password is verified too, so the answer (401, one generic message)
 * and its time do not say whether the account exists.
 *
 * All statements here run as the API's login role, outside the RLS
 * transaction of project routes: it needs what sql/014_api_auth.sql grants
 * to sextant_auth. */
#include "api_int.h"

#include "keys.h"
#include "log.h"
#include "password.h"
#include "redis.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EMAIL_MAX 254
#define TOKEN_NAME_MAX 100
#define HEADERS_MAX 1024
#define RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---- roles --------------------------------------------------------------------- */

enum sx_api_role sx_api_role(const struct sx_api_req *r, int project_id)
{
    return sx_auth_role(&r->who, project_id);
}

const char *sx_api_role_name(enum sx_api_role role)
{
    switch (role) {
    case SX_ROLE_VIEWER: return "viewer";
    case SX_ROLE_MEMBER: return "member";
    case SX_ROLE_ADMIN: return "admin";
    case SX_ROLE_OWNER: return "owner";
    case SX_ROLE_INSTANCE_ADMIN: return "instance-admin";
    default: return "none";
    }
}

/* ---- request helpers ------------------------------------------------------------- */

int sx_api_add_header(struct sx_api_req *r, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) return SX_ERR;
    const char *old = r->headers ? r->headers : "";
    if (strlen(old) + (size_t)n + 3 > HEADERS_MAX) return SX_ERR;
    char *h = sx_api_strf(r, "%s%s\r\n", old, line);
    if (!h) return SX_ERR;
    r->headers = h;
    return SX_OK;
}

const char *sx_api_cookie(struct sx_api_req *r, const char *name)
{
    return sx_auth_cookie(r->fr->arena, sx_fcgi_param(r->fr, "HTTP_COOKIE"), name);
}

/* The length of the host name at the start of s ("host", "host:port",
 * "[v6]:port"): the port, and for an origin anything after, is left out. */
static size_t host_len(const char *s)
{
    if (*s == '[') {
        const char *e = strchr(s, ']');
        return e ? (size_t)(e - s) + 1 : strlen(s);
    }
    return strcspn(s, ":/");
}

/* Whether host name a (of length n) equals the host name in b. */
static int same_host(const char *a, size_t n, const char *b)
{
    return b && *b && host_len(b) == n && strncasecmp(a, b, n) == 0;
}

int sx_api_origin_ok(struct sx_api_req *r)
{
    const char *origin = sx_fcgi_param(r->fr, "HTTP_ORIGIN");
    if (!origin || !*origin) return 1;
    const char *oh = NULL;
    if (strncasecmp(origin, "https://", 8) == 0) oh = origin + 8;
    else if (strncasecmp(origin, "http://", 7) == 0) oh = origin + 7;
    if (!oh) return 0; /* "null" (sandboxed pages, redirects) and the like */
    size_t n = host_len(oh);
    if (n == 0 || (oh[n] != '\0' && oh[n] != ':')) return 0;
    /* Host names only: Debian's fastcgi_params passes HTTP_HOST as nginx's
     * $host, without the port, and SameSite cookies ignore ports too. A
     * cross-site page cannot set X-Forwarded-Host without a CORS preflight,
     * which this API never grants. */
    return same_host(oh, n, sx_fcgi_param(r->fr, "HTTP_HOST")) ||
           same_host(oh, n, sx_fcgi_param(r->fr, "HTTP_X_FORWARDED_HOST"));
}

/* REMOTE_ADDR, and "<X-Forwarded-For> via <REMOTE_ADDR>" when a proxy in
 * front of nginx passed one (recorded as given: it is not trusted). */
static const char *client_ip(struct sx_api_req *r)
{
    const char *ip = sx_fcgi_param(r->fr, "REMOTE_ADDR");
    const char *xff = sx_fcgi_param(r->fr, "HTTP_X_FORWARDED_FOR");
    if (!ip || !*ip) ip = "unknown";
    if (xff && *xff) {
        const char *both = sx_api_strf(r, "%.200s via %s", xff, ip);
        if (both) return both;
    }
    return ip;
}

int sx_api_audit(struct sx_api_req *r, const char *action, const char *target, int project_id,
                  const char *details, const char *actor_fallback)
{
    char uid[16], tid[16], pid[16], actor[300];
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    snprintf(tid, sizeof(tid), "%d", r->token_id);
    snprintf(pid, sizeof(pid), "%d", project_id);
    if (r->user_email) snprintf(actor, sizeof(actor), "%s", r->user_email);
    else if (r->token_id) snprintf(actor, sizeof(actor), "token:%d", r->token_id);
    else snprintf(actor, sizeof(actor), "%s", actor_fallback ? actor_fallback : "anonymous");
    const char *ua = sx_fcgi_param(r->fr, "HTTP_USER_AGENT");
    const char *params[9] = {r->user_id ? uid : NULL, r->token_id ? tid : NULL, actor, action, target,
                             details ? details : "{}", client_ip(r), ua, project_id ? pid : NULL};
    PGresult *res = PQexecParams(*r->pgp,
                                 "INSERT INTO audit_log (actor_user_id, actor_token_id, actor, action, target, details, "
                                 "ip, user_agent, project_id) VALUES ($1::int, $2::int, $3, $4, $5, $6::json, $7, "
                                 "left($8, 500), $9::int)",
                                 9, NULL, params, NULL, NULL, 0);
    int rc = SX_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        sx_rwarn(r->reqid, "INSERT audit_log (%s) failed: %s", action, PQerrorMessage(*r->pgp));
        rc = SX_ERR;
    }
    PQclear(res);
    return rc;
}

/* ---- authentication (lib/auth.c) ---------------------------------------------------- */

static PGresult *io_exec(void *ud, const char *sql, int nparams, const char *const *params, const char *what)
{
    return sx_api_exec(ud, sql, nparams, params, what);
}

static int io_fail(void *ud, int status, const char *code, const char *msg)
{
    return sx_api_fail(ud, status, code, "%s", msg);
}

void sx_api_auth_io(struct sx_api_req *r, struct sx_auth_io *io)
{
    io->arena = r->fr->arena;
    io->exec = io_exec;
    io->fail = io_fail;
    io->ud = r;
}

/* ---- login throttling (Redis) ------------------------------------------------------------ */

struct throttle {
    char email_key[256];
    char ip_key[256];
};

static void throttle_keys(struct sx_api_req *r, const char *email, struct throttle *t)
{
    char lower[EMAIL_MAX + 1], suffix[200];
    uint8_t h[SX_SHA256_LEN];
    char hex[2 * SX_SHA256_LEN + 1];
    size_t n = strnlen(email, EMAIL_MAX);
    for (size_t i = 0; i < n; i++) lower[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
    sx_sha256(lower, n, h);
    sx_hex_encode(h, sizeof(h), hex);
    snprintf(suffix, sizeof(suffix), "login:email:%s", hex);
    sx_redis_key(t->email_key, sizeof(t->email_key), r->cfg, suffix);
    snprintf(suffix, sizeof(suffix), "login:ip:%.64s", client_ip(r));
    sx_redis_key(t->ip_key, sizeof(t->ip_key), r->cfg, suffix);
}

static int redis_ready(struct sx_api_req *r)
{
    if (sx_redis_ensure(r->redisp, r->cfg, 500, 1000) == SX_OK) return SX_OK;
    sx_api_add_header(r, "Retry-After: %lld", r->cfg->retry_after_seconds);
    return sx_api_fail(r, 503, "unavailable", "login is unavailable, retry later");
}

/* SX_OK when the email and address may try; SX_ERR with 429 (and
 * Retry-After) or 503 set otherwise. */
static int throttle_check(struct sx_api_req *r, const struct throttle *t)
{
    if (redis_ready(r) != SX_OK) return SX_ERR;
    redisContext *c = *r->redisp;
    const char *keys[2] = {t->email_key, t->ip_key};
    long long max[2] = {r->cfg->login_max_failures_email, r->cfg->login_max_failures_ip};
    for (int i = 0; i < 2; i++) redisAppendCommand(c, "GET %s", keys[i]), redisAppendCommand(c, "TTL %s", keys[i]);
    long long count[2] = {0, 0}, ttl[2] = {0, 0};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
            ok = 0;
            break;
        }
        if (i % 2 == 0 && rep->type == REDIS_REPLY_STRING) count[i / 2] = strtoll(rep->str, NULL, 10);
        else if (i % 2 == 1 && rep->type == REDIS_REPLY_INTEGER) ttl[i / 2] = rep->integer;
        else if (rep->type == REDIS_REPLY_ERROR) ok = 0;
        freeReplyObject(rep);
    }
    if (!ok) {
        sx_redis_warn(c, "GET login throttle", NULL);
        if (c->err) {
            redisFree(c);
            *r->redisp = NULL;
        }
        sx_api_add_header(r, "Retry-After: %lld", r->cfg->retry_after_seconds);
        return sx_api_fail(r, 503, "unavailable", "login is unavailable, retry later");
    }
    long long wait = 0;
    for (int i = 0; i < 2; i++)
        if (count[i] >= max[i]) wait = ttl[i] > wait ? ttl[i] : wait;
    if (count[0] >= max[0] || count[1] >= max[1]) {
        if (wait < 1) wait = 1;
        sx_api_add_header(r, "Retry-After: %lld", wait);
        return sx_api_fail(r, 429, "too_many_requests", "too many failed logins: retry in %lld s", wait);
    }
    return SX_OK;
}

/* Counts a failed login on both keys; each window starts at its first failure. */
static void throttle_fail(struct sx_api_req *r, const struct throttle *t)
{
    if (sx_redis_ensure(r->redisp, r->cfg, 500, 1000) != SX_OK) return;
    redisContext *c = *r->redisp;
    const char *keys[2] = {t->email_key, t->ip_key};
    for (int i = 0; i < 2; i++) {
        redisAppendCommand(c, "INCR %s", keys[i]);
        redisAppendCommand(c, "EXPIRE %s %lld NX", keys[i], r->cfg->login_window_s);
    }
    for (int i = 0; i < 4; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
            sx_redis_warn(c, "INCR login throttle", NULL);
            break;
        }
        if (rep->type == REDIS_REPLY_ERROR) sx_redis_warn(c, "INCR login throttle", rep);
        freeReplyObject(rep);
    }
    if (c->err) {
        redisFree(c);
        *r->redisp = NULL;
    }
}

static void throttle_clear_email(struct sx_api_req *r, const struct throttle *t)
{
    if (sx_redis_ensure(r->redisp, r->cfg, 500, 1000) != SX_OK) return;
    redisReply *rep = redisCommand(*r->redisp, "DEL %s", t->email_key);
    if (!rep || rep->type == REDIS_REPLY_ERROR) sx_redis_warn(*r->redisp, "DEL login throttle", rep);
    if (rep) freeReplyObject(rep);
}

/* ---- endpoints --------------------------------------------------------------------------- */

/* A string member of the body: SX_ERR with a 400 when absent, not a string,
 * or longer than max. */
static int body_str(struct sx_api_req *r, const struct sx_jv *body, const char *key, size_t max, const char **out)
{
    const struct sx_jv *v = sx_jv_get(body, key);
    if (!v || v->type != SX_JV_STRING) return sx_api_fail(r, 400, "bad_request", "\"%s\" (a string) is required", key);
    if (v->len > max) return sx_api_fail(r, 400, "bad_request", "\"%s\" is longer than %zu bytes", key, max);
    *out = v->str;
    return SX_OK;
}

static void write_user(struct sx_json *w, const char *id, const char *email, const char *name, int admin)
{
    sx_json_obj_open(w);
    sx_json_key(w, "id");
    sx_json_int(w, strtoll(id, NULL, 10));
    sx_json_key(w, "email");
    sx_json_strz(w, email);
    sx_json_key(w, "name");
    sx_json_strz(w, name);
    sx_json_key(w, "isAdmin");
    sx_json_bool(w, admin);
    sx_json_obj_close(w);
}

int sx_api_login(struct sx_api_req *r)
{
    struct sx_jv *body;
    const char *email, *pw;
    struct throttle t;
    char details[96];

    if (!sx_api_origin_ok(r)) return sx_api_fail(r, 403, "csrf", "cross-site request refused (Origin)");
    if (sx_api_body_json(r, &body) != SX_OK) return SX_ERR;
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    if (body_str(r, body, "email", EMAIL_MAX, &email) != SX_OK ||
        body_str(r, body, "password", SX_PASSWORD_MAX, &pw) != SX_OK)
        return SX_ERR;
    size_t pwlen = sx_jv_get(body, "password")->len;
    throttle_keys(r, email, &t);
    if (throttle_check(r, &t) != SX_OK) return SX_ERR;

    const char *params[1] = {email};
    PGresult *res = sx_api_exec(r,
                                "SELECT id, email, name, password_hash, is_admin, disabled_at IS NOT NULL "
                                "FROM users WHERE lower(email) = lower($1)",
                                1, params, "SELECT users");
    if (!res) return SX_ERR;
    const char *reason = NULL;
    if (PQntuples(res) != 1) {
        sx_password_verify_dummy(pw, pwlen);
        reason = "unknown_user";
    } else if (sx_password_verify(PQgetvalue(res, 0, 3), pw, pwlen) != SX_OK) {
        reason = "bad_password";
    } else if (PQgetvalue(res, 0, 5)[0] == 't') {
        reason = "disabled";
    }
    if (reason) {
        if (PQntuples(res) == 1) r->user_id = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        throttle_fail(r, &t);
        snprintf(details, sizeof(details), "{\"reason\":\"%s\"}", reason);
        sx_api_audit(r, "auth.login_failed", email, 0, details, "anonymous");
        r->user_id = 0;
        return sx_api_fail(r, 401, "unauthorized", "invalid email or password");
    }
    throttle_clear_email(r, &t);

    char *uid = sx_api_strf(r, "%s", PQgetvalue(res, 0, 0));
    char *uemail = sx_api_strf(r, "%s", PQgetvalue(res, 0, 1));
    char *uname = sx_api_strf(r, "%s", PQgetvalue(res, 0, 2));
    int admin = PQgetvalue(res, 0, 4)[0] == 't';
    int rehash = sx_password_needs_rehash(PQgetvalue(res, 0, 3));
    PQclear(res);
    if (!uid || !uemail || !uname) return sx_api_fail(r, 500, "internal", "out of memory");
    if (rehash) {
        char h[SX_PASSWORD_HASH_MAX];
        if (sx_password_hash(pw, pwlen, h) == SX_OK) {
            const char *p2[2] = {uid, h};
            res = sx_api_exec(r, "UPDATE users SET password_hash = $2 WHERE id = $1::int", 2, p2, "UPDATE users");
            if (!res) return SX_ERR;
            PQclear(res);
        }
    }

    char token[SX_KEY_MAX], csrf[SX_KEY_MAX], lit[2 * SX_SHA256_LEN + 3], ttl[24];
    if (sx_key_generate("sxs", token, sizeof(token)) != SX_OK || sx_key_generate("sxc", csrf, sizeof(csrf)) != SX_OK)
        return sx_api_fail(r, 500, "internal", "no randomness");
    sx_auth_hash_literal(token, strlen(token), lit);
    snprintf(ttl, sizeof(ttl), "%lld", r->cfg->session_ttl_s);
    const char *ua = sx_fcgi_param(r->fr, "HTTP_USER_AGENT");
    const char *p3[6] = {uid, lit, csrf, ttl, client_ip(r), ua};
    res = sx_api_exec(r,
                      "INSERT INTO sessions (user_id, token_hash, csrf_token, expires_at, ip, user_agent) "
                      "VALUES ($1::int, $2::bytea, $3, now() + make_interval(secs => $4::bigint), $5, left($6, 500)) "
                      "RETURNING id, " RFC3339("expires_at"),
                      6, p3, "INSERT sessions");
    if (!res) return SX_ERR;
    char *expires = sx_api_strf(r, "%s", PQgetvalue(res, 0, 1));
    long long sid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    r->user_id = atoi(uid);
    r->user_email = uemail;
    snprintf(details, sizeof(details), "{\"sessionId\":%lld}", sid);
    sx_api_audit(r, "auth.login", uemail, 0, details, NULL);

    if (sx_api_add_header(r, "Set-Cookie: sx_session=%s; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=%lld",
                          token, r->cfg->session_ttl_s) != SX_OK)
        return sx_api_fail(r, 500, "internal", "out of memory");
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "user");
    write_user(&w, uid, uemail, uname, admin);
    sx_json_key(&w, "csrfToken");
    sx_json_strz(&w, csrf);
    sx_json_key(&w, "expiresAt");
    sx_json_strz(&w, expires);
    return sx_api_reply(r, &w);
}

int sx_api_logout(struct sx_api_req *r)
{
    if (r->auth != SX_AUTH_SESSION)
        return sx_api_fail(r, 400, "bad_request",
                           "logout ends a dashboard session; revoke a token with DELETE /api/v1/me/tokens/{id}");
    char sid[24], details[64];
    snprintf(sid, sizeof(sid), "%lld", r->session_id);
    const char *params[1] = {sid};
    PGresult *res = sx_api_exec(r, "UPDATE sessions SET revoked_at = now() WHERE id = $1::bigint AND revoked_at IS NULL",
                                1, params, "UPDATE sessions");
    if (!res) return SX_ERR;
    PQclear(res);
    snprintf(details, sizeof(details), "{\"sessionId\":%lld}", r->session_id);
    sx_api_audit(r, "auth.logout", r->user_email, 0, details, NULL);
    sx_api_add_header(r, "Set-Cookie: sx_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "ok");
    sx_json_bool(&w, true);
    return sx_api_reply(r, &w);
}

/* SX_ERR with a 403 when the caller is not a user (a project token). */
static int need_user(struct sx_api_req *r)
{
    if (r->user_id > 0) return SX_OK;
    return sx_api_fail(r, 403, "forbidden", "a project token has no user: use a session or a personal access token");
}

int sx_api_me(struct sx_api_req *r)
{
    char uid[16];
    if (need_user(r) != SX_OK) return SX_ERR;
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    const char *params[1] = {uid};
    PGresult *u = sx_api_exec(r, "SELECT id, email, name, is_admin FROM users WHERE id = $1::int", 1, params,
                              "SELECT users");
    if (!u) return SX_ERR;
    if (PQntuples(u) != 1) {
        PQclear(u);
        return sx_api_fail(r, 401, "unauthorized", "no such user");
    }
    PGresult *p = sx_api_exec(r,
                              r->is_admin ? "SELECT p.id, p.slug, p.name, m.role FROM projects p LEFT JOIN project_members m "
                                            "ON m.project_id = p.id AND m.user_id = $1::int ORDER BY p.id"
                                          : "SELECT p.id, p.slug, p.name, m.role FROM projects p JOIN project_members m "
                                            "ON m.project_id = p.id AND m.user_id = $1::int ORDER BY p.id",
                              1, params, "SELECT projects");
    if (!p) {
        PQclear(u);
        return SX_ERR;
    }
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "id");
    sx_json_int(&w, r->user_id);
    sx_json_key(&w, "email");
    sx_json_strz(&w, PQgetvalue(u, 0, 1));
    sx_json_key(&w, "name");
    sx_json_strz(&w, PQgetvalue(u, 0, 2));
    sx_json_key(&w, "isAdmin");
    sx_json_bool(&w, PQgetvalue(u, 0, 3)[0] == 't');
    sx_json_key(&w, "auth");
    sx_json_strz(&w, r->auth == SX_AUTH_SESSION ? "session" : "token");
    if (r->auth == SX_AUTH_SESSION) {
        sx_json_key(&w, "csrfToken");
        sx_json_strz(&w, r->csrf_token);
    }
    sx_json_key(&w, "projects");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(p); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "id");
        sx_json_int(&w, strtoll(PQgetvalue(p, i, 0), NULL, 10));
        sx_json_key(&w, "slug");
        sx_json_strz(&w, PQgetvalue(p, i, 1));
        sx_json_key(&w, "name");
        sx_json_strz(&w, PQgetvalue(p, i, 2));
        sx_json_key(&w, "role");
        sx_json_strz(&w, PQgetisnull(p, i, 3) ? "instance-admin" : PQgetvalue(p, i, 3));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(u);
    PQclear(p);
    return sx_api_reply(r, &w);
}

static void write_token(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    sx_json_key(w, "id");
    sx_json_int(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
    sx_json_key(w, "name");
    sx_json_strz(w, PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1));
    sx_json_key(w, "prefix");
    sx_json_strz(w, PQgetvalue(res, i, 2));
    static const char *const times[] = {"createdAt", "expiresAt", "lastUsedAt", "revokedAt"};
    for (int k = 0; k < 4; k++) {
        sx_json_key(w, times[k]);
        sx_json_strz(w, PQgetisnull(res, i, 3 + k) ? NULL : PQgetvalue(res, i, 3 + k));
    }
    sx_json_obj_close(w);
}

#define TOKEN_COLS                                                                                                     \
    "id, name, token_prefix, " RFC3339("created_at") ", " RFC3339("expires_at") ", " RFC3339("last_used_at") ", "      \
        RFC3339("revoked_at")

int sx_api_tokens_list(struct sx_api_req *r)
{
    char uid[16];
    if (need_user(r) != SX_OK) return SX_ERR;
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    const char *params[1] = {uid};
    PGresult *res = sx_api_exec(r, "SELECT " TOKEN_COLS " FROM access_tokens WHERE user_id = $1::int ORDER BY id", 1,
                                params, "SELECT access_tokens");
    if (!res) return SX_ERR;
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "tokens");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) write_token(&w, res, i);
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

int sx_api_token_create(struct sx_api_req *r)
{
    struct sx_jv *body;
    const char *name;
    long long days = 0;
    char uid[16], dtxt[24], token[SX_KEY_MAX], lit[2 * SX_SHA256_LEN + 3], prefix[13], details[300];
    if (need_user(r) != SX_OK) return SX_ERR;
    if (sx_api_body_json(r, &body) != SX_OK) return SX_ERR;
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    if (body_str(r, body, "name", TOKEN_NAME_MAX, &name) != SX_OK) return SX_ERR;
    if (!*name) return sx_api_fail(r, 400, "bad_request", "\"name\" must not be empty");
    const struct sx_jv *e = sx_jv_get(body, "expiresInDays");
    if (e && e->type != SX_JV_NULL && sx_jv_int(e, 1, 3650, &days) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "\"expiresInDays\" is a whole number from 1 to 3650, or null");
    for (const struct sx_jv *m = body->first; m; m = m->next)
        if (strcmp(m->key, "name") != 0 && strcmp(m->key, "expiresInDays") != 0)
            return sx_api_fail(r, 400, "bad_request", "unknown member \"%.64s\"", m->key);
    if (sx_key_generate("sxp", token, sizeof(token)) != SX_OK) return sx_api_fail(r, 500, "internal", "no randomness");
    sx_auth_hash_literal(token, strlen(token), lit);
    snprintf(prefix, sizeof(prefix), "%.12s", token);
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    snprintf(dtxt, sizeof(dtxt), "%lld", days);
    const char *params[5] = {uid, lit, prefix, name, days ? dtxt : NULL};
    PGresult *res = sx_api_exec(r,
                                "INSERT INTO access_tokens (user_id, token_hash, token_prefix, name, expires_at) "
                                "VALUES ($1::int, $2::bytea, $3, $4, now() + make_interval(days => $5::int)) "
                                "RETURNING " TOKEN_COLS,
                                5, params, "INSERT access_tokens");
    if (!res) return SX_ERR;
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "token");
    sx_json_strz(&w, token);
    sx_json_key(&w, "info");
    write_token(&w, res, 0);
    struct sx_json d;
    struct sx_buf db;
    sx_buf_init(&db, sizeof(details) - 1);
    sx_json_init(&d, &db);
    sx_json_obj_open(&d);
    sx_json_key(&d, "tokenId");
    sx_json_int(&d, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    sx_json_key(&d, "name");
    sx_json_strz(&d, name);
    sx_json_obj_close(&d);
    snprintf(details, sizeof(details), "%.*s", d.err ? 2 : (int)db.len, d.err ? "{}" : (const char *)db.data);
    sx_buf_term(&db);
    PQclear(res);
    sx_api_audit(r, "token.create", r->user_email, 0, details, NULL);
    int rc = sx_api_reply(r, &w);
    if (rc == SX_OK) r->status = 201;
    return rc;
}

int sx_api_token_revoke(struct sx_api_req *r, const char *id)
{
    long long tid;
    char uid[16], details[64];
    if (need_user(r) != SX_OK) return SX_ERR;
    if (sx_api_parse_int(id, 1, INT_MAX, &tid) != SX_OK) return sx_api_fail(r, 404, "not_found", "no such token");
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    const char *params[2] = {id, uid};
    PGresult *res = sx_api_exec(r,
                                "UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, now()) "
                                "WHERE id = $1::int AND user_id = $2::int RETURNING " TOKEN_COLS,
                                2, params, "UPDATE access_tokens");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return sx_api_fail(r, 404, "not_found", "no such token");
    }
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "token");
    write_token(&w, res, 0);
    PQclear(res);
    snprintf(details, sizeof(details), "{\"tokenId\":%lld}", tid);
    sx_api_audit(r, "token.revoke", r->user_email, 0, details, NULL);
    return sx_api_reply(r, &w);
}
