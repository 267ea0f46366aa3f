/* ctl_enforce.c: `sextantctl project set|show`, `usage` and `maintain`: per-project ingest settings, counters and retention.
 *
 * project set writes the settings columns of sql/013 (bumping
 * settings_version, with an audit_log row by actor 'sextantctl') and deletes
 * the project's Redis settings entry and key cache entries, so every ingest
 * thread applies the change within settings_cache_ms.
 *
 * maintain removes expired telemetry. Daily partitions (spans, logs,
 * error_events) are shared by every project: a partition is dropped whole
 * once its whole day is older than the longest retention of any project;
 * rows of projects with a shorter retention are deleted from the remaining
 * partitions in batches. Summary and rollup tables are deleted per project
 * by their time column. Then it refreshes each project's storage estimate
 * (usage.h) that ingest checks against storage_quota_bytes. */
#include "ctl.h"

#include "projset.h"
#include "redis.h"
#include "usage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_NS 86400000000000LL
#define DELETE_BATCH "20000"
#define RULES_FILE_MAX (256 * 1024)

/* The settable columns and their validation: lib/projset.c, shared with
 * the API's PUT /api/v1/projects/{p}. */
#define settings sx_projset_fields
#define NSETTINGS SX_PROJSET_COUNT

/* Reads "@file" (or takes the text itself) into a malloc'd string. */
static char *rules_text(const char *arg)
{
    if (arg[0] != '@') return sx_xstrdup(arg);
    FILE *f = fopen(arg + 1, "rb");
    if (!f) {
        sx_ctl_err("cannot open %s: %s", arg + 1, strerror(errno));
        return NULL;
    }
    char *buf = sx_xmalloc(RULES_FILE_MAX + 1);
    size_t n = fread(buf, 1, RULES_FILE_MAX + 1, f);
    fclose(f);
    if (n > RULES_FILE_MAX) {
        sx_ctl_err("%s: over %d bytes", arg + 1, RULES_FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Checks and normalizes one value into out (NULL for SQL NULL); malloc'd. */
static int check_value(const struct sx_projset *s, const char *v, char **out)
{
    char err[400];
    const char *norm;
    char *text = s->kind == 'j' ? rules_text(v) : sx_xstrdup(v);
    *out = NULL;
    if (!text) return SX_ERR;
    if (sx_projset_check(s, text, &norm, err, sizeof(err)) != SX_OK) {
        sx_ctl_err("%s", err);
        free(text);
        return SX_ERR;
    }
    if (norm) *out = norm == text ? text : sx_xstrdup(norm);
    if (*out != text) free(text);
    return SX_OK;
}

static const char show_sql[] =
    "SELECT id, slug, status, sampling_rate, slow_trace_ms, rate_spans_per_s, rate_logs_per_s, "
    "rate_metric_points_per_s, quota_spans_daily, quota_logs_daily, quota_metric_points_daily, "
    "storage_quota_bytes, retention_traces_days, retention_logs_days, retention_metrics_days, redact_secrets, "
    "attribute_rules::text, settings_version FROM projects WHERE slug = $1 OR id::text = $1 "
    "ORDER BY (id::text = $1) DESC LIMIT 1";

/* Writes the settings object of row 0 of a show_sql result. */
static void write_settings(struct sx_ctl *ctl, PGresult *res)
{
    struct sx_json *w = &ctl->w;
    static const char *const names[] = {
        "id", "slug", "status", "samplingRate", "slowTraceMs", "rateSpansPerS", "rateLogsPerS",
        "rateMetricPointsPerS", "quotaSpansDaily", "quotaLogsDaily", "quotaMetricPointsDaily", "storageQuotaBytes",
        "retentionTracesDays", "retentionLogsDays", "retentionMetricsDays", "redactSecrets", "attributeRules",
        "settingsVersion"};
    sx_json_obj_open(w);
    for (int i = 0; i < (int)SX_ARRAY_LEN(names); i++) {
        sx_json_key(w, names[i]);
        const char *v = PQgetvalue(res, 0, i);
        if (PQgetisnull(res, 0, i)) sx_json_null(w);
        else if (i == 1 || i == 2) sx_json_strz(w, v);
        else if (i == 15) sx_json_bool(w, v[0] == 't');
        else if (i == 3) sx_json_double(w, strtod(v, NULL));
        else if (i == 16) sx_json_raw(w, v, strlen(v));
        else sx_json_int(w, strtoll(v, NULL, 10));
    }
    sx_json_obj_close(w);
}

static int project_show(struct sx_ctl *ctl, const char *ref)
{
    const char *params[1] = {ref};
    PGresult *res = sx_ctl_query(ctl, show_sql, 1, params, "project show");
    if (!res) return SX_CTL_FAIL;
    if (PQntuples(res) != 1) {
        PQclear(res);
        sx_ctl_err("no project '%s'", ref);
        return SX_CTL_FAIL;
    }
    write_settings(ctl, res);
    PQclear(res);
    return SX_CTL_OK;
}

/* Deletes the project's settings entry and its keys' cache entries. */
static int clear_caches(struct sx_ctl *ctl, long long pid)
{
    char key[SX_CONF_STR_MAX], pidtxt[24];
    redisContext *rc = sx_ctl_redis(ctl);
    if (!rc) return SX_ERR;
    int ok = SX_OK;
    sx_redis_pkey(key, sizeof(key), &ctl->cfg, pid, SX_SETTINGS_SUFFIX);
    redisReply *r = redisCommand(rc, "DEL %s", key);
    if (!r || r->type != REDIS_REPLY_INTEGER) ok = SX_ERR;
    if (r) freeReplyObject(r);
    snprintf(pidtxt, sizeof(pidtxt), "%lld", pid);
    const char *params[1] = {pidtxt};
    PGresult *res = sx_ctl_query(ctl, "SELECT encode(key_hash, 'hex') FROM ingest_keys WHERE project_id = $1::int", 1,
                                 params, "list key hashes");
    if (!res) return SX_ERR;
    for (int i = 0; i < PQntuples(res) && ok == SX_OK; i++) {
        char suffix[80];
        snprintf(suffix, sizeof(suffix), "key:%s", PQgetvalue(res, i, 0));
        sx_redis_key(key, sizeof(key), &ctl->cfg, suffix);
        r = redisCommand(rc, "DEL %s", key);
        if (!r || r->type != REDIS_REPLY_INTEGER) ok = SX_ERR;
        if (r) freeReplyObject(r);
    }
    PQclear(res);
    return ok;
}

int sx_ctl_project_settings(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char usage[] =
        "usage: project set SLUG [--sampling-rate R] [--slow-trace-ms MS] [--rate-spans N|none] [--rate-logs N|none]\n"
        "         [--rate-metric-points N|none] [--quota-spans N|none] [--quota-logs N|none]\n"
        "         [--quota-metric-points N|none] [--storage-quota BYTES|none] [--retention-traces DAYS]\n"
        "         [--retention-logs DAYS] [--retention-metrics DAYS] [--status active|suspended]\n"
        "         [--redact-secrets on|off] [--attribute-rules JSON|@FILE]\n"
        "       project show SLUG";
    if (argc == 3 && strcmp(argv[1], "show") == 0) return project_show(ctl, argv[2]);
    if (argc < 3 || strcmp(argv[1], "set") != 0 || argv[2][0] == '-') {
        sx_ctl_err("%s", usage);
        return SX_CTL_USAGE;
    }
    const char *ref = argv[2];
    char *vals[NSETTINGS] = {0};
    int given[NSETTINGS] = {0};
    int rc = SX_CTL_USAGE, any = 0;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = NULL, *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        size_t k;
        for (k = 0; k < NSETTINGS; k++)
            if (strlen(settings[k].opt) == nl && strncmp(a, settings[k].opt, nl) == 0) break;
        if (k == NSETTINGS) {
            sx_ctl_err("unknown option '%s'\n%s", a, usage);
            goto out;
        }
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else {
            sx_ctl_err("%s needs a value", settings[k].opt);
            goto out;
        }
        free(vals[k]);
        if (check_value(&settings[k], v, &vals[k]) != SX_OK) goto out;
        given[k] = 1;
        any = 1;
    }
    rc = SX_CTL_FAIL;
    if (!any) {
        rc = project_show(ctl, ref);
        goto out;
    }
    long long pid;
    if (sx_ctl_project_id(ctl, ref, &pid) != SX_OK) goto out;

    /* UPDATE projects SET col = $n::type ... and the audit details. */
    struct sx_buf sql, det;
    struct sx_json dj;
    const char *params[NSETTINGS + 2];
    char pidtxt[24];
    int np = 0, berr = 0;
    sx_buf_init(&sql, 1 << 16);
    sx_buf_init(&det, 1 << 20);
    sx_json_init(&dj, &det);
    snprintf(pidtxt, sizeof(pidtxt), "%lld", pid);
    params[np++] = pidtxt;
    berr |= sx_buf_puts(&sql, "UPDATE projects SET ") != SX_OK;
    sx_json_obj_open(&dj);
    for (size_t k = 0; k < NSETTINGS; k++) {
        if (!given[k]) continue;
        char frag[160];
        params[np++] = vals[k];
        snprintf(frag, sizeof(frag), "%s = $%d::%s, ", settings[k].column, np, settings[k].cast);
        berr |= sx_buf_puts(&sql, frag) != SX_OK;
        sx_json_key(&dj, settings[k].json);
        if (!vals[k]) sx_json_null(&dj);
        else if (settings[k].kind == 'j') sx_json_raw(&dj, vals[k], strlen(vals[k]));
        else sx_json_strz(&dj, vals[k]);
    }
    sx_json_obj_close(&dj);
    berr |= sx_buf_puts(&sql, "settings_version = settings_version + 1, updated_at = now() WHERE id = $1::int");
    params[np] = det.data;
    int ok = !berr && !dj.err && sx_ctl_exec(ctl, "BEGIN") == SX_OK;
    if (ok) {
        PGresult *res = sx_ctl_query(ctl, sql.data, np, params, "project set");
        ok = res != NULL;
        PQclear(res);
    }
    if (ok) {
        ok = sx_ctl_audit(ctl, "project.settings", ref, pidtxt, det.data) == SX_OK;
    }
    if (ok) ok = sx_ctl_exec(ctl, "COMMIT") == SX_OK;
    else sx_ctl_exec(ctl, "ROLLBACK");
    sx_buf_term(&sql);
    sx_buf_term(&det);
    if (!ok) goto out;
    if (clear_caches(ctl, pid) != SX_OK)
        sx_ctl_err("warning: Redis caches not cleared; ingest applies the change within settings_redis_ttl (%lld s)",
                   ctl->cfg.settings_redis_ttl);
    rc = project_show(ctl, pidtxt);
out:
    for (size_t k = 0; k < NSETTINGS; k++) free(vals[k]);
    return rc;
}

/* --- usage ------------------------------------------------------------------------- */

static const char *const counters[] = {SX_USAGE_COUNTERS};
static const char *const usage_signals[] = {"spans", "logs", "metrics"};

/* Writes {"spans": {...}, "logs": {...}, "metrics": {...}} from one day's
 * hash (every counter, 0 when missing); adds into totals when not NULL. */
static int write_day(struct sx_ctl *ctl, redisContext *rc, long long pid, int64_t unix_s, long long *totals)
{
    char key[SX_CONF_STR_MAX];
    sx_usage_key(key, sizeof(key), &ctl->cfg, pid, unix_s);
    redisReply *r = redisCommand(rc, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        sx_ctl_err("HGETALL %s failed: %s", key, r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
        sx_json_null(&ctl->w);
        return SX_ERR;
    }
    sx_json_obj_open(&ctl->w);
    for (size_t s = 0; s < SX_ARRAY_LEN(usage_signals); s++) {
        sx_json_key(&ctl->w, usage_signals[s]);
        sx_json_obj_open(&ctl->w);
        for (size_t c = 0; c < SX_ARRAY_LEN(counters); c++) {
            char field[64];
            long long v = 0;
            snprintf(field, sizeof(field), "%s.%s", usage_signals[s], counters[c]);
            for (size_t i = 0; i + 1 < r->elements; i += 2)
                if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, field) == 0)
                    v = strtoll(r->element[i + 1]->str, NULL, 10);
            sx_json_key(&ctl->w, counters[c]);
            sx_json_int(&ctl->w, v);
            if (totals) totals[s * SX_ARRAY_LEN(counters) + c] += v;
        }
        sx_json_obj_close(&ctl->w);
    }
    sx_json_obj_close(&ctl->w);
    freeReplyObject(r);
    return SX_OK;
}

int sx_ctl_usage(struct sx_ctl *ctl, int argc, char **argv)
{
    const char *project = NULL;
    long long days = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--project") == 0 && i + 1 < argc) project = argv[++i];
        else if (strncmp(argv[i], "--project=", 10) == 0) project = argv[i] + 10;
        else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) days = strtoll(argv[++i], NULL, 10);
        else if (strncmp(argv[i], "--days=", 7) == 0) days = strtoll(argv[i] + 7, NULL, 10);
        else project = NULL, days = -1;
    }
    if (!project || days < 1 || days > 400) {
        sx_ctl_err("usage: usage --project P [--days N]   (N from 1 to 400, default 1: today, UTC)");
        return SX_CTL_USAGE;
    }
    long long pid;
    if (sx_ctl_project_id(ctl, project, &pid) != SX_OK) return SX_CTL_FAIL;
    redisContext *rc = sx_ctl_redis(ctl);
    if (!rc) return SX_CTL_FAIL;
    long long totals[SX_ARRAY_LEN(usage_signals) * SX_ARRAY_LEN(counters)];
    memset(totals, 0, sizeof(totals));
    int64_t now = time(NULL);
    int ok = SX_OK;
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "projectId");
    sx_json_int(&ctl->w, pid);
    sx_json_key(&ctl->w, "days");
    sx_json_arr_open(&ctl->w);
    for (long long d = 0; d < days; d++) {
        char day[16];
        int64_t t = now - d * 86400;
        sx_usage_day(day, sizeof(day), t);
        sx_json_obj_open(&ctl->w);
        sx_json_key(&ctl->w, "date");
        sx_json_strz(&ctl->w, day);
        sx_json_key(&ctl->w, "counters");
        if (write_day(ctl, rc, pid, t, totals) != SX_OK) ok = SX_ERR;
        sx_json_obj_close(&ctl->w);
    }
    sx_json_arr_close(&ctl->w);
    sx_json_key(&ctl->w, "total");
    sx_json_obj_open(&ctl->w);
    for (size_t s = 0; s < SX_ARRAY_LEN(usage_signals); s++) {
        sx_json_key(&ctl->w, usage_signals[s]);
        sx_json_obj_open(&ctl->w);
        for (size_t c = 0; c < SX_ARRAY_LEN(counters); c++) {
            sx_json_key(&ctl->w, counters[c]);
            sx_json_int(&ctl->w, totals[s * SX_ARRAY_LEN(counters) + c]);
        }
        sx_json_obj_close(&ctl->w);
    }
    sx_json_obj_close(&ctl->w);
    sx_json_obj_close(&ctl->w);
    return ok == SX_OK ? SX_CTL_OK : SX_CTL_FAIL;
}

