/* rollup_math.h: pure arithmetic of sextant-rollup: cumulative points to
 * deltas (with reset detection), the text form of the cumulative state kept
 * in Redis, and histogram quantiles. No I/O, no allocation. */
#ifndef SX_ROLLUP_MATH_H
#define SX_ROLLUP_MATH_H

#include "sx.h"

#include <stddef.h>
#include <stdint.h>

/* Histogram buckets a series may have (explicit bounds + 1); points with
 * more are not rolled up. */
#define SX_ROLLUP_MAX_BUCKETS 64

/* The last cumulative point of one series. have is 0 when none is known. */
struct sx_rollup_cum {
    int have;
    int hist;            /* a histogram state (count, sum, buckets) rather than a number */
    uint64_t start_ns;   /* the point's start_time_unix_nano */
    double value;        /* sums: the cumulative value */
    uint64_t count;      /* histograms: cumulative count */
    double sum;          /* histograms: cumulative sum */
    size_t nb;           /* histograms: buckets */
    uint64_t buckets[SX_ROLLUP_MAX_BUCKETS];
};

/* The delta of a cumulative sum point (start_ns, value) against prev, and
 * moves prev to the point. The point is a reset, and its delta its whole
 * value, when no previous point is known, when start_ns differs from the
 * previous one, or (monotonic sums only) when the value went down; *reset
 * (may be NULL) tells which. */
double sx_rollup_sum_delta(struct sx_rollup_cum *prev, uint64_t start_ns, double value, int monotonic, int *reset);

/* The delta of a cumulative histogram point against prev into *dcount,
 * *dsum and dbuckets (nb of them), and moves prev to the point. A reset
 * (delta = the point itself) when nothing is known, start_ns changed, the
 * bucket layout changed, or the count or any bucket went down. SX_ERR when
 * nb > SX_ROLLUP_MAX_BUCKETS (prev unchanged). */
int sx_rollup_hist_delta(struct sx_rollup_cum *prev, uint64_t start_ns, uint64_t count, double sum,
                         const uint64_t *buckets, size_t nb, uint64_t *dcount, double *dsum, uint64_t *dbuckets,
                         int *reset);

/* Writes the state as text into out ("n <start> <value>" or
 * "h <start> <count> <sum> <nb> <b0> ..."); doubles round-trip exactly.
 * Returns the length, or 0 when it does not fit. */
size_t sx_rollup_cum_format(const struct sx_rollup_cum *c, char *out, size_t outlen);

/* Parses what sx_rollup_cum_format wrote (len bytes, not NUL-terminated).
 * SX_OK, or SX_ERR for anything else (*c is then cleared: no state). */
int sx_rollup_cum_parse(const char *s, size_t len, struct sx_rollup_cum *c);

/* The q-quantile (0 < q < 1) of a histogram with nb = nbounds + 1 buckets,
 * by linear interpolation inside the bucket holding the rank: the first
 * bucket is taken to start at min(0, bounds[0]), the overflow bucket
 * answers its lower bound. NAN when the total count is 0. */
double sx_rollup_quantile(const double *bounds, size_t nbounds, const double *counts, double q);

#endif
