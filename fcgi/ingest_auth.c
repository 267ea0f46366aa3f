/* ingest_auth.c: ingest key resolution through the Redis key cache and PostgreSQL.
 *
 * Keys are stored hashed (SHA-256). The cache entry "<prefix>:key:<hex>"
 * holds "<project_id> <key_id> <state>" or "none"; unknown keys are cached
 * negatively so a flood of bad keys never reaches PostgreSQL. sextantctl
 * deletes the entry when it revokes a key or suspends a project, so those
 * take effect at once. */
#include "ingest_auth.h"

#include "keys.h"
#include "log.h"
#include "pg.h"
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_CONNECT_TIMEOUT 2             /* seconds; a dead database must not hold a worker */
#define PG_STATEMENT_TIMEOUT "SET statement_timeout = 2000"

static const char key_sql[] =
    "SELECT k.id, k.project_id, k.revoked_at IS NOT NULL, p.status "
    "FROM ingest_keys k JOIN projects p ON p.id = k.project_id WHERE k.key_hash = $1";

/* libpq's messages end with a newline; logs want one line. */
const char *sx_ingest_one_line(const char *msg, char *buf, size_t len)
{
    snprintf(buf, len, "%s", msg ? msg : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ') buf[--n] = '\0';
    return buf;
}

/* Opens *pg when absent or broken, with a short connect_timeout (it
 * overrides one in the conninfo). */
int sx_ingest_pg_open(PGconn **pg, const struct sx_config *c, const char *reqid)
{
    char tmp[512];
    if (*pg && PQstatus(*pg) == CONNECTION_OK) return SX_OK;
    PQfinish(*pg);
    *pg = NULL;

    PGconn *conn = sx_pg_connect_timeout(c->pg_conninfo, PG_CONNECT_TIMEOUT, tmp, sizeof(tmp));
    if (!conn) {
        sx_rwarn(reqid, "%s", tmp);
        return SX_ERR;
    }
    PGresult *res = PQexec(conn, PG_STATEMENT_TIMEOUT);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        sx_rwarn(reqid, "PQexec(statement_timeout) failed: %s", sx_ingest_one_line(PQerrorMessage(conn), tmp, sizeof(tmp)));
        PQclear(res);
        PQfinish(conn);
        return SX_ERR;
    }
    PQclear(res);
    *pg = conn;
    return SX_OK;
}

/* Runs the key query once. SX_OK with *out filled (state NONE when no row),
 * SX_ERR when the query failed. */
static int pg_query_key(PGconn *pg, const uint8_t hash[SX_SHA256_LEN], struct sx_ingest_key *out, const char *reqid)
{
    char tmp[512];
    const char *params[1] = {(const char *)hash};
    const int lens[1] = {SX_SHA256_LEN};
    const int formats[1] = {1}; /* binary bytea */
    int rc = SX_ERR;

    PGresult *res = PQexecParams(pg, key_sql, 1, NULL, params, lens, formats, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        sx_rwarn(reqid, "PQexecParams(ingest key) failed: %s", sx_ingest_one_line(PQerrorMessage(pg), tmp, sizeof(tmp)));
        goto out;
    }
    memset(out, 0, sizeof(*out));
    if (PQntuples(res) == 0) {
        out->state = SX_INGEST_KEY_NONE;
        rc = SX_OK;
        goto out;
    }
    if (PQnfields(res) != 4 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)) {
        sx_rwarn(reqid, "PQexecParams(ingest key) failed: unexpected result shape");
        goto out;
    }
    out->key_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->project_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (strcmp(PQgetvalue(res, 0, 2), "t") == 0)
        out->state = SX_INGEST_KEY_REVOKED;
    else if (strcmp(PQgetvalue(res, 0, 3), "active") != 0)
        out->state = SX_INGEST_KEY_SUSPENDED;
    else
        out->state = SX_INGEST_KEY_ACTIVE;
    rc = SX_OK;
out:
    PQclear(res);
    return rc;
}

/* Stores the answer in the key cache; failures only cost a later miss. */
static void cache_store(redisContext *rc, const struct sx_config *c, const char *cache_key,
                        const struct sx_ingest_key *k, const char *reqid)
{
    char val[96], ttl[24];
    int n = sx_ingest_key_cache_format(k, val, sizeof(val));
    if (n < 0) return;
    snprintf(ttl, sizeof(ttl), "%lld", k->state == SX_INGEST_KEY_NONE ? c->key_negative_ttl : c->key_cache_ttl);
    const char *argv[5] = {"SET", cache_key, val, "EX", ttl};
    size_t argl[5] = {3, strlen(cache_key), (size_t)n, 2, strlen(ttl)};
    redisReply *r = redisCommandArgv(rc, 5, argv, argl);
    if (!r) {
        sx_rwarn(reqid, "redisCommand(SET key cache) failed: %s", rc->errstr);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) sx_rwarn(reqid, "redisCommand(SET key cache) failed: %s", r->str);
    freeReplyObject(r);
}

int sx_ingest_key_lookup(redisContext *rc, PGconn **pg, const struct sx_config *c, const char *key, size_t len,
                         struct sx_ingest_key *out, const char *reqid, char *why, size_t whylen)
{
    uint8_t hash[SX_SHA256_LEN];
    char hex[2 * SX_SHA256_LEN + 1], suffix[8 + sizeof(hex)], cache_key[160];

    memset(out, 0, sizeof(*out));
    why[0] = '\0';
    /* Nothing longer was ever issued: no need to ask anyone. */
    if (len > SX_KEY_MAX) {
        out->state = SX_INGEST_KEY_NONE;
        return SX_OK;
    }
    sx_sha256(key, len, hash);
    sx_hex_encode(hash, sizeof(hash), hex);
    snprintf(suffix, sizeof(suffix), "key:%s", hex);
    sx_redis_key(cache_key, sizeof(cache_key), c, suffix);

    redisReply *r = redisCommand(rc, "GET %s", cache_key);
    if (!r) {
        sx_rwarn(reqid, "redisCommand(GET key cache) failed: %s", rc->errstr);
        snprintf(why, whylen, "Redis is unavailable");
        return SX_ERR;
    }
    int hit = r->type == REDIS_REPLY_STRING && sx_ingest_key_cache_parse(r->str, r->len, out) == SX_OK;
    if (r->type == REDIS_REPLY_ERROR) sx_rwarn(reqid, "redisCommand(GET key cache) failed: %s", r->str);
    freeReplyObject(r);
    if (hit) return SX_OK;

    /* Miss: ask PostgreSQL; a connection that broke since the last request
     * is reopened once before giving up. */
    int rcq = SX_ERR;
    for (int attempt = 0; attempt < 2 && rcq != SX_OK; attempt++) {
        if (sx_ingest_pg_open(pg, c, reqid) != SX_OK) break;
        rcq = pg_query_key(*pg, hash, out, reqid);
        if (rcq != SX_OK && PQstatus(*pg) == CONNECTION_OK) break; /* a live server refused: no retry */
    }
    if (rcq != SX_OK) {
        snprintf(why, whylen, "key store (PostgreSQL) is unavailable");
        return SX_ERR;
    }
    cache_store(rc, c, cache_key, out, reqid);
    return SX_OK;
}
