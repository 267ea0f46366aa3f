/* rollup_red_agg.c: the span rollup's records (spans unpacked into RED,
 * edge and database statement records, interned strings), the service edges
 * found through the batch or Redis, and the aggregation into rows. See the
 * design note in rollup_red.c. */
#include "rollup_red_int.h"

/* ---- interned strings ------------------------------------------------------- */

/* The batch's copy of s[0..n) (cut to max bytes at a UTF-8 boundary); equal
 * strings give the same pointer. NULL when the arena is exhausted. */
static const char *intern(struct red *R, const char *s, size_t n, size_t max)
{
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    uint64_t h = red_fnv(s, n, 14695981039346656037ULL);
    if ((R->in + 1) * 2 > R->icap) {
        struct istr *old = R->itab;
        size_t oldcap = R->icap;
        R->icap = oldcap ? oldcap * 2 : 4096;
        R->itab = red_xrealloc(NULL, R->icap * sizeof(*R->itab));
        memset(R->itab, 0, R->icap * sizeof(*R->itab));
        for (size_t i = 0; i < oldcap; i++) {
            if (!old[i].s) continue;
            size_t j = old[i].h & (R->icap - 1);
            while (R->itab[j].s) j = (j + 1) & (R->icap - 1);
            R->itab[j] = old[i];
        }
        free(old);
    }
    size_t j = h & (R->icap - 1);
    for (; R->itab[j].s; j = (j + 1) & (R->icap - 1))
        if (R->itab[j].h == h && R->itab[j].len == n && memcmp(R->itab[j].s, s, n) == 0) return R->itab[j].s;
    char *c = sx_arena_strndup(R->strs, s, n);
    if (!c) return NULL;
    R->itab[j].h = h;
    R->itab[j].s = c;
    R->itab[j].len = n;
    R->in++;
    return c;
}

static const char *intern_z(struct red *R, const char *s, size_t max)
{
    return intern(R, s, strlen(s), max);
}

/* ---- span attributes ------------------------------------------------------------ */

static const any_t *attr_find(kv_t **kv, size_t n, const char *key)
{
    const any_t *v = NULL;
    for (size_t i = 0; i < n; i++) /* the last duplicate wins, as in jsonb */
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0) v = kv[i]->value;
    return v;
}

static const char *attr_str(kv_t **kv, size_t n, const char *key)
{
    const any_t *v = attr_find(kv, n, key);
    return v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value &&
                   *v->string_value
               ? v->string_value
               : NULL;
}

static const char *attr_str2(kv_t **kv, size_t n, const char *key, const char *old_key)
{
    const char *s = attr_str(kv, n, key);
    return s ? s : attr_str(kv, n, old_key);
}

/* The HTTP status of a span (an integer or a numeric string), 0 when none. */
static int http_status(const span_t *sp)
{
    static const char *const keys[] = {"http.response.status_code", "http.status_code"};
    for (size_t k = 0; k < SX_ARRAY_LEN(keys); k++) {
        const any_t *v = attr_find(sp->attributes, sp->n_attributes, keys[k]);
        if (!v) continue;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
            return v->int_value >= 100 && v->int_value < 1000 ? (int)v->int_value : 0;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE && v->string_value) {
            char *end;
            long x = strtol(v->string_value, &end, 10);
            return end == v->string_value || *end || x < 100 || x >= 1000 ? 0 : (int)x;
        }
    }
    return 0;
}

static int64_t minute_of(uint64_t t)
{
    int64_t s = t > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t;
    return s / MINUTE_NS * MINUTE_NS;
}

/* Fills the database fields of a CLIENT span with db.system[.name]. SX_ERR
 * when the string arena is exhausted. */
static int db_fields(struct red *R, struct rec *f, const span_t *sp)
{
    kv_t **a = sp->attributes;
    size_t n = sp->n_attributes;
    const char *sys = attr_str2(a, n, "db.system.name", "db.system");
    if (!sys) return SX_OK;
    const char *text = attr_str2(a, n, "db.query.text", "db.statement");
    size_t len;
    if (text) {
        len = sx_sqlnorm(text, strlen(text), R->norm, STATEMENT_MAX + 1);
    } else {
        const char *op = attr_str2(a, n, "db.operation.name", "db.operation");
        const char *coll = attr_str2(a, n, "db.collection.name", "db.sql.table");
        int k = op ? snprintf(R->norm, STATEMENT_MAX + 1, "%s%s%s", op, coll ? " " : "", coll ? coll : "")
                   : snprintf(R->norm, STATEMENT_MAX + 1, "%s", sp->name && *sp->name ? sp->name : "unknown");
        len = k < 0 ? 0 : SX_MIN((size_t)k, (size_t)STATEMENT_MAX);
    }
    uint8_t h[8];
    red_sha(R->norm, len, "", 0, h, sizeof(h));
    uint64_t u;
    memcpy(&u, h, sizeof(u));
    f->stmt_hash = (int64_t)(u >> 1); /* non-negative: easier to read */
    f->db_system = intern_z(R, sys, SERVICE_MAX);
    f->statement = intern(R, R->norm, len, STATEMENT_MAX);
    const char *dbn = attr_str2(a, n, "db.namespace", "db.name");
    f->db_name = dbn ? intern_z(R, dbn, SERVICE_MAX) : NULL;
    return f->db_system && f->statement && (!dbn || f->db_name) ? SX_OK : SX_ERR;
}

