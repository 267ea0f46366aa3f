/* auth.c: bearer tokens, session cookies, memberships and the {project} of
 * a URL for sextant-api and sextant-sse; see auth.h. Moved out of
 * fcgi/api.c and fcgi/api_auth.c unchanged in behaviour. */
#include "auth.h"

#include "apiutil.h"
#include "keys.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sx_auth_hash_literal(const char *s, size_t n, char *lit)
{
    uint8_t h[SX_SHA256_LEN];
    sx_sha256(s, n, h);
    lit[0] = '\\';
    lit[1] = 'x';
    sx_hex_encode(h, sizeof(h), lit + 2);
}

const char *sx_auth_bearer(const char *h, size_t *len)
{
    if (!h) return NULL;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n == 0) return NULL;
    *len = n;
    return h;
}

const char *sx_auth_cookie(struct sx_arena *a, const char *h, const char *name)
{
    size_t nlen = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == '\t' || *h == ';') h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nlen && strncmp(h, name, nlen) == 0 && h[nlen] == '=') {
            const char *v = h + nlen + 1;
            size_t vlen = len - nlen - 1;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
            return vlen ? sx_arena_strndup(a, v, vlen) : NULL;
        }
        h = end;
    }
    return NULL;
}

int sx_auth_slug_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'))) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

enum sx_api_role sx_auth_role_parse(const char *s)
{
    if (strcmp(s, "viewer") == 0) return SX_ROLE_VIEWER;
    if (strcmp(s, "member") == 0) return SX_ROLE_MEMBER;
    if (strcmp(s, "admin") == 0) return SX_ROLE_ADMIN;
    if (strcmp(s, "owner") == 0) return SX_ROLE_OWNER;
    return SX_ROLE_NONE;
}

enum sx_api_role sx_auth_role(const struct sx_auth_caller *c, int project_id)
{
    if (c->auth == SX_AUTH_PROJECT_TOKEN) return project_id == c->token_project_id ? SX_ROLE_MEMBER : SX_ROLE_NONE;
    if (c->auth != SX_AUTH_SESSION && c->auth != SX_AUTH_USER_TOKEN) return SX_ROLE_NONE;
    if (c->is_admin) return SX_ROLE_INSTANCE_ADMIN;
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members[i].project_id == project_id) return c->members[i].role;
    return SX_ROLE_NONE;
}

int sx_auth_token(const struct sx_auth_io *io, struct sx_auth_caller *c, const char *tok, size_t len)
{
    char lit[2 * SX_SHA256_LEN + 3];
    if (len > SX_AUTH_TOKEN_MAX) {
        io->fail(io->ud, 401, "unauthorized", "invalid token");
        return SX_AGAIN;
    }
    sx_auth_hash_literal(tok, len, lit);
    const char *params[1] = {lit};
    PGresult *res = io->exec(io->ud,
                             "SELECT t.id, t.project_id, t.user_id, u.is_admin, u.email, "
                             "t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute', "
                             "u.disabled_at IS NOT NULL "
                             "FROM access_tokens t LEFT JOIN users u ON u.id = t.user_id "
                             "WHERE t.token_hash = $1::bytea AND t.revoked_at IS NULL "
                             "AND (t.expires_at IS NULL OR t.expires_at > now())",
                             1, params, "SELECT access_tokens");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        io->fail(io->ud, 401, "unauthorized", "invalid token");
        return SX_AGAIN;
    }
    if (PQgetvalue(res, 0, 6)[0] == 't') {
        /* A disabled user's token: refused, but not SX_AGAIN, which callers
         * may remember as unknown: `user enable` brings it back at once. */
        PQclear(res);
        return io->fail(io->ud, 401, "unauthorized", "invalid token");
    }
    c->token_id = atoi(PQgetvalue(res, 0, 0));
    if (PQgetisnull(res, 0, 2)) {
        /* A project token (project_id set), or an orphan that reads nothing. */
        c->auth = SX_AUTH_PROJECT_TOKEN;
        c->token_project_id = PQgetisnull(res, 0, 1) ? 0 : atoi(PQgetvalue(res, 0, 1));
        PQclear(res);
        return SX_OK;
    }
    c->auth = SX_AUTH_USER_TOKEN;
    c->user_id = atoi(PQgetvalue(res, 0, 2));
    c->is_admin = PQgetvalue(res, 0, 3)[0] == 't';
    c->user_email = sx_arena_strndup(io->arena, PQgetvalue(res, 0, 4), (size_t)PQgetlength(res, 0, 4));
    int stale = PQgetvalue(res, 0, 5)[0] == 't';
    PQclear(res);
    if (!c->user_email) return io->fail(io->ud, 500, "internal", "out of memory");
    if (stale) {
        char tid[16];
        snprintf(tid, sizeof(tid), "%d", c->token_id);
        const char *p2[1] = {tid};
        res = io->exec(io->ud, "UPDATE access_tokens SET last_used_at = now() WHERE id = $1::int", 1, p2,
                       "UPDATE access_tokens");
        if (!res) return SX_ERR;
        PQclear(res);
    }
    return sx_auth_roles(io, c);
}

