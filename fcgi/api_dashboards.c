/* api_dashboards.c: sextant-api's custom dashboards: list, create, read, update and delete the panels a project saves.
 *
 * A dashboard is a name, a description and up to MAX_PANELS panels, each
 * {id, title, type, query, layout} (README "Dashboards"). The server checks
 * the shape and the limits of every panel (strings of at most MAX_STR
 * characters, known members only, the query's source and its fields, a
 * layout inside the 12-column grid), writes back a normalized copy (known
 * members only, defaults filled) and stores it as jsonb (sql/017); it never
 * runs the queries. A bad panel is a 400 whose message names the field
 * ("panels[2].query.aggregation: ...").
 *
 * Updates are optimistic: PUT names the version it read, the UPDATE
 * matches on it and bumps it, and a stale version is a 409
 * version_conflict. Roles are checked in api.c (viewer reads, member
 * writes); writes run as sextant_project_writer under RLS limited to the
 * request's project and write their audit_log row in the same transaction,
 * so a failed audit insert rolls the change back. */
#include "api_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PANELS 50
#define MAX_STR 200           /* characters of any string of a dashboard */
#define MAX_GROUP_BY 10
#define MAX_FILTERS 20
#define MAX_DASHBOARDS 500    /* per project */
#define GRID_COLS 12
#define MAX_ROW 10000
#define MAX_HEIGHT 100
#define PANELS_MAX ((size_t)256 << 10) /* the normalized panels' JSON text */
#define PATH_LEN 256          /* a field's path in error messages */

#define RFC3339_MS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define DASH_COLS                                                                                                      \
    "id, name, description, panels::text, version, " RFC3339_MS("created_at") ", " RFC3339_MS("updated_at")          \
    ", created_by, updated_by, jsonb_array_length(panels)"

static const char *const PANEL_TYPES[] = {"timeseries", "stat", "table", "bar", NULL};
static const char *const SOURCES[] = {"metrics", "red", "logs", NULL};
static const char *const AGGREGATIONS[] = {"sum", "avg", "min", "max", "count", "rate", "p50", "p95", "p99", NULL};
static const char *const RED_FIELDS[] = {"requests", "errors", "errorRate", "p50", "p95", "p99", "rps", NULL};

/* ---- validation ------------------------------------------------------------------ */

/* A 400 naming the field at path. Always SX_ERR. */
static int bad_field(struct sx_api_req *r, const char *path, const char *fmt, ...) SX_PRINTF(3, 4);
static int bad_field(struct sx_api_req *r, const char *path, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sx_api_fail(r, 400, "bad_request", "%s: %s", path, msg);
}

/* Characters (code points) of n bytes of valid UTF-8. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

/* Checks that o is an object whose members are all in keys (NULL-ended). */
static int only_keys(struct sx_api_req *r, const struct sx_jv *o, const char *path, const char *const *keys)
{
    if (!o || o->type != SX_JV_OBJECT) return bad_field(r, path, "must be an object");
    for (const struct sx_jv *m = o->first; m; m = m->next) {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], m->key) != 0) k++;
        if (!keys[k]) return bad_field(r, path, "unknown member \"%.64s\"", m->key);
    }
    return SX_OK;
}

/* A string value of at most MAX_STR characters (empty allowed when
 * allow_empty) into *out. */
static int str_value(struct sx_api_req *r, const struct sx_jv *v, const char *path, int allow_empty, const char **out)
{
    if (v->type != SX_JV_STRING || strlen(v->str) != v->len)
        return bad_field(r, path, "must be a string");
    if (!allow_empty && v->len == 0) return bad_field(r, path, "must not be empty");
    if (utf8_chars(v->str, v->len) > MAX_STR) return bad_field(r, path, "longer than %d characters", MAX_STR);
    *out = v->str;
    return SX_OK;
}

/* Member key of o as a string: *out NULL when absent or null (an error
 * when required). */
static int str_member(struct sx_api_req *r, const struct sx_jv *o, const char *key, const char *path, int required,
                      int allow_empty, const char **out)
{
    char p[PATH_LEN];
    const struct sx_jv *v = sx_jv_get(o, key);
    snprintf(p, sizeof(p), "%.48s%s%.32s", path, *path ? "." : "", key);
    *out = NULL;
    if (!v || v->type == SX_JV_NULL) return required ? bad_field(r, p, "is required") : SX_OK;
    return str_value(r, v, p, allow_empty, out);
}

