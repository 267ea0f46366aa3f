/* password.c: Argon2id password hashes through libsodium; see password.h. */
#include "password.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <string.h>

#define OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

_Static_assert(crypto_pwhash_STRBYTES <= SX_PASSWORD_HASH_MAX, "SX_PASSWORD_HASH_MAX too small");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc = SX_ERR;
static sem_t slots; /* SX_PASSWORD_CONCURRENCY hashes at once; process-wide */
static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char dummy_hash[SX_PASSWORD_HASH_MAX]; /* guarded by dummy_lock; "" until made */

static void init_once(void)
{
    if (sodium_init() < 0) return;
    if (sem_init(&slots, 0, SX_PASSWORD_CONCURRENCY) != 0) return;
    init_rc = SX_OK;
}

int sx_password_init(void)
{
    pthread_once(&once, init_once);
    return init_rc;
}

static void slot_take(void)
{
    while (sem_wait(&slots) != 0 && errno == EINTR) {
    }
}

static void slot_give(void)
{
    sem_post(&slots);
}

int sx_password_hash(const char *pw, size_t len, char out[SX_PASSWORD_HASH_MAX])
{
    if (sx_password_init() != SX_OK || len < SX_PASSWORD_MIN || len > SX_PASSWORD_MAX) return SX_ERR;
    slot_take();
    int rc = crypto_pwhash_str(out, pw, len, OPSLIMIT, MEMLIMIT);
    slot_give();
    return rc == 0 ? SX_OK : SX_ERR;
}

int sx_password_verify(const char *hash, const char *pw, size_t len)
{
    if (sx_password_init() != SX_OK || !hash || len > SX_PASSWORD_MAX) return SX_ERR;
    /* crypto_pwhash_str_verify reads up to STRBYTES of hash: a shorter
     * string from the database is copied into a full-size buffer first. */
    char buf[crypto_pwhash_STRBYTES];
    size_t n = strnlen(hash, sizeof(buf));
    if (n == sizeof(buf)) return SX_ERR;
    memset(buf, 0, sizeof(buf));
    memcpy(buf, hash, n);
    slot_take();
    int rc = crypto_pwhash_str_verify(buf, pw, len);
    slot_give();
    return rc == 0 ? SX_OK : SX_ERR;
}

int sx_password_verify_dummy(const char *pw, size_t len)
{
    char h[SX_PASSWORD_HASH_MAX];
    pthread_mutex_lock(&dummy_lock);
    if (!dummy_hash[0]) {
        char rnd[SX_PASSWORD_GEN_LEN + 1];
        sx_password_generate(rnd);
        if (sx_password_hash(rnd, strlen(rnd), dummy_hash) != SX_OK) dummy_hash[0] = '\0';
    }
    memcpy(h, dummy_hash, sizeof(h));
    pthread_mutex_unlock(&dummy_lock);
    if (h[0]) sx_password_verify(h, pw, len);
    return SX_ERR;
}

int sx_password_needs_rehash(const char *hash)
{
    if (sx_password_init() != SX_OK || !hash) return 1;
    char buf[crypto_pwhash_STRBYTES];
    size_t n = strnlen(hash, sizeof(buf));
    if (n == sizeof(buf)) return 1;
    memset(buf, 0, sizeof(buf));
    memcpy(buf, hash, n);
    return crypto_pwhash_str_needs_rehash(buf, OPSLIMIT, MEMLIMIT) != 0;
}

void sx_password_generate(char out[SX_PASSWORD_GEN_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (void)sx_password_init();
    for (int i = 0; i < SX_PASSWORD_GEN_LEN; i++) out[i] = alphabet[randombytes_uniform(64)];
    out[SX_PASSWORD_GEN_LEN] = '\0';
}
