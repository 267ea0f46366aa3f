/* persist_db.c: sextant-persist's PostgreSQL writer: partitions, the entry ledger, COPY and the trace upsert.
 *
 * Every signal (spans, logs) goes through the same write: ledger, then COPY
 * into the signal's table; spans then also fold their trace summaries.
 *
 * Design: every batch is one transaction. It first inserts one
 * persist_ledger row per stream entry (keyed by a hash of the entry's
 * project and body, sql/002_persist_ledger.sql) with ON CONFLICT DO NOTHING
 * RETURNING: the keys it returns are the entries not applied before. Only
 * their rows are COPYed, straight into the table (no staging table, no unique
 * index: the ledger is the idempotency check). Their trace summaries are
 * aggregated here from the metas the encoder recorded (min start, max end,
 * span and error counts, services, the root candidate), COPYed into a small
 * temp table and upserted into traces in (project_id, trace_id) order, so
 * two persist processes lock trace rows in the same order; ledger keys are
 * inserted in key order for the same reason. A redelivered entry therefore
 * inserts nothing and counts nothing, and the caller acknowledges entries
 * only after COMMIT. Counting spans by the rows of new entries is exact
 * because an entry is applied at most once. */
#include "persist.h"

#include "keys.h"
#include "log.h"
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK (4u << 20)
#define DAYS_CACHE_MAX 4096
#define SQL_MAX ((size_t)256 << 20)
/* Ledger rows older than this are pruned (see sql/002_persist_ledger.sql). */
#define LEDGER_KEEP "7 days"

/* lz4 rather than pglz for values TOASTed by this session (error events'
 * frames and stack traces pass the 2 KB threshold; err_stage compresses them
 * once and error_events keeps the compressed datum): pglz made COPY
 * err_stage ~1.5x slower (bench/README.md, 2026-11-22). A server built
 * without lz4 keeps its default. */
static const char session_sql[] =
    "SET jit = off; "
    "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings "
    "WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals); "
    "CREATE TEMP TABLE IF NOT EXISTS traces_stage (project_id integer, trace_id bytea, start_ns bigint, "
    "end_ns bigint, has_root boolean, root_start_ns bigint, root_service text, root_name text, "
    "span_count integer, error_count integer, services text[]) ON COMMIT DELETE ROWS";

/* Keys in key order (lock order); only the new ones come back. */
static const char ledger_sql[] =
    "INSERT INTO persist_ledger (stream, entry_hash, entry_id) "
    "SELECT $1, decode(u.h, 'hex'), u.i FROM unnest($2::text[], $3::text[]) AS u(h, i) ORDER BY u.h "
    "ON CONFLICT DO NOTHING RETURNING encode(entry_hash, 'hex')";

/* A trace's root is its earliest span without a parent; until one arrives the
 * earliest span stands in (has_root false). Incoming root fields replace the
 * stored ones when they are a real root replacing a stand-in, or the same
 * kind but earlier. */
#define ROOT_WINS \
    "((EXCLUDED.has_root AND NOT t.has_root) OR " \
    "(EXCLUDED.has_root = t.has_root AND EXCLUDED.root_start_ns < t.root_start_ns))"

/* The batch's trace summaries folded into traces. services arrive distinct
 * and sorted bytewise (traces_text); merged arrays are sorted bytewise too
 * (COLLATE "C"), whatever the database's collation, as the API's services
 * list is. */
