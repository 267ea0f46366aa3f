/* test_otlp.c: OTLP trace decoding (protobuf, JSON), validation, packing and
 * the response encoders, against the SDK fixtures and the data-driven cases
 * in tests/data/otlp (NAME.json or NAME.bin with NAME.expect). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "arena.h"
#include "config.h"
#include "otlp.h"

#include "google/rpc/status.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span pb_span;

#define ARENA_MAX (64u << 20)

/* --- helpers ------------------------------------------------------------------ */

static const char *fixtures_dir(void)
{
    const char *d = getenv("SX_FIXTURES");
    return d && *d ? d : "../shared/otlp-fixtures";
}

static const char *data_dir(void)
{
    const char *d = getenv("SX_TESTDATA");
    return d && *d ? d : "tests/data/otlp";
}

/* Reads a whole file (malloc'd, NUL-terminated); NULL when missing. */
static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    assert_int_equal(got, (size_t)n);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

static uint8_t *fixture(const char *name, size_t *len)
{
    uint8_t *p = slurp(fixtures_dir(), name, len);
    if (!p) fail_msg("missing fixture %s/%s (set SX_FIXTURES)", fixtures_dir(), name);
    return p;
}

static void default_limits(struct sx_otlp_limits *l)
{
    struct sx_config c;
    sx_config_defaults(&c);
    sx_otlp_limits_from_config(l, &c);
}

static void hex(const ProtobufCBinaryData *b, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < b->len; i++) {
        out[2 * i] = digits[b->data[i] >> 4];
        out[2 * i + 1] = digits[b->data[i] & 15];
    }
    out[2 * b->len] = 0;
}

/* Strict UTF-8 check, written independently of the validator's. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F, k = 2;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F, k = 3;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07, k = 4;
        } else {
            return 0;
        }
        if (i + k > n) return 0;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k;
    }
    return 1;
}

/* Walks every string field of a message tree (via descriptors); returns the
 * number of strings that are not valid UTF-8. */
static size_t bad_strings(const ProtobufCMessage *m)
{
    size_t bad = 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        }
        size_t n = 1;
        const void *const *items = (const void *const *)(base + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            items = *(const void *const *const *)(base + f->offset);
        }
        for (size_t j = 0; j < n; j++) {
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = items[j];
                if (s && !utf8_valid((const unsigned char *)s, strlen(s))) bad++;
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (items[j]) bad += bad_strings(items[j]);
            }
        }
    }
    return bad;
}

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
    uint8_t *buf = slurp(data_dir(), file, &len);
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

/* --- data-driven cases ------------------------------------------------------------ */

static const struct {
    const char *name;
    int code;
} err_names[] = {
    {"SX_OTLP_OK", SX_OTLP_OK},
    {"SX_OTLP_E_PROTOBUF", SX_OTLP_E_PROTOBUF},
    {"SX_OTLP_E_JSON", SX_OTLP_E_JSON},
    {"SX_OTLP_E_JSON_DEPTH", SX_OTLP_E_JSON_DEPTH},
    {"SX_OTLP_E_SCHEMA", SX_OTLP_E_SCHEMA},
    {"SX_OTLP_E_TOO_MANY", SX_OTLP_E_TOO_MANY},
    {"SX_OTLP_E_NOMEM", SX_OTLP_E_NOMEM},
};

static int set_limit(struct sx_otlp_limits *l, const char *k, size_t v)
{
    if (!strcmp(k, "max_json_depth")) l->max_json_depth = v;
    else if (!strcmp(k, "max_spans")) l->max_spans = v;
    else if (!strcmp(k, "max_attributes")) l->max_attributes = v;
    else if (!strcmp(k, "max_attr_key_len")) l->max_attr_key_len = v;
    else if (!strcmp(k, "max_attr_value_len")) l->max_attr_value_len = v;
    else if (!strcmp(k, "max_any_value_depth")) l->max_any_value_depth = v;
    else if (!strcmp(k, "max_events")) l->max_events = v;
    else if (!strcmp(k, "max_links")) l->max_links = v;
    else return -1;
    return 0;
}

static size_t stat_value(const struct sx_otlp_stats *st, const sx_trace_req *req, const char *k, int *ok)
{
    *ok = 1;
    if (!strcmp(k, "kept")) return st->spans_kept;
    if (!strcmp(k, "rejected")) return st->spans_rejected;
    if (!strcmp(k, "in")) return st->spans_in;
    if (!strcmp(k, "attrs_dropped")) return st->attrs_dropped;
    if (!strcmp(k, "values_truncated")) return st->values_truncated;
    if (!strcmp(k, "events_dropped")) return st->events_dropped;
    if (!strcmp(k, "links_dropped")) return st->links_dropped;
    if (!strcmp(k, "resources")) return req->n_resource_spans;
    *ok = 0;
    return 0;
}

