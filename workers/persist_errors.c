/* persist_errors.c: sextant-persist's error tracking, the deriving half: error events derived
 * from spans and logs as COPY rows of err_stage (the write, issues, counts, users and live entries
 * are persist_errors_db.c).
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
 */
#include "persist.h"

#include "grouping.h"
#include "json.h"
#include "pg.h"
#include "stacktrace.h"

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

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;

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

/* Parses, fingerprints and appends one event as an err_stage COPY row, in
 * the column order of STAGE_COLUMNS (persist_errors_db.c). */
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
