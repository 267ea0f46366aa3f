/* password.h: user passwords: Argon2id hashes (libsodium crypto_pwhash_str),
 * verification, rehash checks and generated passwords.
 *
 * Cost: opslimit 2 (crypto_pwhash_OPSLIMIT_INTERACTIVE) and memlimit 64 MiB
 * (crypto_pwhash_MEMLIMIT_INTERACTIVE), about 50-100 ms of one core here. A
 * process may run at most SX_PASSWORD_CONCURRENCY hashes at once (a counting
 * semaphore): sextant-api has api_threads threads, and a burst of logins
 * would otherwise need api_threads x 64 MiB; with the semaphore it needs at
 * most 2 x 64 MiB = 128 MiB, and further logins wait their turn. The stored
 * string carries its own parameters, so raising them later only needs
 * sx_password_needs_rehash on the next successful login. */
#ifndef SX_PASSWORD_H
#define SX_PASSWORD_H

#include "sx.h"

#define SX_PASSWORD_HASH_MAX 128   /* crypto_pwhash_STRBYTES */
#define SX_PASSWORD_MIN 8          /* shortest password accepted */
#define SX_PASSWORD_MAX 1024       /* longest password accepted (bytes) */
#define SX_PASSWORD_GEN_LEN 24     /* characters of a generated password */
#define SX_PASSWORD_CONCURRENCY 2  /* hashes running at once per process */

/* Initializes libsodium and the semaphore; call once before any other
 * function (further calls do nothing). SX_ERR when libsodium cannot start. */
int sx_password_init(void);

/* Hashes the len bytes of pw into out (SX_PASSWORD_HASH_MAX bytes, a
 * NUL-terminated "$argon2id$..." string). SX_ERR when len is outside
 * [SX_PASSWORD_MIN, SX_PASSWORD_MAX] or memory ran out. */
int sx_password_hash(const char *pw, size_t len, char out[SX_PASSWORD_HASH_MAX]);

/* SX_OK when pw matches the stored hash, SX_ERR otherwise (also for a
 * malformed hash or an over-long password). */
int sx_password_verify(const char *hash, const char *pw, size_t len);

/* Verifies pw against a fixed hash made at first use, so a login for an
 * unknown user costs as long as one for a known user. Always SX_ERR. */
int sx_password_verify_dummy(const char *pw, size_t len);

/* 1 when hash was made with other parameters than today's (rehash it on the
 * next successful login), 0 otherwise. */
int sx_password_needs_rehash(const char *hash);

/* Writes SX_PASSWORD_GEN_LEN characters of [A-Za-z0-9_-] chosen uniformly
 * by randombytes (144 bits) and a NUL into out (SX_PASSWORD_GEN_LEN + 1
 * bytes). Cannot fail after sx_password_init. */
void sx_password_generate(char out[SX_PASSWORD_GEN_LEN + 1]);

#endif
