/* config.c: settings table, parser and documentation generator. */
#include "config.h"

#include "pg.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum conf_type { CONF_STR, CONF_INT, CONF_SIZE };

struct conf_def {
    const char *name;
    enum conf_type type;
    size_t offset;
    size_t size; /* for strings: field size */
    const char *def;
    long long min, max;
    const char *desc;
};

#define STR(f, d, desc) {#f, CONF_STR, offsetof(struct sx_config, f), sizeof(((struct sx_config *)0)->f), d, 0, 0, desc}
#define INT(f, d, lo, hi, desc) {#f, CONF_INT, offsetof(struct sx_config, f), 0, d, lo, hi, desc}
#define SIZE(f, d, lo, hi, desc) {#f, CONF_SIZE, offsetof(struct sx_config, f), 0, d, lo, hi, desc}

static const struct conf_def defs[] = {
    STR(log_level, "info", "debug, info, warn or error"),
    STR(redis_socket, "", "Redis unix socket path; when set, redis_host/redis_port are ignored"),
    STR(redis_host, "127.0.0.1", "Redis host"),
    INT(redis_port, "6379", 1, 65535, "Redis TCP port"),
    STR(redis_prefix, "sx", "prefix of every Redis key Sextant uses"),
    STR(pg_conninfo, "dbname=sextant", "libpq connection string of the PostgreSQL database (sextantctl, and every program without its own *_pg_conninfo)"),
    STR(ingest_pg_conninfo, "", "libpq connection string of sextant-ingest (its own login, e.g. user=sextant_ingest); empty: pg_conninfo"),
    STR(api_pg_conninfo, "", "libpq connection string of sextant-api (its own login, e.g. user=sextant_api); empty: pg_conninfo"),
    STR(persist_pg_conninfo, "", "libpq connection string of sextant-persist (its own login, e.g. user=sextant_persist); empty: pg_conninfo"),
    STR(rollup_pg_conninfo, "", "libpq connection string of sextant-rollup (its own login, e.g. user=sextant_rollup); empty: pg_conninfo"),
    STR(sse_pg_conninfo, "", "libpq connection string of sextant-sse (its own login, e.g. user=sextant_sse); empty: pg_conninfo"),
    STR(ingest_listen, "/run/sextant/ingest.sock", "sextant-ingest FastCGI socket: a unix path or host:port"),
    INT(ingest_threads, "8", 1, 256, "sextant-ingest worker threads (at least nginx's upstream keepalive)"),
    SIZE(max_body_bytes, "8m", 1024, 1LL << 30, "largest request body as received (compressed); over it: 413"),
    SIZE(max_inflated_bytes, "32m", 1024, 1LL << 31, "largest body after gunzip; over it: 413"),
    INT(max_json_depth, "64", 8, 1024, "deepest JSON nesting accepted; deeper: 400"),
    INT(max_spans_per_request, "100000", 1, 10000000, "most spans in one request; more: 400"),
    INT(max_attributes, "128", 1, 100000, "most attributes per span, event, link or resource; the rest are dropped and counted"),
    INT(max_attr_key_len, "256", 1, 65536, "longest attribute key; longer attributes are dropped and counted"),
    INT(max_attr_value_len, "16384", 16, 16777216, "longest string attribute value; longer ones are truncated"),
    INT(max_any_value_depth, "8", 1, 64, "deepest nesting of array/kvlist attribute values"),
    INT(max_events_per_span, "128", 0, 100000, "most events per span; the rest are dropped and counted"),
    INT(max_links_per_span, "128", 0, 100000, "most links per span; the rest are dropped and counted"),
    INT(max_log_records_per_request, "100000", 1, 10000000, "most log records in one request; more: 400"),
    INT(max_points_per_request, "100000", 1, 10000000, "most metric data points (of every kind) in one request; more: 400"),
    INT(max_log_body_len, "65536", 16, 16777216, "longest string log body; longer ones are truncated"),
    INT(stream_high_water, "5000", 10, 100000000, "entries per ingest stream over which ingest answers 503; Redis holds up to this many batches (5000 x a 23 KB 65-span batch = 115 MB)"),
    INT(retry_after_seconds, "2", 1, 5, "Retry-After of 503 answers"),
    INT(key_cache_ttl, "60", 1, 86400, "seconds a known ingest key stays cached in Redis"),
    INT(key_negative_ttl, "10", 1, 3600, "seconds an unknown ingest key stays cached in Redis"),
    INT(settings_cache_ms, "2000", 0, 60000, "ms an ingest thread reuses a project's settings before reading them again from Redis"),
    INT(settings_redis_ttl, "300", 1, 86400, "seconds a project's settings stay cached in Redis (sextantctl project set clears the entry)"),
    INT(rate_burst_seconds, "2", 1, 60, "token bucket capacity of the per-project rate limits, in seconds of the rate"),
    INT(rate_retry_max, "5", 1, 5, "longest Retry-After of a rate-limit 429 (the SDK drops data when Retry-After exceeds its export timeout)"),
    INT(usage_days, "40", 2, 400, "days the per-project usage counters (accepted, limited, sampled out...) are kept in Redis"),
    INT(persist_batch_spans, "20000", 100, 1000000, "most spans sextant-persist writes in one transaction"),
    INT(persist_block_ms, "1000", 10, 60000, "how long sextant-persist blocks waiting for entries"),
    INT(persist_claim_idle_ms, "30000", 1000, 3600000, "pending entries idle this long are reclaimed from a dead consumer"),
    INT(metrics_raw_retention_s, "3600", 10, 604800, "seconds of point time sextant-rollup keeps raw metric points (metric_points_raw) before deleting them"),
    INT(partition_days_ahead, "3", 1, 60, "daily partitions created ahead of time"),
    STR(api_listen, "/run/sextant/api.sock", "sextant-api FastCGI socket: a unix path or host:port"),
    INT(api_threads, "4", 1, 256, "sextant-api worker threads"),
    INT(api_max_limit, "1000", 1, 100000, "largest page size of list endpoints"),
    INT(api_trace_scan_max, "200000", 10, 100000000, "traces one trace search reads at most before it answers a partial page"),
    INT(api_trace_scan_ms, "1000", 10, 60000, "milliseconds after which a trace search stops reading and answers a partial page"),
    INT(api_log_hist_ms, "2000", 0, 60000, "milliseconds the exact count of a log histogram may take before it counts the newest api_log_hist_rows rows instead (0: always those)"),
    INT(api_log_hist_rows, "200000", 1, 100000000, "newest matching log rows a log histogram counts when its exact count ran out of time"),
    INT(session_ttl_s, "604800", 60, 31536000, "seconds a dashboard session (the sx_session cookie) lasts after login"),
    INT(login_window_s, "900", 10, 86400, "seconds over which failed logins are counted (from the first failure)"),
    INT(login_max_failures_email, "5", 1, 1000, "failed logins per email within login_window_s; then 429 until the window ends"),
    INT(login_max_failures_ip, "20", 1, 100000, "failed logins per client address within login_window_s; then 429 until the window ends"),
    INT(projects_create_admin_only, "0", 0, 1, "1: only instance admins may create projects through the API (POST /api/v1/projects); 0: any user may"),
    STR(sse_socket, "/run/sextant/sse.sock", "sextant-sse FastCGI socket: a unix path or host:port"),
    INT(sse_threads, "1100", 2, 20000, "sextant-sse threads: open live streams at most (one small-stack thread each)"),
    INT(sse_heartbeat_s, "15", 1, 3600, "seconds of silence after which a live stream gets a ': ping' comment"),
    INT(sse_queue, "512", 8, 100000, "events a live stream may lag behind before it gets 'event: gap' and skips ahead"),
    INT(sse_reauth_s, "60", 1, 86400, "seconds after which an open live stream checks its token or session and membership again; revoked access ends the stream"),
    INT(live_maxlen, "5000", 100, 10000000, "entries kept in each project's live stream (XADD MAXLEN ~): how far Last-Event-ID can resume"),
};

