/* loadgen.c: HTTPS OTLP/protobuf load generator for POST /v1/traces (libcurl multi, keep-alive). */
#include "sx.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;

#define DEFAULT_FIXTURE "/work/shared/otlp-fixtures/traces-proto.bin"
#define MAX_FIXTURE_BYTES (16u << 20)
#define MAX_DISTINCT_TRACES 4096
#define MAX_CONNECTIONS 1024
#define MAX_THREADS 16
#define MAX_DURATION_S 600
#define REQUEST_TIMEOUT_MS 15000L
#define POLL_MAX_MS 50

/* Log-linear latency histogram in microseconds: 64 sub-buckets per power of
 * two, so every reported percentile is within 1/64 (1.6%) of the truth. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 2 + HIST_SUB * 40)

#define STATUS_SLOTS 600

enum { SIG_TRACES, SIG_LOGS, SIG_METRICS };
static const char *const signal_names[] = {"traces", "logs", "metrics"};

struct options {
    const char *url;
    const char *key;
    const char *cacert;
    const char *fixture;
    int insecure;
    int body_spans;
    int signal; /* SIG_TRACES, SIG_LOGS, SIG_METRICS */
    int connections;
    int threads;
    double duration_s;
    double rate; /* requests per second over all threads; 0: as fast as possible */
    int json;
};

/* The request body shared read-only by every connection as a template. */
struct body_tmpl {
    uint8_t *data;
    size_t len;
    size_t spans;
    size_t traces;    /* distinct trace ids per body */
    size_t *tid_off;  /* offset of every trace-id occurrence */
    size_t n_tid;
};

struct stats {
    uint64_t hist[HIST_BUCKETS];
    uint64_t status[STATUS_SLOTS]; /* HTTP status, 0: transport error */
    uint64_t done;
    uint64_t partial;   /* 200 whose response body is not empty: partial_success */
    uint64_t connects;  /* new connections opened */
    uint64_t lat_sum_us;
    uint64_t lat_max_us;
    int first_curl_err;
};

struct worker;

/* One keep-alive connection slot: an easy handle that owns its body copy. */
struct conn {
    CURL *easy;
    uint8_t *body;
    size_t resp_bytes;
    int busy;
    char errbuf[CURL_ERROR_SIZE];
};

struct worker {
    pthread_t tid;
    const struct options *opt;
    const struct body_tmpl *tmpl;
    struct curl_slist *headers;
    struct curl_slist *resolve;
    int nconn;
    double rate;
    struct conn *conns;
    struct stats st;
    int64_t start_ns;
    int64_t last_done_ns;
    int failed;
};

/* Per-request trace-id counter: starts at the wall clock in ns so two runs
 * against the same database never reuse a trace id. */
static _Atomic uint64_t trace_counter;
static uint64_t trace_base; /* first counter value of this run */

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    unsigned idx = shift * HIST_SUB + (unsigned)(v >> shift);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Upper bound of bucket idx, in microseconds. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 2 * HIST_SUB) return idx;
    unsigned shift = idx / HIST_SUB - 1;
    uint64_t mant = idx - shift * HIST_SUB;
    return ((mant + 1) << shift) - 1;
}

