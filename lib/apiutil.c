/* apiutil.c: pure helpers of the JSON API; see apiutil.h. */
#include "apiutil.h"

#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- URL decoding and query strings ------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sx_api_url_decode(const char *s, size_t n, char *out, size_t *outlen, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (n - i < 3) return SX_ERR;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return SX_ERR;
            c = (char)((hi << 4) | lo);
            if (c == '\0') return SX_ERR;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '\0') {
            return SX_ERR;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    if (outlen) *outlen = o;
    return SX_OK;
}

int sx_api_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        size_t len = sx_utf8_seq_len(s + i, n - i);
        if (!len) return 0;
        i += len;
    }
    return 1;
}

/* Copies at most 40 bytes of a raw (undecoded) name for an error message. */
static void raw_name(const char *s, size_t n, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.*s", (int)SX_MIN(n, (size_t)40), s);
}

int sx_api_query_parse(struct sx_arena *a, const char *qs, size_t max_params, struct sx_api_query *q, char *err,
                       size_t errlen)
{
    char name[48];
    size_t count = 0;
    q->params = NULL;
    q->n = 0;
    if (!qs || !*qs) return SX_OK;

    /* First pass: count non-empty pairs so the array is allocated once. */
    for (const char *p = qs; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) count++;
        p += len + (amp ? 1 : 0);
    }
    if (count > max_params) {
        snprintf(err, errlen, "too many query parameters (at most %zu)", max_params);
        return SX_ERR;
    }
    if (count == 0) return SX_OK;
    q->params = sx_arena_calloc(a, count, sizeof(*q->params));
    if (!q->params) goto oom;

    for (const char *p = qs; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            size_t vlen = eq ? len - klen - 1 : 0;
            char *k = sx_arena_alloc(a, klen + 1);
            char *v = sx_arena_alloc(a, vlen + 1);
            if (!k || !v) goto oom;
            size_t kn, vn;
            if (sx_api_url_decode(p, klen, k, &kn, 1) != SX_OK || !sx_api_utf8_valid(k, kn)) {
                raw_name(p, klen, name, sizeof(name));
                snprintf(err, errlen, "invalid percent-encoding or UTF-8 in parameter name '%s'", name);
                return SX_ERR;
            }
            if (sx_api_url_decode(eq ? eq + 1 : "", vlen, v, &vn, 1) != SX_OK || !sx_api_utf8_valid(v, vn)) {
                snprintf(err, errlen, "invalid percent-encoding or UTF-8 in the value of parameter '%.40s'", k);
                return SX_ERR;
            }
            q->params[q->n].key = k;
            q->params[q->n].value = v;
            q->n++;
        }
        p += len + (amp ? 1 : 0);
    }
    return SX_OK;
oom:
    snprintf(err, errlen, "query string too large");
    return SX_ERR;
}

const char *sx_api_query_get(const struct sx_api_query *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->params[i].key, key) == 0) return q->params[i].value;
    return NULL;
}

size_t sx_api_query_count(const struct sx_api_query *q, const char *key)
{
    size_t c = 0;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->params[i].key, key) == 0) c++;
    return c;
}

/* ---- numbers and times ------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int sx_api_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    int neg = 0;
    long long v = 0;
    size_t digits = 0;
    if (!s) return SX_ERR;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    for (; is_digit(*s); s++) {
        if (++digits > 18) return SX_ERR; /* keeps v far from overflow */
        v = v * 10 + (*s - '0');
    }
    if (digits == 0 || *s) return SX_ERR;
    if (neg) v = -v;
    if (v < lo || v > hi) return SX_ERR;
    *out = v;
    return SX_OK;
}

