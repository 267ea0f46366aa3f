/* test_spanrow.c: span to COPY row encoding (escaping, typed JSON, NULLs, promoted fields, fixture). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "copyrow.h"
#include "spanrow.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;

/* Test data lives in one arena, freed per test. */
static struct sx_arena *A;

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

static any_t *v_dbl(double d)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static any_t *v_bool(int b)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static any_t *v_bytes(const char *p, size_t n)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value.data = (uint8_t *)p;
    v->bytes_value.len = n;
    return v;
}

static any_t *v_arr(size_t n, any_t **vals)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    Opentelemetry__Proto__Common__V1__ArrayValue *a = mk(sizeof(*a));
    opentelemetry__proto__common__v1__array_value__init(a);
    a->n_values = n;
    a->values = mk(n * sizeof(any_t *));
    if (n) memcpy(a->values, vals, n * sizeof(any_t *));
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = a;
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

static kv_t **kvs(size_t n, ...)
{
    kv_t **arr = mk((n ? n : 1) * sizeof(kv_t *));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) arr[i] = va_arg(ap, kv_t *);
    va_end(ap);
    return arr;
}

static any_t *v_kvlist(size_t n, kv_t **items)
{
    any_t *v = mk(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    Opentelemetry__Proto__Common__V1__KeyValueList *l = mk(sizeof(*l));
    opentelemetry__proto__common__v1__key_value_list__init(l);
    l->n_values = n;
    l->values = items;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    return v;
}

static const uint8_t TID[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0xff};
static const uint8_t SID[8] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11};
static const uint8_t PID[8] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80};

