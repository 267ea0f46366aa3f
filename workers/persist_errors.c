/* persist_errors.c: sextant-persist's error tracking: error events derived from spans and logs, issues, counts, users, live entries.
 *
 * Design (the contract with the API is the comment of sql/010_errors.sql).
 *
 * Deriving (main thread, while an entry's rows are encoded). An error event
 * is a span event named "exception" (the name is compared before anything
 * else, so spans without one cost a pointer test per event), a log record
 * carrying exception.type, exception.message or exception.stacktrace, or a
 * log record at ERROR or above (severity number >= 17, or an ERROR/FATAL
 * severity text without a number) when the project's error_logs_as_events
 * is on. Its stack is parsed (lib/stacktrace.h, language hint from the
 * resource's telemetry.sdk.language, the project's in-app patterns) and
 * fingerprinted (lib/grouping.h): an explicit fingerprint attribute
 * (sextant.fingerprint, else error.fingerprint, on the event, the log record
 * or the span; a string, or an array of strings joined by newlines) wins,
 * else the type and in-app frames, else the type and normalized message. The
 * event becomes one COPY text row of the temp table err_stage, with its
 * title, culprit, grouping rule and version; its id is the entry's ledger
 * key with the event's ordinal in the entry folded into its last bytes, so a
 * redelivered entry derives the same ids. Project rules (inapp_include,
 * inapp_exclude, error_logs_as_events) are cached per project for
 * RULES_TTL_NS.
 *
 * Writing (writer thread, in the batch's transaction, after the ledger
 * insert told which entries are fresh). The events of every listed entry
 * are COPYed into err_stage; those of entries that were not fresh are
 * marked fresh = false and only serve the PFADDs below (so a crash between
 * COMMIT and PFADD is repaired by the redelivery). For the fresh ones:
 * releases are inserted (first seen = earliest event; ON CONFLICT DO
 * NOTHING); fingerprints are resolved through issue_fingerprints; if some
 * are new, the projects' issue_seq rows are locked (in project order), the
 * lookup is repeated (another instance may have committed them meanwhile),
 * the issues are created with the next short_seq numbers and their
 * fingerprints inserted ON CONFLICT DO NOTHING; an issue whose fingerprint
 * lost anyway is deleted and its events take the winner's issue. The
 * touched issues are then locked in id order and updated in one statement
 * from the batch's aggregate (count, first/last seen, latest title, message,
 * culprit, level, service, type, first/last release by releases.first_seen_ns)
 * with the status transitions:
 *   resolved + (no resolved_in_release, or an event of a release first seen
 *     after it)                                -> unresolved / regressed
 *   ignored_until_count + event_count reaching ignore_until_count,
 *   ignored_until_time + an event after ignore_until_ns
 *                                              -> unresolved / escalating
 *   ignored_forever stays; an event without a release never regresses an
 *   issue resolved in a release.
 * A regression clears resolved_at and resolved_in_release, an escalation the
 * ignore bounds. Then the events go into error_events and the hourly counts
 * are added. Lock order everywhere: issue_seq by project, issues by id,
 * hourly counts by key, so two persist processes never deadlock on them
 * (a deadlock would only retry the batch anyway).
 *
 * After COMMIT (writer thread): PFADD <prefix>:{p<id>}:issue:<issue>:users for
 * every (issue, user) of the batch's events, fresh or redelivered (PFADD is
 * idempotent), and XADD <prefix>:{p<id>}:live MAXLEN ~ 10000 of issue.new and
 * issue.regressed entries (lib/stream.h). The issues whose HLL got a PFADD
 * are remembered; the main thread flushes their PFCOUNT into
 * issues.user_count every USERS_FLUSH_EVERY (persist.c). */
#include "persist.h"

#include "grouping.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
#include "stacktrace.h"
#include "stream.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COPY_MAX ((size_t)256 << 20)
#define JSON_MAX ((size_t)16 << 20)
#define ARENA_CHUNK ((size_t)256 << 10)
#define ARENA_MAX ((size_t)8 << 20)
#define RULES_TTL_NS (10LL * 1000000000LL)
#define RULES_RETRY_NS (1000000000LL)
#define RULES_MAX_PROJECTS 4096
#define TITLE_MAX 512
#define CULPRIT_MAX 512
#define LIVE_MAXLEN "10000"
#define HOUR_NS "3600000000000"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;

const struct sx_persist_signal sx_persist_errors_sig = {
    (enum sx_persist_kind)SX_PERSIST_NKINDS, "error events", NULL,
    "SELECT sextant_ensure_error_event_partition($1::bigint)", "", "", ""};

/* err_stage: one row per derived event; the COPY text rows carry the columns
 * up to grouping_version, fresh and issue_id are filled in by the write. */
#define STAGE_COLUMNS \
    "ent, ord, project_id, time_ns, event_id, fingerprint, source, level, service, release, environment, " \
    "trace_id, span_id, type, message, stacktrace, lang, frames, handled, user_id, route, url, user_agent, " \
    "attributes, title, culprit, grouping_rule, grouping_version"

