/* test_entry.c: stream entry fields, decimal fields and the ledger key (lib/entry.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "entry.h"
#include "keys.h"

static redisReply str_reply(const char *s)
{
    redisReply r;
    memset(&r, 0, sizeof(r));
    r.type = REDIS_REPLY_STRING;
    r.str = (char *)s;
    r.len = strlen(s);
    return r;
}

static void test_field_lookup(void **state)
{
    (void)state;
    redisReply k1 = str_reply("p"), v1 = str_reply("42"), k2 = str_reply("b"), v2, k3 = str_reply("n");
    memset(&v2, 0, sizeof(v2));
    v2.type = REDIS_REPLY_INTEGER; /* not a string: absent */
    redisReply *el[] = {&k1, &v1, &k2, &v2, &k3};
    redisReply fields;
    memset(&fields, 0, sizeof(fields));
    fields.type = REDIS_REPLY_ARRAY;
    fields.element = el;
    fields.elements = 5; /* a trailing key without a value is ignored */
    assert_ptr_equal(sx_entry_field(&fields, "p"), &v1);
    assert_null(sx_entry_field(&fields, "b"));
    assert_null(sx_entry_field(&fields, "n"));
    assert_null(sx_entry_field(&fields, "pp"));
    assert_null(sx_entry_field(NULL, "p"));
}

static void test_decimal_fields(void **state)
{
    (void)state;
    redisReply ok = str_reply("42"), neg = str_reply("-1"), junk = str_reply("4x"), empty = str_reply(""),
               big = str_reply("99999999999999999999999"), max = str_reply("2147483647");
    assert_int_equal(sx_entry_ll(&ok, 1, 100, 0), 42);
    assert_int_equal(sx_entry_ll(&ok, 1, 41, -7), -7);
    assert_int_equal(sx_entry_ll(&neg, 1, 100, 0), 0);
    assert_int_equal(sx_entry_ll(&neg, -5, 100, 0), -1);
    assert_int_equal(sx_entry_ll(&junk, 0, 100, 9), 9);
    assert_int_equal(sx_entry_ll(&empty, 0, 100, 9), 9);
    assert_int_equal(sx_entry_ll(&big, 0, INT64_MAX, 9), 9);
    assert_int_equal(sx_entry_ll(&max, 1, INT32_MAX, 0), INT32_MAX);
    assert_int_equal(sx_entry_ll(NULL, 1, 100, 3), 3);
}

static void test_ledger_key_is_sha256_of_project_and_body(void **state)
{
    (void)state;
    uint8_t k[SX_ENTRY_KEY_LEN], full[SX_SHA256_LEN], other[SX_ENTRY_KEY_LEN];
    sx_entry_key(7, "body", 4, k);
    sx_sha256("7\nbody", 6, full);
    assert_memory_equal(k, full, SX_ENTRY_KEY_LEN);
    sx_entry_key(77, "body", 4, other); /* the project is part of the key */
    assert_memory_not_equal(k, other, SX_ENTRY_KEY_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_lookup),
        cmocka_unit_test(test_decimal_fields),
        cmocka_unit_test(test_ledger_key_is_sha256_of_project_and_body),
    };
    return cmocka_run_group_tests_name("entry", tests, NULL, NULL);
}
