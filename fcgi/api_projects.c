/* api_projects.c: sextant-api's project administration: projects (list,
 * create, settings, delete), members and roles, ingest keys, usage counters
 * and the audit log.
 *
 * Who may do what is checked in api.c (required_role) before the
 * transaction; the finer rules live here: only an owner (or an instance
 * admin) adds, changes or removes an owner, and the last owner stays (409).
 * Changes run as sextant_project_writer (sql/015_project_api.sql) under RLS
 * limited to the request's project, and write their audit_log row in the
 * same transaction: a failed audit insert fails the request and rolls the
 * change back. Redis caches that ingest trusts (a project's settings, its
 * keys' lookups) are deleted by api.c after COMMIT (r->drop_*), so a
 * suspended project or a revoked key stops ingest at once.
 *
 * Creating a project cannot be limited to existing ids: POST /projects runs
 * as the login role and calls sextant_create_project(), a SECURITY DEFINER
 * function that inserts the project and the caller's owner membership only.
 *
 * Deleting a project removes the row; ON DELETE CASCADE takes its keys,
 * tokens, members, issues and the rest that has a foreign key. Telemetry in
 * the partitioned tables without foreign keys (spans, traces, logs,
 * error_events' partitions, metric tables, rollups) is left behind,
 * unreachable (no project id resolves to it); removing it is a follow-up
 * for `sextantctl maintain` (README). */
#include "api_int.h"

#include "keys.h"
#include "log.h"
#include "pg.h"
#include "projset.h"
#include "redis.h"
#include "usage.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define NAME_MAX_LEN 200
#define KEY_NAME_MAX 100
#define KEY_PREFIX_LEN 12
#define DETAILS_MAX ((size_t)256 << 10)
#define AUDIT_DEFAULT_LIMIT 50
#define AUDIT_MAX_LIMIT 500

#define PROJECT_COLS                                                                                                   \
    "id, slug, name, status, retention_traces_days, retention_logs_days, retention_metrics_days, sampling_rate, "     \
    "slow_trace_ms, rate_spans_per_s, rate_logs_per_s, rate_metric_points_per_s, quota_spans_daily, "                 \
    "quota_logs_daily, quota_metric_points_daily, storage_quota_bytes, attribute_rules::text, redact_secrets, "       \
    "settings_version"

/* ---- helpers ------------------------------------------------------------------- */

static void int_or_null(struct sx_json *w, const PGresult *res, int i, int col)
{
    if (PQgetisnull(res, i, col)) sx_json_null(w);
    else sx_json_int(w, strtoll(PQgetvalue(res, i, col), NULL, 10));
}

/* Writes row i of a PROJECT_COLS result as the project object (README). */
static void write_project(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    sx_json_key(w, "id");
    sx_json_int(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
    sx_json_key(w, "slug");
    sx_json_strz(w, PQgetvalue(res, i, 1));
    sx_json_key(w, "name");
    sx_json_strz(w, PQgetvalue(res, i, 2));
    sx_json_key(w, "status");
    sx_json_strz(w, PQgetvalue(res, i, 3));
    sx_json_key(w, "retentionDays");
    sx_json_obj_open(w);
    static const char *const ret[] = {"traces", "logs", "metrics"};
    for (int k = 0; k < 3; k++) {
        sx_json_key(w, ret[k]);
        int_or_null(w, res, i, 4 + k);
    }
    sx_json_obj_close(w);
    sx_json_key(w, "samplingRate");
    sx_json_double(w, strtod(PQgetvalue(res, i, 7), NULL));
    sx_json_key(w, "slowTraceMs");
    int_or_null(w, res, i, 8);
    static const char *const rate[] = {"spansPerSecond", "logsPerSecond", "metricPointsPerSecond"};
    static const char *const quota[] = {"spans", "logs", "metricPoints"};
    sx_json_key(w, "rateLimits");
    sx_json_obj_open(w);
    for (int k = 0; k < 3; k++) {
        sx_json_key(w, rate[k]);
        int_or_null(w, res, i, 9 + k);
    }
    sx_json_obj_close(w);
    sx_json_key(w, "dailyQuota");
    sx_json_obj_open(w);
    for (int k = 0; k < 3; k++) {
        sx_json_key(w, quota[k]);
        int_or_null(w, res, i, 12 + k);
    }
    sx_json_obj_close(w);
    sx_json_key(w, "storageQuotaBytes");
    int_or_null(w, res, i, 15);
    sx_json_key(w, "attributeRules");
    sx_api_col_json(w, res, i, 16, "[]");
    sx_json_key(w, "redactSecrets");
    sx_json_bool(w, PQgetvalue(res, i, 17)[0] == 't');
    sx_json_key(w, "settingsVersion");
    sx_json_int(w, strtoll(PQgetvalue(res, i, 18), NULL, 10));
    sx_json_obj_close(w);
}

/* Starts r->out as a JSON object. */
static void reply_open(struct sx_api_req *r, struct sx_json *w)
{
    sx_buf_reset(r->out);
    sx_json_init(w, r->out);
    sx_json_obj_open(w);
}

/* A small JSON object for audit details, built in the arena: *_open, then
 * sx_json calls on d->w, then details_text. */
struct details {
    struct sx_buf b;
    struct sx_json w;
};

static void details_open(struct details *d)
{
    sx_buf_init(&d->b, DETAILS_MAX);
    sx_json_init(&d->w, &d->b);
    sx_json_obj_open(&d->w);
}

/* Closes the object and returns an arena copy of its text ("{}" when it
 * did not fit); frees the buffer. */
static const char *details_text(struct sx_api_req *r, struct details *d)
{
    sx_json_obj_close(&d->w);
    const char *t = d->w.err ? NULL : sx_arena_strndup(r->fr->arena, (const char *)d->b.data, d->b.len);
    sx_buf_term(&d->b);
    return t ? t : "{}";
}

/* Audits inside the change's transaction: SX_ERR with a 500 set when the
 * row could not be written (end_txn then rolls the change back). */
static int audit(struct sx_api_req *r, const char *action, const char *target, const char *details)
{
    if (sx_api_audit(r, action, target, r->project_id, details, NULL) != SX_OK)
        return sx_api_fail(r, 500, "internal", "could not write the audit log");
    return SX_OK;
}

/* Remembers ingest key hashes (hex) of rows res[col] for api.c to drop
 * from Redis after COMMIT. */
static int keep_key_hashes(struct sx_api_req *r, const PGresult *res, int col)
{
    int n = PQntuples(res);
    if (n == 0) return SX_OK;
    const char **k = sx_arena_alloc(r->fr->arena, (size_t)(n + (int)r->ndrop_keys) * sizeof(*k));
    if (!k) return sx_api_fail(r, 500, "internal", "out of memory");
    for (size_t i = 0; i < r->ndrop_keys; i++) k[i] = r->drop_keys[i];
    for (int i = 0; i < n; i++) {
        k[r->ndrop_keys + (size_t)i] = sx_arena_strndup(r->fr->arena, PQgetvalue(res, i, col), (size_t)PQgetlength(res, i, col));
        if (!k[r->ndrop_keys + (size_t)i]) return sx_api_fail(r, 500, "internal", "out of memory");
    }
    r->drop_keys = k;
    r->ndrop_keys += (size_t)n;
    return SX_OK;
}

/* Every key of the project, so that their cached lookups (which carry the
 * project's state) go too. */
static int keep_project_keys(struct sx_api_req *r)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[1] = {pid};
    PGresult *res = sx_api_exec(r, "SELECT encode(key_hash, 'hex') FROM ingest_keys WHERE project_id = $1::int", 1,
                                params, "SELECT ingest_keys");
    if (!res) return SX_ERR;
    int rc = keep_key_hashes(r, res, 0);
    PQclear(res);
    return rc;
}

