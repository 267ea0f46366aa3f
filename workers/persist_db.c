/* persist_db.c: sextant-persist's PostgreSQL writer: partitions, COPY and the trace upsert.
 *
 * Design: every batch is one transaction. Rows go by COPY into a per-session
 * temporary table (spans_stage, emptied at commit), then a single statement
 * inserts them into spans with ON CONFLICT DO NOTHING and folds only the rows
 * that were really inserted (RETURNING) into the traces summaries. A
 * redelivered batch therefore inserts nothing and adds nothing: the write is
 * idempotent, and the caller acknowledges the stream entries only after
 * COMMIT. Trace rows are upserted in (project_id, trace_id) order so two
 * persist processes lock them in the same order. */
#include "persist.h"

#include "log.h"
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK (4u << 20)
#define DAYS_CACHE_MAX 4096

static const char stage_sql[] =
    "SET jit = off; SET temp_buffers = '256MB'; "
    "CREATE TEMP TABLE IF NOT EXISTS spans_stage (LIKE spans INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

/* A trace's root is its earliest span without a parent; until one arrives the
 * earliest span stands in (has_root false). Incoming root fields replace the
 * stored ones when they are a real root replacing a stand-in, or the same
 * kind but earlier. */
#define ROOT_WINS \
    "((EXCLUDED.has_root AND NOT t.has_root) OR " \
    "(EXCLUDED.has_root = t.has_root AND EXCLUDED.root_start_ns < t.root_start_ns))"

/* The one statement of a batch after COPY: returns (spans inserted, traces
 * upserted). Only the rows RETURNed by the insert feed the summaries. */
static const char upsert_sql[] =
    "WITH ins AS ("
    "  INSERT INTO spans SELECT * FROM spans_stage ON CONFLICT DO NOTHING"
    "  RETURNING project_id, trace_id, parent_span_id, start_time_ns, end_time_ns, name, service, status_code"
    "), agg AS ("
    "  SELECT project_id, trace_id, min(start_time_ns) AS start_ns, max(end_time_ns) AS end_ns,"
    "         count(*) AS n, count(*) FILTER (WHERE status_code = 2) AS errors,"
    "         array_agg(DISTINCT service ORDER BY service) AS services"
    "  FROM ins GROUP BY project_id, trace_id"
    "), root AS ("
    "  SELECT DISTINCT ON (project_id, trace_id) project_id, trace_id, parent_span_id IS NULL AS has_root,"
    "         start_time_ns, service, name"
    "  FROM ins ORDER BY project_id, trace_id, (parent_span_id IS NULL) DESC, start_time_ns"
    "), up AS ("
    "  INSERT INTO traces AS t (project_id, trace_id, start_time_ns, end_time_ns, has_root, root_start_ns,"
    "                           root_service, root_name, span_count, error_count, services, updated_at)"
    "  SELECT a.project_id, a.trace_id, a.start_ns, a.end_ns, r.has_root, r.start_time_ns, r.service, r.name,"
    "         a.n, a.errors, a.services, now()"
    "  FROM agg a JOIN root r ON r.project_id = a.project_id AND r.trace_id = a.trace_id"
    "  ORDER BY a.project_id, a.trace_id"
    "  ON CONFLICT (project_id, trace_id) DO UPDATE SET"
    "    start_time_ns = LEAST(t.start_time_ns, EXCLUDED.start_time_ns),"
    "    end_time_ns = GREATEST(t.end_time_ns, EXCLUDED.end_time_ns),"
    "    span_count = t.span_count + EXCLUDED.span_count,"
    "    error_count = t.error_count + EXCLUDED.error_count,"
    "    services = ARRAY(SELECT DISTINCT u.s FROM unnest(t.services || EXCLUDED.services) AS u(s) ORDER BY u.s),"
    "    has_root = CASE WHEN " ROOT_WINS " THEN EXCLUDED.has_root ELSE t.has_root END,"
    "    root_start_ns = CASE WHEN " ROOT_WINS " THEN EXCLUDED.root_start_ns ELSE t.root_start_ns END,"
    "    root_service = CASE WHEN " ROOT_WINS " THEN EXCLUDED.root_service ELSE t.root_service END,"
    "    root_name = CASE WHEN " ROOT_WINS " THEN EXCLUDED.root_name ELSE t.root_name END,"
    "    updated_at = now()"
    "  RETURNING 1"
    ") SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM up)";

void sx_persist_db_init(struct sx_persist_db *db, const char *conninfo)
{
    memset(db, 0, sizeof(*db));
    db->conninfo = conninfo;
}

void sx_persist_db_term(struct sx_persist_db *db)
{
    if (db->conn) PQfinish(db->conn);
    db->conn = NULL;
    free(db->days);
    db->days = NULL;
    db->ndays = db->days_cap = 0;
}

/* libpq messages end with newlines; logs want one line. */
static void one_line(char *dst, size_t len, const char *msg)
{
    snprintf(dst, len, "%s", msg && *msg ? msg : "unknown error");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    size_t n = strlen(dst);
    while (n && dst[n - 1] == ' ') dst[--n] = '\0';
}

