/* seed.c: loads realistic volume fast for the query bench: synthetic traces and logs COPYed straight into PostgreSQL. */
#include "buf.h"
#include "logrow.h"
#include "spanrow.h"
#include "sx.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue av_t;

#define BATCH_TRACES 100
#define SPANS_PER_TRACE 10
#define BATCH_SPANS (BATCH_TRACES * SPANS_PER_TRACE)
#define BATCH_LOGS 1000
#define WINDOW_NS (23LL * 3600 * 1000000000LL) /* data spread over the last 23 h */

static const char *services[] = {"checkout-api", "payments-worker", "inventory-svc", "auth-svc", "search-api",
                                 "shipping-svc", "email-worker", "frontend"};
#define NSVC 8
static const char *routes[] = {"/checkout/:id", "/cart", "/orders/:id", "/search", "/login", "/products/:id",
                               "/shipping/quote", "/health"};
static const char *ops[] = {"SELECT orders", "redis GET", "HTTP POST", "validate cart", "render", "SELECT products",
                            "publish event", "charge card", "INSERT orders"};
#define NOPS 9
/* Common words appear in most logs; RARE_WORD in about one in RARE_EVERY. */
static const char *words[] = {"request", "user", "order", "completed", "cache", "miss", "retry", "connection",
                              "timeout", "payment", "queued", "session", "token", "refreshed", "latency",
                              "upstream", "db", "pool", "checkout", "item", "stock", "warning", "slow"};
#define NWORDS 23
#define RARE_WORD "quokkafrost"
#define RARE_EVERY 50000

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static PGconn *conn;

static int exec_ok(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "seed: %s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
    return ok ? SX_OK : SX_ERR;
}

static int copy_begin(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok) fprintf(stderr, "seed: %s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
    return ok ? SX_OK : SX_ERR;
}

static int copy_put(struct sx_buf *b)
{
    if (b->len && PQputCopyData(conn, b->data, (int)b->len) != 1) {
        fprintf(stderr, "seed: PQputCopyData: %s", PQerrorMessage(conn));
        return SX_ERR;
    }
    sx_buf_reset(b);
    return SX_OK;
}

static int copy_end(void)
{
    int rc = SX_OK;
    PGresult *r;
    if (PQputCopyEnd(conn, NULL) != 1) rc = SX_ERR;
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "seed: COPY: %s", PQerrorMessage(conn));
            rc = SX_ERR;
        }
        PQclear(r);
    }
    return rc;
}