static uint64_t hist_percentile(const struct stats *s, double p)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) total += s->hist[i];
    if (total == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)total + 0.999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += s->hist[i];
        if (seen >= want) return SX_MIN(hist_value(i), s->lat_max_us);
    }
    return s->lat_max_us;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen --url URL --key KEY [--body-spans N] [--connections N] [--duration S]\n"
            "               [--rate REQ_PER_S] [--threads N] [--cacert FILE | --insecure]\n"
            "               [--fixture FILE] [--signal traces|logs|metrics] [--json]\n"
            "Sends OTLP/protobuf trace batches to URL (127.0.0.1 or localhost only) over\n"
            "kept-alive HTTP/1.1 connections; every request carries new trace ids.\n"
            "  --body-spans N   spans per request, a multiple of the fixture's (65): 65, 520\n"
            "  --rate R         requests per second in total (default: as fast as possible)\n"
            "  --signal S       logs: the fixture is an ExportLogsServiceRequest (times moved to now,\n"
            "                   trace ids patched per request); metrics: an ExportMetricsServiceRequest\n"
            "                   sent as it is. --body-spans is ignored; *spans* in the output count\n"
            "                   log records or metric data points.\n");
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) return SX_ERR;
    *out = v;
    return SX_OK;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},       {"key", required_argument, NULL, 'k'},
        {"body-spans", required_argument, NULL, 'b'}, {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},  {"rate", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},   {"cacert", required_argument, NULL, 'C'},
        {"insecure", no_argument, NULL, 'I'},        {"fixture", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},            {"help", no_argument, NULL, 'h'},
        {"signal", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0}};
    double v;
    int ch;

    memset(o, 0, sizeof(*o));
    o->fixture = DEFAULT_FIXTURE;
    o->body_spans = 65;
    o->connections = 16;
    o->threads = 1;
    o->duration_s = 10;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o->url = optarg; break;
        case 'k': o->key = optarg; break;
        case 'C': o->cacert = optarg; break;
        case 'I': o->insecure = 1; break;
        case 'f': o->fixture = optarg; break;
        case 'j': o->json = 1; break;
        case 'S':
            if (strcmp(optarg, "traces") == 0) o->signal = SIG_TRACES;
            else if (strcmp(optarg, "logs") == 0) o->signal = SIG_LOGS;
            else if (strcmp(optarg, "metrics") == 0) o->signal = SIG_METRICS;
            else goto bad;
            break;
        case 'b':
            if (parse_double(optarg, 1, 1000000, &v)) goto bad;
            o->body_spans = (int)v;
            break;
        case 'c':
            if (parse_double(optarg, 1, MAX_CONNECTIONS, &v)) goto bad;
            o->connections = (int)v;
            break;
        case 't':
            if (parse_double(optarg, 1, MAX_THREADS, &v)) goto bad;
            o->threads = (int)v;
            break;
        case 'd':
            if (parse_double(optarg, 0.1, MAX_DURATION_S, &o->duration_s)) goto bad;
            break;
        case 'r':
            if (parse_double(optarg, 0, 10000000, &o->rate)) goto bad;
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return SX_ERR;
        }
    }
    if (!o->url || !o->key) {
        fprintf(stderr, "loadgen: --url and --key are required\n");
        return SX_ERR;
    }
    if (o->threads > o->connections) o->threads = o->connections;
    return SX_OK;
bad:
    fprintf(stderr, "loadgen: bad value for --%s: %s\n", argv[optind - 1] + 2, optarg);
    return SX_ERR;
}

/* Refuses any target but the loopback address; fills the CURLOPT_RESOLVE
 * entry that pins "localhost" to 127.0.0.1 (never ::1 or a resolver). */
static int check_target(const char *url, char *resolve, size_t resolvelen)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *scheme = NULL;
    int rc = SX_ERR;

    if (!u) return SX_ERR;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        fprintf(stderr, "loadgen: cannot parse url %s\n", url);
        goto out;
    }
    if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "localhost") != 0) {
        fprintf(stderr, "loadgen: refusing target host %s: benchmarks only target 127.0.0.1\n", host);
        goto out;
    }
    if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
        fprintf(stderr, "loadgen: unsupported scheme %s\n", scheme);
        goto out;
    }
    resolve[0] = '\0';
    if (strcmp(host, "localhost") == 0) snprintf(resolve, resolvelen, "localhost:%s:127.0.0.1", port);
    rc = SX_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0;

    if (!f) {
        fprintf(stderr, "loadgen: fopen(%s) failed: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = sx_xmalloc(MAX_FIXTURE_BYTES);
    n = fread(buf, 1, MAX_FIXTURE_BYTES, f);
    if (ferror(f) || !feof(f)) {
        fprintf(stderr, "loadgen: cannot read %s (error or over %u bytes)\n", path, MAX_FIXTURE_BYTES);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Moves every time in req by delta ns; returns the number of spans. */
static size_t shift_times(trace_req *req, int64_t delta)
{
    size_t spans = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                pb_span *sp = ss->spans[i];
                if (sp->start_time_unix_nano) sp->start_time_unix_nano += (uint64_t)delta;
                if (sp->end_time_unix_nano) sp->end_time_unix_nano += (uint64_t)delta;
                for (size_t e = 0; e < sp->n_events; e++)
                    if (sp->events[e]->time_unix_nano) sp->events[e]->time_unix_nano += (uint64_t)delta;
                spans++;
            }
        }
    }
    return spans;
}

