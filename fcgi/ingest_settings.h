/* ingest_settings.h: a project's ingest settings (projects row, sql/013), cached per thread and in Redis. */
#ifndef SX_INGEST_SETTINGS_H
#define SX_INGEST_SETTINGS_H

#include "config.h"
#include "scrub.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

enum { SX_SIG_SPANS, SX_SIG_LOGS, SX_SIG_METRICS, SX_SIG_N };

struct sx_ingest_settings {
    long long project_id;
    long long version;        /* projects.settings_version */
    int suspended;
    double sampling_rate;     /* 0..1 */
    long long slow_trace_ms;  /* 0: off */
    long long rate[SX_SIG_N]; /* per second; 0: no limit */
    long long quota[SX_SIG_N];/* per UTC day; -1: no quota */
    long long storage_quota;  /* bytes; -1: none */
    int redact_secrets;
    struct sx_scrub_rules *rules; /* NULL when none (or unusable: logged) */
};

/* The per-thread cache: a few entries, direct-mapped by project id. Owned
 * by the thread (embedded in its state); sx_ingest_settings_cache_term
 * frees the rules. */
#define SX_SETTINGS_SLOTS 64
struct sx_ingest_settings_cache {
    struct {
        struct sx_ingest_settings s;
        int64_t fetched_ns;   /* monotonic; 0: empty slot */
    } slot[SX_SETTINGS_SLOTS];
};

void sx_ingest_settings_cache_term(struct sx_ingest_settings_cache *cache);

/* The settings of project: from the thread's cache when younger than
 * settings_cache_ms, else from "<prefix>:{p<id>}:settings" in Redis, else
 * from PostgreSQL through *pg (then cached in Redis for settings_redis_ttl).
 * Rules are parsed (regcomp) again only when settings_version changed.
 * When Redis and PostgreSQL both fail, an older cached copy is used. Returns
 * a pointer into cache (valid until the next call) or NULL when nothing is
 * known (503; reason in why). */
const struct sx_ingest_settings *sx_ingest_settings_get(struct sx_ingest_settings_cache *cache, redisContext *rc,
                                                        PGconn **pg, const struct sx_config *c, long long project_id,
                                                        const char *reqid, char *why, size_t whylen);

/* Parses a Redis settings value (format in ingest_settings.c) into *out,
 * rules not parsed: *rules_json and *rules_len point at their JSON text in s.
 * SX_ERR for a malformed value (treated as a cache miss). */
int sx_ingest_settings_parse(const char *s, size_t n, struct sx_ingest_settings *out, const char **rules_json,
                             size_t *rules_len);

#endif