int sx_api_parse_ms(const char *s, int64_t *ns)
{
    int64_t ip = 0, frac = 0, scale = 100000; /* first fraction digit is 100000 ns */
    size_t digits = 0;
    if (!s) return SX_ERR;
    for (; is_digit(*s); s++) {
        if (++digits > 13) return SX_ERR;
        ip = ip * 10 + (*s - '0');
    }
    if (digits == 0) return SX_ERR;
    if (*s == '.') {
        s++;
        if (!is_digit(*s)) return SX_ERR;
        for (; is_digit(*s); s++) {
            frac += (*s - '0') * scale; /* digits past nanoseconds are dropped */
            scale /= 10;
        }
    }
    if (*s) return SX_ERR;
    if (ip > 1000000000000LL || (ip == 1000000000000LL && frac)) return SX_ERR;
    *ns = ip * 1000000 + frac;
    return SX_OK;
}

/* Reads exactly n digits at *s, advancing it; -1 when they are not digits. */
static int fixed_digits(const char **s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (!is_digit(c)) return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    return v;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_rfc3339(const char *s, int64_t *ns)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, off = 0;
    int64_t frac = 0;

    if ((y = fixed_digits(&s, 4)) < 0 || *s++ != '-') return SX_ERR;
    if ((mo = fixed_digits(&s, 2)) < 0 || *s++ != '-') return SX_ERR;
    if ((d = fixed_digits(&s, 2)) < 0) return SX_ERR;
    if (*s != 'T' && *s != 't' && *s != ' ') return SX_ERR;
    s++;
    if ((h = fixed_digits(&s, 2)) < 0 || *s++ != ':') return SX_ERR;
    if ((mi = fixed_digits(&s, 2)) < 0 || *s++ != ':') return SX_ERR;
    if ((se = fixed_digits(&s, 2)) < 0) return SX_ERR;
    if (*s == '.') {
        int64_t scale = 100000000;
        s++;
        if (!is_digit(*s)) return SX_ERR;
        for (; is_digit(*s); s++) {
            frac += (*s - '0') * scale;
            scale /= 10;
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1;
        int oh, om;
        if ((oh = fixed_digits(&s, 2)) < 0 || *s++ != ':') return SX_ERR;
        if ((om = fixed_digits(&s, 2)) < 0) return SX_ERR;
        if (oh > 23 || om > 59) return SX_ERR;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return SX_ERR;
    }
    if (*s) return SX_ERR;
    if (mo < 1 || mo > 12 || d < 1) return SX_ERR;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y))) return SX_ERR;
    if (h > 23 || mi > 59 || se > 60) return SX_ERR; /* 60: a leap second */

    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    /* Unix nanoseconds fit in int64 from 1677-09-21 to 2262-04-11. */
    if (secs <= INT64_MIN / 1000000000 || secs >= INT64_MAX / 1000000000) return SX_ERR;
    *ns = secs * 1000000000 + frac;
    return SX_OK;
}

int sx_api_parse_time(const char *s, int64_t *ns)
{
    if (!s || !*s) return SX_ERR;
    size_t n = strlen(s);
    if (strspn(s, "0123456789") == n) {
        long long ms;
        if (n > 15 || sx_api_parse_int(s, 0, INT64_MAX / 1000000, &ms) != SX_OK) return SX_ERR;
        *ns = (int64_t)ms * 1000000;
        return SX_OK;
    }
    return parse_rfc3339(s, ns);
}

int sx_api_parse_range(const char *s, int64_t *ns)
{
    const int64_t second = 1000000000LL, max = 400LL * 86400 * second;
    int64_t v = 0, unit;
    size_t digits = 0;
    if (!s) return SX_ERR;
    for (; is_digit(*s); s++) {
        if (++digits > 9) return SX_ERR;
        v = v * 10 + (*s - '0');
    }
    if (digits == 0 || v == 0) return SX_ERR;
    switch (*s) {
    case 's': unit = second; break;
    case 'm': unit = 60 * second; break;
    case 'h': unit = 3600 * second; break;
    case 'd': unit = 86400 * second; break;
    case 'w': unit = 7 * 86400 * second; break;
    default: return SX_ERR;
    }
    if (s[1] || v > max / unit) return SX_ERR;
    *ns = v * unit;
    return SX_OK;
}

