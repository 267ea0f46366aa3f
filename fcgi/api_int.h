/* api_int.h: what sextant-api's files share: the request context, response
 * helpers and the endpoint handlers. Not used outside fcgi/api*.c. */
#ifndef SX_API_INT_H
#define SX_API_INT_H

#include "apiutil.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "fcgi_server.h"
#include "json.h"
#include "jsonval.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#define SX_API_MAX_PROJECTS 64 /* projects one request may read at most */

/* One request. Lives on the handling thread's stack; arena memory from fr. */
struct sx_api_req {
    struct sx_fcgi_req *fr;
    const struct sx_config *cfg;
    PGconn **pgp;               /* the thread's connection; owned by the thread */
    int may_retry;              /* no query sent yet: a dead connection may be redialled */
    struct sx_api_query q;      /* parsed QUERY_STRING (arena memory) */
    struct sx_buf *out;         /* response body; owned by the thread */
    int status;                 /* HTTP status of the response in out */
    int project_id;             /* resolved {project}, once authorized */
    const char *project_slug;   /* its slug (arena memory) */
    const char *method;         /* REQUEST_METHOD */
    int write;                  /* a write route: a read-write transaction */
    const char *txn_role;       /* the transaction's database role (a static string) */
    int64_t now_ns;
    const char *reqid;
    redisContext **redisp;      /* the thread's Redis connection (login throttling); owned by the thread */
    const char *headers;        /* extra response headers ("Name: value\r\n"...), arena memory or NULL */

    /* Who is asking (set by authentication, lib/auth.c): by name, and as
     * one struct for the shared auth functions. */
    union {
        struct sx_auth_caller who;
        struct {
            SX_AUTH_CALLER_FIELDS
        };
    };
    enum sx_api_role role;      /* the caller's role on project_id, once resolved */

    /* Set by a handler, done by api.c after COMMIT (never for a rolled-back
     * change): the Redis caches that ingest must stop trusting. */
    int drop_settings_pid;      /* delete this project's settings entry (0: none) */
    const char **drop_keys;     /* hex SHA-256 of ingest keys whose cache entries go (arena) */
    size_t ndrop_keys;
};

/* The caller's role on project_id: an instance admin's is
 * SX_ROLE_INSTANCE_ADMIN everywhere, a user's is their membership's, a
 * project token's SX_ROLE_MEMBER on its project; SX_ROLE_NONE otherwise. */
enum sx_api_role sx_api_role(const struct sx_api_req *r, int project_id);
/* "viewer", "member", ... ("instance-admin", "none"). */
const char *sx_api_role_name(enum sx_api_role role);

/* ---- users, sessions and personal tokens (api_auth.c) ----------------------- */

/* The lib/auth.c hooks of request r: queries through sx_api_exec, errors
 * through sx_api_fail. */
void sx_api_auth_io(struct sx_api_req *r, struct sx_auth_io *io);
/* The value of cookie name in the request's Cookie header (arena copy), or NULL. */
const char *sx_api_cookie(struct sx_api_req *r, const char *name);
/* Whether the request's Origin header, when present, names this site
 * (Host or X-Forwarded-Host): 1 yes or absent, 0 no. */
int sx_api_origin_ok(struct sx_api_req *r);
/* Appends a response header line to r->headers; SX_ERR when out of arena. */
int sx_api_add_header(struct sx_api_req *r, const char *fmt, ...) SX_PRINTF(2, 3);
/* Writes an audit_log row for the request's caller (actor: the user's
 * email, else "token:<id>", else actor_fallback; ip: REMOTE_ADDR, with the
 * X-Forwarded-For that nginx passes when there is one). details is JSON
 * text or NULL. Failures are logged and return SX_ERR (no response set):
 * callers that audit inside the change's transaction fail the request, the
 * login routes (whose action already happened) ignore it. */
int sx_api_audit(struct sx_api_req *r, const char *action, const char *target, int project_id,
                  const char *details, const char *actor_fallback);

