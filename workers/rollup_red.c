/* rollup_red.c: sextant-rollup's span rollup thread: RED per operation, service edges and database statements, one-minute buckets, batched.
 *
 * Design. One thread with its own Redis and PostgreSQL connections reads the
 * spans stream with its own XREADGROUP (group "rollup", up to READ_COUNT
 * entries, never together with the metrics stream of workers/rollup.c, so a
 * missing group on one stream cannot stall the other). A batch is applied
 * in ONE transaction whatever its size, because sextant-persist trims the
 * stream only below what every group has consumed: this group must keep up
 * with persist or ingest answers 503 at the high-water mark. Per batch:
 *   1. every entry is checked and unpacked (malformed ones are
 *      dead-lettered to <stream>:dead and acknowledged at once); its ledger
 *      key is SHA-256(project id, body) cut to 16 bytes, as everywhere; its
 *      spans become compact records, strings interned for the batch;
 *   2. edges: a span whose parent is in the batch (same project) with
 *      another service is an edge parent -> child. A parent or child in
 *      another batch goes through two short-lived Redis keys (SPANMAP_TTL_S)
 *      per project, in one pipelined round trip of a Lua script per span
 *      that takes the other side's key or else leaves its own, atomically:
 *        <prefix>:{p<id>}:ss:<span id>  the service of a CLIENT/PRODUCER span
 *            (not a database call) that had no child in its batch;
 *        <prefix>:{p<id>}:pc:<span id>  "<minute> <error> <ms> <service>" of
 *            a SERVER/CONSUMER child whose parent was not found: the parent,
 *            when it comes, counts the edge.
 *      So the edge is counted once, by whichever of the two comes second,
 *      if it comes within the TTL, also with several instances at once; the
 *      keys are bounded by the TTL and by holding only spans that crossed a
 *      batch;
 *   3. aggregation in memory, keyed by (project, service, operation, kind,
 *      minute) for SERVER and CONSUMER spans, (project, parent service,
 *      child service, minute) for edges and (project, service, db system,
 *      statement hash, minute) for CLIENT spans with db.system[.name]
 *      (statement normalized by lib/sqlnorm.c);
 *   4. BEGIN; one INSERT of every entry's ledger row (stream "spans-red")
 *      ON CONFLICT DO NOTHING RETURNING the keys that are new. When some
 *      were applied before (redelivery), the aggregate is rebuilt from the
 *      records of the new entries only; then COPY into three temp tables
 *      and one INSERT ... SELECT ... ON CONFLICT DO UPDATE per table that
 *      adds counts and bucket arrays; COMMIT; one XACK for the whole batch.
 *      After a read that was not full the thread waits GATHER_MS, so that
 *      keeping up means a few large transactions a second, not hundreds of
 *      small ones.
 * Pending entries of this consumer are re-read from "0" at start and after
 * a failure; idle pending entries of dead consumers are reclaimed with
 * XAUTOCLAIM; NOGROUP (stream or group deleted, e.g. FLUSHALL) recreates the
 * group. Acknowledged entries are trimmed with sx_redis_trim_consumed.
 *
 * Several instances may run at once (the ledger and the atomic edge keys
 * keep every count exact). Limits: strings are cut (service 256, operation 512, statement 4096 bytes); a batch
 * holds at most READ_COUNT entries. */
#include "rollup_red_int.h"

static pthread_t red_thread;
static int red_started;
static atomic_int red_stop;

void *red_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "sextant-rollup: out of memory\n");
        abort();
    }
    return q;
}

