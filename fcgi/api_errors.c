/* api_errors.c: sextant-api's error tracking: the issue list, one issue with
 * its latest event, tags and counts, its events, the statistics, and the
 * user's triage (status changes, ignore conditions, merges).
 *
 * Reads run as sextant_reader like every GET. PATCH and POST run in a
 * read-write transaction as sextant_issue_writer (sql/012_errors_api.sql),
 * which may change only the triage and fold columns, under RLS policies that
 * limit every write to the request's projects; every statement still filters
 * on project_id. A bulk change or a merge resolves all its ids first and
 * answers 404 before writing anything when one is unknown or another
 * project's; the transaction makes the rest all or nothing (end_txn rolls
 * back whatever a failed request wrote).
 *
 * Status transitions follow the contract of sql/010_errors.sql: resolve
 * (substatus resolved, no release: any later event regresses it), resolve in
 * next release (resolved_in_release = the issue's last_release; an issue with
 * no release is resolved plainly), ignore forever / until count
 * (event_count + N) / until time, unresolve (ongoing, every condition
 * cleared). sextant-persist applies regressions and expiring ignores.
 *
 * Merge: the target is the given "target", or the issue with the most events
 * (the lowest id on a tie). Under row locks on every issue involved, the
 * others' counts, first/last seen and releases fold into the target, their
 * fingerprints, hourly counts and events move to it, and they (and any issue
 * merged into them before) get merged_into = target, so merged_into never
 * chains. Users: the largest of the counts, a lower bound until the
 * target's next event, when sextant-persist counts the union of the merged
 * issues' HyperLogLogs (PFCOUNT over all their keys). */
#include "api_errors.h"

#include "keys.h"
#include "log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOUR_NS 3600000000000LL
#define MAX_IDS 1000            /* ids of one bulk change or merge */
#define DEFAULT_LIMIT 25
#define TAG_EVENTS 10000        /* the tag breakdown reads the newest events at most */
#define TAG_TOP 10              /* values shown per tag */
#define TOP_ISSUES 5
#define MAX_STATS_HOURS (31 * 24)
#define SQL_MAX 16384

/* The issue object: columns of every query that writes one (alias i). */
#define ISSUE_COLS                                                                                                 \
    "i.id, (SELECT upper(p.slug) FROM projects p WHERE p.id = i.project_id) || '-' || i.short_seq, i.title, "      \
    "i.type, i.message, i.culprit, i.status, "                                                                     \
    "CASE WHEN i.substatus = 'new' AND i.first_seen_ns < (extract(epoch FROM now())::bigint - 604800) "            \
    "* 1000000000 THEN 'ongoing' ELSE i.substatus END, "                                                           \
    "i.first_seen_ns, i.last_seen_ns, i.event_count, i.user_count, i.service, i.level, i.first_release, "          \
    "i.last_release, i.resolved_in_release, i.ignore_until_count, i.ignore_until_ns, "                             \
    "(extract(epoch FROM i.resolved_at) * 1000)::bigint"
enum { IC_NCOLS = 20 };

/* The event object (alias e). */
#define EVENT_COLS                                                                                                 \
    "encode(e.event_id, 'hex'), e.time_ns, e.source, e.level, e.service, e.release, e.environment, "               \
    "encode(e.trace_id, 'hex'), encode(e.span_id, 'hex'), e.type, e.message, e.stacktrace, e.lang, "               \
    "e.frames::text, e.handled, e.user_id, e.route, e.url, e.user_agent, e.attributes::text"

static void key_str(struct sx_json *w, const char *k, const char *v)
{
    sx_json_key(w, k);
    sx_json_strz(w, v);
}

static void key_int(struct sx_json *w, const char *k, int64_t v)
{
    sx_json_key(w, k);
    sx_json_int(w, v);
}

/* A nullable bigint column as a string ("...UnixNano") or null. */
static void key_ns(struct sx_json *w, const char *k, const PGresult *res, int row, int col)
{
    sx_json_key(w, k);
    if (PQgetisnull(res, row, col)) sx_json_null(w);
    else sx_json_strz(w, PQgetvalue(res, row, col));
}

/* Writes the issue in columns col..col+IC_NCOLS of row as one object, and
 * leaves it open when keep_open (the detail adds to it). */
static void write_issue_at(struct sx_json *w, const PGresult *res, int row, int col, int keep_open)
{
    const PGresult *x = res;
    sx_json_obj_open(w);
    key_str(w, "id", sx_api_col_str(x, row, col + 0));
    key_str(w, "shortId", sx_api_col_str(x, row, col + 1));
    key_str(w, "title", sx_api_col_str(x, row, col + 2));
    key_str(w, "type", sx_api_col_str(x, row, col + 3));
    key_str(w, "message", sx_api_col_str(x, row, col + 4));
    key_str(w, "culprit", sx_api_col_str(x, row, col + 5));
    key_str(w, "status", sx_api_col_str(x, row, col + 6));
    key_str(w, "substatus", sx_api_col_str(x, row, col + 7));
    key_ns(w, "firstSeenUnixNano", x, row, col + 8);
    key_ns(w, "lastSeenUnixNano", x, row, col + 9);
    key_int(w, "events", sx_api_col_i64(x, row, col + 10));
    key_int(w, "users", sx_api_col_i64(x, row, col + 11));
    key_str(w, "service", sx_api_col_str(x, row, col + 12));
    key_str(w, "level", sx_api_col_str(x, row, col + 13));
    key_str(w, "firstRelease", sx_api_col_str(x, row, col + 14));
    key_str(w, "lastRelease", sx_api_col_str(x, row, col + 15));
    key_str(w, "resolvedInRelease", sx_api_col_str(x, row, col + 16));
    sx_json_key(w, "ignoreUntilCount");
    if (PQgetisnull(x, row, col + 17)) sx_json_null(w);
    else sx_json_int(w, sx_api_col_i64(x, row, col + 17));
    key_ns(w, "ignoreUntilUnixNano", x, row, col + 18);
    sx_json_key(w, "resolvedAtUnixMs");
    if (PQgetisnull(x, row, col + 19)) sx_json_null(w);
    else sx_json_int(w, sx_api_col_i64(x, row, col + 19));
    if (!keep_open) sx_json_obj_close(w);
}

static void write_issue(struct sx_json *w, const PGresult *res, int row)
{
    write_issue_at(w, res, row, 0, 0);
}

