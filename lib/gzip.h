/* gzip.h: bounded gunzip of request bodies (zlib). nginx never inflates
 * request bodies, and a 97 KB gzip can hold 100 MB: the cap is enforced here. */
#ifndef SX_GZIP_H
#define SX_GZIP_H

#include "arena.h"

enum sx_gzip_err {
    SX_GZIP_OK = 0,
    SX_GZIP_E_CORRUPT,  /* not gzip, or damaged: 400 */
    SX_GZIP_E_TOO_BIG,  /* inflates past max_out: 413 */
    SX_GZIP_E_NOMEM     /* arena cap: 413 */
};

/* Inflates a gzip (or zlib) stream of len bytes into arena memory, stopping
 * with SX_GZIP_E_TOO_BIG as soon as the output would pass max_out. Concatenated
 * gzip members are accepted. On success *out and *out_len are set. */
int sx_gunzip(const uint8_t *in, size_t len, size_t max_out, struct sx_arena *a, uint8_t **out, size_t *out_len);

#endif