void sx_api_drop_caches(struct sx_api_req *r)
{
    char key[SX_CONF_STR_MAX];
    if (sx_redis_ensure(r->redisp, r->cfg, 500, 1000) != SX_OK) {
        sx_rwarn(r->reqid, "redis unavailable: ingest caches not cleared (they expire by their TTL)");
        return;
    }
    redisContext *c = *r->redisp;
    size_t sent = 0;
    if (r->drop_settings_pid) {
        sx_redis_pkey(key, sizeof(key), r->cfg, r->drop_settings_pid, SX_SETTINGS_SUFFIX);
        redisAppendCommand(c, "DEL %s", key);
        sent++;
    }
    for (size_t i = 0; i < r->ndrop_keys; i++) {
        char suffix[80];
        snprintf(suffix, sizeof(suffix), "key:%s", r->drop_keys[i]);
        sx_redis_key(key, sizeof(key), r->cfg, suffix);
        redisAppendCommand(c, "DEL %s", key);
        sent++;
    }
    int dead = 0;
    for (size_t i = 0; i < sent; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
            sx_redis_warn(c, "DEL ingest cache", NULL);
            dead = 1;
            break;
        }
        if (rep->type != REDIS_REPLY_INTEGER) sx_redis_warn(c, "DEL ingest cache", rep);
        freeReplyObject(rep);
    }
    if (dead) {
        redisFree(c);
        *r->redisp = NULL;
    }
}

static int need_user(struct sx_api_req *r)
{
    if (r->user_id <= 0) return sx_api_fail(r, 403, "forbidden", "a project token cannot do this: use a user's session or personal token");
    return SX_OK;
}

static int slug_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'))) return 0;
    /* All digits would read as a project id in the URLs. */
    if (strspn(s, "0123456789") == n) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* A string member (absent: *out NULL); SX_ERR with a 400 set. */
static int body_string(struct sx_api_req *r, const struct sx_jv *body, const char *key, size_t max, const char **out)
{
    const struct sx_jv *v = sx_jv_get(body, key);
    *out = NULL;
    if (!v || v->type == SX_JV_NULL) return SX_OK;
    if (v->type != SX_JV_STRING || v->len > max || strlen(v->str) != v->len)
        return sx_api_fail(r, 400, "bad_request", "\"%s\" must be a string of at most %zu bytes", key, max);
    *out = v->str;
    return SX_OK;
}

/* Checks that body is an object whose members are all in keys (NULL-ended). */
static int body_only(struct sx_api_req *r, const struct sx_jv *body, const char *const *keys)
{
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    for (const struct sx_jv *m = body->first; m; m = m->next) {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], m->key) != 0) k++;
        if (!keys[k]) return sx_api_fail(r, 400, "bad_request", "unknown member \"%.64s\"", m->key);
    }
    return SX_OK;
}

