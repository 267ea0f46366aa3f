/* test_api_util.c: the API's pure helpers: URL decoding, query strings, time
 * filters, cursors and waterfall ordering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "apiutil.h"

/* ---- URL decoding ------------------------------------------------------------ */

static void test_url_decode(void **state)
{
    (void)state;
    char out[64];
    size_t n;
    const char *s = "a%20b+c%2Bd%e2%82%AC";
    assert_int_equal(sx_api_url_decode(s, strlen(s), out, &n, 1), SX_OK);
    assert_string_equal(out, "a b c+d\xe2\x82\xac");
    assert_int_equal(n, strlen("a b c+d\xe2\x82\xac"));
    /* '+' stays when plus_space is off (paths). */
    assert_int_equal(sx_api_url_decode("a+b", 3, out, &n, 0), SX_OK);
    assert_string_equal(out, "a+b");
    assert_int_equal(sx_api_url_decode("", 0, out, &n, 1), SX_OK);
    assert_string_equal(out, "");
    /* Invalid escapes. */
    assert_int_equal(sx_api_url_decode("%", 1, out, &n, 1), SX_ERR);
    assert_int_equal(sx_api_url_decode("%4", 2, out, &n, 1), SX_ERR);
    assert_int_equal(sx_api_url_decode("%zz", 3, out, &n, 1), SX_ERR);
    assert_int_equal(sx_api_url_decode("a%g1", 4, out, &n, 1), SX_ERR);
    assert_int_equal(sx_api_url_decode("%00", 3, out, &n, 1), SX_ERR);
    /* Only the first n bytes are read. */
    assert_int_equal(sx_api_url_decode("ab%41", 2, out, &n, 1), SX_OK);
    assert_string_equal(out, "ab");
}

/* ---- query strings ----------------------------------------------------------- */

static void test_query_parse_repeated(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    struct sx_api_query q;
    char err[128];
    const char *qs = "service=api&attr=http.status_code%3D500&&attr=user=x+y&flag&limit=10&empty=";
    assert_int_equal(sx_api_query_parse(a, qs, 16, &q, err, sizeof(err)), SX_OK);
    assert_int_equal(q.n, 6);
    assert_string_equal(sx_api_query_get(&q, "service"), "api");
    assert_int_equal(sx_api_query_count(&q, "attr"), 2);
    assert_string_equal(q.params[1].key, "attr");
    assert_string_equal(q.params[1].value, "http.status_code=500");
    assert_string_equal(q.params[2].value, "user=x y"); /* split on the first '=' only */
    assert_string_equal(sx_api_query_get(&q, "flag"), "");
    assert_string_equal(sx_api_query_get(&q, "empty"), "");
    assert_string_equal(sx_api_query_get(&q, "limit"), "10");
    assert_null(sx_api_query_get(&q, "missing"));
    assert_int_equal(sx_api_query_count(&q, "missing"), 0);

    assert_int_equal(sx_api_query_parse(a, "", 16, &q, err, sizeof(err)), SX_OK);
    assert_int_equal(q.n, 0);
    assert_int_equal(sx_api_query_parse(a, NULL, 16, &q, err, sizeof(err)), SX_OK);
    assert_int_equal(q.n, 0);
    assert_int_equal(sx_api_query_parse(a, "&&&", 16, &q, err, sizeof(err)), SX_OK);
    assert_int_equal(q.n, 0);
    /* Encoded keys are decoded too. */
    assert_int_equal(sx_api_query_parse(a, "time%52ange=1h", 16, &q, err, sizeof(err)), SX_OK);
    assert_string_equal(sx_api_query_get(&q, "timeRange"), "1h");
    sx_arena_destroy(a);
}