/* Latest span end time in req, unix ns. */
static uint64_t latest_end(const trace_req *req)
{
    uint64_t latest = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) latest = SX_MAX(latest, ss->spans[i]->end_time_unix_nano);
        }
    }
    return latest;
}

/* Collects the distinct 16-byte trace ids of req into ids; returns how many or
 * SX_ERR when a trace id is not 16 bytes or there are too many. */
static int distinct_traces(const trace_req *req, uint8_t (*ids)[16], size_t max)
{
    size_t n = 0;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                const ProtobufCBinaryData *t = &ss->spans[i]->trace_id;
                size_t k;
                if (t->len != 16) return SX_ERR;
                for (k = 0; k < n; k++)
                    if (memcmp(ids[k], t->data, 16) == 0) break;
                if (k < n) continue;
                if (n == max) return SX_ERR;
                memcpy(ids[n++], t->data, 16);
            }
        }
    }
    return (int)n;
}

/* Builds the body template: the fixture with its times moved to now, packed,
 * repeated (a repeated field concatenates) to reach body_spans, with the last
 * 8 bytes of every trace id rewritten so each (repetition, trace) pair is
 * distinct. Per request only the first 8 bytes of each trace id change. */
static int build_body(const struct options *o, struct body_tmpl *b)
{
    uint8_t(*ids)[16] = NULL;
    uint8_t *raw = NULL, *base = NULL;
    size_t rawlen = 0, baselen, reps, nocc = 0, cap;
    size_t *occ = NULL;
    int *occ_trace = NULL;
    trace_req *req = NULL;
    int ntr, rc = SX_ERR;

    raw = read_file(o->fixture, &rawlen);
    if (!raw) goto out;
    req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, rawlen, raw);
    if (!req) {
        fprintf(stderr, "loadgen: %s is not an ExportTraceServiceRequest\n", o->fixture);
        goto out;
    }
    /* Latest end one second ago: the batch looks freshly exported. */
    int64_t delta = sx_now_ns() - 1000000000LL - (int64_t)latest_end(req);
    size_t spans = shift_times(req, delta);
    if (spans == 0 || (size_t)o->body_spans % spans != 0) {
        fprintf(stderr, "loadgen: --body-spans must be a multiple of the fixture's %zu spans\n", spans);
        goto out;
    }
    reps = (size_t)o->body_spans / spans;
    ids = sx_xcalloc(MAX_DISTINCT_TRACES, 16);
    ntr = distinct_traces(req, ids, MAX_DISTINCT_TRACES);
    if (ntr <= 0) {
        fprintf(stderr, "loadgen: fixture trace ids unusable\n");
        goto out;
    }
    baselen = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
    base = sx_xmalloc(baselen);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, base);

    cap = spans * 4 + 16;
    occ = sx_xcalloc(cap, sizeof(*occ));
    occ_trace = sx_xcalloc(cap, sizeof(*occ_trace));
    for (int t = 0; t < ntr; t++) {
        const uint8_t *p = base;
        size_t left = baselen;
        const uint8_t *hit;
        while ((hit = memmem(p, left, ids[t], 16)) != NULL) {
            if (nocc == cap) {
                fprintf(stderr, "loadgen: too many trace id occurrences\n");
                goto out;
            }
            occ[nocc] = (size_t)(hit - base);
            occ_trace[nocc++] = t;
            left -= (size_t)(hit + 16 - p);
            p = hit + 16;
        }
    }
    if (nocc < spans) {
        fprintf(stderr, "loadgen: found %zu trace id occurrences for %zu spans\n", nocc, spans);
        goto out;
    }

    b->len = baselen * reps;
    b->data = sx_xmalloc(b->len);
    b->spans = spans * reps;
    b->traces = (size_t)ntr * reps;
    b->n_tid = nocc * reps;
    b->tid_off = sx_xcalloc(b->n_tid, sizeof(*b->tid_off));
    for (size_t r = 0; r < reps; r++) {
        memcpy(b->data + r * baselen, base, baselen);
        for (size_t i = 0; i < nocc; i++) {
            size_t off = r * baselen + occ[i];
            put_be64(b->data + off + 8, (uint64_t)(r * (size_t)ntr + (size_t)occ_trace[i] + 1));
            b->tid_off[r * nocc + i] = off;
        }
    }
    rc = SX_OK;
