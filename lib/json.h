/* json.h: streaming JSON writer into an sx_buf.
 *
 * Output is always valid UTF-8 JSON: invalid UTF-8 in strings becomes U+FFFD,
 * and NUL becomes U+FFFD too, because PostgreSQL jsonb rejects \u0000. The
 * writer inserts commas itself; a write error sticks in w->err. */
#ifndef SX_JSON_H
#define SX_JSON_H

#include "buf.h"

#include <stdbool.h>

#define SX_JSON_MAX_DEPTH 64

struct sx_json {
    struct sx_buf *b;
    int depth;
    int err;                                   /* SX_ERR once any append failed */
    unsigned char need_comma[SX_JSON_MAX_DEPTH + 1];
    unsigned char after_key;                   /* next value follows a key */
};

void sx_json_init(struct sx_json *w, struct sx_buf *b);
void sx_json_obj_open(struct sx_json *w);
void sx_json_obj_close(struct sx_json *w);
void sx_json_arr_open(struct sx_json *w);
void sx_json_arr_close(struct sx_json *w);
void sx_json_key(struct sx_json *w, const char *k);
void sx_json_str(struct sx_json *w, const char *s, size_t n);
void sx_json_strz(struct sx_json *w, const char *s); /* NULL writes null */
void sx_json_int(struct sx_json *w, int64_t v);
void sx_json_uint(struct sx_json *w, uint64_t v);
/* 64-bit integer as a JSON string ("123"), for *UnixNano fields. */
void sx_json_int_str(struct sx_json *w, int64_t v);
/* Non-finite doubles are written as null (JSON has no NaN). */
void sx_json_double(struct sx_json *w, double v);
void sx_json_bool(struct sx_json *w, bool v);
void sx_json_null(struct sx_json *w);
/* Inserts already-encoded JSON text as one value. */
void sx_json_raw(struct sx_json *w, const char *s, size_t n);
/* Lower-case hex string of n bytes. */
void sx_json_hex(struct sx_json *w, const uint8_t *p, size_t n);

/* Appends the escaped body of a JSON string (no quotes) to b; SX_ERR on
 * overflow. Used where JSON is embedded in other text (COPY). */
int sx_json_escape(struct sx_buf *b, const char *s, size_t n);

/* Length (1-4) of the well-formed UTF-8 sequence at s, n > 0 bytes being
 * left, or 0 when it is not one (overlong forms, surrogates, code points past
 * U+10FFFF and truncated sequences are not). The one UTF-8 checker of the
 * code base; cannot fail otherwise. */
size_t sx_utf8_seq_len(const unsigned char *s, size_t n);

#endif
