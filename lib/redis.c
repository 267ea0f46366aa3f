/* redis.c: hiredis connection helpers and key naming. */
#include "redis.h"

#include "log.h"

#include <stdio.h>
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
