/* grouping.c: error grouping v1 (fingerprint, message normalization, title, culprit); see grouping.h. */
#include "grouping.h"

#include <openssl/evp.h>
#include <string.h>

/* ---- bytes ---------------------------------------------------------------------- */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_word(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '_';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Length of the UTF-8 sequence starting with c (1 for ASCII and stray bytes), clipped to
 * the continuation bytes actually present in s[0..n). */
static size_t seq_len(const unsigned char *s, size_t n)
{
    size_t want = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1, k = 1;
    while (k < want && k < n && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

/* Longest prefix of s[0..n) that fits in max bytes without splitting a UTF-8 sequence. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = 0;
    while (k < n) {
        size_t l = seq_len(u + k, n - k);
        if (k + l > max) break;
        k += l;
    }
    return k;
}

/* ---- message normalization --------------------------------------------------------- */

struct norm {
    const unsigned char *in;
    size_t n, i;
    char *out;
    size_t len, limit;
    int full;
    /* per quote kind: the last closing-quote search, from+1 .. upto, found or not; reused
     * while it still answers, so a line of unclosed quotes costs linear time */
    size_t qfrom[3], qupto[3];
    int qfound[3];
};

static unsigned char at(const struct norm *s, size_t k)
{
    return s->i + k < s->n ? s->in[s->i + k] : 0;
}

static void emit(struct norm *s, const void *p, size_t n)
{
    if (s->full || s->len + n > s->limit) {
        s->full = 1;
        return;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
}

static void put_ph(struct norm *s, const char *ph, size_t consumed)
{
    emit(s, ph, strlen(ph));
    s->i += consumed;
}

static unsigned char prev(const struct norm *s)
{
    return s->len ? (unsigned char)s->out[s->len - 1] : ' ';
}

/* Whether the byte at k ends a token: end, or neither a word byte nor '<'. A placeholder
 * right after a token (`ad::<num>` from `ad::1x`) must not turn it into one when the text
 * is normalized again. */
static int ends_word(const struct norm *s, size_t k)
{
    unsigned char c = at(s, k);
    return !is_word(c) && c != '<';
}

static size_t run(const struct norm *s, size_t k, int (*cls)(unsigned char))
{
    while (s->i + k < s->n && cls(s->in[s->i + k])) k++;
    return k;
}

/* A closing quote at j: a single quote must not be followed by a word byte or '<' (a
 * placeholder in an already normalized text), so "can't" or 'x'5 stay as they are. */
static int closes(const struct norm *s, size_t j, unsigned char q)
{
    if (s->in[j] != q) return 0;
    if (q != '\'') return 1;
    unsigned char c = j + 1 < s->n ? s->in[j + 1] : 0;
    return !is_word(c) && c != '<';
}

static size_t m_quote(struct norm *s)
{
    unsigned char q = at(s, 0);
    int kind = q == '\'' ? 0 : q == '"' ? 1 : q == '`' ? 2 : -1;
    if (kind < 0) return 0;
    size_t i = s->i;
    if (!(s->qfrom[kind] <= i && i < s->qupto[kind])) {
        size_t j = i + 1;
        while (j < s->n && s->in[j] != '\n' && s->in[j] != '\r' && !closes(s, j, q)) j++;
        s->qfrom[kind] = i;
        s->qupto[kind] = j;
        s->qfound[kind] = j < s->n && s->in[j] == q;
    }
    /* the search from qfrom found the first close (or the line end) at qupto; as no close
     * lies between qfrom and qupto, the same holds from i */
    if (!s->qfound[kind]) return 0;
    return s->qupto[kind] + 1 - i;
}

/* Like run, but looking at most max bytes ahead: every matcher's lookahead is bounded, so
 * a pathological message costs at most SX_GROUPING_MSG_MAX steps of a few KiB each. */
static size_t run_max(const struct norm *s, size_t k, int (*cls)(unsigned char), size_t max)
{
    size_t end = k + max;
    while (k < end && s->i + k < s->n && cls(s->in[s->i + k])) k++;
    return k;
}

static int url_char(unsigned char c)
{
    return !is_ws(c) && c != '"' && c != '\'' && c != '`' && c != '<' && c != '>' && c > 0x20 && c != 0x7f;
}

static int trailing_punct(unsigned char c)
{
    return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == ')' || c == ']' || c == '}';
}

static size_t m_url(const struct norm *s)
{
    if (!is_alpha(at(s, 0))) return 0;
    size_t k = 1;
    while (k < 20 && (is_alpha(at(s, k)) || is_digit(at(s, k)) || at(s, k) == '+' || at(s, k) == '.' || at(s, k) == '-'))
        k++;
    if (at(s, k) != ':' || at(s, k + 1) != '/' || at(s, k + 2) != '/') return 0;
    k += 3;
    size_t start = k;
    k = run_max(s, k, url_char, 2048); /* a longer URL ends there */
    while (k > start && trailing_punct(at(s, k - 1))) k--;
    return k > start ? k : 0;
}

static int email_local(unsigned char c)
{
    return is_word(c) || c == '.' || c == '%' || c == '+' || c == '-';
}

static int host_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.';
}

static size_t m_email(const struct norm *s)
{
    if (!is_word(at(s, 0))) return 0;
    size_t k = run_max(s, 0, email_local, 64);
    if (at(s, k) != '@' || (!is_alpha(at(s, k + 1)) && !is_digit(at(s, k + 1)))) return 0;
    size_t d = k + 1, e = run_max(s, d, host_char, 255);
    if (host_char(at(s, e))) return 0;
    while (e > d && (at(s, e - 1) == '.' || at(s, e - 1) == '-')) e--;
    int dot = 0;
    for (size_t j = d; j < e; j++) dot |= at(s, j) == '.';
    if (!dot || !ends_word(s, e)) return 0;
    return e;
}

static size_t m_uuid(const struct norm *s)
{
    static const size_t groups[] = {8, 4, 4, 4, 12};
    size_t k = 0;
    for (size_t g = 0; g < 5; g++) {
        for (size_t j = 0; j < groups[g]; j++, k++)
            if (!is_hex(at(s, k))) return 0;
        if (g < 4 && at(s, k++) != '-') return 0;
    }
    return ends_word(s, k) ? k : 0;
}

static size_t digits(const struct norm *s, size_t k)
{
    return run(s, k, is_digit) - k;
}

/* HH:MM[:SS[.frac]] at k; 0 when absent. */
static size_t time_at(const struct norm *s, size_t k, int need_seconds)
{
    size_t h = digits(s, k);
    if (h < 1 || h > 2 || at(s, k + h) != ':' || digits(s, k + h + 1) != 2) return 0;
    size_t e = k + h + 3;
    if (at(s, e) == ':' && digits(s, e + 1) == 2) {
        e += 3;
        if ((at(s, e) == '.' || at(s, e) == ',') && digits(s, e + 1) > 0) e += 1 + digits(s, e + 1);
    } else if (need_seconds) {
        return 0;
    }
    return e - k;
}

static size_t m_date(const struct norm *s)
{
    size_t e = 0;
    if (digits(s, 0) == 4 && at(s, 4) == '-' && digits(s, 5) == 2 && at(s, 7) == '-' && digits(s, 8) == 2) {
        e = 10;
        if ((at(s, e) == 'T' || at(s, e) == ' ') && is_digit(at(s, e + 1))) {
            size_t t = time_at(s, e + 1, 0);
            if (t) e += 1 + t;
        }
    } else {
        e = time_at(s, 0, 1);
        if (!e) return 0;
    }
    if (at(s, e) == 'Z') e++;
    else if ((at(s, e) == '+' || at(s, e) == '-') && digits(s, e + 1) == 2) {
        if (at(s, e + 3) == ':' && digits(s, e + 4) == 2) e += 6;
        else if (digits(s, e + 1) == 4) e += 5;
    }
    return ends_word(s, e) ? e : 0;
}

static size_t m_ip(const struct norm *s)
{
    /* IPv4 */
    size_t k = 0;
    int parts = 0;
    while (parts < 4) {
        size_t d = digits(s, k);
        if (d < 1 || d > 3) break;
        int v = 0;
        for (size_t j = 0; j < d; j++) v = v * 10 + (at(s, k + j) - '0');
        if (v > 255) break;
        k += d;
        parts++;
        if (parts < 4) {
            if (at(s, k) != '.') break;
            k++;
        }
    }
    if (parts == 4 && !(at(s, k) == '.' && is_digit(at(s, k + 1)))) {
        if (at(s, k) == ':' && digits(s, k + 1) > 0) k += 1 + digits(s, k + 1);
        if (ends_word(s, k)) return k;
    }
    /* IPv6: hex groups of at most 4 and colons, with :: or 7 colons */
    size_t colons = 0, group = 0, hexd = 0;
    int dbl = 0;
    for (k = 0; s->i + k < s->n; k++) {
        unsigned char c = at(s, k);
        if (k > 45) return 0;
        if (c == ':') {
            if (at(s, k + 1) == ':') {
                if (dbl) break;
                dbl = 1;
            }
            colons++;
            group = 0;
        } else if (is_hex(c)) {
            if (++group > 4) return 0;
            hexd++;
        } else {
            break;
        }
    }
    while (k > 0 && at(s, k - 1) == ':' && !(k >= 2 && at(s, k - 2) == ':')) k--, colons--;
    if (colons < 2 || colons > 7 || hexd == 0 || !(dbl || colons == 7) || !ends_word(s, k)) return 0;
    return k;
}

static size_t m_hex(const struct norm *s)
{
    if (at(s, 0) == '0' && (at(s, 1) == 'x' || at(s, 1) == 'X') && is_hex(at(s, 2))) {
        size_t k = run(s, 2, is_hex);
        return ends_word(s, k) ? k : 0;
    }
    size_t k = run(s, 0, is_hex);
    if (k < 6 || !ends_word(s, k)) return 0;
    int dig = 0, let = 0;
    for (size_t j = 0; j < k; j++) {
        if (is_digit(at(s, j))) dig = 1;
        else let = 1;
    }
    return dig && let ? k : 0;
}

static int path_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '"' && c != '\'' && c != '`' && c != '<' && c != '>' && c != '(' &&
           c != ')' && c != '[' && c != ']' && c != '{' && c != '}' && c != ',' && c != ';' && c != '|';
}

static size_t m_path(const struct norm *s)
{
    unsigned char c0 = at(s, 0);
    size_t start = 0;
    if (c0 == '/') start = 0;
    else if (c0 == '~' && at(s, 1) == '/') start = 1;
    else if (c0 == '.' && at(s, 1) == '/') start = 1;
    else if (c0 == '.' && at(s, 1) == '.' && at(s, 2) == '/') start = 2;
    else if (is_alpha(c0) && at(s, 1) == ':' && at(s, 2) == '\\' && path_char(at(s, 3))) {
        size_t k = run_max(s, 3, path_char, 1024);
        while (k > 3 && trailing_punct(at(s, k - 1))) k--;
        return k;
    } else if (c0 == '\\' && at(s, 1) == '\\' && is_word(at(s, 2))) {
        size_t k = run_max(s, 2, path_char, 1024);
        while (k > 2 && trailing_punct(at(s, k - 1))) k--;
        return k;
    } else {
        return 0;
    }
    if (!is_word(at(s, start + 1)) && at(s, start + 1) != '.') return 0;
    size_t k = run_max(s, start, path_char, 1024); /* a longer path ends there */
    while (k > start && trailing_punct(at(s, k - 1))) k--;
    size_t slashes = 0, lastslash = 0;
    for (size_t j = start; j < k; j++)
        if (at(s, j) == '/') slashes++, lastslash = j;
    int dotted = 0;
    for (size_t j = lastslash + 1; j < k; j++) dotted |= at(s, j) == '.';
    if (slashes >= 2 || (start > 0 && slashes >= 1) || dotted) return k;
    return 0;
}

/* Number at 0 (a sign allowed by the caller); 0 when it is part of a word. */
static size_t m_number(const struct norm *s, size_t k)
{
    size_t d = digits(s, k);
    if (!d) return 0;
    k += d;
    while (at(s, k) == '.' && is_digit(at(s, k + 1))) k += 1 + digits(s, k + 1);
    if ((at(s, k) == 'e' || at(s, k) == 'E')) {
        size_t e = k + 1;
        if (at(s, e) == '+' || at(s, e) == '-') e++;
        if (digits(s, e) && ends_word(s, e + digits(s, e))) k = e + digits(s, e);
    }
    if (ends_word(s, k)) return k;
    /* a unit suffix (5000ms, 10GB) stays; digits after letters (5f3a1) make it a word */
    size_t j = k;
    while (is_alpha(at(s, j))) j++;
    return ends_word(s, j) && at(s, j) != '_' ? k : 0;
}

size_t sx_grouping_normalize_message(const char *in, size_t n, char *out, size_t cap)
{
    if (cap == 0) return 0;
    struct norm s;
    memset(&s, 0, sizeof(s));
    s.in = (const unsigned char *)in;
    s.n = in ? n : 0;
    s.out = out;
    s.limit = SX_MIN(cap - 1, (size_t)SX_GROUPING_MSG_MAX);
    while (s.i < s.n && !s.full) {
        unsigned char c = s.in[s.i], p = prev(&s);
        size_t k;
        if (!is_word(p)) {
            if ((k = m_quote(&s))) { put_ph(&s, "<str>", k); continue; }
            if (p != '.' && p != '/' && p != '-') {
                if ((k = m_url(&s))) { put_ph(&s, "<url>", k); continue; }
                if ((k = m_email(&s))) { put_ph(&s, "<email>", k); continue; }
                if ((k = m_uuid(&s))) { put_ph(&s, "<uuid>", k); continue; }
                if ((k = m_date(&s))) { put_ph(&s, "<date>", k); continue; }
                if ((k = m_ip(&s))) { put_ph(&s, "<ip>", k); continue; }
                if ((k = m_hex(&s))) { put_ph(&s, "<hex>", k); continue; }
                if ((k = m_path(&s))) { put_ph(&s, "<path>", k); continue; }
            }
            int sign = c == '-' && (p == ' ' || p == '(' || p == '[' || p == '=' || p == ',' || p == ':');
            if (p != '.' && (k = m_number(&s, sign ? 1 : 0))) { put_ph(&s, "<num>", k); continue; }
        }
        if (is_word(c)) { /* a whole word as it is: digits inside words stay */
            k = run(&s, 0, is_word);
            emit(&s, s.in + s.i, k);
            s.i += k;
            continue;
        }
        k = seq_len(s.in + s.i, s.n - s.i);
        emit(&s, s.in + s.i, k);
        s.i += k;
    }
    out[s.len] = '\0';
    return s.len;
}

/* ---- frame keys -------------------------------------------------------------------- */

struct key {
    char *p;
    size_t n;
};

static void key_set(struct key *k, const char *s, size_t n)
{
    n = utf8_prefix(s, n, SX_GROUPING_KEY_MAX);
    memmove(k->p, s, n);
    k->n = n;
    k->p[n] = '\0';
}

static int key_starts(const struct key *k, const char *lit)
{
    size_t l = strlen(lit);
    return k->n >= l && memcmp(k->p, lit, l) == 0;
}

static void key_drop_front(struct key *k, size_t m)
{
    if (m > k->n) m = k->n;
    memmove(k->p, k->p + m, k->n - m + 1);
    k->n -= m;
}

static int all_digits(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i])) return 0;
    return 1;
}