/* Adds the spans of one unpacked request to R->recs. SX_ERR when the string
 * arena is exhausted. */
int red_collect(struct red *R, size_t ent, long long project, const sx_trace_req *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        const char *svc = rs->resource ? attr_str(rs->resource->attributes, rs->resource->n_attributes, "service.name")
                                       : NULL;
        const char *service = intern_z(R, svc ? svc : "unknown_service", SERVICE_MAX);
        if (!service) return SX_ERR;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const span_t *sp = ss->spans[k];
                if (R->nrecs == R->recs_cap) {
                    R->recs_cap = R->recs_cap ? R->recs_cap * 2 : 4096;
                    R->recs = red_xrealloc(R->recs, R->recs_cap * sizeof(*R->recs));
                }
                struct rec *f = &R->recs[R->nrecs];
                memset(f, 0, sizeof(*f));
                f->project = project;
                f->ent = ent;
                if (sp->span_id.len == 8) memcpy(&f->id, sp->span_id.data, 8);
                f->has_parent = sp->parent_span_id.len == 8;
                if (f->has_parent) memcpy(&f->parent, sp->parent_span_id.data, 8);
                f->kind = (int)sp->kind;
                f->status = http_status(sp);
                f->error = (sp->status && sp->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) ||
                           (f->kind == KIND_SERVER && f->status >= 500);
                f->bucket = minute_of(sp->start_time_unix_nano);
                f->ms = sp->end_time_unix_nano > sp->start_time_unix_nano
                            ? (double)(sp->end_time_unix_nano - sp->start_time_unix_nano) / 1e6
                            : 0;
                f->service = service;
                if (f->kind == KIND_SERVER || f->kind == KIND_CONSUMER) {
                    const char *route = attr_str(sp->attributes, sp->n_attributes, "http.route");
                    const char *method = route ? attr_str2(sp->attributes, sp->n_attributes, "http.request.method",
                                                           "http.method")
                                               : NULL;
                    char op[OPERATION_MAX + 1];
                    if (route && method) snprintf(op, sizeof(op), "%s %s", method, route);
                    else snprintf(op, sizeof(op), "%s", route ? route : sp->name && *sp->name ? sp->name : "unknown");
                    if (!(f->operation = intern_z(R, op, OPERATION_MAX))) return SX_ERR;
                } else if (f->kind == KIND_CLIENT && db_fields(R, f, sp) != SX_OK) {
                    return SX_ERR;
                }
                if (sp->span_id.len == 8) R->nrecs++; /* spans without an id cannot be parents or counted apart */
            }
        }
    }
    return SX_OK;
}

static void pkey(const struct red *R, long long project, const char *kind, uint64_t id, char *out, size_t outlen)
{
    char suffix[32];
    uint8_t b[8];
    static const char digits[] = "0123456789abcdef";
    memcpy(b, &id, 8);
    size_t o = (size_t)snprintf(suffix, sizeof(suffix), "%s:", kind);
    for (int i = 0; i < 8; i++) {
        suffix[o++] = digits[b[i] >> 4];
        suffix[o++] = digits[b[i] & 15];
    }
    suffix[o] = '\0';
    sx_redis_pkey(out, outlen, R->cfg, project, suffix);
}

/* Reads n pipelined replies; each is handed to fn (NULL-safe: fn sees only
 * good replies). SX_ERR when the connection failed or a reply is an error. */
static int drain(struct red *R, size_t n, const char *what, void (*fn)(struct red *, size_t, const redisReply *))
{
    int rc = SX_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r) {
            sx_redis_warn(R->rc, what, r);
            return SX_ERR;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (rc == SX_OK) sx_redis_warn(R->rc, what, r);
            rc = SX_ERR;
        } else if (fn) {
            fn(R, i, r);
        }
        freeReplyObject(r);
    }
    return rc;
}

static int idx_cmp(const void *a, const void *b)
{
    const struct idx *x = a, *y = b;
    if (x->project != y->project) return x->project < y->project ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->rec < y->rec ? -1 : x->rec > y->rec;
}