const char sx_persist_errors_session_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS err_stage (ent integer, ord integer, project_id integer, time_ns bigint, "
    "event_id bytea, fingerprint bytea, source text, level text, service text, release text, environment text, "
    "trace_id bytea, span_id bytea, type text, message text, stacktrace text, lang text, frames json, "
    "handled boolean, user_id text, route text, url text, user_agent text, attributes json, title text, "
    "culprit text, grouping_rule text, grouping_version text, fresh boolean NOT NULL DEFAULT true, "
    "issue_id bigint) ON COMMIT DELETE ROWS";

/* ---- SQL of the write, in the order it runs ------------------------------ */

static const char stale_sql[] = "UPDATE err_stage SET fresh = false WHERE ent = ANY($1::int[])";

static const char releases_sql[] =
    "INSERT INTO releases (project_id, version, first_seen_ns) "
    "SELECT project_id, release, min(time_ns) FROM err_stage WHERE fresh AND release IS NOT NULL "
    "GROUP BY 1, 2 ORDER BY 1, 2 ON CONFLICT DO NOTHING";

static const char resolve_sql[] =
    "UPDATE err_stage s SET issue_id = f.issue_id FROM issue_fingerprints f "
    "WHERE s.issue_id IS NULL AND f.project_id = s.project_id AND f.fingerprint = s.fingerprint";

static const char new_projects_sql[] =
    "SELECT DISTINCT project_id FROM err_stage WHERE fresh AND issue_id IS NULL ORDER BY 1";

static const char seq_rows_sql[] =
    "INSERT INTO issue_seq (project_id) SELECT unnest($1::int[]) ORDER BY 1 ON CONFLICT DO NOTHING";

static const char seq_lock_sql[] =
    "SELECT project_id FROM issue_seq WHERE project_id = ANY($1::int[]) ORDER BY project_id FOR UPDATE";

/* New fingerprints (first event of each, by time) become issues numbered in
 * order of first event; returns each issue and whether its fingerprint won. */
static const char create_sql[] =
    "WITH nf AS ("
    "  SELECT DISTINCT ON (project_id, fingerprint) project_id, fingerprint, grouping_version, grouping_rule,"
    "         title, type, message, culprit, level, service, time_ns"
    "  FROM err_stage WHERE fresh AND issue_id IS NULL ORDER BY project_id, fingerprint, time_ns, ord"
    "), num AS ("
    "  SELECT nf.*, row_number() OVER (PARTITION BY project_id ORDER BY time_ns, fingerprint) AS rn,"
    "         count(*) OVER (PARTITION BY project_id) AS cnt FROM nf"
    "), seq AS ("
    "  UPDATE issue_seq q SET last_seq = q.last_seq + c.cnt"
    "  FROM (SELECT DISTINCT project_id, cnt FROM num) c WHERE q.project_id = c.project_id"
    "  RETURNING q.project_id, q.last_seq - c.cnt AS base"
    "), ins AS ("
    "  INSERT INTO issues (project_id, short_seq, grouping_version, grouping_rule, title, type, message, culprit,"
    "                      level, service, first_seen_ns, last_seen_ns)"
    "  SELECT n.project_id, (s.base + n.rn)::integer, n.grouping_version, n.grouping_rule, n.title, n.type,"
    "         n.message, n.culprit, n.level, n.service, n.time_ns, n.time_ns"
    "  FROM num n JOIN seq s USING (project_id) ORDER BY n.project_id, n.rn"
    "  RETURNING id, project_id, short_seq"
    "), fp AS ("
    "  INSERT INTO issue_fingerprints (project_id, fingerprint, issue_id, grouping_version)"
    "  SELECT n.project_id, n.fingerprint, i.id, n.grouping_version"
    "  FROM ins i JOIN seq s USING (project_id) JOIN num n ON n.project_id = i.project_id AND s.base + n.rn = i.short_seq"
    "  ORDER BY n.project_id, n.fingerprint"
    "  ON CONFLICT DO NOTHING RETURNING issue_id"
    ") SELECT i.id, fp.issue_id IS NOT NULL FROM ins i LEFT JOIN fp ON fp.issue_id = i.id";

static const char losers_sql[] = "DELETE FROM issues WHERE id = ANY($1::bigint[])";

static const char lock_issues_sql[] =
    "SELECT id FROM issues WHERE id IN (SELECT DISTINCT issue_id FROM err_stage WHERE fresh AND issue_id IS NOT NULL) "
    "ORDER BY id FOR UPDATE";

static const char follow_sql[] =
    "UPDATE err_stage s SET issue_id = i.merged_into FROM issues i "
    "WHERE s.issue_id = i.id AND i.merged_into IS NOT NULL";

#define REL_NS(proj, ver) "(SELECT x.first_seen_ns FROM releases x WHERE x.project_id = " proj " AND x.version = " ver ")"
#define LATEST(col) "(array_agg(" col " ORDER BY time_ns DESC, ord DESC))[1] AS " col

/* The batch's aggregate per issue folded into issues, with the status
 * transitions of the header comment; returns the issues to publish: the
 * ones created by this write ($1) and the regressed ones. */
static const char update_sql[] =
    "WITH a AS ("
    "  SELECT issue_id, count(*) AS n, min(time_ns) AS first_ns, max(time_ns) AS last_ns, " LATEST("title") ", "
    LATEST("message") ", " LATEST("culprit") ", " LATEST("level") ", " LATEST("service") ", " LATEST("type")
    "  FROM err_stage WHERE fresh AND issue_id IS NOT NULL GROUP BY issue_id"
    "), r AS ("
    "  SELECT s.issue_id,"
    "         (array_agg(s.release ORDER BY rl.first_seen_ns, s.release))[1] AS first_rel,"
    "         min(rl.first_seen_ns) AS first_rel_ns,"
    "         (array_agg(s.release ORDER BY rl.first_seen_ns DESC, s.release DESC))[1] AS last_rel,"
    "         max(rl.first_seen_ns) AS last_rel_ns"
    "  FROM err_stage s JOIN releases rl ON rl.project_id = s.project_id AND rl.version = s.release"
    "  WHERE s.fresh AND s.issue_id IS NOT NULL GROUP BY s.issue_id"
    "), c AS ("
    "  SELECT a.*, r.first_rel, r.first_rel_ns, r.last_rel, r.last_rel_ns,"
    "         " REL_NS("i.project_id", "i.first_release") " AS cur_first_ns,"
    "         " REL_NS("i.project_id", "i.last_release") " AS cur_last_ns,"
    "         CASE"
    "           WHEN i.status = 'resolved' AND (i.resolved_in_release IS NULL OR r.last_rel_ns > COALESCE("
    "                " REL_NS("i.project_id", "i.resolved_in_release") ", -9223372036854775808))"
    "             THEN 'regressed'"
    "           WHEN i.status = 'ignored' AND i.substatus = 'ignored_until_count'"
    "                AND i.event_count + a.n >= i.ignore_until_count THEN 'escalating'"
    "           WHEN i.status = 'ignored' AND i.substatus = 'ignored_until_time'"
    "                AND a.last_ns > i.ignore_until_ns THEN 'escalating'"
    "         END AS reopen"
    "  FROM a JOIN issues i ON i.id = a.issue_id LEFT JOIN r ON r.issue_id = a.issue_id"
    "), u AS ("
    "  UPDATE issues i SET"
    "    event_count = i.event_count + c.n,"
    "    first_seen_ns = LEAST(i.first_seen_ns, c.first_ns),"
    "    last_seen_ns = GREATEST(i.last_seen_ns, c.last_ns),"
    "    title = CASE WHEN c.last_ns >= i.last_seen_ns THEN c.title ELSE i.title END,"
    "    message = CASE WHEN c.last_ns >= i.last_seen_ns THEN c.message ELSE i.message END,"
    "    culprit = CASE WHEN c.last_ns >= i.last_seen_ns THEN c.culprit ELSE i.culprit END,"
    "    level = CASE WHEN c.last_ns >= i.last_seen_ns THEN c.level ELSE i.level END,"
    "    service = CASE WHEN c.last_ns >= i.last_seen_ns THEN c.service ELSE i.service END,"
    "    type = CASE WHEN c.last_ns >= i.last_seen_ns THEN c.type ELSE i.type END,"
    "    first_release = CASE WHEN c.first_rel IS NOT NULL AND (i.first_release IS NULL OR c.cur_first_ns IS NULL"
    "                         OR c.first_rel_ns < c.cur_first_ns) THEN c.first_rel ELSE i.first_release END,"
    "    last_release = CASE WHEN c.last_rel IS NOT NULL AND (i.last_release IS NULL OR c.cur_last_ns IS NULL"
    "                        OR c.last_rel_ns > c.cur_last_ns) THEN c.last_rel ELSE i.last_release END,"
    "    status = CASE WHEN c.reopen IS NOT NULL THEN 'unresolved' ELSE i.status END,"
    "    substatus = COALESCE(c.reopen, i.substatus),"
    "    resolved_at = CASE WHEN c.reopen = 'regressed' THEN NULL ELSE i.resolved_at END,"
    "    resolved_in_release = CASE WHEN c.reopen = 'regressed' THEN NULL ELSE i.resolved_in_release END,"
    "    ignore_until_count = CASE WHEN c.reopen = 'escalating' THEN NULL ELSE i.ignore_until_count END,"
    "    ignore_until_ns = CASE WHEN c.reopen = 'escalating' THEN NULL ELSE i.ignore_until_ns END,"
    "    updated_at = now()"
    "  FROM c WHERE i.id = c.issue_id"
    "  RETURNING i.id, i.project_id, i.short_seq, i.title, c.reopen"
    ") SELECT u.id, u.project_id, u.short_seq, u.title, p.slug,"
    "         CASE WHEN u.id = ANY($1::bigint[]) THEN 'issue.new' ELSE 'issue.regressed' END"
    "  FROM u JOIN projects p ON p.id = u.project_id"
    "  WHERE u.id = ANY($1::bigint[]) OR u.reopen = 'regressed' ORDER BY u.id";

static const char events_sql[] =
    "INSERT INTO error_events (project_id, time_ns, event_id, issue_id, fingerprint, source, level, service, "
    "release, environment, trace_id, span_id, type, message, stacktrace, lang, frames, handled, user_id, route, url, "
    "user_agent, attributes) "
    "SELECT project_id, time_ns, event_id, issue_id, fingerprint, source, level, service, release, environment, "
    "trace_id, span_id, type, message, stacktrace, lang, frames, handled, user_id, route, url, user_agent, attributes "
    "FROM err_stage WHERE fresh AND issue_id IS NOT NULL ORDER BY ord";

static const char hourly_sql[] =
    "INSERT INTO issue_counts_hourly AS h (project_id, issue_id, hour_ns, events) "
    "SELECT project_id, issue_id, time_ns - ((time_ns % " HOUR_NS ") + " HOUR_NS ") % " HOUR_NS ", count(*) "
    "FROM err_stage WHERE fresh AND issue_id IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
    "ON CONFLICT (project_id, issue_id, hour_ns) DO UPDATE SET events = h.events + EXCLUDED.events";

static const char users_sql[] =
    "SELECT DISTINCT project_id, issue_id, user_id FROM err_stage WHERE issue_id IS NOT NULL AND user_id IS NOT NULL";

/* ---- batch state -------------------------------------------------------- */

struct sx_persist_errs *sx_persist_errs_create(void)
{
    struct sx_persist_errs *e = sx_xcalloc(1, sizeof(*e));
    sx_buf_init(&e->copy, COPY_MAX);
    sx_buf_init(&e->json, JSON_MAX);
    sx_buf_init(&e->b64, JSON_MAX);
    sx_buf_init(&e->tmp, JSON_MAX);
    sx_copyrow_days_init(&e->days);
    return e;
}

void sx_persist_errs_destroy(struct sx_persist_errs *e)
{
    if (!e) return;
    sx_buf_term(&e->copy);
    sx_buf_term(&e->json);
    sx_buf_term(&e->b64);
    sx_buf_term(&e->tmp);
    sx_copyrow_days_term(&e->days);
    free(e);
}

void sx_persist_errs_reset(struct sx_persist_errs *e)
{
    sx_buf_reset(&e->copy);
    sx_copyrow_days_reset(&e->days);
    e->events = 0;
}

void sx_persist_errs_mark(const struct sx_persist_errs *e, struct sx_persist_errs_mark *m)
{
    m->len = e->copy.len;
    m->ndays = e->days.n;
    m->sorted = e->days.sorted;
    m->events = e->events;
}

void sx_persist_errs_rewind(struct sx_persist_errs *e, const struct sx_persist_errs_mark *m)
{
    e->copy.len = m->len;
    if (e->copy.data) e->copy.data[m->len] = '\0';
    e->days.n = m->ndays;
    e->days.sorted = m->sorted;
    e->events = m->events;
}

const int64_t *sx_persist_errs_days(struct sx_persist_errs *e, size_t *n)
{
    return sx_copyrow_days_get(&e->days, n);
}

/* ---- project rules cache -------------------------------------------------- */

struct rules {
    long long project;
    int64_t expires_ns;
    int logs_as_events;
    char *text;               /* the patterns, NUL-separated (malloc'd) */
    const char **inc, **exc;  /* into text (malloc'd) */
    struct sx_st_rules st;
};

struct sx_persist_errctx {
    struct sx_persist_db *db; /* main thread's connection; borrowed */
    struct sx_arena *arena;   /* one event's parse at a time */
    struct rules *r;
    size_t n, cap;
};

struct sx_persist_errctx *sx_persist_errctx_create(struct sx_persist_db *db)
{
    struct sx_persist_errctx *cx = sx_xcalloc(1, sizeof(*cx));
    cx->db = db;
    cx->arena = sx_arena_create(ARENA_CHUNK, ARENA_MAX);
    return cx;
}

static void rules_free(struct rules *r)
{
    free(r->text);
    free(r->inc);
    free(r->exc);
    r->text = NULL;
    r->inc = r->exc = NULL;
    memset(&r->st, 0, sizeof(r->st));
}

void sx_persist_errctx_destroy(struct sx_persist_errctx *cx)
{
    if (!cx) return;
    for (size_t i = 0; i < cx->n; i++) rules_free(&cx->r[i]);
    free(cx->r);
    sx_arena_destroy(cx->arena);
    free(cx);
}

/* Splits the newline-separated patterns inc and exc into r (empty lines
 * dropped). SX_ERR when memory ran out (r is left without patterns). */
static int rules_parse(struct rules *r, const char *inc, const char *exc)
{
    size_t li = strlen(inc), le = strlen(exc), ni = 0, ne = 0;
    r->text = malloc(li + le + 2);
    r->inc = malloc((li + 1) * sizeof(*r->inc));
    r->exc = malloc((le + 1) * sizeof(*r->exc));
    if (!r->text || !r->inc || !r->exc) {
        rules_free(r);
        return SX_ERR;
    }
    memcpy(r->text, inc, li + 1);
    memcpy(r->text + li + 1, exc, le + 1);
    for (int which = 0; which < 2; which++) {
        char *p = which ? r->text + li + 1 : r->text;
        while (*p) {
            char *nl = strchr(p, '\n');
            if (nl) *nl = '\0';
            if (*p) {
                if (which) r->exc[ne++] = p;
                else r->inc[ni++] = p;
            }
            if (!nl) break;
            p = nl + 1;
        }
    }
    r->st.include = r->inc;
    r->st.ninclude = ni;
    r->st.exclude = r->exc;
    r->st.nexclude = ne;
    return SX_OK;
}

/* The project's rules, read again when older than RULES_TTL_NS. When
 * PostgreSQL cannot answer, the last rules read (or the defaults: logs as
 * events, no patterns) serve for RULES_RETRY_NS. Never NULL. */
static const struct rules *rules_get(struct sx_persist_errctx *cx, long long project)
{
    static const struct rules dflt = {0, 0, 1, NULL, NULL, NULL, {NULL, 0, NULL, 0}};
    int64_t now = sx_mono_ns();
    struct rules *r = NULL;
    for (size_t i = 0; i < cx->n; i++)
        if (cx->r[i].project == project) {
            r = &cx->r[i];
            break;
        }
    if (r && r->expires_ns > now) return r;
    if (!r) {
        if (cx->n == RULES_MAX_PROJECTS) {
            for (size_t i = 0; i < cx->n; i++) rules_free(&cx->r[i]);
            cx->n = 0; /* only a cache */
        }
        if (cx->n == cx->cap) {
            size_t cap = cx->cap ? cx->cap * 2 : 16;
            struct rules *p = realloc(cx->r, cap * sizeof(*p));
            if (!p) return &dflt;
            cx->r = p;
            cx->cap = cap;
        }
        r = &cx->r[cx->n++];
        memset(r, 0, sizeof(*r));
        r->project = project;
        r->logs_as_events = 1;
    }
    r->expires_ns = now + RULES_RETRY_NS;
    char id[24];
    const char *params[1] = {id};
    snprintf(id, sizeof(id), "%lld", project);
    if (sx_persist_db_ready(cx->db) != SX_OK) return r;
    PGresult *res = sx_pg_query(cx->db->conn,
                                "SELECT error_logs_as_events, array_to_string(inapp_include, E'\\n'), "
                                "array_to_string(inapp_exclude, E'\\n') FROM projects WHERE id = $1::integer",
                                1, params, "SELECT projects (error rules)");
    if (!res) return r;
    if (PQntuples(res) == 1 && PQnfields(res) == 3) {
        rules_free(r);
        r->logs_as_events = PQgetvalue(res, 0, 0)[0] == 't';
        if (rules_parse(r, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2)) == SX_OK) r->expires_ns = now + RULES_TTL_NS;
    }
    PQclear(res);
    return r;
}

