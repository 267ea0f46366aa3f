/* rollup_state.c: sextant-rollup's series registry (the series cache and the
 * one-statement resolve of a batch's new series) and the cumulative state of
 * series in Redis (load, ledger-tagged store). See the design note in rollup.c. */
#include "rollup_int.h"

/* ---- hashing ---------------------------------------------------------------- */

/* SHA-256 over up to three byte ranges, cut to HASH_LEN. Aborts when OpenSSL
 * cannot hash (out of memory). */
static void sha16(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn, uint8_t out[HASH_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
        EVP_DigestUpdate(ctx, b, bn) != 1 || EVP_DigestUpdate(ctx, c, cn) != 1 ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < HASH_LEN) {
        fprintf(stderr, "sextant-rollup: sha-256 failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, HASH_LEN);
}

/* ---- series cache ------------------------------------------------------------ */

static size_t slot_of(const struct rollup *R, const uint8_t key[HASH_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return (size_t)h & (R->cache_cap - 1);
}

static long long cache_get(const struct rollup *R, const uint8_t key[HASH_LEN])
{
    for (size_t i = slot_of(R, key);; i = (i + 1) & (R->cache_cap - 1)) {
        if (!R->cache[i].id) return 0;
        if (memcmp(R->cache[i].key, key, HASH_LEN) == 0) return R->cache[i].id;
    }
}

static void cache_put(struct rollup *R, const uint8_t key[HASH_LEN], long long id)
{
    if ((R->cache_n + 1) * 2 > R->cache_cap) {
        if (R->cache_cap >= SERIES_CACHE_MAX * 2) { /* bounded: start over */
            memset(R->cache, 0, R->cache_cap * sizeof(*R->cache));
            R->cache_n = 0;
        } else {
            struct slot *old = R->cache;
            size_t oldcap = R->cache_cap;
            R->cache_cap = oldcap ? oldcap * 2 : 1024;
            R->cache = xrealloc(NULL, R->cache_cap * sizeof(*R->cache));
            memset(R->cache, 0, R->cache_cap * sizeof(*R->cache));
            R->cache_n = 0;
            for (size_t i = 0; i < oldcap; i++)
                if (old[i].id) cache_put(R, old[i].key, old[i].id);
            free(old);
        }
    }
    size_t i = slot_of(R, key);
    while (R->cache[i].id) i = (i + 1) & (R->cache_cap - 1);
    memcpy(R->cache[i].key, key, HASH_LEN);
    R->cache[i].id = id;
    R->cache_n++;
}

/* Sets key's id, adding the key when it is not there (the cache may have
 * started over since it was added). */
static void cache_set(struct rollup *R, const uint8_t key[HASH_LEN], long long id)
{
    for (size_t i = slot_of(R, key);; i = (i + 1) & (R->cache_cap - 1)) {
        if (!R->cache[i].id) break;
        if (memcmp(R->cache[i].key, key, HASH_LEN) == 0) {
            R->cache[i].id = id;
            return;
        }
    }
    cache_put(R, key, id);
}

/* Forgets every id: after a failed batch, whose unresolved series (negative
 * ids) must not stay. */
void cache_clear(struct rollup *R)
{
    memset(R->cache, 0, R->cache_cap * sizeof(*R->cache));
    R->cache_n = 0;
}

/* ---- attributes ---------------------------------------------------------------- */

static void json_any(struct sx_json *w, const Opentelemetry__Proto__Common__V1__AnyValue *v)
{
    if (!v) {
        sx_json_null(w);
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: sx_json_strz(w, v->string_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: sx_json_bool(w, v->bool_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: sx_json_int(w, v->int_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE: sx_json_double(w, v->double_value); break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        sx_json_arr_open(w);
        if (w->depth < SX_JSON_MAX_DEPTH - 1)
            for (size_t i = 0; i < v->array_value->n_values; i++) json_any(w, v->array_value->values[i]);
        sx_json_arr_close(w);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        sx_json_obj_open(w);
        if (w->depth < SX_JSON_MAX_DEPTH - 1)
            for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
                sx_json_key(w, v->kvlist_value->values[i]->key);
                json_any(w, v->kvlist_value->values[i]->value);
            }
        sx_json_obj_close(w);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        sx_json_hex(w, v->bytes_value.data, v->bytes_value.len);
        break;
    default: sx_json_null(w); break;
    }
}

/* The series' attribute document into R->json: point attributes under their
 * keys, resource attributes under "resource.<key>". SX_ERR when too big. */
static int attrs_json(struct rollup *R, kv_t **res, size_t nres, kv_t **pt, size_t npt)
{
    struct sx_json w;
    char key[512];
    sx_buf_reset(&R->json);
    sx_json_init(&w, &R->json);
    sx_json_obj_open(&w);
    for (size_t i = 0; i < npt; i++) {
        sx_json_key(&w, pt[i]->key);
        json_any(&w, pt[i]->value);
    }
    for (size_t i = 0; i < nres; i++) {
        snprintf(key, sizeof(key), "resource.%s", res[i]->key);
        sx_json_key(&w, key);
        json_any(&w, res[i]->value);
    }
    sx_json_obj_close(&w);
    return w.err ? SX_ERR : SX_OK;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

/* Staging tables for the batch's rows: COPY in, then one upsert per table. */
static const char SESSION_SQL[] =
    "SET jit = off; "
    "CREATE TEMP TABLE IF NOT EXISTS m1_stage (LIKE metric_points_1m) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS h1_stage (LIKE metric_points_1h) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS m5_stage (LIKE metric_points_5m) ON COMMIT DELETE ROWS";

int pg_ready(struct rollup *R)
{
    if (R->pg && PQstatus(R->pg) != CONNECTION_OK) R->pg_session = 0;
    if (sx_pg_ensure(&R->pg, R->cfg.pg_conninfo) != SX_OK) {
        R->pg_session = 0;
        return SX_ERR;
    }
    if (!R->pg_session) {
        if (PQtransactionStatus(R->pg) != PQTRANS_IDLE) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
        if (sx_pg_exec(R->pg, SESSION_SQL, "rollup session") != SX_OK) return SX_ERR;
        R->pg_session = 1;
    }
    return SX_OK;
}

/* The series of a data point: its id when cached (*pend = NO_PEND), else 0
 * and *pend its index in R->pends (one per distinct series of the batch),
 * resolved later by series_resolve. SX_ERR when the attributes are too big. */
int series_of(struct rollup *R, long long project, const metric_t *m, const char *type, const char *temporality,
                     int monotonic, kv_t **res, size_t nres, kv_t **pt, size_t npt, long long *id, size_t *pend)
{
    uint8_t key[HASH_LEN];
    char pfx[32];
    if (attrs_json(R, res, nres, pt, npt) != SX_OK) return SX_ERR;
    int n = snprintf(pfx, sizeof(pfx), "%lld\n", project);
    sha16(pfx, (size_t)n, m->name, strlen(m->name) + 1, R->json.data, R->json.len, key);
    long long c = cache_get(R, key);
    *id = c > 0 ? c : 0;
    *pend = c < 0 ? (size_t)(-c - 1) : NO_PEND;
    if (c) return SX_OK;
    if (R->pends_n == R->pends_cap) {
        R->pends_cap = R->pends_cap ? R->pends_cap * 2 : 64;
        R->pends = xrealloc(R->pends, R->pends_cap * sizeof(*R->pends));
    }
    struct pend *q = &R->pends[R->pends_n];
    memcpy(q->key, key, HASH_LEN);
    sha16(type, strlen(type) + 1, R->json.data, R->json.len, "", 0, q->ahash);
    q->project = project, q->m = m, q->type = type, q->temporality = temporality, q->monotonic = monotonic;
    q->json_off = R->pjson.len, q->json_len = R->json.len, q->id = 0;
    if (sx_buf_append(&R->pjson, R->json.data, R->json.len) != SX_OK) return SX_ERR;
    *pend = R->pends_n++;
    cache_put(R, key, -(long long)*pend - 1);
    return SX_OK;
}

/* Appends s[0..n) as one quoted element of a PostgreSQL array literal. */
static int arr_str(struct sx_buf *b, const char *s, size_t n)
{
    int ok = sx_buf_putc(b, '"') == SX_OK;
    for (size_t i = 0; i < n && ok; i++) {
        if (s[i] == '"' || s[i] == '\\') ok &= sx_buf_putc(b, '\\') == SX_OK;
        ok &= sx_buf_putc(b, s[i]) == SX_OK;
    }
    return ok && sx_buf_putc(b, '"') == SX_OK ? SX_OK : SX_ERR;
}

/* Creates or finds every series of R->pends with one statement (multi-row
 * INSERT ... ON CONFLICT DO NOTHING RETURNING, joined with what exists). A
 * series another instance inserted and committed while the statement ran
 * is invisible to its snapshot: the statement runs a second time for those.
 * Committed on its own: a series row without points is harmless. Fills
 * pends[].id and the cache. SX_ERR on a database error. */
int series_resolve(struct rollup *R)
{
    static const char sql[] =
        "WITH v AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
        "$7::bool[], $8::text[], $9::text[]) WITH ORDINALITY AS v(p, n, ty, u, d, te, mo, a, h, k)), "
        "ins AS (INSERT INTO metric_series (project_id, name, type, unit, description, temporality, monotonic, "
        "attributes, attrs_hash) SELECT p, n, ty, u, d, te, mo, a::json, decode(h, 'hex') FROM v ORDER BY p, n, h "
        "ON CONFLICT (project_id, name, attrs_hash) DO NOTHING RETURNING id, project_id, name, attrs_hash) "
        "SELECT v.k, COALESCE(i.id, s.id) FROM v "
        "LEFT JOIN ins i ON i.project_id = v.p AND i.name = v.n AND i.attrs_hash = decode(v.h, 'hex') "
        "LEFT JOIN metric_series s ON s.project_id = v.p AND s.name = v.n AND s.attrs_hash = decode(v.h, 'hex')";
    size_t off[9];
    int ok = 1;
    if (!R->pends_n) return SX_OK;
    sx_buf_reset(&R->copy);
    for (int c = 0; c < 9 && ok; c++) {
        off[c] = R->copy.len;
        ok &= sx_buf_putc(&R->copy, '{') == SX_OK;
        for (size_t i = 0; i < R->pends_n && ok; i++) {
            const struct pend *q = &R->pends[i];
            const char *u = q->m->unit ? q->m->unit : "", *d = q->m->description ? q->m->description : "";
            char hx[2 * HASH_LEN + 1];
            if (i) ok &= sx_buf_putc(&R->copy, ',') == SX_OK;
            switch (c) {
            case 0: ok &= sx_buf_printf(&R->copy, "%lld", q->project) == SX_OK; break;
            case 1: ok &= arr_str(&R->copy, q->m->name, strlen(q->m->name)) == SX_OK; break;
            case 2: ok &= sx_buf_puts(&R->copy, q->type) == SX_OK; break;
            case 3: ok &= arr_str(&R->copy, u, strlen(u)) == SX_OK; break;
            case 4: ok &= arr_str(&R->copy, d, strlen(d)) == SX_OK; break;
            case 5: ok &= sx_buf_puts(&R->copy, q->temporality) == SX_OK; break;
            case 6: ok &= sx_buf_puts(&R->copy, q->monotonic ? "t" : "f") == SX_OK; break;
            case 7: ok &= arr_str(&R->copy, R->pjson.data + q->json_off, q->json_len) == SX_OK; break;
            default: hex16(q->ahash, hx), ok &= sx_buf_puts(&R->copy, hx) == SX_OK; break;
            }
        }
        ok &= sx_buf_putc(&R->copy, '}') == SX_OK && sx_buf_putc(&R->copy, '\0') == SX_OK;
    }
    if (!ok) {
        sx_warn("series of one batch over %zu bytes", (size_t)COPY_MAX);
        return SX_ERR;
    }
    const char *params[9];
    for (int c = 0; c < 9; c++) params[c] = R->copy.data + off[c];
    size_t missing = R->pends_n;
    for (int attempt = 0; attempt < 2 && missing; attempt++) {
        PGresult *r = sx_pg_query(R->pg, sql, 9, params, "metric_series upsert");
        if (!r) return SX_ERR;
        for (int row = 0; row < PQntuples(r); row++) {
            long long k = strtoll(PQgetvalue(r, row, 0), NULL, 10);
            if (k < 1 || (size_t)k > R->pends_n || PQgetisnull(r, row, 1) || R->pends[k - 1].id) continue;
            R->pends[k - 1].id = strtoll(PQgetvalue(r, row, 1), NULL, 10);
            if (R->pends[k - 1].id > 0) missing--;
        }
        PQclear(r);
    }
    if (missing) {
        sx_warn("metric_series upsert: %zu series neither inserted nor found", missing);
        return SX_ERR;
    }
    for (size_t i = 0; i < R->pends_n; i++) cache_set(R, R->pends[i].key, R->pends[i].id);
    return SX_OK;
}

static void cum_key(const struct rollup *R, long long project, long long series, char *out, size_t outlen)
{
    char suffix[48];
    snprintf(suffix, sizeof(suffix), "cum:%lld", series);
    sx_redis_pkey(out, outlen, &R->cfg, project, suffix);
}

/* An error reply NOGROUP (the stream or the group was deleted, e.g. by
 * FLUSHALL): recreate the group and re-read our history. Returns 1 when r
 * was such a reply. */
int nogroup(struct rollup *R, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOGROUP", 7) != 0) return 0;
    sx_warn("group %s on %s is gone; creating it again", GROUP, R->stream);
    if (sx_redis_group_create(R->rc, R->stream, GROUP) == SX_OK) R->history = 1;
    return 1;
}

static int ent_is_fresh_key(const struct rollup *R, const char *hex)
{
    char h[2 * HASH_LEN + 1];
    for (size_t i = 0; i < R->ents_n; i++) {
        if (!R->ents[i].fresh) continue;
        hex16(R->ents[i].hash, h);
        if (memcmp(h, hex, 2 * HASH_LEN) == 0) return 1;
    }
    return 0;
}

/* Loads the cumulative states of R->cum (series set, old cleared) with one
 * pipelined GET per series. A tagged state ("<hex>|<new>|<old>") takes the
 * new state when the tagging entry's ledger row is committed, else the old
 * one; every tag is looked up in one statement (the caller's transaction
 * sees committed rows). A tag of an entry fresh in this batch was left by a
 * failed earlier attempt of it: its ledger row seen now is our own, not
 * committed, so it takes the old state. SX_ERR on a Redis or PostgreSQL
 * failure. */
int cum_load_all(struct rollup *R)
{
    char key[224];
    int rc = SX_OK;
    size_t sent = 0, ntag = 0;
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        c->reply = NULL;
        cum_key(R, c->project, c->series, key, sizeof(key));
        if (redisAppendCommand(R->rc, "GET %s", key) != REDIS_OK) return SX_ERR;
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r) {
            redis_failed(R, "GET cum", r);
            rc = SX_ERR;
            break;
        }
        if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
            if (rc == SX_OK) redis_failed(R, "GET cum", r);
            rc = SX_ERR;
        }
        R->cum[i].reply = r;
    }
    /* Tags to look up, as a text[] of hex keys. */
    sx_buf_reset(&R->sql);
    sx_buf_putc(&R->sql, '{');
    for (size_t i = 0; rc == SX_OK && i < R->cum_n; i++) {
        const redisReply *r = R->cum[i].reply;
        if (r->type == REDIS_REPLY_STRING && r->len > 2 * HASH_LEN && r->str[2 * HASH_LEN] == '|' &&
            !ent_is_fresh_key(R, r->str)) {
            if (ntag++) sx_buf_putc(&R->sql, ',');
            sx_buf_append(&R->sql, r->str, 2 * HASH_LEN);
        }
    }
    PGresult *q = NULL;
    if (rc == SX_OK && ntag) {
        if (sx_buf_putc(&R->sql, '}') != SX_OK || sx_buf_putc(&R->sql, '\0') != SX_OK) {
            sx_warn("cumulative state tags over the statement buffer");
            rc = SX_ERR;
        } else {
            const char *params[2] = {LEDGER_STREAM, R->sql.data};
            q = sx_pg_query(R->pg,
                            "SELECT encode(entry_hash, 'hex') FROM persist_ledger WHERE stream = $1 AND entry_hash = "
                            "ANY (SELECT decode(h, 'hex') FROM unnest($2::text[]) AS h)",
                            2, params, "ledger look-up");
            if (!q) rc = SX_ERR;
        }
    }
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        redisReply *r = c->reply;
        c->reply = NULL;
        memset(&c->old, 0, sizeof(c->old));
        if (rc == SX_OK && r->type == REDIS_REPLY_STRING) {
            const char *s = r->str;
            size_t len = r->len;
            if (len > 2 * HASH_LEN && s[2 * HASH_LEN] == '|') {
                const char *bar = memchr(s + 2 * HASH_LEN + 1, '|', len - 2 * HASH_LEN - 1);
                int committed = 0;
                for (int row = 0; q && bar && !committed && row < PQntuples(q); row++)
                    committed = memcmp(PQgetvalue(q, row, 0), s, 2 * HASH_LEN) == 0;
                const char *nw = s + 2 * HASH_LEN + 1;
                if (!bar) {
                    cum_key(R, c->project, c->series, key, sizeof(key));
                    sx_warn("malformed cumulative state under %s; starting over", key);
                } else if (committed) {
                    sx_rollup_cum_parse(nw, (size_t)(bar - nw), &c->old);
                } else {
                    sx_rollup_cum_parse(bar + 1, (size_t)(s + len - bar - 1), &c->old);
                }
            } else if (sx_rollup_cum_parse(s, len, &c->old) != SX_OK) {
                cum_key(R, c->project, c->series, key, sizeof(key));
                sx_warn("malformed cumulative state under %s; starting over", key);
            }
        }
        c->cur = c->old;
        if (r) freeReplyObject(r);
    }
    if (q) PQclear(q);
    return rc;
}

/* Replaces a key's value only while it still holds ARGV[1]: the plain state
 * written after COMMIT must not overwrite what another instance tagged after
 * taking the series' lock from us. */
static const char CAS_SCRIPT[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end return 0";

/* Writes the states of R->cum, pipelined: each tagged with the ledger key of
 * the last entry that moved it (before COMMIT), or plain (after COMMIT, only
 * where the tagged value is still there). SX_ERR on a Redis failure. */
int cum_store(struct rollup *R, int tagged)
{
    static char val[2 * SX_ROLLUP_CUM_TEXT_MAX + 64], nw[SX_ROLLUP_CUM_TEXT_MAX], old[SX_ROLLUP_CUM_TEXT_MAX];
    char key[224], hex[2 * HASH_LEN + 1];
    size_t sent = 0;
    int rc = SX_OK;
    for (size_t i = 0; i < R->cum_n; i++) {
        struct cumchange *c = &R->cum[i];
        size_t nn = sx_rollup_cum_format(&c->cur, nw, sizeof(nw));
        size_t on = sx_rollup_cum_format(&c->old, old, sizeof(old));
        if (nn == 0) continue;
        hex16(R->ents[c->tag].hash, hex);
        int n = snprintf(val, sizeof(val), "%s|%.*s|%.*s", hex, (int)nn, nw, (int)on, old);
        if (n < 0 || (size_t)n >= sizeof(val)) continue;
        cum_key(R, c->project, c->series, key, sizeof(key));
        int ok = tagged ? redisAppendCommand(R->rc, "SET %s %b", key, val, (size_t)n)
                        : redisAppendCommand(R->rc, "EVAL %s 1 %s %b %b", CAS_SCRIPT, key, val, (size_t)n, nw, nn);
        if (ok != REDIS_OK) return SX_ERR;
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(R->rc, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR) {
            redis_failed(R, tagged ? "SET cum" : "EVAL cum", r);
            rc = SX_ERR;
            if (!r) break;
        }
        if (r) freeReplyObject(r);
    }
    return rc;
}