out:
    if (req) opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(occ_trace);
    free(occ);
    free(base);
    free(ids);
    free(raw);
    return rc;
}

/* Logs and metrics bodies: the fixture as one request. Logs get their times
 * moved to now and every 16-byte trace id's first 8 bytes patched per request
 * (patch_body), so the ledger sees a new entry each time; metrics go as they
 * are (the same points every request). b->spans counts log records or data
 * points. */
static int build_body_other(const struct options *o, struct body_tmpl *b)
{
    size_t rawlen = 0, cap = 0, n = 0;
    uint8_t *raw = read_file(o->fixture, &rawlen);
    int rc = SX_ERR;

    if (!raw) return SX_ERR;
    if (o->signal == SIG_METRICS) {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *m =
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, rawlen, raw);
        if (!m) {
            fprintf(stderr, "loadgen: %s is not an ExportMetricsServiceRequest\n", o->fixture);
            goto out;
        }
        for (size_t r = 0; r < m->n_resource_metrics; r++)
            for (size_t s = 0; s < m->resource_metrics[r]->n_scope_metrics; s++)
                for (size_t i = 0; i < m->resource_metrics[r]->scope_metrics[s]->n_metrics; i++) {
                    const Opentelemetry__Proto__Metrics__V1__Metric *x = m->resource_metrics[r]->scope_metrics[s]->metrics[i];
                    if (x->gauge) n += x->gauge->n_data_points;
                    else if (x->sum) n += x->sum->n_data_points;
                    else if (x->histogram) n += x->histogram->n_data_points;
                    else if (x->exponential_histogram) n += x->exponential_histogram->n_data_points;
                    else if (x->summary) n += x->summary->n_data_points;
                }
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(m, NULL);
        b->data = raw;
        b->len = rawlen;
        raw = NULL;
        b->spans = n;
        b->tid_off = sx_xcalloc(1, sizeof(*b->tid_off));
        return n ? SX_OK : SX_ERR;
    }
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *l =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, rawlen, raw);
    if (!l) {
        fprintf(stderr, "loadgen: %s is not an ExportLogsServiceRequest\n", o->fixture);
        goto out;
    }
    uint64_t latest = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t r = 0; r < l->n_resource_logs; r++)
            for (size_t s = 0; s < l->resource_logs[r]->n_scope_logs; s++)
                for (size_t i = 0; i < l->resource_logs[r]->scope_logs[s]->n_log_records; i++) {
                    Opentelemetry__Proto__Logs__V1__LogRecord *x = l->resource_logs[r]->scope_logs[s]->log_records[i];
                    if (pass == 0) {
                        latest = SX_MAX(latest, SX_MAX(x->time_unix_nano, x->observed_time_unix_nano));
                        n++;
                        continue;
                    }
                    uint64_t delta = (uint64_t)sx_now_ns() - 1000000000ULL - latest;
                    if (x->time_unix_nano) x->time_unix_nano += delta;
                    if (x->observed_time_unix_nano) x->observed_time_unix_nano += delta;
                }
    b->len = opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(l);
    b->data = sx_xmalloc(b->len);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(l, b->data);
    b->spans = n;
    cap = n + 1;
    b->tid_off = sx_xcalloc(cap, sizeof(*b->tid_off));
    for (size_t r = 0; r < l->n_resource_logs; r++)
        for (size_t s = 0; s < l->resource_logs[r]->n_scope_logs; s++)
            for (size_t i = 0; i < l->resource_logs[r]->scope_logs[s]->n_log_records; i++) {
                const ProtobufCBinaryData *t = &l->resource_logs[r]->scope_logs[s]->log_records[i]->trace_id;
                const uint8_t *hit;
                if (t->len != 16 || b->n_tid == cap) continue;
                hit = memmem(b->data, b->len, t->data, 16);
                if (hit) b->tid_off[b->n_tid++] = (size_t)(hit - b->data);
            }
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(l, NULL);
    if (b->n_tid == 0) {
        fprintf(stderr, "loadgen: no trace id in %s to make requests distinct\n", o->fixture);
        goto out;
    }
    rc = SX_OK;
out:
    free(raw);
    return rc;
}