/* ---- attributes ---------------------------------------------------------- */

/* The last attribute named key (jsonb keeps the last duplicate too). */
static const pb_any *find(pb_kv **kvs, size_t n, const char *key)
{
    for (size_t i = n; i-- > 0;)
        if (kvs[i] && kvs[i]->key && kvs[i]->value && strcmp(kvs[i]->key, key) == 0) return kvs[i]->value;
    return NULL;
}

/* A non-empty string attribute (or an integer one, printed into buf of 24
 * bytes), else NULL. */
static const char *find_text(pb_kv **kvs, size_t n, const char *key, char *buf)
{
    const pb_any *v = find(kvs, n, key);
    if (!v) return NULL;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        return v->string_value && v->string_value[0] ? v->string_value : NULL;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE && buf) {
        snprintf(buf, 24, "%lld", (long long)v->int_value);
        return buf;
    }
    return NULL;
}

/* The first of keys found as text in either attribute list (a first). */
static const char *find_any(pb_kv **a, size_t na, pb_kv **b, size_t nb, const char *const *keys, char *buf)
{
    for (; *keys; keys++) {
        const char *s = find_text(a, na, *keys, buf);
        if (!s) s = find_text(b, nb, *keys, buf);
        if (s) return s;
    }
    return NULL;
}