int sx_ctl_status_usage(struct sx_ctl *ctl, redisContext *rc)
{
    PGresult *res = sx_ctl_query(ctl, "SELECT id, slug, status FROM projects ORDER BY id", 0, NULL, "list projects");
    int ok = SX_OK;
    sx_json_arr_open(&ctl->w);
    for (int i = 0; res && i < PQntuples(res); i++) {
        long long pid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        sx_json_obj_open(&ctl->w);
        sx_json_key(&ctl->w, "id");
        sx_json_int(&ctl->w, pid);
        sx_json_key(&ctl->w, "slug");
        sx_json_strz(&ctl->w, PQgetvalue(res, i, 1));
        sx_json_key(&ctl->w, "status");
        sx_json_strz(&ctl->w, PQgetvalue(res, i, 2));
        sx_json_key(&ctl->w, "today");
        if (rc && !rc->err) {
            if (write_day(ctl, rc, pid, time(NULL), NULL) != SX_OK) ok = SX_ERR;
        } else {
            sx_json_null(&ctl->w);
            ok = SX_ERR;
        }
        sx_json_obj_close(&ctl->w);
    }
    sx_json_arr_close(&ctl->w);
    if (!res) ok = SX_ERR;
    PQclear(res);
    return ok;
}

/* --- maintain ------------------------------------------------------------------------ */