/* A string member that must be one of names. */
static int enum_member(struct sx_api_req *r, const struct sx_jv *o, const char *key, const char *path,
                       const char *const *names, const char **out)
{
    char p[PATH_LEN], list[160] = "";
    if (str_member(r, o, key, path, 1, 0, out) != SX_OK) return SX_ERR;
    for (size_t k = 0; names[k]; k++)
        if (strcmp(names[k], *out) == 0) return SX_OK;
    for (size_t k = 0, off = 0; names[k] && off < sizeof(list); k++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", k ? "|" : "", names[k]);
    snprintf(p, sizeof(p), "%.48s.%.32s", path, key);
    return bad_field(r, p, "must be one of %s", list);
}

/* An integer member in [lo, hi]. */
static int int_member(struct sx_api_req *r, const struct sx_jv *o, const char *key, const char *path, long long lo,
                      long long hi, long long *out)
{
    char p[PATH_LEN];
    const struct sx_jv *v = sx_jv_get(o, key);
    snprintf(p, sizeof(p), "%.48s.%.32s", path, key);
    if (!v || v->type == SX_JV_NULL) return bad_field(r, p, "is required");
    if (v->type != SX_JV_NUMBER || sx_jv_int(v, lo, hi, out) != SX_OK)
        return bad_field(r, p, "must be an integer from %lld to %lld", lo, hi);
    return SX_OK;
}

/* Writes key: value when value is not NULL. */
static void put_str(struct sx_json *w, const char *key, const char *value)
{
    if (!value) return;
    sx_json_key(w, key);
    sx_json_strz(w, value);
}

/* The query of a metrics panel: metric, aggregation, groupBy (strings),
 * filters (string values). */
static int metrics_query(struct sx_api_req *r, const struct sx_jv *q, const char *path, struct sx_json *w)
{
    static const char *const keys[] = {"source", "metric", "aggregation", "groupBy", "filters", NULL};
    const char *metric, *agg, *s;
    char p[PATH_LEN];
    if (only_keys(r, q, path, keys) != SX_OK || str_member(r, q, "metric", path, 1, 0, &metric) != SX_OK ||
        enum_member(r, q, "aggregation", path, AGGREGATIONS, &agg) != SX_OK)
        return SX_ERR;
    put_str(w, "metric", metric);
    put_str(w, "aggregation", agg);
    const struct sx_jv *g = sx_jv_get(q, "groupBy");
    snprintf(p, sizeof(p), "%.48s.groupBy", path);
    sx_json_key(w, "groupBy");
    sx_json_arr_open(w);
    if (g && g->type != SX_JV_NULL) {
        if (g->type != SX_JV_ARRAY) return bad_field(r, p, "must be an array of strings");
        if (g->n > MAX_GROUP_BY) return bad_field(r, p, "more than %d labels", MAX_GROUP_BY);
        size_t i = 0;
        for (const struct sx_jv *e = g->first; e; e = e->next, i++) {
            snprintf(p, sizeof(p), "%.48s.groupBy[%zu]", path, i);
            if (str_value(r, e, p, 0, &s) != SX_OK) return SX_ERR;
            sx_json_strz(w, s);
        }
    }
    sx_json_arr_close(w);
    const struct sx_jv *f = sx_jv_get(q, "filters");
    snprintf(p, sizeof(p), "%.48s.filters", path);
    sx_json_key(w, "filters");
    sx_json_obj_open(w);
    if (f && f->type != SX_JV_NULL) {
        if (f->type != SX_JV_OBJECT) return bad_field(r, p, "must be an object of strings");
        if (f->n > MAX_FILTERS) return bad_field(r, p, "more than %d filters", MAX_FILTERS);
        for (const struct sx_jv *e = f->first; e; e = e->next) {
            snprintf(p, sizeof(p), "%.48s.filters.%.64s", path, e->key);
            if (*e->key == '\0' || utf8_chars(e->key, strlen(e->key)) > MAX_STR)
                return bad_field(r, p, "a label name of 1 to %d characters", MAX_STR);
            if (str_value(r, e, p, 1, &s) != SX_OK) return SX_ERR;
            sx_json_key(w, e->key);
            sx_json_strz(w, s);
        }
    }
    sx_json_obj_close(w);
    return SX_OK;
}

/* The query of a RED panel: service?, endpoint?, field. */
static int red_query(struct sx_api_req *r, const struct sx_jv *q, const char *path, struct sx_json *w)
{
    static const char *const keys[] = {"source", "service", "endpoint", "field", NULL};
    const char *service, *endpoint, *field;
    if (only_keys(r, q, path, keys) != SX_OK || str_member(r, q, "service", path, 0, 0, &service) != SX_OK ||
        str_member(r, q, "endpoint", path, 0, 0, &endpoint) != SX_OK ||
        enum_member(r, q, "field", path, RED_FIELDS, &field) != SX_OK)
        return SX_ERR;
    put_str(w, "service", service);
    put_str(w, "endpoint", endpoint);
    put_str(w, "field", field);
    return SX_OK;
}

/* The query of a logs panel (a count per step): q?, severity? (1-24 or a
 * name such as ERROR, kept as given), service?. */
static int logs_query(struct sx_api_req *r, const struct sx_jv *q, const char *path, struct sx_json *w)
{
    static const char *const keys[] = {"source", "q", "severity", "service", NULL};
    const char *text, *service, *sev_s = NULL;
    char p[PATH_LEN];
    int sev = 0;
    long long n = 0;
    if (only_keys(r, q, path, keys) != SX_OK || str_member(r, q, "q", path, 0, 1, &text) != SX_OK ||
        str_member(r, q, "service", path, 0, 0, &service) != SX_OK)
        return SX_ERR;
    const struct sx_jv *s = sx_jv_get(q, "severity");
    snprintf(p, sizeof(p), "%.48s.severity", path);
    if (s && s->type == SX_JV_NUMBER) {
        if (sx_jv_int(s, 1, 24, &n) != SX_OK) return bad_field(r, p, "must be a number from 1 to 24 or a name");
    } else if (s && s->type != SX_JV_NULL) {
        if (str_value(r, s, p, 0, &sev_s) != SX_OK) return SX_ERR;
        if (sx_api_severity_parse(sev_s, &sev) != SX_OK)
            return bad_field(r, p, "must be a number from 1 to 24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL");
    }
    put_str(w, "q", text);
    if (n) {
        sx_json_key(w, "severity");
        sx_json_int(w, n);
    }
    put_str(w, "severity", sev_s);
    put_str(w, "service", service);
    return SX_OK;
}

/* Checks panel i and writes its normalized copy into w. ids holds the ids of
 * the panels before it (duplicates are refused). */
static int panel_check(struct sx_api_req *r, const struct sx_jv *pn, size_t i, const char **ids, struct sx_json *w)
{
    static const char *const keys[] = {"id", "title", "type", "query", "layout", NULL};
    static const char *const layout_keys[] = {"x", "y", "w", "h", NULL};
    char path[PATH_LEN], qpath[PATH_LEN], lpath[PATH_LEN];
    const char *id, *title, *type, *source;
    long long x, y, wd, h;
    snprintf(path, sizeof(path), "panels[%zu]", i);
    snprintf(qpath, sizeof(qpath), "%.48s.query", path);
    snprintf(lpath, sizeof(lpath), "%.48s.layout", path);
    if (only_keys(r, pn, path, keys) != SX_OK || str_member(r, pn, "id", path, 1, 0, &id) != SX_OK ||
        str_member(r, pn, "title", path, 1, 1, &title) != SX_OK ||
        enum_member(r, pn, "type", path, PANEL_TYPES, &type) != SX_OK)
        return SX_ERR;
    for (size_t k = 0; k < i; k++)
        if (strcmp(ids[k], id) == 0) return bad_field(r, path, "id \"%.64s\" is used by panels[%zu] too", id, k);
    ids[i] = id;
    const struct sx_jv *q = sx_jv_get(pn, "query");
    if (!q || q->type == SX_JV_NULL) return bad_field(r, qpath, "is required");
    if (q->type != SX_JV_OBJECT) return bad_field(r, qpath, "must be an object");
    if (enum_member(r, q, "source", qpath, SOURCES, &source) != SX_OK) return SX_ERR;
    const struct sx_jv *l = sx_jv_get(pn, "layout");
    if (!l || l->type == SX_JV_NULL) return bad_field(r, lpath, "is required");
    if (only_keys(r, l, lpath, layout_keys) != SX_OK || int_member(r, l, "x", lpath, 0, GRID_COLS - 1, &x) != SX_OK ||
        int_member(r, l, "y", lpath, 0, MAX_ROW, &y) != SX_OK ||
        int_member(r, l, "w", lpath, 1, GRID_COLS, &wd) != SX_OK ||
        int_member(r, l, "h", lpath, 1, MAX_HEIGHT, &h) != SX_OK)
        return SX_ERR;
    if (x + wd > GRID_COLS) return bad_field(r, lpath, "x + w is %lld: the grid has %d columns", x + wd, GRID_COLS);

    sx_json_obj_open(w);
    put_str(w, "id", id);
    put_str(w, "title", title);
    put_str(w, "type", type);
    sx_json_key(w, "query");
    sx_json_obj_open(w);
    put_str(w, "source", source);
    int rc = strcmp(source, "metrics") == 0 ? metrics_query(r, q, qpath, w)
             : strcmp(source, "red") == 0   ? red_query(r, q, qpath, w)
                                            : logs_query(r, q, qpath, w);
    if (rc != SX_OK) return SX_ERR;
    sx_json_obj_close(w);
    sx_json_key(w, "layout");
    sx_json_obj_open(w);
    const long long lv[4] = {x, y, wd, h};
    for (int k = 0; k < 4; k++) {
        sx_json_key(w, layout_keys[k]);
        sx_json_int(w, lv[k]);
    }
    sx_json_obj_close(w);
    sx_json_obj_close(w);
    return SX_OK;
}

/* Checks the panels array v and returns its normalized JSON text (arena
 * memory) in *out and the count in *n. SX_ERR with a 400 (or 500) set. */
static int panels_check(struct sx_api_req *r, const struct sx_jv *v, const char **out, size_t *n)
{
    const char *ids[MAX_PANELS];
    struct sx_buf b;
    struct sx_json w;
    if (v->type != SX_JV_ARRAY) return bad_field(r, "panels", "must be an array");
    if (v->n > MAX_PANELS) return bad_field(r, "panels", "%zu panels: at most %d", v->n, MAX_PANELS);
    sx_buf_init(&b, PANELS_MAX);
    sx_json_init(&w, &b);
    sx_json_arr_open(&w);
    size_t i = 0;
    for (const struct sx_jv *p = v->first; p; p = p->next, i++) {
        if (panel_check(r, p, i, ids, &w) != SX_OK) {
            sx_buf_term(&b);
            return SX_ERR;
        }
    }
    sx_json_arr_close(&w);
    *out = w.err ? NULL : sx_arena_strndup(r->fr->arena, b.data, b.len);
    sx_buf_term(&b);
    if (!*out) return sx_api_fail(r, 500, "internal", "out of memory");
    *n = i;
    return SX_OK;
}

/* The body of POST (version_required 0) or PUT (1), checked. Absent or null
 * members are NULL (panels of POST: "[]"). */
struct dash_body {
    const char *name, *description, *panels;
    size_t npanels;
    long long version;
};

static int body_check(struct sx_api_req *r, int is_put, struct dash_body *d)
{
    static const char *const post_keys[] = {"name", "description", "panels", NULL};
    static const char *const put_keys[] = {"name", "description", "panels", "version", NULL};
    struct sx_jv *body;
    memset(d, 0, sizeof(*d));
    if (sx_api_body_json(r, &body) != SX_OK) return SX_ERR;
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    if (only_keys(r, body, "body", is_put ? put_keys : post_keys) != SX_OK ||
        str_member(r, body, "name", "", !is_put, 0, &d->name) != SX_OK ||
        str_member(r, body, "description", "", 0, 1, &d->description) != SX_OK)
        return SX_ERR;
    const struct sx_jv *p = sx_jv_get(body, "panels");
    if (p && p->type != SX_JV_NULL && panels_check(r, p, &d->panels, &d->npanels) != SX_OK) return SX_ERR;
    if (!is_put && !d->panels) d->panels = "[]";
    if (is_put && int_member(r, body, "version", "body", 1, INT_MAX, &d->version) != SX_OK) return SX_ERR;
    return SX_OK;
}

/* ---- responses ---------------------------------------------------------------------- */

/* Writes row i of a DASH_COLS result as the full dashboard object. */
static void write_dashboard(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    sx_json_key(w, "id");
    sx_json_int(w, sx_api_col_i64(res, i, 0));
    put_str(w, "name", sx_api_col_str(res, i, 1));
    put_str(w, "description", sx_api_col_str(res, i, 2));
    sx_json_key(w, "panels");
    sx_api_col_json(w, res, i, 3, "[]");
    sx_json_key(w, "version");
    sx_json_int(w, sx_api_col_i64(res, i, 4));
    put_str(w, "createdAt", sx_api_col_str(res, i, 5));
    put_str(w, "updatedAt", sx_api_col_str(res, i, 6));
    put_str(w, "createdBy", sx_api_col_str(res, i, 7));
    put_str(w, "updatedBy", sx_api_col_str(res, i, 8));
    sx_json_obj_close(w);
}

/* {"dashboard": row 0} with the given status. */
static int reply_dashboard(struct sx_api_req *r, const PGresult *res, int status)
{
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "dashboard");
    write_dashboard(&w, res, 0);
    int rc = sx_api_reply(r, &w);
    if (rc == SX_OK) r->status = status;
    return rc;
}

