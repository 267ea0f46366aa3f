/* keys.c: random secrets, SHA-256 and hex. */
#include "keys.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int sx_key_generate(const char *prefix, char *out, size_t outlen)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[33]; /* 32 random bytes, padded to a multiple of 3 */
    size_t got = 0;
    while (got < 32) {
        ssize_t n = getrandom(raw + got, 32 - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return SX_ERR;
        }
        got += (size_t)n;
    }
    raw[32] = 0;
    size_t plen = strlen(prefix);
    if (outlen < plen + 1 + 43 + 1) return SX_ERR;
    memcpy(out, prefix, plen);
    out[plen] = '_';
    char *o = out + plen + 1;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = ((uint32_t)raw[i] << 16) | ((uint32_t)raw[i + 1] << 8) | raw[i + 2];
        *o++ = b64url[(v >> 18) & 63];
        *o++ = b64url[(v >> 12) & 63];
        *o++ = b64url[(v >> 6) & 63];
        *o++ = b64url[v & 63];
    }
    /* 33 bytes give 44 characters; the last one only encodes padding. */
    out[plen + 1 + 43] = '\0';
    return SX_OK;
}

void sx_sha256(const void *s, size_t n, uint8_t out[SX_SHA256_LEN])
{
    unsigned int len = 0;
    if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != SX_SHA256_LEN) memset(out, 0, SX_SHA256_LEN);
}

void sx_hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sx_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n) return SX_ERR;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return SX_ERR;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return SX_OK;
}
