/* redis.c: hiredis connection helpers and key naming. */
#include "redis.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

redisContext *sx_redis_connect(const struct sx_config *c, int connect_timeout_ms, int command_timeout_ms, char *err,
                               size_t errlen)
{
    struct timeval tv = ms_to_tv(connect_timeout_ms);
    redisContext *ctx;
    if (c->redis_socket[0])
        ctx = redisConnectUnixWithTimeout(c->redis_socket, tv);
    else
        ctx = redisConnectWithTimeout(c->redis_host, (int)c->redis_port, tv);
    if (!ctx) {
        snprintf(err, errlen, "redisConnect failed: out of memory");
        return NULL;
    }
    if (ctx->err) {
        snprintf(err, errlen, "redisConnect(%s) failed: %s", c->redis_socket[0] ? c->redis_socket : c->redis_host,
                 ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    if (command_timeout_ms > 0 && redisSetTimeout(ctx, ms_to_tv(command_timeout_ms)) != REDIS_OK) {
        snprintf(err, errlen, "redisSetTimeout failed: %s", ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

int sx_redis_ensure(redisContext **ctx, const struct sx_config *c, int connect_timeout_ms, int command_timeout_ms)
{
    if (*ctx && !(*ctx)->err) return SX_OK;
    if (*ctx) {
        redisFree(*ctx);
        *ctx = NULL;
    }
    char err[256];
    *ctx = sx_redis_connect(c, connect_timeout_ms, command_timeout_ms, err, sizeof(err));
    if (!*ctx) {
        sx_warn("%s", err);
        return SX_ERR;
    }
    return SX_OK;
}

char *sx_redis_key(char *out, size_t outlen, const struct sx_config *c, const char *suffix)
{
    snprintf(out, outlen, "%s:%s", c->redis_prefix, suffix);
    return out;
}

char *sx_redis_pkey(char *out, size_t outlen, const struct sx_config *c, long long project_id, const char *suffix)
{
    snprintf(out, outlen, "%s:{p%lld}:%s", c->redis_prefix, project_id, suffix);
    return out;
}

int sx_redis_group_create(redisContext *ctx, const char *stream, const char *group)
{
    redisReply *r = redisCommand(ctx, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
    if (!r) {
        sx_warn("XGROUP CREATE %s %s failed: %s", stream, group, ctx->errstr);
        return SX_ERR;
    }
    int rc = SX_OK;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        sx_warn("XGROUP CREATE %s %s failed: %s", stream, group, r->str);
        rc = SX_ERR;
    }
    freeReplyObject(r);
    return rc;
}

void sx_redis_warn(const redisContext *ctx, const char *what, const redisReply *r)
{
    if (!r)
        sx_warn("%s failed: %s", what, ctx ? ctx->errstr : "not connected");
    else if (r->type == REDIS_REPLY_ERROR)
        sx_warn("%s failed: %.*s", what, (int)r->len, r->str);
    else
        sx_warn("%s failed: unexpected reply type %d", what, r->type);
}

/* A stream entry id "ms-seq". */
struct stream_id {
    uint64_t ms, seq;
};

static int parse_stream_id(const char *s, size_t n, struct stream_id *out)
{
    char tmp[64], *end;
    if (n == 0 || n >= sizeof(tmp)) return SX_ERR;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    out->ms = strtoull(tmp, &end, 10);
    out->seq = 0;
    if (errno || end == tmp) return SX_ERR;
    if (*end == '-') {
        char *e2;
        out->seq = strtoull(end + 1, &e2, 10);
        if (errno || *e2) return SX_ERR;
    } else if (*end) {
        return SX_ERR;
    }
    return SX_OK;
}

static int stream_id_less(struct stream_id a, struct stream_id b)
{
    return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq);
}

/* The smallest pending id of group; SX_ERR when it has none or Redis failed. */
static int group_min_pending(redisContext *ctx, const char *stream, const char *group, size_t glen,
                             struct stream_id *out)
{
    int rc = SX_ERR;
    redisReply *r = redisCommand(ctx, "XPENDING %s %b", stream, group, glen);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        sx_redis_warn(ctx, "XPENDING", r);
        goto cleanup;
    }
    if (r->element[1]->type == REDIS_REPLY_STRING)
        rc = parse_stream_id(r->element[1]->str, r->element[1]->len, out);
cleanup:
    if (r) freeReplyObject(r);
    return rc;
}

long long sx_redis_trim_consumed(redisContext *ctx, const char *stream)
{
    struct stream_id min = {UINT64_MAX, UINT64_MAX};
    int groups = 0, ok = 1;
    long long trimmed = SX_ERR;
    redisReply *r = redisCommand(ctx, "XINFO GROUPS %s", stream);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        sx_redis_warn(ctx, "XINFO GROUPS", r);
        goto cleanup;
    }
    for (size_t g = 0; g < r->elements && ok; g++) {
        const redisReply *info = r->element[g];
        const redisReply *name = NULL, *last = NULL;
        long long pending = -1;
        if (info->type != REDIS_REPLY_ARRAY) {
            ok = 0;
            break;
        }
        for (size_t i = 0; i + 1 < info->elements; i += 2) {
            const redisReply *k = info->element[i], *v = info->element[i + 1];
            if (k->type != REDIS_REPLY_STRING) continue;
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING) name = v;
            else if (strcmp(k->str, "last-delivered-id") == 0 && v->type == REDIS_REPLY_STRING) last = v;
            else if (strcmp(k->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER) pending = v->integer;
        }
        struct stream_id need;
        if (!name || !last || pending < 0 || parse_stream_id(last->str, last->len, &need) != SX_OK) {
            ok = 0;
            break;
        }
        if (pending > 0) {
            if (group_min_pending(ctx, stream, name->str, name->len, &need) != SX_OK) {
                ok = 0;
                break;
            }
        } else if (need.seq == UINT64_MAX) { /* the entry after the last delivered one */
            need.ms++;
            need.seq = 0;
        } else {
            need.seq++;
        }
        if (stream_id_less(need, min)) min = need;
        groups++;
    }
    if (!ok) goto cleanup;
    trimmed = 0;
    if (groups == 0 || (min.ms == 0 && min.seq == 0)) goto cleanup;
    freeReplyObject(r);
    char minid[48];
    snprintf(minid, sizeof(minid), "%" PRIu64 "-%" PRIu64, min.ms, min.seq);
    r = redisCommand(ctx, "XTRIM %s MINID %s", stream, minid);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        sx_redis_warn(ctx, "XTRIM", r);
        trimmed = SX_ERR;
    } else {
        trimmed = r->integer;
        if (trimmed > 0) sx_debug("trimmed %lld entries of %s below %s", trimmed, stream, minid);
    }
cleanup:
    if (r) freeReplyObject(r);
    return trimmed;
}
