/* sqlnorm.c: SQL statement normalization (literals to ?, comments out, whitespace collapsed, ? lists folded). */
#include "sqlnorm.h"

#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64 /* parentheses tracked for list folding; deeper ones are copied as they are */

enum last { LAST_NONE, LAST_OP, LAST_KEYWORD, LAST_VALUE };

struct norm {
    const unsigned char *in;
    size_t n, i;
    char *out;
    size_t cap, len;
    int full;
    int space;                  /* whitespace or a comment seen since the last token */
    enum last last;
    size_t open[MAX_DEPTH];     /* output positions of the open parentheses */
    size_t depth;
};

static int is_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int is_ident(unsigned char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned char at(const struct norm *s, size_t k)
{
    return s->i + k < s->n ? s->in[s->i + k] : 0;
}

static void put(struct norm *s, char c)
{
    if (s->len + 1 < s->cap) s->out[s->len++] = c;
    else s->full = 1;
}

/* Starts a token: the pending space first, except next to parentheses and
 * before commas. */
static void begin(struct norm *s, unsigned char first)
{
    if (s->space && s->len && s->out[s->len - 1] != '(' && first != ')' && first != ',') put(s, ' ');
    s->space = 0;
}

static void emit_value(struct norm *s)
{
    begin(s, '?');
    put(s, '?');
    s->last = LAST_VALUE;
}

/* Words after which a minus sign is a sign, not a subtraction. */
static int is_keyword(const unsigned char *w, size_t n)
{
    static const char *const kw[] = {"select", "where", "and",    "or",     "not",    "by",     "when",
                                     "then",   "else",  "in",     "between", "like",  "is",     "values",
                                     "set",    "limit", "offset", "return", "having", "case",   "on",
                                     "exists", "any",   "all",    "some",   "ilike",  "returning"};
    for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++)
        if (strlen(kw[k]) == n && strncasecmp((const char *)w, kw[k], n) == 0) return 1;
    return 0;
}

/* Skips a quoted run closed by q, where q doubled stands for itself and,
 * with backslash set, a backslash escapes the next byte. s->i is on the
 * opening quote. */
static void skip_quoted(struct norm *s, unsigned char q, int backslash)
{
    s->i++;
    while (s->i < s->n) {
        unsigned char c = s->in[s->i];
        if (backslash && c == '\\') {
            s->i += 2;
            continue;
        }
        s->i++;
        if (c == q) {
            if (s->i < s->n && s->in[s->i] == q) {
                s->i++;
                continue;
            }
            return;
        }
    }
    s->i = s->n;
}

/* Copies a quoted identifier ("..." or `...`) as it is. */
static void copy_quoted(struct norm *s, unsigned char q)
{
    size_t from = s->i;
    skip_quoted(s, q, 0);
    begin(s, q);
    for (size_t k = from; k < s->i && !s->full; k++) put(s, (char)s->in[k]);
    s->last = LAST_VALUE;
}

/* At a '$': a positional parameter ($1), a dollar-quoted string ($$...$$,
 * $tag$...$tag$) or a lone '$'. */
static void dollar(struct norm *s)
{
    if (is_digit(at(s, 1))) {
        s->i++;
        while (s->i < s->n && is_digit(s->in[s->i])) s->i++;
        emit_value(s);
        return;
    }
    size_t k = 1;
    if (is_ident_start(at(s, 1)) && at(s, 1) < 0x80)
        while (s->i + k < s->n && (is_ident(s->in[s->i + k]) && s->in[s->i + k] != '$' && s->in[s->i + k] < 0x80))
            k++;
    if (at(s, k) != '$') { /* not a tag: a lone '$' */
        begin(s, '$');
        put(s, '$');
        s->i++;
        s->last = LAST_OP;
        return;
    }
    size_t taglen = k + 1;
    const unsigned char *tag = s->in + s->i;
    s->i += taglen;
    for (;;) {
        if (s->i + taglen > s->n) {
            s->i = s->n;
            break;
        }
        if (s->in[s->i] == '$' && memcmp(s->in + s->i, tag, taglen) == 0) {
            s->i += taglen;
            break;
        }
        s->i++;
    }
    emit_value(s);
}

static void number(struct norm *s)
{
    if (at(s, 0) == '-') s->i++;
    if (at(s, 0) == '0' && (at(s, 1) == 'x' || at(s, 1) == 'X') && is_hex(at(s, 2))) {
        s->i += 2;
        while (s->i < s->n && is_hex(s->in[s->i])) s->i++;
    } else {
        while (s->i < s->n && is_digit(s->in[s->i])) s->i++;
        if (at(s, 0) == '.') {
            s->i++;
            while (s->i < s->n && is_digit(s->in[s->i])) s->i++;
        }
        if ((at(s, 0) == 'e' || at(s, 0) == 'E') &&
            (is_digit(at(s, 1)) || ((at(s, 1) == '+' || at(s, 1) == '-') && is_digit(at(s, 2))))) {
            s->i += 2;
            while (s->i < s->n && is_digit(s->in[s->i])) s->i++;
        }
    }
    while (s->i < s->n && is_ident(s->in[s->i])) s->i++; /* 1abc: one token */
    emit_value(s);
}