/* ---- projects ------------------------------------------------------------------ */

int sx_api_projects_list(struct sx_api_req *r)
{
    char uid[16], tpid[16];
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    snprintf(tpid, sizeof(tpid), "%d", r->token_project_id);
    const char *params[2] = {uid, tpid};
    const char *sql;
    if (r->user_id <= 0) /* a project token: its own project, as a member */
        sql = "SELECT id, slug, name, status, 'member' FROM projects WHERE id = $2::int AND $1::int = 0";
    else if (r->is_admin)
        sql = "SELECT p.id, p.slug, p.name, p.status, COALESCE(m.role, 'instance-admin') FROM projects p "
              "LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $1::int "
              "WHERE $2::int IS NOT NULL ORDER BY p.id";
    else
        sql = "SELECT p.id, p.slug, p.name, p.status, m.role FROM projects p "
              "JOIN project_members m ON m.project_id = p.id AND m.user_id = $1::int "
              "WHERE $2::int IS NOT NULL ORDER BY p.id";
    PGresult *res = sx_api_exec(r, sql, 2, params, "SELECT projects");
    if (!res) return SX_ERR;
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "projects");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "id");
        sx_json_int(&w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        sx_json_key(&w, "slug");
        sx_json_strz(&w, PQgetvalue(res, i, 1));
        sx_json_key(&w, "name");
        sx_json_strz(&w, PQgetvalue(res, i, 2));
        sx_json_key(&w, "status");
        sx_json_strz(&w, PQgetvalue(res, i, 3));
        sx_json_key(&w, "role");
        sx_json_strz(&w, PQgetvalue(res, i, 4));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

/* Runs sql (no parameters) as a transaction control statement. */
static int txn_cmd(struct sx_api_req *r, const char *sql)
{
    PGresult *res = sx_api_exec(r, sql, 0, NULL, sql);
    if (!res) return SX_ERR;
    PQclear(res);
    return SX_OK;
}

int sx_api_project_create(struct sx_api_req *r)
{
    static const char *const keys[] = {"name", "slug", NULL};
    struct sx_jv *body;
    const char *name, *slug;
    char uid[16];
    if (need_user(r) != SX_OK) return SX_ERR;
    if (r->cfg->projects_create_admin_only && !r->is_admin)
        return sx_api_fail(r, 403, "forbidden", "only instance admins may create projects here");
    if (sx_api_body_json(r, &body) != SX_OK || body_only(r, body, keys) != SX_OK) return SX_ERR;
    if (body_string(r, body, "name", NAME_MAX_LEN, &name) != SX_OK || body_string(r, body, "slug", 63, &slug) != SX_OK)
        return SX_ERR;
    if (!name || !*name) return sx_api_fail(r, 400, "bad_request", "\"name\" is required (1 to %d bytes)", NAME_MAX_LEN);
    if (slug && !slug_ok(slug))
        return sx_api_fail(r, 400, "bad_request", "\"slug\" must match [a-z0-9][a-z0-9-]{0,62} and not be all digits");
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    const char *params[3] = {name, slug, uid};
    if (txn_cmd(r, "BEGIN") != SX_OK) return SX_ERR;
    PGresult *res = sx_api_exec(r, "SELECT sextant_create_project($1, $2, $3::int)", 3, params, "sextant_create_project");
    if (!res) goto fail;
    if (PQgetisnull(res, 0, 0)) {
        PQclear(res);
        sx_api_fail(r, 409, "conflict", "the slug \"%s\" is taken", slug ? slug : "");
        goto fail;
    }
    r->project_id = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *p1[1] = {pid};
    res = sx_api_exec(r, "SELECT " PROJECT_COLS " FROM projects WHERE id = $1::int", 1, p1, "SELECT projects");
    if (!res) goto fail;
    struct details d;
    details_open(&d);
    sx_json_key(&d.w, "name");
    sx_json_strz(&d.w, name);
    sx_json_key(&d.w, "slug");
    sx_json_strz(&d.w, PQgetvalue(res, 0, 1));
    if (audit(r, "project.create", PQgetvalue(res, 0, 1), details_text(r, &d)) != SX_OK ||
        txn_cmd(r, "COMMIT") != SX_OK) {
        PQclear(res);
        goto fail;
    }
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "project");
    write_project(&w, res, 0);
    sx_json_key(&w, "role");
    sx_json_strz(&w, "owner");
    PQclear(res);
    int rc = sx_api_reply(r, &w);
    if (rc == SX_OK) r->status = 201;
    return rc;
fail:
    if (PQstatus(*r->pgp) == CONNECTION_OK && PQtransactionStatus(*r->pgp) != PQTRANS_IDLE)
        sx_pg_exec(*r->pgp, "ROLLBACK", "ROLLBACK");
    return SX_ERR;
}

/* SELECT PROJECT_COLS of the request's project; NULL with the error set. */
static PGresult *project_row(struct sx_api_req *r)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[1] = {pid};
    PGresult *res = sx_api_exec(r, "SELECT " PROJECT_COLS " FROM projects WHERE id = $1::int", 1, params,
                                "SELECT projects");
    if (res && PQntuples(res) != 1) {
        PQclear(res);
        sx_api_fail(r, 404, "not_found", "project not found");
        return NULL;
    }
    return res;
}