int sx_auth_session(const struct sx_auth_io *io, struct sx_auth_caller *c, const char *token, size_t len)
{
    char lit[2 * SX_SHA256_LEN + 3];
    if (len > SX_KEY_MAX) return io->fail(io->ud, 401, "unauthorized", "invalid session");
    sx_auth_hash_literal(token, len, lit);
    const char *params[1] = {lit};
    PGresult *res = io->exec(io->ud,
                             "SELECT s.id, s.user_id, s.csrf_token, s.last_seen_at < now() - interval '1 minute', "
                             "u.is_admin, u.email FROM sessions s JOIN users u ON u.id = s.user_id "
                             "WHERE s.token_hash = $1::bytea AND s.revoked_at IS NULL AND s.expires_at > now() "
                             "AND u.disabled_at IS NULL",
                             1, params, "SELECT sessions");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return io->fail(io->ud, 401, "unauthorized", "session expired or unknown: log in again");
    }
    c->auth = SX_AUTH_SESSION;
    c->session_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    c->user_id = atoi(PQgetvalue(res, 0, 1));
    c->csrf_token = sx_arena_strndup(io->arena, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
    int stale = PQgetvalue(res, 0, 3)[0] == 't';
    c->is_admin = PQgetvalue(res, 0, 4)[0] == 't';
    c->user_email = sx_arena_strndup(io->arena, PQgetvalue(res, 0, 5), (size_t)PQgetlength(res, 0, 5));
    PQclear(res);
    if (!c->csrf_token || !c->user_email) return io->fail(io->ud, 500, "internal", "out of memory");
    if (stale) {
        char sid[24];
        snprintf(sid, sizeof(sid), "%lld", c->session_id);
        const char *p2[1] = {sid};
        res = io->exec(io->ud, "UPDATE sessions SET last_seen_at = now() WHERE id = $1::bigint", 1, p2,
                       "UPDATE sessions");
        if (!res) return SX_ERR;
        PQclear(res);
    }
    return SX_OK;
}

int sx_auth_roles(const struct sx_auth_io *io, struct sx_auth_caller *c)
{
    char uid[16];
    snprintf(uid, sizeof(uid), "%d", c->user_id);
    const char *params[1] = {uid};
    PGresult *res = io->exec(io->ud, "SELECT project_id, role FROM project_members WHERE user_id = $1::int", 1, params,
                             "SELECT project_members");
    if (!res) return SX_ERR;
    int n = PQntuples(res);
    c->nmembers = 0;
    c->members = n ? sx_arena_alloc(io->arena, (size_t)n * sizeof(*c->members)) : NULL;
    if (n && !c->members) {
        PQclear(res);
        return io->fail(io->ud, 500, "internal", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        c->members[c->nmembers].project_id = atoi(PQgetvalue(res, i, 0));
        c->members[c->nmembers].role = sx_auth_role_parse(PQgetvalue(res, i, 1));
        c->nmembers++;
    }
    PQclear(res);
    return SX_OK;
}

int sx_auth_project(const struct sx_auth_io *io, const struct sx_auth_caller *c, const char *seg, int *project_id)
{
    long long id = 0;
    int numeric = strspn(seg, "0123456789") == strlen(seg);
    *project_id = 0;
    if ((numeric && sx_api_parse_int(seg, 1, INT_MAX, &id) != SX_OK) || (!numeric && !sx_auth_slug_ok(seg)))
        return io->fail(io->ud, 404, "not_found", "project not found");
    const char *params[1] = {seg};
    PGresult *res = io->exec(io->ud,
                             numeric ? "SELECT id FROM projects WHERE id = $1::integer"
                                     : "SELECT id FROM projects WHERE slug = $1",
                             1, params, "SELECT projects");
    if (!res) return SX_ERR;
    int pid = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    if (!pid || sx_auth_role(c, pid) == SX_ROLE_NONE) return io->fail(io->ud, 404, "not_found", "project not found");
    *project_id = pid;
    return SX_OK;
}
