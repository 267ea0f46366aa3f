/* test_rollup_math.c: cumulative-to-delta conversion, resets, state text and quantiles of sextant-rollup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "rollup_math.h"

static void test_sum_deltas_total_last_value(void **state)
{
    (void)state;
    struct sx_rollup_cum c;
    int reset;
    memset(&c, 0, sizeof(c));
    double total = 0;
    total += sx_rollup_sum_delta(&c, 100, 5, 1, &reset);
    assert_int_equal(reset, 1); /* first point: its whole value */
    total += sx_rollup_sum_delta(&c, 100, 5, 1, &reset);
    assert_int_equal(reset, 0);
    total += sx_rollup_sum_delta(&c, 100, 12, 1, &reset);
    assert_int_equal(reset, 0);
    assert_true(total == 12); /* the last cumulative value, not 22 */
}

static void test_sum_resets(void **state)
{
    (void)state;
    struct sx_rollup_cum c;
    int reset;
    memset(&c, 0, sizeof(c));
    sx_rollup_sum_delta(&c, 100, 10, 1, NULL);
    assert_true(sx_rollup_sum_delta(&c, 100, 3, 1, &reset) == 3); /* went down: restart */
    assert_int_equal(reset, 1);
    assert_true(sx_rollup_sum_delta(&c, 200, 7, 1, &reset) == 7); /* new start time */
    assert_int_equal(reset, 1);
    /* Non-monotonic sums may go down: a negative delta. */
    memset(&c, 0, sizeof(c));
    sx_rollup_sum_delta(&c, 100, 7, 0, NULL);
    assert_true(sx_rollup_sum_delta(&c, 100, 4, 0, &reset) == -3);
    assert_int_equal(reset, 0);
}

static void test_hist_deltas(void **state)
{
    (void)state;
    struct sx_rollup_cum c;
    uint64_t b1[3] = {1, 2, 0}, b2[3] = {1, 5, 1}, b3[3] = {0, 1, 0}, d[3], dc;
    double ds;
    int reset;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sx_rollup_hist_delta(&c, 9, 3, 30, b1, 3, &dc, &ds, d, &reset), SX_OK);
    assert_int_equal(reset, 1);
    assert_int_equal(dc, 3);
    assert_int_equal(sx_rollup_hist_delta(&c, 9, 7, 75, b2, 3, &dc, &ds, d, &reset), SX_OK);
    assert_int_equal(reset, 0);
    assert_int_equal(dc, 4);
    assert_true(ds == 45);
    assert_int_equal(d[0], 0);
    assert_int_equal(d[1], 3);
    assert_int_equal(d[2], 1);
    assert_int_equal(sx_rollup_hist_delta(&c, 9, 1, 2, b3, 3, &dc, &ds, d, &reset), SX_OK);
    assert_int_equal(reset, 1); /* count went down */
    assert_int_equal(dc, 1);
    assert_int_equal(d[1], 1);
    uint64_t big[SX_ROLLUP_MAX_BUCKETS + 1] = {0}, dbig[SX_ROLLUP_MAX_BUCKETS + 1];
    assert_int_equal(sx_rollup_hist_delta(&c, 9, 1, 2, big, SX_ROLLUP_MAX_BUCKETS + 1, &dc, &ds, dbig, NULL), SX_ERR);
}

static void test_state_text(void **state)
{
    (void)state;
    struct sx_rollup_cum c, back;
    char buf[1024];
    memset(&c, 0, sizeof(c));
    sx_rollup_sum_delta(&c, 1700000000000000000ULL, 0.1 + 0.2, 0, NULL);
    size_t n = sx_rollup_cum_format(&c, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(sx_rollup_cum_parse(buf, n, &back), SX_OK);
    assert_memory_equal(&c, &back, sizeof(c));
    uint64_t b[4] = {0, 5, 2, 18446744073709551615ULL}, d[4], dc;
    double ds;
    memset(&c, 0, sizeof(c));
    sx_rollup_hist_delta(&c, 42, 7, 700.5, b, 4, &dc, &ds, d, NULL);
    n = sx_rollup_cum_format(&c, buf, sizeof(buf));
    assert_int_equal(sx_rollup_cum_parse(buf, n, &back), SX_OK);
    assert_memory_equal(&c, &back, sizeof(c));
    assert_int_equal(sx_rollup_cum_format(&c, buf, 10), 0);
    const char *bad[] = {"", "x 1 2", "n 1", "n 1 2 3", "n -1 2", "h 1 2 3 2 1", "h 1 2 3 99 1", "n 1 nan"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sx_rollup_cum_parse(bad[i], strlen(bad[i]), &back), SX_ERR);
        assert_int_equal(back.have, 0);
    }
}

static void test_quantile(void **state)
{
    (void)state;
    double bounds[8] = {5, 10, 25, 50, 100, 250, 500, 1000};
    double counts[9] = {0, 0, 0, 0, 0, 5, 0, 0, 0};
    double p50 = sx_rollup_quantile(bounds, 8, counts, 0.5);
    assert_true(p50 > 100 && p50 <= 250);
    assert_true(fabs(p50 - 175) < 1e-9);
    double counts2[9] = {0, 0, 2, 0, 1, 5, 0, 0, 0};
    assert_true(sx_rollup_quantile(bounds, 8, counts2, 0.1) > 10);
    assert_true(sx_rollup_quantile(bounds, 8, counts2, 0.1) <= 25);
    assert_true(sx_rollup_quantile(bounds, 8, counts2, 0.99) > 100);
    assert_true(sx_rollup_quantile(bounds, 8, counts2, 0.99) <= 250);
    double over[9] = {0, 0, 0, 0, 0, 0, 0, 0, 3};
    assert_true(sx_rollup_quantile(bounds, 8, over, 0.5) == 1000);
    double first[9] = {4, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_true(fabs(sx_rollup_quantile(bounds, 8, first, 0.5) - 2.5) < 1e-9);
    double none[9] = {0};
    assert_true(isnan(sx_rollup_quantile(bounds, 8, none, 0.5)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_deltas_total_last_value),
        cmocka_unit_test(test_sum_resets),
        cmocka_unit_test(test_hist_deltas),
        cmocka_unit_test(test_state_text),
        cmocka_unit_test(test_quantile),
    };
    return cmocka_run_group_tests_name("rollup_math", tests, NULL, NULL);
}