static void set_str(kv_t *kv, av_t *av, const char *key, const char *val)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(av);
    kv->key = (char *)key;
    kv->value = av;
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)val;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* nspans spans in traces of SPANS_PER_TRACE, with their traces rows. */
static int seed_spans(long long project, long long nspans, int64_t now)
{
    static Opentelemetry__Proto__Trace__V1__ResourceSpans rs[NSVC], *rsp[NSVC];
    static Opentelemetry__Proto__Resource__V1__Resource res[NSVC];
    static kv_t rkv[NSVC][2], *rkvp[NSVC][2];
    static av_t rav[NSVC][2];
    static Opentelemetry__Proto__Trace__V1__ScopeSpans ss[NSVC], *ssp[NSVC];
    static Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    static Opentelemetry__Proto__Trace__V1__Span sp[BATCH_SPANS], *spp[NSVC][BATCH_SPANS];
    static Opentelemetry__Proto__Trace__V1__Status st[BATCH_SPANS];
    static kv_t akv[BATCH_SPANS][3], *akvp[BATCH_SPANS][3];
    static av_t aav[BATCH_SPANS][3];
    static uint8_t tid[BATCH_TRACES][16], sid[BATCH_SPANS][8];
    static char code[BATCH_SPANS][8];
    trace_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    struct sx_spanrow enc;
    struct sx_buf out, tr;
    long long ntraces = (nspans + SPANS_PER_TRACE - 1) / SPANS_PER_TRACE, done = 0;
    char sql[512];

    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = "seed";
    for (int s = 0; s < NSVC; s++) {
        opentelemetry__proto__trace__v1__resource_spans__init(&rs[s]);
        opentelemetry__proto__resource__v1__resource__init(&res[s]);
        opentelemetry__proto__trace__v1__scope_spans__init(&ss[s]);
        set_str(&rkv[s][0], &rav[s][0], "service.name", services[s]);
        set_str(&rkv[s][1], &rav[s][1], "host.name", "bench-host-1");
        rkvp[s][0] = &rkv[s][0];
        rkvp[s][1] = &rkv[s][1];
        res[s].attributes = rkvp[s];
        res[s].n_attributes = 2;
        rs[s].resource = &res[s];
        ss[s].scope = &scope;
        ss[s].spans = spp[s];
        ssp[s] = &ss[s];
        rs[s].scope_spans = &ssp[s];
        rs[s].n_scope_spans = 1;
        rsp[s] = &rs[s];
    }
    req.resource_spans = rsp;
    req.n_resource_spans = NSVC;
    sx_spanrow_init(&enc, 1u << 20);
    sx_buf_init(&out, 256u << 20);
    sx_buf_init(&tr, 1u << 30);

    snprintf(sql, sizeof(sql), "COPY spans (%s) FROM STDIN", SX_SPANROW_COLUMNS);
    if (copy_begin(sql)) return SX_ERR;
    for (long long t0 = 0; t0 < ntraces; t0 += BATCH_TRACES) {
        int nt = (int)SX_MIN((long long)BATCH_TRACES, ntraces - t0), k = 0;
        for (int s = 0; s < NSVC; s++) ss[s].n_spans = 0;
        for (int t = 0; t < nt; t++) {
            long long ti = t0 + t;
            int64_t start = now - WINDOW_NS + (int64_t)((double)WINDOW_NS * (double)ti / (double)ntraces);
            int64_t dur = 20000000 + (int64_t)(rnd() % 480000000);
            int root_svc = (int)(rnd() % NSVC), errors = 0;
            uint64_t v = (uint64_t)ti + 1, r = rnd();
            unsigned svcmask = 0;
            for (int i = 0; i < 8; i++) tid[t][i] = (uint8_t)(v >> (56 - 8 * i)), tid[t][8 + i] = (uint8_t)(r >> (8 * i));
            int nsp = (int)SX_MIN((long long)SPANS_PER_TRACE, nspans - ti * SPANS_PER_TRACE);
            for (int j = 0; j < nsp; j++, k++) {
                Opentelemetry__Proto__Trace__V1__Span *x = &sp[k];
                int svc = j == 0 ? root_svc : (j < 4 ? root_svc : (int)(rnd() % NSVC));
                uint64_t sv = rnd();
                opentelemetry__proto__trace__v1__span__init(x);
                opentelemetry__proto__trace__v1__status__init(&st[k]);
                memcpy(sid[k], &sv, 8);
                x->trace_id.data = tid[t];
                x->trace_id.len = 16;
                x->span_id.data = sid[k];
                x->span_id.len = 8;
                if (j > 0) {
                    x->parent_span_id.data = sid[k - j + (j > 1 ? (int)(rnd() % (unsigned)j) : 0)];
                    x->parent_span_id.len = 8;
                }
                int64_t off = j == 0 ? 0 : (int64_t)(rnd() % (uint64_t)(dur / 2));
                x->start_time_unix_nano = (uint64_t)(start + off);
                x->end_time_unix_nano = (uint64_t)(start + (j == 0 ? dur : off + (int64_t)(rnd() % (uint64_t)(dur / 2))));
                x->status = &st[k];
                int err = rnd() % 50 == 0;
                if (err) {
                    st[k].code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
                    st[k].message = "upstream failed";
                    errors++;
                }
                if (j == 0) {
                    const char *route = routes[rnd() % 8];
                    x->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
                    x->name = (char *)route;
                    snprintf(code[k], sizeof(code[k]), "%d", err ? 500 : 200);
                    set_str(&akv[k][0], &aav[k][0], "http.request.method", "GET");
                    set_str(&akv[k][1], &aav[k][1], "http.route", route);
                    set_str(&akv[k][2], &aav[k][2], "http.response.status_code", code[k]);
                    for (int a = 0; a < 3; a++) akvp[k][a] = &akv[k][a];
                    x->attributes = akvp[k];
                    x->n_attributes = 3;
                } else {
                    x->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
                    x->name = (char *)ops[rnd() % NOPS];
                    set_str(&akv[k][0], &aav[k][0], "db.system", "postgresql");
                    akvp[k][0] = &akv[k][0];
                    x->attributes = akvp[k];
                    x->n_attributes = 1;
                }
                ss[svc].spans[ss[svc].n_spans++] = x;
                svcmask |= 1u << svc;
            }
            /* the traces row: project, id, start, end, has_root, root start, root service/name,
             * span count, error count, services */
            char h[33];
            hex(h, tid[t], 16);
            sx_buf_printf(&tr, "%lld\t\\\\x%s\t%lld\t%lld\tt\t%lld\t%s\t%s\t%d\t%d\t{", project, h, (long long)start,
                          (long long)(start + dur), (long long)start, services[root_svc], sp[k - nsp].name, nsp, errors);
            int first = 1;
            for (int s = 0; s < NSVC; s++)
                if (svcmask & (1u << s)) {
                    sx_buf_printf(&tr, "%s%s", first ? "" : ",", services[s]);
                    first = 0;
                }
            sx_buf_puts(&tr, "}\n");
        }
        sx_spanrow_reset(&enc);
        if (sx_spanrow_encode(&enc, &req, project, &out) != SX_OK) {
            fprintf(stderr, "seed: sx_spanrow_encode failed\n");
            return SX_ERR;
        }
        done += (long long)enc.rows;
        if (out.len > (8u << 20) && copy_put(&out)) return SX_ERR;
    }
    if (copy_put(&out) || copy_end()) return SX_ERR;
    if (copy_begin("COPY traces (project_id, trace_id, start_time_ns, end_time_ns, has_root, root_start_ns, "
                   "root_service, root_name, span_count, error_count, services) FROM STDIN") ||
        copy_put(&tr) || copy_end())
        return SX_ERR;
    fprintf(stderr, "seed: %lld spans in %lld traces\n", done, ntraces);
    sx_spanrow_term(&enc);
    sx_buf_term(&out);
    sx_buf_term(&tr);
    return SX_OK;
}

