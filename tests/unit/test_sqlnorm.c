/* test_sqlnorm.c: SQL normalization for database span grouping (lib/sqlnorm.c), input -> expected text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sqlnorm.h"

struct tcase {
    const char *in, *want;
};

static void check(const struct tcase *c, size_t n)
{
    char out[1024];
    for (size_t i = 0; i < n; i++) {
        size_t len = sx_sqlnorm(c[i].in, strlen(c[i].in), out, sizeof(out));
        if (strcmp(out, c[i].want) != 0 || len != strlen(out)) {
            print_error("input   %s\nwant    %s\ngot     %s (len %zu)\n", c[i].in, c[i].want, out, len);
            fail();
        }
        assert_true(len <= strlen(c[i].in));
    }
}

static void test_literals(void **state)
{
    (void)state;
    static const struct tcase c[] = {
        {"SELECT * FROM users WHERE id = 42", "SELECT * FROM users WHERE id = ?"},
        {"SELECT * FROM users WHERE id = 7", "SELECT * FROM users WHERE id = ?"},
        {"SELECT * FROM t WHERE name = 'bob' AND x = 1.5e-3", "SELECT * FROM t WHERE name = ? AND x = ?"},
        {"SELECT 'it''s', 'a\\' FROM t", "SELECT ?, ? FROM t"},           /* '' inside; backslash is plain */
        {"SELECT E'it\\'s here' FROM t", "SELECT ? FROM t"},              /* E'' has backslash escapes */
        {"SELECT N'x', X'DEADBEEF', B'0101', U&'d\\0061t' FROM t", "SELECT ?, ?, ?, ? FROM t"},
        {"SELECT 0x1F, .5, 3. FROM t", "SELECT ?, ?, ? FROM t"},
        {"SELECT $$a 'quoted' $ b$$, $fn$ body $$ inner $fn$ FROM t", "SELECT ?, ? FROM t"},
        {"SELECT * FROM t WHERE a = $1 AND b = $12", "SELECT * FROM t WHERE a = ? AND b = ?"},
        {"SELECT * FROM t WHERE a = ?", "SELECT * FROM t WHERE a = ?"},
        {"UPDATE t SET a = 'unterminated", "UPDATE t SET a = ?"},
    };
    check(c, sizeof(c) / sizeof(c[0]));
}

static void test_negative_numbers(void **state)
{
    (void)state;
    static const struct tcase c[] = {
        {"SELECT * FROM t WHERE x = -5", "SELECT * FROM t WHERE x = ?"},
        {"SELECT a - 5, a-5, (a) - 1 FROM t", "SELECT a - ?, a-?, (a) - ?"
                                              " FROM t"},
        {"SELECT -1, -2.5 FROM t WHERE x > -3 AND -4 < y", "SELECT ?, ? FROM t WHERE x > ? AND ? < y"},
        {"SELECT * FROM t WHERE x IN (-1, -2)", "SELECT * FROM t WHERE x IN (?)"},
    };
    check(c, sizeof(c) / sizeof(c[0]));
}

static void test_identifiers_keep_digits(void **state)
{
    (void)state;
    static const struct tcase c[] = {
        {"SELECT t1.c2, col_3 FROM t1 JOIN \"Table9\" ON t1.id = \"Table9\".id2",
         "SELECT t1.c2, col_3 FROM t1 JOIN \"Table9\" ON t1.id = \"Table9\".id2"},
        {"SELECT `t2`.`x3` FROM `t2` WHERE a$1 = 5", "SELECT `t2`.`x3` FROM `t2` WHERE a$1 = ?"},
        {"SELECT \"it\"\"s 1\" FROM t", "SELECT \"it\"\"s 1\" FROM t"},
        {"SELECT täble1.x FROM täble1 WHERE ü = 'ünïcode' AND n = 3", "SELECT täble1.x FROM täble1 WHERE ü = ? AND n = ?"},
        {"SELECT x::int4, ARRAY[1, 2] FROM t", "SELECT x::int4, ARRAY[?, ?] FROM t"},
    };
    check(c, sizeof(c) / sizeof(c[0]));
}

static void test_lists_and_tuples(void **state)
{
    (void)state;
    static const struct tcase c[] = {
        {"SELECT * FROM t WHERE id IN (1,2,3)", "SELECT * FROM t WHERE id IN (?)"},
        {"SELECT * FROM t WHERE id IN ( 1 , 2 , 3 , 4 )", "SELECT * FROM t WHERE id IN (?)"},
        {"SELECT * FROM t WHERE id IN ($1, $2) AND s IN ('a')", "SELECT * FROM t WHERE id IN (?) AND s IN (?)"},
        {"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'),(3,'z')", "INSERT INTO t (a, b) VALUES (?)"},
        {"INSERT INTO t (a, b) VALUES (1, now())", "INSERT INTO t (a, b) VALUES (?, now())"},
        {"SELECT f(1), g(2) FROM t", "SELECT f(?), g(?) FROM t"},
        {"SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))", "SELECT * FROM t WHERE (a, b) IN ((?))"},
    };
    check(c, sizeof(c) / sizeof(c[0]));
}

static void test_comments_and_whitespace(void **state)
{
    (void)state;
    static const struct tcase c[] = {
        {"  SELECT  *\n\tFROM   t -- trailing 42\n WHERE a = 1  ", "SELECT * FROM t WHERE a = ?"},
        {"SELECT /* one /* nested */ still */ a FROM t", "SELECT a FROM t"},
        {"SELECT a/*x*/FROM t", "SELECT a FROM t"},
        {"SELECT '--not a comment', a FROM t", "SELECT ?, a FROM t"},
        {"", ""},
        {"   \n ", ""},
    };
    check(c, sizeof(c) / sizeof(c[0]));
}

static void test_bounded_output(void **state)
{
    (void)state;
    char out[9];
    const char *in = "SELECT ü FROM t";
    size_t len = sx_sqlnorm(in, strlen(in), out, sizeof(out)); /* "SELECT " + half of ü would not fit */
    assert_true(len < sizeof(out));
    assert_string_equal(out, "SELECT");
    char one[1];
    assert_int_equal(sx_sqlnorm(in, strlen(in), one, 1), 0);
    assert_int_equal(one[0], '\0');
    /* Embedded NUL and bytes that are no UTF-8 are copied, never read past n. */
    const char raw[] = {'S', 'E', 'L', 'E', 'C', 'T', ' ', '\xff', '\0', '1'};
    char big[32];
    len = sx_sqlnorm(raw, sizeof(raw), big, sizeof(big));
    assert_true(len <= sizeof(raw));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_negative_numbers),
        cmocka_unit_test(test_identifiers_keep_digits),
        cmocka_unit_test(test_lists_and_tuples),
        cmocka_unit_test(test_comments_and_whitespace),
        cmocka_unit_test(test_bounded_output),
    };
    return cmocka_run_group_tests_name("sqlnorm", tests, NULL, NULL);
}