static void write_event(struct sx_json *w, const PGresult *res, int i)
{
    sx_json_obj_open(w);
    key_str(w, "eventId", sx_api_col_str(res, i, 0));
    key_ns(w, "timeUnixNano", res, i, 1);
    key_str(w, "source", sx_api_col_str(res, i, 2));
    key_str(w, "level", sx_api_col_str(res, i, 3));
    key_str(w, "service", sx_api_col_str(res, i, 4));
    key_str(w, "release", sx_api_col_str(res, i, 5));
    key_str(w, "environment", sx_api_col_str(res, i, 6));
    key_str(w, "traceId", sx_api_col_str(res, i, 7));
    key_str(w, "spanId", sx_api_col_str(res, i, 8));
    key_str(w, "type", sx_api_col_str(res, i, 9));
    key_str(w, "message", sx_api_col_str(res, i, 10));
    key_str(w, "stacktrace", sx_api_col_str(res, i, 11));
    key_str(w, "lang", sx_api_col_str(res, i, 12));
    sx_json_key(w, "frames");
    sx_api_col_json(w, res, i, 13, "[]");
    sx_json_key(w, "handled");
    if (PQgetisnull(res, i, 14)) sx_json_null(w);
    else sx_json_bool(w, strcmp(PQgetvalue(res, i, 14), "t") == 0);
    key_str(w, "userId", sx_api_col_str(res, i, 15));
    key_str(w, "route", sx_api_col_str(res, i, 16));
    key_str(w, "url", sx_api_col_str(res, i, 17));
    key_str(w, "userAgent", sx_api_col_str(res, i, 18));
    sx_json_key(w, "attributes");
    sx_api_col_json(w, res, i, 19, "{}");
    sx_json_obj_close(w);
}

/* ---- issue references ----------------------------------------------------------- */

/* An issue as the request names it: a numeric id or a short_seq. */
struct ref {
    long long id;   /* > 0: by id */
    long long seq;  /* > 0: by short_seq; both 0: matches nothing (another project's shortId) */
};

/* Parses "123" or "<SLUG>-<seq>" (the slug in any case). SX_ERR when it is
 * neither; a shortId of another slug is valid but matches nothing. */
static int parse_ref(struct sx_api_req *r, const char *s, struct ref *out)
{
    out->id = out->seq = 0;
    if (!s || !*s) return SX_ERR;
    if (strspn(s, "0123456789") == strlen(s)) return sx_api_parse_int(s, 1, LLONG_MAX, &out->id);
    const char *dash = strrchr(s, '-');
    if (!dash || dash == s || sx_api_parse_int(dash + 1, 1, INT_MAX, &out->seq) != SX_OK || dash[1] == '-')
        return SX_ERR;
    size_t n = (size_t)(dash - s);
    if (strlen(r->project_slug) != n || strncasecmp(s, r->project_slug, n) != 0) out->seq = 0;
    return SX_OK;
}

/* A JSON id: a positive integer, or a string as parse_ref reads it. */
static int parse_ref_jv(struct sx_api_req *r, const struct sx_jv *v, struct ref *out)
{
    out->id = out->seq = 0;
    if (v->type == SX_JV_NUMBER) return sx_jv_int(v, 1, LLONG_MAX, &out->id);
    if (v->type == SX_JV_STRING) return parse_ref(r, v->str, out);
    return SX_ERR;
}

/* "{1,2,3}" of n values into the arena; NULL when out of memory. */
static char *pg_array(struct sx_api_req *r, const long long *v, size_t n)
{
    char *s = sx_arena_alloc(r->fr->arena, n * 21 + 3);
    if (!s) return NULL;
    size_t o = 0;
    s[o++] = '{';
    for (size_t i = 0; i < n; i++) o += (size_t)snprintf(s + o, 22, "%s%lld", i ? "," : "", v[i]);
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* Resolves n refs into issue ids (out[i]; the target of a merged issue).
 * SX_ERR with a 404 set when any of them names no issue of the project. */
static int resolve_refs(struct sx_api_req *r, const struct ref *refs, size_t n, long long *out)
{
    long long *ids = sx_arena_calloc(r->fr->arena, n + 1, sizeof(*ids));
    long long *seqs = sx_arena_calloc(r->fr->arena, n + 1, sizeof(*seqs));
    size_t nid = 0, nseq = 0;
    char proj[16];
    if (!ids || !seqs) return sx_api_fail(r, 500, "internal", "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (refs[i].id > 0) ids[nid++] = refs[i].id;
        else if (refs[i].seq > 0) seqs[nseq++] = refs[i].seq;
        else return sx_api_fail(r, 404, "not_found", "issue not found");
    }
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    const char *params[3] = {proj, pg_array(r, ids, nid), pg_array(r, seqs, nseq)};
    if (!params[1] || !params[2]) return sx_api_fail(r, 500, "internal", "out of memory");
    PGresult *res = sx_api_exec(r,
                                "SELECT id, short_seq, coalesce(merged_into, id) FROM issues "
                                "WHERE project_id = $1 AND (id = ANY ($2::bigint[]) OR short_seq = ANY ($3::integer[]))",
                                3, params, "SELECT issues (ids)");
    if (!res) return SX_ERR;
    int rows = PQntuples(res), rc = SX_OK;
    for (size_t i = 0; i < n && rc == SX_OK; i++) {
        out[i] = 0;
        for (int k = 0; k < rows && !out[i]; k++)
            if ((refs[i].id > 0 && sx_api_col_i64(res, k, 0) == refs[i].id) ||
                (refs[i].id == 0 && sx_api_col_i64(res, k, 1) == refs[i].seq))
                out[i] = sx_api_col_i64(res, k, 2);
        if (!out[i]) rc = sx_api_fail(r, 404, "not_found", "issue not found");
    }
    PQclear(res);
    return rc;
}

/* Resolves the {issueId} of a path; SX_ERR with a 404 set when unknown. */
static int resolve_path_ref(struct sx_api_req *r, const char *s, long long *id)
{
    struct ref ref;
    if (parse_ref(r, s, &ref) != SX_OK) return sx_api_fail(r, 404, "not_found", "issue not found");
    return resolve_refs(r, &ref, 1, id);
}

/* The issue objects of ids, ordered by id. NULL with the error set. */
static PGresult *fetch_issues(struct sx_api_req *r, const long long *ids, size_t n)
{
    char proj[16];
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    const char *params[2] = {proj, pg_array(r, ids, n)};
    if (!params[1]) {
        sx_api_fail(r, 500, "internal", "out of memory");
        return NULL;
    }
    return sx_api_exec(r, "SELECT " ISSUE_COLS " FROM issues i WHERE i.project_id = $1 AND i.id = ANY ($2::bigint[]) "
                          "ORDER BY i.id", 2, params, "SELECT issues");
}

/* ---- GET .../errors ---------------------------------------------------------- */

enum sort { SORT_LAST_SEEN, SORT_FIRST_SEEN, SORT_EVENTS, SORT_USERS };
static const char *const sort_names[] = {"lastSeen", "firstSeen", "events", "users"};
static const char *const sort_cols[] = {"i.last_seen_ns", "i.first_seen_ns", "i.event_count", "i.user_count"};

struct list_filters {
    const char *status, *service, *environment, *release;
    char *like;                 /* q as an ILIKE pattern */
    int has_window;
    struct sx_api_window win;
    enum sort sort;
    long long limit;
    int has_cursor;
    int64_t cursor_val;
    long long cursor_id;
};

/* Issue cursors: sx_api_cursor_encode's (time, 16-byte id) with the sort
 * value as the time and, in the id bytes, a marker, the sort and the issue id,
 * so a cursor of another sort or endpoint is refused. */
static void issue_cursor_encode(enum sort s, int64_t val, long long id, char *out)
{
    uint8_t b[16] = {'I', 's', (uint8_t)s};
    for (int k = 0; k < 8; k++) b[3 + k] = (uint8_t)((unsigned long long)id >> (56 - 8 * k));
    sx_api_cursor_encode(val, b, out);
}

static int issue_cursor_decode(const char *s, enum sort want, int64_t *val, long long *id)
{
    uint8_t b[16];
    if (sx_api_cursor_decode(s, val, b) != SX_OK || b[0] != 'I' || b[1] != 's' || b[2] != (uint8_t)want)
        return SX_ERR;
    unsigned long long v = 0;
    for (int k = 0; k < 8; k++) v = v << 8 | b[3 + k];
    for (int k = 11; k < 16; k++)
        if (b[k]) return SX_ERR;
    *id = (long long)v;
    return *id > 0 ? SX_OK : SX_ERR;
}

/* Checks a comma-separated list of statuses. */
static int status_list_ok(const char *s)
{
    char buf[64];
    size_t len = strlen(s);
    if (len >= sizeof(buf) || len == 0 || s[0] == ',' || s[len - 1] == ',' || strstr(s, ",,")) return 0;
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    int n = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), n++)
        if (strcmp(t, "unresolved") != 0 && strcmp(t, "resolved") != 0 && strcmp(t, "ignored") != 0) return 0;
    return n > 0;
}