static void nap(int ms)
{
    for (int i = 0; i < ms / 50 && !atomic_load(&red_stop); i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SHA-256 of up to two byte ranges into out (outlen <= 32). Aborts when
 * OpenSSL cannot hash (out of memory). */
void red_sha(const void *a, size_t an, const void *b, size_t bn, uint8_t *out, size_t outlen)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
        EVP_DigestUpdate(ctx, b, bn) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < outlen) {
        fprintf(stderr, "sextant-rollup: sha-256 failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, outlen);
}

uint64_t red_fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

uint64_t red_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* ---- Redis ------------------------------------------------------------------- */

static int redis_alive(const struct red *R)
{
    return R->rc && !R->rc->err;
}

static int redis_ready(struct red *R)
{
    if (redis_alive(R)) return SX_OK;
    int timeout = (int)R->cfg->persist_block_ms + 10000;
    if (sx_redis_ensure(&R->rc, R->cfg, 2000, timeout) != SX_OK) return SX_ERR;
    if (sx_redis_group_create(R->rc, R->stream, GROUP) != SX_OK) {
        redisFree(R->rc);
        R->rc = NULL;
        return SX_ERR;
    }
    sx_info("span rollup: connected to redis; group %s on %s, consumer %s", GROUP, R->stream, R->consumer);
    R->history = 1;
    return SX_OK;
}

/* An error reply NOGROUP (the stream or the group was deleted, e.g. by
 * FLUSHALL): recreate the group and re-read our history. Returns 1 when r
 * was such a reply. */
static int nogroup(struct red *R, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOGROUP", 7) != 0) return 0;
    sx_warn("span rollup: group %s on %s is gone; creating it again", GROUP, R->stream);
    if (sx_redis_group_create(R->rc, R->stream, GROUP) == SX_OK) R->history = 1;
    return 1;
}

/* ---- PostgreSQL ------------------------------------------------------------------ */

static const char session_sql[] =
    "SET jit = off; "
    "CREATE TEMP TABLE IF NOT EXISTS red_stage (LIKE red_1m) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS edges_stage (LIKE edges_1m) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS db_stage (LIKE db_statements_1m) ON COMMIT DELETE ROWS";

#define ADD_BUCKETS(t) \
    "dur_buckets = ARRAY(SELECT COALESCE(a, 0) + COALESCE(b, 0) FROM unnest(" t ".dur_buckets, " \
    "EXCLUDED.dur_buckets) WITH ORDINALITY AS u(a, b, o) ORDER BY o)"

/* What an upsert into red_1m or red_1h adds to a row that is there. */
#define RED_ADD                                                                                                 \
    "ON CONFLICT (project_id, service, operation, kind, bucket_start_ns) DO UPDATE SET "                        \
    "requests = t.requests + EXCLUDED.requests, errors = t.errors + EXCLUDED.errors, "                          \
    "s2xx = t.s2xx + EXCLUDED.s2xx, s3xx = t.s3xx + EXCLUDED.s3xx, s4xx = t.s4xx + EXCLUDED.s4xx, "             \
    "s5xx = t.s5xx + EXCLUDED.s5xx, dur_sum_ms = t.dur_sum_ms + EXCLUDED.dur_sum_ms, "                          \
    "dur_min_ms = LEAST(t.dur_min_ms, EXCLUDED.dur_min_ms), dur_max_ms = GREATEST(t.dur_max_ms, EXCLUDED.dur_max_ms), " \
    ADD_BUCKETS("t")

static const char red_upsert[] =
    "INSERT INTO red_1m AS t SELECT * FROM red_stage ORDER BY project_id, service, operation, kind, bucket_start_ns "
    RED_ADD;

/* The same minutes added into their hours (sql/018): the staged rows
 * grouped by hour, their duration buckets summed element by element. */
static const char red_1h_upsert[] =
    "INSERT INTO red_1h AS t "
    "SELECT m.project_id, m.service, m.operation, m.kind, m.h, m.requests, m.errors, m.s2xx, m.s3xx, m.s4xx, "
    "m.s5xx, m.dur_sum_ms, m.dur_min_ms, m.dur_max_ms, b.dur_buckets "
    "FROM (SELECT project_id, service, operation, kind, bucket_start_ns - bucket_start_ns % 3600000000000 AS h, "
    "sum(requests) AS requests, sum(errors) AS errors, sum(s2xx) AS s2xx, sum(s3xx) AS s3xx, sum(s4xx) AS s4xx, "
    "sum(s5xx) AS s5xx, sum(dur_sum_ms) AS dur_sum_ms, min(dur_min_ms) AS dur_min_ms, max(dur_max_ms) AS dur_max_ms "
    "FROM red_stage GROUP BY 1, 2, 3, 4, 5) m "
    "JOIN (SELECT project_id, service, operation, kind, h, array_agg(v ORDER BY o) AS dur_buckets "
    "FROM (SELECT r.project_id, r.service, r.operation, r.kind, r.bucket_start_ns - r.bucket_start_ns % 3600000000000 AS h, "
    "u.o, sum(u.v) AS v FROM red_stage r, unnest(r.dur_buckets) WITH ORDINALITY AS u(v, o) GROUP BY 1, 2, 3, 4, 5, 6) pb "
    "GROUP BY 1, 2, 3, 4, 5) b USING (project_id, service, operation, kind, h) "
    "ORDER BY 1, 2, 3, 4, 5 " RED_ADD;

static const char edges_upsert[] =
    "INSERT INTO edges_1m AS t SELECT * FROM edges_stage "
    "ORDER BY project_id, parent_service, child_service, bucket_start_ns "
    "ON CONFLICT (project_id, parent_service, child_service, bucket_start_ns) DO UPDATE SET "
    "calls = t.calls + EXCLUDED.calls, errors = t.errors + EXCLUDED.errors, " ADD_BUCKETS("t");

static const char db_upsert[] =
    "INSERT INTO db_statements_1m AS t SELECT * FROM db_stage "
    "ORDER BY project_id, service, db_system, stmt_hash, bucket_start_ns "
    "ON CONFLICT (project_id, service, db_system, stmt_hash, bucket_start_ns) DO UPDATE SET "
    "calls = t.calls + EXCLUDED.calls, errors = t.errors + EXCLUDED.errors, "
    "dur_sum_ms = t.dur_sum_ms + EXCLUDED.dur_sum_ms, dur_max_ms = GREATEST(t.dur_max_ms, EXCLUDED.dur_max_ms), "
    "db_name = COALESCE(t.db_name, EXCLUDED.db_name), " ADD_BUCKETS("t");

static int pg_ready(struct red *R)
{
    if (R->pg && PQstatus(R->pg) != CONNECTION_OK) R->pg_session = 0;
    if (sx_pg_ensure(&R->pg, R->cfg->pg_conninfo) != SX_OK) {
        R->pg_session = 0;
        return SX_ERR;
    }
    if (!R->pg_session) {
        if (PQtransactionStatus(R->pg) != PQTRANS_IDLE) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
        if (sx_pg_exec(R->pg, session_sql, "span rollup session") != SX_OK) return SX_ERR;
        R->pg_session = 1;
    }
    return SX_OK;
}

static void put_dbl(struct sx_buf *b, double v)
{
    sx_buf_printf(b, "%.17g", isfinite(v) ? v : 0);
}

static void put_buckets(struct sx_buf *b, const long long *v)
{
    sx_buf_putc(b, '{');
    for (size_t i = 0; i < SX_RED_NBUCKETS; i++) sx_buf_printf(b, "%s%lld", i ? "," : "", v[i]);
    sx_buf_putc(b, '}');
}

/* The COPY text of the rows of one type into R->copy; SX_ERR when too big. */
static int copy_rows(struct red *R, int type, size_t *nrows)
{
    struct sx_buf *b = &R->copy;
    sx_buf_reset(b);
    *nrows = 0;
    for (size_t i = 0; i < R->acap; i++) {
        const struct agg *a = &R->aggs[i];
        if (a->type != type) continue;
        int ok = sx_buf_printf(b, "%lld\t", a->project) == SX_OK;
        if (type == ROW_RED) {
            ok &= sx_copyrow_text(b, a->s1, strlen(a->s1)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= sx_copyrow_text(b, a->s2, strlen(a->s2)) == SX_OK;
            ok &= sx_buf_printf(b, "\t%d\t%" PRId64 "\t%lld\t%lld\t%lld\t%lld\t%lld\t%lld\t", a->kind, a->bucket,
                                a->count, a->errors, a->cls[0], a->cls[1], a->cls[2], a->cls[3]) == SX_OK;
            put_dbl(b, a->sum);
            sx_buf_putc(b, '\t');
            put_dbl(b, a->min);
            sx_buf_putc(b, '\t');
            put_dbl(b, a->max);
        } else if (type == ROW_EDGE) {
            ok &= sx_copyrow_text(b, a->s1, strlen(a->s1)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= sx_copyrow_text(b, a->s2, strlen(a->s2)) == SX_OK;
            ok &= sx_buf_printf(b, "\t%" PRId64 "\t%lld\t%lld", a->bucket, a->count, a->errors) == SX_OK;
        } else {
            ok &= sx_copyrow_text(b, a->s1, strlen(a->s1)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= sx_copyrow_text(b, a->s2, strlen(a->s2)) == SX_OK;
            ok &= sx_buf_printf(b, "\t%" PRId64 "\t%" PRId64 "\t", a->hash, a->bucket) == SX_OK;
            ok &= sx_copyrow_text(b, a->s3, strlen(a->s3)) == SX_OK && sx_buf_putc(b, '\t') == SX_OK;
            ok &= (a->db_name ? sx_copyrow_text(b, a->db_name, strlen(a->db_name)) : sx_buf_puts(b, "\\N")) == SX_OK;
            ok &= sx_buf_printf(b, "\t%lld\t%lld\t", a->count, a->errors) == SX_OK;
            put_dbl(b, a->sum);
            sx_buf_putc(b, '\t');
            put_dbl(b, a->max);
        }
        sx_buf_putc(b, '\t');
        put_buckets(b, a->buckets);
        if (!ok || sx_buf_putc(b, '\n') != SX_OK) return SX_ERR;
        (*nrows)++;
    }
    return SX_OK;
}

/* COPY R->copy into table; SX_ERR (logged) on failure. */
static int copy_in(struct red *R, const char *table)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table);
    PGresult *res = PQexec(R->pg, sql);
    int ok = res && PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!ok) {
        sx_warn("COPY %s failed: %s", table, PQerrorMessage(R->pg));
        return SX_ERR;
    }
    ok = PQputCopyData(R->pg, R->copy.data, (int)R->copy.len) == 1;
    if (PQputCopyEnd(R->pg, ok ? NULL : "client failed") != 1) ok = 0;
    while ((res = PQgetResult(R->pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (ok) sx_warn("COPY %s failed: %s", table, PQresultErrorMessage(res));
            ok = 0;
        }
        PQclear(res);
    }
    return ok ? SX_OK : SX_ERR;
}

static int write_table(struct red *R, int type, const char *stage, const char *upsert, const char *what)
{
    size_t n;
    if (copy_rows(R, type, &n) != SX_OK) {
        sx_warn("span rollup: %s rows over %zu bytes", what, (size_t)COPY_MAX);
        return SX_ERR;
    }
    if (!n) return SX_OK;
    if (copy_in(R, stage) != SX_OK) return SX_ERR;
    PGresult *res = sx_pg_query(R->pg, upsert, 0, NULL, what);
    if (!res) return SX_ERR;
    PQclear(res);
    R->st_rows += (long long)n;
    return SX_OK;
}

/* Inserts the ledger rows of the valid entries (lib/ledger.h) and sets
 * fresh on the new ones (of equal keys, the first). Returns the number of
 * valid entries that are not fresh, or SX_ERR. Stream ids are at most 41
 * bytes: the 63-byte cap of the ledger's entry_id never cuts one. */
static long long ledger(struct red *R)
{
    size_t nv = 0;
    if (R->nents > R->litems_cap) {
        R->litems_cap = R->nents;
        R->litems = red_xrealloc(R->litems, R->litems_cap * sizeof(*R->litems));
    }
    for (size_t i = 0; i < R->nents; i++) {
        R->ents[i].fresh = 0;
        if (R->ents[i].valid) R->litems[nv++] = (struct sx_ledger_item){R->ents[i].hash, R->ents[i].id, R->ents[i].idlen, 0};
    }
    if (!nv) return 0;
    long long dup = sx_ledger_insert(R->pg, LEDGER_STREAM, R->litems, nv, &R->keys);
    if (dup < 0) return SX_ERR;
    for (size_t i = 0, k = 0; i < R->nents; i++)
        if (R->ents[i].valid) R->ents[i].fresh = R->litems[k++].fresh;
    return dup;
}

/* Step 4 of the design note. SX_ERR after a rollback. */
static int write_batch(struct red *R)
{
    int64_t t0 = sx_mono_ns();
    if (pg_ready(R) != SX_OK) return SX_ERR;
    if (sx_pg_exec(R->pg, "BEGIN", "BEGIN") != SX_OK) return SX_ERR;
    long long dup = ledger(R);
    if (dup < 0) goto rollback;
    if (dup > 0) {
        red_aggregate(R); /* from the fresh entries only */
        R->st_dup += dup;
    }
    if (write_table(R, ROW_RED, "red_stage", red_upsert, "red_1m upsert") != SX_OK ||
        sx_pg_exec(R->pg, red_1h_upsert, "red_1h upsert") != SX_OK ||
        write_table(R, ROW_EDGE, "edges_stage", edges_upsert, "edges_1m upsert") != SX_OK ||
        write_table(R, ROW_DB, "db_stage", db_upsert, "db_statements_1m upsert") != SX_OK)
        goto rollback;
    if (sx_pg_exec(R->pg, "COMMIT", "COMMIT") != SX_OK) return SX_ERR;
    R->st_db_ms += (double)(sx_mono_ns() - t0) / 1e6;
    return SX_OK;
rollback:
    if (R->pg && PQstatus(R->pg) == CONNECTION_OK) sx_pg_exec(R->pg, "ROLLBACK", "ROLLBACK");
    return SX_ERR;
}

/* ---- the batch ------------------------------------------------------------------- */

/* Copies an undecodable entry to <stream>:dead with an "error" field and
 * acknowledges it, atomically (lib/entry.h). */
static int dead_letter(struct red *R, const char *id, size_t idlen, const redisReply *fields, const char *why)
{
    int rc = sx_entry_dead_letter(R->rc, R->stream, R->dead, GROUP, id, idlen, fields, why);
    if (rc == SX_OK) R->st_dead++;
    return rc;
}

/* Acknowledges every entry of the batch (dead-lettered ones again: XACK of
 * an acknowledged id is a no-op) in one command. */
static int xack_all(struct red *R)
{
    if (!R->nents) return SX_OK;
    size_t argc = 3 + R->nents;
    const char **argv = red_xrealloc(NULL, argc * sizeof(*argv));
    size_t *argl = red_xrealloc(NULL, argc * sizeof(*argl));
    argv[0] = "XACK", argl[0] = 4;
    argv[1] = R->stream, argl[1] = strlen(R->stream);
    argv[2] = GROUP, argl[2] = strlen(GROUP);
    for (size_t i = 0; i < R->nents; i++) argv[3 + i] = R->ents[i].id, argl[3 + i] = R->ents[i].idlen;
    redisReply *r = redisCommandArgv(R->rc, (int)argc, argv, argl);
    free(argv);
    free(argl);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? SX_OK : SX_ERR;
    if (rc != SX_OK && !nogroup(R, r)) sx_redis_warn(R->rc, "XACK", r);
    if (r) freeReplyObject(r);
    if (rc == SX_OK) R->acked = 1;
    return rc;
}

/* Applies an array of stream entries as one batch (see the design note).
 * SX_OK when every entry is done and acknowledged; SX_ERR to retry them. */
static int process_batch(struct red *R, const redisReply *arr)
{
    if (!arr || arr->type != REDIS_REPLY_ARRAY || arr->elements == 0) return SX_OK;
    int64_t cpu0 = thread_cpu_ns();
    sx_arena_reset(R->strs);
    if (R->icap) memset(R->itab, 0, R->icap * sizeof(*R->itab));
    R->in = 0;
    R->nents = R->nrecs = 0;
    if (arr->elements > R->ents_cap) {
        R->ents_cap = arr->elements;
        R->ents = red_xrealloc(R->ents, R->ents_cap * sizeof(*R->ents));
    }
    for (size_t i = 0; i < arr->elements && !atomic_load(&red_stop); i++) {
        const redisReply *item = arr->element[i];
        if (item->type != REDIS_REPLY_ARRAY || item->elements != 2 || item->element[0]->type != REDIS_REPLY_STRING)
            continue;
        struct ent *e = &R->ents[R->nents++];
        memset(e, 0, sizeof(*e));
        e->id = item->element[0]->str;
        e->idlen = item->element[0]->len;
        const redisReply *fields = item->element[1];
        if (fields->type == REDIS_REPLY_NIL) continue; /* deleted while pending: just XACK */
        if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) {
            if (dead_letter(R, e->id, e->idlen, NULL, "malformed entry") != SX_OK) return SX_ERR;
            continue;
        }
        long long project = sx_entry_ll(sx_entry_field(fields, SX_FIELD_PROJECT), 1, INT32_MAX, 0);
        const redisReply *body = sx_entry_field(fields, SX_FIELD_BODY);
        const char *why = !project ? "missing or invalid project id field 'p'"
                          : !body || body->type != REDIS_REPLY_STRING ? "missing body field 'b'"
                                                                       : NULL;
        ProtobufCAllocator pa;
        sx_arena_reset(R->arena);
        sx_arena_pb_allocator(R->arena, &pa);
        sx_trace_req *req = why ? NULL
                                : opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                                      &pa, body->len, (const uint8_t *)body->str);
        if (!why && !req) why = "protobuf unpack of field 'b' failed";
        if (why) {
            if (dead_letter(R, e->id, e->idlen, fields, why) != SX_OK) return SX_ERR;
            continue;
        }
        sx_entry_key(project, body->str, body->len, e->hash);
        e->project = project;
        e->valid = e->fresh = 1;
        if (red_collect(R, R->nents - 1, project, req) != SX_OK) {
            sx_warn("span rollup: batch strings over %zu bytes", (size_t)STR_ARENA_MAX);
            return SX_ERR;
        }
    }
    if (atomic_load(&red_stop)) return SX_ERR; /* stopping: leave the rest pending */
    if (red_resolve_edges(R) != SX_OK) return SX_ERR;
    red_aggregate(R);
    if (write_batch(R) != SX_OK) return SX_ERR;
    if (xack_all(R) != SX_OK) return SX_ERR;
    R->st_batches++;
    R->st_entries += (long long)R->nents;
    R->st_spans += (long long)R->nrecs;
    R->st_cpu_ns += thread_cpu_ns() - cpu0;
    return SX_OK;
}

/* One XREADGROUP: our pending entries from "0" while history is set, else
 * new ones (blocking). SX_ERR on a failure (back off). */
static int read_cycle(struct red *R)
{
    char count[16], block[24];
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(block, sizeof(block), "%lld", R->cfg->persist_block_ms);
    const char *argv[11] = {"XREADGROUP", "GROUP", GROUP, R->consumer, "COUNT", count, "BLOCK", block, "STREAMS",
                            R->stream,    ">"};
    int argc = 11;
    if (R->history) { /* no BLOCK for history */
        argv[6] = "STREAMS", argv[7] = R->stream, argv[8] = "0";
        argc = 9;
    }
    redisReply *r = redisCommandArgv(R->rc, argc, argv, NULL);
    if (!r || (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL)) {
        int gone = nogroup(R, r);
        if (!gone) sx_redis_warn(R->rc, "XREADGROUP", r);
        if (r) freeReplyObject(r);
        return gone ? SX_OK : SX_ERR;
    }
    size_t got = 0;
    int rc = SX_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        got = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
        rc = process_batch(R, entries);
    }
    freeReplyObject(r);
    if (rc != SX_OK) {
        R->history = 1; /* retry our pending entries */
        return SX_ERR;
    }
    if (R->history && got == 0) {
        R->history = 0;
        sx_info("span rollup: own pending entries done; reading new entries");
    }
    /* Keeping up, a read returns the few entries of the last moment: one
     * transaction each would cost PostgreSQL more than the rows (fe65cae's
     * lesson). Waiting a little makes batches of hundreds of entries. */
    if (!R->history && got > 0 && got < READ_COUNT) nap(GATHER_MS);
    return SX_OK;
}

