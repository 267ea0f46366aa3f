/* test_otlp.c: OTLP trace decoding (protobuf, JSON), validation, packing and
 * the response encoders, against the SDK fixtures and the data-driven cases
 * in tests/data/otlp (NAME.json or NAME.bin with NAME.expect). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include <yajl/yajl_tree.h>

#include "otlp_cases.h"

#include "google/rpc/status.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span pb_span;

/* --- the signal's functions for the shared runner -------------------------------- */

static int trace_decode(int json, const uint8_t *buf, size_t len, struct sx_arena *a,
                        const struct sx_otlp_limits *l, ProtobufCMessage **out, char *err, size_t errlen)
{
    sx_trace_req *req = NULL;
    int rc = json ? sx_otlp_trace_decode_json(buf, len, a, l, &req, err, errlen)
                  : sx_otlp_trace_decode_pb(buf, len, a, l, &req, err, errlen);
    *out = req ? &req->base : NULL;
    return rc;
}

static void trace_validate(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                           struct sx_otlp_stats *st)
{
    sx_otlp_trace_validate((sx_trace_req *)req, l, a, st);
}

static size_t trace_count(const ProtobufCMessage *req)
{
    return sx_otlp_trace_count((const sx_trace_req *)req);
}

static uint8_t *trace_pack(const ProtobufCMessage *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_trace_pack((const sx_trace_req *)req, a, len);
}

static size_t trace_groups(const ProtobufCMessage *req)
{
    return ((const sx_trace_req *)req)->n_resource_spans;
}

static const struct case_ops ops = {"tests/data/otlp", trace_decode, trace_validate, trace_count, trace_pack,
                                    trace_groups};

/* --- helpers ------------------------------------------------------------------ */

static pb_span *first_span(sx_trace_req *req)
{
    assert_true(req->n_resource_spans > 0);
    assert_true(req->resource_spans[0]->n_scope_spans > 0);
    assert_true(req->resource_spans[0]->scope_spans[0]->n_spans > 0);
    return req->resource_spans[0]->scope_spans[0]->spans[0];
}

static const char *service_name(sx_trace_req *req)
{
    Opentelemetry__Proto__Resource__V1__Resource *r = req->resource_spans[0]->resource;
    assert_non_null(r);
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!strcmp(r->attributes[i]->key, "service.name")) return r->attributes[i]->value->string_value;
    return NULL;
}

/* --- fixtures ------------------------------------------------------------------ */

static void test_fixture_proto(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    char err[256] = "";
    size_t len;
    uint8_t *buf = fixture("traces-proto.bin", &len);
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    sx_trace_req *req = NULL;
    default_limits(&l);

    assert_int_equal(sx_otlp_trace_decode_pb(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_OK);
    assert_non_null(req);
    assert_int_equal(sx_otlp_trace_count(req), 65);
    assert_string_equal(service_name(req), "checkout-api");

    pb_span *s = first_span(req);
    char h[33];
    hex(&s->trace_id, h);
    assert_string_equal(h, "5654e161600dfb2ffdfaf7d91808ac81");
    hex(&s->span_id, h);
    assert_string_equal(h, "e6ddfe79ddf866f4");
    hex(&s->parent_span_id, h);
    assert_string_equal(h, "9b0ed60ac9145a50");
    assert_string_equal(s->name, "hydrate order rows");
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL);
    assert_true(s->start_time_unix_nano == 1767225600050000000ULL);
    assert_true(s->end_time_unix_nano == 1767225600100000000ULL);

    sx_otlp_trace_validate(req, &l, a, &st);
    assert_int_equal(st.spans_in, 65);
    assert_int_equal(st.spans_kept, 65);
    assert_int_equal(st.spans_rejected, 0);
    assert_int_equal(st.attrs_dropped, 0);
    assert_int_equal(st.values_truncated, 0);
    assert_int_equal(st.events_dropped, 0);
    assert_int_equal(st.links_dropped, 0);
    assert_string_equal(st.reason, "");
    assert_int_equal(sx_otlp_trace_count(req), 65);
    assert_int_equal(bad_strings(&req->base), 0);

    sx_arena_destroy(a);
    free(buf);
}