/* q as "%q%" with \, % and _ escaped (ILIKE's default escape is \). */
static char *like_pattern(struct sx_api_req *r, const char *q)
{
    size_t n = strlen(q);
    char *p = sx_arena_alloc(r->fr->arena, 2 * n + 3);
    if (!p) return NULL;
    size_t o = 0;
    p[o++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (q[i] == '\\' || q[i] == '%' || q[i] == '_') p[o++] = '\\';
        p[o++] = q[i];
    }
    p[o++] = '%';
    p[o] = '\0';
    return p;
}

static int list_filters(struct sx_api_req *r, struct list_filters *f)
{
    int bad = 0;
    const char *from, *to, *range, *v;
    memset(f, 0, sizeof(*f));
    f->limit = DEFAULT_LIMIT;
    f->status = sx_api_param1(r, "status", &bad);
    if (!bad) f->service = sx_api_param1(r, "service", &bad);
    if (!bad) f->environment = sx_api_param1(r, "environment", &bad);
    if (!bad) f->release = sx_api_param1(r, "release", &bad);
    if (bad) return SX_ERR;
    if (f->status && !status_list_ok(f->status))
        return sx_api_fail(r, 400, "bad_request", "invalid status: expected unresolved, resolved or ignored (comma-separated)");
    if ((v = sx_api_param1(r, "q", &bad))) {
        if (strlen(v) > SX_API_SEARCH_MAX_LEN)
            return sx_api_fail(r, 400, "bad_request", "invalid q: at most %d bytes", SX_API_SEARCH_MAX_LEN);
        if (!(f->like = like_pattern(r, v))) return sx_api_fail(r, 500, "internal", "out of memory");
    }
    if (bad) return SX_ERR;
    if ((v = sx_api_param1(r, "sort", &bad))) {
        size_t k = 0;
        while (k < SX_ARRAY_LEN(sort_names) && strcmp(v, sort_names[k]) != 0) k++;
        if (k == SX_ARRAY_LEN(sort_names))
            return sx_api_fail(r, 400, "bad_request", "invalid sort: expected lastSeen, firstSeen, events or users");
        f->sort = (enum sort)k;
    }
    if (bad) return SX_ERR;
    /* No time parameter: every issue. With one: issues seen in the window. */
    if (sx_api_window_params(r, &from, &to, &range) != SX_OK) return SX_ERR;
    if (from || to || range) {
        if (sx_api_window(r, &f->win) != SX_OK) return SX_ERR;
        f->has_window = 1;
    }
    if (sx_api_limit(r, &f->limit) != SX_OK) return SX_ERR;
    if ((v = sx_api_param1(r, "cursor", &bad))) {
        if (issue_cursor_decode(v, f->sort, &f->cursor_val, &f->cursor_id) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid cursor");
        f->has_cursor = 1;
    }
    return bad ? SX_ERR : SX_OK;
}

static int list_build(struct sx_api_req *r, const void *fv, struct sx_api_qb *b)
{
    const struct list_filters *f = fv;
    struct sx_buf *s = &b->sql;
    const char *col = sort_cols[f->sort];
    int p, pf = 0, pt = 0, ok = 1;
    int pproj = sx_api_qb_num(b, r->project_id), psort = sx_api_qb_num(b, f->sort);
    if (!pproj || !psort) return SX_ERR;
    ok &= sx_buf_printf(s, "SELECT " ISSUE_COLS ", %s, $%d::integer FROM issues i "
                           "WHERE i.project_id = $%d AND i.merged_into IS NULL", col, psort, pproj) == SX_OK;
    if (f->has_window) {
        if (!(pf = sx_api_qb_num(b, f->win.from_ns)) || !(pt = sx_api_qb_num(b, f->win.to_ns))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND i.last_seen_ns >= $%d AND i.first_seen_ns <= $%d", pf, pt) == SX_OK;
    }
    if (f->status) {
        if (!(p = sx_api_qb_param(b, f->status))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND i.status = ANY (string_to_array($%d, ','))", p) == SX_OK;
    }
    if (f->service) {
        if (!(p = sx_api_qb_param(b, f->service))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND i.service = $%d", p) == SX_OK;
    }
    /* Environment and release live on the events: an issue matches when one
     * of its events (in the window, when there is one) does. */
    const char *ev_cols[2] = {"environment", "release"}, *ev_vals[2] = {f->environment, f->release};
    for (int k = 0; k < 2; k++) {
        if (!ev_vals[k]) continue;
        if (!(p = sx_api_qb_param(b, ev_vals[k]))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND EXISTS (SELECT 1 FROM error_events e WHERE e.project_id = $%d "
                               "AND e.issue_id = i.id AND e.%s = $%d", pproj, ev_cols[k], p) == SX_OK;
        if (f->has_window) ok &= sx_buf_printf(s, " AND e.time_ns >= $%d AND e.time_ns <= $%d", pf, pt) == SX_OK;
        ok &= sx_buf_puts(s, ")") == SX_OK;
    }
    if (f->like) {
        if (!(p = sx_api_qb_param(b, f->like))) return SX_ERR;
        ok &= sx_buf_printf(s, " AND (i.title ILIKE $%d OR i.message ILIKE $%d OR i.culprit ILIKE $%d)", p, p, p) ==
              SX_OK;
    }
    if (f->has_cursor) {
        int pv = sx_api_qb_num(b, f->cursor_val), pi = sx_api_qb_num(b, f->cursor_id);
        if (!pv || !pi) return SX_ERR;
        ok &= sx_buf_printf(s, " AND (%s, i.id) < ($%d::bigint, $%d::bigint)", col, pv, pi) == SX_OK;
    }
    if (!(p = sx_api_qb_num(b, f->limit + 1))) return SX_ERR;
    ok &= sx_buf_printf(s, " ORDER BY %s DESC, i.id DESC LIMIT $%d", col, p) == SX_OK;
    return ok ? SX_OK : SX_ERR;
}

static int list_cursor(const PGresult *res, int i, char *cur)
{
    issue_cursor_encode((enum sort)sx_api_col_i64(res, i, IC_NCOLS + 1), sx_api_col_i64(res, i, IC_NCOLS),
                        sx_api_col_i64(res, i, 0), cur);
    return SX_OK;
}

static const struct sx_api_list issue_list = {"issues", "SELECT issues", SQL_MAX, list_build, write_issue,
                                              list_cursor};

int sx_api_errors_list(struct sx_api_req *r)
{
    struct list_filters f;
    if (list_filters(r, &f) != SX_OK) return SX_ERR;
    return sx_api_list_run(r, &issue_list, &f, f.limit);
}

/* ---- GET .../errors/{issueId} ----------------------------------------------------- */

/* One value of a tag and how many events carry it. */
struct tag_value {
    const char *value;
    int64_t count;
};

static int tag_value_cmp(const void *a, const void *b)
{
    const struct tag_value *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->value, y->value);
}

/* Adds count to value in v[0..*n) (a linear search: the values are few after
 * the user agents are named). */
static void tag_add(struct tag_value *v, size_t *n, const char *value, int64_t count)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i].value, value) == 0) {
            v[i].count += count;
            return;
        }
    v[*n].value = value;
    v[*n].count = count;
    (*n)++;
}

