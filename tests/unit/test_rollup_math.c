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

static uint64_t exp_total(const struct sx_rollup_exp *e)
{
    uint64_t t = e->zero;
    for (size_t i = 0; i < e->pos.n; i++) t += e->pos.counts[i];
    for (size_t i = 0; i < e->neg.n; i++) t += e->neg.counts[i];
    return t;
}

static void test_state_text_v2(void **state)
{
    (void)state;
    struct sx_rollup_cum c, back;
    char buf[SX_ROLLUP_CUM_TEXT_MAX];
    /* Older states parse, with an unknown time. */
    assert_int_equal(sx_rollup_cum_parse("n 5 10", 6, &back), SX_OK);
    assert_true(back.value == 10 && back.time_ns == 0 && back.start_ns == 5);
    memset(&c, 0, sizeof(c));
    sx_rollup_sum_delta(&c, 5, 10, 1, NULL);
    c.time_ns = 77;
    size_t n = sx_rollup_cum_format(&c, buf, sizeof(buf));
    assert_string_equal(buf, "N 5 77 10");
    assert_int_equal(sx_rollup_cum_parse(buf, n, &back), SX_OK);
    assert_memory_equal(&c, &back, sizeof(c));
    /* The largest explicit and exponential states fit in SX_ROLLUP_CUM_TEXT_MAX. */
    uint64_t big[SX_ROLLUP_MAX_BUCKETS], d[SX_ROLLUP_MAX_BUCKETS], dc;
    double ds;
    for (size_t i = 0; i < SX_ROLLUP_MAX_BUCKETS; i++) big[i] = UINT64_MAX - i;
    memset(&c, 0, sizeof(c));
    sx_rollup_hist_delta(&c, UINT64_MAX, UINT64_MAX, -1.2345678901234567e-300, big, SX_ROLLUP_MAX_BUCKETS, &dc, &ds, d, NULL);
    c.time_ns = UINT64_MAX;
    n = sx_rollup_cum_format(&c, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(sx_rollup_cum_parse(buf, n, &back), SX_OK);
    assert_memory_equal(&c, &back, sizeof(c));
    uint64_t pos[SX_ROLLUP_EXP_MAX], neg[SX_ROLLUP_EXP_MAX];
    for (size_t i = 0; i < SX_ROLLUP_EXP_MAX; i++) pos[i] = neg[i] = UINT64_MAX - i;
    struct sx_rollup_exp e, de;
    assert_int_equal(sx_rollup_exp_set(&e, -3, UINT64_MAX, INT32_MIN / 2, pos, SX_ROLLUP_EXP_MAX, 7, neg,
                                       SX_ROLLUP_EXP_MAX), SX_OK);
    memset(&c, 0, sizeof(c));
    sx_rollup_exp_delta(&c, UINT64_MAX, UINT64_MAX, -1.2345678901234567e-300, &e, &dc, &ds, &de, NULL);
    c.time_ns = UINT64_MAX;
    n = sx_rollup_cum_format(&c, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(sx_rollup_cum_parse(buf, n, &back), SX_OK);
    assert_memory_equal(&c, &back, sizeof(c));
    const char *bad[] = {"N 1 2", "E 1 2 3 4 99 0 0 0 0 0", "E 1 2 3 4 0 0 0 161", "E 1 2 3 4 0 0 0 1 5 0",
                         "H 1 2 3 4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sx_rollup_cum_parse(bad[i], strlen(bad[i]), &back), SX_ERR);
}

static void test_stale(void **state)
{
    (void)state;
    struct sx_rollup_cum c;
    memset(&c, 0, sizeof(c));
    assert_false(sx_rollup_cum_stale(&c, 1, 10)); /* nothing known */
    sx_rollup_sum_delta(&c, 1, 10, 1, NULL);
    assert_false(sx_rollup_cum_stale(&c, 1, 10)); /* time unknown (older state) */
    c.time_ns = 10;
    assert_true(sx_rollup_cum_stale(&c, 1, 10));  /* the same point again */
    assert_true(sx_rollup_cum_stale(&c, 1, 9));   /* an older point of the same lifetime */
    assert_true(sx_rollup_cum_stale(&c, 0, 9));   /* of an older lifetime */
    assert_false(sx_rollup_cum_stale(&c, 1, 11)); /* newer */
    assert_false(sx_rollup_cum_stale(&c, 2, 9));  /* a newer lifetime: a reset */
}

static void test_exp_set_caps_by_downscaling(void **state)
{
    (void)state;
    struct sx_rollup_exp e;
    uint64_t pos[1000], neg[3] = {0, 4, 0};
    for (size_t i = 0; i < 1000; i++) pos[i] = 1;
    pos[0] = pos[1] = 0; /* leading empties are dropped */
    assert_int_equal(sx_rollup_exp_set(&e, 8, 3, -5, pos, 1000, 10, neg, 3), SX_OK);
    assert_true(e.pos.n <= SX_ROLLUP_EXP_MAX);
    assert_int_equal(e.scale, 5);                 /* 998 buckets need 3 halvings */
    assert_int_equal(exp_total(&e), 998 + 4 + 3); /* nothing dropped */
    assert_int_equal(e.neg.n, 1);
    assert_int_equal(e.neg.offset, 11 >> 3);
    assert_int_equal(e.pos.offset, -1);           /* floor(-3 / 8) */
    /* A point that fits keeps its scale and layout. */
    uint64_t small[4] = {1, 2, 3, 4};
    assert_int_equal(sx_rollup_exp_set(&e, 3, 0, 7, small, 4, 0, NULL, 0), SX_OK);
    assert_int_equal(e.scale, 3);
    assert_int_equal(e.pos.offset, 7);
    assert_int_equal(e.pos.counts[3], 4);
    assert_int_equal(sx_rollup_exp_set(&e, 21, 0, 0, small, 4, 0, NULL, 0), SX_ERR);
}

static void test_exp_merge_different_scales(void **state)
{
    (void)state;
    struct sx_rollup_exp a, b;
    uint64_t ca[2] = {1, 1}, cb[1] = {5};
    assert_int_equal(sx_rollup_exp_set(&a, 2, 1, 4, ca, 2, 0, NULL, 0), SX_OK); /* buckets 4, 5 at scale 2 */
    assert_int_equal(sx_rollup_exp_set(&b, 1, 2, 3, cb, 1, 0, NULL, 0), SX_OK); /* bucket 3 at scale 1 */
    struct sx_rollup_exp m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(sx_rollup_exp_merge(&m, &a), SX_OK);
    assert_int_equal(sx_rollup_exp_merge(&m, &b), SX_OK);
    assert_int_equal(m.scale, 1);
    assert_int_equal(m.zero, 3);
    assert_int_equal(m.pos.offset, 2); /* 4 >> 1, 5 >> 1 = 2 */
    assert_int_equal(m.pos.counts[0], 2);
    assert_int_equal(m.pos.counts[1], 5);
    /* Far apart ranges: the merge downscales until the union fits. */
    uint64_t one[1] = {1};
    assert_int_equal(sx_rollup_exp_set(&a, 0, 0, -1000, one, 1, 0, NULL, 0), SX_OK);
    assert_int_equal(sx_rollup_exp_set(&b, 0, 0, 1000, one, 1, 0, NULL, 0), SX_OK);
    assert_int_equal(sx_rollup_exp_merge(&a, &b), SX_OK);
    assert_true(a.pos.n <= SX_ROLLUP_EXP_MAX);
    assert_int_equal(exp_total(&a), 2);
    assert_true(a.scale <= -4);
}

static void test_exp_delta(void **state)
{
    (void)state;
    struct sx_rollup_cum c;
    struct sx_rollup_exp p1, p2, p3, d;
    uint64_t c1[2] = {1, 2}, c2[3] = {1, 4, 3}, c3[1] = {1}, dc;
    double ds;
    int reset;
    memset(&c, 0, sizeof(c));
    sx_rollup_exp_set(&p1, 3, 1, 10, c1, 2, 0, NULL, 0);
    sx_rollup_exp_delta(&c, 7, 4, 40, &p1, &dc, &ds, &d, &reset);
    assert_int_equal(reset, 1);
    assert_int_equal(dc, 4);
    sx_rollup_exp_set(&p2, 3, 2, 10, c2, 3, 0, NULL, 0);
    sx_rollup_exp_delta(&c, 7, 10, 100, &p2, &dc, &ds, &d, &reset);
    assert_int_equal(reset, 0);
    assert_int_equal(dc, 6);
    assert_true(ds == 60);
    assert_int_equal(d.zero, 1);
    assert_int_equal(d.pos.counts[0], 0);
    assert_int_equal(d.pos.counts[1], 2);
    assert_int_equal(d.pos.counts[2], 3);
    assert_int_equal(exp_total(&d), dc);
    /* The SDK downscaled the cumulative histogram: the previous state follows. */
    struct sx_rollup_exp p2s = p2;
    sx_rollup_exp_downscale(&p2s, 1);
    p2s.pos.counts[0] += 5; /* five more in bucket 5 (= 10 >> 1) */
    sx_rollup_exp_delta(&c, 7, 15, 150, &p2s, &dc, &ds, &d, &reset);
    assert_int_equal(reset, 0);
    assert_int_equal(dc, 5);
    assert_int_equal(d.scale, 2);
    assert_int_equal(exp_total(&d), 5);
    /* A bucket went down: a reset. */
    sx_rollup_exp_set(&p3, 2, 2, 5, c3, 1, 0, NULL, 0);
    sx_rollup_exp_delta(&c, 7, 16, 150, &p3, &dc, &ds, &d, &reset);
    assert_int_equal(reset, 1);
    assert_int_equal(dc, 16);
    /* The scale went up: a reset too. */
    sx_rollup_exp_set(&p3, 4, 2, 5, c3, 1, 0, NULL, 0);
    sx_rollup_exp_delta(&c, 7, 20, 150, &p3, &dc, &ds, &d, &reset);
    assert_int_equal(reset, 1);
}

static void test_exp_quantile(void **state)
{
    (void)state;
    struct sx_rollup_exp e;
    /* scale 0: bucket k holds (2^k, 2^(k+1)]. 10 in (4, 8], 10 in (8, 16]. */
    uint64_t pos[2] = {10, 10}, neg[1] = {5};
    sx_rollup_exp_set(&e, 0, 0, 2, pos, 2, 0, NULL, 0);
    double p25 = sx_rollup_exp_quantile(&e, 0.25), p75 = sx_rollup_exp_quantile(&e, 0.75);
    assert_true(p25 > 4 && p25 <= 8);
    assert_true(p75 > 8 && p75 <= 16);
    assert_true(fabs(sx_rollup_exp_quantile(&e, 0.5) - 8) < 1e-9);
    /* Negative values come first, then the zero bucket. 5 in [-2, -1), 5 zeros, 20 positive. */
    sx_rollup_exp_set(&e, 0, 5, 2, pos, 2, 0, neg, 1);
    double p10 = sx_rollup_exp_quantile(&e, 0.1);
    assert_true(p10 >= -2 && p10 < -1);
    assert_true(sx_rollup_exp_quantile(&e, 0.3) == 0);
    assert_true(sx_rollup_exp_quantile(&e, 0.99) > 8);
    /* scale 2: base 2^(1/4); bucket 4 is (2, 2^(5/4)]. */
    uint64_t one[1] = {3};
    sx_rollup_exp_set(&e, 2, 0, 4, one, 1, 0, NULL, 0);
    double v = sx_rollup_exp_quantile(&e, 0.5);
    assert_true(v > 2 && v <= pow(2, 1.25));
    memset(&e, 0, sizeof(e));
    assert_true(isnan(sx_rollup_exp_quantile(&e, 0.5)));
}

static void test_summary_quantile(void **state)
{
    (void)state;
    double qs[3] = {0.5, 0.9, 0.99}, vs[3] = {10, 50, 90};
    assert_true(sx_rollup_summary_quantile(qs, vs, 3, 0.5) == 10);
    assert_true(sx_rollup_summary_quantile(qs, vs, 3, 0.99) == 90);
    assert_true(fabs(sx_rollup_summary_quantile(qs, vs, 3, 0.7) - 30) < 1e-9);
    assert_true(sx_rollup_summary_quantile(qs, vs, 3, 0.1) == 10);  /* below: the first */
    assert_true(sx_rollup_summary_quantile(qs, vs, 3, 0.999) == 90); /* above: the last */
    assert_true(isnan(sx_rollup_summary_quantile(qs, vs, 0, 0.5)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_deltas_total_last_value),
        cmocka_unit_test(test_sum_resets),
        cmocka_unit_test(test_hist_deltas),
        cmocka_unit_test(test_state_text),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_state_text_v2),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_exp_set_caps_by_downscaling),
        cmocka_unit_test(test_exp_merge_different_scales),
        cmocka_unit_test(test_exp_delta),
        cmocka_unit_test(test_exp_quantile),
        cmocka_unit_test(test_summary_quantile),
    };
    return cmocka_run_group_tests_name("rollup_math", tests, NULL, NULL);
}