/* The account endpoints: POST /auth/login, POST /auth/logout, GET /me,
 * GET/POST /me/tokens, DELETE /me/tokens/{id}. They run as the API's login
 * role outside any RLS transaction; same contract as the other handlers. */
int sx_api_login(struct sx_api_req *r);
int sx_api_logout(struct sx_api_req *r);
int sx_api_me(struct sx_api_req *r);
int sx_api_tokens_list(struct sx_api_req *r);
int sx_api_token_create(struct sx_api_req *r);
int sx_api_token_revoke(struct sx_api_req *r, const char *id);

/* ---- projects, members, ingest keys, usage, audit (api_projects.c) ---------- */

/* GET and POST /projects, GET /audit: as the login role outside any RLS
 * transaction (authenticated already). */
int sx_api_projects_list(struct sx_api_req *r);
int sx_api_project_create(struct sx_api_req *r);
int sx_api_audit_all(struct sx_api_req *r);
/* Inside the request's transaction on r->project_id, the role checked. */
int sx_api_project_get(struct sx_api_req *r);
int sx_api_project_put(struct sx_api_req *r);
int sx_api_project_delete(struct sx_api_req *r);
int sx_api_members_list(struct sx_api_req *r);
int sx_api_member_put(struct sx_api_req *r);
int sx_api_member_delete(struct sx_api_req *r, const char *user_id);
int sx_api_keys_list(struct sx_api_req *r);
int sx_api_key_create(struct sx_api_req *r);
int sx_api_key_revoke(struct sx_api_req *r, const char *key_id);
int sx_api_usage(struct sx_api_req *r);
int sx_api_project_audit(struct sx_api_req *r);
/* Deletes the Redis entries named by r->drop_settings_pid and r->drop_keys
 * (after COMMIT); failures are logged: ingest then trusts them until their
 * TTL (key_cache_ttl, settings_redis_ttl). */
void sx_api_drop_caches(struct sx_api_req *r);

/* Replaces the body with {"error":{"code","message"}} and sets the status.
 * Always returns SX_ERR so handlers can `return sx_api_fail(...)`. */
int sx_api_fail(struct sx_api_req *r, int status, const char *code, const char *fmt, ...) SX_PRINTF(4, 5);

/* Runs a parameterized query (text parameters and results). Returns a result
 * whose status is TUPLES_OK/COMMAND_OK, which the caller PQclears; on failure
 * it clears the result, logs, fills the error response (503 when the
 * connection is gone or the query timed out, 500 otherwise) and returns NULL. */
PGresult *sx_api_exec(struct sx_api_req *r, const char *sql, int nparams, const char *const *params, const char *what);

/* Returns the single value of a parameter that may occur once: NULL when
 * absent or empty; sets a 400 and *bad when it is given more than once. */
const char *sx_api_param1(struct sx_api_req *r, const char *key, int *bad);

/* Reads the request body (application/json or no Content-Type, at most
 * 64 KB) and parses it into *out (arena memory). SX_ERR with 400, 413 or
 * 415 set. */
int sx_api_body_json(struct sx_api_req *r, struct sx_jv **out);

/* Copies a formatted string into the request arena; NULL on exhaustion. */
char *sx_api_strf(struct sx_api_req *r, const char *fmt, ...) SX_PRINTF(2, 3);

/* ---- query parameters, SQL building, result columns (api_query.c) ---------- */

#define SX_API_DAY_NS (86400LL * 1000000000LL)
#define SX_API_QB_MAX_PARAMS 64   /* $n parameters of one built query at most */
#define SX_API_MAX_ATTR_FILTERS 16 /* attr=key=value filters of one request at most */

/* A query under construction: SQL text and its text parameters (arena
 * memory of r, or the caller's). Embedded by the handler: _init, _term. */
struct sx_api_qb {
    struct sx_api_req *r;
    struct sx_buf sql;
    const char *params[SX_API_QB_MAX_PARAMS];
    int n;
};