/* Unpacks a patched body once and checks its span and trace counts. */
static int verify_body(const struct body_tmpl *b)
{
    uint8_t(*ids)[16] = sx_xcalloc(MAX_DISTINCT_TRACES, 16);
    trace_req *req;
    int rc = SX_ERR;

    req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, b->len, b->data);
    if (!req) {
        fprintf(stderr, "loadgen: patched body does not unpack\n");
        goto out;
    }
    int n = distinct_traces(req, ids, MAX_DISTINCT_TRACES);
    size_t spans = shift_times(req, 0);
    if (n < 0 || (size_t)n != b->traces || spans != b->spans) {
        fprintf(stderr, "loadgen: patched body has %zu spans / %d traces, expected %zu / %zu\n", spans, n, b->spans,
                b->traces);
        goto out;
    }
    rc = SX_OK;
out:
    if (req) opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    free(ids);
    return rc;
}

/* Gives this request's copy of the body new trace ids. */
static void patch_body(uint8_t *body, const struct body_tmpl *b)
{
    uint8_t hi[8];
    put_be64(hi, atomic_fetch_add_explicit(&trace_counter, 1, memory_order_relaxed));
    for (size_t i = 0; i < b->n_tid; i++) memcpy(body + b->tid_off[i], hi, 8);
}

static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct conn *c = userdata;
    SX_UNUSED(ptr);
    c->resp_bytes += size * nmemb;
    return size * nmemb;
}

static int conn_init(struct worker *w, struct conn *c)
{
    const struct options *o = w->opt;

    c->easy = curl_easy_init();
    if (!c->easy) return SX_ERR;
    c->body = sx_xmalloc(w->tmpl->len);
    memcpy(c->body, w->tmpl->data, w->tmpl->len);
    curl_easy_setopt(c->easy, CURLOPT_URL, o->url);
    curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, (char *)c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->tmpl->len);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, w->headers);
    if (w->resolve) curl_easy_setopt(c->easy, CURLOPT_RESOLVE, w->resolve);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    if (o->cacert) curl_easy_setopt(c->easy, CURLOPT_CAINFO, o->cacert);
    if (o->insecure) {
        curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return SX_OK;
}

static void record(struct worker *w, struct conn *c, CURLcode res)
{
    struct stats *s = &w->st;
    long code = 0, connects = 0;
    curl_off_t total_us = 0;

    if (res == CURLE_OK) curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    else if (!s->first_curl_err) {
        s->first_curl_err = (int)res;
        fprintf(stderr, "loadgen: transfer failed: %s\n", c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
    }
    curl_easy_getinfo(c->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &connects);
    if (code < 0 || code >= STATUS_SLOTS) code = STATUS_SLOTS - 1;
    s->status[code]++;
    s->done++;
    s->connects += (uint64_t)connects;
    if (code == 200 && c->resp_bytes > 0) s->partial++;
    uint64_t us = total_us > 0 ? (uint64_t)total_us : 0;
    s->hist[hist_index(us)]++;
    s->lat_sum_us += us;
    if (us > s->lat_max_us) s->lat_max_us = us;
}

static int start_transfer(struct worker *w, CURLM *multi, struct conn *c)
{
    patch_body(c->body, w->tmpl);
    c->resp_bytes = 0;
    c->errbuf[0] = '\0';
    if (curl_multi_add_handle(multi, c->easy) != CURLM_OK) return SX_ERR;
    c->busy = 1;
    return SX_OK;
}

/* Runs this worker's connections until the duration is over and every
 * transfer in flight has finished (bounded by REQUEST_TIMEOUT_MS). */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    CURLM *multi = curl_multi_init();
    int64_t end_ns, next_ns, interval_ns = 0;
    int running = 0, inflight = 0;

    if (!multi) {
        w->failed = 1;
        return NULL;
    }
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)w->nconn);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)w->nconn);
    for (int i = 0; i < w->nconn; i++) {
        if (conn_init(w, &w->conns[i])) {
            w->failed = 1;
            goto out;
        }
    }
    if (w->rate > 0) interval_ns = (int64_t)(1e9 / w->rate);
    w->start_ns = sx_mono_ns();
    end_ns = w->start_ns + (int64_t)(w->opt->duration_s * 1e9);
    next_ns = w->start_ns;
    w->last_done_ns = w->start_ns;

    for (;;) {
        int64_t now = sx_mono_ns();
        int stopping = now >= end_ns;

        if (!stopping) {
            for (int i = 0; i < w->nconn; i++) {
                struct conn *c = &w->conns[i];
                if (c->busy) continue;
                if (interval_ns && now < next_ns) break;
                if (start_transfer(w, multi, c)) {
                    w->failed = 1;
                    goto out;
                }
                inflight++;
                if (interval_ns) next_ns += interval_ns;
            }
        }
        if (stopping && inflight == 0) break;

        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct conn *c = NULL;
            CURL *e = msg->easy_handle;
            CURLcode res = msg->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
            record(w, c, res);
            curl_multi_remove_handle(multi, e);
            c->busy = 0;
            inflight--;
            w->last_done_ns = sx_mono_ns();
        }

        int wait_ms = POLL_MAX_MS;
        now = sx_mono_ns();
        if (interval_ns && !stopping && inflight < w->nconn) {
            int64_t until = next_ns - now;
            wait_ms = until <= 0 ? 0 : (int)SX_MIN((until + 999999) / 1000000, (int64_t)POLL_MAX_MS);
        }
        if (!stopping && end_ns - now < (int64_t)wait_ms * 1000000)
            wait_ms = (int)SX_MAX((end_ns - now) / 1000000, 0);
        if (wait_ms > 0 || inflight > 0) curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
