/* test_otlp_metrics.c: OTLP metrics decoding (protobuf, JSON, gzip'd),
 * validation, packing and the ExportMetricsServiceResponse, against the SDK
 * fixtures (three cumulative collections, checked value by value against
 * summary-proto.json) and the data-driven cases in tests/data/otlp_metrics
 * (see otlp_cases.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include <yajl/yajl_tree.h>

#include "gzip.h"
#include "otlp_cases.h"

typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_ndp;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hdp;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;

/* --- the signal's functions for the shared runner -------------------------------- */

static int metrics_decode(int json, const uint8_t *buf, size_t len, struct sx_arena *a,
                          const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen)
{
    sx_metrics_req *req = NULL;
    int rc = json ? sx_otlp_metrics_decode_json(buf, len, a, l, &req, err, errlen)
                  : sx_otlp_metrics_decode_pb(buf, len, a, l, &req, err, errlen);
    *out = req ? &req->base : NULL;
    if (rc != SX_OTLP_OK) assert_null(req);
    return rc;
}

static void metrics_validate(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                             struct sx_otlp_stats *st)
{
    sx_otlp_metrics_validate((sx_metrics_req *)req, l, a, st);
}

static size_t metrics_count(const ProtobufCMessage *req)
{
    return sx_otlp_metrics_count((const sx_metrics_req *)req);
}

static uint8_t *metrics_pack(const ProtobufCMessage *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_metrics_pack((const sx_metrics_req *)req, a, len);
}

static size_t metrics_groups(const ProtobufCMessage *req)
{
    return ((const sx_metrics_req *)req)->n_resource_metrics;
}

static const struct case_ops ops = {"tests/data/otlp_metrics", metrics_decode, metrics_validate, metrics_count,
                                    metrics_pack, metrics_groups};

static pb_metric *find_metric(sx_metrics_req *req, const char *name)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++)
        for (size_t j = 0; j < req->resource_metrics[i]->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = req->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++)
                if (!strcmp(sm->metrics[k]->name, name)) return sm->metrics[k];
        }
    fail_msg("metric %s not decoded", name);
    return NULL;
}

/* Nonzero when attributes kv hold http.route = route and
 * http.response.status_code = status. */
static int has_route(pb_kv **kv, size_t n, const char *route, long long status)
{
    int r = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(kv[i]->key, "http.route")) r = !strcmp(kv[i]->value->string_value, route);
        if (!strcmp(kv[i]->key, "http.response.status_code")) s = kv[i]->value->int_value == status;
    }
    return r && s;
}

static yajl_val get(yajl_val v, const char *k, yajl_type t)
{
    const char *path[] = {k, NULL};
    yajl_val x = yajl_tree_get(v, path, t);
    if (!x) fail_msg("summary: no %s", k);
    return x;
}

static double num(yajl_val v)
{
    return YAJL_GET_DOUBLE(v);
}