/* A content hash in a bundled file name: 6+ hex with a digit (main.3f9a2c1b.js) or an
 * 8-byte base64url name after '-' with a digit or an inner capital (index-DiwrgTda.js). */
static int hash_like(const char *s, size_t n, char sep)
{
    int dig = 0, hex = 1, inner_cap = 0, word = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dig |= is_digit(c);
        hex &= is_hex(c);
        word &= is_word(c) || c == '-';
        inner_cap |= i > 0 && c >= 'A' && c <= 'Z';
    }
    if (n >= 6 && hex && dig && !all_digits(s, n)) return 1;
    return sep == '-' && n == 8 && word && (inner_cap || (dig && !all_digits(s, n)));
}

static void file_key(const char *file, struct key *k)
{
    const char *s = file;
    size_t n = strlen(s);
    const char *sch = strstr(s, "://");
    if (sch) { /* scheme://host/path -> path */
        s = sch + 3;
        const char *sl = memchr(s, '/', n - (size_t)(s - file));
        s = sl ? sl : file + n;
        n = strlen(s);
    }
    size_t cut = strcspn(s, "?#");
    if (cut < n) n = cut;
    /* last two components */
    size_t slashes = 0, start = 0;
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == '/' || s[i - 1] == '\\') {
            if (++slashes == 2) {
                start = i;
                break;
            }
        }
    }
    s += start;
    n -= start;
    /* copy, dropping hash-like segments of the base name */
    char tmp[SX_GROUPING_KEY_MAX + 1];
    size_t o = 0, base = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\') base = i + 1;
    for (size_t i = 0; i < n;) {
        if (i > base && (s[i] == '.' || s[i] == '-')) {
            size_t j = i + 1;
            while (j < n && s[j] != '.' && s[j] != '-') j++;
            if (j < n && hash_like(s + i + 1, j - i - 1, s[i])) { /* never the extension */
                i = j;
                continue;
            }
        }
        size_t l = seq_len((const unsigned char *)s + i, n - i);
        if (o + l > SX_GROUPING_KEY_MAX) break;
        for (size_t j = 0; j < l; j++) tmp[o++] = s[i + j] == '\\' ? '/' : s[i + j];
        i += l;
    }
    key_set(k, tmp, o);
}