/* exception.escaped: handled is its negation; -1 when absent. */
static int find_handled(pb_kv **kvs, size_t n)
{
    const pb_any *v = find(kvs, n, "exception.escaped");
    if (!v) return -1;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE) return !v->bool_value;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value)
        return strcasecmp(v->string_value, "true") != 0;
    return -1;
}

/* The explicit fingerprint of a list: sextant.fingerprint, else
 * error.fingerprint; a string, or an array of strings joined by newlines
 * into tmp. NULL when absent or blank. */
static const char *find_fingerprint(pb_kv **kvs, size_t n, struct sx_buf *tmp)
{
    static const char *const keys[] = {"sextant.fingerprint", "error.fingerprint"};
    for (size_t k = 0; k < SX_ARRAY_LEN(keys); k++) {
        const pb_any *v = find(kvs, n, keys[k]);
        if (!v) continue;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value &&
            v->string_value[strspn(v->string_value, " \t\r\n")])
            return v->string_value;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE && v->array_value &&
            v->array_value->n_values) {
            sx_buf_reset(tmp);
            for (size_t i = 0; i < v->array_value->n_values; i++) {
                const pb_any *x = v->array_value->values[i];
                if (!x || x->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ||
                    !x->string_value)
                    continue;
                if (tmp->len && sx_buf_putc(tmp, '\n') != SX_OK) return NULL;
                if (sx_buf_puts(tmp, x->string_value) != SX_OK) return NULL;
            }
            if (tmp->len && tmp->data[strspn(tmp->data, " \t\r\n")]) return tmp->data;
        }
    }
    return NULL;
}

static int has_exception_attr(pb_kv **kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = kvs[i] ? kvs[i]->key : NULL;
        if (k && k[0] == 'e' && strncmp(k, "exception.", 10) == 0 &&
            (strcmp(k + 10, "type") == 0 || strcmp(k + 10, "message") == 0 || strcmp(k + 10, "stacktrace") == 0))
            return 1;
    }
    return 0;
}

/* ---- one event ----------------------------------------------------------- */

/* Everything an event row needs, gathered from the span or log record. */
struct ev {
    long long project;
    int64_t t;
    uint8_t id[16];
    const char *source, *level, *service, *release, *env;
    const uint8_t *trace_id, *span_id; /* NULL unless 16 / 8 bytes */
    const char *type, *message;        /* NULL when not given */
    const char *stack;
    const char *user, *route, *url, *ua, *fingerprint;
    int handled;                       /* -1 unknown */
    pb_kv **a1, **a2;                  /* attributes: record/span, then event (may be NULL) */
    size_t n1, n2;
    enum sx_st_lang hint;
    char user_buf[24];
};

static int tab(struct sx_buf *out)
{
    return sx_buf_putc(out, '\t');
}

static int put_opt(struct sx_buf *out, const char *s)
{
    return sx_copyrow_opt_text(out, s) || tab(out);
}

static int put_str(struct sx_buf *out, const char *s)
{
    return sx_copyrow_text(out, s ? s : "", s ? strlen(s) : 0) || tab(out);
}

/* Frames as JSON, oldest first: [{"function","module","file","line","column","inApp"}]. */
static void frames_json(struct sx_json *w, const struct sx_st_trace *tr)
{
    sx_json_arr_open(w);
    for (size_t i = 0; tr && i < tr->n; i++) {
        const struct sx_st_frame *f = &tr->frames[i];
        sx_json_obj_open(w);
        sx_json_key(w, "function");
        sx_json_strz(w, f->function);
        sx_json_key(w, "module");
        sx_json_strz(w, f->module);
        sx_json_key(w, "file");
        sx_json_strz(w, f->file);
        sx_json_key(w, "line");
        sx_json_int(w, f->line);
        sx_json_key(w, "column");
        sx_json_int(w, f->column);
        sx_json_key(w, "inApp");
        sx_json_bool(w, f->in_app != 0);
        sx_json_obj_close(w);
    }
    sx_json_arr_close(w);
}

/* Both attribute lists as one object, exception.stacktrace left out (it has
 * its own column). */
static void attrs_json(struct sx_json *w, struct sx_buf *b64, const struct ev *v)
{
    sx_json_obj_open(w);
    for (int which = 0; which < 2; which++) {
        pb_kv **kvs = which ? v->a2 : v->a1;
        size_t n = which ? v->n2 : v->n1;
        for (size_t i = 0; i < n; i++) {
            if (!kvs[i] || !kvs[i]->key || strcmp(kvs[i]->key, "exception.stacktrace") == 0) continue;
            sx_json_key(w, kvs[i]->key);
            sx_copyrow_json_any(w, b64, kvs[i]->value, 0);
        }
    }
    sx_json_obj_close(w);
}

