/* auth.h: who is calling the JSON API and the live stream, shared by
 * sextant-api and sextant-sse so that both authenticate the same way:
 * "Authorization: Bearer" (a project's access token or a user's personal
 * access token) or the dashboard's sx_session cookie, then the user's
 * project memberships and the {project} of the URL (README: "Roles").
 *
 * The statements run on the caller's connection through the caller's exec
 * hook (sx_auth_io), so each program keeps its own error mapping (503 when
 * PostgreSQL is gone, redial once before anything was sent...). They run as
 * the program's login role outside any RLS transaction: it needs what
 * sql/014_api_auth.sql grants to sextant_auth and SELECT on access_tokens
 * and projects. */
#ifndef SX_AUTH_H
#define SX_AUTH_H

#include "arena.h"
#include "sx.h"

#include <libpq-fe.h>

/* What a caller may do on a project, weakest first. A project token acts as
 * a member of its own project; instance admins may do everything. */
enum sx_api_role {
    SX_ROLE_NONE = 0,
    SX_ROLE_VIEWER,
    SX_ROLE_MEMBER,
    SX_ROLE_ADMIN,
    SX_ROLE_OWNER,
    SX_ROLE_INSTANCE_ADMIN
};

/* How the request authenticated. */
enum sx_api_auth {
    SX_AUTH_NONE = 0,
    SX_AUTH_PROJECT_TOKEN, /* Authorization: Bearer, a project's access token */
    SX_AUTH_USER_TOKEN,    /* Authorization: Bearer, a user's personal access token */
    SX_AUTH_SESSION        /* the dashboard's sx_session cookie */
};

/* One project membership of the request's user. */
struct sx_api_member {
    int project_id;
    enum sx_api_role role;
};

/* The caller's fields, as a list so that sextant-api's request can hold
 * them both by name and as a struct sx_auth_caller (api_int.h). */
#define SX_AUTH_CALLER_FIELDS                                                                                       \
    enum sx_api_auth auth;                                                                                          \
    int token_id;               /* access_tokens.id of a bearer token */                                            \
    int token_project_id;       /* a project token's project */                                                     \
    int user_id;                /* the user of a session or personal token; 0 otherwise */                          \
    int is_admin;               /* that user is an instance admin */                                                \
    long long session_id;       /* sessions.id when by cookie */                                                    \
    const char *csrf_token;     /* that session's CSRF token (arena) */                                             \
    const char *user_email;     /* the user's email (arena) */                                                      \
    struct sx_api_member *members; /* the user's memberships (arena) */                                             \
    size_t nmembers;

/* Who is asking; filled by the functions below (strings in io's arena). */
struct sx_auth_caller {
    SX_AUTH_CALLER_FIELDS
};

/* How the functions below reach the caller's program. */
struct sx_auth_io {
    struct sx_arena *arena;
    /* Runs a parameterized query; returns a TUPLES_OK/COMMAND_OK result the
     * function clears, or NULL after setting the error response itself. */
    PGresult *(*exec)(void *ud, const char *sql, int nparams, const char *const *params, const char *what);
    /* Sets an error response (status, code, message); returns SX_ERR. */
    int (*fail)(void *ud, int status, const char *code, const char *msg);
    void *ud;
};

#define SX_AUTH_TOKEN_MAX 256 /* longest bearer token looked up */

/* The token of "Authorization: Bearer <token>" in header h (not copied),
 * its length in *len; NULL when absent or another scheme. */
const char *sx_auth_bearer(const char *h, size_t *len);
/* The value of cookie name in a Cookie header (an arena copy), or NULL. */
const char *sx_auth_cookie(struct sx_arena *a, const char *header, const char *name);
/* Writes "\x<hex of sha256(s)>", a bytea literal, into lit (at least
 * 2 * SX_SHA256_LEN + 3 bytes). Cannot fail. */
void sx_auth_hash_literal(const char *s, size_t n, char *lit);
/* Whether s is a well-formed project slug (lower-case letters, digits, '-'). */
int sx_auth_slug_ok(const char *s);

/* Looks a bearer token up: fills c for a project token (SX_AUTH_PROJECT_TOKEN)
 * or a personal token (SX_AUTH_USER_TOKEN, with the memberships loaded, and
 * last_used_at touched at most once a minute). SX_OK; SX_AGAIN when the
 * token is unknown, revoked or expired (401 set: it stays so, a caller may
 * remember it); SX_ERR otherwise (the error response set; a 401 for a
 * disabled user's token, which `user enable` can make valid again). */
int sx_auth_token(const struct sx_auth_io *io, struct sx_auth_caller *c, const char *tok, size_t len);
/* Looks the session cookie's token up (not expired, not revoked, user not
 * disabled) and fills c's user fields; touches last_seen_at at most once a
 * minute. SX_OK, or SX_ERR with a 401 (or 503) set. */
int sx_auth_session(const struct sx_auth_io *io, struct sx_auth_caller *c, const char *token, size_t len);
/* Loads the user's memberships into c->members. SX_ERR with a 503/500 set. */
int sx_auth_roles(const struct sx_auth_io *io, struct sx_auth_caller *c);

/* The caller's role on project_id (SX_ROLE_NONE when none). */
enum sx_api_role sx_auth_role(const struct sx_auth_caller *c, int project_id);
/* "viewer", "member"... as stored in project_members; SX_ROLE_NONE otherwise. */
enum sx_api_role sx_auth_role_parse(const char *s);

/* Finds the project named seg (id or slug) among those the caller may see
 * and puts its id in *project_id. SX_ERR with 404 set when it is missing or
 * not the caller's (the same answer, so existence does not leak), or with
 * the query's error. */
int sx_auth_project(const struct sx_auth_io *io, const struct sx_auth_caller *c, const char *seg, int *project_id);

#endif