static const struct idx *idx_find(const struct red *R, long long project, uint64_t id)
{
    struct idx probe = {project, id, 0};
    size_t lo = 0, hi = R->nrecs;
    while (lo < hi) { /* the first entry >= (project, id, 0) */
        size_t mid = lo + (hi - lo) / 2;
        if (idx_cmp(&R->index[mid], &probe) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < R->nrecs && R->index[lo].project == project && R->index[lo].id == id) return &R->index[lo];
    return NULL;
}

static int is_child_kind(int k)
{
    return k == KIND_SERVER || k == KIND_CONSUMER;
}

/* A CLIENT or PRODUCER span that may have a remote child: not a database call. */
static int is_parent_kind(const struct rec *f)
{
    return (f->kind == KIND_CLIENT && !f->db_system) || f->kind == KIND_PRODUCER;
}

/* Replies of round 1: pend[i] is a child (GET ss) or a parent (GET pc). */
static void on_lookup(struct red *R, size_t i, const redisReply *r)
{
    struct rec *f = &R->recs[R->pend[i]];
    if (r->type != REDIS_REPLY_STRING) return;
    if (is_child_kind(f->kind) && !f->as_child.from) {
        const char *svc = intern(R, r->str, r->len, SERVICE_MAX);
        if (svc && svc != f->service)
            f->as_child = (struct edge){svc, f->service, f->bucket, f->error, f->ms};
        f->has_parent = 2; /* resolved: no pc key */
        return;
    }
    /* "<minute> <error> <ms> <service>" */
    char buf[SERVICE_MAX + 96], *end;
    size_t n = SX_MIN(r->len, sizeof(buf) - 1);
    memcpy(buf, r->str, n);
    buf[n] = '\0';
    errno = 0;
    long long bucket = strtoll(buf, &end, 10);
    if (*end != ' ') return;
    long err = strtol(end + 1, &end, 10);
    if (*end != ' ') return;
    double ms = strtod(end + 1, &end);
    if (*end != ' ' || errno || !isfinite(ms)) return;
    const char *svc = intern_z(R, end + 1, SERVICE_MAX);
    if (svc && svc != f->service)
        f->as_parent = (struct edge){f->service, svc, (int64_t)bucket, err != 0, ms};
    f->has_child = 1;
}

/* Finds the edges of the batch (see the design note, step 2). SX_ERR on a
 * Redis failure. */
int red_resolve_edges(struct red *R)
{
    char key[256], val[SERVICE_MAX + 96];
    if (R->nrecs > R->index_cap) {
        R->index_cap = R->nrecs;
        R->index = red_xrealloc(R->index, R->index_cap * sizeof(*R->index));
    }
    if (R->nrecs > R->pend_cap) {
        R->pend_cap = R->nrecs;
        R->pend = red_xrealloc(R->pend, R->pend_cap * sizeof(*R->pend));
    }
    for (size_t i = 0; i < R->nrecs; i++) R->index[i] = (struct idx){R->recs[i].project, R->recs[i].id, i};
    qsort(R->index, R->nrecs, sizeof(*R->index), idx_cmp);
    for (size_t i = 0; i < R->nrecs; i++) {
        struct rec *f = &R->recs[i];
        if (!f->has_parent) continue;
        const struct idx *p = idx_find(R, f->project, f->parent);
        if (!p) continue;
        struct rec *par = &R->recs[p->rec];
        par->has_child = 1;
        f->has_parent = 2; /* found */
        if (par->service != f->service)
            f->as_child = (struct edge){par->service, f->service, f->bucket, f->error, f->ms};
    }
    /* One pipelined round for what crossed a batch: each span takes the
     * other side's key, or else leaves its own, atomically (SPANMAP_LUA), so
     * with two instances at once the edge is still counted exactly once. */
    size_t np = 0;
    for (size_t i = 0; i < R->nrecs; i++) {
        struct rec *f = &R->recs[i];
        char mine[256];
        int n;
        if (is_child_kind(f->kind) && f->has_parent == 1) {
            pkey(R, f->project, "ss", f->parent, key, sizeof(key));
            pkey(R, f->project, "pc", f->parent, mine, sizeof(mine));
            n = snprintf(val, sizeof(val), "%" PRId64 " %d %.17g %s", f->bucket, f->error, f->ms, f->service);
        } else if (is_parent_kind(f) && !f->has_child) {
            pkey(R, f->project, "pc", f->id, key, sizeof(key));
            pkey(R, f->project, "ss", f->id, mine, sizeof(mine));
            n = snprintf(val, sizeof(val), "%s", f->service);
        } else {
            continue;
        }
        if (n < 0 || (size_t)n >= sizeof(val)) continue;
        if (redisAppendCommand(R->rc, "EVAL %s 2 %s %s %b %d", SPANMAP_LUA, key, mine, val, (size_t)n,
                               SPANMAP_TTL_S) != REDIS_OK)
            return SX_ERR;
        R->pend[np++] = i;
    }
    return np ? drain(R, np, "EVAL span map", on_lookup) : SX_OK;
}

/* ---- aggregation ------------------------------------------------------------------ */

static uint64_t agg_hash(const struct agg *k)
{
    uint64_t h = (uint64_t)k->type * 31 + (uint64_t)k->kind;
    h = red_mix(h ^ (uint64_t)k->project);
    h = red_mix(h ^ (uint64_t)(uintptr_t)k->s1);
    h = red_mix(h ^ (uint64_t)(uintptr_t)k->s2);
    h = red_mix(h ^ (uint64_t)(uintptr_t)k->s3);
    h = red_mix(h ^ (uint64_t)k->bucket);
    return red_mix(h ^ (uint64_t)k->hash);
}

static int agg_eq(const struct agg *a, const struct agg *b)
{
    return a->type == b->type && a->kind == b->kind && a->project == b->project && a->s1 == b->s1 && a->s2 == b->s2 &&
           a->s3 == b->s3 && a->bucket == b->bucket && a->hash == b->hash;
}

void red_agg_grow(struct red *R)
{
    struct agg *old = R->aggs;
    size_t oldcap = R->acap;
    R->acap = oldcap ? oldcap * 2 : 1024;
    R->aggs = red_xrealloc(NULL, R->acap * sizeof(*R->aggs));
    for (size_t i = 0; i < R->acap; i++) R->aggs[i].type = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].type) continue;
        size_t j = agg_hash(&old[i]) & (R->acap - 1);
        while (R->aggs[j].type) j = (j + 1) & (R->acap - 1);
        R->aggs[j] = old[i];
    }
    free(old);
}