int sx_api_project_get(struct sx_api_req *r)
{
    PGresult *res = project_row(r);
    if (!res) return SX_ERR;
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    write_project(&w, res, 0);
    PQclear(res);
    if (w.err) return sx_api_fail(r, 500, "internal", "response too large");
    r->status = 200;
    return SX_OK;
}

/* The text form sx_projset_check reads of a JSON value for setting s;
 * NULL with a 400 set when its type is wrong. */
static const char *setting_text(struct sx_api_req *r, const struct sx_projset *s, const struct sx_jv *v,
                                const char *path)
{
    switch (s->kind) {
    case 'n':
    case 'q':
        if (v->type == SX_JV_NULL) return "none";
        /* fall through */
    case 'd':
    case 'i':
    case 'r':
        if (v->type == SX_JV_NUMBER) return v->str;
        break;
    case 's':
        if (v->type == SX_JV_STRING) return v->str;
        break;
    case 'b':
        if (v->type == SX_JV_BOOL) return v->boolean ? "on" : "off";
        break;
    case 'j':
        if (v->type == SX_JV_ARRAY) {
            struct sx_buf b;
            struct sx_json w;
            sx_buf_init(&b, DETAILS_MAX);
            sx_json_init(&w, &b);
            sx_jv_write(&w, v);
            const char *t = w.err ? NULL : sx_arena_strndup(r->fr->arena, (const char *)b.data, b.len);
            sx_buf_term(&b);
            if (!t) sx_api_fail(r, 400, "bad_request", "\"%s\" is too large", path);
            return t;
        }
        break;
    default: break;
    }
    sx_api_fail(r, 400, "bad_request", "\"%s\" has the wrong type%s", path,
                s->kind == 'n' || s->kind == 'q' ? " (a number, or null for no limit)" : "");
    return NULL;
}

/* Finds the setting of member m (of the group object, or top level). */
static const struct sx_projset *setting_of(const char *group, const char *key)
{
    for (size_t k = 0; k < SX_PROJSET_COUNT; k++) {
        const struct sx_projset *s = &sx_projset_fields[k];
        if (((!group && !s->group) || (group && s->group && strcmp(group, s->group) == 0)) && strcmp(key, s->key) == 0)
            return s;
    }
    return NULL;
}

int sx_api_project_put(struct sx_api_req *r)
{
    struct sx_jv *body;
    const char *vals[SX_PROJSET_COUNT];
    int given[SX_PROJSET_COUNT] = {0};
    const char *name = NULL;
    char err[400];
    if (sx_api_body_json(r, &body) != SX_OK) return SX_ERR;
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    for (const struct sx_jv *m = body->first; m; m = m->next) {
        if (strcmp(m->key, "name") == 0) {
            if (body_string(r, body, "name", NAME_MAX_LEN, &name) != SX_OK) return SX_ERR;
            if (!name || !*name) return sx_api_fail(r, 400, "bad_request", "\"name\" must be 1 to %d bytes", NAME_MAX_LEN);
            continue;
        }
        int grouped = strcmp(m->key, "retentionDays") == 0 || strcmp(m->key, "rateLimits") == 0 ||
                      strcmp(m->key, "dailyQuota") == 0;
        if (grouped && m->type != SX_JV_OBJECT)
            return sx_api_fail(r, 400, "bad_request", "\"%s\" must be an object", m->key);
        const struct sx_jv *first = grouped ? m->first : m, *stop = grouped ? NULL : m->next;
        for (const struct sx_jv *v = first; v && v != stop; v = v->next) {
            const struct sx_projset *s = setting_of(grouped ? m->key : NULL, v->key);
            if (!s) return sx_api_fail(r, 400, "bad_request", "unknown member \"%.64s\"", v->key);
            char path[96];
            snprintf(path, sizeof(path), "%s%s%s", grouped ? m->key : "", grouped ? "." : "", v->key);
            const char *text = setting_text(r, s, v, path);
            if (!text) return SX_ERR;
            size_t k = (size_t)(s - sx_projset_fields);
            if (sx_projset_check(s, text, &vals[k], err, sizeof(err)) != SX_OK)
                return sx_api_fail(r, 400, "bad_request", "\"%s\": %s", path, err);
            given[k] = 1;
        }
    }

    /* UPDATE projects SET col = $n::type ..., with the audit details. */
    struct sx_api_qb b;
    struct details d;
    char pid[16];
    int any = name != NULL;
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    sx_api_qb_init(&b, r, 8192);
    details_open(&d);
    int berr = sx_buf_puts(&b.sql, "UPDATE projects SET ") != SX_OK;
    int n1 = sx_api_qb_param(&b, pid);
    if (name) {
        int n = sx_api_qb_param(&b, name);
        berr |= sx_buf_printf(&b.sql, "name = $%d, ", n) != SX_OK;
        sx_json_key(&d.w, "name");
        sx_json_strz(&d.w, name);
    }
    for (size_t k = 0; k < SX_PROJSET_COUNT; k++) {
        if (!given[k]) continue;
        const struct sx_projset *s = &sx_projset_fields[k];
        any = 1;
        if (vals[k]) {
            int n = sx_api_qb_param(&b, vals[k]);
            berr |= n == 0 || sx_buf_printf(&b.sql, "%s = $%d::%s, ", s->column, n, s->cast) != SX_OK;
        } else {
            berr |= sx_buf_printf(&b.sql, "%s = NULL, ", s->column) != SX_OK;
        }
        sx_json_key(&d.w, s->json);
        if (!vals[k]) sx_json_null(&d.w);
        else if (s->kind == 'j') sx_json_raw(&d.w, vals[k], strlen(vals[k]));
        else sx_json_strz(&d.w, vals[k]);
    }
    const char *det = details_text(r, &d);
    if (!any) {
        sx_api_qb_term(&b);
        return sx_api_fail(r, 400, "bad_request", "nothing to change");
    }
    berr |= sx_buf_printf(&b.sql, "settings_version = settings_version + 1, updated_at = now() WHERE id = $%d::int "
                                  "RETURNING " PROJECT_COLS, n1) != SX_OK;
    if (berr || n1 == 0) {
        sx_api_qb_term(&b);
        return sx_api_fail(r, 500, "internal", "internal error");
    }
    PGresult *res = sx_api_exec(r, (const char *)b.sql.data, b.n, b.params, "UPDATE projects");
    sx_api_qb_term(&b);
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return sx_api_fail(r, 404, "not_found", "project not found");
    }
    if (audit(r, "project.settings", r->project_slug, det) != SX_OK || keep_project_keys(r) != SX_OK) {
        PQclear(res);
        return SX_ERR;
    }
    r->drop_settings_pid = r->project_id;
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    write_project(&w, res, 0);
    PQclear(res);
    if (w.err) return sx_api_fail(r, 500, "internal", "response too large");
    r->status = 200;
    return SX_OK;
}

