/* scrub.h: per-project attribute rules and the built-in redaction of secrets, applied at ingest.
 *
 * Rules come from projects.attribute_rules, a JSON array applied in order to
 * every attribute (resource, span, event, link and log record attributes,
 * nested kvlist members too) and, for pattern rules, to string log bodies:
 *   {"action":"drop",     "key":"http.request.header.cookie"}
 *   {"action":"truncate", "key":"db.statement", "maxLength":1000}
 *   {"action":"redact",   "key":"user.email"}            whole value -> "[REDACTED]"
 *   {"action":"redact",   "pattern":"ssn=[0-9]+"}         each match -> "[REDACTED]"
 *   {"action":"redact",   "key":"http.url", "pattern":"token=[^&]*", "ignoreCase":true}
 * "key" is matched against the attribute key (the member key inside kvlists)
 * with '*' matching any run of characters (fnmatch without special '/' or
 * '.'); absent, the rule applies to every key. "pattern" is a POSIX extended
 * regular expression, compiled once per settings version. maxLength counts
 * bytes and cuts at a UTF-8 boundary. At most SX_SCRUB_MAX_RULES rules.
 *
 * Built-in secrets (projects.redact_secrets, on by default): an attribute
 * whose lowercased key is, or ends after '.', '_', '-' or ' ' with, one of
 * password, passwd, pwd, secret, token, api_key, apikey, api-key,
 * authorization, cookie, set-cookie, private_key, credentials gets the value
 * "[REDACTED]" whatever its type; in every other string value (and string
 * log bodies) these are replaced by "[REDACTED]": the credential after
 * "Bearer " or "Basic ", JSON Web Tokens (eyJ...header.eyJ...payload.sig),
 * and card numbers: 13 to 19 digits, single spaces or dashes allowed between
 * them, first digit 2 to 6 (issuer ranges; keeps unix timestamps out),
 * Luhn-valid, not touching other letters or digits.
 *
 * Pure functions, no I/O; rules are heap objects owned by the caller. */
#ifndef SX_SCRUB_H
#define SX_SCRUB_H

#include "arena.h"
#include "otlp.h"

#include <regex.h>

#define SX_SCRUB_MAX_RULES 64
#define SX_SCRUB_MAX_KEY 256
#define SX_SCRUB_MAX_PATTERN 512
#define SX_SCRUB_REDACTED "[REDACTED]"

enum sx_scrub_action { SX_SCRUB_DROP, SX_SCRUB_TRUNCATE, SX_SCRUB_REDACT };

struct sx_scrub_rule {
    enum sx_scrub_action action;
    char *key;         /* glob; NULL: every key */
    size_t max_len;    /* truncate */
    int has_re;        /* redact with a pattern */
    regex_t re;
};

struct sx_scrub_rules {
    size_t n;
    struct sx_scrub_rule r[SX_SCRUB_MAX_RULES];
    int has_patterns;  /* some redact rule has a pattern (log bodies need a look) */
};

/* What scrubbing changed in one request. */
struct sx_scrub_stats {
    size_t dropped;    /* attributes removed by drop rules */
    size_t truncated;  /* values cut by truncate rules */
    size_t redacted;   /* values (attributes or bodies) with something redacted */
};

/* Parses a rules array (the JSON text of projects.attribute_rules). Returns
 * a heap object (free with sx_scrub_rules_destroy; an empty array gives an
 * object with n 0) or NULL with the reason in err: not an array, an unknown
 * action or member, a key or pattern too long, a pattern regcomp refuses,
 * truncate without a positive maxLength, more than SX_SCRUB_MAX_RULES. */
struct sx_scrub_rules *sx_scrub_rules_parse(const char *json, size_t len, char *err, size_t errlen);

/* Frees rules (regfree of each pattern); NULL is fine. */
void sx_scrub_rules_destroy(struct sx_scrub_rules *rules);

/* Nonzero when key names a secret (built-in list above). */
int sx_scrub_secret_key(const char *key);

/* Looks for secrets in the n bytes at s (Bearer/Basic credentials, JWTs,
 * card numbers). Returns NULL when there are none, else a copy in a with
 * each one replaced by "[REDACTED]" (NULL too when a is full: the value is
 * then left as it was, and *failed set when failed is not NULL). */
char *sx_scrub_secret_value(const char *s, size_t n, struct sx_arena *a, int *failed);

/* Nonzero when the digits of s (spaces and dashes ignored) pass Luhn. */
int sx_scrub_luhn(const char *s, size_t n);

/* Applies rules (may be NULL) and, when secrets is nonzero, the built-in
 * redaction to every attribute of req (and log bodies), in place; new
 * strings come from a. Adds what changed to st. */
void sx_scrub_trace_req(sx_trace_req *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                        struct sx_scrub_stats *st);
void sx_scrub_logs_req(sx_logs_req *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                       struct sx_scrub_stats *st);
/* Metrics: resource and data point attributes (number, histogram,
 * exponential histogram and summary points). */
void sx_scrub_metrics_req(sx_metrics_req *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                          struct sx_scrub_stats *st);

#endif