/* Parses, fingerprints and appends one event as an err_stage COPY row. */
static int emit(struct sx_persist_errctx *cx, struct sx_persist_errs *out, size_t ent, const struct ev *v)
{
    struct sx_st_trace tr;
    struct sx_grouping g;
    char title[TITLE_MAX], culprit[CULPRIT_MAX];
    const char *type = v->type, *message = v->message;
    int have_trace = 0;
    struct sx_buf *o = &out->copy;
    struct sx_json w;

    sx_arena_reset(cx->arena);
    memset(&tr, 0, sizeof(tr));
    if (v->stack) {
        const struct rules *r = rules_get(cx, v->project);
        if (sx_st_parse(v->stack, strlen(v->stack), v->hint, &r->st, cx->arena, &tr) == SX_OK &&
            tr.lang != SX_ST_UNKNOWN)
            have_trace = 1;
        /* The message the stack repeats, for errors that carry only a stack. */
        if (have_trace && (!type || !*type) && tr.type && *tr.type) type = tr.type;
        if (have_trace && (!message || !*message) && tr.message && *tr.message) message = tr.message;
    }
    if (sx_grouping_fingerprint(v->fingerprint, type && *type ? type : NULL, message, have_trace ? &tr : NULL, &g) !=
        SX_OK)
        return SX_ERR;
    sx_grouping_title(type, message, title, sizeof(title));
    culprit[0] = '\0';
    if (have_trace) sx_grouping_culprit(&tr, culprit, sizeof(culprit));
    if (!type || !*type) type = have_trace || v->stack ? sx_grouping_default_type(tr.lang) : "";
    if (v->source[0] == 'l' && !v->type && !v->stack) type = ""; /* a plain ERROR log has no type */

    if (sx_buf_printf(o, "%zu\t%zu\t%lld\t%lld\t", ent, out->events, v->project, (long long)v->t)) return SX_ERR;
    if (sx_copyrow_bytea(o, v->id, 16) || tab(o) || sx_copyrow_bytea(o, g.hash, SX_GROUPING_HASH_LEN) || tab(o))
        return SX_ERR;
    if (put_str(o, v->source) || put_str(o, v->level) || put_str(o, v->service) || put_opt(o, v->release) ||
        put_opt(o, v->env))
        return SX_ERR;
    if ((v->trace_id ? sx_copyrow_bytea(o, v->trace_id, 16) : sx_buf_puts(o, "\\N")) || tab(o)) return SX_ERR;
    if ((v->span_id ? sx_copyrow_bytea(o, v->span_id, 8) : sx_buf_puts(o, "\\N")) || tab(o)) return SX_ERR;
    if (put_str(o, type) || put_str(o, message) || put_opt(o, v->stack)) return SX_ERR;
    if (put_str(o, sx_st_lang_name(have_trace ? tr.lang : v->hint))) return SX_ERR;
    sx_buf_reset(&out->json);
    sx_json_init(&w, &out->json);
    frames_json(&w, have_trace ? &tr : NULL);
    if (w.err || sx_copyrow_json(o, out->json.data, out->json.len) || tab(o)) return SX_ERR;
    if (sx_buf_puts(o, v->handled < 0 ? "\\N\t" : v->handled ? "t\t" : "f\t")) return SX_ERR;
    if (put_opt(o, v->user) || put_opt(o, v->route) || put_opt(o, v->url) || put_opt(o, v->ua)) return SX_ERR;
    sx_buf_reset(&out->json);
    sx_json_init(&w, &out->json);
    attrs_json(&w, &out->b64, v);
    if (w.err || sx_copyrow_json(o, out->json.data, out->json.len) || tab(o)) return SX_ERR;
    if (put_str(o, title) || put_str(o, culprit) || put_str(o, sx_grouping_rule_name(g.rule))) return SX_ERR;
    if (sx_buf_puts(o, SX_GROUPING_VERSION "\n")) return SX_ERR;
    if (sx_copyrow_days_add(&out->days, sx_spanrow_day(v->t)) != SX_OK) return SX_ERR;
    out->events++;
    return SX_OK;
}

/* The event id: the entry's key with the event's ordinal in the entry
 * folded into its last four bytes. */
static void event_id(uint8_t id[16], const uint8_t hash[SX_PERSIST_HASH_LEN], size_t ordinal)
{
    memcpy(id, hash, 16);
    id[12] ^= (uint8_t)(ordinal >> 24);
    id[13] ^= (uint8_t)(ordinal >> 16);
    id[14] ^= (uint8_t)(ordinal >> 8);
    id[15] ^= (uint8_t)ordinal;
}

static const char *const USER_KEYS[] = {"enduser.id", "user.id", NULL};
static const char *const URL_KEYS[] = {"url.full", "http.url", "url.path", "http.target", NULL};
static const char *const UA_KEYS[] = {"user_agent.original", "http.user_agent", NULL};
static const char *const ROUTE_KEYS[] = {"http.route", NULL};

/* Resource-level fields shared by the events of one resource. */
static void resource_fields(struct ev *v, pb_kv **kvs, size_t n)
{
    const char *s = sx_copyrow_find_str(kvs, n, "service.name");
    v->service = s ? s : "unknown_service";
    v->release = sx_copyrow_find_str(kvs, n, "service.version");
    v->env = sx_copyrow_find_str(kvs, n, "deployment.environment.name");
    if (!v->env) v->env = sx_copyrow_find_str(kvs, n, "deployment.environment");
    v->hint = sx_st_lang_from_sdk(sx_copyrow_find_str(kvs, n, "telemetry.sdk.language"));
}

static int derive_spans(struct sx_persist_errctx *cx, struct sx_persist_errs *out, const trace_req *req,
                        long long project, const uint8_t *hash, size_t ent, size_t *nev)
{
    struct ev v;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[r];
        int have_res = 0;
        if (!rs) continue;
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[s];
            if (!ss) continue;
            for (size_t i = 0; i < ss->n_spans; i++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[i];
                if (!sp || sp->n_events == 0) continue;
                for (size_t k = 0; k < sp->n_events; k++) {
                    const Opentelemetry__Proto__Trace__V1__Span__Event *e = sp->events[k];
                    /* The hot path: one byte compare for every other event. */
                    if (!e || !e->name || e->name[0] != 'e' || strcmp(e->name, "exception") != 0) continue;
                    /* Spans the row encoder skips have no events either. */
                    if (sp->trace_id.len != 16 || sp->span_id.len != 8 ||
                        sp->start_time_unix_nano > (uint64_t)SX_COPYROW_TIME_MAX_NS)
                        break;
                    if (!have_res) {
                        memset(&v, 0, sizeof(v));
                        resource_fields(&v, rs->resource ? rs->resource->attributes : NULL,
                                        rs->resource ? rs->resource->n_attributes : 0);
                        have_res = 1;
                    }
                    struct ev x = v;
                    x.project = project;
                    x.t = e->time_unix_nano && e->time_unix_nano <= (uint64_t)SX_COPYROW_TIME_MAX_NS
                              ? (int64_t)e->time_unix_nano
                              : (int64_t)sp->start_time_unix_nano;
                    event_id(x.id, hash, *nev);
                    x.source = "span";
                    x.level = "error";
                    x.trace_id = sp->trace_id.data;
                    x.span_id = sp->span_id.data;
                    x.a1 = sp->attributes;
                    x.n1 = sp->n_attributes;
                    x.a2 = e->attributes;
                    x.n2 = e->n_attributes;
                    x.type = sx_copyrow_find_str(e->attributes, e->n_attributes, "exception.type");
                    x.message = sx_copyrow_find_str(e->attributes, e->n_attributes, "exception.message");
                    x.stack = sx_copyrow_find_str(e->attributes, e->n_attributes, "exception.stacktrace");
                    x.handled = find_handled(e->attributes, e->n_attributes);
                    x.fingerprint = find_fingerprint(e->attributes, e->n_attributes, &out->tmp);
                    if (!x.fingerprint) x.fingerprint = find_fingerprint(sp->attributes, sp->n_attributes, &out->tmp);
                    x.user = find_any(e->attributes, e->n_attributes, sp->attributes, sp->n_attributes, USER_KEYS,
                                      x.user_buf);
                    x.route = find_any(sp->attributes, sp->n_attributes, NULL, 0, ROUTE_KEYS, NULL);
                    x.url = find_any(sp->attributes, sp->n_attributes, NULL, 0, URL_KEYS, NULL);
                    x.ua = find_any(sp->attributes, sp->n_attributes, NULL, 0, UA_KEYS, NULL);
                    if (emit(cx, out, ent, &x) != SX_OK) return SX_ERR;
                    (*nev)++;
                }
            }
        }
    }
    return SX_OK;
}

