/* ingest_auth.h: ingest key resolution through the Redis key cache and PostgreSQL. */
#ifndef SX_INGEST_AUTH_H
#define SX_INGEST_AUTH_H

#include "config.h"
#include "ingest_http.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

/* Resolves the ingest key (len bytes at key) to its project, key id and
 * state. Looks up "<prefix>:key:<sha256 hex>" in Redis; on a miss queries
 * PostgreSQL through *pg (opened lazily, reopened when broken; owned by the
 * caller's thread, closed with PQfinish) and caches the answer for
 * key_cache_ttl seconds (key_negative_ttl for unknown keys).
 * Returns SX_OK with *out set (out->state may be SX_INGEST_KEY_NONE), or
 * SX_ERR when Redis or PostgreSQL could not answer (503), with a short
 * reason in why. rc must be a live context; it may be dead afterwards. */
int sx_ingest_key_lookup(redisContext *rc, PGconn **pg, const struct sx_config *c, const char *key, size_t len,
                         struct sx_ingest_key *out, const char *reqid, char *why, size_t whylen);

/* Opens *pg (the thread's key and settings connection) when absent or
 * broken, with short connect and statement timeouts. SX_ERR (logged) when
 * PostgreSQL cannot be reached. */
int sx_ingest_pg_open(PGconn **pg, const struct sx_config *c, const char *reqid);

/* Copies msg into buf as one line (libpq messages end with newlines). */
const char *sx_ingest_one_line(const char *msg, char *buf, size_t len);

#endif
