/* test_scrub.c: attribute rules, built-in secret redaction and trace-id sampling (lib/scrub.c, lib/sample.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "otlp.h"
#include "sample.h"
#include "scrub.h"

static struct sx_arena *A;

static int setup(void **state)
{
    (void)state;
    A = sx_arena_create(64 * 1024, 64u << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sx_arena_destroy(A);
    return 0;
}

static const char *scan(const char *s)
{
    char *out = sx_scrub_secret_value(s, strlen(s), A, NULL);
    return out ? out : s;
}

static void test_secret_keys(void **state)
{
    (void)state;
    static const char *const yes[] = {"password", "db.password", "user_passwd", "http.request.header.authorization",
                                      "http.request.header.cookie", "http.response.header.set-cookie", "x-api-key",
                                      "API_KEY", "client_secret", "access_token", "Authorization", "apikey"};
    static const char *const no[] = {"gen_ai.usage.input_tokens", "tokenizer", "passwordless.enabled", "author",
                                     "cookies_enabled", "http.route", "secretary"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) assert_true(sx_scrub_secret_key(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) assert_false(sx_scrub_secret_key(no[i]));
}

static void test_secret_values(void **state)
{
    (void)state;
    assert_string_equal(scan("card 4111 1111 1111 1111 ok"), "card [REDACTED] ok");
    assert_string_equal(scan("4111-1111-1111-1111"), "[REDACTED]");
    assert_string_equal(scan("5500005555555559"), "[REDACTED]");
    /* Luhn-invalid, a unix ns timestamp, too short, inside a word: unchanged. */
    assert_string_equal(scan("4111 1111 1111 1112"), "4111 1111 1111 1112");
    assert_string_equal(scan("t=1700000000000000000"), "t=1700000000000000000");
    assert_string_equal(scan("411111111111"), "411111111111");
    assert_string_equal(scan("id4111111111111111"), "id4111111111111111");
    assert_string_equal(scan("Authorization: Bearer abc.def-ghi_jkl rest"), "Authorization: Bearer [REDACTED] rest");
    assert_string_equal(scan("basic dXNlcjpwYXNzd29yZA=="), "basic [REDACTED]");
    assert_string_equal(scan("bearer x"), "bearer x"); /* too short to be a credential */
    assert_string_equal(scan("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl end"),
                        "jwt=[REDACTED] end");
    assert_string_equal(scan("eyJ not a token"), "eyJ not a token");
    assert_null(sx_scrub_secret_value("plain text with no secrets 12345", 32, A, NULL));
    assert_true(sx_scrub_luhn("79927398713", 11));
    assert_false(sx_scrub_luhn("79927398710", 11));
}