/* A partitioned table and the retention that applies to it. */
struct part_table {
    const char *table;
    const char *time_col;
    const char *retention; /* SQL expression over projects */
};

static const struct part_table part_tables[] = {
    {"spans", "start_time_ns", "retention_traces_days"},
    {"logs", "time_ns", "retention_logs_days"},
    {"error_events", "time_ns", "greatest(retention_traces_days, retention_logs_days)"},
};

/* Plain tables deleted per project by time. */
static const struct part_table plain_tables[] = {
    {"traces", "start_time_ns", "retention_traces_days"},
    {"red_1m", "bucket_start_ns", "retention_traces_days"},
    {"red_1h", "bucket_start_ns", "retention_traces_days"},
    {"edges_1m", "bucket_start_ns", "retention_traces_days"},
    {"db_statements_1m", "bucket_start_ns", "retention_traces_days"},
    {"metric_points_1m", "bucket_start_ns", "retention_metrics_days"},
    {"metric_points_1h", "bucket_start_ns", "retention_metrics_days"},
    {"metric_points_5m", "bucket_start_ns", "retention_metrics_days"},
    {"issue_counts_hourly", "hour_ns", "greatest(30, retention_traces_days, retention_logs_days)"},
};

/* Runs a batched DELETE until it removes nothing; returns rows or -1. */
static long long delete_batches(struct sx_ctl *ctl, const char *sql, int np, const char *const *params)
{
    long long total = 0;
    for (;;) {
        PGresult *res = sx_ctl_query(ctl, sql, np, params, "maintain delete");
        if (!res) return -1;
        long long n = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        total += n;
        if (n == 0) return total;
    }
}

