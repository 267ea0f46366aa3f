/* copyrate.c: this machine's PostgreSQL COPY ceiling for span rows (lib/spanrow.h) into a spans-like table. */
#include "buf.h"
#include "spanrow.h"
#include "sx.h"

#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;

#define DEFAULT_FIXTURE "/work/shared/otlp-fixtures/traces-proto.bin"
#define MAX_FIXTURE_BYTES (16u << 20)
#define MAX_ROWS 100000000LL
#define MAX_DISTINCT_TRACES 4096
#define CHUNK_BYTES (1u << 20)
#define TABLE "bench_spans"

struct options {
    const char *conninfo;
    const char *fixture;
    long long rows;
    int staged; /* COPY into a temp staging table, then INSERT ... ON CONFLICT DO NOTHING */
    int json;
    int keep;   /* leave the table for inspection */
};

/* The fixture's rows as COPY text, with where each trace id's hex starts. */
struct rows_tmpl {
    struct sx_buf text;
    size_t *row_end;  /* offset just past each row's newline */
    size_t nrows;
    size_t *hex_off;  /* offset of every trace-id hex occurrence (32 chars) */
    size_t nhex;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: copyrate --conninfo STR --rows N [--staged] [--fixture FILE] [--keep] [--json]\n"
            "Creates table " TABLE " (LIKE spans INCLUDING ALL: not partitioned, same indexes),\n"
            "COPYs N span rows with unique trace ids in one transaction, drops the table and\n"
            "prints rows/s. --staged COPYs into a temp table and moves the rows with\n"
            "INSERT ... SELECT ... ON CONFLICT DO NOTHING instead (an idempotent writer's cost).\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"conninfo", required_argument, NULL, 'c'}, {"rows", required_argument, NULL, 'n'},
        {"fixture", required_argument, NULL, 'f'},  {"staged", no_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},           {"help", no_argument, NULL, 'h'},
        {"keep", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    int ch;
    char *end;

    memset(o, 0, sizeof(*o));
    o->fixture = DEFAULT_FIXTURE;
    o->rows = 200000;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->conninfo = optarg; break;
        case 'f': o->fixture = optarg; break;
        case 's': o->staged = 1; break;
        case 'j': o->json = 1; break;
        case 'K': o->keep = 1; break;
        case 'n':
            errno = 0;
            o->rows = strtoll(optarg, &end, 10);
            if (errno || *end || o->rows < 1 || o->rows > MAX_ROWS) {
                fprintf(stderr, "copyrate: --rows must be 1..%lld\n", MAX_ROWS);
                return SX_ERR;
            }
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return SX_ERR;
        }
    }
    if (!o->conninfo) {
        fprintf(stderr, "copyrate: --conninfo is required\n");
        return SX_ERR;
    }
    return SX_OK;
}

static trace_req *load_fixture(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;
    trace_req *req = NULL;

    if (!f) {
        fprintf(stderr, "copyrate: fopen(%s) failed: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = sx_xmalloc(MAX_FIXTURE_BYTES);
    n = fread(buf, 1, MAX_FIXTURE_BYTES, f);
    if (ferror(f) || !feof(f)) fprintf(stderr, "copyrate: cannot read %s\n", path);
    else req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, n, buf);
    if (!req && !ferror(f) && feof(f)) fprintf(stderr, "copyrate: %s is not an ExportTraceServiceRequest\n", path);
    fclose(f);
    free(buf);
    return req;
}

/* Moves every span and event time by delta ns so the rows fall on today. */
static void shift_times(trace_req *req, int64_t delta)
{
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[i];
                sp->start_time_unix_nano += (uint64_t)delta;
                sp->end_time_unix_nano += (uint64_t)delta;
                for (size_t e = 0; e < sp->n_events; e++) sp->events[e]->time_unix_nano += (uint64_t)delta;
            }
        }
    }
}

/* Distinct trace ids of req as lower-case hex (33 bytes each); count or SX_ERR. */
static int trace_hexes(const trace_req *req, char (*hex)[33], size_t max)
{
    static const char dig[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                const ProtobufCBinaryData *t = &ss->spans[i]->trace_id;
                char h[33];
                size_t k;
                if (t->len != 16) return SX_ERR;
                for (size_t j = 0; j < 16; j++) {
                    h[2 * j] = dig[t->data[j] >> 4];
                    h[2 * j + 1] = dig[t->data[j] & 15];
                }
                h[32] = '\0';
                for (k = 0; k < n; k++)
                    if (memcmp(hex[k], h, 32) == 0) break;
                if (k < n) continue;
                if (n == max) return SX_ERR;
                /* Only the first half changes per pass: the second half must
                 * tell the fixture's traces apart on its own. */
                for (k = 0; k < n; k++)
                    if (memcmp(hex[k] + 16, h + 16, 16) == 0) return SX_ERR;
                memcpy(hex[n++], h, 33);
            }
        }
    }
    return (int)n;
}