static const char upsert_sql[] =
    "INSERT INTO traces AS t (project_id, trace_id, start_time_ns, end_time_ns, has_root, root_start_ns,"
    "                         root_service, root_name, span_count, error_count, services, updated_at)"
    "  SELECT project_id, trace_id, start_ns, end_ns, has_root, root_start_ns, root_service, root_name,"
    "         span_count, error_count, services, now()"
    "  FROM traces_stage ORDER BY project_id, trace_id"
    "  ON CONFLICT (project_id, trace_id) DO UPDATE SET"
    "    start_time_ns = LEAST(t.start_time_ns, EXCLUDED.start_time_ns),"
    "    end_time_ns = GREATEST(t.end_time_ns, EXCLUDED.end_time_ns),"
    "    span_count = t.span_count + EXCLUDED.span_count,"
    "    error_count = t.error_count + EXCLUDED.error_count,"
    "    services = ARRAY(SELECT DISTINCT u.s COLLATE \"C\" FROM unnest(t.services || EXCLUDED.services) AS u(s)"
    "                     ORDER BY 1),"
    "    has_root = CASE WHEN " ROOT_WINS " THEN EXCLUDED.has_root ELSE t.has_root END,"
    "    root_start_ns = CASE WHEN " ROOT_WINS " THEN EXCLUDED.root_start_ns ELSE t.root_start_ns END,"
    "    root_service = CASE WHEN " ROOT_WINS " THEN EXCLUDED.root_service ELSE t.root_service END,"
    "    root_name = CASE WHEN " ROOT_WINS " THEN EXCLUDED.root_name ELSE t.root_name END,"
    "    updated_at = now()";

/* A batch entry that may be new, by ledger key. */
struct cand {
    const uint8_t *hash;
    size_t ent;
};

/* One service name as written in the spans COPY text. */
struct svc {
    const char *p;
    uint32_t n;
};

void sx_persist_db_init(struct sx_persist_db *db, const char *conninfo)
{
    memset(db, 0, sizeof(*db));
    db->conninfo = conninfo;
    sx_buf_init(&db->sql, SQL_MAX);
    sx_buf_init(&db->ids, SQL_MAX);
    sx_buf_init(&db->post, SQL_MAX);
}

void sx_persist_db_term(struct sx_persist_db *db)
{
    if (db->conn) PQfinish(db->conn);
    db->conn = NULL;
    free(db->days);
    db->days = NULL;
    db->ndays = db->days_cap = 0;
    sx_buf_term(&db->sql);
    sx_buf_term(&db->ids);
    sx_buf_term(&db->post);
    free(db->cand);
    free(db->fresh);
    free(db->order);
    free(db->svcs);
    db->cand = NULL;
    db->fresh = NULL;
    db->order = NULL;
    db->svcs = NULL;
    db->cand_cap = db->fresh_cap = db->order_cap = db->svcs_cap = 0;
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
        db->session_ready = 0;
        if (sx_pg_ensure(&db->conn, db->conninfo) != SX_OK) return SX_ERR;
        sx_info("connected to postgresql");
    }
    if (db->session_ready) return SX_OK;
    if (sx_pg_exec(db->conn, session_sql, "CREATE TEMP TABLE traces_stage") != SX_OK ||
        sx_pg_exec(db->conn, sx_persist_errors_session_sql, "CREATE TEMP TABLE err_stage") != SX_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
        return SX_ERR;
    }
    db->session_ready = 1;
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

int sx_persist_db_ensure_days(struct sx_persist_db *db, const struct sx_persist_signal *sig, const int64_t *days,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* Day starts are multiples of a day in ns: adding the kind keeps
         * the cache entries of different tables apart. */
        int64_t key = days[i] + (int64_t)sig->kind;
        if (day_known(db, key)) continue;
        char ts[24];
        const char *params[1] = {ts};
        snprintf(ts, sizeof(ts), "%lld", (long long)days[i]);
        PGresult *res = sx_pg_query(db->conn, sig->partition_sql, 1, params, sig->partition_sql);
        if (!res) return SX_ERR;
        if (PQntuples(res) == 1) sx_debug("partition %s ready", PQgetvalue(res, 0, 0));
        PQclear(res);
        day_remember(db, key);
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
int sx_persist_db_fail(struct sx_persist_db *db, PGresult *res, const char *what, char *err, size_t errlen)
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


/* Storage for at least need elements of size bytes: p, or p grown (p is
 * then freed); *cap is updated. NULL when out of memory (p unchanged and
 * still owned by the caller). */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(p, c * size);
    if (!q) return NULL;
    *cap = c;
    return q;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    int c = memcmp(x->hash, y->hash, SX_PERSIST_HASH_LEN);
    if (c) return c;
    return (x->ent > y->ent) - (x->ent < y->ent);
}

