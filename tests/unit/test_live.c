/* test_live.c: live stream entries (lib/live.c): items JSON from OTLP
 * requests, the XADD text, parsing an entry into an event, filters, SSE
 * formatting and stream id order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "live.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

/* An event from type/total/items fields, as the hub parses an entry. */
static struct sx_live_event *event(const char *id, const char *type, const char *total, const char *items)
{
    const char *names[3] = {"type", "total", "items"};
    const char *vals[3] = {type, total, items};
    size_t nl[3], vl[3];
    for (int i = 0; i < 3; i++) nl[i] = strlen(names[i]), vl[i] = strlen(vals[i]);
    return sx_live_event_create(id, 3, names, nl, vals, vl);
}

static const char *LOGS =
    "[{\"timeUnixNano\":\"1\",\"severityNumber\":9,\"severityText\":\"INFO\",\"service\":\"api\",\"body\":\"user "
    "Logged In\",\"traceId\":\"\",\"spanId\":\"\"},"
    "{\"timeUnixNano\":\"2\",\"severityNumber\":17,\"severityText\":\"ERROR\",\"service\":\"worker\",\"body\":\"db "
    "timeout\",\"traceId\":\"\",\"spanId\":\"\"}]";

static void test_format_filters(void **state)
{
    (void)state;
    struct sx_live_filter f;
    struct sx_buf out;
    char err[128];
    sx_buf_init(&out, 1 << 16);
    struct sx_live_event *ev = event("1700000000000-3", "logs", "2", LOGS);
    assert_non_null(ev);
    assert_int_equal(ev->nitems, 2);
    assert_string_equal(ev->items[1].service, "worker");
    assert_int_equal(ev->items[1].severity, 17);

    /* No filters: every item, the SSE frame around the data. */
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, NULL, NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&out, ev, &f), 1);
    static const char head[] = "id: 1700000000000-3\nevent: logs\ndata: {\"type\":\"logs\",\"total\":2,\"items\":[{";
    assert_true(strncmp(out.data, head, sizeof(head) - 1) == 0);
    assert_non_null(strstr(out.data, "\"body\":\"db timeout\""));
    assert_string_equal(out.data + out.len - 5, "}]}\n\n");

    /* severity keeps the ERROR record only; total stays the entry's. */
    sx_buf_reset(&out);
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, "ERROR", NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&out, ev, &f), 1);
    assert_non_null(strstr(out.data, "\"total\":2"));
    assert_null(strstr(out.data, "Logged In"));
    assert_non_null(strstr(out.data, "db timeout"));

    /* q is a case-insensitive substring of the body. */
    sx_buf_reset(&out);
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, NULL, "logged in", err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&out, ev, &f), 1);
    assert_non_null(strstr(out.data, "Logged In"));
    assert_null(strstr(out.data, "db timeout"));

    /* service, and nothing left: nothing written. */
    sx_buf_reset(&out);
    assert_int_equal(sx_live_filter_parse(&f, NULL, "billing", NULL, NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&out, ev, &f), 0);
    assert_int_equal(out.len, 0);

    /* a topic not asked for */
    assert_int_equal(sx_live_filter_parse(&f, "spans,issues", NULL, NULL, NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&out, ev, &f), 0);

    /* a buffer too small leaves it unchanged */
    struct sx_buf tiny;
    sx_buf_init(&tiny, 40);
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, NULL, NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&tiny, ev, &f), SX_ERR);
    assert_int_equal(tiny.len, 0);
    sx_buf_term(&tiny);

    sx_live_event_put(ev);
    sx_buf_term(&out);
}