/* Drops whole partitions of t older than every project's retention, then
 * deletes the rows of projects with a shorter one. */
static int maintain_partitioned(struct sx_ctl *ctl, const struct part_table *t, long long now_ns, long long *deleted)
{
    char sql[1024], now[24];
    snprintf(now, sizeof(now), "%lld", now_ns);
    /* Partitions with their upper bound (from the name's day). */
    snprintf(sql, sizeof(sql),
             "SELECT c.relname, (extract(epoch FROM to_date(right(c.relname, 8), 'YYYYMMDD'))::bigint + 86400) "
             "* 1000000000 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
             "WHERE i.inhparent = '%s'::regclass AND c.relname ~ '_[0-9]{8}$' ORDER BY 1",
             t->table);
    PGresult *parts = sx_ctl_query(ctl, sql, 0, NULL, "list partitions");
    if (!parts) return SX_ERR;
    snprintf(sql, sizeof(sql), "SELECT max(%s) FROM projects", t->retention);
    PGresult *mx = sx_ctl_query(ctl, sql, 0, NULL, "longest retention");
    if (!mx) {
        PQclear(parts);
        return SX_ERR;
    }
    int ok = SX_OK;
    if (PQgetisnull(mx, 0, 0)) goto done; /* no projects: nothing to judge by */
    long long max_days = strtoll(PQgetvalue(mx, 0, 0), NULL, 10);
    long long drop_before = now_ns - max_days * DAY_NS;
    sx_json_key(&ctl->w, "droppedPartitions");
    sx_json_arr_open(&ctl->w);
    for (int i = 0; i < PQntuples(parts); i++) {
        long long end = strtoll(PQgetvalue(parts, i, 1), NULL, 10);
        if (end > drop_before) continue;
        char drop[200];
        snprintf(drop, sizeof(drop), "DROP TABLE IF EXISTS \"%s\"", PQgetvalue(parts, i, 0));
        if (sx_ctl_exec(ctl, drop) != SX_OK) {
            ok = SX_ERR;
            break;
        }
        sx_json_strz(&ctl->w, PQgetvalue(parts, i, 0));
    }
    sx_json_arr_close(&ctl->w);
    /* Rows of projects whose retention is shorter than the longest one,
     * partition by partition (each a plain table: ctid is unique there). */
    snprintf(sql, sizeof(sql), "SELECT id, $1::bigint - %s::bigint * %lld FROM projects WHERE %s < %lld", t->retention,
             DAY_NS, t->retention, max_days);
    const char *p1[1] = {now};
    PGresult *pr = ok == SX_OK ? sx_ctl_query(ctl, sql, 1, p1, "projects with shorter retention") : NULL;
    if (!pr) ok = SX_ERR;
    for (int j = 0; pr && j < PQntuples(pr) && ok == SX_OK; j++) {
        const char *pid = PQgetvalue(pr, j, 0), *cutoff = PQgetvalue(pr, j, 1);
        PGresult *live = sx_ctl_query(ctl,
                                      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                      "WHERE i.inhparent = $1::regclass ORDER BY 1",
                                      1, &t->table, "list partitions");
        if (!live) {
            ok = SX_ERR;
            break;
        }
        for (int i = 0; i < PQntuples(live); i++) {
            char del[600];
            const char *part = PQgetvalue(live, i, 0);
            snprintf(del, sizeof(del),
                     "DELETE FROM \"%s\" WHERE ctid = ANY (ARRAY(SELECT ctid FROM \"%s\" WHERE project_id = $1::int "
                     "AND %s < $2::bigint LIMIT " DELETE_BATCH "))",
                     part, part, t->time_col);
            const char *dp[2] = {pid, cutoff};
            long long n = delete_batches(ctl, del, 2, dp);
            if (n < 0) {
                ok = SX_ERR;
                break;
            }
            *deleted += n;
        }
        PQclear(live);
    }
    PQclear(pr);
done:
    PQclear(parts);
    PQclear(mx);
    return ok;
}