/* The caller as the audit log names it: the user's email, else "token:<id>". */
static const char *actor(struct sx_api_req *r)
{
    if (r->user_email) return r->user_email;
    const char *a = sx_api_strf(r, "token:%d", r->token_id);
    return a ? a : "unknown";
}

/* Writes the audit row of a change to the dashboard in row 0 of a DASH_COLS
 * result ({"name","version","panels"} as details) inside the change's
 * transaction; SX_ERR with a 500 set. */
static int audit_change(struct sx_api_req *r, const char *action, const PGresult *res)
{
    struct sx_buf b;
    struct sx_json w;
    sx_buf_init(&b, 4096);
    sx_json_init(&w, &b);
    sx_json_obj_open(&w);
    put_str(&w, "name", sx_api_col_str(res, 0, 1));
    sx_json_key(&w, "version");
    sx_json_int(&w, sx_api_col_i64(res, 0, 4));
    sx_json_key(&w, "panels");
    sx_json_int(&w, sx_api_col_i64(res, 0, 9));
    sx_json_obj_close(&w);
    const char *details = w.err ? NULL : sx_arena_strndup(r->fr->arena, b.data, b.len);
    sx_buf_term(&b);
    if (sx_api_audit(r, action, sx_api_col_str(res, 0, 0), r->project_id, details, NULL) != SX_OK)
        return sx_api_fail(r, 500, "internal", "could not write the audit log");
    return SX_OK;
}