/* Encodes the fixture once into COPY rows and finds every trace id in them. */
static int build_rows(const struct options *o, struct rows_tmpl *t)
{
    struct sx_spanrow enc;
    char(*hex)[33] = NULL;
    trace_req *req;
    size_t cap;
    int ntr, rc = SX_ERR;

    req = load_fixture(o->fixture);
    if (!req) return SX_ERR;
    int64_t latest = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++)
            for (size_t i = 0; i < req->resource_spans[r]->scope_spans[s]->n_spans; i++)
                latest = SX_MAX(latest, (int64_t)req->resource_spans[r]->scope_spans[s]->spans[i]->end_time_unix_nano);
    shift_times(req, sx_now_ns() - 1000000000LL - latest);

    hex = sx_xcalloc(MAX_DISTINCT_TRACES, sizeof(*hex));
    ntr = trace_hexes(req, hex, MAX_DISTINCT_TRACES);
    if (ntr <= 0) {
        fprintf(stderr, "copyrate: fixture trace ids unusable\n");
        goto out;
    }
    sx_buf_init(&t->text, 64u << 20);
    sx_spanrow_init(&enc, 4u << 20);
    if (sx_spanrow_encode(&enc, req, 1, &t->text) != SX_OK || t->text.len == 0) {
        fprintf(stderr, "copyrate: sx_spanrow_encode failed\n");
        sx_spanrow_term(&enc);
        goto out;
    }
    sx_spanrow_term(&enc);

    for (size_t i = 0; i < t->text.len; i++) t->nrows += t->text.data[i] == '\n';
    t->row_end = sx_xcalloc(t->nrows, sizeof(*t->row_end));
    for (size_t i = 0, r = 0; i < t->text.len; i++)
        if (t->text.data[i] == '\n') t->row_end[r++] = i + 1;

    cap = t->nrows * 4 + 16;
    t->hex_off = sx_xcalloc(cap, sizeof(*t->hex_off));
    for (int k = 0; k < ntr; k++) {
        const char *p = t->text.data, *hit;
        size_t left = t->text.len;
        while ((hit = memmem(p, left, hex[k], 32)) != NULL) {
            if (t->nhex == cap) goto out;
            t->hex_off[t->nhex++] = (size_t)(hit - t->text.data);
            left -= (size_t)(hit + 32 - p);
            p = hit + 32;
        }
    }
    if (t->nhex < t->nrows) {
        fprintf(stderr, "copyrate: %zu trace id occurrences for %zu rows\n", t->nhex, t->nrows);
        goto out;
    }
    rc = SX_OK;
out:
    free(hex);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    return rc;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "copyrate: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? SX_OK : SX_ERR;
}

/* Streams rows rows of the template, each pass with new trace ids. */
static int copy_rows(PGconn *c, const struct rows_tmpl *t, long long rows, const char *table, size_t *bytes)
{
    static const char dig[] = "0123456789abcdef";
    char sql[512];
    char *chunk = sx_xmalloc(CHUNK_BYTES + t->text.len);
    size_t used = 0;
    uint64_t pass = (uint64_t)sx_now_ns();
    long long left = rows;
    int rc = SX_ERR;
    PGresult *r;

    snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN", table, SX_SPANROW_COLUMNS);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "copyrate: COPY %s failed: %s", table, PQerrorMessage(c));
        PQclear(r);
        free(chunk);
        return SX_ERR;
    }
    PQclear(r);
    *bytes = 0;
    while (left > 0) {
        size_t nrows = (size_t)SX_MIN(left, (long long)t->nrows);
        size_t len = t->row_end[nrows - 1];
        char h[16];
        uint64_t v = pass++;
        for (int i = 15; i >= 0; i--) {
            h[i] = dig[v & 15];
            v >>= 4;
        }
        memcpy(chunk + used, t->text.data, len);
        for (size_t i = 0; i < t->nhex && t->hex_off[i] < len; i++) memcpy(chunk + used + t->hex_off[i], h, 16);
        used += len;
        left -= (long long)nrows;
        if (used >= CHUNK_BYTES || left == 0) {
            if (PQputCopyData(c, chunk, (int)used) != 1) {
                fprintf(stderr, "copyrate: PQputCopyData(%s) failed: %s", table, PQerrorMessage(c));
                goto out;
            }
            *bytes += used;
            used = 0;
        }
    }
    if (PQputCopyEnd(c, NULL) != 1) {
        fprintf(stderr, "copyrate: PQputCopyEnd(%s) failed: %s", table, PQerrorMessage(c));
        goto out;
    }
    rc = SX_OK;