out:
    for (int i = 0; i < w->nconn; i++) {
        struct conn *c = &w->conns[i];
        if (!c->easy) continue;
        if (c->busy) curl_multi_remove_handle(multi, c->easy);
        curl_easy_cleanup(c->easy);
        free(c->body);
    }
    curl_multi_cleanup(multi);
    return NULL;
}

static void merge(struct stats *dst, const struct stats *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++) dst->hist[i] += src->hist[i];
    for (unsigned i = 0; i < STATUS_SLOTS; i++) dst->status[i] += src->status[i];
    dst->done += src->done;
    dst->partial += src->partial;
    dst->connects += src->connects;
    dst->lat_sum_us += src->lat_sum_us;
    dst->lat_max_us = SX_MAX(dst->lat_max_us, src->lat_max_us);
    if (!dst->first_curl_err) dst->first_curl_err = src->first_curl_err;
}

static void report(const struct options *o, const struct body_tmpl *b, const struct stats *s, double elapsed)
{
    uint64_t ok = s->status[200];
    uint64_t s503 = s->status[503], s429 = s->status[429], err = s->status[0];
    uint64_t other = s->done - ok - s503 - s429 - err;
    double rps = elapsed > 0 ? (double)s->done / elapsed : 0;
    double sps = elapsed > 0 ? (double)(ok * b->spans) / elapsed : 0;
    double mean = s->done ? (double)s->lat_sum_us / (double)s->done / 1000.0 : 0;
    double p50 = (double)hist_percentile(s, 0.50) / 1000.0;
    double p90 = (double)hist_percentile(s, 0.90) / 1000.0;
    double p99 = (double)hist_percentile(s, 0.99) / 1000.0;
    double mx = (double)s->lat_max_us / 1000.0;

    if (o->json) {
        printf("{\"body_spans\":%zu,\"body_bytes\":%zu,\"connections\":%d,\"threads\":%d,\"target_rate\":%.1f,"
               "\"duration_s\":%.3f,\"requests\":%llu,\"ok\":%llu,\"rejected_503\":%llu,\"rejected_429\":%llu,"
               "\"other\":%llu,\"errors\":%llu,\"partial\":%llu,\"connects\":%llu,\"req_per_s\":%.1f,"
               "\"accepted_spans\":%llu,\"spans_per_s\":%.1f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"trace_base\":%llu,\"signal\":\"%s\"}\n",
               b->spans, b->len, o->connections, o->threads, o->rate, elapsed, (unsigned long long)s->done,
               (unsigned long long)ok, (unsigned long long)s503, (unsigned long long)s429,
               (unsigned long long)other, (unsigned long long)err, (unsigned long long)s->partial,
               (unsigned long long)s->connects, rps, (unsigned long long)(ok * b->spans), sps, mean, p50, p90, p99,
               mx, (unsigned long long)trace_base, signal_names[o->signal]);
        return;
    }
    printf("target        %s\n", o->url);
    printf("body          %zu spans, %zu traces, %zu bytes\n", b->spans, b->traces, b->len);
    printf("load          %d connections, %d thread(s), %s%.1f req/s, %.1f s\n", o->connections, o->threads,
           o->rate > 0 ? "rate " : "", o->rate > 0 ? o->rate : rps, elapsed);
    printf("requests      %llu (%.1f/s), new connections %llu\n", (unsigned long long)s->done, rps,
           (unsigned long long)s->connects);
    printf("accepted      %llu spans (%.1f spans/s)\n", (unsigned long long)(ok * b->spans), sps);
    printf("status        200: %llu  503: %llu  429: %llu  other: %llu  transport errors: %llu  partial: %llu\n",
           (unsigned long long)ok, (unsigned long long)s503, (unsigned long long)s429, (unsigned long long)other,
           (unsigned long long)err, (unsigned long long)s->partial);
    for (unsigned i = 1; i < STATUS_SLOTS; i++)
        if (s->status[i] && i != 200 && i != 503 && i != 429)
            printf("              %u: %llu\n", i, (unsigned long long)s->status[i]);
    printf("latency ms    p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", p50, p90, p99, mx, mean);
}