static int maintain_plain(struct sx_ctl *ctl, const struct part_table *t, long long now_ns, long long *deleted)
{
    char sql[700], now[24];
    snprintf(now, sizeof(now), "%lld", now_ns);
    /* The retention columns exist only in projects: unqualified is unambiguous. */
    snprintf(sql, sizeof(sql),
             "DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT t.ctid FROM %s t JOIN projects p ON p.id = t.project_id "
             "WHERE t.%s < $1::bigint - (%s)::bigint * %lld LIMIT " DELETE_BATCH "))",
             t->table, t->table, t->time_col, t->retention, DAY_NS);
    const char *params[1] = {now};
    long long n = delete_batches(ctl, sql, 1, params);
    if (n < 0) return SX_ERR;
    *deleted += n;
    return SX_OK;
}

/* Storage estimate per project: its rows in each telemetry table times the
 * table's average bytes per row (heap, indexes and TOAST). */
static int storage_estimate(struct sx_ctl *ctl)
{
    static const char sql[] =
        "WITH sizes AS ("
        "  SELECT t, (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "             WHERE c.oid = t::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = t::regclass)) AS bytes"
        "  FROM unnest(ARRAY['spans', 'logs', 'error_events', 'traces', 'metric_points_1m', 'metric_points_1h', "
        "                    'metric_points_5m', 'metric_points_raw']) AS t), "
        "counts AS ("
        "  SELECT 'spans' AS t, project_id, count(*) AS n FROM spans GROUP BY project_id UNION ALL "
        "  SELECT 'logs', project_id, count(*) FROM logs GROUP BY project_id UNION ALL "
        "  SELECT 'error_events', project_id, count(*) FROM error_events GROUP BY project_id UNION ALL "
        "  SELECT 'traces', project_id, count(*) FROM traces GROUP BY project_id UNION ALL "
        "  SELECT 'metric_points_1m', project_id, count(*) FROM metric_points_1m GROUP BY project_id UNION ALL "
        "  SELECT 'metric_points_1h', project_id, count(*) FROM metric_points_1h GROUP BY project_id UNION ALL "
        "  SELECT 'metric_points_5m', project_id, count(*) FROM metric_points_5m GROUP BY project_id UNION ALL "
        "  SELECT 'metric_points_raw', project_id, count(*) FROM metric_points_raw GROUP BY project_id), "
        "totals AS (SELECT t, sum(n) AS n FROM counts GROUP BY t) "
        "SELECT p.id, p.slug, coalesce(sum(c.n * s.bytes / greatest(tt.n, 1)), 0)::bigint "
        "FROM projects p LEFT JOIN counts c ON c.project_id = p.id LEFT JOIN sizes s ON s.t = c.t "
        "LEFT JOIN totals tt ON tt.t = c.t GROUP BY p.id, p.slug ORDER BY p.id";
    PGresult *res = sx_ctl_query(ctl, sql, 0, NULL, "storage estimate");
    if (!res) return SX_ERR;
    redisContext *rc = sx_ctl_redis(ctl);
    int ok = rc ? SX_OK : SX_ERR;
    sx_json_key(&ctl->w, "storageBytes");
    sx_json_obj_open(&ctl->w);
    for (int i = 0; i < PQntuples(res); i++) {
        long long pid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        sx_json_key(&ctl->w, PQgetvalue(res, i, 1));
        sx_json_int(&ctl->w, strtoll(PQgetvalue(res, i, 2), NULL, 10));
        if (!rc || rc->err) continue;
        char key[SX_CONF_STR_MAX];
        sx_redis_pkey(key, sizeof(key), &ctl->cfg, pid, SX_STORAGE_SUFFIX);
        redisReply *r = redisCommand(rc, "SET %s %s", key, PQgetvalue(res, i, 2));
        if (!r || r->type == REDIS_REPLY_ERROR) ok = SX_ERR;
        if (r) freeReplyObject(r);
    }
    sx_json_obj_close(&ctl->w);
    PQclear(res);
    return ok;
}