/* Drops a trailing ".<digits>"-like suffix while it matches one of Go's generated names. */
static int go_strip_suffix(struct key *k)
{
    char *dot = NULL;
    for (size_t i = k->n; i > 0; i--)
        if (k->p[i - 1] == '.') {
            dot = k->p + i - 1;
            break;
        }
    if (!dot) return 0;
    const char *t = dot + 1;
    size_t tn = k->n - (size_t)(t - k->p);
    static const char *const pre[] = {"func", "gowrap", "deferwrap"};
    for (size_t i = 0; i < SX_ARRAY_LEN(pre); i++) {
        size_t l = strlen(pre[i]);
        if (tn > l && memcmp(t, pre[i], l) == 0 && all_digits(t + l, tn - l)) goto cut;
    }
    if (all_digits(t, tn)) goto cut;
    return 0;
cut:
    k->n = (size_t)(dot - k->p);
    k->p[k->n] = '\0';
    return 1;
}

static void remove_all(struct key *k, const char *lit)
{
    size_t l = strlen(lit);
    char *p;
    while ((p = strstr(k->p, lit)) != NULL) {
        memmove(p, p + l, k->n - (size_t)(p - k->p) - l + 1);
        k->n -= l;
    }
}

static void js_fn(struct key *f)
{
    for (;;) {
        if (key_starts(f, "async ")) key_drop_front(f, 6);
        else if (key_starts(f, "new ")) key_drop_front(f, 4);
        else break;
    }
    char *star = memrchr(f->p, '*', f->n);
    if (star) key_drop_front(f, (size_t)(star - f->p) + 1);
    char *as = strstr(f->p, " [as ");
    if (as) {
        f->n = (size_t)(as - f->p);
        f->p[f->n] = '\0';
    }
    while (f->n && (f->p[f->n - 1] == '<' || f->p[f->n - 1] == '/')) f->p[--f->n] = '\0';
}

