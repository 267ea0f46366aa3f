/* test_ingest_http.c: sextant-ingest's pure request-parsing helpers (fcgi/ingest_http.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

/* The program's objects are not in libsextant.a: compile the unit in. */
#include "../../fcgi/ingest_http.c"

static void test_route(void **state)
{
    (void)state;
    assert_int_equal(sx_ingest_route_parse("/v1/traces"), SX_INGEST_ROUTE_TRACES);
    assert_int_equal(sx_ingest_route_parse("/v1/logs"), SX_INGEST_ROUTE_LOGS);
    assert_int_equal(sx_ingest_route_parse("/v1/metrics"), SX_INGEST_ROUTE_METRICS);
    assert_int_equal(sx_ingest_route_parse("/v1/logs/"), SX_INGEST_ROUTE_NONE);
    assert_int_equal(sx_ingest_route_parse("/v1/metric"), SX_INGEST_ROUTE_NONE);
    assert_int_equal(sx_ingest_route_parse("/v1/traces/"), SX_INGEST_ROUTE_NONE);
    assert_int_equal(sx_ingest_route_parse("/v1/tracesx"), SX_INGEST_ROUTE_NONE);
    assert_int_equal(sx_ingest_route_parse(""), SX_INGEST_ROUTE_NONE);
    assert_int_equal(sx_ingest_route_parse(NULL), SX_INGEST_ROUTE_NONE);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_int_equal(sx_ingest_ctype_parse("application/x-protobuf"), SX_INGEST_CT_PROTOBUF);
    assert_int_equal(sx_ingest_ctype_parse("application/protobuf"), SX_INGEST_CT_PROTOBUF);
    assert_int_equal(sx_ingest_ctype_parse("Application/X-Protobuf"), SX_INGEST_CT_PROTOBUF);
    assert_int_equal(sx_ingest_ctype_parse("application/json"), SX_INGEST_CT_JSON);
    assert_int_equal(sx_ingest_ctype_parse("application/json; charset=utf-8"), SX_INGEST_CT_JSON);
    assert_int_equal(sx_ingest_ctype_parse(" APPLICATION/JSON ;charset=UTF-8"), SX_INGEST_CT_JSON);
    assert_int_equal(sx_ingest_ctype_parse("application/jsonx"), SX_INGEST_CT_UNKNOWN);
    assert_int_equal(sx_ingest_ctype_parse("text/plain"), SX_INGEST_CT_UNKNOWN);
    assert_int_equal(sx_ingest_ctype_parse(""), SX_INGEST_CT_UNKNOWN);
    assert_int_equal(sx_ingest_ctype_parse(NULL), SX_INGEST_CT_UNKNOWN);
}

static void test_content_encoding(void **state)
{
    (void)state;
    assert_int_equal(sx_ingest_cenc_parse(NULL), SX_INGEST_CE_IDENTITY);
    assert_int_equal(sx_ingest_cenc_parse(""), SX_INGEST_CE_IDENTITY);
    assert_int_equal(sx_ingest_cenc_parse("identity"), SX_INGEST_CE_IDENTITY);
    assert_int_equal(sx_ingest_cenc_parse("none"), SX_INGEST_CE_IDENTITY);
    assert_int_equal(sx_ingest_cenc_parse("gzip"), SX_INGEST_CE_GZIP);
    assert_int_equal(sx_ingest_cenc_parse(" GZip "), SX_INGEST_CE_GZIP);
    assert_int_equal(sx_ingest_cenc_parse("x-gzip"), SX_INGEST_CE_GZIP);
    assert_int_equal(sx_ingest_cenc_parse("br"), SX_INGEST_CE_UNKNOWN);
    assert_int_equal(sx_ingest_cenc_parse("deflate"), SX_INGEST_CE_UNKNOWN);
    assert_int_equal(sx_ingest_cenc_parse("gzip, gzip"), SX_INGEST_CE_UNKNOWN);
}