/* Reclaims entries idle longer than persist_claim_idle_ms from any consumer
 * of the group (a crashed instance) and applies them, a batch at a time. */
static void claim_cycle(struct red *R)
{
    char cursor[64] = "0-0", idle[24], count[16];
    long long claimed = 0;
    snprintf(idle, sizeof(idle), "%lld", R->cfg->persist_claim_idle_ms);
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    do {
        const char *argv[8] = {"XAUTOCLAIM", R->stream, GROUP, R->consumer, idle, cursor, "COUNT", count};
        redisReply *r = redisCommandArgv(R->rc, 8, argv, NULL);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
            if (!nogroup(R, r)) sx_redis_warn(R->rc, "XAUTOCLAIM", r);
            if (r) freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
        const redisReply *entries = r->element[1];
        size_t n = entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
        int rc = process_batch(R, entries);
        freeReplyObject(r);
        if (rc != SX_OK) {
            R->history = 1;
            break;
        }
        claimed += (long long)n;
    } while (strcmp(cursor, "0-0") != 0 && !atomic_load(&red_stop));
    if (claimed) sx_info("span rollup: reclaimed %lld idle pending entries", claimed);
}

static void periodic(struct red *R)
{
    int64_t now = sx_mono_ns();
    if (now >= R->next_claim_ns && redis_alive(R)) {
        claim_cycle(R);
        R->next_claim_ns = now + R->cfg->persist_claim_idle_ms / 2 * 1000000LL;
    }
    if (R->acked && now >= R->next_trim_ns && redis_alive(R)) {
        R->acked = 0;
        sx_redis_trim_consumed(R->rc, R->stream);
        R->next_trim_ns = now + TRIM_EVERY_NS;
    }
    if (now >= R->next_stats_ns) {
        if (R->st_entries || R->st_dead)
            sx_info("span rollup: %lld spans of %lld entries in %lld batches (%lld rows, %.0f ms in PostgreSQL, "
                    "%.0f ms CPU); %lld entries already applied, %lld dead-lettered",
                    R->st_spans, R->st_entries, R->st_batches, R->st_rows, R->st_db_ms, (double)R->st_cpu_ns / 1e6,
                    R->st_dup, R->st_dead);
        R->st_spans = R->st_entries = R->st_batches = R->st_rows = R->st_dup = R->st_dead = 0;
        R->st_db_ms = 0;
        R->st_cpu_ns = 0;
        R->next_stats_ns = now + STATS_EVERY_NS;
    }
}