/* Tables whose rows name a project without a foreign key to it (a deleted
 * project's rows stay there until this removes them); the others follow the
 * project row by ON DELETE CASCADE. metric_series takes its 1m and 1h rows
 * along (cascade). */
static const char *const orphan_tables[] = {"spans", "logs", "error_events", "traces", "red_1m", "red_1h", "edges_1m",
                                            "db_statements_1m", "metric_points_raw", "metric_series"};

/* Deletes, in batches, every row of orphan_tables of projects that were
 * deleted: the ids the projects' identity has handed out that no project has
 * any more. Cheap when there is nothing to do (index probes per id). Writes
 * {"projects":[ids],"deletedRows":N}; SX_ERR on a database error. */
static int maintain_orphans(struct sx_ctl *ctl)
{
    PGresult *ids = sx_ctl_query(ctl,
                                 "SELECT g FROM generate_series(1, COALESCE((SELECT last_value FROM "
                                 "projects_id_seq), 0)) g WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.id = g) "
                                 "ORDER BY g",
                                 0, NULL, "deleted projects");
    if (!ids) return SX_ERR;
    long long total = 0;
    int ok = SX_OK;
    sx_json_key(&ctl->w, "deletedProjects");
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "projects");
    sx_json_arr_open(&ctl->w);
    for (int i = 0; i < PQntuples(ids) && ok == SX_OK; i++) {
        const char *p[1] = {PQgetvalue(ids, i, 0)};
        long long here = 0;
        for (size_t t = 0; t < SX_ARRAY_LEN(orphan_tables) && ok == SX_OK; t++) {
            char sql[320];
            snprintf(sql, sizeof(sql),
                     "DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE project_id = $1::int LIMIT "
                     DELETE_BATCH "))",
                     orphan_tables[t], orphan_tables[t]);
            long long n = delete_batches(ctl, sql, 1, p);
            if (n < 0) ok = SX_ERR;
            else here += n;
        }
        if (here) sx_json_int(&ctl->w, strtoll(p[0], NULL, 10));
        total += here;
    }
    PQclear(ids);
    sx_json_arr_close(&ctl->w);
    sx_json_key(&ctl->w, "deletedRows");
    sx_json_int(&ctl->w, total);
    sx_json_obj_close(&ctl->w);
    return ok;
}