static void test_issue_event(void **state)
{
    (void)state;
    const char *names[5] = {"type", "project", "issue", "shortId", "title"};
    const char *vals[5] = {"issue.new", "7", "42", "SHOP-3", "TypeError: \"x\" is undefined"};
    size_t nl[5], vl[5];
    for (int i = 0; i < 5; i++) nl[i] = strlen(names[i]), vl[i] = strlen(vals[i]);
    struct sx_live_event *ev = sx_live_event_create("5-0", 5, names, nl, vals, vl);
    assert_non_null(ev);
    struct sx_live_filter f;
    char err[64];
    struct sx_buf out;
    sx_buf_init(&out, 4096);
    /* service, severity and q do not apply to issues */
    assert_int_equal(sx_live_filter_parse(&f, "issues", "nope", "FATAL", "zzz", err, sizeof(err)), SX_OK);
    assert_int_equal(sx_live_format(&out, ev, &f), 1);
    assert_string_equal(out.data, "id: 5-0\nevent: issue\ndata: {\"type\":\"issue.new\",\"project\":\"7\",\"issue\":"
                                  "\"42\",\"shortId\":\"SHOP-3\",\"title\":\"TypeError: \\\"x\\\" is undefined\"}\n\n");
    sx_live_event_put(ev);
    sx_buf_term(&out);
}

static void test_bad_entries(void **state)
{
    (void)state;
    assert_null(event("1-0", "nonsense", "1", "[]"));
    assert_null(event("1-0", "logs", "1", "[{\"a\":"));
    assert_null(event("1-0", "logs", "1", "{\"not\":\"an array\"}"));
    assert_null(event("not-an-id", "logs", "1", "[]"));
    /* items too deep for the parser's limits */
    char deep[200] = "[";
    for (int i = 0; i < 20; i++) strcat(deep, "[");
    assert_null(event("1-0", "spans", "1", deep));
}

static void test_filter_errors(void **state)
{
    (void)state;
    struct sx_live_filter f;
    char err[128], long_q[300];
    assert_int_equal(sx_live_filter_parse(&f, "spans,bogus", NULL, NULL, NULL, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "bogus"));
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, "LOUD", NULL, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, "25", NULL, err, sizeof(err)), SX_ERR);
    memset(long_q, 'a', sizeof(long_q) - 1);
    long_q[sizeof(long_q) - 1] = '\0';
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, NULL, long_q, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_live_filter_parse(&f, "metrics", NULL, "13", NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(f.topics, SX_LIVE_METRICS);
    assert_int_equal(f.min_severity, 13);
    assert_int_equal(sx_live_filter_parse(&f, NULL, NULL, "warn", NULL, err, sizeof(err)), SX_OK);
    assert_int_equal(f.min_severity, 13);
    assert_int_equal(f.topics, SX_LIVE_ALL_TOPICS);
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(sx_live_id_valid("1700000000000-0"));
    assert_true(sx_live_id_valid("17"));
    assert_false(sx_live_id_valid(""));
    assert_false(sx_live_id_valid("-1"));
    assert_false(sx_live_id_valid("1-"));
    assert_false(sx_live_id_valid("1-2-3"));
    assert_false(sx_live_id_valid("abc"));
    assert_true(sx_live_id_cmp("10-0", "9-5") > 0);
    assert_true(sx_live_id_cmp("10-1", "10-0") > 0);
    assert_true(sx_live_id_cmp("10", "10-0") == 0);
    assert_true(sx_live_id_cmp("10-2", "10-10") < 0);
}

/* A trace request with n spans of service svc; span 0 has an error status
 * and HTTP status 503, span 1 a parent. */
