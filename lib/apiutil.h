/* apiutil.h: pure helpers of the JSON API (no FastCGI, no PostgreSQL):
 * URL decoding, query strings, time filters, page cursors and the order of a
 * trace's waterfall. Everything here is bytes in, values or SX_ERR out. */
#ifndef SX_APIUTIL_H
#define SX_APIUTIL_H

#include "arena.h"
#include "sx.h"

/* ---- URL decoding and query strings --------------------------------------- */

/* Decodes n bytes of s ('%XX' escapes; '+' becomes a space when plus_space is
 * nonzero) into out, which must hold n + 1 bytes, and NUL-terminates it.
 * *outlen gets the decoded length. SX_ERR on a '%' not followed by two hex
 * digits, or on an escape that decodes to NUL (values are C strings). */
int sx_api_url_decode(const char *s, size_t n, char *out, size_t *outlen, int plus_space);

/* Nonzero when the n bytes at s are valid UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF): PostgreSQL rejects anything else in text. */
int sx_api_utf8_valid(const char *s, size_t n);

struct sx_api_param {
    const char *key;   /* decoded, NUL-terminated (arena memory) */
    const char *value; /* decoded; "" when the pair had no '=' */
};

struct sx_api_query {
    struct sx_api_param *params; /* in the order given; keys may repeat */
    size_t n;
};

/* Parses a query string ("a=1&b=x+y&attr=k%3Dv", without the '?') into q,
 * allocating from a. Empty pairs ("a=1&&b") are skipped. At most max_params
 * pairs. Returns SX_OK, or SX_ERR with a message in err naming the parameter
 * (bad escape, invalid UTF-8, too many parameters, arena exhausted). q lives until the arena
 * is reset. */
int sx_api_query_parse(struct sx_arena *a, const char *qs, size_t max_params, struct sx_api_query *q, char *err,
                       size_t errlen);

/* First value of key, or NULL when absent. */
const char *sx_api_query_get(const struct sx_api_query *q, const char *key);

/* How many times key occurs. */
size_t sx_api_query_count(const struct sx_api_query *q, const char *key);

/* ---- numbers and times ------------------------------------------------------- */

/* Parses a whole decimal integer in [lo, hi]; SX_ERR otherwise (no sign other
 * than a leading '-', no spaces, no trailing bytes). */
int sx_api_parse_int(const char *s, long long lo, long long hi, long long *out);

/* Parses a non-negative number of milliseconds ("250", "0.5") into
 * nanoseconds; SX_ERR when not a finite number in [0, 1e12] ms. */
int sx_api_parse_ms(const char *s, int64_t *ns);

/* Parses a point in time into unix nanoseconds: RFC 3339
 * ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00.5+01:00"; 't', 'z' and a space
 * separator are accepted too) or unix milliseconds ("1767225600000").
 * SX_ERR when malformed, a field is out of range or the result does not fit. */
int sx_api_parse_time(const char *s, int64_t *ns);

/* Parses a relative range "<n><unit>" with unit s, m, h, d or w ("15m", "1h",
 * "24h", "7d") into nanoseconds; SX_ERR unless 0 < range <= 400 days. */
int sx_api_parse_range(const char *s, int64_t *ns);

/* A resolved [from_ns, to_ns] window (both inclusive). */
struct sx_api_window {
    int64_t from_ns;
    int64_t to_ns;
};

/* Resolves the time filters of a request. Any of from, to, range may be NULL
 * or "" (absent). to defaults to now_ns; from defaults to to minus range, or
 * to minus default_range_ns when range is absent too. from together with
 * range, a malformed value, or from after to give SX_ERR with a message in err
 * that names the parameter. */
int sx_api_time_window(const char *from, const char *to, const char *range, int64_t now_ns, int64_t default_range_ns,
                       struct sx_api_window *w, char *err, size_t errlen);

/* ---- page cursors ------------------------------------------------------------- */

/* Characters of an encoded cursor (without the NUL). */
#define SX_API_CURSOR_LEN 35

/* Encodes the position (start time, trace id) of the last row of a page as an
 * opaque base64url string (version byte, big-endian time, id, check byte).
 * out must hold SX_API_CURSOR_LEN + 1 bytes. */
void sx_api_cursor_encode(int64_t start_ns, const uint8_t trace_id[16], char *out);

/* Decodes a cursor made by sx_api_cursor_encode; SX_ERR for anything else
 * (wrong length, alphabet, version or check byte). */