static void test_key_extract(void **state)
{
    (void)state;
    const char *k;
    size_t n;
    assert_int_equal(sx_ingest_key_extract("abc", "Bearer xyz", &k, &n), SX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "abc", 3);
    assert_int_equal(sx_ingest_key_extract(NULL, "Bearer xyz", &k, &n), SX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "xyz", 3);
    assert_int_equal(sx_ingest_key_extract("  ", "bearer   xyz  ", &k, &n), SX_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(k, "xyz", 3);
    assert_int_equal(sx_ingest_key_extract(" sxk_1 ", NULL, &k, &n), SX_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(k, "sxk_1", 5);
    assert_int_equal(sx_ingest_key_extract(NULL, NULL, &k, &n), SX_ERR);
    assert_int_equal(sx_ingest_key_extract("", "", &k, &n), SX_ERR);
    assert_int_equal(sx_ingest_key_extract(NULL, "Basic dXNlcjpwYXNz", &k, &n), SX_ERR);
    assert_int_equal(sx_ingest_key_extract(NULL, "Bearer", &k, &n), SX_ERR);
    assert_int_equal(sx_ingest_key_extract(NULL, "Bearer   ", &k, &n), SX_ERR);
    assert_int_equal(sx_ingest_key_extract(NULL, "Bearerxyz", &k, &n), SX_ERR);
}

static void test_key_cache_roundtrip(void **state)
{
    (void)state;
    struct sx_ingest_key k = {.project_id = 12, .key_id = 345, .state = SX_INGEST_KEY_ACTIVE}, back;
    char buf[96];
    int n = sx_ingest_key_cache_format(&k, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen("12 345 active"));
    assert_string_equal(buf, "12 345 active");
    assert_int_equal(sx_ingest_key_cache_parse(buf, (size_t)n, &back), SX_OK);
    assert_int_equal(back.project_id, 12);
    assert_int_equal(back.key_id, 345);
    assert_int_equal(back.state, SX_INGEST_KEY_ACTIVE);

    k.state = SX_INGEST_KEY_REVOKED;
    n = sx_ingest_key_cache_format(&k, buf, sizeof(buf));
    assert_string_equal(buf, "12 345 revoked");
    assert_int_equal(sx_ingest_key_cache_parse(buf, (size_t)n, &back), SX_OK);
    assert_int_equal(back.state, SX_INGEST_KEY_REVOKED);

    assert_int_equal(sx_ingest_key_cache_parse("1 2 suspended", 13, &back), SX_OK);
    assert_int_equal(back.state, SX_INGEST_KEY_SUSPENDED);

    k.state = SX_INGEST_KEY_NONE;
    n = sx_ingest_key_cache_format(&k, buf, sizeof(buf));
    assert_string_equal(buf, "none");
    assert_int_equal(sx_ingest_key_cache_parse(buf, (size_t)n, &back), SX_OK);
    assert_int_equal(back.state, SX_INGEST_KEY_NONE);

    assert_int_equal(sx_ingest_key_cache_format(&k, buf, 4), SX_ERR);
}

static void test_key_cache_corrupt(void **state)
{
    (void)state;
    struct sx_ingest_key k;
    static const char *const bad[] = {"", "1", "1 2", "1 2 ", "1 2 bogus", "x 2 active", "1  2 active",
                                      "-1 2 active", "1 2 active ", "99999999999999999999 2 active", "nonex"};
    for (size_t i = 0; i < SX_ARRAY_LEN(bad); i++)
        assert_int_equal(sx_ingest_key_cache_parse(bad[i], strlen(bad[i]), &k), SX_ERR);
    /* Length-bounded: bytes after n are not read. */
    assert_int_equal(sx_ingest_key_cache_parse("1 2 activeXYZ", 10, &k), SX_OK);
}

static void test_parse_length(void **state)
{
    (void)state;
    unsigned long long v;
    assert_int_equal(sx_ingest_parse_length("0", &v), SX_OK);
    assert_int_equal(v, 0);
    assert_int_equal(sx_ingest_parse_length("8388608", &v), SX_OK);
    assert_int_equal(v, 8388608ULL);
    assert_int_equal(sx_ingest_parse_length(NULL, &v), SX_AGAIN);
    assert_int_equal(sx_ingest_parse_length("", &v), SX_AGAIN);
    assert_int_equal(sx_ingest_parse_length("-1", &v), SX_ERR);
    assert_int_equal(sx_ingest_parse_length("12a", &v), SX_ERR);
    assert_int_equal(sx_ingest_parse_length(" 12", &v), SX_ERR);
    assert_int_equal(sx_ingest_parse_length("99999999999999999999999", &v), SX_ERR);
}

static void test_partial_message(void **state)
{
    (void)state;
    struct sx_otlp_stats st;
    char msg[512];
    memset(&st, 0, sizeof(st));
    assert_int_equal(sx_ingest_partial_message(&st, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "");

    st.spans_rejected = 2;
    st.attrs_dropped = 3;
    assert_int_equal(sx_ingest_partial_message(&st, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "2 spans rejected, 3 attributes dropped");
    snprintf(st.reason, sizeof(st.reason), "2 spans rejected: end time before start time");
    assert_int_equal(sx_ingest_partial_message(&st, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "2 spans rejected: end time before start time");

    memset(&st, 0, sizeof(st));
    st.values_truncated = 1;
    assert_int_equal(sx_ingest_partial_message(&st, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "1 values truncated");

    /* A tiny buffer still gets a NUL-terminated prefix. */
    assert_int_equal(sx_ingest_partial_message(&st, msg, 5), 1);
    assert_string_equal(msg, "1 va");

    /* Logs and metrics: a truncated body or a dropped empty metric warns. */
    memset(&st, 0, sizeof(st));
    st.bodies_truncated = 2;
    assert_int_equal(sx_ingest_partial_message(&st, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "2 log bodies truncated");
    memset(&st, 0, sizeof(st));
    st.metrics_dropped = 1;
    snprintf(st.reason, sizeof(st.reason), "1 metric dropped: metric without data");
    assert_int_equal(sx_ingest_partial_message(&st, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "1 metric dropped: metric without data");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_content_encoding),
        cmocka_unit_test(test_key_extract),
        cmocka_unit_test(test_key_cache_roundtrip),
        cmocka_unit_test(test_key_cache_corrupt),
        cmocka_unit_test(test_parse_length),
        cmocka_unit_test(test_partial_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
