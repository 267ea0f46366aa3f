/* stacktrace.c: stack trace text to frames (V8/Firefox, Python, JVM, Go, Ruby, .NET); see stacktrace.h.
 *
 * Design: one pass over the lines per language. Frames are first kept as slices of the
 * input in a fixed scratch array (SX_ST_MAX_FRAMES, a ring for Python, whose crashing
 * frame comes last), and copied into the arena, oldest first, when their exception is
 * complete; so dropped frames cost no arena memory and nothing grows with the input but
 * the result. */
#include "stacktrace.h"

#include <string.h>

#define MAX_EXC (1 + SX_ST_MAX_CAUSES)

struct slice {
    const char *p;
    size_t n;
};

struct sframe {
    struct slice fn, mod, file;
    int line, col;
};

struct exc {
    struct slice type, msg, msg2; /* msg2: more message lines, joined with '\n' */
    struct sx_st_frame *frames;
    size_t n, omitted;
    int done; /* frames copied to the arena */
};

struct parser {
    const char *text;
    size_t n, pos;
    enum sx_st_lang lang;
    const struct sx_st_rules *rules;
    struct sx_arena *a;
    struct sframe buf[SX_ST_MAX_FRAMES];
    size_t nbuf, head; /* head: oldest entry once the ring wrapped */
    int wrapped;
    struct exc ex[MAX_EXC];
    size_t nex;
    int truncated, err;
};

/* ---- small helpers ---------------------------------------------------------- */

static struct slice sl(const char *p, size_t n)
{
    struct slice s = {p, n};
    return s;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct slice trim(struct slice s)
{
    while (s.n && is_space((unsigned char)s.p[0])) s.p++, s.n--;
    while (s.n && is_space((unsigned char)s.p[s.n - 1])) s.n--;
    return s;
}

static size_t indent(struct slice s)
{
    size_t k = 0;
    while (k < s.n && is_space((unsigned char)s.p[k])) k++;
    return k;
}

static int starts(struct slice s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n >= l && memcmp(s.p, lit, l) == 0;
}

static int ends(struct slice s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n >= l && memcmp(s.p + s.n - l, lit, l) == 0;
}

static int eq(struct slice s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static struct slice skip(struct slice s, size_t k)
{
    return k >= s.n ? sl(s.p + s.n, 0) : sl(s.p + k, s.n - k);
}

/* Index of the first occurrence of lit in s at or after from, or -1. */
static long find(struct slice s, const char *lit, size_t from)
{
    size_t l = strlen(lit);
    if (l == 0 || s.n < l) return -1;
    for (size_t i = from; i + l <= s.n; i++)
        if (s.p[i] == lit[0] && memcmp(s.p + i, lit, l) == 0) return (long)i;
    return -1;
}

static long rfind_char(struct slice s, char c)
{
    for (size_t i = s.n; i > 0; i--)
        if (s.p[i - 1] == c) return (long)(i - 1);
    return -1;
}

static long find_char(struct slice s, char c, size_t from)
{
    for (size_t i = from; i < s.n; i++)
        if (s.p[i] == c) return (long)i;
    return -1;
}

static int contains(const char *s, const char *lit)
{
    return s && strstr(s, lit) != NULL;
}

static int prefix(const char *s, const char *lit)
{
    return s && strncmp(s, lit, strlen(lit)) == 0;
}

/* Parses all-digit s as a line/column number; -1 when s is empty or not digits. Values
 * are capped at 999999999. */
static int number(struct slice s)
{
    if (s.n == 0) return -1;
    long v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (!is_digit((unsigned char)s.p[i])) return -1;
        if (v < 100000000) v = v * 10 + (s.p[i] - '0');
        else v = 999999999;
    }
    return (int)v;
}

/* Next line of the input (without \n or \r\n); 0 at the end. */
static int next_line(struct parser *p, struct slice *line)
{
    if (p->pos >= p->n) return 0;
    const char *s = p->text + p->pos;
    const char *nl = memchr(s, '\n', p->n - p->pos);
    size_t len = nl ? (size_t)(nl - s) : p->n - p->pos;
    p->pos += len + (nl ? 1 : 0);
    if (len && s[len - 1] == '\r') len--;
    *line = sl(s, len);
    return 1;
}

/* Matching '(' of the ')' at s.p[s.n - 1], or -1. */
static long open_paren(struct slice s)
{
    int depth = 0;
    for (size_t i = s.n; i > 0; i--) {
        char c = s.p[i - 1];
        if (c == ')') depth++;
        else if (c == '(' && --depth == 0) return (long)(i - 1);
    }
    return -1;
}

/* Type-looking: a non-empty run of identifier bytes, '.', '$', '`', '+', ':' (Ruby ::). */
static int type_like(struct slice s)
{
    if (s.n == 0 || s.n > 512) return 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '.' ||
              c == '$' || c == '`' || c == '+' || c == ':' || c >= 0x80))
            return 0;
    }
    return !is_digit((unsigned char)s.p[0]) && s.p[0] != '.';
}