/* Whether out[from..to) holds only ?, commas and spaces, with one ? at least. */
static int only_marks(const char *o, size_t from, size_t to)
{
    int any = 0;
    for (size_t k = from; k < to; k++) {
        if (o[k] == '?') any = 1;
        else if (o[k] != ',' && o[k] != ' ') return 0;
    }
    return any;
}

/* A ')' was just written: folds (?, ?, ?) into (?) and a (?) that follows
 * "(?)," into the one before it. */
static void close_paren(struct norm *s)
{
    if (s->depth == 0 || s->depth > MAX_DEPTH || s->full) {
        if (s->depth) s->depth--;
        return;
    }
    size_t p = s->open[--s->depth];
    if (!only_marks(s->out, p + 1, s->len - 1)) return;
    s->len = p;
    put(s, '(');
    put(s, '?');
    put(s, ')');
    /* ... (?) , (?) : keep one */
    size_t q = p;
    while (q > 0 && s->out[q - 1] == ' ') q--;
    if (q == 0 || s->out[q - 1] != ',') return;
    q--;
    while (q > 0 && s->out[q - 1] == ' ') q--;
    if (q >= 3 && s->out[q - 1] == ')' && s->out[q - 2] == '?' && s->out[q - 3] == '(') s->len = q;
}

size_t sx_sqlnorm(const char *in, size_t n, char *out, size_t cap)
{
    struct norm st = {.in = (const unsigned char *)in, .n = n, .out = out, .cap = cap};
    struct norm *s = &st;
    if (cap == 0) return 0;
    while (s->i < s->n && !s->full) {
        unsigned char c = s->in[s->i], c1 = at(s, 1);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            s->space = 1;
            s->i++;
        } else if (c == '-' && c1 == '-') {
            while (s->i < s->n && s->in[s->i] != '\n') s->i++;
            s->space = 1;
        } else if (c == '/' && c1 == '*') {
            int nest = 0;
            while (s->i < s->n) {
                if (at(s, 0) == '/' && at(s, 1) == '*') nest++, s->i += 2;
                else if (at(s, 0) == '*' && at(s, 1) == '/') {
                    s->i += 2;
                    if (--nest == 0) break;
                } else s->i++;
            }
            s->space = 1;
        } else if (c == '\'') {
            skip_quoted(s, '\'', 0);
            emit_value(s);
        } else if ((c == 'e' || c == 'E') && c1 == '\'') {
            s->i++;
            skip_quoted(s, '\'', 1);
            emit_value(s);
        } else if ((c == 'n' || c == 'N' || c == 'b' || c == 'B' || c == 'x' || c == 'X') && c1 == '\'') {
            s->i++;
            skip_quoted(s, '\'', 0);
            emit_value(s);
        } else if ((c == 'u' || c == 'U') && c1 == '&' && at(s, 2) == '\'') {
            s->i += 2;
            skip_quoted(s, '\'', 0);
            emit_value(s);
        } else if (c == '"' || c == '`') {
            copy_quoted(s, c);
        } else if (c == '$') {
            dollar(s);
        } else if (is_digit(c) || (c == '.' && is_digit(c1))) {
            number(s);
        } else if (c == '-' && (is_digit(c1) || (c1 == '.' && is_digit(at(s, 2)))) && s->last != LAST_VALUE) {
            number(s);
        } else if (is_ident_start(c)) {
            size_t from = s->i;
            while (s->i < s->n && is_ident(s->in[s->i])) s->i++;
            begin(s, c);
            for (size_t k = from; k < s->i && !s->full; k++) put(s, (char)s->in[k]);
            s->last = is_keyword(s->in + from, s->i - from) ? LAST_KEYWORD : LAST_VALUE;
        } else {
            begin(s, c);
            put(s, (char)c);
            s->i++;
            if (c == '(') {
                if (s->depth < MAX_DEPTH) s->open[s->depth] = s->len - 1;
                s->depth++;
                s->last = LAST_OP;
            } else if (c == ')') {
                close_paren(s);
                s->last = LAST_VALUE;
            } else {
                s->last = c == '?' ? LAST_VALUE : LAST_OP;
            }
        }
    }
    if (s->full && s->len) { /* cut at a character boundary */
        size_t k = s->len;
        while (k > 0 && s->len - k < 4 && ((unsigned char)s->out[k - 1] & 0xC0) == 0x80) k--;
        if (k > 0 && (unsigned char)s->out[k - 1] >= 0xC0) {
            unsigned char lead = (unsigned char)s->out[k - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (s->len - (k - 1) < need) s->len = k - 1;
        }
    }
    while (s->len && s->out[s->len - 1] == ' ') s->len--;
    s->out[s->len] = '\0';
    return s->len;
}
