/* gzip.c: bounded gunzip of request bodies into arena memory (zlib).
 *
 * The output buffer lives in the arena and grows geometrically, capped at
 * max_out + 1 bytes: the one extra byte is how a stream that would pass
 * max_out is told apart from one that ends exactly there, so a gzip bomb
 * stops after inflating max_out + 1 bytes, never the whole of it. Growing
 * copies when the arena cannot extend in place, so a body that does not
 * declare its size (ISIZE) may need up to 2 x max_out of arena. zlib's own
 * state (about 40 KB, not sized by input) uses malloc and is freed on every
 * path by inflateEnd. */
#include "gzip.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

#define GZ_MIN_OUT 4096

/* Most deflate can expand: 258 bytes per 2 bits, about 1032:1. */
#define GZ_MAX_RATIO 1032

/* First guess of the output size. A single gzip member ends with ISIZE, its
 * length mod 2^32: when it is plausible for the input size, the buffer is
 * sized once (+1 byte to see the end). Otherwise (zlib streams, several
 * members, a lying trailer) guess 8x, as JSON and protobuf bodies compress
 * 5-10x, and grow geometrically from there. */
static size_t first_cap(const uint8_t *in, size_t in_len, size_t limit)
{
    size_t cap = in_len > SIZE_MAX / 8 ? SIZE_MAX : in_len * 8;
    if (in_len >= 18 && in[0] == 0x1f && in[1] == 0x8b) {
        const uint8_t *t = in + in_len - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        if (isize / GZ_MAX_RATIO <= in_len && isize < SIZE_MAX) cap = isize + 1;
    }
    if (cap < GZ_MIN_OUT) cap = GZ_MIN_OUT;
    return cap < limit ? cap : limit;
}

int sx_gunzip(const uint8_t *in, size_t len, size_t max_out, struct sx_arena *a, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    int rc = SX_GZIP_E_CORRUPT;
    size_t limit = max_out == SIZE_MAX ? SIZE_MAX : max_out + 1; /* room to notice an overflow */
    size_t cap, used = 0;
    uint8_t *buf;

    *out = NULL;
    *out_len = 0;
    if (!in || len == 0) return SX_GZIP_E_CORRUPT;

    cap = first_cap(in, len, limit);
    buf = sx_arena_alloc(a, cap);
    if (!buf) return SX_GZIP_E_NOMEM;

    memset(&zs, 0, sizeof(zs));
    /* 32 + MAX_WBITS: accept gzip or zlib headers, detected per member. */
    if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) return SX_GZIP_E_NOMEM;

    const uint8_t *next_in = in;
    size_t left_in = len;
    for (;;) {
        if (used == cap) {
            if (cap == limit) { /* produced max_out + 1 bytes: over the limit */
                rc = SX_GZIP_E_TOO_BIG;
                goto done;
            }
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            uint8_t *nb = sx_arena_realloc(a, buf, used, ncap);
            if (!nb) {
                rc = SX_GZIP_E_NOMEM;
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        /* zlib counts in uInt: feed and drain in slices of at most UINT_MAX. */
        zs.next_in = (Bytef *)(uintptr_t)next_in;
        zs.avail_in = left_in > UINT_MAX ? UINT_MAX : (uInt)left_in;
        zs.next_out = buf + used;
        zs.avail_out = cap - used > UINT_MAX ? UINT_MAX : (uInt)(cap - used);
        uInt in_before = zs.avail_in, out_before = zs.avail_out;

        int zr = inflate(&zs, Z_NO_FLUSH);

        size_t consumed = in_before - zs.avail_in;
        next_in += consumed;
        left_in -= consumed;
        used += out_before - zs.avail_out;

        if (zr == Z_STREAM_END) {
            if (left_in == 0) break;
            /* Another member follows (concatenated gzip): it must be valid too. */
            if (inflateReset(&zs) != Z_OK) goto done;
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            rc = SX_GZIP_E_NOMEM;
            goto done;
        }
        if (zr == Z_OK) continue;
        if (zr == Z_BUF_ERROR) {
            /* No progress possible: either the output is full (grow above)
             * or the input ended before the stream did (truncated). */
            if (used == cap) continue;
            goto done;
        }
        goto done; /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR: damaged */
    }
    if (used > max_out) {
        rc = SX_GZIP_E_TOO_BIG;
        goto done;
    }
    *out = buf;
    *out_len = used;
    rc = SX_GZIP_OK;
done:
    inflateEnd(&zs);
    return rc;
}
