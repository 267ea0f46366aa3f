/* json.c: streaming JSON writer; see json.h. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct sx_json *w, const char *s, size_t n)
{
    if (sx_buf_append(w->b, s, n) != SX_OK) w->err = SX_ERR;
}

/* Writes the comma before a value when one is due. */
static void before_value(struct sx_json *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->need_comma[w->depth]) put(w, ",", 1);
    w->need_comma[w->depth] = 1;
}

void sx_json_init(struct sx_json *w, struct sx_buf *b)
{
    memset(w, 0, sizeof(*w));
    w->b = b;
}

static void open_(struct sx_json *w, char c)
{
    before_value(w);
    put(w, &c, 1);
    if (w->depth >= SX_JSON_MAX_DEPTH) {
        w->err = SX_ERR;
        return;
    }
    w->depth++;
    w->need_comma[w->depth] = 0;
}

static void close_(struct sx_json *w, char c)
{
    put(w, &c, 1);
    if (w->depth > 0) w->depth--;
}

void sx_json_obj_open(struct sx_json *w) { open_(w, '{'); }
void sx_json_obj_close(struct sx_json *w) { close_(w, '}'); }
void sx_json_arr_open(struct sx_json *w) { open_(w, '['); }
void sx_json_arr_close(struct sx_json *w) { close_(w, ']'); }

size_t sx_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int sx_json_escape(struct sx_buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* run: start of bytes to copy verbatim */
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t l = 1;
        if (c >= 0x80) {
            l = sx_utf8_seq_len(s + i, n - i);
            if (l) {
                i += l;
                continue;
            }
            esc = "\xEF\xBF\xBD"; /* U+FFFD for invalid UTF-8 */
            l = 1;
        } else if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == 0) esc = "\\ufffd";
        else if (c < 0x20) {
            ubuf[0] = '\\'; ubuf[1] = 'u'; ubuf[2] = '0'; ubuf[3] = '0';
            ubuf[4] = hex[c >> 4]; ubuf[5] = hex[c & 15]; ubuf[6] = 0;
            esc = ubuf;
        } else {
            i++;
            continue;
        }
        if (i > run && sx_buf_append(b, s + run, i - run) != SX_OK) return SX_ERR;
        if (sx_buf_puts(b, esc) != SX_OK) return SX_ERR;
        i += l;
        run = i;
    }
    if (i > run && sx_buf_append(b, s + run, i - run) != SX_OK) return SX_ERR;
    return SX_OK;
}

static void put_string(struct sx_json *w, const char *s, size_t n)
{
    put(w, "\"", 1);
    if (sx_json_escape(w->b, s, n) != SX_OK) w->err = SX_ERR;
    put(w, "\"", 1);
}

void sx_json_key(struct sx_json *w, const char *k)
{
    before_value(w);
    put_string(w, k, strlen(k));
    put(w, ":", 1);
    w->after_key = 1;
}

void sx_json_str(struct sx_json *w, const char *s, size_t n)
{
    before_value(w);
    put_string(w, s ? s : "", s ? n : 0);
}

void sx_json_strz(struct sx_json *w, const char *s)
{
    if (!s) {
        sx_json_null(w);
        return;
    }
    sx_json_str(w, s, strlen(s));
}

void sx_json_int(struct sx_json *w, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    before_value(w);
    put(w, tmp, (size_t)n);
}

void sx_json_uint(struct sx_json *w, uint64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    before_value(w);
    put(w, tmp, (size_t)n);
}

void sx_json_int_str(struct sx_json *w, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "\"%lld\"", (long long)v);
    before_value(w);
    put(w, tmp, (size_t)n);
}

void sx_json_double(struct sx_json *w, double v)
{
    if (!isfinite(v)) {
        sx_json_null(w);
        return;
    }
    char tmp[40];
    int n;
    if (v == (double)(int64_t)v && fabs(v) < 1e15)
        n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    else {
        /* Shortest of 15 or 17 digits that reads back to the same double. */
        n = snprintf(tmp, sizeof(tmp), "%.15g", v);
        if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof(tmp), "%.17g", v);
    }
    before_value(w);
    put(w, tmp, (size_t)n);
}

void sx_json_bool(struct sx_json *w, bool v)
{
    before_value(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void sx_json_null(struct sx_json *w)
{
    before_value(w);
    put(w, "null", 4);
}

void sx_json_raw(struct sx_json *w, const char *s, size_t n)
{
    before_value(w);
    put(w, s, n);
}

void sx_json_hex(struct sx_json *w, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    before_value(w);
    put(w, "\"", 1);
    char *dst = sx_buf_reserve(w->b, n * 2);
    if (!dst) {
        w->err = SX_ERR;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = hex[p[i] >> 4];
        dst[2 * i + 1] = hex[p[i] & 15];
    }
    sx_buf_commit(w->b, n * 2);
    put(w, "\"", 1);
}