static void spans_json(size_t n, struct sx_buf *out, size_t *total)
{
    Opentelemetry__Proto__Trace__V1__Span *sp = calloc(n, sizeof(*sp)), **spp = calloc(n, sizeof(*spp));
    static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t sid[8] = {0xab, 0, 0, 0, 0, 0, 0, 1}, pid[8] = {0xcd, 0, 0, 0, 0, 0, 0, 2};
    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    any_t v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT, sv = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = 503;
    kv_t kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, *kvp = &kv;
    kv.key = "http.response.status_code";
    kv.value = &v;
    for (size_t i = 0; i < n; i++) {
        Opentelemetry__Proto__Trace__V1__Span z = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        sp[i] = z;
        sp[i].trace_id.data = tid, sp[i].trace_id.len = 16;
        sp[i].span_id.data = sid, sp[i].span_id.len = 8;
        sp[i].name = "GET /checkout";
        sp[i].kind = 2;
        sp[i].start_time_unix_nano = 1000000000;
        sp[i].end_time_unix_nano = 1002500000;
        spp[i] = &sp[i];
    }
    sp[0].status = &st;
    sp[0].attributes = &kvp, sp[0].n_attributes = 1;
    if (n > 1) sp[1].parent_span_id.data = pid, sp[1].parent_span_id.len = 8;
    sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    sv.string_value = "checkout";
    kv_t skv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, *skvp = &skv;
    skv.key = "service.name";
    skv.value = &sv;
    Opentelemetry__Proto__Resource__V1__Resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.attributes = &skvp, res.n_attributes = 1;
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT, *ssp = &ss;
    ss.spans = spp, ss.n_spans = n;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT, *rsp = &rs;
    rs.resource = &res, rs.scope_spans = &ssp, rs.n_scope_spans = 1;
    sx_trace_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = &rsp, req.n_resource_spans = 1;
    assert_int_equal(sx_live_spans_json(out, &req, total), SX_OK);
    free(sp);
    free(spp);
}

static void test_spans_items(void **state)
{
    (void)state;
    struct sx_buf out;
    size_t total = 0;
    sx_buf_init(&out, 1 << 20);
    spans_json(2, &out, &total);
    assert_int_equal(total, 2);
    assert_string_equal(out.data,
                        "[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"ab00000000000001\","
                        "\"parentSpanId\":\"\",\"name\":\"GET /checkout\",\"service\":\"checkout\",\"kind\":2,"
                        "\"startUnixNano\":\"1000000000\",\"durationMs\":2.5,\"status\":\"error\",\"httpStatus\":503},"
                        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"ab00000000000001\","
                        "\"parentSpanId\":\"cd00000000000002\",\"name\":\"GET /checkout\",\"service\":\"checkout\","
                        "\"kind\":2,\"startUnixNano\":\"1000000000\",\"durationMs\":2.5,\"status\":\"unset\"}]");
    /* at most SX_LIVE_MAX_ITEMS items; total counts them all */
    sx_buf_reset(&out);
    spans_json(SX_LIVE_MAX_ITEMS + 7, &out, &total);
    assert_int_equal(total, SX_LIVE_MAX_ITEMS + 7);
    struct sx_live_event *ev = event("9-9", "spans", "57", out.data);
    assert_non_null(ev);
    assert_int_equal(ev->nitems, SX_LIVE_MAX_ITEMS);
    assert_string_equal(ev->items[0].text, "GET /checkout");
    sx_live_event_put(ev);
    /* a buffer too small is left as it was */
    struct sx_buf tiny;
    sx_buf_init(&tiny, 64);
    sx_buf_puts(&tiny, "x");
    Opentelemetry__Proto__Trace__V1__ResourceSpans *none = NULL;
    sx_trace_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = &none, req.n_resource_spans = 0;
    assert_int_equal(sx_live_spans_json(&tiny, &req, &total), SX_OK);
    assert_string_equal(tiny.data, "x[]");
    sx_buf_term(&tiny);
    sx_buf_term(&out);
}

static void test_log_body_cut(void **state)
{
    (void)state;
    /* A body of 1023 ASCII bytes then a 3-byte character: cut before it. */
    char body[1100];
    memset(body, 'a', 1023);
    memcpy(body + 1023, "\xe2\x82\xac tail", 8);
    any_t v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = body;
    Opentelemetry__Proto__Logs__V1__LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT, *lrp = &lr;
    lr.body = &v;
    lr.severity_number = 13;
    lr.severity_text = "WARN";
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT, *slp = &sl;
    sl.log_records = &lrp, sl.n_log_records = 1;
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT, *rlp = &rl;
    rl.scope_logs = &slp, rl.n_scope_logs = 1;
    sx_logs_req req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.resource_logs = &rlp, req.n_resource_logs = 1;
    struct sx_buf out;
    size_t total = 0;
    sx_buf_init(&out, 1 << 20);
    assert_int_equal(sx_live_logs_json(&out, &req, 777, &total), SX_OK);
    assert_int_equal(total, 1);
    struct sx_live_event *ev = event("1-1", "logs", "1", out.data);
    assert_non_null(ev);
    assert_int_equal(strlen(ev->items[0].text), 1023); /* not 1024: the euro sign would be cut in half */
    assert_non_null(strstr(out.data, "\"timeUnixNano\":\"777\""));   /* no time: the receive time */
    assert_non_null(strstr(out.data, "\"service\":\"unknown_service\""));
    assert_int_equal(ev->items[0].severity, 13);
    sx_live_event_put(ev);
    sx_buf_term(&out);
}