int sx_api_project_delete(struct sx_api_req *r)
{
    char pid[16], det[64];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    snprintf(det, sizeof(det), "{\"projectId\":%d}", r->project_id);
    /* The audit row first: it must reference the project while it exists
     * (the DELETE then sets its project_id to NULL; target keeps the slug). */
    if (keep_project_keys(r) != SX_OK || audit(r, "project.delete", r->project_slug, det) != SX_OK) return SX_ERR;
    const char *params[1] = {pid};
    PGresult *res = sx_api_exec(r, "DELETE FROM projects WHERE id = $1::int RETURNING id", 1, params, "DELETE projects");
    if (!res) return SX_ERR;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) return sx_api_fail(r, 404, "not_found", "project not found");
    r->drop_settings_pid = r->project_id;
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "deleted");
    sx_json_bool(&w, true);
    sx_json_key(&w, "id");
    sx_json_int(&w, r->project_id);
    sx_json_key(&w, "slug");
    sx_json_strz(&w, r->project_slug);
    return sx_api_reply(r, &w);
}

/* ---- members ------------------------------------------------------------------- */

#define MEMBER_COLS "m.user_id, u.email, u.name, m.role, " RFC3339("m.created_at")

static void write_member(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    sx_json_key(w, "userId");
    sx_json_int(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
    sx_json_key(w, "email");
    sx_json_strz(w, PQgetvalue(res, i, 1));
    sx_json_key(w, "name");
    sx_json_strz(w, sx_api_col_str(res, i, 2));
    sx_json_key(w, "role");
    sx_json_strz(w, PQgetvalue(res, i, 3));
    sx_json_key(w, "createdAt");
    sx_json_strz(w, PQgetvalue(res, i, 4));
    sx_json_obj_close(w);
}

int sx_api_members_list(struct sx_api_req *r)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[1] = {pid};
    PGresult *res = sx_api_exec(r,
                                "SELECT " MEMBER_COLS " FROM project_members m JOIN users u ON u.id = m.user_id "
                                "WHERE m.project_id = $1::int ORDER BY m.user_id",
                                1, params, "SELECT project_members");
    if (!res) return SX_ERR;
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "members");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) write_member(&w, res, i);
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

/* The number of owners of the request's project, their rows locked so that
 * two concurrent demotions cannot both pass the last-owner check; -1 with
 * the error set. */
static int owner_count(struct sx_api_req *r)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[1] = {pid};
    PGresult *res = sx_api_exec(r,
                                "SELECT user_id FROM project_members WHERE project_id = $1::int AND role = 'owner' "
                                "FOR UPDATE",
                                1, params, "SELECT owners");
    if (!res) return -1;
    int n = PQntuples(res);
    PQclear(res);
    return n;
}

/* The member's current role ("" when not a member); NULL with the error set. */
static const char *member_role(struct sx_api_req *r, const char *uid)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[2] = {pid, uid};
    PGresult *res = sx_api_exec(r, "SELECT role FROM project_members WHERE project_id = $1::int AND user_id = $2::int "
                                   "FOR UPDATE",
                                2, params, "SELECT project_members");
    if (!res) return NULL;
    const char *role = PQntuples(res) == 1 ? sx_arena_strndup(r->fr->arena, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0)) : "";
    PQclear(res);
    if (!role) sx_api_fail(r, 500, "internal", "out of memory");
    return role;
}

