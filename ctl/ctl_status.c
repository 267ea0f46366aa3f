/* ctl_status.c: `sextantctl status`: span stream, consumer groups, writer progress and PostgreSQL health. */
#include "ctl.h"

#include "redis.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes a reply integer (or a numeric string) as a JSON number, else null. */
static void json_reply_int(struct sx_json *w, const redisReply *v)
{
    if (v && v->type == REDIS_REPLY_INTEGER) sx_json_int(w, v->integer);
    else if (v && v->type == REDIS_REPLY_STRING) sx_json_int(w, strtoll(v->str, NULL, 10));
    else sx_json_null(w);
}

static const redisReply *map_get(const redisReply *flat, const char *key)
{
    if (!flat || flat->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING && strcmp(flat->element[i]->str, key) == 0)
            return flat->element[i + 1];
    return NULL;
}

/* XLEN of key; 0 when missing; -1 on failure. */
static long long xlen(redisContext *rc, const char *key)
{
    long long n = -1;
    redisReply *r = redisCommand(rc, "XLEN %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER) n = r->integer;
    if (r) freeReplyObject(r);
    return n;
}

/* One ingest stream's object (suffix like SX_STREAM_SPANS); SX_ERR when
 * Redis failed (partial output is still valid JSON). */
static int stream_status(struct sx_ctl *ctl, redisContext *rc, const char *suffix)
{
    struct sx_json *w = &ctl->w;
    char stream[200], dead[220];
    int ok = SX_OK;
    sx_redis_key(stream, sizeof(stream), &ctl->cfg, suffix);
    snprintf(dead, sizeof(dead), "%s:dead", stream);

    sx_json_obj_open(w);
    sx_json_key(w, "length");
    long long len = xlen(rc, stream);
    if (len < 0) {
        sx_json_null(w);
        ok = SX_ERR;
    } else {
        sx_json_int(w, len);
    }
    sx_json_key(w, "groups");
    sx_json_arr_open(w);
    redisReply *r = redisCommand(rc, "XINFO GROUPS %s", stream);
    if (r && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *g = r->element[i];
            const redisReply *name = map_get(g, "name"), *last = map_get(g, "last-delivered-id");
            sx_json_obj_open(w);
            sx_json_key(w, "name");
            sx_json_strz(w, name && name->type == REDIS_REPLY_STRING ? name->str : NULL);
            sx_json_key(w, "pending");
            json_reply_int(w, map_get(g, "pending"));
            sx_json_key(w, "lag");
            json_reply_int(w, map_get(g, "lag")); /* Redis 7; null when unknown */
            sx_json_key(w, "consumers");
            json_reply_int(w, map_get(g, "consumers"));
            sx_json_key(w, "lastDeliveredId");
            sx_json_strz(w, last && last->type == REDIS_REPLY_STRING ? last->str : NULL);
            sx_json_obj_close(w);
        }
    } else if (!(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "no such key"))) {
        sx_ctl_err("XINFO GROUPS %s failed: %s", stream, r ? r->str : rc->errstr);
        ok = SX_ERR;
    }
    if (r) freeReplyObject(r);
    sx_json_arr_close(w);
    sx_json_key(w, "deadLetters");
    long long dl = rc->err ? -1 : xlen(rc, dead);
    if (dl < 0) {
        sx_json_null(w);
        ok = SX_ERR;
    } else {
        sx_json_int(w, dl);
    }
    sx_json_obj_close(w);
    return ok;
}

static void persist_status(struct sx_ctl *ctl, redisContext *rc)
{
    struct sx_json *w = &ctl->w;
    char k1[200], k2[200];
    sx_redis_key(k1, sizeof(k1), &ctl->cfg, "persist:last_write");
    sx_redis_key(k2, sizeof(k2), &ctl->cfg, "persist:spans_written");
    redisReply *a = rc && !rc->err ? redisCommand(rc, "GET %s", k1) : NULL;
    redisReply *b = rc && !rc->err ? redisCommand(rc, "GET %s", k2) : NULL;
    sx_json_obj_open(w);
    sx_json_key(w, "lastWriteUnixMs");
    json_reply_int(w, a);
    sx_json_key(w, "spansWritten");
    if (b && b->type == REDIS_REPLY_NIL) sx_json_int(w, 0);
    else json_reply_int(w, b);
    sx_json_obj_close(w);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
}

int sx_ctl_status(struct sx_ctl *ctl, int argc, char **argv)
{
    struct sx_json *w = &ctl->w;
    int rc = SX_CTL_OK;
    SX_UNUSED(argv);
    if (argc != 1) {
        sx_ctl_err("usage: status");
        return SX_CTL_USAGE;
    }
    redisContext *redis = sx_ctl_redis(ctl);
    sx_json_obj_open(w);
    sx_json_key(w, "redis");
    sx_json_obj_open(w);
    sx_json_key(w, "ok");
    sx_json_bool(w, redis != NULL);
    sx_json_obj_close(w);
    sx_json_key(w, "streams");
    sx_json_obj_open(w);
    static const char *const streams[][2] = {
        {"spans", SX_STREAM_SPANS}, {"logs", SX_STREAM_LOGS}, {"metrics", SX_STREAM_METRICS}};
    for (size_t i = 0; i < SX_ARRAY_LEN(streams); i++) {
        sx_json_key(w, streams[i][0]);
        if (redis && !redis->err) {
            if (stream_status(ctl, redis, streams[i][1]) != SX_OK) rc = SX_CTL_FAIL;
        } else {
            sx_json_null(w);
            rc = SX_CTL_FAIL;
        }
    }
    sx_json_obj_close(w);
    sx_json_key(w, "persist");
    persist_status(ctl, redis);

    sx_json_key(w, "projects");
    if (sx_ctl_status_usage(ctl, redis) != SX_OK) rc = SX_CTL_FAIL;

    sx_json_key(w, "postgres");
    sx_json_obj_open(w);
    PGresult *res = sx_ctl_pg(ctl) ? sx_ctl_query(ctl, "SELECT 1", 0, NULL, "postgres check") : NULL;
    sx_json_key(w, "ok");
    sx_json_bool(w, res != NULL);
    if (!res) rc = SX_CTL_FAIL;
    PQclear(res);
    sx_json_obj_close(w);
    sx_json_obj_close(w);
    return rc;
}