static void test_query_parse_errors(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    struct sx_api_query q;
    char err[128];
    assert_int_equal(sx_api_query_parse(a, "service=a%zzb", 16, &q, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "service"));
    assert_int_equal(sx_api_query_parse(a, "ser%vice=a", 16, &q, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_query_parse(a, "a=%00", 16, &q, err, sizeof(err)), SX_ERR);
    /* Invalid UTF-8 (PostgreSQL would refuse it): bad lead, truncated, overlong, surrogate. */
    assert_int_equal(sx_api_query_parse(a, "service=%ff", 16, &q, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "service"));
    assert_int_equal(sx_api_query_parse(a, "operation=%e2%82", 16, &q, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_query_parse(a, "a=%c0%af", 16, &q, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_query_parse(a, "a=%ed%a0%80", 16, &q, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_query_parse(a, "%c3%28=x", 16, &q, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_query_parse(a, "a=%f0%9f%98%80&b=%c3%a9", 16, &q, err, sizeof(err)), SX_OK);
    assert_string_equal(sx_api_query_get(&q, "b"), "\xc3\xa9");
    assert_int_equal(sx_api_query_parse(a, "a=1&b=2&c=3", 2, &q, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "too many"));
    sx_arena_destroy(a);
}

/* ---- numbers and times ------------------------------------------------------- */

static void test_parse_int_and_ms(void **state)
{
    (void)state;
    long long v;
    int64_t ns;
    assert_int_equal(sx_api_parse_int("20", 1, 1000, &v), SX_OK);
    assert_int_equal(v, 20);
    assert_int_equal(sx_api_parse_int("0", 1, 1000, &v), SX_ERR);
    assert_int_equal(sx_api_parse_int("1001", 1, 1000, &v), SX_ERR);
    assert_int_equal(sx_api_parse_int("-5", -10, 10, &v), SX_OK);
    assert_int_equal(v, -5);
    assert_int_equal(sx_api_parse_int("", 0, 10, &v), SX_ERR);
    assert_int_equal(sx_api_parse_int("1x", 0, 10, &v), SX_ERR);
    assert_int_equal(sx_api_parse_int(" 1", 0, 10, &v), SX_ERR);
    assert_int_equal(sx_api_parse_int("99999999999999999999999", 0, 10, &v), SX_ERR);

    assert_int_equal(sx_api_parse_ms("250", &ns), SX_OK);
    assert_int_equal(ns, 250000000);
    assert_int_equal(sx_api_parse_ms("0.5", &ns), SX_OK);
    assert_int_equal(ns, 500000);
    assert_int_equal(sx_api_parse_ms("1.0000019", &ns), SX_OK); /* sub-ns digits dropped */
    assert_int_equal(ns, 1000001);
    assert_int_equal(sx_api_parse_ms("-1", &ns), SX_ERR);
    assert_int_equal(sx_api_parse_ms("1.", &ns), SX_ERR);
    assert_int_equal(sx_api_parse_ms(".5", &ns), SX_ERR);
    assert_int_equal(sx_api_parse_ms("nan", &ns), SX_ERR);
    assert_int_equal(sx_api_parse_ms("1e3", &ns), SX_ERR);
    assert_int_equal(sx_api_parse_ms("10000000000000", &ns), SX_ERR);
}

static void test_parse_time_rfc3339(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(sx_api_parse_time("2026-01-01T00:00:00Z", &ns), SX_OK);
    assert_int_equal(ns, 1767225600LL * 1000000000LL);
    assert_int_equal(sx_api_parse_time("1970-01-01T00:00:00Z", &ns), SX_OK);
    assert_int_equal(ns, 0);
    /* Offsets and fractions. */
    assert_int_equal(sx_api_parse_time("2026-01-01T01:00:00.5+01:00", &ns), SX_OK);
    assert_int_equal(ns, 1767225600LL * 1000000000LL + 500000000);
    assert_int_equal(sx_api_parse_time("2025-12-31T19:30:00.123456789-04:30", &ns), SX_OK);
    assert_int_equal(ns, 1767225600LL * 1000000000LL + 123456789);
    assert_int_equal(sx_api_parse_time("2026-01-01t00:00:00.1234567891z", &ns), SX_OK);
    assert_int_equal(ns, 1767225600LL * 1000000000LL + 123456789);
    assert_int_equal(sx_api_parse_time("2026-01-01 00:00:00Z", &ns), SX_OK);
    assert_int_equal(sx_api_parse_time("2024-02-29T12:00:00Z", &ns), SX_OK); /* leap day */
    assert_int_equal(ns, 1709208000LL * 1000000000LL);
    /* Invalid. */
    const char *bad[] = {
        "2026-01-01",                /* date only */
        "2026-01-01T00:00:00",       /* no zone */
        "2026-13-01T00:00:00Z",      /* month */
        "2026-00-10T00:00:00Z",
        "2025-02-29T00:00:00Z",      /* not a leap year */
        "2026-04-31T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:61Z",
        "2026-01-01T00:00:00.Z",     /* empty fraction */
        "2026-01-01T00:00:00+0100",  /* offset without colon */
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00Zjunk",
        "26-01-01T00:00:00Z",
        "2026/01/01T00:00:00Z",
        "3000-01-01T00:00:00Z",      /* past 2262: does not fit */
        "",
        "now",
        "-1",
        "12a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sx_api_parse_time(bad[i], &ns) != SX_ERR) fail_msg("accepted '%s'", bad[i]);
    }
}

static void test_parse_time_unix_ms(void **state)
{
    (void)state;
    int64_t ns;
    assert_int_equal(sx_api_parse_time("1767225600000", &ns), SX_OK);
    assert_int_equal(ns, 1767225600LL * 1000000000LL);
    assert_int_equal(sx_api_parse_time("0", &ns), SX_OK);
    assert_int_equal(ns, 0);
    assert_int_equal(sx_api_parse_time("99999999999999999", &ns), SX_ERR); /* overflow */
}

static void test_parse_range_and_window(void **state)
{
    (void)state;
    int64_t ns;
    const int64_t s = 1000000000LL;
    assert_int_equal(sx_api_parse_range("15m", &ns), SX_OK);
    assert_int_equal(ns, 900 * s);
    assert_int_equal(sx_api_parse_range("1h", &ns), SX_OK);
    assert_int_equal(ns, 3600 * s);
    assert_int_equal(sx_api_parse_range("24h", &ns), SX_OK);
    assert_int_equal(ns, 86400 * s);
    assert_int_equal(sx_api_parse_range("7d", &ns), SX_OK);
    assert_int_equal(ns, 7 * 86400 * s);
    const char *bad[] = {"", "h", "0h", "-1h", "1.5h", "15x", "15", "1hh", "401d", "9999999999d", " 1h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sx_api_parse_range(bad[i], &ns) != SX_ERR) fail_msg("accepted '%s'", bad[i]);
    }

    struct sx_api_window w;
    char err[160];
    const int64_t now = 1767225600LL * s;
    /* Default: the last 24 h. */
    assert_int_equal(sx_api_time_window(NULL, NULL, NULL, now, 86400 * s, &w, err, sizeof(err)), SX_OK);
    assert_int_equal(w.to_ns, now);
    assert_int_equal(w.from_ns, now - 86400 * s);
    /* Empty values count as absent. */
    assert_int_equal(sx_api_time_window("", "", "", now, 86400 * s, &w, err, sizeof(err)), SX_OK);
    assert_int_equal(w.from_ns, now - 86400 * s);
    assert_int_equal(sx_api_time_window(NULL, NULL, "15m", now, 86400 * s, &w, err, sizeof(err)), SX_OK);
    assert_int_equal(w.from_ns, now - 900 * s);
    assert_int_equal(sx_api_time_window(NULL, "1767222000000", "1h", now, 86400 * s, &w, err, sizeof(err)),
                     SX_OK);
    assert_int_equal(w.to_ns, now - 3600 * s);
    assert_int_equal(w.from_ns, now - 7200 * s);
    assert_int_equal(sx_api_time_window("2025-12-31T00:00:00Z", NULL, NULL, now, 86400 * s, &w, err, sizeof(err)),
                     SX_OK);
    assert_int_equal(w.from_ns, now - 86400 * s);
    assert_int_equal(w.to_ns, now);
    /* Errors name the parameter. */
    assert_int_equal(sx_api_time_window("bogus", NULL, NULL, now, 86400 * s, &w, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "from"));
    assert_int_equal(sx_api_time_window(NULL, "bogus", NULL, now, 86400 * s, &w, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "to"));
    assert_int_equal(sx_api_time_window(NULL, NULL, "2y", now, 86400 * s, &w, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "timeRange"));
    assert_int_equal(sx_api_time_window("0", NULL, "1h", now, 86400 * s, &w, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_time_window("1767225600001", "1767225600000", NULL, now, 86400 * s, &w, err,
                                        sizeof(err)),
                     SX_ERR);
}

/* ---- cursors ----------------------------------------------------------------- */

static void test_cursor_roundtrip(void **state)
{
    (void)state;
    uint8_t id[16], back[16];
    int64_t t;
    char c[SX_API_CURSOR_LEN + 1];
    for (int i = 0; i < 16; i++) id[i] = (uint8_t)(0xF0 + i);
    const int64_t times[] = {0, 1767225600123456789LL, -5, INT64_MAX, INT64_MIN};
    for (size_t k = 0; k < sizeof(times) / sizeof(times[0]); k++) {
        sx_api_cursor_encode(times[k], id, c);
        assert_int_equal(strlen(c), SX_API_CURSOR_LEN);
        assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                         SX_API_CURSOR_LEN);
        memset(back, 0, sizeof(back));
        assert_int_equal(sx_api_cursor_decode(c, &t, back), SX_OK);
        assert_int_equal(t, times[k]);
        assert_memory_equal(back, id, 16);
    }
}

static void test_cursor_garbage(void **state)
{
    (void)state;
    uint8_t id[16] = {1, 2, 3};
    int64_t t;
    char c[SX_API_CURSOR_LEN + 1];
    sx_api_cursor_encode(42, id, c);
    assert_int_equal(sx_api_cursor_decode("", &t, id), SX_ERR);
    assert_int_equal(sx_api_cursor_decode(NULL, &t, id), SX_ERR);
    assert_int_equal(sx_api_cursor_decode("garbage", &t, id), SX_ERR);
    assert_int_equal(sx_api_cursor_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &t, id), SX_ERR); /* version 0 */
    char bad[SX_API_CURSOR_LEN + 2];
    memcpy(bad, c, sizeof(c));
    bad[5] = bad[5] == 'A' ? 'B' : 'A'; /* one character changed: check byte fails */
    assert_int_equal(sx_api_cursor_decode(bad, &t, id), SX_ERR);
    memcpy(bad, c, sizeof(c));
    bad[3] = '=';
    assert_int_equal(sx_api_cursor_decode(bad, &t, id), SX_ERR);
    memcpy(bad, c, sizeof(c));
    bad[SX_API_CURSOR_LEN] = 'A'; /* too long */
    bad[SX_API_CURSOR_LEN + 1] = '\0';
    assert_int_equal(sx_api_cursor_decode(bad, &t, id), SX_ERR);
    memcpy(bad, c, sizeof(c));
    bad[SX_API_CURSOR_LEN - 1] = '\0'; /* too short */
    assert_int_equal(sx_api_cursor_decode(bad, &t, id), SX_ERR);

    /* base64url itself: canonical, no padding. */
    uint8_t out[8];
    char enc[16];
    assert_int_equal(sx_api_b64url_encode((const uint8_t *)"ab", 2, enc), 3);
    assert_string_equal(enc, "YWI");
    assert_int_equal(sx_api_b64url_decode("YWI", 3, out, sizeof(out)), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(sx_api_b64url_decode("YWJ", 3, out, sizeof(out)), SX_ERR); /* trailing bits */
    assert_int_equal(sx_api_b64url_decode("Y", 1, out, sizeof(out)), SX_ERR);
    assert_int_equal(sx_api_b64url_decode("YW+", 3, out, sizeof(out)), SX_ERR);
}

/* ---- waterfall --------------------------------------------------------------- */

static void mkspan(struct sx_api_wf_span *s, int id, int parent, int64_t start)
{
    memset(s, 0, sizeof(*s));
    s->span_id[7] = (uint8_t)id;
    s->span_id[0] = (uint8_t)(id >> 8);
    if (parent >= 0) {
        s->has_parent = 1;
        s->parent_id[7] = (uint8_t)parent;
        s->parent_id[0] = (uint8_t)(parent >> 8);
    }
    s->start_ns = start;
}

/* Runs the waterfall and renders it as "id@depth id@depth ...". */
static void render(const struct sx_api_wf_span *s, size_t n, char *out, size_t outlen)
{
    struct sx_arena *a = sx_arena_create(4096, 1 << 24);
    size_t order[32];
    uint32_t depth[32];
    assert_true(n <= 32);
    assert_int_equal(sx_api_waterfall(a, s, n, order, depth), SX_OK);
    size_t off = 0;
    out[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        const struct sx_api_wf_span *x = &s[order[k]];
        int id = x->span_id[7] | x->span_id[0] << 8;
        int w = snprintf(out + off, outlen - off, "%s%d@%u", k ? " " : "", id, depth[order[k]]);
        assert_true(w > 0 && (size_t)w < outlen - off);
        off += (size_t)w;
    }
    sx_arena_destroy(a);
}

static void test_waterfall_tree(void **state)
{
    (void)state;
    struct sx_api_wf_span s[8];
    char out[256];
    /* Input shuffled on purpose. Root 1 (t=0): children 3 (t=20) and 2 (t=10);
     * 2 has 4 (t=15); 3 has 5 (t=25) and 6 (t=25, same start: by id). */
    mkspan(&s[0], 6, 3, 25);
    mkspan(&s[1], 3, 1, 20);
    mkspan(&s[2], 4, 2, 15);
    mkspan(&s[3], 1, -1, 0);
    mkspan(&s[4], 5, 3, 25);
    mkspan(&s[5], 2, 1, 10);
    render(s, 6, out, sizeof(out));
    assert_string_equal(out, "1@0 2@1 4@2 3@1 5@2 6@2");

    /* Two true roots: ordered by start, each with its subtree. */
    mkspan(&s[6], 7, -1, -5);
    mkspan(&s[7], 8, 7, -4);
    render(s, 8, out, sizeof(out));
    assert_string_equal(out, "7@0 8@1 1@0 2@1 4@2 3@1 5@2 6@2");

    render(s, 0, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_waterfall_orphans(void **state)
{
    (void)state;
    struct sx_api_wf_span s[6];
    char out[256];
    /* Orphan 10 (parent 99 missing) starts before the root but comes after the
     * root tree, at depth 0, with its own child 11. */
    mkspan(&s[0], 10, 99, 1);
    mkspan(&s[1], 11, 10, 2);
    mkspan(&s[2], 1, -1, 5);
    mkspan(&s[3], 2, 1, 6);
    mkspan(&s[4], 20, 98, 0); /* a second orphan, earlier */
    render(s, 5, out, sizeof(out));
    assert_string_equal(out, "1@0 2@1 20@0 10@0 11@1");
}

static void test_waterfall_cycle_and_duplicates(void **state)
{
    (void)state;
    struct sx_api_wf_span s[8];
    char out[256];
    /* 1 -> 2 -> 3 -> 1: no root, no orphan; all appear once, starting at the
     * earliest, without looping. */
    mkspan(&s[0], 2, 1, 20);
    mkspan(&s[1], 3, 2, 30);
    mkspan(&s[2], 1, 3, 10);
    render(s, 3, out, sizeof(out));
    assert_string_equal(out, "1@0 2@1 3@2");

    /* A self-parented span and a cycle behind a real root. */
    mkspan(&s[3], 9, -1, 0);
    mkspan(&s[4], 4, 4, 5);
    render(s, 5, out, sizeof(out));
    assert_string_equal(out, "9@0 4@0 1@0 2@1 3@2");

    /* Duplicate id 5 twice: both kept; the child attaches to the earlier. */
    mkspan(&s[0], 1, -1, 0);
    mkspan(&s[1], 5, 1, 20);
    mkspan(&s[2], 5, 1, 10);
    mkspan(&s[3], 6, 5, 30);
    render(s, 4, out, sizeof(out));
    assert_string_equal(out, "1@0 5@1 6@2 5@1");

    /* Duplicate roots with the same id and start. */
    mkspan(&s[0], 1, -1, 0);
    mkspan(&s[1], 1, -1, 0);
    mkspan(&s[2], 2, 1, 1);
    render(s, 3, out, sizeof(out));
    assert_string_equal(out, "1@0 2@1 1@0");
}

static void test_waterfall_large_chain(void **state)
{
    (void)state;
    /* A 10,000-deep chain plus 10,000 siblings: iterative and quick. */
    const size_t n = 20000;
    struct sx_api_wf_span *s = test_malloc(n * sizeof(*s));
    size_t *order = test_malloc(n * sizeof(*order));
    uint32_t *depth = test_malloc(n * sizeof(*depth));
    for (size_t i = 0; i < n; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        uint32_t id = (uint32_t)i + 1;
        memcpy(s[i].span_id, &id, 4);
        s[i].start_ns = (int64_t)(n - i);
        if (i > 0) {
            uint32_t p = i < 10000 ? (uint32_t)i : 1;
            s[i].has_parent = 1;
            memcpy(s[i].parent_id, &p, 4);
        }
    }
    struct sx_arena *a = sx_arena_create(1 << 16, 1 << 26);
    assert_int_equal(sx_api_waterfall(a, s, n, order, depth), SX_OK);
    assert_int_equal(order[0], 0);
    assert_int_equal(depth[9999], 9999);
    unsigned char *seen = test_calloc(n, 1);
    for (size_t k = 0; k < n; k++) {
        assert_false(seen[order[k]]);
        seen[order[k]] = 1;
    }
    test_free(seen);
    sx_arena_destroy(a);
    test_free(s);
    test_free(order);
    test_free(depth);
}

/* ---- logs: severity, search syntax, log cursors ------------------------------------ */

static void test_severity_parse(void **state)
{
    (void)state;
    int n = -1;
    static const struct {
        const char *s;
        int want;
    } ok[] = {{"TRACE", 1}, {"debug", 5}, {"Info", 9}, {"WARN", 13}, {"warning", 13}, {"ERROR", 17},
              {"FATAL", 21}, {"warn2", 14}, {"ERROR4", 20}, {"1", 1}, {"24", 24}, {"13", 13}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(sx_api_severity_parse(ok[i].s, &n), SX_OK);
        assert_int_equal(n, ok[i].want);
    }
    static const char *bad[] = {"", "0", "25", "-1", "WARN5", "WARN1", "WARNX", "ERR", "INFO ", " 9", "9.0", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sx_api_severity_parse(bad[i], &n), SX_ERR);
    assert_int_equal(sx_api_severity_parse(NULL, &n), SX_ERR);
}

static void test_search_check(void **state)
{
    (void)state;
    struct sx_api_search s;
    char err[128];
    assert_int_equal(sx_api_search_check("checkout failed", &s, err, sizeof(err)), SX_OK);
    assert_int_equal(s.words, 2);
    assert_int_equal(s.phrases, 0);
    assert_int_equal(s.excluded, 0);
    assert_int_equal(sx_api_search_check("\"order rows\" -postgres -\"unit price\" cart", &s, err, sizeof(err)),
                     SX_OK);
    assert_int_equal(s.words, 1);
    assert_int_equal(s.phrases, 1);
    assert_int_equal(s.excluded, 2);
    /* or is an operator; a lone '-' is a word; an open phrase runs to the end */
    assert_int_equal(sx_api_search_check("a or b - \"open phrase", &s, err, sizeof(err)), SX_OK);
    assert_int_equal(s.words, 3);
    assert_int_equal(s.phrases, 1);
    assert_int_equal(sx_api_search_check("Gr\xc3\xb6\xc3\x9f" "e", &s, err, sizeof(err)), SX_OK);
    assert_int_equal(s.words, 1);
    /* SQL and tsquery syntax are just words: q only ever travels as a parameter */
    assert_int_equal(sx_api_search_check("'; DROP TABLE logs; -- a & !b | c:* <->", &s, err, sizeof(err)), SX_OK);

    assert_int_equal(sx_api_search_check("", &s, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_search_check("   ", &s, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_search_check("-only -\"excluded terms\"", &s, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "excluded"));
    assert_int_equal(sx_api_search_check("\"\" or", &s, err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_api_search_check("bad \xff utf8", &s, err, sizeof(err)), SX_ERR);
    char big[SX_API_SEARCH_MAX_LEN + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(sx_api_search_check(big, &s, err, sizeof(err)), SX_ERR);
    big[sizeof(big) - 2] = '\0';
    assert_int_equal(sx_api_search_check(big, &s, err, sizeof(err)), SX_OK);
    char many[4 * (SX_API_SEARCH_MAX_TERMS + 1) + 1];
    size_t o = 0;
    for (int i = 0; i <= SX_API_SEARCH_MAX_TERMS; i++) o += (size_t)snprintf(many + o, sizeof(many) - o, "w%d ", i % 10);
    assert_int_equal(sx_api_search_check(many, &s, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "terms"));
}

static void test_log_cursor(void **state)
{
    (void)state;
    char cur[SX_API_CURSOR_LEN + 1];
    int64_t t;
    uint32_t blk;
    uint16_t off;
    sx_api_log_cursor_encode(1767225600002000000LL, 0xfedcba98u, 0xabcd, cur);
    assert_int_equal(strlen(cur), SX_API_CURSOR_LEN);
    assert_int_equal(sx_api_log_cursor_decode(cur, &t, &blk, &off), SX_OK);
    assert_int_equal(t, 1767225600002000000LL);
    assert_int_equal(blk, 0xfedcba98u);
    assert_int_equal(off, 0xabcd);
    sx_api_log_cursor_encode(-5, 0, 1, cur);
    assert_int_equal(sx_api_log_cursor_decode(cur, &t, &blk, &off), SX_OK);
    assert_int_equal(t, -5);
    assert_int_equal(blk, 0);
    assert_int_equal(off, 1);
    /* a trace cursor is not a log cursor */
    uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    sx_api_cursor_encode(42, id, cur);
    assert_int_equal(sx_api_log_cursor_decode(cur, &t, &blk, &off), SX_ERR);
    assert_int_equal(sx_api_log_cursor_decode("garbage", &t, &blk, &off), SX_ERR);
}

/* ---- user agents ----------------------------------------------------------- */

static void test_user_agent(void **state)
{
    (void)state;
    static const struct {
        const char *ua, *browser, *os;
    } c[] = {
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
         "Chrome 120", "Windows"},
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
         "Edge 120", "Windows"},
        {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
         "Safari 17", "macOS"},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
         "Safari 17", "iOS"},
        {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox 121", "Linux"},
        {"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
         "Chrome 120", "Android"},
        {"curl/8.4.0", "Other", "Other"},
        {"", "Other", "Other"},
    };
    char b[32], o[32];
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        sx_api_user_agent(c[i].ua, b, sizeof(b), o, sizeof(o));
        assert_string_equal(b, c[i].browser);
        assert_string_equal(o, c[i].os);
    }
    sx_api_user_agent(NULL, b, sizeof(b), o, sizeof(o));
    assert_string_equal(b, "Other");
    sx_api_user_agent("Chrome/120", b, 5, o, 3); /* truncated, still terminated */
    assert_string_equal(b, "Chro");
    assert_string_equal(o, "Ot");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_query_parse_repeated),
        cmocka_unit_test(test_query_parse_errors),
        cmocka_unit_test(test_parse_int_and_ms),
        cmocka_unit_test(test_parse_time_rfc3339),
        cmocka_unit_test(test_parse_time_unix_ms),
        cmocka_unit_test(test_parse_range_and_window),
        cmocka_unit_test(test_cursor_roundtrip),
        cmocka_unit_test(test_cursor_garbage),
        cmocka_unit_test(test_user_agent),
        cmocka_unit_test(test_waterfall_tree),
        cmocka_unit_test(test_waterfall_orphans),
        cmocka_unit_test(test_waterfall_cycle_and_duplicates),
        cmocka_unit_test(test_waterfall_large_chain),
        cmocka_unit_test(test_severity_parse),
        cmocka_unit_test(test_search_check),
        cmocka_unit_test(test_log_cursor),
    };
    return cmocka_run_group_tests_name("api_util", tests, NULL, NULL);
}