static int seed_logs(long long project, long long nlogs, int64_t now, long long *rare)
{
    static Opentelemetry__Proto__Logs__V1__ResourceLogs rl[NSVC], *rlp[NSVC];
    static Opentelemetry__Proto__Resource__V1__Resource res[NSVC];
    static kv_t rkv[NSVC], *rkvp[NSVC];
    static av_t rav[NSVC];
    static Opentelemetry__Proto__Logs__V1__ScopeLogs sl[NSVC], *slp[NSVC];
    static Opentelemetry__Proto__Logs__V1__LogRecord lr[BATCH_LOGS], *lrp[NSVC][BATCH_LOGS];
    static av_t body[BATCH_LOGS];
    static char text[BATCH_LOGS][256];
    static uint8_t tid[BATCH_LOGS][16];
    static const char *sevt[] = {"DEBUG", "INFO", "INFO", "INFO", "INFO", "WARN", "ERROR"};
    static const int sevn[] = {5, 9, 9, 9, 9, 13, 17};
    logs_req req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    struct sx_logrow enc;
    struct sx_buf out;
    long long done = 0;
    char sql[512];

    for (int s = 0; s < NSVC; s++) {
        opentelemetry__proto__logs__v1__resource_logs__init(&rl[s]);
        opentelemetry__proto__resource__v1__resource__init(&res[s]);
        opentelemetry__proto__logs__v1__scope_logs__init(&sl[s]);
        set_str(&rkv[s], &rav[s], "service.name", services[s]);
        rkvp[s] = &rkv[s];
        res[s].attributes = &rkvp[s];
        res[s].n_attributes = 1;
        rl[s].resource = &res[s];
        sl[s].log_records = lrp[s];
        slp[s] = &sl[s];
        rl[s].scope_logs = &slp[s];
        rl[s].n_scope_logs = 1;
        rlp[s] = &rl[s];
    }
    req.resource_logs = rlp;
    req.n_resource_logs = NSVC;
    sx_logrow_init(&enc, 1u << 20);
    sx_buf_init(&out, 256u << 20);
    snprintf(sql, sizeof(sql), "COPY logs (%s) FROM STDIN", SX_LOGROW_COLUMNS);
    if (copy_begin(sql)) return SX_ERR;
    *rare = 0;
    for (long long l0 = 0; l0 < nlogs; l0 += BATCH_LOGS) {
        int nl = (int)SX_MIN((long long)BATCH_LOGS, nlogs - l0);
        for (int s = 0; s < NSVC; s++) sl[s].n_log_records = 0;
        for (int i = 0; i < nl; i++) {
            long long li = l0 + i;
            Opentelemetry__Proto__Logs__V1__LogRecord *x = &lr[i];
            int sv = (int)(rnd() % 7), svc = (int)(rnd() % NSVC), n = 0, nw = 5 + (int)(rnd() % 8);
            opentelemetry__proto__logs__v1__log_record__init(x);
            opentelemetry__proto__common__v1__any_value__init(&body[i]);
            x->time_unix_nano = (uint64_t)(now - WINDOW_NS + (int64_t)((double)WINDOW_NS * (double)li / (double)nlogs));
            x->observed_time_unix_nano = x->time_unix_nano;
            x->severity_number = sevn[sv];
            x->severity_text = (char *)sevt[sv];
            for (int w = 0; w < nw && n < 200; w++)
                n += snprintf(text[i] + n, sizeof(text[i]) - (size_t)n, "%s%s", w ? " " : "", words[rnd() % NWORDS]);
            n += snprintf(text[i] + n, sizeof(text[i]) - (size_t)n, " id=%llx took %d ms",
                          (unsigned long long)(rnd() & 0xffffffffffULL), (int)(rnd() % 2000));
            if (li % RARE_EVERY == RARE_EVERY / 2) {
                snprintf(text[i] + n, sizeof(text[i]) - (size_t)n, " " RARE_WORD);
                (*rare)++;
            }
            body[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            body[i].string_value = text[i];
            x->body = &body[i];
            if (rnd() % 3 == 0) {
                uint64_t a = rnd(), b = rnd();
                memcpy(tid[i], &a, 8);
                memcpy(tid[i] + 8, &b, 8);
                x->trace_id.data = tid[i];
                x->trace_id.len = 16;
            }
            sl[svc].log_records[sl[svc].n_log_records++] = x;
        }
        sx_logrow_reset(&enc);
        if (sx_logrow_encode(&enc, &req, project, now, &out) != SX_OK) {
            fprintf(stderr, "seed: sx_logrow_encode failed\n");
            return SX_ERR;
        }
        done += (long long)enc.rows;
        if (out.len > (8u << 20) && copy_put(&out)) return SX_ERR;
    }
    if (copy_put(&out) || copy_end()) return SX_ERR;
    fprintf(stderr, "seed: %lld logs (%lld with the rare word)\n", done, *rare);
    sx_logrow_term(&enc);
    sx_buf_term(&out);
    return SX_OK;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"conninfo", required_argument, NULL, 'c'}, {"project", required_argument, NULL, 'p'},
                                       {"spans", required_argument, NULL, 's'},    {"logs", required_argument, NULL, 'l'},
                                       {NULL, 0, NULL, 0}};
    const char *ci = NULL;
    long long project = 0, nspans = 0, nlogs = 0, rare = 0;
    int ch;
    char sql[256];

    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': ci = optarg; break;
        case 'p': project = atoll(optarg); break;
        case 's': nspans = atoll(optarg); break;
        case 'l': nlogs = atoll(optarg); break;
        default:
            fprintf(stderr, "usage: seed --conninfo STR --project ID [--spans N] [--logs M]\n");
            return 2;
        }
    }
    if (!ci || project < 1 || nspans < 0 || nlogs < 0) {
        fprintf(stderr, "usage: seed --conninfo STR --project ID [--spans N] [--logs M]\n");
        return 2;
    }
    conn = PQconnectdb(ci);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "seed: %s", PQerrorMessage(conn));
        return 1;
    }
    const char *h = PQhost(conn);
    if (!h || !(h[0] == '/' || h[0] == '@' || !strcmp(h, "127.0.0.1") || !strcmp(h, "localhost"))) {
        fprintf(stderr, "seed: refusing server %s: benchmarks only target local PostgreSQL\n", h ? h : "?");
        return 1;
    }
    int64_t now = sx_now_ns() - 60000000000LL, t0 = sx_mono_ns();
    for (int d = 0; d <= 1; d++) {
        long long ts = (long long)(now - d * (WINDOW_NS + 3600000000000LL));
        snprintf(sql, sizeof(sql), "SELECT sextant_ensure_span_partition(%lld), sextant_ensure_log_partition(%lld)", ts, ts);
        if (exec_ok(sql)) return 1;
    }
    if (nspans && seed_spans(project, nspans, now)) return 1;
    int64_t t1 = sx_mono_ns();
    if (nlogs && seed_logs(project, nlogs, now, &rare)) return 1;
    int64_t t2 = sx_mono_ns();
    printf("{\"spans\":%lld,\"traces\":%lld,\"logs\":%lld,\"rare_word\":\"%s\",\"rare_logs\":%lld,\"spans_s\":%.1f,"
           "\"logs_s\":%.1f}\n",
           nspans, (nspans + SPANS_PER_TRACE - 1) / SPANS_PER_TRACE, nlogs, RARE_WORD, rare, (double)(t1 - t0) / 1e9,
           (double)(t2 - t1) / 1e9);
    PQfinish(conn);
    return 0;
}