/* A log record's level from its severity number (or text when 0). */
static const char *log_level(int sev, const char *text, int *is_error)
{
    *is_error = 0;
    if (sev == 0 && text && *text) {
        if (!strcasecmp(text, "error") || !strcasecmp(text, "err") || !strcasecmp(text, "critical") ||
            !strcasecmp(text, "crit") || !strcasecmp(text, "alert") || !strcasecmp(text, "emergency")) {
            *is_error = 1;
            return "error";
        }
        if (!strcasecmp(text, "fatal")) {
            *is_error = 1;
            return "fatal";
        }
        return "error";
    }
    if (sev >= 21) {
        *is_error = 1;
        return "fatal";
    }
    if (sev >= 17) {
        *is_error = 1;
        return "error";
    }
    if (sev >= 13) return "warning";
    if (sev >= 9) return "info";
    if (sev >= 1) return "debug";
    return "error";
}

static int derive_logs(struct sx_persist_errctx *cx, struct sx_persist_errs *out, const logs_req *req,
                       long long project, int64_t recv_ns, const uint8_t *hash, size_t ent, size_t *nev)
{
    struct ev v;
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[r];
        int have_res = 0;
        if (!rl) continue;
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[s];
            if (!sl) continue;
            for (size_t i = 0; i < sl->n_log_records; i++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[i];
                int is_error, exc;
                if (!lr) continue;
                const char *level = log_level((int)lr->severity_number, lr->severity_text, &is_error);
                exc = has_exception_attr(lr->attributes, lr->n_attributes);
                if (!exc && !is_error) continue;
                if (!exc && !rules_get(cx, project)->logs_as_events) continue;
                uint64_t tt = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
                int64_t t = tt ? (tt <= (uint64_t)SX_COPYROW_TIME_MAX_NS ? (int64_t)tt : -1) : recv_ns;
                if (t < 0 || t > SX_COPYROW_TIME_MAX_NS) continue; /* skipped by the row encoder too */
                if (!have_res) {
                    memset(&v, 0, sizeof(v));
                    resource_fields(&v, rl->resource ? rl->resource->attributes : NULL,
                                    rl->resource ? rl->resource->n_attributes : 0);
                    have_res = 1;
                }
                struct ev x = v;
                x.project = project;
                x.t = t;
                event_id(x.id, hash, *nev);
                x.source = "log";
                x.level = level;
                x.trace_id = lr->trace_id.len == 16 ? lr->trace_id.data : NULL;
                x.span_id = lr->span_id.len == 8 ? lr->span_id.data : NULL;
                x.a1 = lr->attributes;
                x.n1 = lr->n_attributes;
                x.type = sx_copyrow_find_str(lr->attributes, lr->n_attributes, "exception.type");
                x.message = sx_copyrow_find_str(lr->attributes, lr->n_attributes, "exception.message");
                x.stack = sx_copyrow_find_str(lr->attributes, lr->n_attributes, "exception.stacktrace");
                if (!x.message && lr->body &&
                    lr->body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
                    lr->body->string_value && lr->body->string_value[0] && (!exc || !x.stack))
                    x.message = lr->body->string_value;
                x.handled = find_handled(lr->attributes, lr->n_attributes);
                x.fingerprint = find_fingerprint(lr->attributes, lr->n_attributes, &out->tmp);
                x.user = find_any(lr->attributes, lr->n_attributes, NULL, 0, USER_KEYS, x.user_buf);
                x.route = find_any(lr->attributes, lr->n_attributes, NULL, 0, ROUTE_KEYS, NULL);
                x.url = find_any(lr->attributes, lr->n_attributes, NULL, 0, URL_KEYS, NULL);
                x.ua = find_any(lr->attributes, lr->n_attributes, NULL, 0, UA_KEYS, NULL);
                if (emit(cx, out, ent, &x) != SX_OK) return SX_ERR;
                (*nev)++;
            }
        }
    }
    return SX_OK;
}

int sx_persist_errors_derive(struct sx_persist_errctx *cx, struct sx_persist_errs *out, enum sx_persist_kind kind,
                             const void *req, long long project, int64_t recv_ns,
                             const uint8_t hash[SX_PERSIST_HASH_LEN], size_t *nev, size_t ent)
{
    struct sx_persist_errs_mark m;
    int rc;
    sx_persist_errs_mark(out, &m);
    *nev = 0;
    if (kind == SX_PERSIST_SPANS) rc = derive_spans(cx, out, req, project, hash, ent, nev);
    else rc = derive_logs(cx, out, req, project, recv_ns, hash, ent, nev);
    if (rc == SX_OK) return SX_OK;
    sx_persist_errs_rewind(out, &m);
    *nev = 0;
    return SX_ERR;
}

/* ---- the write ------------------------------------------------------------ */

/* What to do after COMMIT, kept back to back in db->post: a header, then
 * l1 bytes (user id, or the project slug) and l2 bytes (the issue title). */
struct post {
    char kind; /* 'u' PFADD of a user, 'n' issue.new, 'r' issue.regressed */
    long long project, issue, seq;
    size_t l1, l2;
};

static int post_add(struct sx_persist_db *db, char kind, long long project, long long issue, long long seq,
                    const char *s1, const char *s2)
{
    struct post p = {kind, project, issue, seq, strlen(s1), strlen(s2)};
    if (sx_buf_append(&db->post, &p, sizeof(p)) || sx_buf_append(&db->post, s1, p.l1) ||
        sx_buf_append(&db->post, s2, p.l2))
        return SX_ERR;
    db->npost++;
    return SX_OK;
}

/* Runs sql with up to one text parameter; *out gets the result (tuples or
 * command) or the failure is recorded. */
