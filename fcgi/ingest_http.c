/* ingest_http.c: pure request-parsing helpers of sextant-ingest; see ingest_http.h. */
#include "ingest_http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims blanks around [*s, *s + *n). */
static void trim_span(const char **s, size_t *n)
{
    while (*n && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_blank((*s)[*n - 1])) (*n)--;
}

/* Case-insensitive equality of a span with a NUL-terminated word. */
static int span_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

enum sx_ingest_route sx_ingest_route_parse(const char *path)
{
    if (!path) return SX_INGEST_ROUTE_NONE;
    if (strcmp(path, "/v1/traces") == 0) return SX_INGEST_ROUTE_TRACES;
    if (strcmp(path, "/v1/logs") == 0) return SX_INGEST_ROUTE_LOGS;
    if (strcmp(path, "/v1/metrics") == 0) return SX_INGEST_ROUTE_METRICS;
    return SX_INGEST_ROUTE_NONE;
}

enum sx_ingest_ctype sx_ingest_ctype_parse(const char *ct)
{
    if (!ct) return SX_INGEST_CT_UNKNOWN;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    trim_span(&ct, &n);
    if (span_is(ct, n, "application/x-protobuf") || span_is(ct, n, "application/protobuf"))
        return SX_INGEST_CT_PROTOBUF;
    if (span_is(ct, n, "application/json")) return SX_INGEST_CT_JSON;
    return SX_INGEST_CT_UNKNOWN;
}

enum sx_ingest_cenc sx_ingest_cenc_parse(const char *ce)
{
    if (!ce) return SX_INGEST_CE_IDENTITY;
    size_t n = strlen(ce);
    trim_span(&ce, &n);
    if (n == 0 || span_is(ce, n, "identity") || span_is(ce, n, "none")) return SX_INGEST_CE_IDENTITY;
    if (span_is(ce, n, "gzip") || span_is(ce, n, "x-gzip")) return SX_INGEST_CE_GZIP;
    return SX_INGEST_CE_UNKNOWN;
}

int sx_ingest_key_extract(const char *x_api_key, const char *authorization, const char **key, size_t *len)
{
    *key = NULL;
    *len = 0;
    if (x_api_key) {
        const char *s = x_api_key;
        size_t n = strlen(s);
        trim_span(&s, &n);
        if (n) {
            *key = s;
            *len = n;
            return SX_OK;
        }
    }
    if (authorization) {
        const char *s = authorization;
        size_t n = strlen(s);
        trim_span(&s, &n);
        if (n > 7 && strncasecmp(s, "bearer", 6) == 0 && is_blank(s[6])) {
            s += 7;
            n -= 7;
            trim_span(&s, &n);
            if (n) {
                *key = s;
                *len = n;
                return SX_OK;
            }
        }
    }
    return SX_ERR;
}

/* Parses a positive decimal integer that fits a long long at [*p, end) up to
 * the next blank; advances *p past it. */
static int parse_id(const char **p, const char *end, long long *out)
{
    const char *s = *p;
    long long v = 0;
    if (s == end || *s < '0' || *s > '9') return SX_ERR;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (0x7fffffffffffffffLL - 9) / 10) return SX_ERR;
        v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return SX_OK;
}

int sx_ingest_key_cache_parse(const char *s, size_t n, struct sx_ingest_key *out)
{
    const char *end = s + n;
    memset(out, 0, sizeof(*out));
    if (span_is(s, n, "none")) {
        out->state = SX_INGEST_KEY_NONE;
        return SX_OK;
    }
    if (parse_id(&s, end, &out->project_id) != SX_OK) return SX_ERR;
    if (s == end || *s++ != ' ') return SX_ERR;
    if (parse_id(&s, end, &out->key_id) != SX_OK) return SX_ERR;
    if (s == end || *s++ != ' ') return SX_ERR;
    size_t rest = (size_t)(end - s);
    if (span_is(s, rest, "active"))
        out->state = SX_INGEST_KEY_ACTIVE;
    else if (span_is(s, rest, "revoked"))
        out->state = SX_INGEST_KEY_REVOKED;
    else if (span_is(s, rest, "suspended"))
        out->state = SX_INGEST_KEY_SUSPENDED;
    else
        return SX_ERR;
    return SX_OK;
}

int sx_ingest_key_cache_format(const struct sx_ingest_key *k, char *out, size_t outlen)
{
    const char *state;
    int n;
    switch (k->state) {
    case SX_INGEST_KEY_ACTIVE: state = "active"; break;
    case SX_INGEST_KEY_REVOKED: state = "revoked"; break;
    case SX_INGEST_KEY_SUSPENDED: state = "suspended"; break;
    default: state = NULL; break;
    }
    if (!state) {
        if (outlen < sizeof("none")) return SX_ERR;
        memcpy(out, "none", sizeof("none"));
        return (int)sizeof("none") - 1;
    }
    n = snprintf(out, outlen, "%lld %lld %s", k->project_id, k->key_id, state);
    if (n < 0 || (size_t)n >= outlen) return SX_ERR;
    return n;
}

int sx_ingest_parse_length(const char *s, unsigned long long *out)
{
    *out = 0;
    if (!s || !*s) return SX_AGAIN;
    unsigned long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return SX_ERR;
        if (v > (1ULL << 62) / 10) return SX_ERR;
        v = v * 10 + (unsigned)(*p - '0');
    }
    *out = v;
    return SX_OK;
}

/* Appends "<n> <what>" to out at *off, separated by ", ". */
static void add_count(char *out, size_t outlen, size_t *off, size_t n, const char *what)
{
    if (!n || *off >= outlen) return;
    int w = snprintf(out + *off, outlen - *off, "%s%zu %s", *off ? ", " : "", n, what);
    if (w > 0) *off = SX_MIN(outlen - 1, *off + (size_t)w);
}

int sx_ingest_partial_message(const struct sx_otlp_stats *st, char *out, size_t outlen)
{
    char counts[256];
    size_t off = 0;

    if (outlen) out[0] = '\0';
    counts[0] = '\0';
    add_count(counts, sizeof(counts), &off, st->spans_rejected, "spans rejected");
    add_count(counts, sizeof(counts), &off, st->metrics_dropped, "metrics dropped");
    add_count(counts, sizeof(counts), &off, st->bodies_truncated, "log bodies truncated");
    add_count(counts, sizeof(counts), &off, st->attrs_dropped, "attributes dropped");
    add_count(counts, sizeof(counts), &off, st->values_truncated, "values truncated");
    add_count(counts, sizeof(counts), &off, st->events_dropped, "events dropped");
    add_count(counts, sizeof(counts), &off, st->links_dropped, "links dropped");
    if (!off) return 0;
    /* The validator's reason already names what it dropped; the counts
     * stand in when it gave none. */
    snprintf(out, outlen, "%s", st->reason[0] ? st->reason : counts);
    return 1;
}
