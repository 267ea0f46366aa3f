/* pg.h: libpq helpers. Every PGresult is cleared on every path by these
 * helpers; callers that take a result own it and PQclear it. */
#ifndef SX_PG_H
#define SX_PG_H

#include "sx.h"

#include <libpq-fe.h>

/* Names this process's connections in pg_stat_activity (libpq's
 * fallback_application_name: an application_name in the conninfo wins).
 * Call once at startup, before any connection and before threads start;
 * the name is copied (at most 63 bytes kept). */
void sx_pg_set_application_name(const char *name);

/* Connects with conninfo; NULL with a message in err on failure. Caller frees
 * with PQfinish. */
PGconn *sx_pg_connect(const char *conninfo, char *err, size_t errlen);

/* As sx_pg_connect, with libpq's connect_timeout set to timeout_s seconds
 * (it overrides one given in conninfo). */
PGconn *sx_pg_connect_timeout(const char *conninfo, int timeout_s, char *err, size_t errlen);

/* Makes *conn usable: reconnects when NULL or CONNECTION_BAD. */
int sx_pg_ensure(PGconn **conn, const char *conninfo);

/* Runs a command without parameters that returns no rows; SX_ERR with the
 * message logged (prefixed by what) on failure. */
int sx_pg_exec(PGconn *conn, const char *sql, const char *what);

/* Runs a parameterized query (text params); returns the result when its
 * status is PGRES_TUPLES_OK or PGRES_COMMAND_OK, otherwise logs, clears and
 * returns NULL. Caller PQclears. */
PGresult *sx_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what);

/* Copies a libpq message (which ends with a newline) into buf as one line
 * for logs and errors; returns buf. Never fails (truncates to len). */
const char *sx_pg_one_line(const char *msg, char *buf, size_t len);

#endif
