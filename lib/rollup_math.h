/* rollup_math.h: pure arithmetic of sextant-rollup: cumulative points to
 * deltas (with reset detection), the text form of the cumulative state kept
 * in Redis, exponential histogram scaling and merging, and quantiles of
 * explicit and exponential histograms and of summaries. No I/O, no
 * allocation. */
#ifndef SX_ROLLUP_MATH_H
#define SX_ROLLUP_MATH_H

#include "sx.h"

#include <stddef.h>
#include <stdint.h>

/* Histogram buckets a series may have (explicit bounds + 1); points with
 * more are not rolled up. */
#define SX_ROLLUP_MAX_BUCKETS 64

/* Buckets an exponential histogram keeps on each side (positive and
 * negative), as the OpenTelemetry SDKs' default max_size. A point or a merge
 * that would need more is downscaled (scale - 1 halves the number of
 * buckets a range needs) until it fits, never dropped. */
#define SX_ROLLUP_EXP_MAX 160

/* Smallest scale the OTLP data model allows. */
#define SX_ROLLUP_EXP_MIN_SCALE (-10)

/* Longest text of a cumulative state (sx_rollup_cum_format). */
#define SX_ROLLUP_CUM_TEXT_MAX 8192

/* One side of an exponential histogram: counts[i] is bucket offset + i,
 * which holds (base^(offset+i), base^(offset+i+1)] with base = 2^(2^-scale). */
struct sx_rollup_exp_side {
    int32_t offset;
    size_t n;
    uint64_t counts[SX_ROLLUP_EXP_MAX];
};

/* An exponential histogram's buckets (no count/sum: those travel apart).
 * have is 0 for none. */
struct sx_rollup_exp {
    int have;
    int32_t scale;
    uint64_t zero;
    struct sx_rollup_exp_side pos, neg;
};

/* The last cumulative point of one series. have is 0 when none is known. */
struct sx_rollup_cum {
    int have;
    int hist;            /* a histogram or summary state (count, sum, buckets) rather than a number */
    int exp;             /* hist: exponential buckets in e rather than explicit ones */
    uint64_t start_ns;   /* the point's start_time_unix_nano */
    uint64_t time_ns;    /* the point's time_unix_nano; 0 when unknown (states of older versions) */
    double value;        /* sums: the cumulative value */
    uint64_t count;      /* histograms: cumulative count */
    double sum;          /* histograms: cumulative sum */
    size_t nb;           /* histograms: buckets */
    uint64_t buckets[SX_ROLLUP_MAX_BUCKETS];
    struct sx_rollup_exp e; /* exp */
};

/* Whether a cumulative point (start_ns, time_ns) is older than the state
 * prev and must be skipped: it is not after the state's point (time_ns <=
 * prev->time_ns) and not of a newer lifetime (start_ns <= prev->start_ns).
 * Such points arrive out of order (two rollup instances, a late batch);
 * their counts are inside the newer cumulative value already, so counting
 * them, or taking them for a reset, would count twice. */
int sx_rollup_cum_stale(const struct sx_rollup_cum *prev, uint64_t start_ns, uint64_t time_ns);

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

/* Writes the state as text into out: "N <start> <time> <value>",
 * "H <start> <time> <count> <sum> <nb> <b0> ..." or "E <start> <time>
 * <count> <sum> <scale> <zero> <pos offset> <npos> <p0> ... <neg offset>
 * <nneg> <n0> ..."; doubles round-trip exactly. The parser also reads the
 * older "n <start> <value>" and "h <start> <count> <sum> <nb> ..." (time 0).
 * Returns the length, or 0 when it does not fit (SX_ROLLUP_CUM_TEXT_MAX
 * always fits). */
size_t sx_rollup_cum_format(const struct sx_rollup_cum *c, char *out, size_t outlen);

/* Parses what sx_rollup_cum_format wrote (len bytes, not NUL-terminated).
 * SX_OK, or SX_ERR for anything else (*c is then cleared: no state). */
int sx_rollup_cum_parse(const char *s, size_t len, struct sx_rollup_cum *c);

/* The q-quantile (0 < q < 1) of a histogram with nb = nbounds + 1 buckets,
 * by linear interpolation inside the bucket holding the rank: the first
 * bucket is taken to start at min(0, bounds[0]), the overflow bucket
 * answers its lower bound. NAN when the total count is 0. */
double sx_rollup_quantile(const double *bounds, size_t nbounds, const double *counts, double q);

/* The delta of a cumulative exponential histogram point (count, sum, the
 * buckets in *cur, already capped by sx_rollup_exp_set) against prev into
 * *dcount, *dsum and *d, and moves prev to the point. The previous buckets
 * are downscaled to the point's scale when it is smaller (SDKs downscale a
 * cumulative histogram as its range grows). A reset (delta = the point)
 * when nothing is known, start_ns changed, the scale went up, or the count,
 * the zero count or any bucket went down. *reset may be NULL. */
void sx_rollup_exp_delta(struct sx_rollup_cum *prev, uint64_t start_ns, uint64_t count, double sum,
                         const struct sx_rollup_exp *cur, uint64_t *dcount, double *dsum, struct sx_rollup_exp *d,
                         int *reset);

/* Loads one point's buckets into e: leading and trailing empty buckets are
 * dropped, then the point is downscaled until each side fits in
 * SX_ROLLUP_EXP_MAX buckets. SX_ERR when the scale is outside [-10, 20] or
 * it cannot fit (e is then cleared). */
int sx_rollup_exp_set(struct sx_rollup_exp *e, int32_t scale, uint64_t zero, int32_t pos_offset, const uint64_t *pos,
                      size_t npos, int32_t neg_offset, const uint64_t *neg, size_t nneg);

/* Lowers e's scale by `by` steps (each merges pairs of buckets). */
void sx_rollup_exp_downscale(struct sx_rollup_exp *e, int by);

/* Adds src into dst (dst may be empty): both go to the smaller scale, and
 * lower still while the merged range of a side would exceed
 * SX_ROLLUP_EXP_MAX. SX_ERR when it cannot fit (dst unchanged). */
int sx_rollup_exp_merge(struct sx_rollup_exp *dst, const struct sx_rollup_exp *src);

/* The q-quantile (0 < q < 1) of exponential buckets: negative buckets
 * (most negative first), the zero bucket (answers 0), positive buckets;
 * linear inside the bucket holding the rank. NAN when empty. */
double sx_rollup_exp_quantile(const struct sx_rollup_exp *e, double q);

/* The q-quantile of a summary point's n (quantile, value) pairs, qs
 * ascending: linear interpolation between the two reported quantiles
 * around q; below the first or above the last, that one's value. NAN when
 * n is 0. */
double sx_rollup_summary_quantile(const double *qs, const double *vs, size_t n, double q);

#endif
