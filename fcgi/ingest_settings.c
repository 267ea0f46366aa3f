/* ingest_settings.c: a project's ingest settings, cached per thread (settings_cache_ms) and in Redis.
 *
 * The Redis value "<prefix>:{p<id>}:settings" (usage.h) is text, one setting
 * per line, written from the projects row by the first ingest thread that
 * misses it:
 *   v <settings_version>
 *   st <active|suspended>
 *   sr <sampling_rate>
 *   slow <slow_trace_ms>
 *   rate <spans/s> <logs/s> <points/s>       0: no limit
 *   quota <spans> <logs> <points>            per UTC day; -1: none
 *   sq <storage_quota_bytes>                 -1: none
 *   sec <redact_secrets 0|1>
 *   rules <attribute_rules JSON, to the end of the value>
 * sextantctl project set deletes the entry, so a change reaches every
 * ingest thread within settings_cache_ms (2 s by default). */
#include "ingest_settings.h"

#include "ingest_auth.h"
#include "log.h"
#include "redis.h"
#include "usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char settings_sql[] =
    "SELECT format(E'v %s\\nst %s\\nsr %s\\nslow %s\\nrate %s %s %s\\nquota %s %s %s\\nsq %s\\nsec %s\\nrules %s', "
    "settings_version, status, sampling_rate, slow_trace_ms, coalesce(rate_spans_per_s, 0), "
    "coalesce(rate_logs_per_s, 0), coalesce(rate_metric_points_per_s, 0), coalesce(quota_spans_daily, -1), "
    "coalesce(quota_logs_daily, -1), coalesce(quota_metric_points_daily, -1), coalesce(storage_quota_bytes, -1), "
    "redact_secrets::int, attribute_rules::text) FROM projects WHERE id = $1::int";

/* The value of one "name value" line at *p (advanced past it). */
static int line(const char **p, const char *end, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    if ((size_t)(end - *p) < nl + 1 || memcmp(*p, name, nl) != 0 || (*p)[nl] != ' ') return SX_ERR;
    *val = *p + nl + 1;
    const char *e = memchr(*val, '\n', (size_t)(end - *val));
    if (!e) e = end;
    *vlen = (size_t)(e - *val);
    *p = e < end ? e + 1 : end;
    return SX_OK;
}

static int nums(const char *v, size_t n, long long *out, int count)
{
    char buf[128], *q, *e;
    if (n >= sizeof(buf)) return SX_ERR;
    memcpy(buf, v, n);
    buf[n] = '\0';
    q = buf;
    for (int i = 0; i < count; i++) {
        out[i] = strtoll(q, &e, 10);
        if (e == q) return SX_ERR;
        q = e;
    }
    return *q == '\0' ? SX_OK : SX_ERR;
}

int sx_ingest_settings_parse(const char *s, size_t n, struct sx_ingest_settings *out, const char **rules_json,
                             size_t *rules_len)
{
    const char *p = s, *end = s + n, *v;
    size_t vl;
    long long x[3];
    char buf[64];

    memset(out, 0, sizeof(*out));
    if (line(&p, end, "v", &v, &vl) != SX_OK || nums(v, vl, &out->version, 1) != SX_OK) return SX_ERR;
    if (line(&p, end, "st", &v, &vl) != SX_OK) return SX_ERR;
    out->suspended = !(vl == 6 && memcmp(v, "active", 6) == 0);
    if (line(&p, end, "sr", &v, &vl) != SX_OK || vl == 0 || vl >= sizeof(buf)) return SX_ERR;
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    char *e;
    out->sampling_rate = strtod(buf, &e);
    if (*e || !(out->sampling_rate >= 0 && out->sampling_rate <= 1)) return SX_ERR;
    if (line(&p, end, "slow", &v, &vl) != SX_OK || nums(v, vl, &out->slow_trace_ms, 1) != SX_OK) return SX_ERR;
    if (line(&p, end, "rate", &v, &vl) != SX_OK || nums(v, vl, x, 3) != SX_OK) return SX_ERR;
    memcpy(out->rate, x, sizeof(out->rate));
    if (line(&p, end, "quota", &v, &vl) != SX_OK || nums(v, vl, x, 3) != SX_OK) return SX_ERR;
    memcpy(out->quota, x, sizeof(out->quota));
    if (line(&p, end, "sq", &v, &vl) != SX_OK || nums(v, vl, &out->storage_quota, 1) != SX_OK) return SX_ERR;
    if (line(&p, end, "sec", &v, &vl) != SX_OK || nums(v, vl, x, 1) != SX_OK) return SX_ERR;
    out->redact_secrets = x[0] != 0;
    /* rules: the rest of the value, newlines included. */
    if ((size_t)(end - p) < 6 || memcmp(p, "rules ", 6) != 0) return SX_ERR;
    *rules_json = p + 6;
    *rules_len = (size_t)(end - p - 6);
    return SX_OK;
}

void sx_ingest_settings_cache_term(struct sx_ingest_settings_cache *cache)
{
    for (size_t i = 0; i < SX_SETTINGS_SLOTS; i++) {
        sx_scrub_rules_destroy(cache->slot[i].s.rules);
        cache->slot[i].s.rules = NULL;
        cache->slot[i].fetched_ns = 0;
    }
}