static void jvm_module(struct key *m)
{
    char *dd = strstr(m->p, "$$");
    if (dd) {
        m->n = (size_t)(dd - m->p);
        m->p[m->n] = '\0';
    }
    size_t o = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (i > 0 && m->p[i - 1] == '$' && is_digit((unsigned char)m->p[i])) { /* Foo$1 -> Foo$ */
            size_t j = i;
            while (j < m->n && is_digit((unsigned char)m->p[j])) j++;
            if (j == m->n || m->p[j] == '$' || m->p[j] == '.') {
                i = j - 1;
                continue;
            }
        }
        m->p[o++] = m->p[i];
    }
    m->n = o;
    m->p[o] = '\0';
}

static void trailing_dollar_digits(struct key *f)
{
    size_t n = f->n;
    while (n && is_digit((unsigned char)f->p[n - 1])) n--;
    if (n < f->n && n > 1 && f->p[n - 1] == '$') {
        f->n = n - 1;
        f->p[f->n] = '\0';
    }
}

/* `<Name>...` -> Name. */
static int angle_name(struct key *f)
{
    if (f->n < 3 || f->p[0] != '<') return 0;
    char *gt = memchr(f->p, '>', f->n);
    if (!gt || gt == f->p + 1) return 0;
    size_t l = (size_t)(gt - f->p) - 1;
    memmove(f->p, f->p + 1, l);
    f->n = l;
    f->p[l] = '\0';
    return 1;
}