/* Decodes a fixture pair and checks both give the same normalized request. */
static void check_pair(const char *pbname, const char *jsonname, size_t spans, const char *service)
{
    struct sx_otlp_limits l;
    char err[256] = "";
    size_t plen, jlen, pk1, pk2;
    uint8_t *pbuf = fixture(pbname, &plen);
    uint8_t *jbuf = fixture(jsonname, &jlen);
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    sx_trace_req *rp = NULL, *rj = NULL;
    default_limits(&l);

    assert_int_equal(sx_otlp_trace_decode_pb(pbuf, plen, a, &l, &rp, err, sizeof(err)), SX_OTLP_OK);
    int rc = sx_otlp_trace_decode_json(jbuf, jlen, a, &l, &rj, err, sizeof(err));
    if (rc != SX_OTLP_OK) fail_msg("%s: %d %s", jsonname, rc, err);
    assert_int_equal(sx_otlp_trace_count(rp), spans);
    assert_int_equal(sx_otlp_trace_count(rj), spans);
    assert_string_equal(service_name(rp), service);
    assert_string_equal(service_name(rj), service);

    /* Same content: the packed protobuf of both decodes is byte-identical. */
    uint8_t *p1 = sx_otlp_trace_pack(rp, a, &pk1);
    uint8_t *p2 = sx_otlp_trace_pack(rj, a, &pk2);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal(pk1, pk2);
    assert_memory_equal(p1, p2, pk1);

    /* And field by field for every span, so a mismatch says where. */
    size_t n = 0;
    for (size_t i = 0; i < rp->n_resource_spans; i++)
        for (size_t j = 0; j < rp->resource_spans[i]->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *sp = rp->resource_spans[i]->scope_spans[j];
            Opentelemetry__Proto__Trace__V1__ScopeSpans *sj = rj->resource_spans[i]->scope_spans[j];
            assert_int_equal(sp->n_spans, sj->n_spans);
            for (size_t k = 0; k < sp->n_spans; k++, n++) {
                pb_span *x = sp->spans[k], *y = sj->spans[k];
                assert_int_equal(x->trace_id.len, y->trace_id.len);
                assert_memory_equal(x->trace_id.data, y->trace_id.data, x->trace_id.len);
                assert_memory_equal(x->span_id.data, y->span_id.data, 8);
                assert_int_equal(x->parent_span_id.len, y->parent_span_id.len);
                assert_string_equal(x->name, y->name);
                assert_int_equal(x->kind, y->kind);
                assert_true(x->start_time_unix_nano == y->start_time_unix_nano);
                assert_true(x->end_time_unix_nano == y->end_time_unix_nano);
                assert_int_equal(x->n_attributes, y->n_attributes);
                for (size_t q = 0; q < x->n_attributes; q++) {
                    assert_string_equal(x->attributes[q]->key, y->attributes[q]->key);
                    assert_int_equal(x->attributes[q]->value->value_case, y->attributes[q]->value->value_case);
                }
                assert_int_equal(x->n_events, y->n_events);
                assert_int_equal(x->n_links, y->n_links);
                assert_int_equal(x->status != NULL, y->status != NULL);
            }
        }
    assert_int_equal(n, spans);

    sx_arena_destroy(a);
    free(pbuf);
    free(jbuf);
}

static void test_fixture_json_equals_proto(void **state)
{
    (void)state;
    check_pair("traces-proto.bin", "traces-json.json", 65, "checkout-api");
}

static void test_fixture_payments_worker(void **state)
{
    (void)state;
    check_pair("traces-payments-worker-proto.bin", "traces-payments-worker-json.json", 1, "payments-worker");

    struct sx_otlp_limits l;
    size_t len;
    uint8_t *buf = fixture("traces-payments-worker-json.json", &len);
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    sx_trace_req *req = NULL;
    default_limits(&l);
    assert_int_equal(sx_otlp_trace_decode_json(buf, len, a, &l, &req, NULL, 0), SX_OTLP_OK);
    pb_span *s = first_span(req);
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER);
    char h[33];
    hex(&s->trace_id, h);
    assert_string_equal(h, "5654e161600dfb2ffdfaf7d91808ac81"); /* joins the first failing trace */
    assert_int_equal(s->parent_span_id.len, 8);
    sx_arena_destroy(a);
    free(buf);
}