out:
    while ((r = PQgetResult(c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            if (rc == SX_OK) fprintf(stderr, "copyrate: COPY %s failed: %s", table, PQerrorMessage(c));
            rc = SX_ERR;
        }
        PQclear(r);
    }
    free(chunk);
    return rc;
}

/* Refuses servers other than a local socket or the loopback address. */
static int check_local(PGconn *c)
{
    const char *h = PQhost(c);
    if (h && (h[0] == '/' || h[0] == '@' || strcmp(h, "127.0.0.1") == 0 || strcmp(h, "localhost") == 0))
        return SX_OK;
    fprintf(stderr, "copyrate: refusing server %s: benchmarks only target local PostgreSQL\n", h ? h : "?");
    return SX_ERR;
}

int main(int argc, char **argv)
{
    struct options o;
    struct rows_tmpl t = {0};
    PGconn *c = NULL;
    size_t bytes = 0;
    int rc = 1, created = 0;
    int64_t t0, t1, t2;

    if (parse_options(argc, argv, &o)) return 2;
    if (build_rows(&o, &t)) goto out;
    c = PQconnectdb(o.conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "copyrate: PQconnectdb failed: %s", PQerrorMessage(c));
        goto out;
    }
    if (check_local(c)) goto out;
    if (exec_ok(c, "SET client_min_messages = warning") || exec_ok(c, "DROP TABLE IF EXISTS " TABLE) ||
        exec_ok(c, "CREATE TABLE " TABLE " (LIKE spans INCLUDING ALL)"))
        goto out;
    created = 1;

    t0 = sx_mono_ns();
    if (exec_ok(c, "BEGIN")) goto out;
    if (o.staged) {
        if (exec_ok(c, "CREATE TEMP TABLE bench_stage (LIKE spans INCLUDING DEFAULTS) ON COMMIT DROP") ||
            copy_rows(c, &t, o.rows, "bench_stage", &bytes) ||
            exec_ok(c, "INSERT INTO " TABLE " SELECT * FROM bench_stage ON CONFLICT DO NOTHING"))
            goto out;
    } else if (copy_rows(c, &t, o.rows, TABLE, &bytes)) {
        goto out;
    }
    t1 = sx_mono_ns();
    if (exec_ok(c, "COMMIT")) goto out;
    t2 = sx_mono_ns();

    PGresult *r = PQexec(c, "SELECT count(*) FROM " TABLE);
    long long stored = PQresultStatus(r) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    if (stored != o.rows) {
        fprintf(stderr, "copyrate: %lld rows stored, %lld sent\n", stored, o.rows);
        goto out;
    }
    double secs = (double)(t2 - t0) / 1e9;
    double rps = (double)o.rows / secs;
    double mbps = (double)bytes / secs / 1e6;
    if (o.json)
        printf("{\"mode\":\"%s\",\"rows\":%lld,\"bytes\":%zu,\"seconds\":%.3f,\"commit_s\":%.3f,\"rows_per_s\":%.1f,"
               "\"mb_per_s\":%.1f}\n",
               o.staged ? "staged" : "copy", o.rows, bytes, secs, (double)(t2 - t1) / 1e9, rps, mbps);
    else
        printf("%s: %lld rows (%.1f MB of COPY text, %zu bytes/row) in %.3f s (commit %.3f s): %.0f rows/s, "
               "%.1f MB/s\n",
               o.staged ? "COPY to staging + INSERT ON CONFLICT" : "COPY", o.rows, (double)bytes / 1e6,
               bytes / (size_t)o.rows, secs, (double)(t2 - t1) / 1e9, rps, mbps);
    rc = 0;
out:
    if (c && PQstatus(c) == CONNECTION_OK) {
        if (PQtransactionStatus(c) != PQTRANS_IDLE) exec_ok(c, "ROLLBACK");
        if (created && !o.keep) exec_ok(c, "DROP TABLE IF EXISTS " TABLE);
    }
    PQfinish(c);
    free(t.hex_off);
    free(t.row_end);
    sx_buf_term(&t.text);
    return rc;
}