/* The request's project id and the dashboard id of the URL as text
 * parameters (pid: 16 bytes, id: 24); SX_ERR with a 404 when id_s is no id. */
static int dash_params(struct sx_api_req *r, const char *id_s, char *pid, char *id)
{
    long long n = 0;
    if (sx_api_parse_int(id_s, 1, LLONG_MAX, &n) != SX_OK)
        return sx_api_fail(r, 404, "not_found", "dashboard not found");
    snprintf(pid, 16, "%d", r->project_id);
    snprintf(id, 24, "%lld", n);
    return SX_OK;
}

/* ---- handlers ------------------------------------------------------------------------ */

int sx_api_dashboards_list(struct sx_api_req *r)
{
    char pid[16], lim[16];
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    snprintf(lim, sizeof(lim), "%d", MAX_DASHBOARDS);
    const char *params[2] = {pid, lim};
    PGresult *res = sx_api_exec(r,
                                "SELECT id, name, description, jsonb_array_length(panels), " RFC3339_MS("updated_at")
                                ", updated_by FROM dashboards WHERE project_id = $1::int "
                                "ORDER BY lower(name), id LIMIT $2::int",
                                2, params, "SELECT dashboards");
    if (!res) return SX_ERR;
    struct sx_json w;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "dashboards");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&w);
        sx_json_key(&w, "id");
        sx_json_int(&w, sx_api_col_i64(res, i, 0));
        put_str(&w, "name", sx_api_col_str(res, i, 1));
        put_str(&w, "description", sx_api_col_str(res, i, 2));
        sx_json_key(&w, "panelCount");
        sx_json_int(&w, sx_api_col_i64(res, i, 3));
        put_str(&w, "updatedAt", sx_api_col_str(res, i, 4));
        put_str(&w, "updatedBy", sx_api_col_str(res, i, 5));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    PQclear(res);
    return sx_api_reply(r, &w);
}

