/* pg.c: libpq helpers that clear every result on every path. */
#include "pg.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

/* pg_stat_activity's application_name of this process's connections;
 * written once by sx_pg_set_application_name before threads start, then
 * only read. Empty: libpq's default (none). */
static char app_name[64];

const char *sx_pg_one_line(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg ? msg : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
    return buf;
}

void sx_pg_set_application_name(const char *name)
{
    snprintf(app_name, sizeof(app_name), "%s", name ? name : "");
}

PGconn *sx_pg_connect_timeout(const char *conninfo, int timeout_s, char *err, size_t errlen)
{
    char tmp[512], timeout[16];
    /* dbname is expanded as a whole conninfo string or URI; keywords after it
     * override what it sets, except the fallback, which only fills a gap. */
    const char *keys[4] = {"dbname", "fallback_application_name", NULL, NULL};
    const char *vals[4] = {conninfo, app_name[0] ? app_name : NULL, NULL, NULL};
    if (timeout_s > 0) {
        snprintf(timeout, sizeof(timeout), "%d", timeout_s);
        keys[2] = "connect_timeout";
        vals[2] = timeout;
    }
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        snprintf(err, errlen, "PQconnectdbParams failed: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "PQconnectdbParams failed: %s", sx_pg_one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

PGconn *sx_pg_connect(const char *conninfo, char *err, size_t errlen)
{
    return sx_pg_connect_timeout(conninfo, 0, err, errlen);
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
        sx_warn("%s failed: %s", what, sx_pg_one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
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
        sx_warn("%s failed: %s", what, sx_pg_one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQclear(res);
        return NULL;
    }
    return res;
}