int sx_api_cursor_decode(const char *s, int64_t *start_ns, uint8_t trace_id[16]);

/* base64url without padding: encodes n bytes into out (4 * n / 3 rounded up,
 * plus a NUL) and returns the length written. */
size_t sx_api_b64url_encode(const uint8_t *p, size_t n, char *out);

/* Decodes unpadded base64url of slen characters into out (at most outcap
 * bytes); returns the decoded length or SX_ERR (bad character, impossible
 * length, non-zero trailing bits, too long). */
long sx_api_b64url_decode(const char *s, size_t slen, uint8_t *out, size_t outcap);

/* ---- logs ------------------------------------------------------------------ */

/* Parses a minimum severity: a name TRACE, DEBUG, INFO, WARN (or WARNING),
 * ERROR, FATAL, optionally followed by 2-4 (case-insensitive), or a number
 * 1..24, into the OTLP severity number (TRACE 1, DEBUG 5, INFO 9, WARN 13,
 * ERROR 17, FATAL 21; "WARN2" 14). SX_ERR otherwise. */
int sx_api_severity_parse(const char *s, int *number);

/* Longest full-text query accepted (bytes) and most terms in it. */
#define SX_API_SEARCH_MAX_LEN 512
#define SX_API_SEARCH_MAX_TERMS 32

/* What a full-text query holds, in web search syntax: words, "exact
 * phrases" and -excluded words or phrases (the syntax PostgreSQL's
 * websearch_to_tsquery reads; the API passes q to it as a parameter, never
 * as SQL). */
struct sx_api_search {
    size_t words;     /* included words, outside phrases */
    size_t phrases;   /* included "phrases" */
    size_t excluded;  /* -word and -"phrase" */
};

/* Checks the logs' q parameter before it reaches websearch_to_tsquery: at
 * most SX_API_SEARCH_MAX_LEN bytes of valid UTF-8, at most
 * SX_API_SEARCH_MAX_TERMS terms, and at least one term that is not excluded
 * (a query of exclusions only would have to read every row). A phrase left
 * open ("abc) runs to the end, as websearch_to_tsquery reads it. Fills s
 * when given. SX_ERR with a message in err. */
int sx_api_search_check(const char *q, struct sx_api_search *s, char *err, size_t errlen);

/* A log row's page position: its time and its tuple id (block, offset) in
 * the day partition that holds it (a time names exactly one partition, and
 * log rows are never updated, so the pair is unique and stable). Encoded as
 * a cursor of sx_api_cursor_encode with a marker in the id bytes. */
void sx_api_log_cursor_encode(int64_t time_ns, uint32_t block, uint16_t offset, char *out);
/* SX_ERR for anything but a cursor made by sx_api_log_cursor_encode. */
int sx_api_log_cursor_decode(const char *s, int64_t *time_ns, uint32_t *block, uint16_t *offset);

/* ---- user agents --------------------------------------------------------------- */

/* Names the browser with its major version ("Chrome 120", "Safari 17",
 * "Firefox 121", "Edge 120"; "Other" when not recognized) and the operating
 * system ("Windows", "macOS", "iOS", "Android", "Chrome OS", "Linux",
 * "Other") of a User-Agent header, for the tag breakdown of an issue. Order
 * matters: Edge and Opera also say Chrome, Chrome also says Safari, Android
 * also says Linux. Output is truncated to fit; ua may be NULL. */
void sx_api_user_agent(const char *ua, char *browser, size_t blen, char *os, size_t olen);

/* ---- waterfall --------------------------------------------------------------- */

struct sx_api_wf_span {
    uint8_t span_id[8];
    uint8_t parent_id[8]; /* meaningful only when has_parent */
    int has_parent;
    int64_t start_ns;
};

/* Orders the n spans of one trace for a waterfall: depth-first from each
 * true root (no parent), roots by start time; then each orphan (its parent is
 * not in the trace) at depth 0 followed by its subtree; then any span left
 * over (members of parent cycles) the same way. Siblings are ordered by start
 * time, then span id, then input position. A span id that occurs twice keeps
 * both spans; children attach to the earliest of them. Cycles never loop.
 * O(n log n) time, O(n) scratch memory from a.
 * Fills order[0..n) with input indices and depth[i] with the depth of span i.
 * Returns SX_OK, or SX_ERR when the arena is exhausted. */
int sx_api_waterfall(struct sx_arena *a, const struct sx_api_wf_span *spans, size_t n, size_t *order,
                     uint32_t *depth);

#endif
