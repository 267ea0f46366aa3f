/* test_jsonval.c: small JSON documents into an arena tree (lib/jsonval.c): values, limits, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "jsonval.h"

static struct sx_jv *parse(struct sx_arena *a, const char *s, const struct sx_jv_limits *l, char *err, size_t errlen)
{
    struct sx_jv *v = NULL;
    if (sx_jv_parse(s, strlen(s), l, a, &v, err, errlen) != SX_OK) return NULL;
    return v;
}

static void test_values(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    char err[128];
    struct sx_jv *v = parse(a, "{\"ids\":[1,\"42\",-3,2.5],\"status\":\"resolved\",\"b\":true,\"n\":null,\"o\":{}}",
                            NULL, err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(v->type, SX_JV_OBJECT);
    assert_int_equal(v->n, 5);
    const struct sx_jv *ids = sx_jv_get(v, "ids");
    assert_non_null(ids);
    assert_int_equal(ids->type, SX_JV_ARRAY);
    assert_int_equal(ids->n, 4);
    long long x = 0;
    assert_int_equal(sx_jv_int(ids->first, 1, 100, &x), SX_OK);
    assert_int_equal(x, 1);
    assert_int_equal(sx_jv_int(ids->first->next, 1, 100, &x), SX_OK);
    assert_int_equal(x, 42);
    assert_int_equal(sx_jv_int(ids->first->next->next, -10, 100, &x), SX_OK); /* a number may be negative */
    assert_int_equal(x, -3);
    assert_int_equal(sx_jv_int(ids->first->next->next->next, 0, 100, &x), SX_ERR); /* 2.5 */
    assert_int_equal(sx_jv_int(ids->first, 2, 100, &x), SX_ERR);                  /* out of range */
    assert_string_equal(sx_jv_get(v, "status")->str, "resolved");
    assert_int_equal(sx_jv_get(v, "b")->boolean, 1);
    assert_int_equal(sx_jv_get(v, "n")->type, SX_JV_NULL);
    assert_int_equal(sx_jv_get(v, "o")->n, 0);
    assert_null(sx_jv_get(v, "missing"));
    assert_null(sx_jv_get(ids, "ids")); /* not an object */
    /* A string "-3" is not an id; a bool is not a number. */
    sx_arena_reset(a);
    v = parse(a, "[\"-3\",true,\"\",\"1e3\"]", NULL, err, sizeof(err));
    assert_non_null(v);
    for (const struct sx_jv *i = v->first; i; i = i->next) assert_int_equal(sx_jv_int(i, -10, 10000, &x), SX_ERR);
    /* Scalars at the top level. */
    sx_arena_reset(a);
    v = parse(a, " \"x\" ", NULL, err, sizeof(err));
    assert_non_null(v);
    assert_int_equal(v->type, SX_JV_STRING);
    sx_arena_destroy(a);
}

static void test_errors(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    char err[128];
    static const struct { const char *in, *want; } c[] = {
        {"", "invalid JSON"},
        {"{", "invalid JSON"},
        {"{\"a\":1,}", "invalid JSON"},
        {"{\"a\":1} x", "invalid JSON"},
        {"{\"a\":1,\"a\":2}", "duplicate key"},
        {"\"\xff\"", "invalid JSON"},
        {"\"a\\u0000b\"", "NUL"},
        {"[[[[[[[[[1]]]]]]]]]", "nested too deeply"},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        sx_arena_reset(a);
        assert_null(parse(a, c[i].in, NULL, err, sizeof(err)));
        if (!strstr(err, c[i].want)) fail_msg("%s: want \"%s\" in \"%s\"", c[i].in, c[i].want, err);
    }
    struct sx_jv_limits l = {.max_items = 3, .max_string = 4};
    sx_arena_reset(a);
    assert_null(parse(a, "[1,2,3]", &l, err, sizeof(err)));
    assert_non_null(strstr(err, "too many values"));
    sx_arena_reset(a);
    assert_null(parse(a, "[\"abcde\"]", &l, err, sizeof(err)));
    assert_non_null(strstr(err, "too long"));
    sx_arena_reset(a);
    assert_non_null(parse(a, "[\"abcd\",1]", &l, err, sizeof(err)));
    sx_arena_destroy(a);
    /* An arena too small for the document's nodes (yajl's own buffers fit:
     * yajl does not survive a failed allocation of its own). */
    a = sx_arena_create(1024, 16384);
    char big[4096];
    size_t o = 0;
    big[o++] = '[';
    for (int i = 0; i < 1000; i++) o += (size_t)snprintf(big + o, sizeof(big) - o, "%s1", i ? "," : "");
    big[o++] = ']';
    big[o] = '\0';
    assert_null(parse(a, big, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "too large"));
    sx_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
