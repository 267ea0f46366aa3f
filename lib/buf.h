/* buf.h: growable byte buffer with a hard maximum (curl's dynbuf). */
#ifndef SX_BUF_H
#define SX_BUF_H

#include "sx.h"

struct sx_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* appends that would pass this fail with SX_ERR */
};

/* Embedded lifecycle: init sets an empty buffer that may grow to max bytes. */
void sx_buf_init(struct sx_buf *b, size_t max);
/* Frees the storage; the buffer may be init'ed again. */
void sx_buf_term(struct sx_buf *b);
/* Empties the buffer, keeping its storage. */
void sx_buf_reset(struct sx_buf *b);
/* Appends; SX_ERR when over max or out of memory (the buffer is unchanged). */
int sx_buf_append(struct sx_buf *b, const void *p, size_t n);
int sx_buf_puts(struct sx_buf *b, const char *s);
int sx_buf_putc(struct sx_buf *b, char c);
int sx_buf_printf(struct sx_buf *b, const char *fmt, ...) SX_PRINTF(2, 3);
/* Makes room for n more bytes; returns a pointer to write them or NULL.
 * Call sx_buf_commit(b, n) after writing. */
char *sx_buf_reserve(struct sx_buf *b, size_t n);
void sx_buf_commit(struct sx_buf *b, size_t n);

#endif