static int oom(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s failed: out of memory", what);
    return SX_ERR;
}

/* Inserts the ledger keys of the entries in ents (those with rows; one per
 * distinct key, the first entry of the batch holding it) and sets
 * db->fresh[i] for each entry i that turned out new; *nfresh gets their
 * count. SX_OK or a fail() code. */
static int ledger_insert(struct sx_persist_db *db, const char *stream, const struct sx_persist_batch *b,
                         const size_t *ents, size_t n, size_t *nfresh, char *err, size_t errlen)
{
    struct cand *c;
    size_t nc = 0, nkeys = 0;
    PGresult *res;
    int ok = 1;

    *nfresh = 0;
    void *p = grow(db->cand, &db->cand_cap, n ? n : 1, sizeof(struct cand));
    if (!p) return oom(err, errlen, "ledger");
    db->cand = c = p;
    if (!(p = grow(db->fresh, &db->fresh_cap, b->nents ? b->nents : 1, 1))) return oom(err, errlen, "ledger");
    db->fresh = p;
    memset(db->fresh, 0, b->nents);
    for (size_t i = 0; i < n; i++) {
        const struct sx_persist_entry *e = &b->ents[ents[i]];
        if (!e->rows) continue;
        c[nc].hash = e->hash;
        c[nc].ent = ents[i];
        nc++;
    }
    if (!nc) return SX_OK;
    qsort(c, nc, sizeof(*c), cand_cmp);

    sx_buf_reset(&db->sql);
    sx_buf_reset(&db->ids);
    ok &= sx_buf_putc(&db->sql, '{') == SX_OK && sx_buf_putc(&db->ids, '{') == SX_OK;
    for (size_t k = 0; k < nc && ok; k++) {
        if (k && memcmp(c[k].hash, c[k - 1].hash, SX_PERSIST_HASH_LEN) == 0) continue;
        const struct sx_persist_entry *e = &b->ents[c[k].ent];
        char hex[2 * SX_PERSIST_HASH_LEN + 1];
        sx_hex_encode(e->hash, SX_PERSIST_HASH_LEN, hex);
        if (nkeys) ok &= sx_buf_putc(&db->sql, ',') == SX_OK && sx_buf_putc(&db->ids, ',') == SX_OK;
        ok &= sx_buf_append(&db->sql, hex, 2 * SX_PERSIST_HASH_LEN) == SX_OK;
        /* Stream ids are digits and one '-': nothing to escape. */
        ok &= sx_buf_putc(&db->ids, '"') == SX_OK && sx_buf_append(&db->ids, b->ids.data + e->id_off, e->idlen) == SX_OK &&
              sx_buf_putc(&db->ids, '"') == SX_OK;
        nkeys++;
    }
    ok &= sx_buf_putc(&db->sql, '}') == SX_OK && sx_buf_putc(&db->ids, '}') == SX_OK;
    if (!ok) return oom(err, errlen, "ledger");

    const char *params[3] = {stream, db->sql.data, db->ids.data};
    res = PQexecParams(db->conn, ledger_sql, 3, NULL, params, NULL, NULL, 0);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 1)
        return sx_persist_db_fail(db, res, "INSERT persist_ledger", err, errlen);
    for (int r = 0; r < PQntuples(res); r++) {
        uint8_t h[SX_PERSIST_HASH_LEN];
        const char *hx = PQgetvalue(res, r, 0);
        if (sx_hex_decode(hx, strlen(hx), h, sizeof(h)) != SX_OK) continue;
        /* lower bound: the first candidate with this key */
        size_t lo = 0, hi = nc;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (memcmp(c[mid].hash, h, sizeof(h)) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo < nc && memcmp(c[lo].hash, h, sizeof(h)) == 0 && !db->fresh[c[lo].ent]) {
            db->fresh[c[lo].ent] = 1;
            (*nfresh)++;
        }
    }
    PQclear(res);
    return SX_OK;
}