int sx_api_member_put(struct sx_api_req *r)
{
    static const char *const keys[] = {"email", "role", NULL};
    struct sx_jv *body;
    const char *email, *role;
    if (sx_api_body_json(r, &body) != SX_OK || body_only(r, body, keys) != SX_OK) return SX_ERR;
    if (body_string(r, body, "email", 254, &email) != SX_OK || body_string(r, body, "role", 16, &role) != SX_OK)
        return SX_ERR;
    if (!email || !*email) return sx_api_fail(r, 400, "bad_request", "\"email\" is required");
    if (!role || (strcmp(role, "owner") != 0 && strcmp(role, "admin") != 0 && strcmp(role, "member") != 0 &&
                  strcmp(role, "viewer") != 0))
        return sx_api_fail(r, 400, "bad_request", "\"role\" must be owner, admin, member or viewer");
    int is_owner = r->role >= SX_ROLE_OWNER;
    if (strcmp(role, "owner") == 0 && !is_owner)
        return sx_api_fail(r, 403, "forbidden", "only an owner may make owners");
    const char *params[1] = {email};
    PGresult *res = sx_api_exec(r, "SELECT id FROM users WHERE lower(email) = lower($1)", 1, params, "SELECT users");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return sx_api_fail(r, 404, "user_not_found", "no user with this email: create it first (sextantctl user create)");
    }
    char uid[16];
    snprintf(uid, sizeof(uid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *before = member_role(r, uid);
    if (!before) return SX_ERR;
    if (strcmp(before, "owner") == 0 && strcmp(role, "owner") != 0) {
        if (!is_owner) return sx_api_fail(r, 403, "forbidden", "only an owner may change an owner's role");
        int owners = owner_count(r);
        if (owners < 0) return SX_ERR;
        if (owners <= 1) return sx_api_fail(r, 409, "last_owner", "the project's last owner cannot be demoted");
    }
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *p2[3] = {pid, uid, role};
    res = sx_api_exec(r,
                      "INSERT INTO project_members (project_id, user_id, role) VALUES ($1::int, $2::int, $3) "
                      "ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role",
                      3, p2, "INSERT project_members");
    if (!res) return SX_ERR;
    PQclear(res);
    res = sx_api_exec(r,
                      "SELECT " MEMBER_COLS " FROM project_members m JOIN users u ON u.id = m.user_id "
                      "WHERE m.project_id = $1::int AND m.user_id = $2::int",
                      2, p2, "SELECT project_members");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return sx_api_fail(r, 500, "internal", "internal error");
    }
    struct details d;
    details_open(&d);
    sx_json_key(&d.w, "userId");
    sx_json_int(&d.w, atoi(uid));
    sx_json_key(&d.w, "email");
    sx_json_strz(&d.w, PQgetvalue(res, 0, 1));
    sx_json_key(&d.w, "role");
    sx_json_strz(&d.w, role);
    sx_json_key(&d.w, "previousRole");
    sx_json_strz(&d.w, *before ? before : NULL);
    if (audit(r, *before ? "member.update" : "member.add", PQgetvalue(res, 0, 1), details_text(r, &d)) != SX_OK) {
        PQclear(res);
        return SX_ERR;
    }
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "member");
    write_member(&w, res, 0);
    PQclear(res);
    int rc = sx_api_reply(r, &w);
    if (rc == SX_OK && !*before) r->status = 201;
    return rc;
}

int sx_api_member_delete(struct sx_api_req *r, const char *user_id)
{
    long long id;
    char uid[16], det[96];
    if (sx_api_parse_int(user_id, 1, INT_MAX, &id) != SX_OK) return sx_api_fail(r, 404, "not_found", "no such member");
    snprintf(uid, sizeof(uid), "%lld", id);
    const char *before = member_role(r, uid);
    if (!before) return SX_ERR;
    if (!*before) return sx_api_fail(r, 404, "not_found", "no such member");
    if (strcmp(before, "owner") == 0) {
        if (r->role < SX_ROLE_OWNER) return sx_api_fail(r, 403, "forbidden", "only an owner may remove an owner");
        int owners = owner_count(r);
        if (owners < 0) return SX_ERR;
        if (owners <= 1) return sx_api_fail(r, 409, "last_owner", "the project's last owner cannot be removed");
    }
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[2] = {pid, uid};
    PGresult *res = sx_api_exec(r,
                                "DELETE FROM project_members m USING users u WHERE m.project_id = $1::int "
                                "AND m.user_id = $2::int AND u.id = m.user_id RETURNING u.email",
                                2, params, "DELETE project_members");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return sx_api_fail(r, 404, "not_found", "no such member");
    }
    snprintf(det, sizeof(det), "{\"userId\":%lld,\"role\":\"%s\"}", id, before);
    if (audit(r, "member.remove", PQgetvalue(res, 0, 0), det) != SX_OK) {
        PQclear(res);
        return SX_ERR;
    }
    PQclear(res);
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "removed");
    sx_json_bool(&w, true);
    sx_json_key(&w, "userId");
    sx_json_int(&w, id);
    return sx_api_reply(r, &w);
}

/* ---- ingest keys --------------------------------------------------------------- */

#define KEY_COLS                                                                                                       \
    "id, name, key_prefix, " RFC3339("created_at") ", " RFC3339("last_used_at") ", " RFC3339("revoked_at")

static void write_key(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    sx_json_key(w, "id");
    sx_json_int(w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
    sx_json_key(w, "name");
    sx_json_strz(w, sx_api_col_str(res, i, 1));
    sx_json_key(w, "prefix");
    sx_json_strz(w, PQgetvalue(res, i, 2));
    static const char *const times[] = {"createdAt", "lastUsedAt", "revokedAt"};
    for (int k = 0; k < 3; k++) {
        sx_json_key(w, times[k]);
        sx_json_strz(w, sx_api_col_str(res, i, 3 + k));
    }
    sx_json_obj_close(w);
}

int sx_api_keys_list(struct sx_api_req *r)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[1] = {pid};
    PGresult *res = sx_api_exec(r, "SELECT " KEY_COLS " FROM ingest_keys WHERE project_id = $1::int ORDER BY id", 1,
                                params, "SELECT ingest_keys");
    if (!res) return SX_ERR;
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "keys");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) write_key(&w, res, i);
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

