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
#include "sx.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* KEYS: 1 stream, 2 usage hash, 3 bucket, 4 storage estimate.
 * ARGV: 1 high water, 2 project, 3 key, 4 count, 5 receive time, 6 body,
 * 7 signal, 8 rate/s (0 none), 9 capacity, 10 daily quota (-1 none),
 * 11 storage quota (-1 none), 12 usage ttl s, 13 sampled out, 14 dropped,
 * 15 redacted.
 * Answers: the entry id; "" when only counting; false (nil) when the stream
 * is full; {reason, value} when refused. The bucket is refilled from Redis
 * TIME so every ingest host shares one clock. A batch larger than the
 * bucket passes when the bucket is full (it would never pass otherwise) and
 * leaves it empty. */
static const char add_script[] =
    "local n = tonumber(ARGV[4])\n"
    "local sig = ARGV[7]\n"
    "local ttl = tonumber(ARGV[12])\n"
    "local function bump(field, by)\n"
    "  if by > 0 then redis.call('HINCRBY', KEYS[2], sig .. '.' .. field, by) end\n"
    "end\n"
    "local function counted()\n"
    "  bump('sampled_out', tonumber(ARGV[13])); bump('dropped', tonumber(ARGV[14]))\n"
    "  bump('redacted', tonumber(ARGV[15])); redis.call('EXPIRE', KEYS[2], ttl)\n"
    "end\n"
    "if n == 0 then counted(); return '' end\n"
    "local sq = tonumber(ARGV[11])\n"
    "if sq >= 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= sq then\n"
    "  bump('storage_exceeded', n); redis.call('EXPIRE', KEYS[2], ttl); return {'storage', 0}\n"
    "end\n"
    "local q = tonumber(ARGV[10])\n"
    "if q >= 0 then\n"
    "  local acc = tonumber(redis.call('HGET', KEYS[2], sig .. '.accepted') or '0')\n"
    "  if acc + n > q then bump('quota_exceeded', n); redis.call('EXPIRE', KEYS[2], ttl); return {'quota', acc} end\n"
    "end\n"
    "local rate = tonumber(ARGV[8])\n"
    "local tokens, now\n"
    "if rate > 0 then\n"
    "  local cap = tonumber(ARGV[9])\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  local b = redis.call('HMGET', KEYS[3], 't', 'ts')\n"
    "  tokens = tonumber(b[1])\n"
    "  if tokens == nil or tonumber(b[2]) == nil then tokens = cap\n"
    "  else tokens = math.min(cap, tokens + math.max(0, now - tonumber(b[2])) * rate / 1000) end\n"
    "  if n > tokens and tokens < cap then\n"
    "    bump('rate_limited', n); redis.call('EXPIRE', KEYS[2], ttl)\n"
    "    return {'rate', math.ceil((math.min(n, cap) - tokens) * 1000 / rate)}\n"
    "  end\n"
    "  tokens = math.max(0, tokens - n)\n"
    "end\n"
    "if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end\n"
    "local id = redis.call('XADD', KEYS[1], '*', '" SX_FIELD_PROJECT "', ARGV[2], '" SX_FIELD_KEY "', ARGV[3], '"
    SX_FIELD_COUNT "', ARGV[4], '" SX_FIELD_TIME "', ARGV[5], '" SX_FIELD_BODY "', ARGV[6])\n"
    "if rate > 0 then\n"
    "  redis.call('HSET', KEYS[3], 't', tostring(tokens), 'ts', tostring(now)); redis.call('PEXPIRE', KEYS[3], 60000)\n"
    "end\n"
    "bump('accepted', n); counted()\n"
    "return id\n";

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
                         const struct sx_ingest_entry *e, const struct sx_ingest_limits *lim,
                         struct sx_ingest_verdict *v, char *id, size_t idlen, char *why, size_t whylen)
{
    enum { NARGS = 3 + 4 + 15 };
    char stream[160], hw[24], p[24], k[24], n[24], t[24], rate[24], cap[24], quota[24], sq[24], ttl[24], so[24],
        dr[24], re[24];
    const char *argv[NARGS];
    size_t argl[NARGS];
    redisReply *r = NULL;
    int ret = SX_ERR;

    id[0] = '\0';
    why[0] = '\0';
    memset(v, 0, sizeof(*v));
    sx_redis_key(stream, sizeof(stream), c, e->stream ? e->stream : SX_STREAM_SPANS);
    snprintf(hw, sizeof(hw), "%lld", c->stream_high_water);
    snprintf(p, sizeof(p), "%lld", e->project_id);
    snprintf(k, sizeof(k), "%lld", e->key_id);
    snprintf(n, sizeof(n), "%zu", e->count);
    snprintf(t, sizeof(t), "%" PRId64, e->recv_ns);
    snprintf(rate, sizeof(rate), "%lld", lim->rate);
    snprintf(cap, sizeof(cap), "%lld", lim->capacity);
    snprintf(quota, sizeof(quota), "%lld", lim->quota);
    snprintf(sq, sizeof(sq), "%lld", lim->storage_quota);
    snprintf(ttl, sizeof(ttl), "%lld", lim->usage_ttl);
    snprintf(so, sizeof(so), "%lld", lim->sampled_out);
    snprintf(dr, sizeof(dr), "%lld", lim->dropped);
    snprintf(re, sizeof(re), "%lld", lim->redacted);

    /* argv[0..1] are set per attempt: EVALSHA <sha> or EVAL <script>. */
    const char *rest[] = {"4", stream, lim->usage_key, lim->bucket_key, lim->storage_key, hw, p, k, n, t,
                          NULL /* body */, lim->signal, rate, cap, quota, sq, ttl, so, dr, re};
    for (size_t i = 0; i < SX_ARRAY_LEN(rest); i++) {
        argv[2 + i] = rest[i];
        argl[2 + i] = rest[i] ? strlen(rest[i]) : 0;
    }
    argv[12] = e->body ? (const char *)e->body : "";
    argl[12] = e->body ? e->body_len : 0;
    int argc = 2 + (int)SX_ARRAY_LEN(rest);

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
        r = redisCommandArgv(rc, argc, argv, argl);
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
    case REDIS_REPLY_ARRAY:
        if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_INTEGER) {
            const char *why_s = r->element[0]->str;
            v->value = r->element[1]->integer;
            if (strcmp(why_s, "rate") == 0) v->refusal = SX_INGEST_REFUSE_RATE;
            else if (strcmp(why_s, "quota") == 0) v->refusal = SX_INGEST_REFUSE_QUOTA;
            else v->refusal = SX_INGEST_REFUSE_STORAGE;
            ret = SX_INGEST_REFUSED;
            break;
        }
        sx_warn("redisCommand(EVALSHA xadd) failed: unexpected array reply");
        snprintf(why, whylen, "Redis refused the batch");
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