static void write_tag(struct sx_json *w, const char *key, struct tag_value *v, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) total += v[i].count;
    qsort(v, n, sizeof(*v), tag_value_cmp);
    sx_json_obj_open(w);
    key_str(w, "key", key);
    key_int(w, "total", total);
    sx_json_key(w, "values");
    sx_json_arr_open(w);
    for (size_t i = 0; i < n && i < TAG_TOP; i++) {
        sx_json_obj_open(w);
        key_str(w, "value", v[i].value);
        key_int(w, "count", v[i].count);
        sx_json_obj_close(w);
    }
    sx_json_arr_close(w);
    sx_json_obj_close(w);
}

/* The tag breakdown: the top values of service, release, environment and
 * route, and of the browser and OS named from the user agent, over the
 * issue's newest TAG_EVENTS events. SX_ERR with the error set. */
static int write_tags(struct sx_api_req *r, struct sx_json *w, const char *proj, const char *id)
{
    static const char *const keys[] = {"service", "release", "environment", "route"};
    char lim[24];
    snprintf(lim, sizeof(lim), "%d", TAG_EVENTS);
    const char *params[3] = {proj, id, lim};
    PGresult *res = sx_api_exec(
        r,
        "WITH ev AS (SELECT service, release, environment, route, user_agent FROM error_events "
        "WHERE project_id = $1 AND issue_id = $2 ORDER BY time_ns DESC LIMIT $3) "
        "SELECT 0, service, count(*) FROM ev WHERE service <> '' GROUP BY service "
        "UNION ALL SELECT 1, release, count(*) FROM ev WHERE release <> '' GROUP BY release "
        "UNION ALL SELECT 2, environment, count(*) FROM ev WHERE environment <> '' GROUP BY environment "
        "UNION ALL SELECT 3, route, count(*) FROM ev WHERE route <> '' GROUP BY route "
        "UNION ALL SELECT 4, user_agent, count(*) FROM ev WHERE user_agent <> '' GROUP BY user_agent",
        3, params, "SELECT error_events tags");
    if (!res) return SX_ERR;
    int n = PQntuples(res);
    struct tag_value *v = sx_arena_calloc(r->fr->arena, (size_t)n + 1, sizeof(*v));
    struct tag_value *br = sx_arena_calloc(r->fr->arena, (size_t)n + 1, sizeof(*br));
    struct tag_value *os = sx_arena_calloc(r->fr->arena, (size_t)n + 1, sizeof(*os));
    if (!v || !br || !os) {
        PQclear(res);
        return sx_api_fail(r, 500, "internal", "out of memory");
    }
    sx_json_key(w, "tags");
    sx_json_arr_open(w);
    for (int k = 0; k < 4; k++) {
        size_t nv = 0;
        for (int i = 0; i < n; i++)
            if (sx_api_col_i64(res, i, 0) == k) tag_add(v, &nv, PQgetvalue(res, i, 1), sx_api_col_i64(res, i, 2));
        write_tag(w, keys[k], v, nv);
    }
    size_t nb = 0, no = 0;
    for (int i = 0; i < n; i++) {
        if (sx_api_col_i64(res, i, 0) != 4) continue;
        char b[64], o[64];
        sx_api_user_agent(PQgetvalue(res, i, 1), b, sizeof(b), o, sizeof(o));
        const char *bs = sx_arena_strndup(r->fr->arena, b, strlen(b));
        const char *os_name = sx_arena_strndup(r->fr->arena, o, strlen(o));
        if (!bs || !os_name) {
            PQclear(res);
            return sx_api_fail(r, 500, "internal", "out of memory");
        }
        tag_add(br, &nb, bs, sx_api_col_i64(res, i, 2));
        tag_add(os, &no, os_name, sx_api_col_i64(res, i, 2));
    }
    write_tag(w, "browser", br, nb);
    write_tag(w, "os", os, no);
    sx_json_arr_close(w);
    PQclear(res);
    return SX_OK;
}

