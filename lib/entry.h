/* entry.h: what every consumer of the ingest streams does with an entry
 * (sextant-persist, sextant-rollup's metrics loop and span thread): read its
 * fields, compute its ledger key, and dead-letter it when it cannot be used.
 * See lib/stream.h for the fields. */
#ifndef SX_ENTRY_H
#define SX_ENTRY_H

#include "sx.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a ledger key (persist_ledger.entry_hash). */
#define SX_ENTRY_KEY_LEN 16

/* The string value of field name in a flat field/value array (an entry's
 * fields as XREADGROUP returns them), or NULL when absent or not a string. */
const redisReply *sx_entry_field(const redisReply *fields, const char *name);

/* A decimal field's value when it lies in [lo, hi], else dflt (also when f
 * is NULL, empty, too long or not all digits). */
long long sx_entry_ll(const redisReply *f, long long lo, long long hi, long long dflt);

/* The entry's ledger key: SHA-256 of "<project>\n" and the packed body, cut
 * to SX_ENTRY_KEY_LEN bytes. The same batch added to the stream again gets
 * the same key (receive time and key id are left out). Aborts when OpenSSL
 * cannot hash (out of memory). */
void sx_entry_key(long long project, const void *body, size_t len, uint8_t out[SX_ENTRY_KEY_LEN]);

/* Moves entry id of stream to the dead-letter stream dead: one MULTI/EXEC
 * that XADDs its fields (every one, NULL fields: none) plus "error" = why,
 * and XACKs it for group. Logs why. SX_OK once EXEC answered. */
int sx_entry_dead_letter(redisContext *rc, const char *stream, const char *dead, const char *group, const char *id,
                         size_t idlen, const redisReply *fields, const char *why);

#endif