static void test_rules_parse(void **state)
{
    (void)state;
    char err[300];
    static const char ok[] =
        "[{\"action\":\"drop\",\"key\":\"http.request.header.*\"},"
        "{\"action\":\"truncate\",\"key\":\"db.statement\",\"maxLength\":10},"
        "{\"action\":\"redact\",\"pattern\":\"ssn=[0-9]+\",\"ignoreCase\":true},"
        "{\"action\":\"redact\",\"key\":\"user.email\"}]";
    struct sx_scrub_rules *r = sx_scrub_rules_parse(ok, strlen(ok), err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->n, 4);
    assert_true(r->has_patterns);
    sx_scrub_rules_destroy(r);
    r = sx_scrub_rules_parse("[]", 2, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(r->n, 0);
    sx_scrub_rules_destroy(r);

    static const char *const bad[] = {
        "{}", "[1]", "[{\"action\":\"explode\",\"key\":\"a\"}]", "[{\"action\":\"drop\"}]",
        "[{\"action\":\"truncate\",\"key\":\"a\"}]", "[{\"action\":\"truncate\",\"key\":\"a\",\"maxLength\":0}]",
        "[{\"action\":\"redact\"}]", "[{\"action\":\"redact\",\"pattern\":\"(\"}]",
        "[{\"action\":\"drop\",\"key\":\"a\",\"colour\":1}]", "[{\"action\":\"drop\",\"key\":\"a\",\"pattern\":\"x\"}]",
        "not json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(sx_scrub_rules_parse(bad[i], strlen(bad[i]), err, sizeof(err)));
        assert_true(err[0] != '\0');
    }
}

/* A trace request from OTLP/JSON, validated. */
static sx_trace_req *trace(const char *json)
{
    struct sx_otlp_limits l;
    struct sx_config c;
    struct sx_otlp_stats st;
    sx_trace_req *req = NULL;
    char err[200];
    sx_config_defaults(&c);
    sx_otlp_limits_from_config(&l, &c);
    assert_int_equal(sx_otlp_trace_decode_json((const uint8_t *)json, strlen(json), A, &l, &req, err, sizeof(err)),
                     SX_OTLP_OK);
    memset(&st, 0, sizeof(st));
    sx_otlp_trace_validate(req, &l, A, &st);
    return req;
}

static const char *attr(const Opentelemetry__Proto__Trace__V1__Span *sp, const char *key)
{
    for (size_t i = 0; i < sp->n_attributes; i++)
        if (strcmp(sp->attributes[i]->key, key) == 0)
            return sp->attributes[i]->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
                       ? sp->attributes[i]->value->string_value
                       : "(not a string)";
    return NULL;
}

static void test_apply_to_spans(void **state)
{
    (void)state;
    static const char json[] =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"db.password\",\"value\":{\"stringValue\":\"x\"}}]},"
        "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\","
        "\"name\":\"s\",\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\",\"attributes\":["
        "{\"key\":\"http.request.header.cookie\",\"value\":{\"stringValue\":\"a=b\"}},"
        "{\"key\":\"http.request.header.authorization\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"Bearer abcdefghij\"}]}}},"
        "{\"key\":\"db.statement\",\"value\":{\"stringValue\":\"SELECT \\u00e9\\u00e9\\u00e9\"}},"
        "{\"key\":\"note\",\"value\":{\"stringValue\":\"SSN=123 and ssn=456, card 4111111111111111\"}},"
        "{\"key\":\"user.email\",\"value\":{\"stringValue\":\"a@b.c\"}},"
        "{\"key\":\"count\",\"value\":{\"intValue\":\"3\"}}],"
        "\"events\":[{\"name\":\"e\",\"timeUnixNano\":\"1\",\"attributes\":[{\"key\":\"token\",\"value\":{\"stringValue\":\"t\"}}]}]}]}]}]}";
    static const char rules_json[] =
        "[{\"action\":\"drop\",\"key\":\"http.request.header.c*\"},"
        "{\"action\":\"truncate\",\"key\":\"db.statement\",\"maxLength\":10},"
        "{\"action\":\"redact\",\"pattern\":\"ssn=[0-9]+\",\"ignoreCase\":true},"
        "{\"action\":\"redact\",\"key\":\"user.email\"}]";
    char err[300];
    struct sx_scrub_rules *rules = sx_scrub_rules_parse(rules_json, strlen(rules_json), err, sizeof(err));
    assert_non_null(rules);
    sx_trace_req *req = trace(json);
    struct sx_scrub_stats st = {0, 0, 0};
    sx_scrub_trace_req(req, rules, 1, A, &st);
    Opentelemetry__Proto__Trace__V1__Span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_null(attr(sp, "http.request.header.cookie"));
    assert_string_equal(attr(sp, "http.request.header.authorization"), "[REDACTED]");
    assert_string_equal(attr(sp, "db.statement"), "SELECT \xc3\xa9"); /* 10 bytes cut back to a UTF-8 boundary (9) */
    assert_string_equal(attr(sp, "note"), "[REDACTED] and [REDACTED], card [REDACTED]");
    assert_string_equal(attr(sp, "user.email"), "[REDACTED]");
    assert_string_equal(attr(sp, "count"), "(not a string)");
    assert_string_equal(sp->events[0]->attributes[0]->value->string_value, "[REDACTED]");
    assert_string_equal(req->resource_spans[0]->resource->attributes[0]->value->string_value, "[REDACTED]");
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.redacted, 5); /* authorization, note, user.email, event token, resource password */
    sx_scrub_rules_destroy(rules);

    /* Secrets off and no rules: nothing changes. */
    req = trace(json);
    memset(&st, 0, sizeof(st));
    sx_scrub_trace_req(req, NULL, 0, A, &st);
    sp = req->resource_spans[0]->scope_spans[0]->spans[0];
    assert_string_equal(attr(sp, "http.request.header.cookie"), "a=b");
    assert_int_equal(st.redacted + st.dropped + st.truncated, 0);
}