/* Writes "key":[[unixMs,count],...] from a two-column result. */
static void write_series(struct sx_json *w, const char *key, const PGresult *res)
{
    sx_json_key(w, key);
    sx_json_arr_open(w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_arr_open(w);
        sx_json_int(w, sx_api_col_i64(res, i, 0));
        sx_json_int(w, sx_api_col_i64(res, i, 1));
        sx_json_arr_close(w);
    }
    sx_json_arr_close(w);
}

int sx_api_error_get(struct sx_api_req *r, const char *ref)
{
    long long id;
    char proj[16], id_s[24], h0[24], h1[24], d0[24], d1[24];
    PGresult *ires = NULL, *eres = NULL, *hres = NULL, *dres = NULL;
    struct sx_json w;
    int rc = SX_ERR;

    if (resolve_path_ref(r, ref, &id) != SX_OK) return SX_ERR;
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    snprintf(id_s, sizeof(id_s), "%lld", id);
    /* The last 24 hours and the last 30 days (UTC), the current ones included. */
    int64_t hour = r->now_ns - r->now_ns % HOUR_NS, day = r->now_ns - r->now_ns % SX_API_DAY_NS;
    snprintf(h0, sizeof(h0), "%lld", (long long)(hour - 23 * HOUR_NS));
    snprintf(h1, sizeof(h1), "%lld", (long long)hour);
    snprintf(d0, sizeof(d0), "%lld", (long long)(day - 29 * SX_API_DAY_NS));
    snprintf(d1, sizeof(d1), "%lld", (long long)day);
    const char *p2[2] = {proj, id_s};
    if (!(ires = sx_api_exec(r, "SELECT " ISSUE_COLS " FROM issues i WHERE i.project_id = $1 AND i.id = $2", 2, p2,
                             "SELECT issue")))
        goto out;
    if (PQntuples(ires) != 1) {
        sx_api_fail(r, 404, "not_found", "issue not found");
        goto out;
    }
    if (!(eres = sx_api_exec(r, "SELECT " EVENT_COLS " FROM error_events e WHERE e.project_id = $1 AND e.issue_id = $2 "
                                "ORDER BY e.time_ns DESC, e.event_id DESC LIMIT 1", 2, p2, "SELECT latest event")))
        goto out;
    const char *ph[4] = {proj, id_s, h0, h1};
    if (!(hres = sx_api_exec(r,
                             "SELECT h / 1000000, coalesce(c.events, 0) FROM generate_series($3::bigint, $4::bigint, "
                             "3600000000000::bigint) h LEFT JOIN issue_counts_hourly c ON c.project_id = $1 "
                             "AND c.issue_id = $2 AND c.hour_ns = h ORDER BY h",
                             4, ph, "SELECT issue hourly")))
        goto out;
    const char *pd[4] = {proj, id_s, d0, d1};
    if (!(dres = sx_api_exec(r,
                             "SELECT d / 1000000, coalesce((SELECT sum(c.events) FROM issue_counts_hourly c "
                             "WHERE c.project_id = $1 AND c.issue_id = $2 AND c.hour_ns >= d "
                             "AND c.hour_ns < d + 86400000000000), 0) "
                             "FROM generate_series($3::bigint, $4::bigint, 86400000000000::bigint) d ORDER BY d",
                             4, pd, "SELECT issue daily")))
        goto out;

    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    write_issue_at(&w, ires, 0, 0, 1);
    sx_json_key(&w, "traceId");
    sx_json_strz(&w, PQntuples(eres) ? sx_api_col_str(eres, 0, 7) : NULL);
    sx_json_key(&w, "latestEvent");
    if (PQntuples(eres)) write_event(&w, eres, 0);
    else sx_json_null(&w);
    if (write_tags(r, &w, proj, id_s) != SX_OK) goto out;
    write_series(&w, "hourly", hres);
    write_series(&w, "daily", dres);
    rc = sx_api_reply(r, &w);
out:
    PQclear(dres);
    PQclear(hres);
    PQclear(eres);
    PQclear(ires);
    return rc;
}

/* ---- GET .../errors/{issueId}/events -------------------------------------------------- */

struct event_filters {
    long long issue_id;
    long long limit;
    int has_cursor;
    int64_t cursor_ns;
    uint8_t cursor_id[16];
};

static int events_build(struct sx_api_req *r, const void *fv, struct sx_api_qb *b)
{
    const struct event_filters *f = fv;
    struct sx_buf *s = &b->sql;
    int pproj = sx_api_qb_num(b, r->project_id), pid = sx_api_qb_num(b, f->issue_id), ok = 1;
    if (!pproj || !pid) return SX_ERR;
    ok &= sx_buf_printf(s, "SELECT " EVENT_COLS " FROM error_events e WHERE e.project_id = $%d AND e.issue_id = $%d",
                        pproj, pid) == SX_OK;
    if (f->has_cursor) {
        int pc = sx_api_qb_num(b, f->cursor_ns), pe = sx_api_qb_bytea(b, f->cursor_id, 16);
        if (!pc || !pe) return SX_ERR;
        ok &= sx_buf_printf(s, " AND e.time_ns <= $%d AND (e.time_ns, e.event_id) < ($%d::bigint, $%d::bytea)", pc,
                            pc, pe) == SX_OK;
    }
    int pl = sx_api_qb_num(b, f->limit + 1);
    if (!pl) return SX_ERR;
    ok &= sx_buf_printf(s, " ORDER BY e.time_ns DESC, e.event_id DESC LIMIT $%d", pl) == SX_OK;
    return ok ? SX_OK : SX_ERR;
}

static int events_cursor(const PGresult *res, int i, char *cur)
{
    uint8_t id[16];
    const char *hex = PQgetvalue(res, i, 0);
    if (sx_hex_decode(hex, strlen(hex), id, sizeof(id)) != SX_OK) return SX_ERR;
    sx_api_cursor_encode(sx_api_col_i64(res, i, 1), id, cur);
    return SX_OK;
}

static const struct sx_api_list event_list = {"events", "SELECT error_events", SQL_MAX, events_build, write_event,
                                              events_cursor};

int sx_api_error_events(struct sx_api_req *r, const char *ref)
{
    struct event_filters f;
    int bad = 0;
    const char *v;
    memset(&f, 0, sizeof(f));
    f.limit = DEFAULT_LIMIT;
    if (sx_api_limit(r, &f.limit) != SX_OK) return SX_ERR;
    if ((v = sx_api_param1(r, "cursor", &bad))) {
        if (sx_api_cursor_decode(v, &f.cursor_ns, f.cursor_id) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "invalid cursor");
        f.has_cursor = 1;
    }
    if (bad || resolve_path_ref(r, ref, &f.issue_id) != SX_OK) return SX_ERR;
    return sx_api_list_run(r, &event_list, &f, f.limit);
}