int sx_ctl_maintain(struct sx_ctl *ctl, int argc, char **argv)
{
    SX_UNUSED(argv);
    if (argc != 1) {
        sx_ctl_err("usage: maintain");
        return SX_CTL_USAGE;
    }
    if (!sx_ctl_pg(ctl)) return SX_CTL_FAIL;
    long long now_ns = (long long)sx_now_ns();
    int ok = SX_OK;
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "tables");
    sx_json_obj_open(&ctl->w);
    for (size_t i = 0; i < SX_ARRAY_LEN(part_tables) && ok == SX_OK; i++) {
        long long n = 0;
        sx_json_key(&ctl->w, part_tables[i].table);
        sx_json_obj_open(&ctl->w);
        ok = maintain_partitioned(ctl, &part_tables[i], now_ns, &n);
        sx_json_key(&ctl->w, "deletedRows");
        sx_json_int(&ctl->w, n);
        sx_json_obj_close(&ctl->w);
    }
    for (size_t i = 0; i < SX_ARRAY_LEN(plain_tables) && ok == SX_OK; i++) {
        long long n = 0;
        ok = maintain_plain(ctl, &plain_tables[i], now_ns, &n);
        sx_json_key(&ctl->w, plain_tables[i].table);
        sx_json_obj_open(&ctl->w);
        sx_json_key(&ctl->w, "deletedRows");
        sx_json_int(&ctl->w, n);
        sx_json_obj_close(&ctl->w);
    }
    if (ok == SX_OK) {
        /* Raw points have their own setting (seconds); the ledger its 7 days. */
        char sql[300], cutoff[24];
        snprintf(cutoff, sizeof(cutoff), "%lld", now_ns - ctl->cfg.metrics_raw_retention_s * 1000000000LL);
        const char *p[1] = {cutoff};
        long long n = delete_batches(ctl,
                                     "DELETE FROM metric_points_raw WHERE ctid = ANY (ARRAY(SELECT ctid FROM "
                                     "metric_points_raw WHERE time_ns < $1::bigint LIMIT " DELETE_BATCH "))",
                                     1, p);
        sx_json_key(&ctl->w, "metric_points_raw");
        sx_json_obj_open(&ctl->w);
        sx_json_key(&ctl->w, "deletedRows");
        sx_json_int(&ctl->w, n < 0 ? 0 : n);
        sx_json_obj_close(&ctl->w);
        snprintf(sql, sizeof(sql),
                 "DELETE FROM persist_ledger WHERE ctid = ANY (ARRAY(SELECT ctid FROM persist_ledger "
                 "WHERE applied_at < now() - interval '7 days' LIMIT " DELETE_BATCH "))");
        long long m = n < 0 ? -1 : delete_batches(ctl, sql, 0, NULL);
        sx_json_key(&ctl->w, "persist_ledger");
        sx_json_obj_open(&ctl->w);
        sx_json_key(&ctl->w, "deletedRows");
        sx_json_int(&ctl->w, m < 0 ? 0 : m);
        sx_json_obj_close(&ctl->w);
        if (n < 0 || m < 0) ok = SX_ERR;
    }
    sx_json_obj_close(&ctl->w);
    if (ok == SX_OK && maintain_orphans(ctl) != SX_OK) ok = SX_ERR;
    if (ok == SX_OK && storage_estimate(ctl) != SX_OK) ok = SX_ERR;
    sx_json_obj_close(&ctl->w);
    return ok == SX_OK ? SX_CTL_OK : SX_CTL_FAIL;
}