int main(int argc, char **argv)
{
    struct options o;
    struct body_tmpl body = {0};
    struct worker *workers = NULL;
    struct curl_slist *headers = NULL, *resolve = NULL;
    struct stats *total = NULL;
    char resolve_entry[300], keyhdr[512];
    int rc = 1, started = 0;

    if (parse_options(argc, argv, &o)) return 2;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    if (check_target(o.url, resolve_entry, sizeof(resolve_entry))) goto out;
    if (o.signal != SIG_TRACES ? build_body_other(&o, &body)
                               : (build_body(&o, &body) || verify_body(&body)))
        goto out;
    trace_base = (uint64_t)sx_now_ns();
    atomic_store(&trace_counter, trace_base);

    if ((size_t)snprintf(keyhdr, sizeof(keyhdr), "X-API-Key: %s", o.key) >= sizeof(keyhdr)) {
        fprintf(stderr, "loadgen: key too long\n");
        goto out;
    }
    headers = curl_slist_append(headers, "Content-Type: application/x-protobuf");
    headers = curl_slist_append(headers, keyhdr);
    headers = curl_slist_append(headers, "Expect:");
    if (!headers) goto out;
    if (resolve_entry[0] && !(resolve = curl_slist_append(NULL, resolve_entry))) goto out;

    workers = sx_xcalloc((size_t)o.threads, sizeof(*workers));
    for (int t = 0; t < o.threads; t++) {
        struct worker *w = &workers[t];
        w->opt = &o;
        w->tmpl = &body;
        w->headers = headers;
        w->resolve = resolve;
        w->nconn = o.connections / o.threads + (t < o.connections % o.threads);
        w->rate = o.rate > 0 ? o.rate * w->nconn / o.connections : 0;
        w->conns = sx_xcalloc((size_t)w->nconn, sizeof(*w->conns));
    }
    for (int t = 0; t < o.threads; t++) {
        if (pthread_create(&workers[t].tid, NULL, worker_main, &workers[t]) != 0) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            break;
        }
        started++;
    }
    total = sx_xcalloc(1, sizeof(*total));
    int64_t first = INT64_MAX, last = 0;
    int failed = started < o.threads;
    for (int t = 0; t < started; t++) {
        pthread_join(workers[t].tid, NULL);
        merge(total, &workers[t].st);
        first = SX_MIN(first, workers[t].start_ns);
        last = SX_MAX(last, workers[t].last_done_ns);
        failed |= workers[t].failed;
    }
    if (failed) fprintf(stderr, "loadgen: a worker failed to set up its transfers\n");
    report(&o, &body, total, started ? (double)(last - first) / 1e9 : 0);
    rc = failed ? 1 : 0;
out:
    if (workers)
        for (int t = 0; t < o.threads; t++) free(workers[t].conns);
    free(workers);
    free(total);
    curl_slist_free_all(headers);
    curl_slist_free_all(resolve);
    free(body.tid_off);
    free(body.data);
    curl_global_cleanup();
    return rc;
}