static void dotnet_keys(struct key *m, struct key *f)
{
    /* drop trailing compiler-generated classes; an async state machine names the method */
    for (int guard = 0; guard < 4 && m->n; guard++) {
        size_t i = m->n;
        while (i > 0 && m->p[i - 1] != '.' && m->p[i - 1] != '+') i--;
        char *seg = m->p + i;
        if (seg[0] != '<') break;
        if (strcmp(f->p, "MoveNext") == 0 && seg[1] != '>') {
            struct key s = {seg, m->n - i};
            if (angle_name(&s)) key_set(f, s.p, s.n);
        }
        m->n = i ? i - 1 : 0;
        m->p[m->n] = '\0';
    }
    angle_name(f);
}

static void ruby_fn(struct key *f)
{
    for (;;) {
        if (key_starts(f, "block in ")) key_drop_front(f, 9);
        else if (key_starts(f, "rescue in ")) key_drop_front(f, 10);
        else if (key_starts(f, "ensure in ")) key_drop_front(f, 10);
        else if (key_starts(f, "block (")) {
            char *in = strstr(f->p, ") in ");
            if (!in) break;
            key_drop_front(f, (size_t)(in - f->p) + 5);
        } else break;
    }
    if (f->p[0] != '<') {
        size_t i = f->n;
        while (i > 0 && f->p[i - 1] != '#' && f->p[i - 1] != '.') i--;
        if (i > 0 && i < f->n) key_drop_front(f, i);
    }
    /* ERB: _app_views_orders_show_html_erb___1234_5678 */
    char *u = strstr(f->p, "___");
    if (u && u != f->p) {
        const char *t = u;
        while (*t == '_') t++;
        size_t d = strspn(t, "0123456789");
        if (d && t[d] == '_' && strspn(t + d + 1, "0123456789") == strlen(t + d + 1)) {
            f->n = (size_t)(u - f->p);
            f->p[f->n] = '\0';
        }
    }
}

