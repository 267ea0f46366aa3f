/* redis.h: hiredis connection helpers and key naming. One context per thread:
 * hiredis contexts are not thread-safe. A context with err set is dead: free
 * it and reconnect (sx_redis_ensure does that). */
#ifndef SX_REDIS_H
#define SX_REDIS_H

#include "config.h"

#include <hiredis/hiredis.h>

/* Connects per config (unix socket, else host:port) with the given connect
 * and command timeouts in ms (0: no command timeout, for XREADGROUP BLOCK
 * callers that set their own). Returns a context or NULL with a message in
 * err. Caller frees with redisFree. */
redisContext *sx_redis_connect(const struct sx_config *c, int connect_timeout_ms, int command_timeout_ms, char *err,
                               size_t errlen);

/* Makes *ctx usable: reconnects when NULL or dead. Returns SX_OK or SX_ERR
 * (Redis unreachable; *ctx is NULL then). */
int sx_redis_ensure(redisContext **ctx, const struct sx_config *c, int connect_timeout_ms, int command_timeout_ms);

/* Writes "<prefix>:<suffix>" into out; returns out. */
char *sx_redis_key(char *out, size_t outlen, const struct sx_config *c, const char *suffix);

/* Writes a project-scoped key "<prefix>:{p<id>}:<suffix>": the hash tag keeps
 * one project's keys on one Redis Cluster slot later. Returns out. */
char *sx_redis_pkey(char *out, size_t outlen, const struct sx_config *c, long long project_id, const char *suffix);

/* Creates group on stream (MKSTREAM) starting at "0"; BUSYGROUP is success. */
int sx_redis_group_create(redisContext *ctx, const char *stream, const char *group);

/* Logs a failed command named what: the context's error (r NULL), an error
 * reply, or an unexpected reply type. */
void sx_redis_warn(const redisContext *ctx, const char *what, const redisReply *r);

/* Trims stream (XTRIM MINID) below the oldest entry any of its consumer
 * groups still needs: a group's smallest pending id or, with nothing
 * pending, the entry after its last delivered one. Entries that no group has
 * read are never trimmed, and a stream without groups is left alone, so a
 * consumer added later (another group) never loses entries. Returns how many
 * entries were trimmed, or SX_ERR (logged) when Redis failed. */
long long sx_redis_trim_consumed(redisContext *ctx, const char *stream);

#endif
