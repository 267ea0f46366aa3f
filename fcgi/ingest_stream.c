/* ingest_stream.c: the guarded XADD of one batch to an ingest stream; see ingest_stream.h.
 *
 * The high-water check and the XADD run in one Lua script so that concurrent
 * ingest processes cannot all pass the check and overshoot together. The
 * script answers false (a nil reply) when the stream is full: ingest then
 * answers 503 with Retry-After and the SDK retries; unconsumed entries are
 * never trimmed. */
#include "ingest_stream.h"

#include "log.h"
#include "redis.h"
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char add_script[] =
    "if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end\n"
    "return redis.call('XADD', KEYS[1], '*', '" SX_FIELD_PROJECT "', ARGV[2], '" SX_FIELD_KEY "', ARGV[3], '"
    SX_FIELD_COUNT "', ARGV[4], '" SX_FIELD_TIME "', ARGV[5], '" SX_FIELD_BODY "', ARGV[6])\n";

void sx_ingest_script_reset(struct sx_ingest_script *s)
{
    s->loaded = 0;
    s->sha[0] = '\0';
}

/* SCRIPT LOAD once per connection; SX_ERR leaves the script unloaded (the
 * caller then sends EVAL). */
static int script_load(redisContext *rc, struct sx_ingest_script *s)
{
    redisReply *r = redisCommand(rc, "SCRIPT LOAD %s", add_script);
    int ok = SX_ERR;
    if (!r) return SX_ERR;
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof(s->sha)) {
        memcpy(s->sha, r->str, r->len);
        s->sha[r->len] = '\0';
        s->loaded = 1;
        ok = SX_OK;
    } else if (r->type == REDIS_REPLY_ERROR) {
        sx_warn("redisCommand(SCRIPT LOAD) failed: %s", r->str);
    }
    freeReplyObject(r);
    return ok;
}

int sx_ingest_stream_add(redisContext *rc, struct sx_ingest_script *s, const struct sx_config *c,
                         const struct sx_ingest_entry *e, char *id, size_t idlen, char *why, size_t whylen)
{
    char stream[160], hw[24], p[24], k[24], n[24], t[24];
    const char *argv[10];
    size_t argl[10];
    redisReply *r = NULL;
    int ret = SX_ERR;

    id[0] = '\0';
    why[0] = '\0';
    sx_redis_key(stream, sizeof(stream), c, e->stream ? e->stream : SX_STREAM_SPANS);
    snprintf(hw, sizeof(hw), "%lld", c->stream_high_water);
    snprintf(p, sizeof(p), "%lld", e->project_id);
    snprintf(k, sizeof(k), "%lld", e->key_id);
    snprintf(n, sizeof(n), "%zu", e->count);
    snprintf(t, sizeof(t), "%" PRId64, e->recv_ns);

    /* argv[0..1] are set per attempt: EVALSHA <sha> or EVAL <script>. */
    argv[2] = "1";
    argv[3] = stream;
    argv[4] = hw;
    argv[5] = p;
    argv[6] = k;
    argv[7] = n;
    argv[8] = t;
    for (int i = 2; i < 9; i++) argl[i] = strlen(argv[i]);
    argv[9] = (const char *)e->body;
    argl[9] = e->body_len;

    if (!s->loaded && !rc->err) script_load(rc, s);
    for (int attempt = 0; attempt < 2 && !rc->err; attempt++) {
        if (s->loaded) {
            argv[0] = "EVALSHA";
            argv[1] = s->sha;
            argl[1] = strlen(s->sha);
        } else {
            argv[0] = "EVAL";
            argv[1] = add_script;
            argl[1] = sizeof(add_script) - 1;
        }
        argl[0] = strlen(argv[0]);
        r = redisCommandArgv(rc, 10, argv, argl);
        if (!r || r->type != REDIS_REPLY_ERROR || !s->loaded || strncmp(r->str, "NOSCRIPT", 8) != 0) break;
        /* The script cache was flushed: send the script itself now and load
         * it again with the next batch. */
        sx_ingest_script_reset(s);
        freeReplyObject(r);
        r = NULL;
    }

    if (!r) {
        /* The context is dead: the caller rebuilds it, and the script is
         * loaded again on the new connection. */
        sx_warn("redisCommand(EVALSHA xadd) failed: %s", rc->err ? rc->errstr : "no reply");
        snprintf(why, whylen, "Redis is unavailable");
        sx_ingest_script_reset(s);
        goto out;
    }
    switch (r->type) {
    case REDIS_REPLY_NIL:
        snprintf(why, whylen, "ingest stream over its high-water mark");
        ret = SX_AGAIN;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        snprintf(id, idlen, "%.*s", (int)r->len, r->str);
        ret = SX_OK;
        break;
    case REDIS_REPLY_ERROR:
        sx_warn("redisCommand(EVALSHA xadd) failed: %s", r->str);
        snprintf(why, whylen, "Redis refused the batch");
        break;
    default:
        sx_warn("redisCommand(EVALSHA xadd) failed: unexpected reply type %d", r->type);
        snprintf(why, whylen, "Redis refused the batch");
        break;
    }
out:
    freeReplyObject(r);
    return ret;
}