int sx_api_time_window(const char *from, const char *to, const char *range, int64_t now_ns, int64_t default_range_ns,
                       struct sx_api_window *w, char *err, size_t errlen)
{
    int64_t r = default_range_ns;
    if (from && !*from) from = NULL;
    if (to && !*to) to = NULL;
    if (range && !*range) range = NULL;

    if (from && range) {
        snprintf(err, errlen, "timeRange cannot be combined with from");
        return SX_ERR;
    }
    w->to_ns = now_ns;
    if (to && sx_api_parse_time(to, &w->to_ns) != SX_OK) {
        snprintf(err, errlen, "invalid to: expected RFC 3339 (2026-01-01T00:00:00Z) or unix milliseconds");
        return SX_ERR;
    }
    if (from) {
        if (sx_api_parse_time(from, &w->from_ns) != SX_OK) {
            snprintf(err, errlen, "invalid from: expected RFC 3339 (2026-01-01T00:00:00Z) or unix milliseconds");
            return SX_ERR;
        }
    } else {
        if (range && sx_api_parse_range(range, &r) != SX_OK) {
            snprintf(err, errlen, "invalid timeRange: expected a duration like 15m, 1h, 24h or 7d");
            return SX_ERR;
        }
        w->from_ns = w->to_ns >= INT64_MIN + r ? w->to_ns - r : INT64_MIN;
    }
    if (w->from_ns > w->to_ns) {
        snprintf(err, errlen, "invalid from: it is after to");
        return SX_ERR;
    }
    return SX_OK;
}

/* ---- base64url and cursors ---------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t sx_api_b64url_encode(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long sx_api_b64url_decode(const char *s, size_t slen, uint8_t *out, size_t outcap)
{
    if (slen % 4 == 1) return SX_ERR;
    size_t need = slen / 4 * 3 + (slen % 4 ? slen % 4 - 1 : 0);
    if (need > outcap) return SX_ERR;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = b64val(s[i]);
        if (v < 0) return SX_ERR;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return SX_ERR; /* non-canonical: leftover bits must be zero */
    return (long)o;
}

#define CURSOR_BYTES 26
#define CURSOR_VERSION 1

static uint8_t cursor_check(const uint8_t *b)
{
    uint8_t c = 0xA5;
    for (size_t i = 0; i < CURSOR_BYTES - 1; i++) c = (uint8_t)((c << 1 | c >> 7) ^ b[i]);
    return c;
}

void sx_api_cursor_encode(int64_t start_ns, const uint8_t trace_id[16], char *out)
{
    uint8_t b[CURSOR_BYTES];
    uint64_t u = (uint64_t)start_ns;
    b[0] = CURSOR_VERSION;
    for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    memcpy(b + 9, trace_id, 16);
    b[25] = cursor_check(b);
    sx_api_b64url_encode(b, sizeof(b), out);
}

int sx_api_cursor_decode(const char *s, int64_t *start_ns, uint8_t trace_id[16])
{
    uint8_t b[CURSOR_BYTES];
    if (!s || strlen(s) != SX_API_CURSOR_LEN) return SX_ERR;
    if (sx_api_b64url_decode(s, SX_API_CURSOR_LEN, b, sizeof(b)) != CURSOR_BYTES) return SX_ERR;
    if (b[0] != CURSOR_VERSION || b[25] != cursor_check(b)) return SX_ERR;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = (u << 8) | b[1 + i];
    *start_ns = (int64_t)u;
    memcpy(trace_id, b + 9, 16);
    return SX_OK;
}