int sx_grouping_frame_key(enum sx_st_lang lang, const struct sx_st_frame *fr, char *mod, char *fn)
{
    struct key m = {mod, 0}, f = {fn, 0};
    mod[0] = fn[0] = '\0';
    if (fr->function) key_set(&f, fr->function, strlen(fr->function));
    if (fr->module) key_set(&m, fr->module, strlen(fr->module));
    else if (fr->file) file_key(fr->file, &m);
    switch (lang) {
    case SX_ST_JS:
        js_fn(&f);
        break;
    case SX_ST_PYTHON:
        if (!strcmp(fn, "<listcomp>") || !strcmp(fn, "<dictcomp>") || !strcmp(fn, "<setcomp>") ||
            !strcmp(fn, "<genexpr>"))
            return 0;
        break;
    case SX_ST_JAVA:
        if (fr->module) jvm_module(&m);
        trailing_dollar_digits(&f);
        break;
    case SX_ST_GO:
        remove_all(&f, "[...]");
        while (go_strip_suffix(&f)) {}
        break;
    case SX_ST_DOTNET:
        dotnet_keys(&m, &f);
        break;
    case SX_ST_RUBY:
        ruby_fn(&f);
        break;
    default:
        break;
    }
    return m.n || f.n;
}

/* ---- fingerprint ------------------------------------------------------------------- */