int sx_api_key_create(struct sx_api_req *r)
{
    static const char *const keys[] = {"name", NULL};
    struct sx_jv *body;
    const char *name;
    char key[SX_KEY_MAX], lit[2 * SX_SHA256_LEN + 3], prefix[KEY_PREFIX_LEN + 1], pid[16];
    uint8_t h[SX_SHA256_LEN];
    if (sx_api_body_json(r, &body) != SX_OK || body_only(r, body, keys) != SX_OK) return SX_ERR;
    if (body_string(r, body, "name", KEY_NAME_MAX, &name) != SX_OK) return SX_ERR;
    if (!name || !*name) return sx_api_fail(r, 400, "bad_request", "\"name\" is required (1 to %d bytes)", KEY_NAME_MAX);
    if (sx_key_generate("sxk", key, sizeof(key)) != SX_OK) return sx_api_fail(r, 500, "internal", "no randomness");
    sx_sha256(key, strlen(key), h);
    lit[0] = '\\';
    lit[1] = 'x';
    sx_hex_encode(h, sizeof(h), lit + 2);
    snprintf(prefix, sizeof(prefix), "%.*s", KEY_PREFIX_LEN, key);
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    const char *params[4] = {pid, lit, prefix, name};
    PGresult *res = sx_api_exec(r,
                                "INSERT INTO ingest_keys (project_id, key_hash, key_prefix, name) "
                                "VALUES ($1::int, $2::bytea, $3, $4) RETURNING " KEY_COLS,
                                4, params, "INSERT ingest_keys");
    if (!res) return SX_ERR;
    struct details d;
    details_open(&d);
    sx_json_key(&d.w, "keyId");
    sx_json_int(&d.w, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    sx_json_key(&d.w, "name");
    sx_json_strz(&d.w, name);
    sx_json_key(&d.w, "prefix");
    sx_json_strz(&d.w, prefix);
    if (audit(r, "key.create", r->project_slug, details_text(r, &d)) != SX_OK) {
        PQclear(res);
        return SX_ERR;
    }
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "key");
    sx_json_strz(&w, key);
    sx_json_key(&w, "info");
    write_key(&w, res, 0);
    PQclear(res);
    int rc = sx_api_reply(r, &w);
    if (rc == SX_OK) r->status = 201;
    return rc;
}

int sx_api_key_revoke(struct sx_api_req *r, const char *key_id)
{
    long long id;
    char pid[16], kid[16], det[64];
    if (sx_api_parse_int(key_id, 1, INT_MAX, &id) != SX_OK) return sx_api_fail(r, 404, "not_found", "no such key");
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    snprintf(kid, sizeof(kid), "%lld", id);
    const char *params[2] = {pid, kid};
    PGresult *res = sx_api_exec(r,
                                "UPDATE ingest_keys SET revoked_at = COALESCE(revoked_at, now()) "
                                "WHERE project_id = $1::int AND id = $2::int RETURNING " KEY_COLS
                                ", encode(key_hash, 'hex')",
                                2, params, "UPDATE ingest_keys");
    if (!res) return SX_ERR;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return sx_api_fail(r, 404, "not_found", "no such key");
    }
    snprintf(det, sizeof(det), "{\"keyId\":%lld}", id);
    if (keep_key_hashes(r, res, 6) != SX_OK || audit(r, "key.revoke", r->project_slug, det) != SX_OK) {
        PQclear(res);
        return SX_ERR;
    }
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "key");
    write_key(&w, res, 0);
    PQclear(res);
    return sx_api_reply(r, &w);
}

/* ---- usage --------------------------------------------------------------------- */

