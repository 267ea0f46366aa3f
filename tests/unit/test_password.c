/* test_password.c: Argon2id hashing, verification, rehash checks and generated passwords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "password.h"

static void test_hash_and_verify(void **state)
{
    (void)state;
    char h[SX_PASSWORD_HASH_MAX];
    const char *pw = "correct horse battery staple";
    assert_int_equal(sx_password_hash(pw, strlen(pw), h), SX_OK);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_non_null(strstr(h, "m=65536,t=2,p=1"));
    assert_int_equal(sx_password_verify(h, pw, strlen(pw)), SX_OK);
    assert_int_equal(sx_password_verify(h, "correct horse battery stapl", strlen(pw) - 1), SX_ERR);
    assert_int_equal(sx_password_verify(h, "Correct horse battery staple", strlen(pw)), SX_ERR);
    assert_int_equal(sx_password_needs_rehash(h), 0);

    /* Same password, new salt: a different string that verifies too. */
    char h2[SX_PASSWORD_HASH_MAX];
    assert_int_equal(sx_password_hash(pw, strlen(pw), h2), SX_OK);
    assert_string_not_equal(h, h2);
    assert_int_equal(sx_password_verify(h2, pw, strlen(pw)), SX_OK);
}

static void test_length_limits(void **state)
{
    (void)state;
    char h[SX_PASSWORD_HASH_MAX];
    static char big[SX_PASSWORD_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    assert_int_equal(sx_password_hash("short", 5, h), SX_ERR);
    assert_int_equal(sx_password_hash(big, SX_PASSWORD_MAX + 1, h), SX_ERR);
    assert_int_equal(sx_password_hash(big, SX_PASSWORD_MAX, h), SX_OK);
    assert_int_equal(sx_password_verify(h, big, SX_PASSWORD_MAX), SX_OK);
    assert_int_equal(sx_password_verify(h, big, SX_PASSWORD_MAX + 1), SX_ERR);
}

static void test_malformed_and_weaker_hashes(void **state)
{
    (void)state;
    assert_int_equal(sx_password_verify("", "password1", 9), SX_ERR);
    assert_int_equal(sx_password_verify("$argon2id$garbage", "password1", 9), SX_ERR);
    assert_int_equal(sx_password_verify(NULL, "password1", 9), SX_ERR);
    assert_int_equal(sx_password_needs_rehash("$argon2id$garbage"), 1);
    /* A hash made with weaker parameters verifies but asks for a rehash. */
    char weak[crypto_pwhash_STRBYTES];
    assert_int_equal(crypto_pwhash_str(weak, "password1", 9, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN), 0);
    assert_int_equal(sx_password_verify(weak, "password1", 9), SX_OK);
    assert_int_equal(sx_password_needs_rehash(weak), 1);
}

static void test_dummy_always_fails(void **state)
{
    (void)state;
    assert_int_equal(sx_password_verify_dummy("anything at all", 15), SX_ERR);
    assert_int_equal(sx_password_verify_dummy("", 0), SX_ERR);
}

static void test_generate(void **state)
{
    (void)state;
    char a[SX_PASSWORD_GEN_LEN + 1], b[SX_PASSWORD_GEN_LEN + 1];
    sx_password_generate(a);
    sx_password_generate(b);
    assert_int_equal(strlen(a), SX_PASSWORD_GEN_LEN);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), SX_PASSWORD_GEN_LEN);
    assert_string_not_equal(a, b);
    /* Every character of the alphabet turns up over enough draws. */
    int seen[256] = {0};
    for (int i = 0; i < 200; i++) {
        sx_password_generate(a);
        for (int j = 0; j < SX_PASSWORD_GEN_LEN; j++) seen[(unsigned char)a[j]] = 1;
    }
    int distinct = 0;
    for (int i = 0; i < 256; i++) distinct += seen[i];
    assert_int_equal(distinct, 64);
    char h[SX_PASSWORD_HASH_MAX];
    assert_int_equal(sx_password_hash(a, strlen(a), h), SX_OK);
    assert_int_equal(sx_password_verify(h, a, strlen(a)), SX_OK);
}

int main(void)
{
    assert_int_equal(sx_password_init(), SX_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_malformed_and_weaker_hashes),
        cmocka_unit_test(test_dummy_always_fails),
        cmocka_unit_test(test_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