/* Sends bytes to the COPY in progress in chunks. SX_OK or SX_ERR. */
static int put_copy(PGconn *conn, const char *p, size_t left)
{
    while (left) {
        size_t chunk = left > COPY_CHUNK ? COPY_CHUNK : left;
        if (PQputCopyData(conn, p, (int)chunk) != 1) return SX_ERR;
        p += chunk;
        left -= chunk;
    }
    return SX_OK;
}

/* Runs COPY sql and feeds it: the rows of the fresh entries of b (when b),
 * else the bytes of text. SX_OK or a fail()/conn_fail() code. */
static int copy_in(struct sx_persist_db *db, const char *sql, const char *what, const struct sx_persist_batch *b,
                   const struct sx_buf *text, char *err, size_t errlen)
{
    PGresult *res = PQexec(db->conn, sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) return sx_persist_db_fail(db, res, what, err, errlen);
    PQclear(res);
    int ok = 1;
    if (b) {
        /* Entries lie back to back in b->copy: send runs of fresh ones at once. */
        for (size_t i = 0; i < b->nents && ok;) {
            if (!db->fresh[i]) {
                i++;
                continue;
            }
            size_t off = b->ents[i].off, end = off + b->ents[i].len;
            for (i++; i < b->nents && db->fresh[i] && b->ents[i].off == end; i++) end += b->ents[i].len;
            ok = put_copy(db->conn, b->copy.data + off, end - off) == SX_OK;
        }
    } else {
        ok = put_copy(db->conn, text->data, text->len) == SX_OK;
    }
    if (!ok) {
        PQputCopyEnd(db->conn, "client error");
        return conn_fail(db, "PQputCopyData", err, errlen);
    }
    if (PQputCopyEnd(db->conn, NULL) != 1) return conn_fail(db, "PQputCopyEnd", err, errlen);
    res = PQgetResult(db->conn);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) return sx_persist_db_fail(db, res, what, err, errlen);
    PQclear(res);
    while ((res = PQgetResult(db->conn)) != NULL) PQclear(res);
    return SX_OK;
}

int sx_persist_db_copy_text(struct sx_persist_db *db, const char *sql, const char *what, const struct sx_buf *text,
                            char *err, size_t errlen)
{
    return copy_in(db, sql, what, NULL, text, err, errlen);
}

static int meta_cmp(const void *a, const void *b)
{
    const struct sx_spanrow_meta *x = *(const struct sx_spanrow_meta *const *)a;
    const struct sx_spanrow_meta *y = *(const struct sx_spanrow_meta *const *)b;
    if (x->project_id != y->project_id) return x->project_id < y->project_id ? -1 : 1;
    return memcmp(x->trace_id, y->trace_id, 16);
}

/* Bytewise on the COPY text: the same order as bytewise on the names, but
 * for control characters and backslashes (escaped there). */