/* One collection's request against expected_per_collection[idx]. */
static void check_collection(sx_metrics_req *req, yajl_val exp, double gauge_value)
{
    /* Monotonic int sum: one point per route/status. */
    pb_metric *m = find_metric(req, "http.server.requests");
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_true(m->sum->is_monotonic);
    assert_int_equal(m->sum->aggregation_temporality,
                     OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    assert_string_equal(m->unit, "{request}");
    yajl_val series = get(exp, "http.server.requests", yajl_t_array);
    assert_int_equal(m->sum->n_data_points, series->u.array.len);
    for (size_t i = 0; i < series->u.array.len; i++) {
        yajl_val e = series->u.array.values[i];
        const char *route = YAJL_GET_STRING(get(e, "http.route", yajl_t_string));
        long long status = YAJL_GET_INTEGER(get(e, "http.response.status_code", yajl_t_number));
        size_t hits = 0;
        for (size_t k = 0; k < m->sum->n_data_points; k++) {
            pb_ndp *p = m->sum->data_points[k];
            if (!has_route(p->attributes, p->n_attributes, route, status)) continue;
            hits++;
            assert_int_equal(p->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
            assert_int_equal(p->as_int, YAJL_GET_INTEGER(get(e, "value", yajl_t_number)));
            assert_true(p->time_unix_nano != 0 && p->time_unix_nano >= p->start_time_unix_nano);
        }
        assert_int_equal(hits, 1);
    }

    /* Explicit-bucket histogram: count, sum, min, max, buckets, bounds. */
    static const double bounds[] = {5, 10, 25, 50, 100, 250, 500, 1000};
    m = find_metric(req, "http.server.request.duration");
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    series = get(exp, "http.server.request.duration", yajl_t_array);
    assert_int_equal(m->histogram->n_data_points, series->u.array.len);
    for (size_t i = 0; i < series->u.array.len; i++) {
        yajl_val e = series->u.array.values[i];
        const char *route = YAJL_GET_STRING(get(e, "http.route", yajl_t_string));
        long long status = YAJL_GET_INTEGER(get(e, "http.response.status_code", yajl_t_number));
        size_t hits = 0;
        for (size_t k = 0; k < m->histogram->n_data_points; k++) {
            pb_hdp *p = m->histogram->data_points[k];
            if (!has_route(p->attributes, p->n_attributes, route, status)) continue;
            hits++;
            assert_int_equal(p->count, YAJL_GET_INTEGER(get(e, "count", yajl_t_number)));
            assert_int_equal(p->sum_present_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
            assert_int_equal(p->min_present_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN);
            assert_int_equal(p->max_present_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX);
            assert_true(p->sum == num(get(e, "sum", yajl_t_number)));
            assert_true(p->min == num(get(e, "min", yajl_t_number)));
            assert_true(p->max == num(get(e, "max", yajl_t_number)));
            yajl_val bc = get(e, "bucket_counts", yajl_t_array);
            assert_int_equal(p->n_bucket_counts, bc->u.array.len);
            assert_int_equal(p->n_explicit_bounds, SX_ARRAY_LEN(bounds));
            for (size_t b = 0; b < p->n_bucket_counts; b++)
                assert_int_equal(p->bucket_counts[b], YAJL_GET_INTEGER(bc->u.array.values[b]));
            for (size_t b = 0; b < p->n_explicit_bounds; b++) assert_true(p->explicit_bounds[b] == bounds[b]);
        }
        assert_int_equal(hits, 1);
    }

    /* Non-monotonic double sum. */
    m = find_metric(req, "checkout.carts.open");
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_false(m->sum->is_monotonic);
    assert_int_equal(m->sum->n_data_points, 1);
    assert_int_equal(m->sum->data_points[0]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    assert_true(m->sum->data_points[0]->as_double == num(get(exp, "checkout.carts.open", yajl_t_number)));

    /* Gauge. */
    m = find_metric(req, "process.memory.usage");
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    assert_int_equal(m->gauge->n_data_points, 1);
    assert_true(m->gauge->data_points[0]->as_double == gauge_value);
}

/* Decodes one fixture body (gunzipping *.gz) into a. */
static sx_metrics_req *decode_body(const char *name, int json, struct sx_arena *a, const struct sx_otlp_limits *l)
{
    size_t len, olen;
    char err[256] = "";
    uint8_t *buf = fixture(name, &len), *data = buf;
    if (strstr(name, ".gz")) {
        assert_int_equal(sx_gunzip(buf, len, 1 << 20, a, &data, &olen), SX_GZIP_OK);
        len = olen;
    }
    ProtobufCMessage *req = NULL;
    int rc = metrics_decode(json, data, len, a, l, &req, err, sizeof(err));
    if (rc != SX_OTLP_OK) fail_msg("%s: %d %s", name, rc, err);
    free(buf);
    return (sx_metrics_req *)req;
}

/* Every fixture of one capture mode (proto, json, proto-gzip, json-gzip)
 * holds the values its own summary-<mode>.json expects, and validation
 * keeps every point and changes nothing. */
static void check_mode(const char *mode, int json, const char *suffix)
{
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    size_t len, n1, n2;
    char yerr[256], name[80];
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    default_limits(&l);

    snprintf(name, sizeof(name), "summary-%s.json", mode);
    uint8_t *sbuf = fixture(name, &len);
    yajl_val root = yajl_tree_parse((const char *)sbuf, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *cpath[] = {"metrics", "expected_per_collection", NULL};
    yajl_val colls = yajl_tree_get(root, cpath, yajl_t_array);
    assert_non_null(colls);
    assert_int_equal(colls->u.array.len, 3);
    const char *ipath[] = {"metrics", "instruments", NULL};
    yajl_val inst = yajl_tree_get(root, ipath, yajl_t_array);
    assert_non_null(inst);
    yajl_val observed = get(inst->u.array.values[3], "observed_values", yajl_t_array);

    for (size_t c = 0; c < 3; c++) {
        yajl_val exp = colls->u.array.values[c];
        snprintf(name, sizeof(name), "metrics-%zu-%s", c + 1, suffix);
        sx_metrics_req *req = decode_body(name, json, a, &l);
        double gauge = num(observed->u.array.values[c]);
        check_collection(req, exp, gauge);
        size_t points = get(exp, "http.server.requests", yajl_t_array)->u.array.len +
                        get(exp, "http.server.request.duration", yajl_t_array)->u.array.len + 2;
        assert_int_equal(sx_otlp_metrics_count(req), points);

        uint8_t *p1 = sx_otlp_metrics_pack(req, a, &n1);
        assert_non_null(p1);
        sx_otlp_metrics_validate(req, &l, a, &st);
        assert_int_equal(st.items_in, points);
        assert_int_equal(st.items_kept, points);
        assert_int_equal(st.items_rejected + st.metrics_dropped + st.attrs_dropped + st.values_truncated, 0);
        assert_string_equal(st.reason, "");
        assert_int_equal(bad_strings(&req->base), 0);
        uint8_t *p2 = sx_otlp_metrics_pack(req, a, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, n1); /* nothing to change in a valid request */
        sx_arena_reset(a);
    }
    yajl_tree_free(root);
    free(sbuf);
    sx_arena_destroy(a);
}

static void test_fixture_collections(void **state)
{
    (void)state;
    check_mode("proto", 0, "proto.bin");
    check_mode("json", 1, "json.json");
}

static void test_fixture_gzip(void **state)
{
    (void)state;
    check_mode("proto-gzip", 0, "proto.bin.gz");
    check_mode("json-gzip", 1, "json.json.gz");
}

/* Copies what differs between two SDK runs (the point times and the RSS
 * gauge the SDK observed) from src to dst, metric by metric. */
static void align_run_values(sx_metrics_req *dst, sx_metrics_req *src)
{
    static const char *const names[] = {"http.server.requests", "http.server.request.duration", "checkout.carts.open",
                                        "process.memory.usage"};
    for (size_t i = 0; i < SX_ARRAY_LEN(names); i++) {
        pb_metric *d = find_metric(dst, names[i]), *s = find_metric(src, names[i]);
        assert_int_equal(d->data_case, s->data_case);
        if (d->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM) {
            assert_int_equal(d->histogram->n_data_points, s->histogram->n_data_points);
            for (size_t k = 0; k < d->histogram->n_data_points; k++) {
                d->histogram->data_points[k]->start_time_unix_nano = s->histogram->data_points[k]->start_time_unix_nano;
                d->histogram->data_points[k]->time_unix_nano = s->histogram->data_points[k]->time_unix_nano;
            }
            continue;
        }
        Opentelemetry__Proto__Metrics__V1__Gauge *dg = d->gauge, *sg = s->gauge;
        pb_ndp **dp = dg ? dg->data_points : d->sum->data_points, **sp = sg ? sg->data_points : s->sum->data_points;
        size_t n = dg ? dg->n_data_points : d->sum->n_data_points;
        for (size_t k = 0; k < n; k++) {
            dp[k]->start_time_unix_nano = sp[k]->start_time_unix_nano;
            dp[k]->time_unix_nano = sp[k]->time_unix_nano;
            if (dg) dp[k]->as_double = sp[k]->as_double;
        }
    }
}

/* Protobuf and JSON decode to the same packed bytes: the JSON capture is
 * another SDK run, so its times and gauge reading are aligned first;
 * everything else (names, units, attributes, kinds, flags, temporality,
 * values, buckets, bounds, sum/min/max presence) must already match. */
static void test_fixture_json_equals_proto(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    size_t n1, n2;
    char pname[64], jname[64];
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    default_limits(&l);
    for (int c = 1; c <= 3; c++) {
        snprintf(pname, sizeof(pname), "metrics-%d-proto.bin", c);
        snprintf(jname, sizeof(jname), "metrics-%d-json.json", c);
        sx_metrics_req *rp = decode_body(pname, 0, a, &l);
        sx_metrics_req *rj = decode_body(jname, 1, a, &l);
        align_run_values(rj, rp);
        uint8_t *p1 = sx_otlp_metrics_pack(rp, a, &n1);
        uint8_t *p2 = sx_otlp_metrics_pack(rj, a, &n2);
        assert_non_null(p1);
        assert_non_null(p2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, n1);
        sx_arena_reset(a);
    }
    sx_arena_destroy(a);
}

/* A small arena cap turns into SX_OTLP_E_NOMEM. */
static void test_nomem(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    size_t len;
    char err[256];
    sx_metrics_req *req = NULL;
    default_limits(&l);
    struct sx_arena *a = sx_arena_create(1024, 4 * 1024);
    uint8_t *buf = fixture("metrics-3-proto.bin", &len);
    assert_int_equal(sx_otlp_metrics_decode_pb(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_E_NOMEM);
    assert_null(req);
    free(buf);
    sx_arena_reset(a);
    buf = fixture("metrics-3-json.json", &len);
    assert_int_equal(sx_otlp_metrics_decode_json(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_E_NOMEM);
    assert_null(req);
    free(buf);
    sx_arena_destroy(a);
}

/* JSON details the fixtures do not cover: every data kind, the presence
 * oneofs, exemplars, exponential buckets, quantiles. */
static void test_json_all_kinds(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    size_t len;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    uint8_t *buf = slurp(ops.data_dir, "json_all_kinds.json", &len);
    assert_non_null(buf);
    sx_metrics_req *req = NULL;
    assert_int_equal(sx_otlp_metrics_decode_json(buf, len, a, &l, &req, NULL, 0), SX_OTLP_OK);
    free(buf);
    sx_otlp_metrics_validate(req, &l, a, &st);
    assert_int_equal(st.items_kept, 7);

    pb_metric *m = find_metric(req, "http.server.requests");
    assert_int_equal(m->sum->data_points[0]->as_int, 5);
    assert_int_equal(m->sum->data_points[0]->n_exemplars, 1);
    Opentelemetry__Proto__Metrics__V1__Exemplar *ex = m->sum->data_points[0]->exemplars[0];
    char idhex[33];
    hex(&ex->trace_id, idhex);
    assert_string_equal(idhex, "5654e161600dfb2ffdfaf7d91808ac81");
    hex(&ex->span_id, idhex);
    assert_string_equal(idhex, "b02cb7489ca21563");
    assert_int_equal(ex->value_case, OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE);
    assert_true(ex->as_double == 131.5);
    assert_int_equal(ex->n_filtered_attributes, 1);

    m = find_metric(req, "checkout.carts.open");
    assert_int_equal(m->sum->aggregation_temporality, 2); /* by name */

    m = find_metric(req, "process.memory.usage");
    assert_true(m->gauge->data_points[0]->as_double == 64229376.0); /* double as a string */

    m = find_metric(req, "latency.exp");
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *e = m->exponential_histogram->data_points[0];
    assert_int_equal(m->exponential_histogram->aggregation_temporality, 1);
    assert_int_equal(e->count, 10);
    assert_int_equal(e->scale, -3);
    assert_int_equal(e->zero_count, 1);
    assert_true(e->zero_threshold == 0.001);
    assert_int_equal(e->sum_present_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
    assert_true(e->sum == 55.5);
    assert_true(e->min == 0.5 && e->max == 20);
    assert_int_equal(e->positive->offset, -2);
    assert_int_equal(e->positive->n_bucket_counts, 3);
    assert_int_equal(e->positive->bucket_counts[2], 3);
    assert_int_equal(e->negative->offset, 1);
    assert_int_equal(e->negative->bucket_counts[0], 3);

    m = find_metric(req, "rpc.latency.summary");
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *s = m->summary->data_points[0];
    assert_int_equal(s->count, 4);
    assert_true(s->sum == 10.5);
    assert_int_equal(s->n_quantile_values, 2);
    assert_true(s->quantile_values[1]->quantile == 0.99 && s->quantile_values[1]->value == 4.5);

    /* A histogram point without sum/min/max leaves the oneofs unset. */
    sx_arena_reset(a);
    static const char nosum[] = "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
                                "\"histogram\":{\"dataPoints\":[{\"timeUnixNano\":\"1\",\"count\":\"0\"}]}}]}]}]}";
    assert_int_equal(sx_otlp_metrics_decode_json((const uint8_t *)nosum, sizeof(nosum) - 1, a, &l, &req, NULL, 0),
                     SX_OTLP_OK);
    pb_hdp *h = find_metric(req, "h")->histogram->data_points[0];
    assert_int_equal(h->sum_present_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT__NOT_SET);
    assert_int_equal(h->min_present_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT__NOT_SET);
    sx_arena_destroy(a);
}

/* Bad exemplar ids are cleared; the exemplar and its point stay. */
static void test_exemplar_ids_cleared(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    size_t len;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    uint8_t *buf = slurp(ops.data_dir, "json_bad_exemplar_ids.json", &len);
    assert_non_null(buf);
    sx_metrics_req *req = NULL;
    assert_int_equal(sx_otlp_metrics_decode_json(buf, len, a, &l, &req, NULL, 0), SX_OTLP_OK);
    free(buf);
    sx_otlp_metrics_validate(req, &l, a, &st);
    pb_ndp *p = find_metric(req, "http.server.requests")->sum->data_points[0];
    assert_int_equal(p->n_exemplars, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(p->exemplars[i]->trace_id.len, 0);
        assert_int_equal(p->exemplars[i]->span_id.len, 0);
        assert_true(p->exemplars[i]->as_double == 131.5);
    }
    assert_int_equal(sx_otlp_metrics_count(NULL), 0);
    sx_otlp_metrics_validate(NULL, &l, a, &st);
    assert_int_equal(st.items_in, 0);
    sx_arena_destroy(a);
}

static void test_data_cases(void **state)
{
    (void)state;
    run_data_cases(&ops, 40);
}

static void test_metrics_response(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    size_t len = 99;

    uint8_t *p = sx_otlp_metrics_response(0, 0, NULL, a, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);

    p = sx_otlp_metrics_response(0, 2, "2 data points rejected: data point without a time", a, &len);
    sx_metrics_resp *r =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(NULL, len, p);
    assert_non_null(r);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_data_points, 2);
    assert_string_equal(r->partial_success->error_message, "2 data points rejected: data point without a time");
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(r, NULL);

    p = sx_otlp_metrics_response(0, 0, "1 metric dropped: metric without data", a, &len);
    r = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(NULL, len, p);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_data_points, 0);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(r, NULL);

    p = sx_otlp_metrics_response(1, 0, NULL, a, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "{}", 2);

    p = sx_otlp_metrics_response(1, 12, "bad", a, &len);
    char yerr[128];
    yajl_val root = yajl_tree_parse((const char *)p, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *rpath[] = {"partialSuccess", "rejectedDataPoints", NULL};
    yajl_val rej = yajl_tree_get(root, rpath, yajl_t_string);
    assert_non_null(rej);
    assert_string_equal(YAJL_GET_STRING(rej), "12");
    yajl_tree_free(root);
    sx_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_collections),
        cmocka_unit_test(test_fixture_gzip),
        cmocka_unit_test(test_fixture_json_equals_proto),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_json_all_kinds),
        cmocka_unit_test(test_exemplar_ids_cleared),
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_metrics_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
