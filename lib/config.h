/* config.h: the one declarative table of settings shared by every program.
 *
 * The file format is "name value" per line ('#' starts a comment), like
 * redis.conf. Each program reads the same file and uses the settings it
 * needs. The table drives parsing, bounds checks, --help and the example
 * config (`sextantctl config example`). */
#ifndef SX_CONFIG_H
#define SX_CONFIG_H

#include "sx.h"

#include <stdio.h>

#define SX_CONF_STR_MAX 512

struct sx_config {
    /* general */
    char log_level[16];
    char redis_socket[SX_CONF_STR_MAX]; /* unix socket path; wins over host/port */
    char redis_host[SX_CONF_STR_MAX];
    long long redis_port;
    char redis_prefix[64];              /* every Redis key starts with this */
    char pg_conninfo[SX_CONF_STR_MAX];  /* libpq connection string; per program after sx_config_select_pg */
    char ingest_pg_conninfo[SX_CONF_STR_MAX];  /* "": pg_conninfo (each program its own login) */
    char api_pg_conninfo[SX_CONF_STR_MAX];
    char persist_pg_conninfo[SX_CONF_STR_MAX];
    char rollup_pg_conninfo[SX_CONF_STR_MAX];
    char sse_pg_conninfo[SX_CONF_STR_MAX];
    /* sextant-ingest */
    char ingest_listen[SX_CONF_STR_MAX]; /* unix socket path or host:port */
    long long ingest_threads;
    long long max_body_bytes;         /* compressed body, as received */
    long long max_inflated_bytes;     /* after gunzip */
    long long max_json_depth;
    long long max_spans_per_request;
    long long max_attributes;         /* per span, event, link, resource */
    long long max_attr_key_len;
    long long max_attr_value_len;     /* longer string values are truncated */
    long long max_any_value_depth;    /* nesting of array/kvlist values */
    long long max_events_per_span;
    long long max_links_per_span;
    long long max_log_records_per_request;
    long long max_points_per_request; /* metric data points of every kind */
    long long max_log_body_len;       /* longer string log bodies are truncated */
    long long stream_high_water;      /* entries; over it ingest answers 503 */
    long long retry_after_seconds;    /* Retry-After of 503 answers, 1-5 */
    long long key_cache_ttl;          /* seconds a known key stays cached */
    long long key_negative_ttl;       /* seconds an unknown key stays cached */
    long long settings_cache_ms;      /* ms an ingest thread reuses a project's settings */
    long long settings_redis_ttl;     /* seconds project settings stay cached in Redis */
    long long rate_burst_seconds;     /* token bucket capacity = rate x this */
    long long rate_retry_max;         /* longest Retry-After of a rate-limit 429 */
    long long usage_days;             /* days the per-project usage counters are kept */
    /* sextant-persist */
    long long persist_batch_spans;    /* spans per COPY transaction at most */
    long long persist_block_ms;       /* XREADGROUP BLOCK */
    long long persist_claim_idle_ms;  /* pending entries idle this long are reclaimed */
    long long metrics_raw_retention_s; /* raw metric points older than this (point time) are deleted */
    long long partition_days_ahead;   /* daily partitions created in advance */
    /* sextant-api */
    char api_listen[SX_CONF_STR_MAX];
    long long api_threads;
    long long api_max_limit;          /* largest page size */
    long long api_trace_scan_max;     /* traces a filtered trace search reads at most */
    long long api_trace_scan_ms;      /* and the time it may spend reading them */
    long long api_log_hist_ms;        /* time budget of a log histogram's exact count */
    long long api_log_hist_rows;      /* rows its fallback counts at most */
    long long session_ttl_s;          /* dashboard session lifetime */
    long long login_window_s;         /* failed-login counting window */
    long long login_max_failures_email; /* failed logins per email per window */
    long long login_max_failures_ip;  /* failed logins per client address per window */
    long long projects_create_admin_only; /* 1: POST /projects for instance admins only */
    /* sextant-sse and the live streams */
    char sse_socket[SX_CONF_STR_MAX]; /* unix socket path or host:port */
    long long sse_threads;            /* open streams at most (one thread each) */
    long long sse_heartbeat_s;        /* ": ping" after this many idle seconds */
    long long sse_queue;              /* events a slow client may lag behind before a gap */
    long long sse_reauth_s;           /* an open stream's credentials are checked again this often */
    long long live_maxlen;            /* XADD MAXLEN ~ of the per-project live streams */
};

/* Fills every field with its default. */
void sx_config_defaults(struct sx_config *c);

/* Reads path over the current values (call sx_config_defaults first).
 * Returns SX_OK, or SX_ERR with "file:line: message" in err. A missing file
 * is an error only when required is nonzero. */
int sx_config_load(struct sx_config *c, const char *path, int required, char *err, size_t errlen);

/* Sets one setting by name from text (also used for --set name=value);
 * SX_ERR with a message in err when unknown or out of bounds. */
int sx_config_set(struct sx_config *c, const char *name, const char *value, char *err, size_t errlen);

/* Makes pg_conninfo the connection string of one program: the value of
 * "<program>_pg_conninfo" (program "ingest", "api", "persist", "rollup")
 * when that setting exists and is not empty; otherwise pg_conninfo stays as
 * it is (sextantctl and programs without their own setting). Call once after
 * loading, before connecting. Returns 1 when the program's own setting was
 * used, 0 otherwise. */
int sx_config_select_pg(struct sx_config *c, const char *program);

/* The config path programs use when none is given: $SEXTANT_CONFIG, else
 * $SEXTANT_HOME/sextant.conf, else ./var/sextant.conf. Written into out. */
void sx_config_default_path(char *out, size_t outlen);

/* Name of the i-th setting, or NULL past the last (for docs and tests). */
const char *sx_config_name(size_t i);

/* Prints every setting with its description, type, bounds and default. */
void sx_config_print_help(FILE *f);
/* Prints a commented example config file holding every default. */
void sx_config_print_example(FILE *f);

#endif
