/* red.h: what the span rollup (workers/rollup_red.c) and the API (fcgi/api_perf.c) share about
 * RED figures: the fixed duration buckets, percentiles from them, and the endpoint health judgement.
 * No I/O, no allocation. */
#ifndef SX_RED_H
#define SX_RED_H

#include "sx.h"

#include <stddef.h>

/* Upper bounds (ms, inclusive) of the duration buckets of red_1m, edges_1m
 * and db_statements_1m (sql/007_red.sql); one more bucket takes the rest. */
#define SX_RED_NBOUNDS 28
#define SX_RED_NBUCKETS (SX_RED_NBOUNDS + 1)
extern const double sx_red_bounds[SX_RED_NBOUNDS];

/* The bucket index (0 .. SX_RED_NBUCKETS - 1) of a duration in ms. */
size_t sx_red_bucket(double ms);

/* The q-quantile (0 < q < 1) of SX_RED_NBUCKETS counts, by linear
 * interpolation inside the bucket (lib/rollup_math.h); NAN when empty. When
 * min_ms <= max_ms are finite the answer is kept inside them. */
double sx_red_quantile(const double *counts, double q, double min_ms, double max_ms);

/* Health thresholds of an endpoint (GET .../health), in one place:
 *   too few requests in the window (< SX_RED_MIN_REQUESTS): healthy;
 *   a baseline needs SX_RED_MIN_BASELINE requests, else "no baseline yet"
 *   and only the absolute error-rate limits apply;
 *   failing:  error rate >= 10%, or >= 5% and >= 5x the baseline rate, or
 *             p95 >= 5x the baseline p95 and at least 100 ms above it;
 *   degraded: error rate >= 1% and >= 2x the baseline rate (>= 1% with no
 *             baseline), or p95 >= 2x the baseline p95 and at least 10 ms
 *             above it. */
#define SX_RED_MIN_REQUESTS 10
#define SX_RED_MIN_BASELINE 20

enum sx_red_health { SX_RED_HEALTHY, SX_RED_DEGRADED, SX_RED_FAILING };

/* The figures of one endpoint in one period. p95_ms is NAN when unknown. */
struct sx_red_period {
    long long requests, errors;
    double p95_ms;
};

/* Judges the recent window against the baseline and writes a human-readable
 * reason ("error rate 12.0% (baseline 0.4%)", "p95 840 ms is 4.2x baseline
 * 200 ms", "no baseline yet") into reason (always NUL-terminated). */
enum sx_red_health sx_red_judge(const struct sx_red_period *recent, const struct sx_red_period *base, char *reason,
                                size_t reasonlen);

/* "healthy", "degraded" or "failing". */
const char *sx_red_health_name(enum sx_red_health h);

#endif