static void test_sampling_rule(void **state)
{
    (void)state;
    uint8_t id[16] = {0};
    assert_int_equal(sx_sample_threshold(0), 0);
    assert_int_equal(sx_sample_threshold(1), SX_SAMPLE_ONE);
    assert_int_equal(sx_sample_threshold(0.5), SX_SAMPLE_ONE / 2);
    /* Low 56 bits 0x7fffffffffffff: just under half -> kept at 0.5. */
    memset(id + 9, 0xff, 7);
    id[9] = 0x7f;
    id[8] = 0xff; /* byte 8 is not part of the decision */
    assert_true(sx_sample_keep(id, 16, sx_sample_threshold(0.5)));
    id[9] = 0x80;
    assert_false(sx_sample_keep(id, 16, sx_sample_threshold(0.5)));
    assert_true(sx_sample_keep(id, 16, sx_sample_threshold(1)));
    assert_false(sx_sample_keep(id, 16, sx_sample_threshold(0)));

    /* Over many ids the kept share is near the rate. */
    size_t kept = 0;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (int b = 0; b < 8; b++) id[8 + b] = (uint8_t)(x >> (8 * b));
        kept += (size_t)sx_sample_keep(id, 16, sx_sample_threshold(0.25));
    }
    assert_in_range(kept, 24000, 26000);
}

static void test_sampling_keeps_whole_traces_errors_and_slow(void **state)
{
    (void)state;
    /* Trace a (low bits 0x00..: kept at 0.5) has two spans; trace b (0xff..:
     * dropped) has a plain span, an error span, an exception span and a slow one. */
    static const char json[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"11111111111111110000000000000001\",\"spanId\":\"0000000000000001\",\"name\":\"a1\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\"},"
        "{\"traceId\":\"11111111111111110000000000000001\",\"spanId\":\"0000000000000002\",\"name\":\"a2\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\"},"
        "{\"traceId\":\"2222222222222222ffffffffffffffff\",\"spanId\":\"0000000000000003\",\"name\":\"b1\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\"},"
        "{\"traceId\":\"2222222222222222ffffffffffffffff\",\"spanId\":\"0000000000000004\",\"name\":\"b2\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\",\"status\":{\"code\":2}},"
        "{\"traceId\":\"2222222222222222ffffffffffffffff\",\"spanId\":\"0000000000000005\",\"name\":\"b3\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\",\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"1500\"}]},"
        "{\"traceId\":\"2222222222222222ffffffffffffffff\",\"spanId\":\"0000000000000006\",\"name\":\"b4\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"600001000\"}"
        "]}]},{\"scopeSpans\":[{\"spans\":["
        "{\"traceId\":\"3333333333333333ffffffffffffffff\",\"spanId\":\"0000000000000007\",\"name\":\"c1\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":\"2000\"}"
        "]}]}]}";
    sx_trace_req *req = trace(json);
    size_t dropped = sx_sample_traces(req, 0.5, 500000000ULL);
    assert_int_equal(dropped, 2); /* b1 and c1; c1's resource is removed */
    assert_int_equal(req->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = req->resource_spans[0]->scope_spans[0];
    assert_int_equal(ss->n_spans, 5);
    static const char *const names[] = {"a1", "a2", "b2", "b3", "b4"};
    for (size_t i = 0; i < 5; i++) assert_string_equal(ss->spans[i]->name, names[i]);
    assert_int_equal(sx_otlp_trace_count(req), 5);

    /* Without the slow threshold the slow span goes too; at rate 1 nothing. */
    req = trace(json);
    assert_int_equal(sx_sample_traces(req, 0.5, 0), 3);
    req = trace(json);
    assert_int_equal(sx_sample_traces(req, 1, 0), 0);
    assert_int_equal(sx_otlp_trace_count(req), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_keys),
        cmocka_unit_test(test_secret_values),
        cmocka_unit_test(test_rules_parse),
        cmocka_unit_test(test_apply_to_spans),
        cmocka_unit_test(test_sampling_rule),
        cmocka_unit_test(test_sampling_keeps_whole_traces_errors_and_slow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