const char *sx_grouping_rule_name(enum sx_grouping_rule rule)
{
    switch (rule) {
    case SX_GROUPING_RULE_FINGERPRINT: return "fingerprint";
    case SX_GROUPING_RULE_IN_APP_FRAMES: return "in_app_frames";
    default: return "message";
    }
}

const char *sx_grouping_default_type(enum sx_st_lang lang)
{
    switch (lang) {
    case SX_ST_PYTHON: return "Exception";
    case SX_ST_JAVA: return "java.lang.Throwable";
    case SX_ST_GO: return "panic";
    case SX_ST_RUBY: return "RuntimeError";
    case SX_ST_DOTNET: return "System.Exception";
    default: return "Error";
    }
}

static int blank(const char *s)
{
    if (!s) return 1;
    for (; *s; s++)
        if (!is_ws((unsigned char)*s)) return 0;
    return 1;
}

static const char *pick_type(const char *given, const char *parsed, enum sx_st_lang lang)
{
    if (!blank(given)) return given;
    if (!blank(parsed)) return parsed;
    return sx_grouping_default_type(lang);
}

static void upd(EVP_MD_CTX *c, int *ok, const void *p, size_t n)
{
    if (*ok && EVP_DigestUpdate(c, p, n) != 1) *ok = 0;
}

static void upd_str(EVP_MD_CTX *c, int *ok, const char *s)
{
    upd(c, ok, s, strlen(s) + 1); /* with the NUL: fields never run into each other */
}

/* Hashes the in-app frames of one exception; returns how many were hashed. */
static size_t hash_frames(EVP_MD_CTX *c, int *ok, enum sx_st_lang lang, const struct sx_st_frame *fr, size_t n)
{
    char mod[SX_GROUPING_KEY_MAX + 1], fn[SX_GROUPING_KEY_MAX + 1];
    char pmod[SX_GROUPING_KEY_MAX + 1] = "", pfn[SX_GROUPING_KEY_MAX + 1] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fr[i].in_app || !sx_grouping_frame_key(lang, &fr[i], mod, fn)) continue;
        if (used && !strcmp(mod, pmod) && !strcmp(fn, pfn)) continue; /* recursion */
        if (c) {
            upd_str(c, ok, mod);
            upd_str(c, ok, fn);
        }
        memcpy(pmod, mod, sizeof(mod));
        memcpy(pfn, fn, sizeof(fn));
        used++;
    }
    return used;
}

int sx_grouping_fingerprint(const char *fingerprint, const char *type, const char *message,
                            const struct sx_st_trace *t, struct sx_grouping *out)
{
    static const char prefix[] = "sextant-grouping " SX_GROUPING_VERSION;
    enum sx_st_lang lang = t ? t->lang : SX_ST_UNKNOWN;
    memset(out, 0, sizeof(*out));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) return SX_ERR;
    int ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
    upd(c, &ok, prefix, sizeof(prefix)); /* with the NUL */
    const char *ty = pick_type(type, t ? t->type : NULL, lang);
    size_t app = 0;
    if (t) {
        app = hash_frames(NULL, &ok, lang, t->frames, t->n);
        for (size_t i = 0; i < t->ncauses; i++) app += hash_frames(NULL, &ok, lang, t->causes[i].frames, t->causes[i].n);
    }
    if (!blank(fingerprint)) {
        out->rule = SX_GROUPING_RULE_FINGERPRINT;
        upd_str(c, &ok, "fingerprint");
        upd_str(c, &ok, fingerprint);
    } else if (app) {
        out->rule = SX_GROUPING_RULE_IN_APP_FRAMES;
        upd_str(c, &ok, "in_app_frames");
        upd_str(c, &ok, ty);
        hash_frames(c, &ok, lang, t->frames, t->n);
        for (size_t i = 0; i < t->ncauses; i++) {
            upd_str(c, &ok, "cause");
            upd_str(c, &ok, pick_type(t->causes[i].type, NULL, lang));
            hash_frames(c, &ok, lang, t->causes[i].frames, t->causes[i].n);
        }
    } else {
        out->rule = SX_GROUPING_RULE_MESSAGE;
        const char *msg = message ? message : (t ? t->message : "");
        char norm[SX_GROUPING_MSG_MAX + 1];
        sx_grouping_normalize_message(msg, strlen(msg), norm, sizeof(norm));
        upd_str(c, &ok, "message");
        upd_str(c, &ok, ty);
        upd_str(c, &ok, norm);
    }
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (ok && (EVP_DigestFinal_ex(c, digest, &len) != 1 || len < SX_GROUPING_HASH_LEN)) ok = 0;
    EVP_MD_CTX_free(c);
    if (!ok) {
        memset(out, 0, sizeof(*out));
        return SX_ERR;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out->hash, digest, SX_GROUPING_HASH_LEN);
    for (size_t i = 0; i < SX_GROUPING_HASH_LEN; i++) {
        out->hex[2 * i] = hex[digest[i] >> 4];
        out->hex[2 * i + 1] = hex[digest[i] & 15];
    }
    out->hex[2 * SX_GROUPING_HASH_LEN] = '\0';
    return SX_OK;
}

