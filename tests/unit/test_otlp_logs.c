/* test_otlp_logs.c: OTLP logs decoding (protobuf, JSON, gzip'd), validation,
 * packing and the ExportLogsServiceResponse, against the SDK fixtures and
 * the data-driven cases in tests/data/otlp_logs (see otlp_cases.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <yajl/yajl_tree.h>

#include "gzip.h"
#include "otlp_cases.h"

typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log;

/* --- the signal's functions for the shared runner -------------------------------- */

static int logs_decode(int json, const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                       ProtobufCMessage **out, char *err, size_t errlen)
{
    sx_logs_req *req = NULL;
    int rc = json ? sx_otlp_logs_decode_json(buf, len, a, l, &req, err, errlen)
                  : sx_otlp_logs_decode_pb(buf, len, a, l, &req, err, errlen);
    *out = req ? &req->base : NULL;
    if (rc != SX_OTLP_OK) assert_null(req);
    return rc;
}

static void logs_validate(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                          struct sx_otlp_stats *st)
{
    sx_otlp_logs_validate((sx_logs_req *)req, l, a, st);
}

static size_t logs_count(const ProtobufCMessage *req)
{
    return sx_otlp_logs_count((const sx_logs_req *)req);
}

static uint8_t *logs_pack(const ProtobufCMessage *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_logs_pack((const sx_logs_req *)req, a, len);
}

static size_t logs_groups(const ProtobufCMessage *req)
{
    return ((const sx_logs_req *)req)->n_resource_logs;
}

static const struct case_ops ops = {"tests/data/otlp_logs", logs_decode, logs_validate, logs_count, logs_pack,
                                    logs_groups};

/* The idx-th record of req, in order. */
static pb_log *nth_record(sx_logs_req *req, size_t idx)
{
    for (size_t i = 0; i < req->n_resource_logs; i++)
        for (size_t j = 0; j < req->resource_logs[i]->n_scope_logs; j++) {
            Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = req->resource_logs[i]->scope_logs[j];
            if (idx < sl->n_log_records) return sl->log_records[idx];
            idx -= sl->n_log_records;
        }
    fail_msg("no record %zu", idx);
    return NULL;
}

static long long int_attr(const pb_log *r, const char *key)
{
    for (size_t i = 0; i < r->n_attributes; i++)
        if (!strcmp(r->attributes[i]->key, key)) return r->attributes[i]->value->int_value;
    return -1;
}

static sx_logs_req *decode_fixture(const char *name, int json, struct sx_arena *a, const struct sx_otlp_limits *l)
{
    size_t len;
    char err[256] = "";
    sx_logs_req *req = NULL;
    uint8_t *buf = fixture(name, &len);
    int rc = json ? sx_otlp_logs_decode_json(buf, len, a, l, &req, err, sizeof(err))
                  : sx_otlp_logs_decode_pb(buf, len, a, l, &req, err, sizeof(err));
    if (rc != SX_OTLP_OK) fail_msg("%s: %d %s", name, rc, err);
    free(buf);
    return req;
}

/* --- fixtures ------------------------------------------------------------------ */