/* ---- waterfall ----------------------------------------------------------------
 *
 * Design: two sorted copies of the span keys. One sorted by (span id, start,
 * position) finds a parent by binary search; the earliest span of a
 * duplicated id is the one children attach to. One sorted by (start, span id,
 * position) gives every list its order: children are bucketed (CSR arrays)
 * while walking it, so each sibling list comes out sorted. Each span has at
 * most one parent, so it sits in at most one child list; a visited flag set
 * on push stops cycles. Everything is iterative (a 10,000-deep chain is fine). */

struct wf_key {
    uint8_t id[8];
    int64_t start;
    size_t idx;
};

static int cmp_by_id(const void *a, const void *b)
{
    const struct wf_key *x = a, *y = b;
    int c = memcmp(x->id, y->id, 8);
    if (c) return c;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_by_start(const void *a, const void *b)
{
    const struct wf_key *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    int c = memcmp(x->id, y->id, 8);
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Index of the earliest span with this id, or SIZE_MAX. */
static size_t find_span(const struct wf_key *byid, size_t n, const uint8_t id[8])
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* lower bound */
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(byid[mid].id, id, 8) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n && memcmp(byid[lo].id, id, 8) == 0) return byid[lo].idx;
    return SIZE_MAX;
}

#define WF_ROOT SIZE_MAX
#define WF_ORPHAN (SIZE_MAX - 1)

/* Emits the tree under top (not yet visited) depth-first at depth 0. */
static void wf_walk(size_t top, const size_t *child_off, const size_t *children, unsigned char *visited,
                    size_t *stack, uint32_t *sdepth, size_t *order, size_t *emitted, uint32_t *depth)
{
    size_t sp = 0;
    visited[top] = 1;
    stack[sp] = top;
    sdepth[sp++] = 0;
    while (sp) {
        sp--;
        size_t v = stack[sp];
        uint32_t d = sdepth[sp];
        order[(*emitted)++] = v;
        depth[v] = d;
        /* Push in reverse so the earliest child is emitted first. */
        for (size_t k = child_off[v + 1]; k > child_off[v]; k--) {
            size_t c = children[k - 1];
            if (visited[c]) continue;
            visited[c] = 1;
            stack[sp] = c;
            sdepth[sp++] = d + 1;
        }
    }
}

int sx_api_waterfall(struct sx_arena *a, const struct sx_api_wf_span *spans, size_t n, size_t *order,
                     uint32_t *depth)
{
    if (n == 0) return SX_OK;
    struct wf_key *byid = sx_arena_alloc(a, n * sizeof(*byid));
    struct wf_key *bystart = sx_arena_alloc(a, n * sizeof(*bystart));
    size_t *parent = sx_arena_alloc(a, n * sizeof(*parent));
    size_t *child_off = sx_arena_calloc(a, n + 2, sizeof(*child_off));
    size_t *children = sx_arena_alloc(a, n * sizeof(*children));
    size_t *stack = sx_arena_alloc(a, n * sizeof(*stack));
    uint32_t *sdepth = sx_arena_alloc(a, n * sizeof(*sdepth));
    unsigned char *visited = sx_arena_calloc(a, n, 1);
    if (!byid || !bystart || !parent || !child_off || !children || !stack || !sdepth || !visited) return SX_ERR;

    for (size_t i = 0; i < n; i++) {
        memcpy(byid[i].id, spans[i].span_id, 8);
        byid[i].start = spans[i].start_ns;
        byid[i].idx = i;
    }
    memcpy(bystart, byid, n * sizeof(*byid));
    qsort(byid, n, sizeof(*byid), cmp_by_id);
    qsort(bystart, n, sizeof(*bystart), cmp_by_start);

    for (size_t i = 0; i < n; i++) {
        if (!spans[i].has_parent) {
            parent[i] = WF_ROOT;
            continue;
        }
        size_t p = find_span(byid, n, spans[i].parent_id);
        /* A span naming itself as parent is reached by nothing: an orphan. */
        parent[i] = (p == SIZE_MAX || p == i) ? WF_ORPHAN : p;
    }

    /* CSR child lists: count, prefix-sum, then fill in start order. */
    for (size_t i = 0; i < n; i++)
        if (parent[i] < WF_ORPHAN) child_off[parent[i] + 2]++;
    for (size_t i = 2; i < n + 2; i++) child_off[i] += child_off[i - 1];
    for (size_t k = 0; k < n; k++) {
        size_t i = bystart[k].idx;
        if (parent[i] < WF_ORPHAN) children[child_off[parent[i] + 1]++] = i;
    }
    /* child_off[v]..child_off[v+1] now spans v's children. */

    size_t emitted = 0;
    for (size_t k = 0; k < n; k++) { /* true roots */
        size_t i = bystart[k].idx;
        if (parent[i] == WF_ROOT && !visited[i])
            wf_walk(i, child_off, children, visited, stack, sdepth, order, &emitted, depth);
    }
    for (size_t k = 0; k < n; k++) { /* orphans */
        size_t i = bystart[k].idx;
        if (parent[i] == WF_ORPHAN && !visited[i])
            wf_walk(i, child_off, children, visited, stack, sdepth, order, &emitted, depth);
    }
    for (size_t k = 0; k < n; k++) { /* cycles: whatever no root or orphan reached */
        size_t i = bystart[k].idx;
        if (!visited[i]) wf_walk(i, child_off, children, visited, stack, sdepth, order, &emitted, depth);
    }
    return emitted == n ? SX_OK : SX_ERR;
}