static void red_free(struct red *R)
{
    if (R->rc) redisFree(R->rc);
    if (R->pg) PQfinish(R->pg);
    sx_arena_destroy(R->arena);
    sx_arena_destroy(R->strs);
    sx_buf_term(&R->copy);
    sx_buf_term(&R->keys);
    free(R->itab);
    free(R->ents);
    free(R->recs);
    free(R->index);
    free(R->litems);
    free(R->aggs);
    free(R->pend);
    free(R->norm);
    free(R);
}

static void *red_main(void *arg)
{
    struct red *R = arg;
    int backoff = BACKOFF_MIN_MS;
    int64_t now = sx_mono_ns();
    R->next_claim_ns = now;
    R->next_stats_ns = now + STATS_EVERY_NS;
    R->history = 1;
    while (!atomic_load(&red_stop)) {
        if (redis_ready(R) != SX_OK || read_cycle(R) != SX_OK) {
            nap(backoff);
            backoff = SX_MIN(backoff * 2, BACKOFF_MAX_MS);
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        periodic(R);
    }
    red_free(R);
    return NULL;
}

int sx_rollup_red_start(const struct sx_config *cfg, const char *instance)
{
    struct red *R = sx_xcalloc(1, sizeof(*R));
    R->cfg = cfg;
    snprintf(R->consumer, sizeof(R->consumer), "rollup-%s", instance);
    sx_redis_key(R->stream, sizeof(R->stream), cfg, SX_STREAM_SPANS);
    snprintf(R->dead, sizeof(R->dead), "%s:dead", R->stream);
    R->arena = sx_arena_create(ENTRY_ARENA_CHUNK, ENTRY_ARENA_MAX);
    R->strs = sx_arena_create(ENTRY_ARENA_CHUNK, STR_ARENA_MAX);
    R->norm = sx_xmalloc(STATEMENT_MAX + 1);
    sx_buf_init(&R->copy, COPY_MAX);
    sx_buf_init(&R->keys, (size_t)2 << 20); /* hex keys and ids: the 1 MiB each they had apart */
    red_agg_grow(R);
    atomic_store(&red_stop, 0);

    /* Signals go to the main thread (its handler stops the process). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = pthread_create(&red_thread, NULL, red_main, R);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        sx_error("pthread_create(span rollup) failed: %s", strerror(err));
        red_free(R);
        return SX_ERR;
    }
    red_started = 1;
    return SX_OK;
}

void sx_rollup_red_stop(void)
{
    if (!red_started) return;
    atomic_store(&red_stop, 1);
    pthread_join(red_thread, NULL);
    red_started = 0;
}
