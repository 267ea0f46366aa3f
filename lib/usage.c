/* usage.c: key names of the per-project usage counters; see usage.h. */
#include "usage.h"

#include "redis.h"

#include <stdio.h>
#include <time.h>

void sx_usage_day(char *out, size_t outlen, int64_t unix_s)
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04u%02u%02u", (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u);
}

char *sx_usage_key(char *out, size_t outlen, const struct sx_config *c, long long project_id, int64_t unix_s)
{
    char day[16], suffix[32];
    sx_usage_day(day, sizeof(day), unix_s);
    snprintf(suffix, sizeof(suffix), SX_USAGE_SUFFIX ":%s", day);
    return sx_redis_pkey(out, outlen, c, project_id, suffix);
}