/* The row of key k, made empty when new. */
static struct agg *agg_row(struct red *R, const struct agg *k)
{
    if ((R->an + 1) * 2 > R->acap) red_agg_grow(R);
    size_t j = agg_hash(k) & (R->acap - 1);
    for (; R->aggs[j].type; j = (j + 1) & (R->acap - 1))
        if (agg_eq(&R->aggs[j], k)) return &R->aggs[j];
    struct agg *a = &R->aggs[j];
    memset(a, 0, sizeof(*a));
    a->type = k->type;
    a->kind = k->kind;
    a->project = k->project;
    a->s1 = k->s1, a->s2 = k->s2, a->s3 = k->s3;
    a->bucket = k->bucket;
    a->hash = k->hash;
    R->an++;
    return a;
}

static void agg_add(struct agg *a, int error, int status, double ms)
{
    a->count++;
    a->errors += error != 0;
    if (status >= 200 && status < 600) a->cls[status / 100 - 2]++;
    a->sum += ms;
    if (a->count == 1 || ms < a->min) a->min = ms;
    if (a->count == 1 || ms > a->max) a->max = ms;
    a->buckets[sx_red_bucket(ms)]++;
}

static void agg_edge(struct red *R, long long project, const struct edge *e)
{
    if (!e->from) return;
    struct agg k = {.type = ROW_EDGE, .project = project, .s1 = e->from, .s2 = e->to, .bucket = e->bucket};
    agg_add(agg_row(R, &k), e->error, 0, e->ms);
}

/* Aggregates the records of the fresh entries into R->aggs. */
void red_aggregate(struct red *R)
{
    for (size_t i = 0; i < R->acap; i++) R->aggs[i].type = 0;
    R->an = 0;
    for (size_t i = 0; i < R->nrecs; i++) {
        const struct rec *f = &R->recs[i];
        if (!R->ents[f->ent].fresh) continue;
        if (is_child_kind(f->kind)) {
            struct agg k = {.type = ROW_RED, .kind = f->kind, .project = f->project, .s1 = f->service,
                            .s2 = f->operation, .bucket = f->bucket};
            agg_add(agg_row(R, &k), f->error, f->status, f->ms);
        } else if (f->db_system) {
            struct agg k = {.type = ROW_DB, .project = f->project, .s1 = f->service, .s2 = f->db_system,
                            .s3 = f->statement, .bucket = f->bucket, .hash = f->stmt_hash};
            struct agg *a = agg_row(R, &k);
            if (!a->db_name) a->db_name = f->db_name;
            agg_add(a, f->error, 0, f->ms);
        }
        agg_edge(R, f->project, &f->as_child);
        agg_edge(R, f->project, &f->as_parent);
    }
}
