/* test_red.c: RED duration buckets, clamped percentiles and the endpoint health judgement (lib/red.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "red.h"

static void test_buckets(void **state)
{
    (void)state;
    assert_int_equal(sx_red_bucket(0), 0);
    assert_int_equal(sx_red_bucket(0.5), 0); /* bounds are inclusive */
    assert_int_equal(sx_red_bucket(0.51), 1);
    assert_int_equal(sx_red_bucket(100), 11);
    assert_int_equal(sx_red_bucket(100.01), 12);
    assert_int_equal(sx_red_bucket(60000), SX_RED_NBOUNDS - 1);
    assert_int_equal(sx_red_bucket(1e12), SX_RED_NBOUNDS);
    assert_int_equal(sx_red_bucket(NAN), 0);
    assert_int_equal(sx_red_bucket(-3), 0);
    for (size_t i = 1; i < SX_RED_NBOUNDS; i++) assert_true(sx_red_bounds[i] > sx_red_bounds[i - 1]);
}

static void test_quantile_clamped(void **state)
{
    (void)state;
    double c[SX_RED_NBUCKETS] = {0};
    c[sx_red_bucket(120)] = 10; /* (100, 150] */
    double p = sx_red_quantile(c, 0.5, NAN, NAN);
    assert_true(p > 100 && p <= 150);
    assert_true(sx_red_quantile(c, 0.99, 120, 120) == 120);
    double none[SX_RED_NBUCKETS] = {0};
    assert_true(isnan(sx_red_quantile(none, 0.5, 1, 2)));
}

static enum sx_red_health judge(long long rq, long long re, double rp, long long bq, long long be, double bp,
                                char *why)
{
    struct sx_red_period r = {rq, re, rp}, b = {bq, be, bp};
    return sx_red_judge(&r, &b, why, 160);
}

static void test_health(void **state)
{
    (void)state;
    char why[160];
    assert_int_equal(judge(5, 5, 100, 1000, 0, 100, why), SX_RED_HEALTHY); /* too few to judge */
    assert_non_null(strstr(why, "needed to judge"));
    assert_int_equal(judge(100, 12, 100, 1000, 4, 100, why), SX_RED_FAILING);
    assert_string_equal(why, "error rate 12.0% (baseline 0.4%); p95 100 ms (baseline 100 ms)");
    assert_int_equal(judge(100, 6, 100, 1000, 4, 100, why), SX_RED_FAILING); /* 6% >= 5x 0.4% */
    assert_int_equal(judge(100, 6, 100, 1000, 40, 100, why), SX_RED_HEALTHY); /* 6% vs 4%: not 2x */
    assert_int_equal(judge(100, 9, 100, 1000, 40, 100, why), SX_RED_DEGRADED); /* 9% >= 2x 4% */
    assert_int_equal(judge(100, 3, 100, 1000, 40, 100, why), SX_RED_HEALTHY);
    assert_int_equal(judge(100, 0, 840, 1000, 0, 200, why), SX_RED_DEGRADED);
    assert_string_equal(why, "p95 840 ms is 4.2x baseline 200 ms; error rate 0.0% (baseline 0.0%)");
    assert_int_equal(judge(100, 0, 1200, 1000, 0, 200, why), SX_RED_FAILING);
    assert_int_equal(judge(100, 0, 3, 1000, 0, 1, why), SX_RED_HEALTHY); /* 3x but only 2 ms more */
    assert_int_equal(judge(100, 0, 300, 0, 0, NAN, why), SX_RED_HEALTHY);
    assert_string_equal(why, "no baseline yet; error rate 0.0% (no baseline yet)");
    assert_int_equal(judge(100, 20, 300, 3, 0, 10, why), SX_RED_FAILING);
    assert_string_equal(why, "error rate 20.0% (no baseline yet)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_quantile_clamped),
        cmocka_unit_test(test_health),
    };
    return cmocka_run_group_tests_name("red", tests, NULL, NULL);
}