int sx_persist_db_ready(struct sx_persist_db *db)
{
    if (db->conn && PQstatus(db->conn) != CONNECTION_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    if (!db->conn) {
        db->stage_ready = 0;
        if (sx_pg_ensure(&db->conn, db->conninfo) != SX_OK) return SX_ERR;
        sx_info("connected to postgresql");
    }
    if (db->stage_ready) return SX_OK;
    if (sx_pg_exec(db->conn, stage_sql, "CREATE TEMP TABLE spans_stage") != SX_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
        return SX_ERR;
    }
    db->stage_ready = 1;
    return SX_OK;
}

static int day_known(const struct sx_persist_db *db, int64_t day)
{
    for (size_t i = 0; i < db->ndays; i++)
        if (db->days[i] == day) return 1;
    return 0;
}

static void day_remember(struct sx_persist_db *db, int64_t day)
{
    if (db->ndays == DAYS_CACHE_MAX) db->ndays = 0; /* start over; entries are only a cache */
    if (db->ndays == db->days_cap) {
        size_t cap = db->days_cap ? db->days_cap * 2 : 64;
        int64_t *p = realloc(db->days, cap * sizeof(*p));
        if (!p) return; /* only a cache: asking again next time is fine */
        db->days = p;
        db->days_cap = cap;
    }
    db->days[db->ndays++] = day;
}

void sx_persist_db_forget_days(struct sx_persist_db *db)
{
    db->ndays = 0;
}

int sx_persist_db_ensure_days(struct sx_persist_db *db, const int64_t *days, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (day_known(db, days[i])) continue;
        char ts[24];
        const char *params[1] = {ts};
        snprintf(ts, sizeof(ts), "%lld", (long long)days[i]);
        PGresult *res = sx_pg_query(db->conn, "SELECT sextant_ensure_span_partition($1::bigint)", 1, params,
                                    "sextant_ensure_span_partition");
        if (!res) return SX_ERR;
        if (PQntuples(res) == 1) sx_debug("partition %s ready", PQgetvalue(res, 0, 0));
        PQclear(res);
        day_remember(db, days[i]);
    }
    return SX_OK;
}

/* Classifies a failed result by SQLSTATE. */
static int classify(const PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!st) return SX_ERR;
    if (strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0) return SX_AGAIN;
    if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 || strncmp(st, "54", 2) == 0)
        return SX_PERSIST_EDATA;
    return SX_ERR;
}

/* Records the failure of step what, clears res, drains any further results. */
static int fail(struct sx_persist_db *db, PGresult *res, const char *what, char *err, size_t errlen)
{
    char msg[400];
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int rc = classify(res);
    one_line(msg, sizeof(msg), res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    snprintf(err, errlen, "%s failed: %s%s%s%s", what, msg, st ? " (SQLSTATE " : "", st ? st : "", st ? ")" : "");
    PQclear(res);
    while ((res = PQgetResult(db->conn)) != NULL) PQclear(res);
    return rc;
}

/* Records a connection-level failure of step what (no result to read). */
static int conn_fail(struct sx_persist_db *db, const char *what, char *err, size_t errlen)
{
    char msg[400];
    PGresult *res;
    one_line(msg, sizeof(msg), PQerrorMessage(db->conn));
    snprintf(err, errlen, "%s failed: %s", what, msg);
    while ((res = PQgetResult(db->conn)) != NULL) PQclear(res);
    return SX_ERR;
}

static int exec_ok(PGconn *conn, const char *sql, PGresult **out)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    *out = res;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int sx_persist_db_write(struct sx_persist_db *db, const struct sx_persist_slice *s, size_t n, long long *inserted,
                        char *err, size_t errlen)
{
    PGresult *res = NULL;
    int rc = SX_ERR;
    int64_t t0 = sx_mono_ns(), t1, t2;
    *inserted = 0;
    err[0] = '\0';

    if (!exec_ok(db->conn, "BEGIN", &res)) {
        rc = fail(db, res, "BEGIN", err, errlen);
        goto cleanup;
    }
    PQclear(res);

    res = PQexec(db->conn, "COPY spans_stage FROM STDIN");
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        rc = fail(db, res, "COPY spans_stage", err, errlen);
        goto cleanup;
    }
    PQclear(res);
    res = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *p = s[i].data;
        size_t left = s[i].len;
        while (left) {
            size_t chunk = left > COPY_CHUNK ? COPY_CHUNK : left;
            if (PQputCopyData(db->conn, p, (int)chunk) != 1) {
                PQputCopyEnd(db->conn, "client error");
                rc = conn_fail(db, "PQputCopyData(spans_stage)", err, errlen);
                goto cleanup;
            }
            p += chunk;
            left -= chunk;
        }
    }
    if (PQputCopyEnd(db->conn, NULL) != 1) {
        rc = conn_fail(db, "PQputCopyEnd(spans_stage)", err, errlen);
        goto cleanup;
    }
    res = PQgetResult(db->conn);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = fail(db, res, "COPY spans_stage", err, errlen);
        goto cleanup;
    }
    PQclear(res);
    while ((res = PQgetResult(db->conn)) != NULL) PQclear(res);
    t1 = sx_mono_ns();

    res = PQexec(db->conn, upsert_sql);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2) {
        rc = fail(db, res, "INSERT spans/traces", err, errlen);
        goto cleanup;
    }
    *inserted = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    t2 = sx_mono_ns();
    sx_debug("batch: %lld spans inserted, %s traces upserted; copy %.1f ms, insert %.1f ms", *inserted,
             PQgetvalue(res, 0, 1), (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
    PQclear(res);

    if (!exec_ok(db->conn, "COMMIT", &res)) {
        rc = fail(db, res, "COMMIT", err, errlen);
        goto cleanup;
    }
    PQclear(res);
    res = NULL;
    return SX_OK;

cleanup:
    /* res was cleared by fail() or the drain loops. */
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        res = PQexec(db->conn, "ROLLBACK");
        PQclear(res);
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
        db->stage_ready = 0;
    }
    *inserted = 0;
    return rc;
}
