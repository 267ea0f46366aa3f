/* test_logrow.c: log record to COPY row encoding (fixture, escaping, bodies, times, NULLs, overflow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "logrow.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord log_t;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req_t;

enum {
    F_PROJECT, F_TIME, F_OBSERVED, F_SEV, F_SEVTEXT, F_BODY, F_BODY_JSON, F_TRACE, F_SPAN, F_FLAGS, F_SERVICE,
    F_SCOPE, F_SCOPE_VERSION, F_ATTRS, F_RES
};

#define RECV_NS 1767225700000000000LL

/* Test data lives in one arena, freed per test. */
static struct sx_arena *A;

static int setup(void **state)
{
    (void)state;
    A = sx_arena_create(64 * 1024, 64 << 20);
    return A ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sx_arena_destroy(A);
    A = NULL;
    return 0;
}

static void *mk(size_t n)
{
    void *p = sx_arena_calloc(A, 1, n);
    assert_non_null(p);
    return p;
}

static any_t *v_str(const char *s)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static any_t *v_int(int64_t i)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static kv_t *kv(const char *k, any_t *v)
{
    kv_t *p = mk(sizeof(*p));
    opentelemetry__proto__common__v1__key_value__init(p);
    p->key = (char *)k;
    p->value = v;
    return p;
}

static any_t *v_kvlist(size_t n, kv_t **kvs)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = mk(sizeof(*v->kvlist_value));
    opentelemetry__proto__common__v1__key_value_list__init(v->kvlist_value);
    v->kvlist_value->n_values = n;
    v->kvlist_value->values = kvs;
    return v;
}

static log_t *mklog(any_t *body, uint64_t t, uint64_t observed)
{
    log_t *l = mk(sizeof(*l));
    opentelemetry__proto__logs__v1__log_record__init(l);
    l->body = body;
    l->time_unix_nano = t;
    l->observed_time_unix_nano = observed;
    return l;
}

/* One resource (service.name svc unless NULL) with one scope holding n records. */
static req_t *mkreq(const char *svc, size_t n, log_t **logs)
{
    req_t *req = mk(sizeof(*req));
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(req);
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = mk(sizeof(*rl));
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    rl->resource = mk(sizeof(*rl->resource));
    opentelemetry__proto__resource__v1__resource__init(rl->resource);
    if (svc) {
        kv_t **attrs = mk(sizeof(*attrs));
        attrs[0] = kv("service.name", v_str(svc));
        rl->resource->attributes = attrs;
        rl->resource->n_attributes = 1;
    }
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = mk(sizeof(*sl));
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    sl->scope = mk(sizeof(*sl->scope));
    opentelemetry__proto__common__v1__instrumentation_scope__init(sl->scope);
    sl->scope->name = (char *)"test.scope";
    sl->n_log_records = n;
    sl->log_records = logs;
    rl->n_scope_logs = 1;
    rl->scope_logs = mk(sizeof(*rl->scope_logs));
    rl->scope_logs[0] = sl;
    req->n_resource_logs = 1;
    req->resource_logs = mk(sizeof(*req->resource_logs));
    req->resource_logs[0] = rl;
    return req;
}

/* Splits one row (without its newline) at tabs; asserts the column count. */
static void split_row(char *row, char **f)
{
    size_t n = 0;
    char *p = row;
    for (;;) {
        assert_true(n < SX_LOGROW_NCOLUMNS);
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t) break;
        *t = '\0';
        p = t + 1;
    }
    assert_int_equal(n, SX_LOGROW_NCOLUMNS);
}

