/* pg.c: libpq helpers that clear every result on every path. */
#include "pg.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

/* libpq's messages end with a newline; logs want one line. */
static const char *one_line(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg ? msg : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = ' ';
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
    return buf;
}

PGconn *sx_pg_connect(const char *conninfo, char *err, size_t errlen)
{
    char tmp[512];
    PGconn *conn = PQconnectdb(conninfo);
    if (!conn) {
        snprintf(err, errlen, "PQconnectdb failed: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "PQconnectdb failed: %s", one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

int sx_pg_ensure(PGconn **conn, const char *conninfo)
{
    if (*conn && PQstatus(*conn) == CONNECTION_OK) return SX_OK;
    if (*conn) {
        PQfinish(*conn);
        *conn = NULL;
    }
    char err[512];
    *conn = sx_pg_connect(conninfo, err, sizeof(err));
    if (!*conn) {
        sx_warn("%s", err);
        return SX_ERR;
    }
    return SX_OK;
}

int sx_pg_exec(PGconn *conn, const char *sql, const char *what)
{
    char tmp[512];
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        sx_warn("%s failed: %s", what, one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQclear(res);
        return SX_ERR;
    }
    PQclear(res);
    return SX_OK;
}

PGresult *sx_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what)
{
    char tmp[512];
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        sx_warn("%s failed: %s", what, one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQclear(res);
        return NULL;
    }
    return res;
}