int sx_api_dashboard_create(struct sx_api_req *r)
{
    struct dash_body d;
    char pid[16], uid[16];
    if (body_check(r, 0, &d) != SX_OK) return SX_ERR;
    snprintf(pid, sizeof(pid), "%d", r->project_id);
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    const char *p1[1] = {pid};
    PGresult *res = sx_api_exec(r, "SELECT count(*) FROM dashboards WHERE project_id = $1::int", 1, p1,
                                "SELECT count(dashboards)");
    if (!res) return SX_ERR;
    long long have = sx_api_col_i64(res, 0, 0);
    PQclear(res);
    if (have >= MAX_DASHBOARDS)
        return sx_api_fail(r, 409, "limit_reached", "a project holds at most %d dashboards", MAX_DASHBOARDS);
    const char *params[6] = {pid, d.name, d.description ? d.description : "", d.panels, actor(r),
                             r->user_id > 0 ? uid : NULL};
    res = sx_api_exec(r,
                      "INSERT INTO dashboards (project_id, name, description, panels, created_by, updated_by, "
                      "created_by_user, updated_by_user) VALUES ($1::int, $2, $3, $4::jsonb, $5, $5, $6::int, $6::int) "
                      "RETURNING " DASH_COLS,
                      6, params, "INSERT dashboards");
    if (!res) return SX_ERR;
    int rc = audit_change(r, "dashboard.create", res) == SX_OK ? reply_dashboard(r, res, 201) : SX_ERR;
    PQclear(res);
    return rc;
}