/* Starts an empty query whose SQL may grow to sql_max bytes. Cannot fail. */
void sx_api_qb_init(struct sx_api_qb *b, struct sx_api_req *r, size_t sql_max);
/* Frees the SQL buffer; the parameters belong to the request arena. */
void sx_api_qb_term(struct sx_api_qb *b);
/* Adds a parameter (kept by pointer, not copied) and returns its number
 * ($n), or 0 when v is NULL or the query has SX_API_QB_MAX_PARAMS already. */
int sx_api_qb_param(struct sx_api_qb *b, const char *v);
/* Adds a decimal parameter; 0 when full or out of arena. */
int sx_api_qb_num(struct sx_api_qb *b, long long v);
/* Adds a bytea parameter (\x<hex>) of the n bytes at p, copied into the
 * arena; 0 when full or out of arena. */
int sx_api_qb_bytea(struct sx_api_qb *b, const uint8_t *p, size_t n);
/* Adds the key and the value of the attr filter "key=value" kv (checked by
 * sx_api_attr_check) as two parameters, *pk and *pv; SX_ERR when full or
 * out of arena. */
int sx_api_qb_attr(struct sx_api_qb *b, const char *kv, int *pk, int *pv);

/* One search endpoint (traces, logs) for sx_api_list_run: how to build its
 * query from its parsed filters, write a row, and make the next page's
 * cursor. */
struct sx_api_list {
    const char *key;  /* the page's array: {"<key>":[...],"nextCursor":...} */
    const char *what; /* names the query in the log, "SELECT logs" */
    size_t sql_max;   /* SQL text at most */
    /* Appends the query (with LIMIT limit + 1) to b; SX_ERR when out of room. */
    int (*build)(struct sx_api_req *r, const void *filters, struct sx_api_qb *b);
    /* Writes row i as one item of the array. */
    void (*write)(struct sx_json *w, const PGresult *res, int i);
    /* Writes the cursor that continues after row i into cur
     * (SX_API_CURSOR_LEN + 1 bytes); SX_ERR when the row is malformed. */
    int (*cursor)(const PGresult *res, int i, char *cur);
};

/* A page of a search assembled from the results of one or more queries, each
 * continuing (in the endpoint's order) after the rows of the previous one:
 * the endpoints that walk the newest rows first and then fall back to an
 * index (api_logs.c, api_traces.c) take rows from several results. Embedded
 * by the handler: _init, then _term on every path. */
#define SX_API_PAGE_STEPS 16
struct sx_api_page {
    PGresult *res[SX_API_PAGE_STEPS]; /* owned: cleared by _term */
    int nres;
    int *res_of, *row_of;             /* the rows taken, in order (arena) */
    int n, cap;                       /* rows taken; cap is limit + 1 */
    /* Set when the search stopped at its scan budget before the page was
     * full: the reply says "partial": true and its nextCursor resumes here. */
    char resume[SX_API_CURSOR_LEN + 1];
};

/* Starts an empty page for limit rows (and the one more that says another
 * page follows). SX_ERR with a 500 set when out of arena memory. */
int sx_api_page_init(struct sx_api_page *p, struct sx_api_req *r, long long limit);
/* Hands res to the page, which clears it in _term; returns its index, or
 * -1 (res cleared, 500 set) when the page holds SX_API_PAGE_STEPS results. */
int sx_api_page_add(struct sx_api_page *p, struct sx_api_req *r, PGresult *res);
/* Appends row `row` of result `idx`, unless the page is full. */
void sx_api_page_take(struct sx_api_page *p, int idx, int row);
/* Rows still wanted: cap minus the rows taken. */
int sx_api_page_need(const struct sx_api_page *p);
/* Writes the page as {"<key>":[...],"nextCursor":...} (s->write, s->cursor)
 * and sets status 200; SX_ERR with a 500 as sx_api_list_run. */
int sx_api_page_reply(struct sx_api_req *r, const struct sx_api_list *s, const struct sx_api_page *p);
/* Clears the page's results. */
void sx_api_page_term(struct sx_api_page *p);

