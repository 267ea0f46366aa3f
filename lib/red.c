/* red.c: RED duration buckets, percentiles and the endpoint health judgement. */
#include "red.h"

#include "rollup_math.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const double sx_red_bounds[SX_RED_NBOUNDS] = {0.5, 1,   2.5, 5,    7.5,  10,   15,   25,   35,   50,
                                              75,  100, 150, 200,  250,  350,  500,  750,  1000, 1500,
                                              2500, 3500, 5000, 7500, 10000, 15000, 30000, 60000};

size_t sx_red_bucket(double ms)
{
    size_t lo = 0, hi = SX_RED_NBOUNDS; /* the first bound >= ms */
    if (!(ms >= 0)) return 0;           /* NAN, negative */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sx_red_bounds[mid] < ms) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

double sx_red_quantile(const double *counts, double q, double min_ms, double max_ms)
{
    double v = sx_rollup_quantile(sx_red_bounds, SX_RED_NBOUNDS, counts, q);
    if (isnan(v) || !isfinite(min_ms) || !isfinite(max_ms) || min_ms > max_ms) return v;
    return v < min_ms ? min_ms : v > max_ms ? max_ms : v;
}

const char *sx_red_health_name(enum sx_red_health h)
{
    return h == SX_RED_FAILING ? "failing" : h == SX_RED_DEGRADED ? "degraded" : "healthy";
}

static double rate(const struct sx_red_period *p)
{
    return p->requests > 0 ? (double)p->errors / (double)p->requests : 0;
}

enum sx_red_health sx_red_judge(const struct sx_red_period *recent, const struct sx_red_period *base, char *reason,
                                size_t reasonlen)
{
    double r = rate(recent), b = rate(base);
    int have_base = base->requests >= SX_RED_MIN_BASELINE;
    enum sx_red_health err_h = SX_RED_HEALTHY, lat_h = SX_RED_HEALTHY;
    char err_s[96], lat_s[96];

    if (recent->requests < SX_RED_MIN_REQUESTS) {
        snprintf(reason, reasonlen, "%lld requests in the window, %d needed to judge", recent->requests,
                 SX_RED_MIN_REQUESTS);
        return SX_RED_HEALTHY;
    }
    if (r >= 0.10 || (have_base && r >= 0.05 && r >= 5 * b)) err_h = SX_RED_FAILING;
    else if (r >= 0.01 && (!have_base || r >= 2 * b)) err_h = SX_RED_DEGRADED;
    if (have_base)
        snprintf(err_s, sizeof(err_s), "error rate %.1f%% (baseline %.1f%%)", 100 * r, 100 * b);
    else
        snprintf(err_s, sizeof(err_s), "error rate %.1f%% (no baseline yet)", 100 * r);

    lat_s[0] = '\0';
    if (have_base && isfinite(recent->p95_ms) && isfinite(base->p95_ms) && base->p95_ms > 0) {
        double x = recent->p95_ms / base->p95_ms, d = recent->p95_ms - base->p95_ms;
        if (x >= 5 && d >= 100) lat_h = SX_RED_FAILING;
        else if (x >= 2 && d >= 10) lat_h = SX_RED_DEGRADED;
        if (lat_h != SX_RED_HEALTHY)
            snprintf(lat_s, sizeof(lat_s), "p95 %.0f ms is %.1fx baseline %.0f ms", recent->p95_ms, x, base->p95_ms);
        else
            snprintf(lat_s, sizeof(lat_s), "p95 %.0f ms (baseline %.0f ms)", recent->p95_ms, base->p95_ms);
    }
    enum sx_red_health h = err_h > lat_h ? err_h : lat_h;
    if (!have_base && h == SX_RED_HEALTHY)
        snprintf(reason, reasonlen, "no baseline yet; %s", err_s);
    else if (lat_h > err_h)
        snprintf(reason, reasonlen, "%s; %s", lat_s, err_s);
    else if (lat_s[0])
        snprintf(reason, reasonlen, "%s; %s", err_s, lat_s);
    else
        snprintf(reason, reasonlen, "%s", err_s);
    return h;
}