/* ---- title, culprit ------------------------------------------------------------------ */

struct outbuf {
    char *p;
    size_t len, cap;
    int full;
};

/* Appends what fits, whole UTF-8 sequences only; once something did not fit, nothing more. */
static void out_add(struct outbuf *o, const char *s, size_t n)
{
    if (o->full) return;
    size_t k = utf8_prefix(s, n, o->cap - 1 - o->len);
    memcpy(o->p + o->len, s, k);
    o->len += k;
    o->full = k < n;
    o->p[o->len] = '\0';
}

size_t sx_grouping_title(const char *type, const char *message, char *out, size_t outlen)
{
    if (outlen == 0) return 0;
    struct outbuf o = {out, 0, outlen, 0};
    out[0] = '\0';
    const char *m = message ? message : "";
    while (is_ws((unsigned char)*m)) m++;
    size_t mn = strcspn(m, "\r\n");
    while (mn && is_ws((unsigned char)m[mn - 1])) mn--;
    int ht = !blank(type);
    if (ht) out_add(&o, type, strlen(type));
    if (ht && mn) out_add(&o, ": ", 2);
    if (mn) out_add(&o, m, mn);
    if (!ht && !mn) out_add(&o, "Error", 5);
    return o.len;
}

static const struct sx_st_frame *top_in_app(const struct sx_st_frame *fr, size_t n)
{
    for (size_t i = n; i > 0; i--)
        if (fr[i - 1].in_app) return &fr[i - 1];
    return NULL;
}

size_t sx_grouping_culprit(const struct sx_st_trace *t, char *out, size_t outlen)
{
    if (outlen == 0) return 0;
    out[0] = '\0';
    if (!t) return 0;
    const struct sx_st_frame *f = top_in_app(t->frames, t->n);
    for (size_t i = 0; !f && i < t->ncauses; i++) f = top_in_app(t->causes[i].frames, t->causes[i].n);
    if (!f && t->n) f = &t->frames[t->n - 1];
    if (!f) return 0;
    char mod[SX_GROUPING_KEY_MAX + 1], fn[SX_GROUPING_KEY_MAX + 1];
    sx_grouping_frame_key(t->lang, f, mod, fn);
    struct outbuf o = {out, 0, outlen, 0};
    out_add(&o, mod, strlen(mod));
    if (mod[0] && fn[0]) out_add(&o, " in ", 4);
    out_add(&o, fn, strlen(fn));
    return o.len;
}

int sx_grouping_split_message(const char *stack, size_t n, enum sx_st_lang hint, struct sx_arena *a,
                              const char **type, const char **message)
{
    struct sx_st_trace t;
    int rc = sx_st_parse(stack, n, hint, NULL, a, &t);
    *type = t.type;
    *message = t.message;
    return rc;
}