/* Undoes COPY text escaping in place (\\ \n \r \t), as PostgreSQL reads it. */
static size_t copy_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        r++;
        assert_true(*r != '\0');
        *w++ = *r == 'n' ? '\n' : *r == 'r' ? '\r' : *r == 't' ? '\t' : *r;
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* Encodes req and returns its rows split: f[row][col] (storage in buf). */
static size_t encode_rows(req_t *req, struct sx_buf *buf, struct sx_logrow *e, char *(*f)[SX_LOGROW_NCOLUMNS],
                          size_t maxrows)
{
    assert_int_equal(sx_logrow_encode(e, req, 3, RECV_NS, buf), SX_OK);
    size_t n = 0;
    char *row = buf->data;
    while (row && *row) {
        char *nl = strchr(row, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(n < maxrows);
        split_row(row, f[n++]);
        row = nl + 1;
    }
    assert_int_equal(n, e->rows);
    return n;
}

static void test_escaping_and_bytes(void **state)
{
    (void)state;
    static const char body[] = "a\\b\tc\nd\re \xc3\xa4 \xe2\x9c\x93 \xff end\x01";
    log_t *l[2] = {mklog(v_str(body), 5, 0), mklog(v_str("tab\tin\\severity"), 6, 0)};
    l[1]->severity_text = (char *)"W\tARN";
    req_t *req = mkreq("svc\\x", 2, l);
    struct sx_logrow e;
    struct sx_buf b;
    char *f[2][SX_LOGROW_NCOLUMNS];
    sx_logrow_init(&e, 1 << 20);
    sx_buf_init(&b, 1 << 20);
    assert_int_equal(encode_rows(req, &b, &e, f, 2), 2);
    assert_string_equal(f[0][F_BODY], "a\\\\b\\tc\\nd\\re \xc3\xa4 \xe2\x9c\x93 \xef\xbf\xbd end\x01");
    assert_string_equal(f[0][F_BODY_JSON], "f");
    assert_string_equal(f[0][F_SERVICE], "svc\\\\x");
    assert_string_equal(f[0][F_SEVTEXT], "\\N");
    assert_string_equal(f[1][F_SEVTEXT], "W\\tARN");
    /* Unescaped, the body is the input with only the invalid byte replaced. */
    size_t n = copy_unescape(f[0][F_BODY]);
    assert_int_equal(n, strlen("a\\b\tc\nd\re \xc3\xa4 \xe2\x9c\x93 \xef\xbf\xbd end\x01"));
    assert_memory_equal(f[0][F_BODY], "a\\b\tc\nd\re \xc3\xa4 \xe2\x9c\x93 \xef\xbf\xbd end\x01", n);
    sx_buf_term(&b);
    sx_logrow_term(&e);
}

static void test_bodies_ids_and_nulls(void **state)
{
    (void)state;
    kv_t **inner = mk(2 * sizeof(*inner));
    inner[0] = kv("msg", v_str("quote \" and back\\slash"));
    inner[1] = kv("n", v_int(42));
    log_t *l[4] = {mklog(v_kvlist(2, inner), 10, 0), mklog(v_int(-7), 11, 0), mklog(NULL, 12, 0),
                   mklog(v_str(""), 13, 0)};
    static uint8_t tid[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static uint8_t sid[8] = {0xca, 0xfe, 0, 1, 2, 3, 4, 5};
    l[0]->trace_id.data = tid;
    l[0]->trace_id.len = 16;
    l[0]->span_id.data = sid;
    l[0]->span_id.len = 8;
    l[0]->severity_number = 17;
    l[0]->severity_text = (char *)"ERROR";
    l[0]->flags = 1;
    l[0]->n_attributes = 1;
    l[0]->attributes = mk(sizeof(kv_t *));
    l[0]->attributes[0] = kv("user.id", v_int(9));
    l[1]->trace_id.data = tid; /* wrong lengths: NULL */
    l[1]->trace_id.len = 15;
    l[1]->severity_number = 99; /* out of range: 0 */
    req_t *req = mkreq(NULL, 4, l);
    struct sx_logrow e;
    struct sx_buf b;
    char *f[4][SX_LOGROW_NCOLUMNS];
    sx_logrow_init(&e, 1 << 20);
    sx_buf_init(&b, 1 << 20);
    assert_int_equal(encode_rows(req, &b, &e, f, 4), 4);

    assert_string_equal(f[0][F_PROJECT], "3");
    assert_string_equal(f[0][F_BODY], "{\"msg\":\"quote \\\\\" and back\\\\\\\\slash\",\"n\":42}");
    assert_string_equal(f[0][F_BODY_JSON], "t");
    assert_string_equal(f[0][F_TRACE], "\\\\xdeadbeef0102030405060708090a0b0c");
    assert_string_equal(f[0][F_SPAN], "\\\\xcafe000102030405");
    assert_string_equal(f[0][F_SEV], "17");
    assert_string_equal(f[0][F_SEVTEXT], "ERROR");
    assert_string_equal(f[0][F_FLAGS], "1");
    assert_string_equal(f[0][F_SERVICE], "unknown_service");
    assert_string_equal(f[0][F_SCOPE], "test.scope");
    assert_string_equal(f[0][F_SCOPE_VERSION], "\\N");
    assert_string_equal(f[0][F_ATTRS], "{\"user.id\":9}");
    assert_string_equal(f[0][F_RES], "{}");

    assert_string_equal(f[1][F_BODY], "-7");
    assert_string_equal(f[1][F_BODY_JSON], "t");
    assert_string_equal(f[1][F_TRACE], "\\N");
    assert_string_equal(f[1][F_SPAN], "\\N");
    assert_string_equal(f[1][F_SEV], "0");
    assert_string_equal(f[2][F_BODY], "\\N");
    assert_string_equal(f[2][F_BODY_JSON], "f");
    assert_string_equal(f[2][F_ATTRS], "{}");
    assert_string_equal(f[3][F_BODY], "");
    assert_string_equal(f[3][F_BODY_JSON], "f");
    sx_buf_term(&b);
    sx_logrow_term(&e);
}

static void test_times_days_and_overflow(void **state)
{
    (void)state;
    log_t *l[5] = {
        mklog(v_str("own time"), 1767312000000000001ULL, 1767312000000000009ULL),
        mklog(v_str("observed only"), 0, 1767225600000000005ULL),
        mklog(v_str("neither"), 0, 0),
        mklog(v_str("too late"), UINT64_MAX, 0),
        mklog(v_str("late observed"), 0, (uint64_t)INT64_MAX),
    };
    req_t *req = mkreq("s", 5, l);
    struct sx_logrow e;
    struct sx_buf b;
    char *f[5][SX_LOGROW_NCOLUMNS];
    sx_logrow_init(&e, 1 << 20);
    sx_buf_init(&b, 1 << 20);
    assert_int_equal(encode_rows(req, &b, &e, f, 5), 3);
    assert_int_equal(e.skipped, 2);
    assert_string_equal(f[0][F_TIME], "1767312000000000001");
    assert_string_equal(f[0][F_OBSERVED], "1767312000000000009");
    assert_string_equal(f[1][F_TIME], "1767225600000000005");
    assert_string_equal(f[1][F_OBSERVED], "1767225600000000005");
    assert_string_equal(f[2][F_TIME], "1767225700000000000");
    assert_string_equal(f[2][F_OBSERVED], "0");
    size_t n;
    const int64_t *d = sx_logrow_days(&e, &n);
    assert_int_equal(n, 2);
    assert_int_equal(d[0], 1767225600000000000LL);
    assert_int_equal(d[1], 1767312000000000000LL);

    /* Overflow: the buffer is truncated back and the counters are kept. */
    struct sx_buf small;
    sx_buf_init(&small, b.len + 10);
    sx_logrow_reset(&e);
    assert_int_equal(sx_logrow_encode(&e, req, 1, RECV_NS, &small), SX_OK);
    size_t len = small.len;
    assert_int_equal(e.rows, 3);
    assert_int_equal(sx_logrow_encode(&e, req, 1, RECV_NS, &small), SX_ERR);
    assert_int_equal(small.len, len);
    assert_int_equal(e.rows, 3);
    assert_int_equal(e.skipped, 2);
    sx_logrow_days(&e, &n);
    assert_int_equal(n, 2);
    sx_logrow_reset(&e);
    sx_logrow_days(&e, &n);
    assert_int_equal(n, 0);
    sx_buf_term(&small);
    sx_buf_term(&b);
    sx_logrow_term(&e);
}

static void fixture_path(char *out, size_t len, const char *name)
{
    const char *dir = getenv("SX_FIXTURES");
    snprintf(out, len, "%s/%s", dir && *dir ? dir : "../shared/otlp-fixtures", name);
}

static void test_fixture_10_rows(void **state)
{
    (void)state;
    char path[1024];
    fixture_path(path, sizeof(path), "logs-proto.bin");
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s (set SX_FIXTURES)", path);
    static uint8_t raw[1 << 20];
    size_t n = fread(raw, 1, sizeof(raw), fp);
    fclose(fp);
    assert_true(n > 0 && n < sizeof(raw));

    ProtobufCAllocator pa;
    sx_arena_pb_allocator(A, &pa);
    req_t *req = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(&pa, n, raw);
    assert_non_null(req);
    struct sx_logrow e;
    struct sx_buf b;
    char *f[10][SX_LOGROW_NCOLUMNS];
    sx_logrow_init(&e, 1 << 20);
    sx_buf_init(&b, 1 << 20);
    assert_int_equal(encode_rows(req, &b, &e, f, 10), 10);
    assert_int_equal(e.skipped, 0);

    int info = 0, warn = 0, error = 0, traced = 0, multiline = 0, umlaut = 0;
    for (size_t r = 0; r < 10; r++) {
        int sev = atoi(f[r][F_SEV]);
        info += sev == 9;
        warn += sev == 13;
        error += sev == 17;
        assert_string_equal(f[r][F_PROJECT], "3");
        assert_string_equal(f[r][F_SERVICE], "checkout-api");
        assert_string_equal(f[r][F_BODY_JSON], "f");
        assert_string_equal(f[r][F_SCOPE], "checkout-api.log");
        assert_non_null(strstr(f[r][F_ATTRS], "\"test.run_id\":"));
        assert_non_null(strstr(f[r][F_RES], "\"service.name\":\"checkout-api\""));
        assert_true(strtoll(f[r][F_TIME], NULL, 10) >= 1767225600000000000LL);
        if (strcmp(f[r][F_TRACE], "\\N") != 0) {
            traced++;
            assert_int_equal(strlen(f[r][F_TRACE]), 3 + 32);
            assert_int_equal(strlen(f[r][F_SPAN]), 3 + 16);
        }
        /* COPY-escaped newlines; the row itself holds none (it was split at them) */
        if (strstr(f[r][F_BODY], "\\n")) {
            multiline++;
            copy_unescape(f[r][F_BODY]);
            assert_string_equal(f[r][F_BODY], "checkout failed for cart c_a4db9a\n  step: hydrate order rows\n"
                                              "  order: 48213\n  hint: unit price missing, item row is null");
        }
        if (strcmp(f[r][F_BODY], "Zahlung fehlgeschlagen: Gr\xc3\xb6\xc3\x9f"
                                 "e \xc3\xbc"
                                 "berschritten \xe2\x9c\x93") == 0)
            umlaut++;
    }
    assert_int_equal(info, 4);
    assert_int_equal(warn, 3);
    assert_int_equal(error, 3);
    assert_int_equal(traced, 7);
    assert_int_equal(multiline, 1);
    assert_int_equal(umlaut, 1);
    size_t ndays;
    const int64_t *d = sx_logrow_days(&e, &ndays);
    assert_int_equal(ndays, 1);
    assert_int_equal(d[0], 1767225600000000000LL);
    sx_buf_term(&b);
    sx_logrow_term(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_escaping_and_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bodies_ids_and_nulls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_times_days_and_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_10_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