/* ---- logs --------------------------------------------------------------------- */

int sx_api_severity_parse(const char *s, int *number)
{
    static const struct {
        const char *name;
        int base;
    } names[] = {{"TRACE", 1}, {"DEBUG", 5}, {"INFO", 9}, {"WARNING", 13}, {"WARN", 13}, {"ERROR", 17}, {"FATAL", 21}};
    long long n;
    if (!s || !*s) return SX_ERR;
    if (s[0] >= '0' && s[0] <= '9') {
        if (sx_api_parse_int(s, 1, 24, &n) != SX_OK) return SX_ERR;
        *number = (int)n;
        return SX_OK;
    }
    for (size_t i = 0; i < SX_ARRAY_LEN(names); i++) {
        size_t len = strlen(names[i].name);
        if (strncasecmp(s, names[i].name, len) != 0) continue;
        if (s[len] == '\0') {
            *number = names[i].base;
            return SX_OK;
        }
        if (s[len] >= '2' && s[len] <= '4' && s[len + 1] == '\0') {
            *number = names[i].base + (s[len] - '1');
            return SX_OK;
        }
    }
    return SX_ERR;
}

static int search_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int sx_api_search_check(const char *q, struct sx_api_search *out, char *err, size_t errlen)
{
    struct sx_api_search s = {0, 0, 0};
    size_t len = q ? strlen(q) : 0;
    const char *p = q, *end = q + len;

    if (len == 0) {
        snprintf(err, errlen, "invalid q: empty");
        return SX_ERR;
    }
    if (len > SX_API_SEARCH_MAX_LEN) {
        snprintf(err, errlen, "invalid q: longer than %d bytes", SX_API_SEARCH_MAX_LEN);
        return SX_ERR;
    }
    if (!sx_api_utf8_valid(q, len)) {
        snprintf(err, errlen, "invalid q: not valid UTF-8");
        return SX_ERR;
    }
    while (p < end) {
        int neg = 0;
        if (search_space(*p)) {
            p++;
            continue;
        }
        if (*p == '-' && p + 1 < end && !search_space(p[1])) {
            neg = 1;
            p++;
        }
        const char *t0;
        int phrase = *p == '"';
        if (phrase) {
            t0 = ++p;
            while (p < end && *p != '"') p++;
            const char *t1 = p;
            if (p < end) p++; /* the closing quote */
            while (t0 < t1 && search_space(*t0)) t0++;
            if (t0 == t1) continue; /* "" holds nothing */
        } else {
            t0 = p;
            while (p < end && !search_space(*p) && *p != '"') p++;
            /* "or" between terms is an operator of websearch_to_tsquery */
            if (!neg && p - t0 == 2 && strncasecmp(t0, "or", 2) == 0) continue;
        }
        if (s.words + s.phrases + s.excluded == SX_API_SEARCH_MAX_TERMS) {
            snprintf(err, errlen, "invalid q: more than %d terms", SX_API_SEARCH_MAX_TERMS);
            return SX_ERR;
        }
        if (neg) s.excluded++;
        else if (phrase) s.phrases++;
        else s.words++;
    }
    if (s.words + s.phrases == 0) {
        snprintf(err, errlen, "invalid q: needs a word or \"phrase\" that is not excluded");
        return SX_ERR;
    }
    if (out) *out = s;
    return SX_OK;
}