/* ---- PATCH .../errors/{issueId} and PATCH .../errors ------------------------------ */

/* A status change as the body asks for it. */
struct change {
    const char *status;
    const char *substatus;      /* what to store (resolved_in_next_release may fall back in SQL) */
    long long ignore_count;     /* ignored_until_count: N more events */
    int64_t ignore_until_ns;    /* ignored_until_time */
};

/* Reads an ignoreUntil value: RFC 3339 or unix ms as a string, or unix ms as a number. */
static int parse_until(const struct sx_jv *v, int64_t *ns)
{
    if (v->type != SX_JV_STRING && v->type != SX_JV_NUMBER) return SX_ERR;
    return sx_api_parse_time(v->str, ns);
}

/* Validates the body of a PATCH: every key known, the values of the right
 * type and meaning. ids_key: whether "ids" is allowed (bulk). */
static int parse_change(struct sx_api_req *r, const struct sx_jv *body, int ids_key, struct change *c)
{
    static const char *const known[] = {"status", "inNextRelease", "ignoreCount", "ignoreUntil", "ids"};
    memset(c, 0, sizeof(*c));
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    for (const struct sx_jv *m = body->first; m; m = m->next) {
        size_t k = 0;
        while (k < SX_ARRAY_LEN(known) && strcmp(m->key, known[k]) != 0) k++;
        if (k == SX_ARRAY_LEN(known) || (!ids_key && k == 4))
            return sx_api_fail(r, 400, "bad_request", "unknown field \"%.64s\"", m->key);
    }
    const struct sx_jv *st = sx_jv_get(body, "status"), *next = sx_jv_get(body, "inNextRelease");
    const struct sx_jv *cnt = sx_jv_get(body, "ignoreCount"), *until = sx_jv_get(body, "ignoreUntil");
    if (!st || st->type != SX_JV_STRING ||
        (strcmp(st->str, "resolved") != 0 && strcmp(st->str, "unresolved") != 0 && strcmp(st->str, "ignored") != 0))
        return sx_api_fail(r, 400, "bad_request", "status must be \"resolved\", \"unresolved\" or \"ignored\"");
    c->status = st->str;
    if (next && next->type != SX_JV_BOOL) return sx_api_fail(r, 400, "bad_request", "inNextRelease must be a boolean");
    if (next && strcmp(c->status, "resolved") != 0)
        return sx_api_fail(r, 400, "bad_request", "inNextRelease goes only with status \"resolved\"");
    if ((cnt || until) && strcmp(c->status, "ignored") != 0)
        return sx_api_fail(r, 400, "bad_request", "ignoreCount and ignoreUntil go only with status \"ignored\"");
    if (cnt && until) return sx_api_fail(r, 400, "bad_request", "give ignoreCount or ignoreUntil, not both");
    if (strcmp(c->status, "unresolved") == 0) {
        c->substatus = "ongoing";
    } else if (strcmp(c->status, "resolved") == 0) {
        c->substatus = next && next->boolean ? "resolved_in_next_release" : "resolved";
    } else if (cnt) {
        if (sx_jv_int(cnt, 1, 1000000000, &c->ignore_count) != SX_OK || cnt->type != SX_JV_NUMBER)
            return sx_api_fail(r, 400, "bad_request", "ignoreCount must be an integer from 1 to 1000000000");
        c->substatus = "ignored_until_count";
    } else if (until) {
        if (parse_until(until, &c->ignore_until_ns) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "ignoreUntil must be RFC 3339 or unix milliseconds");
        if (c->ignore_until_ns <= r->now_ns) return sx_api_fail(r, 400, "bad_request", "ignoreUntil is in the past");
        c->substatus = "ignored_until_time";
    } else {
        c->substatus = "ignored_forever";
    }
    return SX_OK;
}

/* Reads "ids" (or the path's ref) into distinct issue ids; SX_ERR with 400
 * or 404 set. */
static int body_ids(struct sx_api_req *r, const struct sx_jv *arr, const char *what, long long **ids, size_t *n)
{
    if (!arr || arr->type != SX_JV_ARRAY || arr->n == 0 || arr->n > MAX_IDS)
        return sx_api_fail(r, 400, "bad_request", "%s must be an array of 1 to %d issue ids", what, MAX_IDS);
    struct ref *refs = sx_arena_calloc(r->fr->arena, arr->n, sizeof(*refs));
    long long *out = sx_arena_calloc(r->fr->arena, arr->n, sizeof(*out));
    if (!refs || !out) return sx_api_fail(r, 500, "internal", "out of memory");
    size_t k = 0;
    for (const struct sx_jv *v = arr->first; v; v = v->next, k++)
        if (parse_ref_jv(r, v, &refs[k]) != SX_OK)
            return sx_api_fail(r, 400, "bad_request", "%s: item %zu is not an issue id or shortId", what, k);
    if (resolve_refs(r, refs, k, out) != SX_OK) return SX_ERR;
    /* Distinct, in the order given. */
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = 0;
        while (j < m && out[j] != out[i]) j++;
        if (j == m) out[m++] = out[i];
    }
    *ids = out;
    *n = m;
    return SX_OK;
}