static const struct conf_def *find_def(const char *name)
{
    for (size_t i = 0; i < SX_ARRAY_LEN(defs); i++)
        if (strcmp(defs[i].name, name) == 0) return &defs[i];
    return NULL;
}

static int parse_number(const char *s, int is_size, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s) return SX_ERR;
    if (is_size && *end) {
        long long mul = 1;
        switch (tolower((unsigned char)*end)) {
        case 'k': mul = 1LL << 10; break;
        case 'm': mul = 1LL << 20; break;
        case 'g': mul = 1LL << 30; break;
        default: return SX_ERR;
        }
        end++;
        if (*end == 'b' || *end == 'B') end++;
        if (v > LLONG_MAX / mul) return SX_ERR;
        v *= mul;
    }
    if (*end) return SX_ERR;
    *out = v;
    return SX_OK;
}

/* Settings named "pg_conninfo" or "<program>_pg_conninfo". */
static int is_conninfo(const char *name)
{
    size_t n = strlen(name), k = sizeof("pg_conninfo") - 1;
    return n >= k && strcmp(name + n - k, "pg_conninfo") == 0;
}

/* A connection string libpq cannot parse fails at startup, not at the first
 * connection attempt deep inside a worker. */
static int check_conninfo(const char *name, const char *value, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(value, &msg);
    if (!opts) {
        char one[256];
        snprintf(err, errlen, "%s: not a libpq connection string: %s", name,
                 sx_pg_one_line(msg ? msg : "out of memory", one, sizeof(one)));
        PQfreemem(msg);
        return SX_ERR;
    }
    PQconninfoFree(opts);
    return SX_OK;
}