/* Runs one case; returns 0 when it matched its .expect, else prints why. */
static int run_case(const char *name)
{
    char file[512], err[256] = "", line[512];
    size_t len, elen;
    struct sx_otlp_limits l;
    default_limits(&l);

    snprintf(file, sizeof(file), "%s.expect", name);
    char *expect = (char *)slurp(data_dir(), file, &elen);
    if (!expect) return fprintf(stderr, "  %s: cannot read .expect\n", name), 1;

    int json = 1;
    snprintf(file, sizeof(file), "%s.json", name);
    uint8_t *buf = slurp(data_dir(), file, &len);
    if (!buf) {
        json = 0;
        snprintf(file, sizeof(file), "%s.bin", name);
        buf = slurp(data_dir(), file, &len);
    }
    if (!buf) {
        free(expect);
        return fprintf(stderr, "  %s: no .json or .bin input\n", name), 1;
    }

    /* Pass 1: the limits line, if any. */
    char *save = NULL;
    char *copy = strdup(expect);
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (strncmp(ln, "limits ", 7) != 0) continue;
        char *s2 = NULL;
        for (char *tok = strtok_r(ln + 7, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
            char *eq = strchr(tok, '=');
            if (eq) *eq = 0;
            if (!eq || set_limit(&l, tok, strtoull(eq + 1, NULL, 10)) != 0) {
                fprintf(stderr, "  %s: bad limit %s\n", name, tok);
                free(copy), free(expect), free(buf);
                return 1;
            }
        }
    }
    free(copy);

    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    sx_trace_req *req = NULL;
    int rc = json ? sx_otlp_trace_decode_json(buf, len, a, &l, &req, err, sizeof(err))
                  : sx_otlp_trace_decode_pb(buf, len, a, &l, &req, err, sizeof(err));
    struct sx_otlp_stats st;
    memset(&st, 0, sizeof(st));
    if (rc == SX_OTLP_OK) sx_otlp_trace_validate(req, &l, a, &st);

    int failed = 0;
    save = NULL;
    for (char *ln = strtok_r(expect, "\n", &save); ln && !failed; ln = strtok_r(NULL, "\n", &save)) {
        snprintf(line, sizeof(line), "%s", ln);
        if (line[0] == '#' || !strncmp(line, "limits ", 7)) continue;
        if (!strncmp(line, "error ", 6)) {
            int want = -1;
            for (size_t i = 0; i < SX_ARRAY_LEN(err_names); i++)
                if (!strcmp(line + 6, err_names[i].name)) want = err_names[i].code;
            if (want < 0) {
                fprintf(stderr, "  %s: unknown error name %s\n", name, line + 6);
                failed = 1;
            } else if (rc != want) {
                fprintf(stderr, "  %s: got %d (%s), want %s\n", name, rc, err, line + 6);
                failed = 1;
            } else if (!err[0]) {
                fprintf(stderr, "  %s: error without a message\n", name);
                failed = 1;
            }
        } else if (!strncmp(line, "ok", 2)) {
            if (rc != SX_OTLP_OK) {
                fprintf(stderr, "  %s: got error %d (%s), want ok\n", name, rc, err);
                failed = 1;
                break;
            }
            char *s2 = NULL;
            for (char *tok = strtok_r(line + 2, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
                char *eq = strchr(tok, '=');
                int ok;
                if (!eq) continue;
                *eq = 0;
                size_t want = strtoull(eq + 1, NULL, 10);
                size_t got = stat_value(&st, req, tok, &ok);
                if (!ok || got != want) {
                    fprintf(stderr, "  %s: %s = %zu, want %zu%s\n", name, tok, got, want, ok ? "" : " (unknown)");
                    failed = 1;
                }
            }
            /* Whatever was accepted is valid UTF-8 and packs and re-decodes. */
            size_t n1 = 0;
            if (!failed && bad_strings(&req->base)) {
                fprintf(stderr, "  %s: invalid UTF-8 left after validation\n", name);
                failed = 1;
            }
            uint8_t *p = failed ? NULL : sx_otlp_trace_pack(req, a, &n1);
            sx_trace_req *again = NULL;
            if (!failed && (!p || sx_otlp_trace_decode_pb(p, n1, a, &l, &again, err, sizeof(err)) != SX_OTLP_OK ||
                            sx_otlp_trace_count(again) != st.spans_kept)) {
                fprintf(stderr, "  %s: packed result does not decode back\n", name);
                failed = 1;
            }
        } else if (!strncmp(line, "reason ", 7)) {
            if (!strstr(st.reason, line + 7)) {
                fprintf(stderr, "  %s: reason \"%s\", want \"%s\"\n", name, st.reason, line + 7);
                failed = 1;
            }
        } else {
            fprintf(stderr, "  %s: bad .expect line: %s\n", name, line);
            failed = 1;
        }
    }
    sx_arena_destroy(a);
    free(expect);
    free(buf);
    return failed;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void test_data_cases(void **state)
{
    (void)state;
    DIR *d = opendir(data_dir());
    if (!d) fail_msg("cannot open %s (run from the repo root or set SX_TESTDATA)", data_dir());
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 7 && !strcmp(e->d_name + l - 7, ".expect") && n < SX_ARRAY_LEN(names))
            names[n++] = strndup(e->d_name, l - 7);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    assert_true(n >= 40);

    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        int f = run_case(names[i]);
        if (f) failed++;
        printf("  %s %s\n", f ? "FAIL" : "ok  ", names[i]);
        free(names[i]);
    }
    printf("  %zu cases, %zu failed\n", n, failed);
    assert_int_equal(failed, 0);
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