static span_t *mkspan(const char *name, uint64_t start)
{
    span_t *s = mk(sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id.data = (uint8_t *)TID;
    s->trace_id.len = 16;
    s->span_id.data = (uint8_t *)SID;
    s->span_id.len = 8;
    s->name = (char *)name;
    s->start_time_unix_nano = start;
    s->end_time_unix_nano = start + 1500;
    return s;
}

/* One resource (attrs) with one scope (name/version may be NULL) holding spans. */
static req_t *mkreq(kv_t **rattrs, size_t nrattrs, const char *scope, const char *ver, size_t n, span_t **spans)
{
    req_t *r = mk(sizeof(*r));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(r);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = mk(sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    Opentelemetry__Proto__Resource__V1__Resource *res = mk(sizeof(*res));
    opentelemetry__proto__resource__v1__resource__init(res);
    res->attributes = rattrs;
    res->n_attributes = nrattrs;
    rs->resource = res;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = mk(sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    if (scope) {
        Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = mk(sizeof(*sc));
        opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
        sc->name = (char *)scope;
        sc->version = (char *)(ver ? ver : "");
        ss->scope = sc;
    }
    ss->spans = spans;
    ss->n_spans = n;
    rs->scope_spans = mk(sizeof(*rs->scope_spans));
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    r->resource_spans = mk(sizeof(*r->resource_spans));
    r->resource_spans[0] = rs;
    r->n_resource_spans = 1;
    return r;
}

/* Splits one COPY row (without its newline) into exactly 21 fields. */
static void split_row(char *row, char **f)
{
    size_t n = 0;
    f[n++] = row;
    for (char *p = row; *p; p++)
        if (*p == '\t') {
            *p = '\0';
            assert_true(n < SX_SPANROW_NCOLUMNS);
            f[n++] = p + 1;
        }
    assert_int_equal(n, SX_SPANROW_NCOLUMNS);
}

enum { F_PROJECT, F_TRACE, F_SPAN, F_PARENT, F_START, F_END, F_NAME, F_KIND, F_SERVICE, F_STATUS, F_STATUS_MSG,
       F_METHOD, F_ROUTE, F_HTTP_STATUS, F_TRACE_STATE, F_SCOPE, F_SCOPE_VER, F_ATTRS, F_EVENTS, F_LINKS, F_RES };

/* Encodes req and returns its only row split into f (storage in *buf). */
static void encode_one(req_t *req, struct sx_buf *buf, char **f)
{
    struct sx_spanrow e;
    sx_spanrow_init(&e, 1 << 20);
    sx_buf_init(buf, 1 << 20);
    assert_int_equal(sx_spanrow_encode(&e, req, 42, buf), SX_OK);
    assert_int_equal(e.rows, 1);
    sx_spanrow_term(&e);
    assert_true(buf->len > 0);
    assert_int_equal(buf->data[buf->len - 1], '\n');
    assert_null(memchr(buf->data, '\n', buf->len - 1)); /* one line */
    buf->data[--buf->len] = '\0';
    split_row(buf->data, f);
}

static int setup(void **state)
{
    (void)state;
    A = sx_arena_create(64 * 1024, 64 << 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sx_arena_destroy(A);
    A = NULL;
    return 0;
}

static void test_escaping(void **state)
{
    (void)state;
    span_t *s = mkspan("tab\there\nnew\rcr\\back \"q\" Gr\xC3\xB6\xC3\x9F" "e \xE2\x9C\x93 bad\xFF!", 1767225600000000000ULL);
    s->attributes = kvs(1, kv("msg", v_str("a\tb\nc\\d\"e\xC3\xA9\xFE")));
    s->n_attributes = 1;
    kv_t **ra = kvs(1, kv("service.name", v_str("svc\twith tab")));
    struct sx_buf b;
    char *f[SX_SPANROW_NCOLUMNS];
    encode_one(mkreq(ra, 1, "sc\\ope", "1.0", 1, &s), &b, f);
    assert_string_equal(f[F_NAME], "tab\\there\\nnew\\rcr\\\\back \"q\" Gr\xC3\xB6\xC3\x9F" "e \xE2\x9C\x93 bad\xEF\xBF\xBD!");
    assert_string_equal(f[F_SERVICE], "svc\\twith tab");
    assert_string_equal(f[F_SCOPE], "sc\\\\ope");
    assert_string_equal(f[F_SCOPE_VER], "1.0");
    /* JSON escapes (\t, \n, \\, \") with each backslash doubled for COPY. */
    assert_string_equal(f[F_ATTRS], "{\"msg\":\"a\\\\tb\\\\nc\\\\\\\\d\\\\\"e\xC3\xA9\xEF\xBF\xBD\"}");
    assert_string_equal(f[F_RES], "{\"service.name\":\"svc\\\\twith tab\"}");
    sx_buf_term(&b);

    struct sx_buf o;
    sx_buf_init(&o, 64);
    assert_int_equal(sx_copyrow_text(&o, "a\0b", 3), SX_OK);
    assert_memory_equal(o.data, "a\xEF\xBF\xBD" "b", 5);
    sx_buf_reset(&o);
    assert_int_equal(sx_copyrow_text(&o, "\xED\xA0\x80", 3), SX_OK); /* surrogate: invalid */
    assert_string_equal(o.data, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    sx_buf_term(&o);
}

static void test_ids_times_and_nulls(void **state)
{
    (void)state;
    span_t *s = mkspan("plain", 1767225600123456789ULL);
    struct sx_buf b;
    char *f[SX_SPANROW_NCOLUMNS];
    encode_one(mkreq(NULL, 0, NULL, NULL, 1, &s), &b, f);
    assert_string_equal(f[F_PROJECT], "42");
    assert_string_equal(f[F_TRACE], "\\\\x0102030405060708090a0b0c0d0e0fff");
    assert_string_equal(f[F_SPAN], "\\\\xaabbccddeeff0011");
    assert_string_equal(f[F_PARENT], "\\N");
    assert_string_equal(f[F_START], "1767225600123456789");
    assert_string_equal(f[F_END], "1767225600123458289");
    assert_string_equal(f[F_KIND], "0");
    assert_string_equal(f[F_SERVICE], "unknown_service");
    assert_string_equal(f[F_STATUS], "0");
    for (int i = F_STATUS_MSG; i <= F_SCOPE_VER; i++) assert_string_equal(f[i], "\\N");
    assert_string_equal(f[F_ATTRS], "{}");
    assert_string_equal(f[F_EVENTS], "\\N");
    assert_string_equal(f[F_LINKS], "\\N");
    assert_string_equal(f[F_RES], "{}");
    sx_buf_term(&b);

    /* parent, kind, status, trace state */
    s = mkspan("child", 1767225600000000000ULL);
    s->parent_span_id.data = (uint8_t *)PID;
    s->parent_span_id.len = 8;
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s->trace_state = "k=v";
    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st.message = "boom\n";
    s->status = &st;
    encode_one(mkreq(NULL, 0, "scope", NULL, 1, &s), &b, f);
    assert_string_equal(f[F_PARENT], "\\\\x1020304050607080");
    assert_string_equal(f[F_KIND], "2");
    assert_string_equal(f[F_STATUS], "2");
    assert_string_equal(f[F_STATUS_MSG], "boom\\n");
    assert_string_equal(f[F_TRACE_STATE], "k=v");
    assert_string_equal(f[F_SCOPE], "scope");
    assert_string_equal(f[F_SCOPE_VER], "\\N");
    sx_buf_term(&b);
}

static void test_typed_attributes(void **state)
{
    (void)state;
    span_t *s = mkspan("typed", 1767225600000000000ULL);
    any_t *arr[] = {v_int(1), v_str("two"), v_bool(0), v_dbl(2.5)};
    kv_t **inner = kvs(2, kv("x", v_int(-7)), kv("y", v_arr(0, NULL)));
    s->attributes = kvs(10, kv("s", v_str("v")), kv("i", v_int(9007199254740993LL)), kv("d", v_dbl(0.1)),
                        kv("nan", v_dbl(NAN)), kv("inf", v_dbl(-INFINITY)), kv("b", v_bool(1)),
                        kv("bytes", v_bytes("\x00\xff\x10hi", 5)), kv("arr", v_arr(4, arr)), kv("kv", v_kvlist(2, inner)),
                        kv("unset", NULL));
    s->n_attributes = 10;
    struct sx_buf b;
    char *f[SX_SPANROW_NCOLUMNS];
    encode_one(mkreq(NULL, 0, NULL, NULL, 1, &s), &b, f);
    assert_string_equal(f[F_ATTRS], "{\"s\":\"v\",\"i\":9007199254740993,\"d\":0.1,\"nan\":null,\"inf\":null,"
                                    "\"b\":true,\"bytes\":\"AP8QaGk=\",\"arr\":[1,\"two\",false,2.5],"
                                    "\"kv\":{\"x\":-7,\"y\":[]},\"unset\":null}");
    sx_buf_term(&b);
}

static void test_http_fields(void **state)
{
    (void)state;
    span_t *sp[4];
    sp[0] = mkspan("new", 1767225600000000000ULL);
    sp[0]->attributes = kvs(3, kv("http.request.method", v_str("POST")), kv("http.route", v_str("/api/orders/:id")),
                            kv("http.response.status_code", v_int(201)));
    sp[0]->n_attributes = 3;
    sp[1] = mkspan("old", 1767225600000000000ULL);
    sp[1]->attributes = kvs(2, kv("http.method", v_str("GET")), kv("http.status_code", v_str("404")));
    sp[1]->n_attributes = 2;
    sp[2] = mkspan("bad", 1767225600000000000ULL);
    sp[2]->attributes = kvs(2, kv("http.method", v_int(5)), kv("http.status_code", v_str("4o4")));
    sp[2]->n_attributes = 2;
    sp[3] = mkspan("both", 1767225600000000000ULL);
    sp[3]->attributes = kvs(3, kv("http.method", v_str("GET")), kv("http.request.method", v_str("PUT")),
                            kv("http.status_code", v_dbl(503.0)));
    sp[3]->n_attributes = 3;
    const char *want[4][3] = {{"POST", "/api/orders/:id", "201"}, {"GET", "\\N", "404"}, {"\\N", "\\N", "\\N"},
                              {"PUT", "\\N", "503"}};
    for (int i = 0; i < 4; i++) {
        struct sx_buf b;
        char *f[SX_SPANROW_NCOLUMNS];
        encode_one(mkreq(NULL, 0, NULL, NULL, 1, &sp[i]), &b, f);
        assert_string_equal(f[F_METHOD], want[i][0]);
        assert_string_equal(f[F_ROUTE], want[i][1]);
        assert_string_equal(f[F_HTTP_STATUS], want[i][2]);
        sx_buf_term(&b);
    }
}

static void test_events_and_links(void **state)
{
    (void)state;
    span_t *s = mkspan("ev", 1767225600000000000ULL);
    Opentelemetry__Proto__Trace__V1__Span__Event ev = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    ev.time_unix_nano = 18446744073709551615ULL;
    ev.name = "exception";
    ev.attributes = kvs(1, kv("exception.stacktrace", v_str("Error: x\n    at f (a.js:1:2)")));
    ev.n_attributes = 1;
    Opentelemetry__Proto__Trace__V1__Span__Event *evs[] = {&ev};
    s->events = evs;
    s->n_events = 1;
    Opentelemetry__Proto__Trace__V1__Span__Link ln = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    ln.trace_id.data = (uint8_t *)TID;
    ln.trace_id.len = 16;
    ln.span_id.data = (uint8_t *)PID;
    ln.span_id.len = 8;
    ln.trace_state = "a=b";
    ln.attributes = kvs(1, kv("n", v_int(1)));
    ln.n_attributes = 1;
    Opentelemetry__Proto__Trace__V1__Span__Link *lns[] = {&ln};
    s->links = lns;
    s->n_links = 1;
    struct sx_buf b;
    char *f[SX_SPANROW_NCOLUMNS];
    encode_one(mkreq(NULL, 0, NULL, NULL, 1, &s), &b, f);
    assert_string_equal(f[F_EVENTS], "[{\"timeUnixNano\":\"18446744073709551615\",\"name\":\"exception\","
                                     "\"attributes\":{\"exception.stacktrace\":\"Error: x\\\\n    at f (a.js:1:2)\"}}]");
    assert_string_equal(f[F_LINKS], "[{\"traceId\":\"0102030405060708090a0b0c0d0e0fff\",\"spanId\":\"1020304050607080\","
                                    "\"traceState\":\"a=b\",\"attributes\":{\"n\":1}}]");
    sx_buf_term(&b);
}

static void test_days_skips_and_overflow(void **state)
{
    (void)state;
    assert_int_equal(sx_spanrow_day(0), 0);
    assert_int_equal(sx_spanrow_day(SX_DAY_NS - 1), 0);
    assert_int_equal(sx_spanrow_day(SX_DAY_NS), SX_DAY_NS);
    assert_int_equal(sx_spanrow_day(-1), -SX_DAY_NS);
    assert_int_equal(sx_spanrow_day(-SX_DAY_NS), -SX_DAY_NS);
    assert_int_equal(sx_spanrow_day(1767225600123456789LL), 1767225600000000000LL);

    span_t *sp[5];
    sp[0] = mkspan("d2", 1767312000000000001ULL);
    sp[1] = mkspan("d1", 1767225600000000000ULL);
    sp[2] = mkspan("d2b", 1767398399999999999ULL);
    sp[3] = mkspan("badid", 1767225600000000000ULL);
    sp[3]->trace_id.len = 15;
    sp[4] = mkspan("d1b", 1767311999999999999ULL);
    req_t *req = mkreq(NULL, 0, NULL, NULL, 5, sp);
    struct sx_spanrow e;
    struct sx_buf b;
    sx_spanrow_init(&e, 1 << 20);
    sx_buf_init(&b, 1 << 20);
    assert_int_equal(sx_spanrow_encode(&e, req, 1, &b), SX_OK);
    assert_int_equal(e.rows, 4);
    assert_int_equal(e.skipped, 1);
    size_t n;
    const int64_t *d = sx_spanrow_days(&e, &n);
    assert_int_equal(n, 2);
    assert_int_equal(d[0], 1767225600000000000LL);
    assert_int_equal(d[1], 1767312000000000000LL);

    /* Overflow: the buffer is truncated back and the counters are kept. */
    struct sx_buf small;
    sx_buf_init(&small, b.len + 10);
    assert_int_equal(sx_spanrow_encode(&e, req, 1, &small), SX_OK);
    size_t len = small.len;
    assert_int_equal(e.rows, 8);
    assert_int_equal(sx_spanrow_encode(&e, req, 1, &small), SX_ERR);
    assert_int_equal(small.len, len);
    assert_int_equal(e.rows, 8);
    sx_spanrow_reset(&e);
    d = sx_spanrow_days(&e, &n);
    assert_int_equal(n, 0);
    sx_buf_term(&small);
    sx_buf_term(&b);
    sx_spanrow_term(&e);
}

/* Each row's meta: trace id, times, flags, and where its name and service
 * lie (COPY-escaped) in the output; an overflow leaves the metas as they were. */
static void test_meta(void **state)
{
    (void)state;
    span_t *sp[2];
    sp[0] = mkspan("root\tname", 1767225600000000000ULL);
    sp[1] = mkspan("child", 1767225600000001000ULL);
    sp[1]->parent_span_id.data = (uint8_t *)PID;
    sp[1]->parent_span_id.len = 8;
    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    sp[1]->status = &st;
    kv_t **ra = kvs(1, kv("service.name", v_str("svc\\x")));
    req_t *req = mkreq(ra, 1, NULL, NULL, 2, sp);
    struct sx_spanrow e;
    struct sx_buf b;
    sx_spanrow_init(&e, 1 << 20);
    sx_buf_init(&b, 1 << 20);
    assert_int_equal(sx_spanrow_encode(&e, req, 9, &b), SX_OK);
    assert_int_equal(e.nmeta, 2);
    const struct sx_spanrow_meta *m = e.meta;
    assert_memory_equal(m[0].trace_id, TID, 16);
    assert_int_equal(m[0].project_id, 9);
    assert_int_equal(m[0].start, 1767225600000000000LL);
    assert_int_equal(m[0].end, 1767225600000001500LL);
    assert_true(m[0].root);
    assert_false(m[0].error);
    assert_false(m[1].root);
    assert_true(m[1].error);
    assert_int_equal(m[0].name_len, strlen("root\\tname"));
    assert_memory_equal(b.data + m[0].name_off, "root\\tname", m[0].name_len);
    assert_memory_equal(b.data + m[1].name_off, "child", m[1].name_len);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(m[i].svc_len, strlen("svc\\\\x"));
        assert_memory_equal(b.data + m[i].svc_off, "svc\\\\x", m[i].svc_len);
    }
    /* The second row's meta points past the first row. */
    assert_true(m[1].name_off > (size_t)((const char *)memchr(b.data, '\n', b.len) - b.data));

    struct sx_buf small;
    sx_buf_init(&small, b.len + 10);
    sx_spanrow_reset(&e);
    assert_int_equal(sx_spanrow_encode(&e, req, 9, &small), SX_OK);
    assert_int_equal(sx_spanrow_encode(&e, req, 9, &small), SX_ERR);
    assert_int_equal(e.nmeta, 2);
    assert_int_equal(e.rows, 2);
    sx_spanrow_reset(&e);
    assert_int_equal(e.nmeta, 0);
    sx_buf_term(&small);
    sx_buf_term(&b);
    sx_spanrow_term(&e);
}

static void fixture_path(char *out, size_t len, const char *name)
{
    const char *dir = getenv("SX_FIXTURES");
    snprintf(out, len, "%s/%s", dir && *dir ? dir : "../shared/otlp-fixtures", name);
}

static void test_fixture_65_rows(void **state)
{
    (void)state;
    char path[1024];
    fixture_path(path, sizeof(path), "traces-proto.bin");
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s (set SX_FIXTURES)", path);
    static uint8_t raw[1 << 20];
    size_t n = fread(raw, 1, sizeof(raw), fp);
    fclose(fp);
    assert_true(n > 0 && n < sizeof(raw));

    ProtobufCAllocator pa;
    sx_arena_pb_allocator(A, &pa);
    req_t *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(&pa, n, raw);
    assert_non_null(req);
    struct sx_spanrow e;
    struct sx_buf b;
    sx_spanrow_init(&e, 1 << 20);
    sx_buf_init(&b, 16 << 20);
    assert_int_equal(sx_spanrow_encode(&e, req, 7, &b), SX_OK);
    assert_int_equal(e.rows, 65);
    assert_int_equal(e.skipped, 0);
    size_t lines = 0, ndays;
    for (size_t i = 0; i < b.len; i++) lines += b.data[i] == '\n';
    assert_int_equal(lines, 65);
    sx_spanrow_days(&e, &ndays);
    assert_true(ndays >= 1);
    /* every row has 21 fields and the fixture's service */
    char *row = b.data;
    for (size_t r = 0; r < 65; r++) {
        char *nl = strchr(row, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *f[SX_SPANROW_NCOLUMNS];
        split_row(row, f);
        assert_string_equal(f[F_PROJECT], "7");
        assert_string_equal(f[F_SERVICE], "checkout-api");
        assert_int_equal(strlen(f[F_TRACE]), 3 + 32);
        assert_int_equal(f[F_ATTRS][0], '{');
        assert_non_null(strstr(f[F_RES], "\"service.name\":\"checkout-api\""));
        assert_int_equal(e.meta[r].project_id, 7);
        assert_memory_equal(f[F_SERVICE], b.data + e.meta[r].svc_off, e.meta[r].svc_len);
        assert_memory_equal(f[F_NAME], b.data + e.meta[r].name_off, e.meta[r].name_len);
        assert_int_equal(e.meta[r].root, strcmp(f[F_PARENT], "\\N") == 0);
        row = nl + 1;
    }
    sx_buf_term(&b);
    sx_spanrow_term(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_times_and_nulls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_typed_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_and_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_days_skips_and_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_65_rows, setup, teardown),
    };
    return cmocka_run_group_tests_name("spanrow", tests, NULL, NULL);
}