struct trace_count {
    char id[33];
    long long n;
};

static void count_traces(sx_trace_req *req, struct trace_count *tc, size_t *ntc, size_t cap)
{
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = req->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                char h[33];
                hex(&ss->spans[k]->trace_id, h);
                size_t q = 0;
                while (q < *ntc && strcmp(tc[q].id, h)) q++;
                if (q == *ntc) {
                    assert_true(*ntc < cap);
                    memcpy(tc[q].id, h, sizeof(h));
                    tc[q].n = 0;
                    (*ntc)++;
                }
                tc[q].n++;
            }
        }
}

/* Per-trace span counts of both requests (checkout-api and payments-worker)
 * match what summary-*.json expects a backend to hold. */
static void check_summary(const char *summary, const char *traces, const char *worker, int json)
{
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    struct trace_count tc[64];
    size_t ntc = 0, len;
    char err[256];
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    default_limits(&l);

    const char *names[2] = {traces, worker};
    for (int i = 0; i < 2; i++) {
        sx_trace_req *req = NULL;
        uint8_t *buf = fixture(names[i], &len);
        int rc = json ? sx_otlp_trace_decode_json(buf, len, a, &l, &req, err, sizeof(err))
                      : sx_otlp_trace_decode_pb(buf, len, a, &l, &req, err, sizeof(err));
        assert_int_equal(rc, SX_OTLP_OK);
        sx_otlp_trace_validate(req, &l, a, &st);
        assert_int_equal(st.spans_rejected, 0);
        count_traces(req, tc, &ntc, SX_ARRAY_LEN(tc));
        free(buf);
    }

    uint8_t *sbuf = fixture(summary, &len);
    char yerr[256];
    yajl_val root = yajl_tree_parse((const char *)sbuf, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *path[] = {"expected", "span_count_per_trace", NULL};
    yajl_val per = yajl_tree_get(root, path, yajl_t_object);
    assert_non_null(per);
    assert_int_equal(per->u.object.len, ntc);
    const char *tpath[] = {"expected", "trace_count", NULL};
    yajl_val tcount = yajl_tree_get(root, tpath, yajl_t_number);
    assert_non_null(tcount);
    assert_int_equal(YAJL_GET_INTEGER(tcount), ntc);
    for (size_t i = 0; i < per->u.object.len; i++) {
        size_t q = 0;
        while (q < ntc && strcmp(tc[q].id, per->u.object.keys[i])) q++;
        if (q == ntc) fail_msg("trace %s not decoded", per->u.object.keys[i]);
        assert_int_equal(tc[q].n, YAJL_GET_INTEGER(per->u.object.values[i]));
    }
    yajl_tree_free(root);
    free(sbuf);
    sx_arena_destroy(a);
}

static void test_fixture_summary_counts(void **state)
{
    (void)state;
    check_summary("summary-proto.json", "traces-proto.bin", "traces-payments-worker-proto.bin", 0);
    check_summary("summary-json.json", "traces-json.json", "traces-payments-worker-json.json", 1);
}

static void test_pack_roundtrip(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    size_t len, n1, n2;
    uint8_t *buf = fixture("traces-proto.bin", &len);
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    sx_trace_req *r1 = NULL, *r2 = NULL;
    default_limits(&l);
    assert_int_equal(sx_otlp_trace_decode_pb(buf, len, a, &l, &r1, NULL, 0), SX_OTLP_OK);
    uint8_t *p1 = sx_otlp_trace_pack(r1, a, &n1);
    assert_non_null(p1);
    assert_int_equal(sx_otlp_trace_decode_pb(p1, n1, a, &l, &r2, NULL, 0), SX_OTLP_OK);
    uint8_t *p2 = sx_otlp_trace_pack(r2, a, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(p1, p2, n1);
    assert_int_equal(sx_otlp_trace_count(r2), 65);
    assert_int_equal(sx_otlp_trace_count(NULL), 0);
    sx_arena_destroy(a);
    free(buf);
}

/* A small arena cap turns into SX_OTLP_E_NOMEM, not a crash or a PROTOBUF. */
static void test_nomem(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    size_t len;
    char err[256];
    sx_trace_req *req = NULL;
    default_limits(&l);

    uint8_t *buf = fixture("traces-proto.bin", &len);
    struct sx_arena *a = sx_arena_create(1024, 16 * 1024);
    assert_int_equal(sx_otlp_trace_decode_pb(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_E_NOMEM);
    assert_null(req);
    free(buf);

    sx_arena_reset(a);
    buf = fixture("traces-json.json", &len);
    assert_int_equal(sx_otlp_trace_decode_json(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_E_NOMEM);
    assert_null(req);
    free(buf);
    sx_arena_destroy(a);
}

static void test_limits_from_config(void **state)
{
    (void)state;
    struct sx_config c;
    struct sx_otlp_limits l;
    sx_config_defaults(&c);
    c.max_json_depth = 11;
    c.max_spans_per_request = 12;
    c.max_attributes = 13;
    c.max_attr_key_len = 14;
    c.max_attr_value_len = 15;
    c.max_any_value_depth = 16;
    c.max_events_per_span = 17;
    c.max_links_per_span = 18;
    sx_otlp_limits_from_config(&l, &c);
    assert_int_equal(l.max_json_depth, 11);
    assert_int_equal(l.max_spans, 12);
    assert_int_equal(l.max_attributes, 13);
    assert_int_equal(l.max_attr_key_len, 14);
    assert_int_equal(l.max_attr_value_len, 15);
    assert_int_equal(l.max_any_value_depth, 16);
    assert_int_equal(l.max_events, 17);
    assert_int_equal(l.max_links, 18);
}

/* --- targeted validation checks ------------------------------------------------- */

static sx_trace_req *decode_case(const char *name, struct sx_arena *a, const struct sx_otlp_limits *l)
{
    size_t len;
    char file[256], err[256];
    sx_trace_req *req = NULL;
    snprintf(file, sizeof(file), "%s.bin", name);
    uint8_t *buf = slurp(case_dir(&ops), file, &len);
    assert_non_null(buf);
    int rc = sx_otlp_trace_decode_pb(buf, len, a, l, &req, err, sizeof(err));
    if (rc != SX_OTLP_OK) fail_msg("%s: %d %s", name, rc, err);
    free(buf); /* protobuf-c copied every string and bytes field into a */
    return req;
}

static void test_utf8_repair_content(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    sx_trace_req *req = decode_case("pb_invalid_utf8", a, &l);
    assert_true(bad_strings(&req->base) > 0); /* protobuf-c does not check UTF-8 */
    sx_otlp_trace_validate(req, &l, a, &st);
    assert_int_equal(bad_strings(&req->base), 0);
    pb_span *s = first_span(req);
    /* \xff, overlong \xc0\x80, surrogate \xed\xa0\x80 and \xf4\x90\x80\x80 (past
     * U+10FFFF): each bad byte becomes U+FFFD. */
    assert_string_equal(s->name, "bad \xEF\xBF\xBD name \xEF\xBF\xBD\xEF\xBF\xBD "
                                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
                                 "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_string_equal(s->attributes[0]->key, "k\xEF\xBF\xBD");
    assert_string_equal(s->attributes[0]->value->string_value, "v\xEF\xBF\xBD");
    assert_string_equal(s->attributes[1]->value->array_value->values[0]->string_value, "\xEF\xBF\xBD");
    assert_string_equal(s->events[0]->name, "ev\xEF\xBF\xBD");
    sx_arena_destroy(a);
}

static void test_truncate_at_boundary(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    l.max_attr_value_len = 16;
    sx_trace_req *req = decode_case("pb_long_value", a, &l);
    sx_otlp_trace_validate(req, &l, a, &st);
    pb_span *s = first_span(req);
    /* "0123456789abcd" + 3 x U+20AC (3 bytes each): byte 16 is inside the
     * first euro sign, so the cut falls back to 14 bytes. */
    assert_string_equal(s->attributes[0]->value->string_value, "0123456789abcd");
    assert_string_equal(s->attributes[1]->value->string_value, "fits");
    assert_int_equal(st.values_truncated, 1);

    sx_arena_reset(a);
    l.max_attr_value_len = 17; /* exactly after the first euro sign */
    req = decode_case("pb_long_value", a, &l);
    sx_otlp_trace_validate(req, &l, a, &st);
    assert_string_equal(first_span(req)->attributes[0]->value->string_value, "0123456789abcd\xE2\x82\xAC");
    sx_arena_destroy(a);
}

static void test_limits_counts_on_span(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    l.max_attributes = 2;
    l.max_events = 2;
    l.max_links = 1;
    sx_trace_req *req = decode_case("pb_over_limits", a, &l);
    sx_otlp_trace_validate(req, &l, a, &st);
    pb_span *s = first_span(req);
    assert_int_equal(s->n_attributes, 2);
    assert_string_equal(s->attributes[0]->key, "a0"); /* the first ones are kept */
    assert_int_equal(s->dropped_attributes_count, 3);
    assert_int_equal(s->n_events, 2);
    assert_int_equal(s->dropped_events_count, 2);
    assert_int_equal(s->events[0]->n_attributes, 2);
    assert_int_equal(s->events[0]->dropped_attributes_count, 3);
    assert_int_equal(s->n_links, 1);
    assert_int_equal(s->dropped_links_count, 2);

    /* A zero parent id is normalized to "root". */
    sx_arena_reset(a);
    default_limits(&l);
    req = decode_case("pb_zero_parent", a, &l);
    sx_otlp_trace_validate(req, &l, a, &st);
    assert_int_equal(first_span(req)->parent_span_id.len, 0);
    sx_arena_destroy(a);
}

/* Validation works on structs built by hand with read-only strings too. */
static void test_validate_built_request(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    l.max_attr_value_len = 16;

    static uint8_t tid[16] = {1}, sid[8] = {2};
    Opentelemetry__Proto__Common__V1__AnyValue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = (char *)"a read-only literal that is long \xff";
    Opentelemetry__Proto__Common__V1__KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = (char *)"k";
    kv.value = &v;
    Opentelemetry__Proto__Common__V1__KeyValue *kvs[] = {&kv};
    pb_span s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    s.trace_id.data = tid, s.trace_id.len = 16;
    s.span_id.data = sid, s.span_id.len = 8;
    s.name = (char *)"n\xc3";
    s.start_time_unix_nano = s.end_time_unix_nano = 5;
    s.attributes = kvs, s.n_attributes = 1;
    pb_span *spans[] = {&s};
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.spans = spans, ss.n_spans = 1;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.scope_spans = sss, rs.n_scope_spans = 1;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
    sx_trace_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = rss, req.n_resource_spans = 1;

    sx_otlp_trace_validate(&req, &l, a, &st);
    assert_int_equal(st.spans_kept, 1);
    assert_int_equal(st.values_truncated, 1);
    assert_string_equal(s.name, "n\xEF\xBF\xBD");
    assert_string_equal(v.string_value, "a read-only lite");
    assert_int_equal(bad_strings(&req.base), 0);
    sx_otlp_trace_validate(NULL, &l, a, &st);
    assert_int_equal(st.spans_in, 0);
    sx_arena_destroy(a);
}

/* --- data-driven cases (the runner is otlp_cases.h's) --------------------------- */

static void test_data_cases(void **state)
{
    (void)state;
    run_data_cases(&ops, 40);
}

/* --- responses -------------------------------------------------------------------- */

static void test_trace_response(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    size_t len = 99;

    /* protobuf, success: the empty message */
    uint8_t *p = sx_otlp_trace_response(0, 0, NULL, a, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    sx_trace_resp *r = opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len, p);
    assert_non_null(r);
    assert_null(r->partial_success);
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);

    /* protobuf, partial success */
    p = sx_otlp_trace_response(0, 3, "3 spans rejected: invalid span id", a, &len);
    assert_non_null(p);
    r = opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len, p);
    assert_non_null(r);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_spans, 3);
    assert_string_equal(r->partial_success->error_message, "3 spans rejected: invalid span id");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);

    /* JSON */
    p = sx_otlp_trace_response(1, 0, NULL, a, &len);
    assert_non_null(p);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "{}", 2);

    /* Nothing rejected but something trimmed: a warning-only partialSuccess. */
    p = sx_otlp_trace_response(1, 0, "2 attributes dropped", a, &len);
    assert_non_null(p);
    static const char warn_json[] = "{\"partialSuccess\":{\"errorMessage\":\"2 attributes dropped\"}}";
    assert_int_equal(len, sizeof(warn_json) - 1);
    assert_memory_equal(p, warn_json, len);
    p = sx_otlp_trace_response(0, 0, "2 attributes dropped", a, &len);
    assert_non_null(p);
    sx_trace_resp *w = opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len, p);
    assert_non_null(w);
    assert_non_null(w->partial_success);
    assert_int_equal(w->partial_success->rejected_spans, 0);
    assert_string_equal(w->partial_success->error_message, "2 attributes dropped");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(w, NULL);

    p = sx_otlp_trace_response(1, 9000000000LL, "bad \"ids\"\n\xff", a, &len);
    assert_non_null(p);
    assert_int_equal(p[len], 0);
    char yerr[128];
    yajl_val root = yajl_tree_parse((const char *)p, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *rpath[] = {"partialSuccess", "rejectedSpans", NULL};
    yajl_val rej = yajl_tree_get(root, rpath, yajl_t_string);
    assert_non_null(rej); /* int64 as a string, per OTLP JSON */
    assert_string_equal(YAJL_GET_STRING(rej), "9000000000");
    const char *mpath[] = {"partialSuccess", "errorMessage", NULL};
    yajl_val msg = yajl_tree_get(root, mpath, yajl_t_string);
    assert_non_null(msg);
    assert_string_equal(YAJL_GET_STRING(msg), "bad \"ids\"\n\xEF\xBF\xBD");
    yajl_tree_free(root);

    /* over the arena cap: NULL */
    struct sx_arena *tiny = sx_arena_create(1024, 1024);
    char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_null(sx_otlp_trace_response(0, 1, big, tiny, &len));
    sx_arena_destroy(tiny);
    sx_arena_destroy(a);
}