/* The settings text from PostgreSQL into a malloc'd string (caller frees);
 * *missing set when the project does not exist. NULL on failure. */
static char *pg_fetch(PGconn **pg, const struct sx_config *c, long long project_id, int *missing, const char *reqid)
{
    char pid[24], tmp[512];
    *missing = 0;
    snprintf(pid, sizeof(pid), "%lld", project_id);
    const char *params[1] = {pid};
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sx_ingest_pg_open(pg, c, reqid) != SX_OK) return NULL;
        PGresult *res = PQexecParams(*pg, settings_sql, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            char *out = NULL;
            if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) out = sx_xstrdup(PQgetvalue(res, 0, 0));
            else *missing = 1;
            PQclear(res);
            return out;
        }
        sx_rwarn(reqid, "PQexecParams(project settings) failed: %s",
                 sx_ingest_one_line(PQerrorMessage(*pg), tmp, sizeof(tmp)));
        PQclear(res);
        if (PQstatus(*pg) == CONNECTION_OK) return NULL; /* a live server refused: no retry */
    }
    return NULL;
}

/* Fills slot from text (a Redis or PostgreSQL value); SX_ERR when malformed. */
static int apply(struct sx_ingest_settings *slot, long long project_id, const char *text, size_t len,
                 const char *reqid)
{
    struct sx_ingest_settings ns;
    const char *rj;
    size_t rl;
    if (sx_ingest_settings_parse(text, len, &ns, &rj, &rl) != SX_OK) return SX_ERR;
    ns.project_id = project_id;
    if (slot->project_id == project_id && slot->version == ns.version && slot->rules) {
        ns.rules = slot->rules; /* same version: the compiled rules still hold */
    } else {
        char err[256];
        sx_scrub_rules_destroy(slot->rules);
        ns.rules = sx_scrub_rules_parse(rj, rl, err, sizeof(err));
        if (!ns.rules) sx_rwarn(reqid, "project %lld: attribute rules ignored: %s", project_id, err);
    }
    *slot = ns;
    return SX_OK;
}

const struct sx_ingest_settings *sx_ingest_settings_get(struct sx_ingest_settings_cache *cache, redisContext *rc,
                                                        PGconn **pg, const struct sx_config *c, long long project_id,
                                                        const char *reqid, char *why, size_t whylen)
{
    size_t i = (size_t)project_id % SX_SETTINGS_SLOTS;
    struct sx_ingest_settings *slot = &cache->slot[i].s;
    int64_t now = sx_mono_ns();
    int have = cache->slot[i].fetched_ns != 0 && slot->project_id == project_id;
    char key[200];

    why[0] = '\0';
    if (have && now - cache->slot[i].fetched_ns < c->settings_cache_ms * 1000000LL) return slot;
    if (!have) { /* another project's slot: start clean */
        sx_scrub_rules_destroy(slot->rules);
        memset(slot, 0, sizeof(*slot));
        cache->slot[i].fetched_ns = 0;
    }
    sx_redis_pkey(key, sizeof(key), c, project_id, SX_SETTINGS_SUFFIX);
    redisReply *r = rc && !rc->err ? redisCommand(rc, "GET %s", key) : NULL;
    if (r && r->type == REDIS_REPLY_STRING && apply(slot, project_id, r->str, r->len, reqid) == SX_OK) {
        freeReplyObject(r);
        cache->slot[i].fetched_ns = now;
        return slot;
    }
    if (!r) sx_rwarn(reqid, "redisCommand(GET settings) failed: %s", rc ? rc->errstr : "no connection");
    else if (r->type == REDIS_REPLY_ERROR) sx_rwarn(reqid, "redisCommand(GET settings) failed: %s", r->str);
    if (r) freeReplyObject(r);

    int missing = 0;
    char *text = pg_fetch(pg, c, project_id, &missing, reqid);
    if (text && apply(slot, project_id, text, strlen(text), reqid) == SX_OK) {
        cache->slot[i].fetched_ns = now;
        if (rc && !rc->err) {
            char ttl[24];
            snprintf(ttl, sizeof(ttl), "%lld", c->settings_redis_ttl);
            redisReply *w = redisCommand(rc, "SET %s %s EX %s", key, text, ttl);
            if (!w || w->type == REDIS_REPLY_ERROR)
                sx_rwarn(reqid, "redisCommand(SET settings) failed: %s", w ? w->str : rc->errstr);
            if (w) freeReplyObject(w);
        }
        free(text);
        return slot;
    }
    free(text);
    if (missing) {
        /* The key outlived its project (cached): refuse as suspended. */
        sx_scrub_rules_destroy(slot->rules);
        memset(slot, 0, sizeof(*slot));
        slot->project_id = project_id;
        slot->suspended = 1;
        slot->sampling_rate = 1;
        cache->slot[i].fetched_ns = now;
        return slot;
    }
    if (have) return slot; /* stale beats nothing while the stores are down */
    snprintf(why, whylen, "project settings are unavailable (Redis and PostgreSQL)");
    return NULL;
}