/* Marker in the id bytes of a log cursor (bytes 6..14 zero, 15 this). */
#define LOG_CURSOR_MARK 0x4c

void sx_api_log_cursor_encode(int64_t time_ns, uint32_t block, uint16_t offset, char *out)
{
    uint8_t id[16];
    memset(id, 0, sizeof(id));
    id[0] = (uint8_t)(block >> 24);
    id[1] = (uint8_t)(block >> 16);
    id[2] = (uint8_t)(block >> 8);
    id[3] = (uint8_t)block;
    id[4] = (uint8_t)(offset >> 8);
    id[5] = (uint8_t)offset;
    id[15] = LOG_CURSOR_MARK;
    sx_api_cursor_encode(time_ns, id, out);
}

int sx_api_log_cursor_decode(const char *s, int64_t *time_ns, uint32_t *block, uint16_t *offset)
{
    uint8_t id[16];
    if (sx_api_cursor_decode(s, time_ns, id) != SX_OK || id[15] != LOG_CURSOR_MARK) return SX_ERR;
    for (int i = 6; i < 15; i++)
        if (id[i]) return SX_ERR;
    *block = ((uint32_t)id[0] << 24) | ((uint32_t)id[1] << 16) | ((uint32_t)id[2] << 8) | id[3];
    *offset = (uint16_t)(((unsigned)id[4] << 8) | id[5]);
    return SX_OK;
}

/* ---- user agents --------------------------------------------------------------- */

void sx_api_user_agent(const char *ua, char *browser, size_t blen, char *os, size_t olen)
{
    static const struct {
        const char *token, *name;
    } browsers[] = {
        {"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"OPR/", "Opera"},
        {"SamsungBrowser/", "Samsung Internet"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
        {"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"MSIE ", "Internet Explorer"},
    };
    static const struct {
        const char *token, *name;
    } systems[] = {
        {"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iOS"}, {"iPod", "iOS"},
        {"CrOS", "Chrome OS"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
    };
    const char *name = NULL, *ver = NULL;
    if (!ua) ua = "";
    for (size_t i = 0; i < SX_ARRAY_LEN(browsers) && !name; i++) {
        const char *p = strstr(ua, browsers[i].token);
        if (p) {
            name = browsers[i].name;
            ver = p + strlen(browsers[i].token);
        }
    }
    if (!name && strstr(ua, "Safari/") && (ver = strstr(ua, "Version/"))) {
        name = "Safari";
        ver += strlen("Version/");
    }
    size_t digits = ver ? strspn(ver, "0123456789") : 0;
    if (!name) snprintf(browser, blen, "Other");
    else if (digits == 0 || digits > 6) snprintf(browser, blen, "%s", name);
    else snprintf(browser, blen, "%s %.*s", name, (int)digits, ver);
    const char *sys = "Other";
    for (size_t i = 0; i < SX_ARRAY_LEN(systems); i++)
        if (strstr(ua, systems[i].token)) {
            sys = systems[i].name;
            break;
        }
    snprintf(os, olen, "%s", sys);
}
