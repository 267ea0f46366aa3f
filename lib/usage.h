/* usage.h: the Redis keys of per-project ingest enforcement: usage counters, rate buckets,
 * cached settings and the storage estimate. sextant-ingest writes them,
 * sextantctl (status, usage, maintain, project set) and the JSON API read
 * or clear them. Every key carries the project hash tag {p<id>} (redis.h).
 *
 * Usage counters, one hash per project and UTC day:
 *   "<prefix>:{p<id>}:usage:<YYYYMMDD>"   expires usage_days (default 40) days
 *                                         after its last write
 * fields "<signal>.<counter>", signal spans | logs | metrics, counter:
 *   accepted        items stored (XADD done): spans, log records, data points
 *   rate_limited    items of requests refused with 429 by the rate limit
 *                   (counted per attempt: an SDK that retries counts again)
 *   quota_exceeded  items of requests refused with 429 by the daily quota
 *   storage_exceeded items of requests refused with 429 by the storage quota
 *   sampled_out     spans dropped by trace sampling (accepted requests)
 *   dropped         items dropped as invalid by validation (partial_success)
 *   redacted        values with something redacted (secrets or rules)
 * Values are decimal integers (HINCRBY); a missing field is 0. The daily
 * quota compares "<signal>.accepted" of today's hash with quota_*_daily.
 *
 * Rate buckets: "<prefix>:{p<id>}:bucket:<signal>", a hash {t: tokens
 * (float), ts: last update, unix ms from Redis TIME}; capacity rate x
 * rate_burst_seconds; expires after 60 s idle (a missing bucket is full).
 *
 * Settings cache: "<prefix>:{p<id>}:settings", the text value written by
 * sextant-ingest from the projects row (ingest_settings.c), EX
 * settings_redis_ttl; sextantctl project set deletes it.
 *
 * Storage estimate: "<prefix>:{p<id>}:storage_bytes", decimal bytes written
 * by sextantctl maintain; ingest refuses new data with 429 while it is at or
 * over storage_quota_bytes. */
#ifndef SX_USAGE_H
#define SX_USAGE_H

#include "config.h"

#include <stdint.h>

#define SX_USAGE_SUFFIX "usage"
#define SX_BUCKET_SUFFIX "bucket"
#define SX_SETTINGS_SUFFIX "settings"
#define SX_STORAGE_SUFFIX "storage_bytes"

/* Counter names in the order sextantctl prints them. */
#define SX_USAGE_COUNTERS \
    "accepted", "rate_limited", "quota_exceeded", "storage_exceeded", "sampled_out", "dropped", "redacted"

/* Writes the usage hash key of project for the UTC day holding unix_s. */
char *sx_usage_key(char *out, size_t outlen, const struct sx_config *c, long long project_id, int64_t unix_s);

/* Writes "YYYYMMDD" (UTC) of unix_s into out (at least 9 bytes). */
void sx_usage_day(char *out, size_t outlen, int64_t unix_s);

#endif