static int run(struct sx_persist_db *db, const char *sql, const char *param, const char *what, PGresult **out,
               char *err, size_t errlen)
{
    const char *params[1] = {param};
    PGresult *res = PQexecParams(db->conn, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return sx_persist_db_fail(db, res, what, err, errlen);
    if (out) *out = res;
    else PQclear(res);
    return SX_OK;
}

/* Appends the first column of every row of res to an array literal in b. */
static int array_of(struct sx_buf *b, PGresult *res, int col, const char *only_if_col_true)
{
    int first = 1;
    sx_buf_reset(b);
    if (sx_buf_putc(b, '{')) return SX_ERR;
    for (int r = 0; r < PQntuples(res); r++) {
        if (only_if_col_true && PQgetvalue(res, r, 1)[0] != (only_if_col_true[0])) continue;
        if (!first && sx_buf_putc(b, ',')) return SX_ERR;
        if (sx_buf_puts(b, PQgetvalue(res, r, col))) return SX_ERR;
        first = 0;
    }
    return sx_buf_putc(b, '}');
}

int sx_persist_errors_write(struct sx_persist_db *db, const struct sx_persist_batch *b, const size_t *ents,
                            size_t n, long long *written, char *err, size_t errlen)
{
    const struct sx_persist_errs *E = b->errs;
    PGresult *res = NULL;
    size_t staged = 0, fresh_ev = 0, nstale = 0;
    int rc;

    *written = 0;
    sx_buf_reset(&db->post);
    db->npost = 0;
    if (!E || !E->events) return SX_OK;

    /* The listed entries' events, fresh first-come; stale ones only for users. */
    sx_buf_reset(&db->sql);
    sx_buf_reset(&db->ids);
    if (sx_buf_putc(&db->ids, '{')) goto oom;
    for (size_t k = 0; k < n; k++) {
        const struct sx_persist_entry *e = &b->ents[ents[k]];
        if (!e->nev) continue;
        if (sx_buf_append(&db->sql, E->copy.data + e->eoff, e->elen)) goto oom;
        staged += e->nev;
        if (db->fresh[ents[k]]) {
            fresh_ev += e->nev;
        } else {
            if (sx_buf_printf(&db->ids, "%s%zu", nstale ? "," : "", ents[k])) goto oom;
            nstale++;
        }
    }
    if (sx_buf_putc(&db->ids, '}')) goto oom;
    if (!staged) return SX_OK;
    if ((rc = sx_persist_db_copy_text(db, "COPY err_stage (" STAGE_COLUMNS ") FROM STDIN", "COPY err_stage",
                                      &db->sql, err, errlen)) != SX_OK)
        return rc;
    if (nstale && (rc = run(db, stale_sql, db->ids.data, "UPDATE err_stage", NULL, err, errlen)) != SX_OK) return rc;

    if (fresh_ev) {
        if ((rc = run(db, releases_sql, NULL, "INSERT releases", NULL, err, errlen)) != SX_OK) return rc;
    }
    if ((rc = run(db, resolve_sql, NULL, "UPDATE err_stage (issues)", NULL, err, errlen)) != SX_OK) return rc;
    sx_buf_reset(&db->ids);
    if (sx_buf_puts(&db->ids, "{}")) goto oom;
    if (fresh_ev) {
        if ((rc = run(db, new_projects_sql, NULL, "SELECT err_stage (new)", &res, err, errlen)) != SX_OK) return rc;
        int any_new = PQntuples(res) > 0;
        if (any_new && array_of(&db->ids, res, 0, NULL)) {
            PQclear(res);
            goto oom;
        }
        PQclear(res);
        res = NULL;
        if (any_new) {
            /* One issue per new fingerprint, numbered under the project's
             * issue_seq lock; another instance holding it commits its issues
             * first, and the lookup below then finds them. */
            if ((rc = run(db, seq_rows_sql, db->ids.data, "INSERT issue_seq", NULL, err, errlen)) != SX_OK ||
                (rc = run(db, seq_lock_sql, db->ids.data, "SELECT issue_seq FOR UPDATE", NULL, err, errlen)) !=
                    SX_OK ||
                (rc = run(db, resolve_sql, NULL, "UPDATE err_stage (issues)", NULL, err, errlen)) != SX_OK ||
                (rc = run(db, create_sql, NULL, "INSERT issues", &res, err, errlen)) != SX_OK)
                return rc;
            int losers = 0;
            for (int r = 0; r < PQntuples(res); r++) losers += PQgetvalue(res, r, 1)[0] != 't';
            if (losers) {
                /* A fingerprint taken meanwhile (not under our lock: a merge
                 * or an older writer): drop our issue, use the winner's. */
                if (array_of(&db->sql, res, 0, "f")) {
                    PQclear(res);
                    goto oom;
                }
                sx_warn("%d new issues lost their fingerprint to another writer; using the winners'", losers);
                if ((rc = run(db, losers_sql, db->sql.data, "DELETE issues", NULL, err, errlen)) != SX_OK) {
                    PQclear(res);
                    return rc;
                }
            }
            if (array_of(&db->ids, res, 0, "t")) {
                PQclear(res);
                goto oom;
            }
            PQclear(res);
            res = NULL;
            if ((rc = run(db, resolve_sql, NULL, "UPDATE err_stage (issues)", NULL, err, errlen)) != SX_OK) return rc;
        } else {
            sx_buf_reset(&db->ids);
            if (sx_buf_puts(&db->ids, "{}")) goto oom;
        }
        if ((rc = run(db, lock_issues_sql, NULL, "SELECT issues FOR UPDATE", NULL, err, errlen)) != SX_OK) return rc;
        /* A merge (sextant-api) that committed after the fingerprints were
         * read: its issues point at the target, which takes the events (a
         * merge always points at a live issue, so one step suffices). */
        if ((rc = run(db, follow_sql, NULL, "UPDATE err_stage (merged)", &res, err, errlen)) != SX_OK) return rc;
        int moved = atoi(PQcmdTuples(res));
        PQclear(res);
        res = NULL;
        if (moved && (rc = run(db, lock_issues_sql, NULL, "SELECT issues FOR UPDATE", NULL, err, errlen)) != SX_OK)
            return rc;
        if ((rc = run(db, update_sql, db->ids.data, "UPDATE issues", &res, err, errlen)) != SX_OK) return rc;
        for (int r = 0; r < PQntuples(res); r++) {
            const char *kind = PQgetvalue(res, r, 5);
            if (post_add(db, kind[6] == 'n' ? 'n' : 'r', atoll(PQgetvalue(res, r, 1)), atoll(PQgetvalue(res, r, 0)),
                         atoll(PQgetvalue(res, r, 2)), PQgetvalue(res, r, 4), PQgetvalue(res, r, 3))) {
                PQclear(res);
                goto oom;
            }
        }
        PQclear(res);
        res = NULL;
        if ((rc = run(db, events_sql, NULL, "INSERT error_events", &res, err, errlen)) != SX_OK) return rc;
        *written = atoll(PQcmdTuples(res));
        PQclear(res);
        res = NULL;
        if ((rc = run(db, hourly_sql, NULL, "INSERT issue_counts_hourly", NULL, err, errlen)) != SX_OK) return rc;
    }
    if ((rc = run(db, users_sql, NULL, "SELECT err_stage (users)", &res, err, errlen)) != SX_OK) return rc;
    for (int r = 0; r < PQntuples(res); r++) {
        if (post_add(db, 'u', atoll(PQgetvalue(res, r, 0)), atoll(PQgetvalue(res, r, 1)), 0, PQgetvalue(res, r, 2),
                     "")) {
            PQclear(res);
            goto oom;
        }
    }
    PQclear(res);
    return SX_OK;

oom:
    snprintf(err, errlen, "error events failed: out of memory");
    return SX_ERR;
}

/* ---- after COMMIT ----------------------------------------------------------- */

struct touched {
    long long project, issue;
};

static void touch(struct sx_persist_shared *S, const struct touched *t, size_t n)
{
    pthread_mutex_lock(&S->mu);
    if (S->ntouched + n > S->touched_cap) {
        size_t cap = S->touched_cap ? S->touched_cap : 256;
        while (cap < S->ntouched + n) cap *= 2;
        void *p = realloc(S->touched, cap * sizeof(struct touched));
        if (!p) {
            pthread_mutex_unlock(&S->mu);
            sx_warn("out of memory: %zu issues' user counts wait for their next event", n);
            return;
        }
        S->touched = p;
        S->touched_cap = cap;
    }
    memcpy((struct touched *)S->touched + S->ntouched, t, n * sizeof(*t));
    S->ntouched += n;
    pthread_mutex_unlock(&S->mu);
}

void sx_persist_errors_after_commit(struct sx_persist_db *db, struct sx_persist_shared *S, redisContext *rc)
{
    size_t nsent = 0, nt = 0;
    struct touched *t;
    char key[256], suffix[64], shortid[96], issue[24], project[24];
    if (!db->npost) return;
    t = sx_xcalloc(db->npost, sizeof(*t));
    if (!rc || rc->err) {
        sx_warn("redis not connected: %zu user counts and live entries not sent", db->npost);
        free(t);
        return;
    }
    for (size_t off = 0; off < db->post.len;) {
        struct post p;
        memcpy(&p, db->post.data + off, sizeof(p));
        const char *s1 = db->post.data + off + sizeof(p), *s2 = s1 + p.l1;
        off += sizeof(p) + p.l1 + p.l2;
        if (p.kind == 'u') {
            snprintf(suffix, sizeof(suffix), "issue:%lld:users", p.issue);
            sx_redis_pkey(key, sizeof(key), S->cfg, p.project, suffix);
            redisAppendCommand(rc, "PFADD %s %b", key, s1, p.l1);
            t[nt].project = p.project;
            t[nt].issue = p.issue;
            nt++;
        } else {
            char slug[72];
            size_t sl = p.l1 < sizeof(slug) - 1 ? p.l1 : sizeof(slug) - 1;
            for (size_t i = 0; i < sl; i++) slug[i] = (char)(s1[i] >= 'a' && s1[i] <= 'z' ? s1[i] - 32 : s1[i]);
            slug[sl] = '\0';
            snprintf(shortid, sizeof(shortid), "%s-%lld", slug, p.seq);
            snprintf(issue, sizeof(issue), "%lld", p.issue);
            snprintf(project, sizeof(project), "%lld", p.project);
            sx_redis_pkey(key, sizeof(key), S->cfg, p.project, SX_LIVE_SUFFIX);
            redisAppendCommand(rc, "XADD %s MAXLEN ~ " LIVE_MAXLEN " * type %s project %s issue %s shortId %s title %b",
                               key, p.kind == 'n' ? SX_LIVE_ISSUE_NEW : SX_LIVE_ISSUE_REGRESSED, project, issue,
                               shortid, s2, p.l2);
        }
        nsent++;
    }
    for (size_t i = 0; i < nsent; i++) {
        void *vr = NULL;
        if (redisGetReply(rc, &vr) != REDIS_OK) {
            sx_redis_warn(rc, "PFADD/XADD (error events)", NULL);
            break;
        }
        redisReply *r = vr;
        if (r->type == REDIS_REPLY_ERROR) sx_redis_warn(rc, "PFADD/XADD (error events)", r);
        freeReplyObject(r);
    }
    if (nt) touch(S, t, nt);
    free(t);
}

static int touched_cmp(const void *a, const void *b)
{
    const struct touched *x = a, *y = b;
    if (x->issue != y->issue) return x->issue < y->issue ? -1 : 1;
    return (x->project > y->project) - (x->project < y->project);
}

int sx_persist_errors_flush_users(struct sx_persist_shared *S, redisContext *rc, struct sx_persist_db *db)
{
    struct touched *t;
    size_t n, u = 0;
    int ok = 1;
    char suffix[64];
    struct sx_buf ids, counts;

    pthread_mutex_lock(&S->mu);
    t = S->touched;
    n = S->ntouched;
    S->touched = NULL;
    S->ntouched = S->touched_cap = 0;
    pthread_mutex_unlock(&S->mu);
    if (!n) {
        free(t);
        return SX_OK;
    }
    qsort(t, n, sizeof(*t), touched_cmp);
    for (size_t i = 0; i < n; i++)
        if (!u || touched_cmp(&t[i], &t[u - 1]) != 0) t[u++] = t[i];
    n = u;

    sx_buf_init(&ids, (size_t)64 << 20);
    sx_buf_init(&counts, (size_t)64 << 20);
    if (!rc || rc->err || sx_persist_db_ready(db) != SX_OK) ok = 0;
    /* The issues merged into each one (sextant-api's merge): PFCOUNT of
     * several keys counts their union, so a merged issue's users stay
     * counted once in the target. Row i of merged answers t[i]. */
    PGresult *merged = NULL;
    ok = ok && sx_buf_putc(&ids, '{') == SX_OK;
    for (size_t i = 0; ok && i < n; i++) ok = sx_buf_printf(&ids, "%s%lld", i ? "," : "", t[i].issue) == SX_OK;
    ok = ok && sx_buf_putc(&ids, '}') == SX_OK;
    if (ok) {
        const char *params[1] = {ids.data};
        merged = sx_pg_query(db->conn,
                             "SELECT coalesce(array_to_string(array(SELECT m.id FROM issues m WHERE m.merged_into = v.id "
                             "ORDER BY m.id), ' '), '') FROM unnest($1::bigint[]) WITH ORDINALITY AS v(id, o) ORDER BY v.o",
                             1, params, "SELECT issues (merged)");
        ok = merged && (size_t)PQntuples(merged) == n;
    }
    sx_buf_reset(&ids);
    for (size_t i = 0; ok && i < n; i++) {
        const char *argv[1 + 1 + 64];
        char keys[1 + 64][256];
        size_t argc = 0;
        argv[argc++] = "PFCOUNT";
        snprintf(suffix, sizeof(suffix), "issue:%lld:users", t[i].issue);
        argv[argc++] = sx_redis_pkey(keys[0], sizeof(keys[0]), S->cfg, t[i].project, suffix);
        for (const char *m = PQgetvalue(merged, (int)i, 0); *m && argc < SX_ARRAY_LEN(argv);) {
            char *end;
            long long id = strtoll(m, &end, 10);
            if (end == m) break;
            snprintf(suffix, sizeof(suffix), "issue:%lld:users", id);
            argv[argc] = sx_redis_pkey(keys[argc - 1], sizeof(keys[0]), S->cfg, t[i].project, suffix);
            argc++;
            m = *end ? end + 1 : end;
        }
        redisAppendCommandArgv(rc, (int)argc, argv, NULL);
    }
    if (merged) PQclear(merged);
    ok = ok && sx_buf_putc(&ids, '{') == SX_OK && sx_buf_putc(&counts, '{') == SX_OK;
    for (size_t i = 0; ok && i < n; i++) {
        void *vr = NULL;
        if (redisGetReply(rc, &vr) != REDIS_OK) {
            sx_redis_warn(rc, "PFCOUNT", NULL);
            ok = 0;
            break;
        }
        redisReply *r = vr;
        if (r->type == REDIS_REPLY_INTEGER) {
            ok = sx_buf_printf(&ids, "%s%lld", ids.len > 1 ? "," : "", t[i].issue) == SX_OK &&
                 sx_buf_printf(&counts, "%s%lld", counts.len > 1 ? "," : "", (long long)r->integer) == SX_OK;
        } else {
            sx_redis_warn(rc, "PFCOUNT", r);
        }
        freeReplyObject(r);
    }
    ok = ok && sx_buf_putc(&ids, '}') == SX_OK && sx_buf_putc(&counts, '}') == SX_OK;
    if (ok) {
        const char *params[2] = {ids.data, counts.data};
        PGresult *res = sx_pg_query(db->conn,
                                    "UPDATE issues i SET user_count = v.c FROM unnest($1::bigint[], $2::bigint[]) "
                                    "AS v(id, c) WHERE i.id = v.id AND i.user_count <> v.c",
                                    2, params, "UPDATE issues (user_count)");
        if (res) PQclear(res);
        else ok = 0;
    }
    if (!ok) touch(S, t, n); /* next time */
    sx_buf_term(&ids);
    sx_buf_term(&counts);
    free(t);
    return ok ? SX_OK : SX_ERR;
}
