/* entry.c: stream entry helpers shared by the stream consumers (entry.h). */
#include "entry.h"

#include "log.h"
#include "redis.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const redisReply *sx_entry_field(const redisReply *fields, const char *name)
{
    size_t nl = strlen(name);
    if (!fields || fields->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == nl && memcmp(k->str, name, nl) == 0) {
            const redisReply *v = fields->element[i + 1];
            return v->type == REDIS_REPLY_STRING ? v : NULL;
        }
    }
    return NULL;
}

long long sx_entry_ll(const redisReply *f, long long lo, long long hi, long long dflt)
{
    char buf[24], *end;
    if (!f || f->type != REDIS_REPLY_STRING || f->len == 0 || f->len >= sizeof(buf)) return dflt;
    memcpy(buf, f->str, f->len);
    buf[f->len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    return errno || *end || v < lo || v > hi ? dflt : v;
}

void sx_entry_key(long long project, const void *body, size_t len, uint8_t out[SX_ENTRY_KEY_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char pfx[32];
    int n = snprintf(pfx, sizeof(pfx), "%lld\n", project);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, pfx, (size_t)n) != 1 ||
        EVP_DigestUpdate(ctx, body, len) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 ||
        mdlen < SX_ENTRY_KEY_LEN) {
        fprintf(stderr, "sha-256 of a stream entry failed\n");
        abort();
    }
    EVP_MD_CTX_free(ctx);
    memcpy(out, md, SX_ENTRY_KEY_LEN);
}

int sx_entry_dead_letter(redisContext *rc, const char *stream, const char *dead, const char *group, const char *id,
                         size_t idlen, const redisReply *fields, const char *why)
{
    size_t nf = fields && fields->type == REDIS_REPLY_ARRAY ? fields->elements & ~(size_t)1 : 0;
    size_t argc = 3 + nf + 2;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *argl = calloc(argc, sizeof(*argl));
    redisReply *r = NULL;
    int out = SX_ERR;

    sx_error("entry %.*s of %s: %s; moved to %s", (int)idlen, id, stream, why, dead);
    if (!argv || !argl || !rc || rc->err) goto done;
    argv[0] = "XADD";
    argv[1] = dead;
    argv[2] = "*";
    for (size_t i = 0; i < nf; i++) {
        const redisReply *f = fields->element[i];
        int str = f->type == REDIS_REPLY_STRING;
        argv[3 + i] = str ? f->str : "";
        argl[3 + i] = str ? f->len : 0;
    }
    argv[3 + nf] = "error";
    argv[4 + nf] = why;
    for (size_t i = 0; i < argc; i++)
        if (i < 3 || i >= 3 + nf) argl[i] = strlen(argv[i]);
    redisAppendCommand(rc, "MULTI");
    redisAppendCommandArgv(rc, (int)argc, argv, argl);
    redisAppendCommand(rc, "XACK %s %s %b", stream, group, id, idlen);
    redisAppendCommand(rc, "EXEC");
    for (int i = 0; i < 4; i++) {
        void *vr = NULL;
        if (redisGetReply(rc, &vr) != REDIS_OK) {
            sx_redis_warn(rc, "dead letter MULTI/EXEC", NULL);
            goto done;
        }
        r = vr;
        if (i == 3 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING)) {
            sx_redis_warn(rc, "dead letter EXEC", r);
            goto done;
        }
        if (i < 3 && r->type == REDIS_REPLY_ERROR) sx_redis_warn(rc, "dead letter MULTI/XADD/XACK", r);
        freeReplyObject(r);
        r = NULL;
    }
    out = SX_OK;
done:
    if (r) freeReplyObject(r);
    free(argv);
    free(argl);
    return out;
}
