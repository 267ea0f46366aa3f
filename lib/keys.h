/* keys.h: secrets (ingest keys, access tokens): generation, hashing, hex. */
#ifndef SX_KEYS_H
#define SX_KEYS_H

#include "sx.h"

#define SX_KEY_MAX 80          /* longest secret we generate or accept */
#define SX_SHA256_LEN 32

/* Generates "<prefix>_" followed by 43 base64url characters (32 random bytes
 * from the OS) into out (at least SX_KEY_MAX bytes). SX_ERR if the OS has no
 * randomness. Prefixes: "sxk" ingest keys, "sxt" access tokens. */
int sx_key_generate(const char *prefix, char *out, size_t outlen);

/* SHA-256 of the n bytes at s into out[32]. */
void sx_sha256(const void *s, size_t n, uint8_t out[SX_SHA256_LEN]);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void sx_hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly 2n hex characters (either case) into out[n]; SX_ERR if any
 * character is not hex or the length differs. */
int sx_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);

#endif