static int apply(struct sx_config *c, const struct conf_def *d, const char *value, char *err, size_t errlen)
{
    char *base = (char *)c + d->offset;
    if (d->type == CONF_STR) {
        size_t n = strlen(value);
        if (n >= d->size) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", d->name, d->size - 1);
            return SX_ERR;
        }
        if (n && is_conninfo(d->name) && check_conninfo(d->name, value, err, errlen) != SX_OK) return SX_ERR;
        memcpy(base, value, n + 1);
        if (strcmp(d->name, "log_level") == 0 && n && strcmp(value, "debug") && strcmp(value, "info") &&
            strcmp(value, "warn") && strcmp(value, "error")) {
            snprintf(err, errlen, "log_level: expected debug, info, warn or error, got '%s'", value);
            return SX_ERR;
        }
        return SX_OK;
    }
    long long v;
    if (parse_number(value, d->type == CONF_SIZE, &v) != SX_OK) {
        snprintf(err, errlen, "%s: '%s' is not a%s number", d->name, value,
                 d->type == CONF_SIZE ? " size (like 512k, 8m)" : "n integer");
        return SX_ERR;
    }
    if (v < d->min || v > d->max) {
        snprintf(err, errlen, "%s: %lld is out of range [%lld, %lld]", d->name, v, d->min, d->max);
        return SX_ERR;
    }
    memcpy(base, &v, sizeof(v));
    return SX_OK;
}

void sx_config_defaults(struct sx_config *c)
{
    char err[256];
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < SX_ARRAY_LEN(defs); i++)
        if (apply(c, &defs[i], defs[i].def, err, sizeof(err)) != SX_OK) abort(); /* table bug */
}

int sx_config_set(struct sx_config *c, const char *name, const char *value, char *err, size_t errlen)
{
    const struct conf_def *d = find_def(name);
    if (!d) {
        snprintf(err, errlen, "unknown setting '%s'", name);
        return SX_ERR;
    }
    return apply(c, d, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int sx_config_load(struct sx_config *c, const char *path, int required, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT) return SX_OK;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return SX_ERR;
    }
    char line[2048], msg[512];
    int lineno = 0, rc = SX_OK;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            rc = SX_ERR;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *sp = s;
        while (*sp && !isspace((unsigned char)*sp) && *sp != '=') sp++;
        char *value = sp;
        if (*value) {
            *value++ = '\0';
            value = trim(value);
            if (*value == '=') value = trim(value + 1);
        }
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        if (sx_config_set(c, s, value, msg, sizeof(msg)) != SX_OK) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = SX_ERR;
            break;
        }
    }
    fclose(f);
    return rc;
}

int sx_config_select_pg(struct sx_config *c, const char *program)
{
    char name[64];
    int n = snprintf(name, sizeof(name), "%s_pg_conninfo", program);
    if (n < 0 || (size_t)n >= sizeof(name)) return 0;
    const struct conf_def *d = find_def(name);
    if (!d || d->type != CONF_STR) return 0;
    const char *own = (const char *)c + d->offset;
    if (!*own) return 0;
    snprintf(c->pg_conninfo, sizeof(c->pg_conninfo), "%s", own);
    return 1;
}

void sx_config_default_path(char *out, size_t outlen)
{
    const char *p = getenv("SEXTANT_CONFIG");
    if (p && *p) {
        snprintf(out, outlen, "%s", p);
        return;
    }
    const char *home = getenv("SEXTANT_HOME");
    snprintf(out, outlen, "%s/sextant.conf", home && *home ? home : "./var");
}

const char *sx_config_name(size_t i)
{
    return i < SX_ARRAY_LEN(defs) ? defs[i].name : NULL;
}

static const char *type_name(const struct conf_def *d)
{
    return d->type == CONF_STR ? "string" : d->type == CONF_INT ? "integer" : "size";
}

void sx_config_print_help(FILE *f)
{
    fprintf(f, "settings (config file lines 'name value', or --set name=value):\n");
    for (size_t i = 0; i < SX_ARRAY_LEN(defs); i++) {
        const struct conf_def *d = &defs[i];
        fprintf(f, "  %-24s %-8s default '%s'", d->name, type_name(d), d->def);
        if (d->type != CONF_STR) fprintf(f, " [%lld..%lld]", d->min, d->max);
        fprintf(f, "\n      %s\n", d->desc);
    }
}

void sx_config_print_example(FILE *f)
{
    fprintf(f, "# Sextant configuration: one 'name value' per line; every setting shown with its default.\n");
    for (size_t i = 0; i < SX_ARRAY_LEN(defs); i++) {
        const struct conf_def *d = &defs[i];
        fprintf(f, "\n# %s (%s", d->desc, type_name(d));
        if (d->type != CONF_STR) fprintf(f, ", %lld..%lld", d->min, d->max);
        fprintf(f, ")\n#%s %s\n", d->name, d->def[0] ? d->def : "\"\"");
    }
}