/* The fixture's content: 10 records, severities, trace context, bodies. */
static void check_fixture_content(sx_logs_req *req)
{
    static const char non_ascii[] = "Zahlung fehlgeschlagen: Gr\xC3\xB6\xC3\x9F"
                                    "e \xC3\xBC"
                                    "berschritten \xE2\x9C\x93";
    size_t info = 0, warn = 0, error = 0, traced = 0, multiline = 0, found_non_ascii = 0;
    assert_int_equal(sx_otlp_logs_count(req), 10);
    for (size_t i = 0; i < 10; i++) {
        pb_log *r = nth_record(req, i);
        if (!strcmp(r->severity_text, "INFO")) info++, assert_int_equal(r->severity_number, 9);
        if (!strcmp(r->severity_text, "WARN")) warn++, assert_int_equal(r->severity_number, 13);
        if (!strcmp(r->severity_text, "ERROR")) error++, assert_int_equal(r->severity_number, 17);
        if (r->trace_id.len == 16) {
            traced++;
            assert_int_equal(r->span_id.len, 8);
        } else {
            assert_int_equal(r->trace_id.len, 0);
        }
        assert_non_null(r->body);
        assert_int_equal(r->body->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
        if (strchr(r->body->string_value, '\n')) multiline++;
        if (!strcmp(r->body->string_value, non_ascii)) found_non_ascii++;
        assert_true(r->time_unix_nano != 0);
        assert_true(r->observed_time_unix_nano >= r->time_unix_nano);
        assert_int_equal(int_attr(r, "test.log_seq"), (long long)i + 1);
    }
    assert_int_equal(info, 4);
    assert_int_equal(warn, 3);
    assert_int_equal(error, 3);
    assert_int_equal(traced, 7);
    assert_int_equal(multiline, 1);
    assert_int_equal(found_non_ascii, 1);
}

static void test_fixture_proto_and_json(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    size_t n1, n2;
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    default_limits(&l);

    sx_logs_req *rp = decode_fixture("logs-proto.bin", 0, a, &l);
    sx_logs_req *rj = decode_fixture("logs-json.json", 1, a, &l);
    check_fixture_content(rp);
    check_fixture_content(rj);

    /* Same content: the packed protobuf of both decodes is byte-identical,
     * before and after validation. */
    uint8_t *p1 = sx_otlp_logs_pack(rp, a, &n1);
    uint8_t *p2 = sx_otlp_logs_pack(rj, a, &n2);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal(n1, n2);
    assert_memory_equal(p1, p2, n1);

    sx_otlp_logs_validate(rp, &l, a, &st);
    assert_int_equal(st.items_in, 10);
    assert_int_equal(st.items_kept, 10);
    assert_int_equal(st.items_rejected, 0);
    assert_int_equal(st.attrs_dropped + st.values_truncated + st.bodies_truncated, 0);
    assert_string_equal(st.reason, "");
    sx_otlp_logs_validate(rj, &l, a, &st);
    assert_int_equal(st.items_kept, 10);
    check_fixture_content(rp); /* validation changed nothing */
    assert_int_equal(bad_strings(&rp->base), 0);

    uint8_t *v1 = sx_otlp_logs_pack(rp, a, &n1);
    uint8_t *v2 = sx_otlp_logs_pack(rj, a, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(v1, v2, n1);
    /* Validation changed nothing in a valid request (the SDK's bytes differ
     * only in default values it writes and protobuf-c omits). */
    assert_int_equal(n1, n2);
    assert_memory_equal(v1, p1, n1);
    sx_arena_destroy(a);
}

/* The gzip'd bodies inflate to the plain fixtures and decode the same. */
static void test_fixture_gzip(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {{"logs-proto.bin.gz", "logs-proto.bin"},
                                           {"logs-json.json.gz", "logs-json.json"}};
    struct sx_otlp_limits l;
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    default_limits(&l);
    for (size_t i = 0; i < 2; i++) {
        size_t glen, plen, olen;
        uint8_t *gz = fixture(pairs[i][0], &glen), *plain = fixture(pairs[i][1], &plen), *out;
        assert_int_equal(sx_gunzip(gz, glen, 1 << 20, a, &out, &olen), SX_GZIP_OK);
        assert_int_equal(olen, plen);
        assert_memory_equal(out, plain, plen);
        ProtobufCMessage *req = NULL;
        assert_int_equal(logs_decode(i == 1, out, olen, a, &l, &req, NULL, 0), SX_OTLP_OK);
        check_fixture_content((sx_logs_req *)req);
        free(gz);
        free(plain);
    }
    sx_arena_destroy(a);
}

/* Each record matches what summary-proto.json says the SDK sent. */
static void test_fixture_summary(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    size_t len;
    char yerr[256], h[33];
    struct sx_arena *a = sx_arena_create(64 * 1024, ARENA_MAX);
    default_limits(&l);
    sx_logs_req *req = decode_fixture("logs-proto.bin", 0, a, &l);

    uint8_t *sbuf = fixture("summary-proto.json", &len);
    yajl_val root = yajl_tree_parse((const char *)sbuf, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *lpath[] = {"logs", NULL};
    yajl_val logs = yajl_tree_get(root, lpath, yajl_t_array);
    assert_non_null(logs);
    assert_int_equal(logs->u.array.len, 10);
    for (size_t i = 0; i < logs->u.array.len; i++) {
        yajl_val e = logs->u.array.values[i];
        const char *seq[] = {"seq", NULL}, *body[] = {"body", NULL}, *sev[] = {"severity_number", NULL},
                   *tid[] = {"trace_id", NULL}, *sid[] = {"span_id", NULL};
        long long n = YAJL_GET_INTEGER(yajl_tree_get(e, seq, yajl_t_number));
        pb_log *r = nth_record(req, (size_t)n - 1);
        assert_string_equal(r->body->string_value, YAJL_GET_STRING(yajl_tree_get(e, body, yajl_t_string)));
        assert_int_equal(r->severity_number, YAJL_GET_INTEGER(yajl_tree_get(e, sev, yajl_t_number)));
        yajl_val t = yajl_tree_get(e, tid, yajl_t_any);
        if (YAJL_IS_STRING(t)) {
            hex(&r->trace_id, h);
            assert_string_equal(h, YAJL_GET_STRING(t));
            hex(&r->span_id, h);
            assert_string_equal(h, YAJL_GET_STRING(yajl_tree_get(e, sid, yajl_t_string)));
        } else {
            assert_int_equal(r->trace_id.len, 0);
        }
    }
    yajl_tree_free(root);
    free(sbuf);
    sx_arena_destroy(a);
}

/* A small arena cap turns into SX_OTLP_E_NOMEM, not a crash or a PROTOBUF. */
static void test_nomem(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    size_t len;
    char err[256];
    sx_logs_req *req = NULL;
    default_limits(&l);
    struct sx_arena *a = sx_arena_create(1024, 4 * 1024);
    uint8_t *buf = fixture("logs-proto.bin", &len);
    assert_int_equal(sx_otlp_logs_decode_pb(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_E_NOMEM);
    assert_null(req);
    free(buf);
    sx_arena_reset(a);
    buf = fixture("logs-json.json", &len);
    assert_int_equal(sx_otlp_logs_decode_json(buf, len, a, &l, &req, err, sizeof(err)), SX_OTLP_E_NOMEM);
    assert_null(req);
    free(buf);
    sx_arena_destroy(a);
}

static void test_limits_from_config(void **state)
{
    (void)state;
    struct sx_config c;
    struct sx_otlp_limits l;
    char err[128];
    sx_config_defaults(&c);
    assert_int_equal(c.max_log_records_per_request, 100000);
    assert_int_equal(c.max_points_per_request, 100000);
    assert_int_equal(c.max_log_body_len, 65536);
    assert_int_equal(sx_config_set(&c, "max_log_records_per_request", "21", err, sizeof(err)), SX_OK);
    assert_int_equal(sx_config_set(&c, "max_points_per_request", "22", err, sizeof(err)), SX_OK);
    assert_int_equal(sx_config_set(&c, "max_log_body_len", "23", err, sizeof(err)), SX_OK);
    assert_int_equal(sx_config_set(&c, "max_log_body_len", "3", err, sizeof(err)), SX_ERR);
    sx_otlp_limits_from_config(&l, &c);
    assert_int_equal(l.max_log_records, 21);
    assert_int_equal(l.max_points, 22);
    assert_int_equal(l.max_log_body_len, 23);
}

/* Validation on a request built by hand: read-only strings are never
 * written, long bodies are cut at a code point boundary, zero ids cleared,
 * a zero max_log_body_len means 64 KiB. */
static void test_validate_built_request(void **state)
{
    (void)state;
    struct sx_otlp_limits l;
    struct sx_otlp_stats st;
    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    default_limits(&l);
    l.max_log_body_len = 16;

    static uint8_t zero_tid[16], sid[8] = {1};
    Opentelemetry__Proto__Common__V1__AnyValue body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body.string_value = (char *)"0123456789abcd\xE2\x82\xAC tail \xff";
    pb_log r = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    r.body = &body;
    r.severity_text = (char *)"W\xc3";
    r.severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)77;
    r.trace_id.data = zero_tid, r.trace_id.len = 16;
    r.span_id.data = sid, r.span_id.len = 8;
    pb_log *recs[] = {&r};
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.log_records = recs, sl.n_log_records = 1;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sls[] = {&sl};
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.scope_logs = sls, rl.n_scope_logs = 1;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rls[] = {&rl};
    sx_logs_req req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = rls, req.n_resource_logs = 1;

    sx_otlp_logs_validate(&req, &l, a, &st);
    assert_int_equal(st.items_kept, 1);
    assert_int_equal(st.bodies_truncated, 1);
    assert_string_equal(body.string_value, "0123456789abcd"); /* byte 16 is inside the euro sign */
    assert_string_equal(r.severity_text, "W\xEF\xBF\xBD");
    assert_int_equal(r.severity_number, 0);
    assert_int_equal(r.trace_id.len, 0); /* all-zero: no trace context */
    assert_int_equal(r.span_id.len, 8);
    assert_non_null(strstr(st.reason, "1 log body truncated to 16 bytes"));
    assert_int_equal(bad_strings(&req.base), 0);

    l.max_log_body_len = 0;
    body.string_value = (char *)"short";
    sx_otlp_logs_validate(&req, &l, a, &st);
    assert_int_equal(st.bodies_truncated, 0);
    sx_otlp_logs_validate(NULL, &l, a, &st);
    assert_int_equal(st.items_in, 0);
    assert_int_equal(sx_otlp_logs_count(NULL), 0);
    sx_arena_destroy(a);
}

static void test_data_cases(void **state)
{
    (void)state;
    run_data_cases(&ops, 40);
}

/* --- responses -------------------------------------------------------------------- */

static void test_logs_response(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    size_t len = 99;

    uint8_t *p = sx_otlp_logs_response(0, 0, NULL, a, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);

    p = sx_otlp_logs_response(0, 3, "3 log records rejected: invalid trace id", a, &len);
    assert_non_null(p);
    sx_logs_resp *r = opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, len, p);
    assert_non_null(r);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_log_records, 3);
    assert_string_equal(r->partial_success->error_message, "3 log records rejected: invalid trace id");
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(r, NULL);

    /* Only trimmed: a warning with rejected 0. */
    p = sx_otlp_logs_response(0, 0, "1 log body truncated", a, &len);
    r = opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, len, p);
    assert_non_null(r);
    assert_non_null(r->partial_success);
    assert_int_equal(r->partial_success->rejected_log_records, 0);
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(r, NULL);

    p = sx_otlp_logs_response(1, 0, NULL, a, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "{}", 2);
    p = sx_otlp_logs_response(1, 0, "1 log body truncated", a, &len);
    static const char warn_json[] = "{\"partialSuccess\":{\"errorMessage\":\"1 log body truncated\"}}";
    assert_int_equal(len, sizeof(warn_json) - 1);
    assert_memory_equal(p, warn_json, len);

    p = sx_otlp_logs_response(1, 9000000000LL, "x", a, &len);
    char yerr[128];
    yajl_val root = yajl_tree_parse((const char *)p, yerr, sizeof(yerr));
    assert_non_null(root);
    const char *rpath[] = {"partialSuccess", "rejectedLogRecords", NULL};
    yajl_val rej = yajl_tree_get(root, rpath, yajl_t_string);
    assert_non_null(rej); /* int64 as a string, per OTLP JSON */
    assert_string_equal(YAJL_GET_STRING(rej), "9000000000");
    yajl_tree_free(root);
    sx_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_proto_and_json),
        cmocka_unit_test(test_fixture_gzip),
        cmocka_unit_test(test_fixture_summary),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_limits_from_config),
        cmocka_unit_test(test_validate_built_request),
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_logs_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