int sx_api_usage(struct sx_api_req *r)
{
    static const char *const counters[] = {SX_USAGE_COUNTERS};
    static const char *const signals[] = {"spans", "logs", "metrics"};
    long long days = 7;
    int bad = 0;
    const char *dp = sx_api_param1(r, "days", &bad);
    if (bad) return SX_ERR;
    if (dp && sx_api_parse_int(dp, 1, r->cfg->usage_days > 0 ? r->cfg->usage_days : 40, &days) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "days must be from 1 to %lld", r->cfg->usage_days);
    if (sx_redis_ensure(r->redisp, r->cfg, 500, 1000) != SX_OK)
        return sx_api_fail(r, 503, "unavailable", "usage counters are unavailable, retry later");
    redisContext *c = *r->redisp;
    int64_t now = (int64_t)time(NULL);
    for (long long d = 0; d < days; d++) {
        char key[SX_CONF_STR_MAX];
        sx_usage_key(key, sizeof(key), r->cfg, r->project_id, now - d * 86400);
        redisAppendCommand(c, "HGETALL %s", key);
    }
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "days");
    sx_json_arr_open(&w);
    int failed = 0;
    for (long long d = 0; d < days; d++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
            sx_redis_warn(c, "HGETALL usage", NULL);
            redisFree(c);
            *r->redisp = NULL;
            return sx_api_fail(r, 503, "unavailable", "usage counters are unavailable, retry later");
        }
        if (rep->type != REDIS_REPLY_ARRAY) {
            sx_redis_warn(c, "HGETALL usage", rep);
            freeReplyObject(rep);
            failed = 1;
            continue;
        }
        char day[16], iso[16];
        sx_usage_day(day, sizeof(day), now - d * 86400);
        snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2s", day, day + 4, day + 6);
        sx_json_obj_open(&w);
        sx_json_key(&w, "date");
        sx_json_strz(&w, iso);
        for (size_t s = 0; s < SX_ARRAY_LEN(signals); s++) {
            sx_json_key(&w, signals[s]);
            sx_json_obj_open(&w);
            for (size_t k = 0; k < SX_ARRAY_LEN(counters); k++) {
                char field[64];
                long long v = 0;
                snprintf(field, sizeof(field), "%s.%s", signals[s], counters[k]);
                for (size_t i = 0; i + 1 < rep->elements; i += 2)
                    if (rep->element[i]->type == REDIS_REPLY_STRING && strcmp(rep->element[i]->str, field) == 0 &&
                        rep->element[i + 1]->type == REDIS_REPLY_STRING)
                        v = strtoll(rep->element[i + 1]->str, NULL, 10);
                sx_json_key(&w, counters[k]);
                sx_json_int(&w, v);
            }
            sx_json_obj_close(&w);
        }
        sx_json_obj_close(&w);
        freeReplyObject(rep);
    }
    sx_json_arr_close(&w);
    if (failed) return sx_api_fail(r, 503, "unavailable", "usage counters are unavailable, retry later");
    return sx_api_reply(r, &w);
}

/* ---- audit log ----------------------------------------------------------------- */

/* A page of audit_log, newest first: {"entries":[...],"nextCursor"}. The
 * cursor is the last entry's id. project_id 0: every project (instance). */
static int audit_page(struct sx_api_req *r, int project_id)
{
    long long limit = AUDIT_DEFAULT_LIMIT, cursor = 0;
    int bad = 0;
    const char *lp = sx_api_param1(r, "limit", &bad);
    if (bad) return SX_ERR;
    const char *cp = sx_api_param1(r, "cursor", &bad);
    if (bad) return SX_ERR;
    if (lp && sx_api_parse_int(lp, 1, AUDIT_MAX_LIMIT, &limit) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "limit must be from 1 to %d", AUDIT_MAX_LIMIT);
    if (cp && sx_api_parse_int(cp, 1, LLONG_MAX, &cursor) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid cursor");
    char pid[16], cur[24], lim[24];
    snprintf(pid, sizeof(pid), "%d", project_id);
    snprintf(cur, sizeof(cur), "%lld", cursor);
    snprintf(lim, sizeof(lim), "%lld", limit + 1);
    const char *params[3] = {project_id ? pid : NULL, cursor ? cur : NULL, lim};
    PGresult *res = sx_api_exec(r,
                                "SELECT id, " RFC3339("at") ", project_id, actor, actor_user_id, actor_token_id, action, "
                                "target, details::text, ip, user_agent FROM audit_log "
                                "WHERE ($1::int IS NULL OR project_id = $1::int) AND ($2::bigint IS NULL OR id < $2::bigint) "
                                "ORDER BY id DESC LIMIT $3::int",
                                3, params, "SELECT audit_log");
    if (!res) return SX_ERR;
    int n = PQntuples(res);
    int shown = n > limit ? (int)limit : n;
    struct sx_json w;
    reply_open(r, &w);
    sx_json_key(&w, "entries");
    sx_json_arr_open(&w);
    for (int i = 0; i < shown; i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "id");
        sx_json_int_str(&w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        sx_json_key(&w, "at");
        sx_json_strz(&w, PQgetvalue(res, i, 1));
        sx_json_key(&w, "projectId");
        int_or_null(&w, res, i, 2);
        sx_json_key(&w, "actor");
        sx_json_strz(&w, PQgetvalue(res, i, 3));
        sx_json_key(&w, "actorUserId");
        int_or_null(&w, res, i, 4);
        sx_json_key(&w, "actorTokenId");
        int_or_null(&w, res, i, 5);
        sx_json_key(&w, "action");
        sx_json_strz(&w, PQgetvalue(res, i, 6));
        sx_json_key(&w, "target");
        sx_json_strz(&w, sx_api_col_str(res, i, 7));
        sx_json_key(&w, "details");
        sx_api_col_json(&w, res, i, 8, "{}");
        sx_json_key(&w, "ip");
        sx_json_strz(&w, sx_api_col_str(res, i, 9));
        sx_json_key(&w, "userAgent");
        sx_json_strz(&w, sx_api_col_str(res, i, 10));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    sx_json_key(&w, "nextCursor");
    if (n > limit && shown > 0) sx_json_strz(&w, PQgetvalue(res, shown - 1, 0));
    else sx_json_null(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

int sx_api_project_audit(struct sx_api_req *r)
{
    return audit_page(r, r->project_id);
}

int sx_api_audit_all(struct sx_api_req *r)
{
    if (!r->is_admin) return sx_api_fail(r, 403, "forbidden", "the instance audit log is for instance admins");
    return audit_page(r, 0);
}