static void test_status(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    size_t len;
    uint8_t *p = sx_otlp_status(0, 3, "traceId must be 32 hex digits", a, &len);
    assert_non_null(p);
    Google__Rpc__Status *s = google__rpc__status__unpack(NULL, len, p);
    assert_non_null(s);
    assert_int_equal(s->code, 3);
    assert_string_equal(s->message, "traceId must be 32 hex digits");
    assert_int_equal(s->n_details, 0);
    google__rpc__status__free_unpacked(s, NULL);

    p = sx_otlp_status(1, 8, "slow \"down\"", a, &len);
    assert_non_null(p);
    char yerr[128];
    yajl_val root = yajl_tree_parse((const char *)p, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *cpath[] = {"code", NULL};
    const char *mpath[] = {"message", NULL};
    yajl_val code = yajl_tree_get(root, cpath, yajl_t_number);
    yajl_val msg = yajl_tree_get(root, mpath, yajl_t_string);
    assert_non_null(code);
    assert_int_equal(YAJL_GET_INTEGER(code), 8);
    assert_string_equal(YAJL_GET_STRING(msg), "slow \"down\"");
    yajl_tree_free(root);

    p = sx_otlp_status(0, 0, NULL, a, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    sx_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_proto),
        cmocka_unit_test(test_fixture_json_equals_proto),
        cmocka_unit_test(test_fixture_payments_worker),
        cmocka_unit_test(test_fixture_summary_counts),
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_limits_from_config),
        cmocka_unit_test(test_utf8_repair_content),
        cmocka_unit_test(test_truncate_at_boundary),
        cmocka_unit_test(test_limits_counts_on_span),
        cmocka_unit_test(test_validate_built_request),
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_trace_response),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
