/* pg.h: libpq helpers. Every PGresult is cleared on every path by these
 * helpers; callers that take a result own it and PQclear it. */
#ifndef SX_PG_H
#define SX_PG_H

#include "sx.h"

#include <libpq-fe.h>

/* Connects with conninfo; NULL with a message in err on failure. Caller frees
 * with PQfinish. */
PGconn *sx_pg_connect(const char *conninfo, char *err, size_t errlen);

/* Makes *conn usable: reconnects when NULL or CONNECTION_BAD. */
int sx_pg_ensure(PGconn **conn, const char *conninfo);

/* Runs a command without parameters that returns no rows; SX_ERR with the
 * message logged (prefixed by what) on failure. */
int sx_pg_exec(PGconn *conn, const char *sql, const char *what);

/* Runs a parameterized query (text params); returns the result when its
 * status is PGRES_TUPLES_OK or PGRES_COMMAND_OK, otherwise logs, clears and
 * returns NULL. Caller PQclears. */
PGresult *sx_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what);

#endif
