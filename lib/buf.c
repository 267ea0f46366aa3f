/* buf.c: bounded growable buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sx_buf_init(struct sx_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sx_buf_term(struct sx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void sx_buf_reset(struct sx_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

char *sx_buf_reserve(struct sx_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n) return NULL;
    size_t need = b->len + n + 1; /* room for the NUL */
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > b->max + 1) cap = b->max + 1;
        char *p = realloc(b->data, cap);
        if (!p) return NULL;
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->len;
}

void sx_buf_commit(struct sx_buf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
}

int sx_buf_append(struct sx_buf *b, const void *p, size_t n)
{
    char *dst = sx_buf_reserve(b, n);
    if (!dst) return SX_ERR;
    if (n) memcpy(dst, p, n);
    sx_buf_commit(b, n);
    return SX_OK;
}

int sx_buf_puts(struct sx_buf *b, const char *s)
{
    return sx_buf_append(b, s, strlen(s));
}

int sx_buf_putc(struct sx_buf *b, char c)
{
    return sx_buf_append(b, &c, 1);
}

int sx_buf_printf(struct sx_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return SX_ERR;
    if ((size_t)n < sizeof(small)) return sx_buf_append(b, small, (size_t)n);
    char *dst = sx_buf_reserve(b, (size_t)n);
    if (!dst) return SX_ERR;
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sx_buf_commit(b, (size_t)n);
    return SX_OK;
}
