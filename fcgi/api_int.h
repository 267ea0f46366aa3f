/* api_int.h: what sextant-api's files share: the request context, response
 * helpers and the endpoint handlers. Not used outside fcgi/api*.c. */
#ifndef SX_API_INT_H
#define SX_API_INT_H

#include "apiutil.h"
#include "buf.h"
#include "config.h"
#include "fcgi_server.h"
#include "json.h"

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
    int64_t now_ns;
    const char *reqid;
};

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

/* Copies a formatted string into the request arena; NULL on exhaustion. */
char *sx_api_strf(struct sx_api_req *r, const char *fmt, ...) SX_PRINTF(2, 3);

/* Endpoint handlers (api_traces.c). Each runs inside the request's RLS
 * transaction, writes a 200 body into r->out and returns SX_OK, or fills an
 * error response via sx_api_fail/sx_api_exec and returns SX_ERR. */
int sx_api_traces_list(struct sx_api_req *r);
int sx_api_trace_get(struct sx_api_req *r, const char *trace_id_hex);
int sx_api_services_list(struct sx_api_req *r);
/* GET .../logs (api_logs.c), same contract. */
int sx_api_logs_list(struct sx_api_req *r);

#endif