static int svc_cmp(const void *a, const void *b)
{
    const struct svc *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* Appends a service, given as COPY text, as one quoted element of an array
 * literal in COPY text: inside the quotes '"' and '\' take a backslash, and
 * COPY doubles every backslash. An escaped backslash ("\\") thus becomes
 * four; COPY's own escapes (\n, \r, \t) stay as they are. */
static int put_array_elem(struct sx_buf *out, const char *p, size_t n)
{
    if (sx_buf_putc(out, '"') != SX_OK) return SX_ERR;
    if (!memchr(p, '\\', n) && !memchr(p, '"', n)) {
        if (sx_buf_append(out, p, n) != SX_OK) return SX_ERR;
    } else {
        for (size_t i = 0; i < n; i++) {
            int rc;
            if (p[i] == '\\' && i + 1 < n && p[i + 1] == '\\') {
                rc = sx_buf_append(out, "\\\\\\\\", 4);
                i++;
            } else if (p[i] == '"') {
                rc = sx_buf_append(out, "\\\\\"", 3);
            } else {
                rc = sx_buf_putc(out, p[i]);
            }
            if (rc != SX_OK) return SX_ERR;
        }
    }
    return sx_buf_putc(out, '"');
}

static int put_i64(struct sx_buf *out, int64_t v)
{
    return sx_buf_printf(out, "%lld\t", (long long)v);
}

/* Renders the trace summaries of the fresh entries' rows into db->sql as
 * COPY text for traces_stage, one row per (project, trace); *ntraces gets
 * the count. SX_OK or SX_ERR (out of memory). */
static int traces_text(struct sx_persist_db *db, const struct sx_persist_batch *b, size_t *ntraces)
{
    const struct sx_spanrow_meta **o;
    const char *base = b->copy.data;
    size_t k = 0, rows = 0;
    int ok = 1;

    *ntraces = 0;
    sx_buf_reset(&db->sql);
    for (size_t i = 0; i < b->nents; i++)
        if (db->fresh[i]) rows += b->ents[i].rows;
    if (!rows) return SX_OK;
    void *p = grow(db->order, &db->order_cap, rows, sizeof(*o));
    if (!p) return SX_ERR;
    db->order = o = p;
    for (size_t i = 0; i < b->nents; i++) {
        if (!db->fresh[i]) continue;
        for (size_t m = 0; m < b->ents[i].rows; m++) o[k++] = &b->enc.meta[b->ents[i].meta0 + m];
    }
    qsort(o, k, sizeof(*o), meta_cmp);

    for (size_t i = 0, j; i < k && ok; i = j) {
        const struct sx_spanrow_meta *f = o[i], *root = f;
        int64_t start = f->start, end = f->end;
        size_t errors = 0, nsv = 0;
        if (!(p = grow(db->svcs, &db->svcs_cap, 1, sizeof(struct svc)))) return SX_ERR;
        db->svcs = p;
        for (j = i; j < k && meta_cmp(&o[j], &o[i]) == 0; j++) {
            const struct sx_spanrow_meta *m = o[j];
            struct svc *sv;
            if (m->start < start) start = m->start;
            if (m->end > end) end = m->end;
            errors += m->error;
            if ((m->root && !root->root) || (m->root == root->root && m->start < root->start)) root = m;
            sv = db->svcs;
            if (nsv && sv[nsv - 1].n == m->svc_len && memcmp(sv[nsv - 1].p, base + m->svc_off, m->svc_len) == 0)
                continue; /* rows of one resource come together */
            if (!(p = grow(db->svcs, &db->svcs_cap, nsv + 1, sizeof(struct svc)))) return SX_ERR;
            db->svcs = sv = p;
            sv[nsv].p = base + m->svc_off;
            sv[nsv].n = m->svc_len;
            nsv++;
        }
        struct svc *sv = db->svcs;
        if (nsv > 1) {
            size_t u = 1;
            qsort(sv, nsv, sizeof(*sv), svc_cmp);
            for (size_t s = 1; s < nsv; s++)
                if (svc_cmp(&sv[s], &sv[u - 1]) != 0) sv[u++] = sv[s];
            nsv = u;
        }
        char hex[33];
        sx_hex_encode(f->trace_id, 16, hex);
        ok &= sx_buf_printf(&db->sql, "%d\t\\\\x%.32s\t", (int)f->project_id, hex) == SX_OK;
        ok &= put_i64(&db->sql, start) == SX_OK && put_i64(&db->sql, end) == SX_OK;
        ok &= sx_buf_puts(&db->sql, root->root ? "t\t" : "f\t") == SX_OK;
        ok &= put_i64(&db->sql, root->start) == SX_OK;
        ok &= sx_buf_append(&db->sql, base + root->svc_off, root->svc_len) == SX_OK;
        ok &= sx_buf_putc(&db->sql, '\t') == SX_OK;
        ok &= sx_buf_append(&db->sql, base + root->name_off, root->name_len) == SX_OK;
        ok &= sx_buf_printf(&db->sql, "\t%zu\t%zu\t{", j - i, errors) == SX_OK;
        for (size_t s = 0; s < nsv && ok; s++) {
            if (s) ok &= sx_buf_putc(&db->sql, ',') == SX_OK;
            ok &= put_array_elem(&db->sql, sv[s].p, sv[s].n) == SX_OK;
        }
        ok &= sx_buf_puts(&db->sql, "}\n") == SX_OK;
        (*ntraces)++;
    }
    return ok ? SX_OK : SX_ERR;
}

int sx_persist_db_write(struct sx_persist_db *db, const struct sx_persist_batch *b, const size_t *ents, size_t n,
                        long long *inserted, char *err, size_t errlen)
{
    const struct sx_persist_signal *sig = b->sig;
    PGresult *res = NULL;
    int rc = SX_ERR;
    size_t nfresh = 0, ntraces = 0;
    long long rows = 0, events = 0;
    int64_t t0 = sx_mono_ns(), t1, t2, t3, t4;
    *inserted = 0;
    db->events = 0;
    db->npost = 0;
    err[0] = '\0';

    if (!exec_ok(db->conn, "BEGIN", &res)) {
        rc = sx_persist_db_fail(db, res, "BEGIN", err, errlen);
        goto cleanup;
    }
    PQclear(res);
    res = NULL;

    if ((rc = ledger_insert(db, sig->stream, b, ents, n, &nfresh, err, errlen)) != SX_OK) goto cleanup;
    t1 = sx_mono_ns();
    if (nfresh) {
        for (size_t i = 0; i < b->nents; i++)
            if (db->fresh[i]) rows += (long long)b->ents[i].rows;
        if ((rc = copy_in(db, sig->copy_sql, sig->copy_sql, b, NULL, err, errlen)) != SX_OK) goto cleanup;
    }
    t2 = sx_mono_ns();
    if (nfresh && sig->kind == SX_PERSIST_SPANS) {
        if (traces_text(db, b, &ntraces) != SX_OK) {
            rc = oom(err, errlen, "trace summaries");
            goto cleanup;
        }
        if ((rc = copy_in(db, "COPY traces_stage FROM STDIN", "COPY traces_stage", NULL, &db->sql, err, errlen)) !=
            SX_OK)
            goto cleanup;
        if (!exec_ok(db->conn, upsert_sql, &res)) {
            rc = sx_persist_db_fail(db, res, "INSERT traces", err, errlen);
            goto cleanup;
        }
        PQclear(res);
        res = NULL;
    }
    t3 = sx_mono_ns();
    /* Error events: also for entries that were not fresh (their users only). */
    if ((rc = sx_persist_errors_write(db, b, ents, n, &events, err, errlen)) != SX_OK) goto cleanup;
    t4 = sx_mono_ns();

    if (!exec_ok(db->conn, "COMMIT", &res)) {
        rc = sx_persist_db_fail(db, res, "COMMIT", err, errlen);
        goto cleanup;
    }
    PQclear(res);
    *inserted = rows;
    db->events = events;
    sx_debug("batch: %zu of %zu %s entries new, %lld rows, %zu traces, %lld error events; ledger %.1f ms, copy %.1f ms, "
             "traces %.1f ms, errors %.1f ms, commit %.1f ms",
             nfresh, n, sig->name, rows, ntraces, events, (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
             (double)(t3 - t2) / 1e6, (double)(t4 - t3) / 1e6, (double)(sx_mono_ns() - t4) / 1e6);
    return SX_OK;

cleanup:
    /* res was cleared by fail() or the drain loops. */
    if (rc == SX_OK) rc = SX_ERR;
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        res = PQexec(db->conn, "ROLLBACK");
        PQclear(res);
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
        db->session_ready = 0;
    }
    *inserted = 0;
    db->npost = 0;
    return rc;
}

int sx_persist_db_prune(struct sx_persist_db *db)
{
    PGresult *res = sx_pg_query(db->conn, "DELETE FROM persist_ledger WHERE applied_at < now() - interval '" LEDGER_KEEP "'",
                                0, NULL, "DELETE persist_ledger");
    if (!res) return SX_ERR;
    const char *n = PQcmdTuples(res);
    if (n && *n && strcmp(n, "0") != 0) sx_info("pruned %s ledger rows older than %s", n, LEDGER_KEEP);
    PQclear(res);
    return SX_OK;
}