int sx_api_errors_patch(struct sx_api_req *r, const char *ref)
{
    struct sx_jv *body;
    struct change c;
    long long one, *ids = &one;
    size_t n = 1;
    char proj[16], cnt_s[24], until_s[24];
    PGresult *res = NULL;
    struct sx_json w;

    if (sx_api_body_json(r, &body) != SX_OK || parse_change(r, body, ref == NULL, &c) != SX_OK) return SX_ERR;
    if (ref) {
        if (resolve_path_ref(r, ref, &one) != SX_OK) return SX_ERR;
    } else if (body_ids(r, sx_jv_get(body, "ids"), "ids", &ids, &n) != SX_OK) {
        return SX_ERR;
    }
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    snprintf(cnt_s, sizeof(cnt_s), "%lld", c.ignore_count);
    snprintf(until_s, sizeof(until_s), "%lld", (long long)c.ignore_until_ns);
    const char *params[6] = {proj, pg_array(r, ids, n), c.status, c.substatus,
                             strcmp(c.substatus, "ignored_until_count") == 0 ? cnt_s : NULL,
                             strcmp(c.substatus, "ignored_until_time") == 0 ? until_s : NULL};
    if (!params[1]) return sx_api_fail(r, 500, "internal", "out of memory");
    res = sx_api_exec(r,
                      "UPDATE issues SET status = $3, "
                      "substatus = CASE WHEN $4 = 'resolved_in_next_release' AND last_release IS NULL "
                      "THEN 'resolved' ELSE $4 END, "
                      "resolved_at = CASE WHEN $3 = 'resolved' THEN now() END, "
                      "resolved_in_release = CASE WHEN $4 = 'resolved_in_next_release' THEN last_release END, "
                      "ignore_until_count = event_count + $5::bigint, ignore_until_ns = $6::bigint, updated_at = now() "
                      "WHERE project_id = $1 AND id = ANY ($2::bigint[]) AND merged_into IS NULL RETURNING id",
                      6, params, "UPDATE issues (status)");
    if (!res) return SX_ERR;
    int changed = PQntuples(res);
    PQclear(res);
    /* resolve_refs saw every issue; one merged meanwhile is a conflict (rolled back). */
    if ((size_t)changed != n) return sx_api_fail(r, 409, "conflict", "an issue changed meanwhile, retry");
    if (!(res = fetch_issues(r, ids, n))) return SX_ERR;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    if (ref) {
        write_issue_at(&w, res, 0, 0, 1);
    } else {
        sx_json_obj_open(&w);
        sx_json_key(&w, "issues");
        sx_json_arr_open(&w);
        for (int i = 0; i < PQntuples(res); i++) write_issue(&w, res, i);
        sx_json_arr_close(&w);
    }
    PQclear(res);
    return sx_api_reply(r, &w);
}

/* ---- POST .../errors/merge ----------------------------------------------------------- */

int sx_api_errors_merge(struct sx_api_req *r)
{
    static const char *const known[] = {"ids", "target"};
    struct sx_jv *body;
    long long *ids, target = 0;
    size_t n;
    char proj[16], target_s[24];
    PGresult *res = NULL;
    struct sx_json w;
    int rc = SX_ERR;

    if (sx_api_body_json(r, &body) != SX_OK) return SX_ERR;
    if (body->type != SX_JV_OBJECT) return sx_api_fail(r, 400, "bad_request", "the body must be a JSON object");
    for (const struct sx_jv *m = body->first; m; m = m->next)
        if (strcmp(m->key, known[0]) != 0 && strcmp(m->key, known[1]) != 0)
            return sx_api_fail(r, 400, "bad_request", "unknown field \"%.64s\"", m->key);
    const struct sx_jv *tv = sx_jv_get(body, "target");
    struct ref tref;
    if (tv && parse_ref_jv(r, tv, &tref) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "target is not an issue id or shortId");
    if (body_ids(r, sx_jv_get(body, "ids"), "ids", &ids, &n) != SX_OK) return SX_ERR;
    if (tv && resolve_refs(r, &tref, 1, &target) != SX_OK) return SX_ERR;
    /* Every issue involved, target first when given. */
    long long *all = sx_arena_calloc(r->fr->arena, n + 1, sizeof(*all));
    size_t na = 0;
    if (!all) return sx_api_fail(r, 500, "internal", "out of memory");
    if (target) all[na++] = target;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != target) all[na++] = ids[i];
    if (na < 2) return sx_api_fail(r, 400, "bad_request", "a merge needs at least two distinct issues");

    snprintf(proj, sizeof(proj), "%d", r->project_id);
    const char *lp[2] = {proj, pg_array(r, all, na)};
    if (!lp[1]) return sx_api_fail(r, 500, "internal", "out of memory");
    /* Row locks on every issue, in id order (no deadlock between merges):
     * persist's count updates wait, and nothing merges them meanwhile. */
    if (!(res = sx_api_exec(r,
                            "SELECT id, event_count, merged_into IS NOT NULL FROM issues "
                            "WHERE project_id = $1 AND id = ANY ($2::bigint[]) ORDER BY id FOR UPDATE",
                            2, lp, "SELECT issues FOR UPDATE")))
        return SX_ERR;
    if ((size_t)PQntuples(res) != na) {
        PQclear(res);
        return sx_api_fail(r, 409, "conflict", "an issue changed meanwhile, retry");
    }
    int64_t best = -1;
    for (int i = 0; i < PQntuples(res); i++) {
        if (strcmp(PQgetvalue(res, i, 2), "t") == 0) {
            PQclear(res);
            return sx_api_fail(r, 409, "conflict", "an issue was merged meanwhile, retry");
        }
        /* Rows come in id order: the first of the most events wins a tie. */
        if (!tv && sx_api_col_i64(res, i, 1) > best) {
            best = sx_api_col_i64(res, i, 1);
            target = sx_api_col_i64(res, i, 0);
        }
    }
    PQclear(res);
    res = NULL;
    long long *src = sx_arena_calloc(r->fr->arena, na, sizeof(*src));
    size_t ns = 0;
    if (!src) return sx_api_fail(r, 500, "internal", "out of memory");
    for (size_t i = 0; i < na; i++)
        if (all[i] != target) src[ns++] = all[i];
    snprintf(target_s, sizeof(target_s), "%lld", target);
    const char *p[3] = {proj, target_s, pg_array(r, src, ns)};
    if (!p[2]) return sx_api_fail(r, 500, "internal", "out of memory");
    static const struct {
        const char *sql, *what;
    } steps[] = {
        {"WITH a AS (SELECT * FROM issues WHERE project_id = $1 AND (id = $2 OR id = ANY ($3::bigint[]))) "
         "UPDATE issues t SET event_count = (SELECT sum(event_count) FROM a), "
         "user_count = (SELECT max(user_count) FROM a), "
         "first_seen_ns = (SELECT min(first_seen_ns) FROM a), last_seen_ns = (SELECT max(last_seen_ns) FROM a), "
         "first_release = coalesce((SELECT first_release FROM a WHERE first_release IS NOT NULL "
         "ORDER BY first_seen_ns, id LIMIT 1), t.first_release), "
         "last_release = coalesce((SELECT last_release FROM a WHERE last_release IS NOT NULL "
         "ORDER BY last_seen_ns DESC, id LIMIT 1), t.last_release), updated_at = now() "
         "WHERE t.project_id = $1 AND t.id = $2",
         "UPDATE issues (merge fold)"},
        {"UPDATE issue_fingerprints SET issue_id = $2 WHERE project_id = $1 AND issue_id = ANY ($3::bigint[])",
         "UPDATE issue_fingerprints (merge)"},
        {"INSERT INTO issue_counts_hourly (project_id, issue_id, hour_ns, events) "
         "SELECT $1::integer, $2::bigint, hour_ns, sum(events) FROM issue_counts_hourly "
         "WHERE project_id = $1 AND issue_id = ANY ($3::bigint[]) GROUP BY hour_ns "
         "ON CONFLICT (project_id, issue_id, hour_ns) DO UPDATE SET events = issue_counts_hourly.events + "
         "EXCLUDED.events",
         "INSERT issue_counts_hourly (merge)"},
        {"DELETE FROM issue_counts_hourly WHERE project_id = $1 AND issue_id = ANY ($3::bigint[]) "
         "AND issue_id <> $2::bigint",
         "DELETE issue_counts_hourly (merge)"},
        {"UPDATE error_events SET issue_id = $2 WHERE project_id = $1 AND issue_id = ANY ($3::bigint[])",
         "UPDATE error_events (merge)"},
        {"UPDATE issues SET merged_into = $2, updated_at = now() WHERE project_id = $1 "
         "AND (id = ANY ($3::bigint[]) OR merged_into = ANY ($3::bigint[]))",
         "UPDATE issues (merged_into)"},
    };
    for (size_t i = 0; i < SX_ARRAY_LEN(steps); i++) {
        if (!(res = sx_api_exec(r, steps[i].sql, 3, p, steps[i].what))) goto out;
        PQclear(res);
        res = NULL;
    }
    if (!(res = fetch_issues(r, &target, 1))) goto out;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, "issue");
    write_issue(&w, res, 0);
    sx_json_key(&w, "merged");
    sx_json_arr_open(&w);
    for (size_t i = 0; i < ns; i++) {
        char s[24];
        snprintf(s, sizeof(s), "%lld", src[i]);
        sx_json_strz(&w, s);
    }
    sx_json_arr_close(&w);
    rc = sx_api_reply(r, &w);