static void test_xadd_text(void **state)
{
    (void)state;
    struct sx_config cfg;
    struct sx_buf cmds;
    sx_config_defaults(&cfg);
    snprintf(cfg.redis_prefix, sizeof(cfg.redis_prefix), "sx");
    cfg.live_maxlen = 5000;
    sx_buf_init(&cmds, 1 << 16);
    assert_int_equal(sx_live_xadd_format(&cmds, &cfg, 12, "spans", 3, "[1]", 3), SX_OK);
    assert_string_equal(cmds.data, "*14\r\n$4\r\nXADD\r\n$13\r\nsx:{p12}:live\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n5000\r\n"
                                   "$1\r\n*\r\n$4\r\ntype\r\n$5\r\nspans\r\n$7\r\nproject\r\n$2\r\n12\r\n$5\r\ntotal\r\n"
                                   "$1\r\n3\r\n$5\r\nitems\r\n$3\r\n[1]\r\n");
    sx_buf_term(&cmds);
}

static void test_queue_gap(void **state)
{
    (void)state;
    struct sx_live_queue q;
    struct sx_live_event *ev[7], *out[16];
    char id[16];
    int gap = -1;
    sx_live_queue_init(&q, 4);
    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof(id), "%d-0", i + 1);
        ev[i] = event(id, "logs", "1", LOGS);
        assert_non_null(ev[i]);
    }
    /* Nothing queued: pop waits until the deadline and returns nothing. */
    assert_int_equal(sx_live_queue_pop(&q, out, 16, &gap, sx_mono_ns() + 20000000LL), 0);
    assert_int_equal(gap, 0);
    /* Three fit: they come out in order, without a gap. */
    for (int i = 0; i < 3; i++) sx_live_queue_push(&q, ev[i]);
    assert_int_equal(sx_live_queue_pop(&q, out, 2, &gap, 0), 2);
    assert_int_equal(gap, 0);
    assert_string_equal(out[0]->id, "1-0");
    assert_string_equal(out[1]->id, "2-0");
    sx_live_event_put(out[0]);
    sx_live_event_put(out[1]);
    /* 3-0 waits; four more overflow the four places at 7-0: the queue is emptied (3-0
     * to 6-0 dropped), 7-0 is queued, and the next pop says gap: the client skips ahead. */
    for (int i = 3; i < 7; i++) sx_live_queue_push(&q, ev[i]);
    size_t n = sx_live_queue_pop(&q, out, 16, &gap, 0);
    assert_int_equal(gap, 1);
    assert_int_equal(n, 1);
    assert_string_equal(out[0]->id, "7-0");
    for (size_t i = 0; i < n; i++) sx_live_event_put(out[i]);
    assert_int_equal(sx_live_queue_pop(&q, out, 16, &gap, 0), 0);
    assert_int_equal(gap, 0);
    /* The queue held its own references: the events are still ours. */
    for (int i = 0; i < 7; i++) assert_int_equal(atomic_load(&ev[i]->refs), 1);
    sx_live_queue_push(&q, ev[0]);
    sx_live_queue_term(&q); /* drops the queued reference */
    for (int i = 0; i < 7; i++) sx_live_event_put(ev[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_filters), cmocka_unit_test(test_issue_event), cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_filter_errors),  cmocka_unit_test(test_ids),         cmocka_unit_test(test_spans_items),
        cmocka_unit_test(test_log_body_cut),   cmocka_unit_test(test_xadd_text),     cmocka_unit_test(test_queue_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