/* Splits `Type: message` (message may continue over more lines) into type and message;
 * text that does not start with a type is all message. Node's `Error [ERR_X]: msg` gives
 * type Error. */
static void split_header(struct slice h, struct slice *type, struct slice *msg)
{
    h = trim(h);
    *type = sl(h.p, 0);
    *msg = h;
    const char *nl = memchr(h.p, '\n', h.n);
    struct slice first = sl(h.p, nl ? (size_t)(nl - h.p) : h.n);
    while (first.n && (first.p[first.n - 1] == '\r' || is_space((unsigned char)first.p[first.n - 1]))) first.n--;
    long c = find(first, ": ", 0);
    size_t tn = c >= 0 ? (size_t)c : (ends(first, ":") ? first.n - 1 : first.n);
    struct slice t = sl(first.p, tn);
    if (t.n > 3 && t.p[t.n - 1] == ']') { /* Error [ERR_X] */
        long b = find(t, " [", 0);
        if (b > 0) t.n = (size_t)b;
    }
    if (!type_like(t)) return;
    *type = t;
    *msg = c >= 0 ? trim(skip(h, (size_t)c + 2)) : trim(skip(h, tn + (tn < first.n ? 1 : 0)));
}

/* ---- frames ------------------------------------------------------------------- */

static void add_frame(struct parser *p, const struct sframe *f, int keep_last)
{
    if (p->nbuf < SX_ST_MAX_FRAMES) {
        p->buf[p->nbuf++] = *f;
        return;
    }
    p->truncated = 1;
    if (!keep_last) return;
    p->buf[p->head] = *f;
    p->head = (p->head + 1) % SX_ST_MAX_FRAMES;
    p->wrapped = 1;
}

static const char *dup(struct parser *p, struct slice s)
{
    if (s.n == 0) return NULL;
    char *d = sx_arena_strndup(p->a, s.p, s.n);
    if (!d) p->err = 1;
    return d;
}

/* Length of the longest prefix of d[0..k) that does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *d, size_t k)
{
    size_t i = k, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)d[i - 1] & 0xC0) == 0x80) i--, back++;
    if (i == 0) return k;
    unsigned char lead = (unsigned char)d[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > back + 1 ? i - 1 : k;
}

/* Copies at most max bytes of s (and s2 after a '\n'), cut at a UTF-8 boundary,
 * without '\r'; "" when empty. */
static const char *dup_text(struct parser *p, struct slice s, struct slice s2, size_t max)
{
    size_t want = s.n + (s2.n ? 1 + s2.n : 0), n = want > max ? max : want;
    char *d = sx_arena_alloc(p->a, n + 1);
    if (!d) {
        p->err = 1;
        return "";
    }
    size_t k = 0;
    for (size_t i = 0; i < s.n && k < n; i++)
        if (s.p[i] != '\r') d[k++] = s.p[i];
    if (s2.n && k < n) d[k++] = '\n';
    for (size_t i = 0; i < s2.n && k < n; i++)
        if (s2.p[i] != '\r') d[k++] = s2.p[i];
    if (want > max) k = utf8_cut(d, k);
    d[k] = '\0';
    return d;
}

/* Moves the scratch frames into e, oldest first: reversed when the language prints the
 * crashing frame first, unrolled from the ring otherwise. */
static void finish_frames(struct parser *p, struct exc *e, int crash_first)
{
    size_t n = p->nbuf;
    if (e->done || n == 0) {
        p->nbuf = p->head = 0;
        p->wrapped = 0;
        return;
    }
    struct sx_st_frame *fr = sx_arena_calloc(p->a, n, sizeof(*fr));
    if (!fr) {
        p->err = 1;
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sframe *s = crash_first ? &p->buf[n - 1 - i] : &p->buf[(p->head + i) % SX_ST_MAX_FRAMES];
        fr[i].function = dup(p, s->fn);
        fr[i].module = dup(p, s->mod);
        fr[i].file = dup(p, s->file);
        fr[i].line = s->line;
        fr[i].column = s->col;
        fr[i].in_app = sx_st_in_app(p->lang, &fr[i], p->rules);
    }
    e->frames = fr;
    e->n = n;
    e->done = 1;
    p->nbuf = p->head = 0;
    p->wrapped = 0;
}