out:
    PQclear(res);
    return rc;
}

/* ---- GET .../errors/stats ----------------------------------------------------------- */

int sx_api_errors_stats(struct sx_api_req *r)
{
    struct sx_api_window win;
    char proj[16], from_s[24], to_s[24], h0[24], h1[24], lim[24];
    PGresult *cres = NULL, *hres = NULL, *tres = NULL;
    struct sx_json w;
    int bad = 0, rc = SX_ERR;
    const char *service = sx_api_param1(r, "service", &bad);
    if (bad || sx_api_window(r, &win) != SX_OK) return SX_ERR;
    int64_t first_hour = win.from_ns - ((win.from_ns % HOUR_NS) + HOUR_NS) % HOUR_NS;
    int64_t last_hour = win.to_ns - ((win.to_ns % HOUR_NS) + HOUR_NS) % HOUR_NS;
    if ((last_hour - first_hour) / HOUR_NS + 1 > MAX_STATS_HOURS)
        return sx_api_fail(r, 400, "bad_request", "the window may span at most %d days", MAX_STATS_HOURS / 24);
    snprintf(proj, sizeof(proj), "%d", r->project_id);
    snprintf(from_s, sizeof(from_s), "%lld", (long long)win.from_ns);
    snprintf(to_s, sizeof(to_s), "%lld", (long long)win.to_ns);
    snprintf(h0, sizeof(h0), "%lld", (long long)first_hour);
    snprintf(h1, sizeof(h1), "%lld", (long long)last_hour);
    snprintf(lim, sizeof(lim), "%d", TOP_ISSUES);
    const char *pc[4] = {proj, from_s, to_s, service};
    if (!(cres = sx_api_exec(r,
                             "SELECT count(*) FILTER (WHERE first_seen_ns >= $2), "
                             "count(*) FILTER (WHERE substatus = 'regressed'), "
                             "count(*) FILTER (WHERE status = 'unresolved') FROM issues "
                             "WHERE project_id = $1 AND merged_into IS NULL AND last_seen_ns >= $2 "
                             "AND first_seen_ns <= $3 AND ($4::text IS NULL OR service = $4)",
                             4, pc, "SELECT issue stats")))
        goto out;
    const char *ph[4] = {proj, h0, h1, service};
    if (!(hres = sx_api_exec(r,
                             "WITH c AS (SELECT c.hour_ns, sum(c.events) AS ev FROM issue_counts_hourly c "
                             "JOIN issues i ON i.id = c.issue_id AND i.project_id = c.project_id "
                             "WHERE c.project_id = $1 AND c.hour_ns >= $2 AND c.hour_ns <= $3 "
                             "AND ($4::text IS NULL OR i.service = $4) GROUP BY c.hour_ns) "
                             "SELECT h / 1000000, coalesce(c.ev, 0) FROM generate_series($2::bigint, $3::bigint, "
                             "3600000000000::bigint) h LEFT JOIN c ON c.hour_ns = h ORDER BY h",
                             4, ph, "SELECT events per hour")))
        goto out;
    const char *pt[5] = {proj, h0, h1, service, lim};
    if (!(tres = sx_api_exec(r,
                             "SELECT " ISSUE_COLS ", t.ev FROM (SELECT c.issue_id, sum(c.events) AS ev "
                             "FROM issue_counts_hourly c WHERE c.project_id = $1 AND c.hour_ns >= $2 "
                             "AND c.hour_ns <= $3 GROUP BY c.issue_id) t "
                             "JOIN issues i ON i.id = t.issue_id AND i.project_id = $1 "
                             "WHERE i.merged_into IS NULL AND ($4::text IS NULL OR i.service = $4) "
                             "ORDER BY t.ev DESC, i.id DESC LIMIT $5",
                             5, pt, "SELECT top issues")))
        goto out;

    int64_t total = 0;
    for (int i = 0; i < PQntuples(hres); i++) total += sx_api_col_i64(hres, i, 1);
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    key_str(&w, "fromUnixNano", from_s);
    key_str(&w, "toUnixNano", to_s);
    key_int(&w, "new", sx_api_col_i64(cres, 0, 0));
    key_int(&w, "regressed", sx_api_col_i64(cres, 0, 1));
    key_int(&w, "unresolved", sx_api_col_i64(cres, 0, 2));
    key_int(&w, "events", total);
    write_series(&w, "eventsPerHour", hres);
    sx_json_key(&w, "topIssues");
    sx_json_arr_open(&w);
    for (int i = 0; i < PQntuples(tres); i++) {
        write_issue_at(&w, tres, i, 0, 1);
        key_int(&w, "windowEvents", sx_api_col_i64(tres, i, IC_NCOLS));
        sx_json_obj_close(&w);
    }
    sx_json_arr_close(&w);
    rc = sx_api_reply(r, &w);
out:
    PQclear(tres);
    PQclear(hres);
    PQclear(cres);
    return rc;
}