int sx_api_dashboard_get(struct sx_api_req *r, const char *id_s)
{
    char pid[16], id[24];
    if (dash_params(r, id_s, pid, id) != SX_OK) return SX_ERR;
    const char *params[2] = {pid, id};
    PGresult *res = sx_api_exec(r, "SELECT " DASH_COLS " FROM dashboards WHERE project_id = $1::int AND id = $2::bigint",
                                2, params, "SELECT dashboards");
    if (!res) return SX_ERR;
    int rc = PQntuples(res) == 1 ? reply_dashboard(r, res, 200) : sx_api_fail(r, 404, "not_found", "dashboard not found");
    PQclear(res);
    return rc;
}

int sx_api_dashboard_put(struct sx_api_req *r, const char *id_s)
{
    struct dash_body d;
    char pid[16], id[24], uid[16], ver[24];
    if (dash_params(r, id_s, pid, id) != SX_OK || body_check(r, 1, &d) != SX_OK) return SX_ERR;
    snprintf(uid, sizeof(uid), "%d", r->user_id);
    snprintf(ver, sizeof(ver), "%lld", d.version);
    const char *params[8] = {pid, id, d.name, d.description, d.panels, actor(r), r->user_id > 0 ? uid : NULL, ver};
    PGresult *res = sx_api_exec(r,
                                "UPDATE dashboards SET name = coalesce($3, name), "
                                "description = coalesce($4, description), panels = coalesce($5::jsonb, panels), "
                                "version = version + 1, updated_at = now(), updated_by = $6, updated_by_user = $7::int "
                                "WHERE project_id = $1::int AND id = $2::bigint AND version = $8::int "
                                "RETURNING " DASH_COLS,
                                8, params, "UPDATE dashboards");
    if (!res) return SX_ERR;
    if (PQntuples(res) == 1) {
        int rc = audit_change(r, "dashboard.update", res) == SX_OK ? reply_dashboard(r, res, 200) : SX_ERR;
        PQclear(res);
        return rc;
    }
    PQclear(res);
    /* Missing, or another version: tell which. */
    const char *p2[2] = {pid, id};
    res = sx_api_exec(r, "SELECT version FROM dashboards WHERE project_id = $1::int AND id = $2::bigint", 2, p2,
                      "SELECT dashboards");
    if (!res) return SX_ERR;
    int rc = PQntuples(res) == 1
                 ? sx_api_fail(r, 409, "version_conflict",
                               "the dashboard is at version %s, not %lld: reload it and apply the change again",
                               PQgetvalue(res, 0, 0), d.version)
                 : sx_api_fail(r, 404, "not_found", "dashboard not found");
    PQclear(res);
    return rc;
}

int sx_api_dashboard_delete(struct sx_api_req *r, const char *id_s)
{
    char pid[16], id[24];
    if (dash_params(r, id_s, pid, id) != SX_OK) return SX_ERR;
    const char *params[2] = {pid, id};
    PGresult *res = sx_api_exec(r,
                                "DELETE FROM dashboards WHERE project_id = $1::int AND id = $2::bigint "
                                "RETURNING " DASH_COLS,
                                2, params, "DELETE dashboards");
    if (!res) return SX_ERR;
    int rc = PQntuples(res) != 1 ? sx_api_fail(r, 404, "not_found", "dashboard not found")
                                 : audit_change(r, "dashboard.delete", res);
    PQclear(res);
    if (rc != SX_OK) return SX_ERR;
    sx_buf_reset(r->out);
    r->status = 204;
    return SX_OK;
}