static struct exc *new_exc(struct parser *p)
{
    if (p->nex == MAX_EXC) {
        p->truncated = 1;
        return NULL;
    }
    struct exc *e = &p->ex[p->nex++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* "file:line:col", "file:line", "file", or a place without a file. Returns whether a
 * line number was found. */
static int parse_loc(struct slice loc, struct sframe *f)
{
    loc = trim(loc);
    f->file = loc;
    f->line = f->col = 0;
    if (eq(loc, "<anonymous>") || eq(loc, "native") || eq(loc, "[native code]") || starts(loc, "index ")) {
        f->file.n = 0;
        return 0;
    }
    long c2 = rfind_char(loc, ':');
    if (c2 <= 0) return 0;
    int v2 = number(skip(loc, (size_t)c2 + 1));
    if (v2 < 0) return 0;
    struct slice rest = sl(loc.p, (size_t)c2);
    long c1 = rfind_char(rest, ':');
    int v1 = c1 > 0 ? number(skip(rest, (size_t)c1 + 1)) : -1;
    if (v1 >= 0) {
        f->file = sl(loc.p, (size_t)c1);
        f->line = v1;
        f->col = v2;
    } else {
        f->file = rest;
        f->line = v2;
    }
    return 1;
}

/* ---- JavaScript ---------------------------------------------------------------- */

/* `at fn (loc)` or `at loc`, after trimming. */
static int js_v8_frame(struct slice t, struct sframe *f)
{
    if (!starts(t, "at ")) return 0;
    struct slice s = trim(skip(t, 3));
    memset(f, 0, sizeof(*f));
    if (s.n && s.p[s.n - 1] == ')') {
        long k = open_paren(s);
        if (k > 0 && s.p[k - 1] == ' ') {
            f->fn = trim(sl(s.p, (size_t)k));
            struct slice loc = sl(s.p + k + 1, s.n - (size_t)k - 2);
            if (starts(loc, "eval at ")) { /* eval at g (file:1:2), <anonymous>:1:1: keep file:1:2 */
                long close = find_char(loc, ')', 0);
                struct slice before = sl(loc.p, close > 0 ? (size_t)close : 0);
                long open = rfind_char(before, '(');
                if (open >= 0) loc = sl(before.p + open + 1, before.n - (size_t)open - 1);
                else loc = sl(loc.p, 0);
            }
            parse_loc(loc, f);
            return f->fn.n > 0;
        }
        if (k > 0) return 0; /* fn(x) without a space: a JVM or .NET frame */
    }
    if (!parse_loc(s, f) || f->file.n == 0) return 0;
    for (size_t i = 0; i < f->file.n; i++)
        if (f->file.p[i] == ' ' || f->file.p[i] == '(') return 0;
    return 1;
}

/* Firefox/Safari `fn@loc`. */
static int js_ff_frame(struct slice t, struct sframe *f)
{
    long at = find_char(t, '@', 0);
    if (at < 0) return 0;
    memset(f, 0, sizeof(*f));
    f->fn = sl(t.p, (size_t)at);
    if (find(f->fn, ": ", 0) >= 0 || find(f->fn, "  ", 0) >= 0) return 0;
    struct slice loc = skip(t, (size_t)at + 1);
    if (eq(loc, "[native code]")) {
        f->file.n = 0;
        return 1;
    }
    if (!parse_loc(loc, f) || f->file.n == 0) return 0;
    for (size_t i = 0; i < f->file.n; i++)
        if (f->file.p[i] == ' ') return 0;
    return 1;
}

static void parse_js(struct parser *p)
{
    struct exc *e = new_exc(p);
    struct slice line;
    const char *hstart = NULL, *hend = NULL;
    int frames = 0;
    while (next_line(p, &line)) {
        struct slice t = trim(line);
        struct sframe f;
        if (line.n <= SX_ST_MAX_LINE && (js_v8_frame(t, &f) || js_ff_frame(t, &f))) {
            frames = 1;
            add_frame(p, &f, 0);
            continue;
        }
        if (!frames && t.n) {
            if (!hstart) hstart = line.p;
            hend = line.p + line.n;
        }
    }
    if (hstart) {
        struct slice h = sl(hstart, (size_t)(hend - hstart));
        if (starts(h, "Uncaught ")) h = skip(h, 9);
        split_header(h, &e->type, &e->msg);
    }
    finish_frames(p, e, 1);
}

/* ---- Python -------------------------------------------------------------------- */

/* `File "path", line N, in fn` after trimming. */
static int py_frame(struct slice t, struct sframe *f)
{
    if (!starts(t, "File \"")) return 0;
    struct slice s = skip(t, 6);
    long q = find(s, "\", line ", 0);
    if (q < 0) return 0;
    memset(f, 0, sizeof(*f));
    f->file = sl(s.p, (size_t)q);
    struct slice r = skip(s, (size_t)q + 8);
    size_t d = 0;
    while (d < r.n && is_digit((unsigned char)r.p[d])) d++;
    f->line = number(sl(r.p, d));
    if (f->line < 0) f->line = 0;
    r = skip(r, d);
    if (starts(r, ", in ")) f->fn = trim(skip(r, 5));
    return 1;
}

static void parse_python(struct parser *p)
{
    struct exc *e = new_exc(p);
    struct slice line;
    int have_type = 0, started = 0;
    const char *mend = NULL;
    while (next_line(p, &line)) {
        struct slice t = trim(line);
        int sep = eq(t, "During handling of the above exception, another exception occurred:") ||
                  eq(t, "The above exception was the direct cause of the following exception:");
        if (starts(line, "Traceback (most recent call last):") || sep) {
            if (e && (have_type || p->nbuf)) { /* a new block: the one before is a cause */
                finish_frames(p, e, 0);
                if (mend) e->msg2.n = (size_t)(mend - e->msg2.p);
                if (p->nex == MAX_EXC) { /* keep the last blocks: the main exception is last */
                    memmove(&p->ex[0], &p->ex[1], (MAX_EXC - 1) * sizeof(p->ex[0]));
                    p->nex--;
                    p->truncated = 1;
                }
                e = new_exc(p);
                have_type = 0;
                mend = NULL;
            }
            started = 1;
            continue;
        }
        if (line.n > SX_ST_MAX_LINE) continue;
        struct sframe f;
        if (line.n && is_space((unsigned char)line.p[0])) {
            if (py_frame(t, &f)) {
                if (have_type) continue; /* a frame after the message: not this format */
                add_frame(p, &f, 1);
                started = 1;
            }
            continue; /* source and caret lines */
        }
        if (t.n == 0) continue;
        if (!have_type && (started || p->nbuf)) {
            split_header(t, &e->type, &e->msg);
            have_type = 1;
            e->msg2 = sl(line.p + line.n, 0);
        } else if (have_type) {
            if (!e->msg2.n && !mend) e->msg2.p = line.p;
            mend = line.p + line.n;
        }
    }
    if (e) {
        if (mend) e->msg2.n = (size_t)(mend - e->msg2.p);
        finish_frames(p, e, 0);
    }
    /* Printed cause first: the main exception is the last block. */
    for (size_t i = 0; i < p->nex / 2; i++) {
        struct exc tmp = p->ex[i];
        p->ex[i] = p->ex[p->nex - 1 - i];
        p->ex[p->nex - 1 - i] = tmp;
    }
}

/* ---- JVM ----------------------------------------------------------------------- */

/* `at pkg.Class.method(Source)` after trimming. */
static int java_frame(struct slice t, struct sframe *f)
{
    if (!starts(t, "at ")) return 0;
    struct slice s = skip(t, 3);
    long open = find_char(s, '(', 0);
    if (open <= 0) return 0;
    long close = find_char(s, ')', (size_t)open);
    if (close < 0) return 0;
    struct slice name = sl(s.p, (size_t)open);
    for (size_t i = 0; i < name.n; i++)
        if (is_space((unsigned char)name.p[i])) return 0;
    long slash = rfind_char(name, '/'); /* java.base/ or app// module prefix */
    if (slash >= 0) name = skip(name, (size_t)slash + 1);
    long dot = rfind_char(name, '.');
    if (dot <= 0 || (size_t)dot + 1 >= name.n) return 0;
    memset(f, 0, sizeof(*f));
    f->mod = sl(name.p, (size_t)dot);
    f->fn = skip(name, (size_t)dot + 1);
    struct slice src = sl(s.p + open + 1, (size_t)(close - open - 1));
    if (eq(src, "Native Method") || starts(src, "Unknown Source")) return 1;
    long c = rfind_char(src, ':');
    if (c > 0 && number(skip(src, (size_t)c + 1)) >= 0) {
        f->file = sl(src.p, (size_t)c);
        f->line = number(skip(src, (size_t)c + 1));
    } else {
        f->file = src;
    }
    return 1;
}

/* Java-printed source in parentheses (File.java:12, Native Method) rather than .NET
 * arguments (String s, Int32 n) or nothing. */
static int java_source_like(struct slice t)
{
    long open = find_char(t, '(', 0), close = open >= 0 ? find_char(t, ')', (size_t)open) : -1;
    if (close <= open + 1) return 0;
    struct slice src = sl(t.p + open + 1, (size_t)(close - open - 1));
    if (eq(src, "Native Method") || starts(src, "Unknown Source") || eq(src, "<generated>")) return 1;
    for (size_t i = 0; i < src.n; i++)
        if (src.p[i] == ' ' || src.p[i] == ',') return 0;
    return find_char(src, '.', 0) > 0;
}

static void parse_java(struct parser *p)
{
    struct exc *e = new_exc(p);
    struct slice line;
    const char *hstart = NULL, *hend = NULL;
    int frames = 0;
    size_t skip_indent = (size_t)-1;
    while (e && next_line(p, &line)) {
        if (line.n > SX_ST_MAX_LINE) continue;
        struct slice t = trim(line);
        size_t ind = indent(line);
        if (skip_indent != (size_t)-1) {
            if (ind > skip_indent && t.n) continue;
            skip_indent = (size_t)-1;
        }
        if (starts(t, "Suppressed: ")) {
            skip_indent = ind;
            frames = 1;
            continue;
        }
        if (starts(t, "Caused by: ")) {
            if (hstart) split_header(sl(hstart, (size_t)(hend - hstart)), &e->type, &e->msg);
            finish_frames(p, e, 1);
            e = new_exc(p);
            hstart = t.p + 11;
            hend = t.p + t.n;
            frames = 0;
            continue;
        }
        struct sframe f;
        if (java_frame(t, &f)) {
            frames = 1;
            add_frame(p, &f, 0);
            continue;
        }
        if (starts(t, "... ") && ends(t, " more")) {
            int k = number(trim(sl(t.p + 4, t.n - 9)));
            if (k > 0) e->omitted = (size_t)k;
            continue;
        }
        if (!frames && t.n) {
            if (!hstart) {
                hstart = t.p;
                if (starts(t, "Exception in thread \"")) {
                    long q = find(t, "\" ", 21);
                    if (q > 0) hstart = t.p + q + 2;
                }
            }
            hend = line.p + line.n;
        }
    }
    if (e) {
        if (hstart && hend > hstart) split_header(sl(hstart, (size_t)(hend - hstart)), &e->type, &e->msg);
        finish_frames(p, e, 1);
    } else {
        p->nbuf = 0;
    }
}

/* ---- Go ------------------------------------------------------------------------ */

/* Splits a Go function name at its import path: net/http.(*conn).serve gives module
 * net/http and function (*conn).serve. */
static void go_split(struct slice name, struct sframe *f)
{
    long slash = rfind_char(name, '/');
    long dot = find_char(name, '.', slash >= 0 ? (size_t)slash : 0);
    if (dot <= 0) {
        f->fn = name;
        return;
    }
    f->mod = sl(name.p, (size_t)dot);
    f->fn = skip(name, (size_t)dot + 1);
}

/* A function line (`pkg.fn(0x1, 0x2)`, `created by pkg.fn in goroutine 7`). */
static int go_func_line(struct slice line, struct sframe *f)
{
    if (line.n == 0 || is_space((unsigned char)line.p[0])) return 0;
    memset(f, 0, sizeof(*f));
    struct slice name;
    if (starts(line, "created by ")) {
        name = trim(skip(line, 11));
        long in = find(name, " in goroutine ", 0);
        if (in >= 0) name.n = (size_t)in;
    } else {
        if (line.p[line.n - 1] != ')') return 0;
        long k = open_paren(line);
        if (k <= 0) return 0;
        name = sl(line.p, (size_t)k);
    }
    if (name.n == 0) return 0;
    for (size_t i = 0; i < name.n; i++)
        if (is_space((unsigned char)name.p[i])) return 0;
    go_split(name, f);
    return 1;
}

/* `\t/path/file.go:42 +0x1d`. */
static int go_file_line(struct slice line, struct sframe *f)
{
    if (line.n < 2 || line.p[0] != '\t') return 0;
    struct slice s = trim(line);
    long sp = find_char(s, ' ', 0);
    if (sp > 0) s.n = (size_t)sp;
    long c = rfind_char(s, ':');
    if (c <= 0) return 0;
    int ln = number(skip(s, (size_t)c + 1));
    if (ln < 0) return 0;
    f->file = sl(s.p, (size_t)c);
    f->line = ln;
    return 1;
}

static void parse_go(struct parser *p)
{
    struct exc *e = new_exc(p);
    struct slice line;
    struct sframe f;
    int pending = 0, goroutine = 0;
    while (next_line(p, &line)) {
        if (line.n > SX_ST_MAX_LINE) continue;
        if (!goroutine && !e->type.n && (starts(line, "panic: ") || starts(line, "fatal error: "))) {
            size_t k = line.p[0] == 'p' ? 7 : 13;
            e->type = sl(line.p, k - 2);
            e->msg = trim(skip(line, k));
            if (ends(e->msg, " [recovered]")) e->msg.n -= 12;
            continue;
        }
        if (starts(line, "goroutine ") && ends(line, "]:")) {
            if (goroutine) break; /* the next goroutine: keep only the first */
            goroutine = 1;
            continue;
        }
        if (pending && go_file_line(line, &f)) {
            add_frame(p, &f, 0);
            pending = 0;
            continue;
        }
        if (go_func_line(line, &f)) {
            pending = 1;
            continue;
        }
        pending = 0;
        if (line.n == 0 && goroutine && p->nbuf) break;
    }
    finish_frames(p, e, 1);
}

/* ---- Ruby ---------------------------------------------------------------------- */

/* `path:line:in `fn'` or `path:line:in 'fn'`, with what follows the closing quote in rest. */
static int ruby_frame(struct slice t, struct sframe *f, struct slice *rest)
{
    if (starts(t, "from ")) t = skip(t, 5);
    long in = find(t, ":in ", 0);
    if (in <= 0 || (size_t)in + 5 > t.n || (t.p[in + 4] != '`' && t.p[in + 4] != '\'')) return 0;
    struct slice loc = sl(t.p, (size_t)in);
    long c = rfind_char(loc, ':');
    if (c <= 0) return 0;
    int ln = number(skip(loc, (size_t)c + 1));
    if (ln < 0) return 0;
    struct slice after = skip(t, (size_t)in + 5);
    long q = find_char(after, '\'', 0);
    if (q < 0) return 0;
    memset(f, 0, sizeof(*f));
    f->file = sl(loc.p, (size_t)c);
    f->line = ln;
    f->fn = sl(after.p, (size_t)q);
    *rest = skip(after, (size_t)q + 1);
    return 1;
}

static void parse_ruby(struct parser *p)
{
    struct exc *e = new_exc(p);
    struct slice line, rest;
    const char *mend = NULL;
    int header = 0;
    while (next_line(p, &line)) {
        if (line.n > SX_ST_MAX_LINE) continue;
        struct slice t = trim(line);
        struct sframe f;
        if (ruby_frame(t, &f, &rest)) {
            if (p->nbuf == 0 && starts(rest, ": ")) { /* `: message (Type)` */
                struct slice m = skip(rest, 2);
                if (ends(m, ")")) {
                    long k = rfind_char(m, '(');
                    struct slice ty = k >= 0 ? sl(m.p + k + 1, m.n - (size_t)k - 2) : sl(m.p, 0);
                    if (k >= 0 && type_like(ty)) {
                        e->type = ty;
                        m.n = (size_t)k;
                    }
                }
                e->msg = trim(m);
                header = 1;
            } else {
                header = 0;
            }
            add_frame(p, &f, 0);
            continue;
        }
        if (header && p->nbuf == 1 && !starts(t, "...")) { /* more message lines */
            if (!mend) e->msg2.p = line.p;
            mend = line.p + line.n;
        }
    }
    if (mend) e->msg2.n = (size_t)(mend - e->msg2.p);
    finish_frames(p, e, 1);
}

/* ---- .NET ---------------------------------------------------------------------- */

/* `at Ns.Class.Method(Args) in /path/File.cs:line 42` after trimming. */
static int dotnet_frame(struct slice t, struct sframe *f)
{
    if (!starts(t, "at ")) return 0;
    struct slice s = skip(t, 3);
    memset(f, 0, sizeof(*f));
    long ln = -1;
    for (long k = find(s, ":line ", 0); k >= 0; k = find(s, ":line ", (size_t)k + 1)) ln = k;
    if (ln > 0 && number(skip(s, (size_t)ln + 6)) >= 0) {
        struct slice head = sl(s.p, (size_t)ln);
        long in = -1;
        for (long k = find(head, " in ", 0); k >= 0; k = find(head, " in ", (size_t)k + 1)) in = k;
        if (in > 0) {
            f->file = skip(head, (size_t)in + 4);
            f->line = number(skip(s, (size_t)ln + 6));
            s.n = (size_t)in;
        }
    }
    long open = find_char(s, '(', 0);
    struct slice name = trim(sl(s.p, open >= 0 ? (size_t)open : s.n));
    if (name.n == 0) return 0;
    for (size_t i = 0; i < name.n; i++)
        if (is_space((unsigned char)name.p[i])) return 0;
    long dot = rfind_char(name, '.');
    if (dot > 0 && name.p[dot - 1] == '.') dot--; /* Foo..ctor */
    if (dot > 0 && (size_t)dot + 1 < name.n) {
        f->mod = sl(name.p, (size_t)dot);
        f->fn = skip(name, (size_t)dot + 1);
    } else {
        f->fn = name;
    }
    return 1;
}

static void parse_dotnet(struct parser *p)
{
    struct slice line;
    const char *hstart = NULL, *hend = NULL;
    size_t depth = 0, seg = 0;
    int frames = 0;
    while (next_line(p, &line)) {
        if (line.n > SX_ST_MAX_LINE) continue;
        struct slice t = trim(line);
        struct sframe f;
        if (starts(t, "---> (Inner Exception")) break; /* AggregateException's extra listing */
        if (!frames && !starts(t, "at ")) {
            if (t.n) {
                if (!hstart) hstart = line.p;
                hend = line.p + line.n;
            }
            continue;
        }
        if (!frames) { /* header done: one exception per ` ---> ` */
            frames = 1;
            struct slice h = hstart ? sl(hstart, (size_t)(hend - hstart)) : sl(line.p, 0);
            size_t from = 0;
            for (;;) {
                long k = find(h, "--->", from);
                struct slice part = sl(h.p + from, (k >= 0 ? (size_t)k : h.n) - from);
                struct exc *e = new_exc(p);
                if (!e) break;
                split_header(part, &e->type, &e->msg);
                if (k < 0) break;
                from = (size_t)k + 4;
            }
            depth = p->nex;
        }
        if (starts(t, "--- End of inner exception stack trace")) {
            if (depth > seg) finish_frames(p, &p->ex[depth - 1 - seg], 1);
            seg++;
            continue;
        }
        if (starts(t, "--- ")) continue; /* End of stack trace from previous location */
        if (dotnet_frame(t, &f)) add_frame(p, &f, 0);
    }
    if (p->nex == 0) {
        struct exc *e = new_exc(p);
        if (hstart) split_header(sl(hstart, (size_t)(hend - hstart)), &e->type, &e->msg);
    }
    finish_frames(p, &p->ex[depth > seg ? depth - 1 - seg : 0], 1);
}

/* ---- detection ------------------------------------------------------------------ */

static int go_std(const char *mod)
{
    static const char *const std[] = {
        "archive", "bufio",   "bytes",  "cmp",     "compress", "container", "context", "crypto", "database",
        "debug",   "embed",   "encoding", "errors", "expvar",  "flag",     "fmt",       "go",      "hash",
        "html",    "image",   "index",  "internal", "io",      "iter",     "log",       "maps",    "math",
        "mime",    "net",     "os",     "path",    "plugin",   "reflect",  "regexp",    "runtime", "slices",
        "sort",    "strconv", "strings", "sync",   "syscall",  "testing",  "text",      "time",    "unicode",
        "unique",  "unsafe",  "weak",   "vendor"};
    size_t n = strcspn(mod, "/");
    for (size_t i = 0; i < SX_ARRAY_LEN(std); i++)
        if (strlen(std[i]) == n && memcmp(std[i], mod, n) == 0) return 1;
    return 0;
}

static void score_line(struct slice line, int score[])
{
    struct slice t = trim(line);
    struct sframe f;
    struct slice rest;
    if (t.n == 0 || line.n > SX_ST_MAX_LINE) return;
    if (starts(t, "at ")) {
        if (js_v8_frame(t, &f)) score[SX_ST_JS] += 2;
        else if (java_source_like(t)) score[SX_ST_JAVA] += 2;
        else if (dotnet_frame(t, &f)) score[SX_ST_DOTNET] += 2;
        return;
    }
    if (starts(line, "Traceback (most recent call last):")) score[SX_ST_PYTHON] += 3;
    else if (py_frame(t, &f)) score[SX_ST_PYTHON] += 2;
    else if (starts(line, "goroutine ") && ends(line, "]:")) score[SX_ST_GO] += 3;
    else if (go_file_line(line, &f) && ends(f.file, ".go")) score[SX_ST_GO] += 2;
    else if (starts(t, "Caused by: ")) score[SX_ST_JAVA] += 1;
    else if (starts(t, "--- End of inner exception stack trace")) score[SX_ST_DOTNET] += 3;
    else if (ruby_frame(t, &f, &rest)) score[SX_ST_RUBY] += 2;
    else if (js_ff_frame(t, &f)) score[SX_ST_JS] += 2;
}

enum sx_st_lang sx_st_detect(const char *text, size_t n, enum sx_st_lang hint)
{
    struct parser p = {0};
    int score[SX_ST_DOTNET + 1] = {0};
    struct slice line;
    if (!text) return SX_ST_UNKNOWN;
    p.text = text;
    p.n = n > SX_ST_MAX_INPUT ? SX_ST_MAX_INPUT : n;
    while (next_line(&p, &line)) score_line(line, score);
    enum sx_st_lang best = SX_ST_UNKNOWN;
    for (int l = SX_ST_JS; l <= SX_ST_DOTNET; l++)
        if (score[l] > score[best]) best = (enum sx_st_lang)l;
    if (hint > SX_ST_UNKNOWN && hint <= SX_ST_DOTNET && score[hint] > 0 && 2 * score[hint] >= score[best]) return hint;
    return best;
}

/* ---- in-app ---------------------------------------------------------------------- */

int sx_st_pattern_match(const char *pattern, const char *s)
{
    if (!pattern || !s || !*pattern) return 0;
    const char *p = pattern, *star = NULL, *ss = NULL;
    for (;;) {
        if (*p == '\0') return 1; /* the pattern matched a prefix of s */
        if (*p == '*') {
            star = ++p;
            ss = s;
            continue;
        }
        if (*s && *p == *s) {
            p++;
            s++;
            continue;
        }
        if (star && *ss) {
            p = star;
            s = ++ss;
            continue;
        }
        return 0;
    }
}

static int any_match(const char *const *pats, size_t n, const struct sx_st_frame *f)
{
    for (size_t i = 0; pats && i < n; i++)
        if (sx_st_pattern_match(pats[i], f->module) || sx_st_pattern_match(pats[i], f->file) ||
            sx_st_pattern_match(pats[i], f->function))
            return 1;
    return 0;
}

static int any_prefix(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (prefix(s, list[i])) return 1;
    return 0;
}

static int default_in_app(enum sx_st_lang lang, const struct sx_st_frame *f)
{
    static const char *const jvm[] = {
        "java.",           "javax.",        "jakarta.",   "jdk.",          "sun.",          "com.sun.",
        "kotlin.",         "kotlinx.",      "scala.",     "groovy.",       "org.codehaus.groovy.",
        "org.springframework.", "org.apache.", "io.netty.", "org.hibernate.", "com.fasterxml.",
        "org.eclipse.jetty.", "io.micronaut.", "io.quarkus.", "io.vertx.", "reactor.",     "io.reactivex.",
        "okhttp3.",        "org.junit.",    "com.google.", "org.slf4j.",   "ch.qos.logback.", "io.opentelemetry.",
        "org.jboss.",      "io.grpc.",      "org.glassfish.", "com.zaxxer.", "net.bytebuddy.", "org.aspectj."};
    static const char *const dotnet[] = {"System.", "Microsoft.", "Newtonsoft.", "Npgsql.", "Grpc."};
    const char *file = f->file, *mod = f->module;
    switch (lang) {
    case SX_ST_JS:
        if (!file) return 0;
        if (contains(file, "node_modules/") || prefix(file, "node:") || prefix(file, "internal/") ||
            contains(file, "webpack/bootstrap"))
            return 0;
        return strchr(file, '/') != NULL || strchr(file, '\\') != NULL;
    case SX_ST_PYTHON:
        if (!file || file[0] == '<') return 0;
        return !(contains(file, "site-packages") || contains(file, "dist-packages") || contains(file, "/lib/python") ||
                 contains(file, "\\Lib\\"));
    case SX_ST_JAVA:
        if (!mod) return 0;
        return !any_prefix(mod, jvm, SX_ARRAY_LEN(jvm));
    case SX_ST_GO:
        if (file && (contains(file, "/usr/local/go/src/") || contains(file, "/usr/lib/go/src/") ||
                     contains(file, "/usr/lib/go-") || contains(file, "/pkg/mod/") || contains(file, "/goroot/src/")))
            return 0;
        if (mod && strcmp(mod, "main") != 0 && go_std(mod)) return 0;
        return mod != NULL || file != NULL;
    case SX_ST_RUBY:
        if (!file || file[0] == '<') return 0;
        return !(contains(file, "/gems/") || contains(file, "/lib/ruby/"));
    case SX_ST_DOTNET:
        if (!mod) return 0;
        return !(strcmp(mod, "System") == 0 || any_prefix(mod, dotnet, SX_ARRAY_LEN(dotnet)));
    default:
        return 0;
    }
}

int sx_st_in_app(enum sx_st_lang lang, const struct sx_st_frame *f, const struct sx_st_rules *rules)
{
    if (rules) {
        if (any_match(rules->exclude, rules->nexclude, f)) return 0;
        if (any_match(rules->include, rules->ninclude, f)) return 1;
    }
    return default_in_app(lang, f);
}

/* ---- entry points ------------------------------------------------------------------ */

enum sx_st_lang sx_st_lang_from_sdk(const char *v)
{
    if (!v) return SX_ST_UNKNOWN;
    if (!strcmp(v, "nodejs") || !strcmp(v, "webjs") || !strcmp(v, "javascript")) return SX_ST_JS;
    if (!strcmp(v, "python")) return SX_ST_PYTHON;
    if (!strcmp(v, "java") || !strcmp(v, "kotlin")) return SX_ST_JAVA;
    if (!strcmp(v, "go")) return SX_ST_GO;
    if (!strcmp(v, "ruby")) return SX_ST_RUBY;
    if (!strcmp(v, "dotnet")) return SX_ST_DOTNET;
    return SX_ST_UNKNOWN;
}

const char *sx_st_lang_name(enum sx_st_lang lang)
{
    switch (lang) {
    case SX_ST_JS: return "js";
    case SX_ST_PYTHON: return "python";
    case SX_ST_JAVA: return "java";
    case SX_ST_GO: return "go";
    case SX_ST_RUBY: return "ruby";
    case SX_ST_DOTNET: return "dotnet";
    default: return "unknown";
    }
}

static void empty_trace(struct sx_st_trace *out, enum sx_st_lang lang)
{
    memset(out, 0, sizeof(*out));
    out->lang = lang;
    out->type = out->message = "";
}

int sx_st_parse(const char *text, size_t n, enum sx_st_lang hint, const struct sx_st_rules *rules,
                struct sx_arena *a, struct sx_st_trace *out)
{
    empty_trace(out, SX_ST_UNKNOWN);
    if (!text || !a) return text ? SX_ERR : SX_OK;
    enum sx_st_lang lang = sx_st_detect(text, n, hint);
    if (lang == SX_ST_UNKNOWN) return SX_OK;
    struct parser *p = sx_arena_calloc(a, 1, sizeof(*p)); /* the scratch frames are too big for the stack */
    if (!p) return SX_ERR;
    p->text = text;
    p->n = n > SX_ST_MAX_INPUT ? SX_ST_MAX_INPUT : n;
    p->truncated = n > SX_ST_MAX_INPUT;
    p->lang = lang;
    p->rules = rules;
    p->a = a;
    switch (lang) {
    case SX_ST_JS: parse_js(p); break;
    case SX_ST_PYTHON: parse_python(p); break;
    case SX_ST_JAVA: parse_java(p); break;
    case SX_ST_GO: parse_go(p); break;
    case SX_ST_RUBY: parse_ruby(p); break;
    case SX_ST_DOTNET: parse_dotnet(p); break;
    default: break;
    }
    empty_trace(out, lang);
    for (size_t i = 0; i < p->nex && !p->err; i++) {
        const struct exc *e = &p->ex[i];
        struct slice ty = e->type;
        if (ty.n > 512) ty.n = 512;
        const char *type = dup_text(p, ty, sl(NULL, 0), 512);
        const char *msg = dup_text(p, e->msg, e->msg2, SX_ST_MAX_MESSAGE);
        if (i == 0) {
            out->type = type;
            out->message = msg;
            out->frames = e->frames;
            out->n = e->n;
            out->omitted = e->omitted;
        } else {
            struct sx_st_exception *c = &out->causes[out->ncauses++];
            c->type = type;
            c->message = msg;
            c->frames = e->frames;
            c->n = e->n;
            c->omitted = e->omitted;
        }
    }
    out->truncated = p->truncated;
    if (p->err) {
        empty_trace(out, SX_ST_UNKNOWN);
        return SX_ERR;
    }
    return SX_OK;
}
