/* test_keys.c: secret generation, SHA-256 and hex helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "keys.h"

static void test_sha256_known_vector(void **state)
{
    (void)state;
    uint8_t d[SX_SHA256_LEN];
    char hex[2 * SX_SHA256_LEN + 1];
    sx_sha256("abc", 3, d);
    sx_hex_encode(d, sizeof(d), hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hex_roundtrip_and_errors(void **state)
{
    (void)state;
    uint8_t out[4];
    assert_int_equal(sx_hex_decode("DeadBeef", 8, out, 4), SX_OK);
    assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
    assert_int_equal(sx_hex_decode("deadbee", 7, out, 4), SX_ERR);
    assert_int_equal(sx_hex_decode("deadbeeg", 8, out, 4), SX_ERR);
}

static void test_key_generate_format_and_uniqueness(void **state)
{
    (void)state;
    char a[SX_KEY_MAX], b[SX_KEY_MAX];
    assert_int_equal(sx_key_generate("sxk", a, sizeof(a)), SX_OK);
    assert_int_equal(sx_key_generate("sxk", b, sizeof(b)), SX_OK);
    assert_int_equal(strlen(a), 4 + 43);
    assert_memory_equal(a, "sxk_", 4);
    assert_int_equal(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    assert_string_not_equal(a, b);
    char small[10];
    assert_int_equal(sx_key_generate("sxk", small, sizeof(small)), SX_ERR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_vector),
        cmocka_unit_test(test_hex_roundtrip_and_errors),
        cmocka_unit_test(test_key_generate_format_and_uniqueness),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