/* Runs a search whose filters are parsed: builds and runs the query, writes
 * at most limit rows into r->out as {"<key>":[...],"nextCursor":...} with a
 * cursor when there are more, and sets status 200. SX_ERR with the error
 * response filled: 400 when the query is too large, 500 on a malformed row or
 * a response too large, as sx_api_exec when the query fails. */
int sx_api_list_run(struct sx_api_req *r, const struct sx_api_list *s, const void *filters, long long limit);

/* Ends a 200 response: closes w's top-level object (w writes r->out) and
 * sets the status. SX_ERR with a 500 set when r->out reached its maximum. */
int sx_api_reply(struct sx_api_req *r, struct sx_json *w);

/* Reads the time parameters from, to and timeRange (each NULL when absent);
 * SX_ERR with a 400 set when one is repeated. */
int sx_api_window_params(struct sx_api_req *r, const char **from, const char **to, const char **range);
/* Reads from/to/timeRange into win (default: the last day); SX_ERR with a
 * 400 set when they are repeated or invalid. */
int sx_api_window(struct sx_api_req *r, struct sx_api_window *win);
/* Reads limit (1..api_max_limit) into *limit, which keeps its value when
 * the parameter is absent; SX_ERR with a 400 set when invalid or repeated. */
int sx_api_limit(struct sx_api_req *r, long long *limit);
/* Checks the attr=key=value filters: at most SX_API_MAX_ATTR_FILTERS, each
 * with a non-empty key; SX_ERR with a 400 set otherwise. */
int sx_api_attr_check(struct sx_api_req *r);

/* Result columns: an integer (0 when NULL), a string (NULL when NULL), and
 * JSON text written by PostgreSQL as it is (dflt, JSON text too, when
 * NULL). The strings belong to res. */
int64_t sx_api_col_i64(const PGresult *res, int row, int col);
const char *sx_api_col_str(const PGresult *res, int row, int col);
void sx_api_col_json(struct sx_json *w, const PGresult *res, int row, int col, const char *dflt);

/* Endpoint handlers (api_traces.c). Each runs inside the request's RLS
 * transaction, writes a 200 body into r->out and returns SX_OK, or fills an
 * error response via sx_api_fail/sx_api_exec and returns SX_ERR. */
int sx_api_traces_list(struct sx_api_req *r);
int sx_api_trace_get(struct sx_api_req *r, const char *trace_id_hex);
int sx_api_services_list(struct sx_api_req *r);
/* GET .../logs (api_logs.c), same contract. */
int sx_api_logs_list(struct sx_api_req *r);
/* GET .../logs/histogram (api_logs.c): log volume per step and severity
 * over the search's filters, same contract. */
int sx_api_logs_histogram(struct sx_api_req *r);

/* ---- dashboards (api_dashboards.c) and overviews (api_overview.c) ----------- */

/* GET/POST .../dashboards, GET/PUT/DELETE .../dashboards/{id} (README
 * "Dashboards"), same contract as the handlers above; DELETE answers 204
 * with an empty body. Writes run as sextant_project_writer and audit. */
int sx_api_dashboards_list(struct sx_api_req *r);
int sx_api_dashboard_create(struct sx_api_req *r);
int sx_api_dashboard_get(struct sx_api_req *r, const char *id);
int sx_api_dashboard_put(struct sx_api_req *r, const char *id);
int sx_api_dashboard_delete(struct sx_api_req *r, const char *id);
/* GET .../overview: one project's totals, series, top endpoints and issues
 * and health. Same contract. */
int sx_api_overview(struct sx_api_req *r);
/* GET /analytics/cross-project over the n projects ids (the caller's, at
 * most SX_API_MAX_PROJECTS; truncated: there were more), inside a READ
 * ONLY transaction whose sextant.project_ids are exactly those. Same
 * contract. */
int sx_api_cross_project(struct sx_api_req *r, const int *ids, size_t n, int truncated);

#endif
