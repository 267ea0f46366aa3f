/* persist_errors_db.c: sextant-persist's error tracking, the writing half: the error events
 * derived by persist_errors.c written in PostgreSQL (releases, issues and their transitions,
 * error_events, hourly counts), then the after-COMMIT Redis work (users HyperLogLogs, live
 * entries) and the flush of user counts into issues.user_count.
 *
 * Design (the contract with the API is the comment of sql/010_errors.sql).
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
 * idempotent), and XADD <prefix>:{p<id>}:live MAXLEN ~ live_maxlen of issue.new and
 * issue.regressed entries (lib/stream.h). The issues whose HLL got a PFADD
 * are remembered; the main thread flushes their PFCOUNT into
 * issues.user_count every USERS_FLUSH_EVERY (persist.c). */
#include "persist.h"

#include "log.h"
#include "pg.h"
#include "redis.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_NS "3600000000000"

const struct sx_persist_signal sx_persist_errors_sig = {
    (enum sx_persist_kind)SX_PERSIST_NKINDS, "error events", NULL,
    "SELECT sextant_ensure_error_event_partition($1::bigint)", "", "", ""};

/* err_stage: one row per derived event; the COPY text rows (emit in
 * persist_errors.c, in this column order) carry the columns up to
 * grouping_version, fresh and issue_id are filled in by the write. */
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
        } /* else db->ids is still "{}": no issue created */
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
            redisAppendCommand(rc, "XADD %s MAXLEN ~ %lld * type %s project %s issue %s shortId %s title %b",
                               key, S->cfg->live_maxlen, p.kind == 'n' ? SX_LIVE_ISSUE_NEW : SX_LIVE_ISSUE_REGRESSED, project, issue,
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
