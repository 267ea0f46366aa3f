/* scrub.c: attribute rules and built-in secret redaction over decoded OTLP requests; see scrub.h.
 *
 * The hot path is the built-in secret scan, on by default for every string
 * value: one pass over the bytes that only stops at a digit starting a run
 * (card number candidates), a 'b'/'B' starting a word (Bearer/Basic) or
 * "eyJ" (a JWT); a value with none of them costs a byte loop and no
 * allocation. Replacements are new strings in the request arena. */
#include "scrub.h"

#include "jsonval.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;

#define ANY_STRING OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE
#define ANY_ARRAY OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE
#define ANY_KVLIST OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE

#define MAX_DEPTH 8         /* nested kvlist / array values looked into */
#define MAX_HITS 32         /* secrets replaced in one value; more stay (rare, and bounded work) */
#define RE_MAX_MATCHES 256  /* pattern matches replaced in one value */

/* --- rules ------------------------------------------------------------------- */

void sx_scrub_rules_destroy(struct sx_scrub_rules *rules)
{
    if (!rules) return;
    for (size_t i = 0; i < rules->n; i++) {
        free(rules->r[i].key);
        if (rules->r[i].has_re) regfree(&rules->r[i].re);
    }
    free(rules);
}

static int parse_rule(const struct sx_jv *o, struct sx_scrub_rule *r, size_t i, int *has_pattern, char *err,
                      size_t errlen)
{
    const struct sx_jv *action = NULL, *key = NULL, *pattern = NULL, *maxlen = NULL, *icase = NULL;
    if (o->type != SX_JV_OBJECT) {
        snprintf(err, errlen, "rule %zu: not an object", i);
        return SX_ERR;
    }
    for (const struct sx_jv *m = o->first; m; m = m->next) {
        if (strcmp(m->key, "action") == 0) action = m;
        else if (strcmp(m->key, "key") == 0) key = m;
        else if (strcmp(m->key, "pattern") == 0) pattern = m;
        else if (strcmp(m->key, "maxLength") == 0) maxlen = m;
        else if (strcmp(m->key, "ignoreCase") == 0) icase = m;
        else {
            snprintf(err, errlen, "rule %zu: unknown member '%.40s' (action, key, pattern, maxLength, ignoreCase)", i,
                     m->key);
            return SX_ERR;
        }
    }
    if (!action || action->type != SX_JV_STRING) {
        snprintf(err, errlen, "rule %zu: \"action\" must be \"drop\", \"truncate\" or \"redact\"", i);
        return SX_ERR;
    }
    if (strcmp(action->str, "drop") == 0) r->action = SX_SCRUB_DROP;
    else if (strcmp(action->str, "truncate") == 0) r->action = SX_SCRUB_TRUNCATE;
    else if (strcmp(action->str, "redact") == 0) r->action = SX_SCRUB_REDACT;
    else {
        snprintf(err, errlen, "rule %zu: unknown action '%.40s' (drop, truncate, redact)", i, action->str);
        return SX_ERR;
    }
    if (key && (key->type != SX_JV_STRING || key->len == 0 || key->len > SX_SCRUB_MAX_KEY)) {
        snprintf(err, errlen, "rule %zu: \"key\" must be a string of 1 to %d characters", i, SX_SCRUB_MAX_KEY);
        return SX_ERR;
    }
    if (pattern && (pattern->type != SX_JV_STRING || pattern->len == 0 || pattern->len > SX_SCRUB_MAX_PATTERN)) {
        snprintf(err, errlen, "rule %zu: \"pattern\" must be a string of 1 to %d characters", i,
                 SX_SCRUB_MAX_PATTERN);
        return SX_ERR;
    }
    if (icase && icase->type != SX_JV_BOOL) {
        snprintf(err, errlen, "rule %zu: \"ignoreCase\" must be true or false", i);
        return SX_ERR;
    }
    if ((r->action == SX_SCRUB_DROP || r->action == SX_SCRUB_TRUNCATE) && !key) {
        snprintf(err, errlen, "rule %zu: %s needs a \"key\"", i, action->str);
        return SX_ERR;
    }
    if (r->action != SX_SCRUB_REDACT && pattern) {
        snprintf(err, errlen, "rule %zu: \"pattern\" belongs to redact rules", i);
        return SX_ERR;
    }
    if (r->action == SX_SCRUB_REDACT && !key && !pattern) {
        snprintf(err, errlen, "rule %zu: redact needs a \"key\", a \"pattern\" or both", i);
        return SX_ERR;
    }
    if (r->action == SX_SCRUB_TRUNCATE) {
        long long v;
        if (!maxlen || sx_jv_int(maxlen, 1, 16 << 20, &v) != SX_OK) {
            snprintf(err, errlen, "rule %zu: truncate needs \"maxLength\", an integer from 1 to %d", i, 16 << 20);
            return SX_ERR;
        }
        r->max_len = (size_t)v;
    } else if (maxlen) {
        snprintf(err, errlen, "rule %zu: \"maxLength\" belongs to truncate rules", i);
        return SX_ERR;
    }
    if (pattern) {
        int flags = REG_EXTENDED | (icase && icase->boolean ? REG_ICASE : 0);
        int rc = regcomp(&r->re, pattern->str, flags);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &r->re, msg, sizeof(msg));
            snprintf(err, errlen, "rule %zu: pattern is not a POSIX extended regular expression: %s", i, msg);
            return SX_ERR;
        }
        r->has_re = 1;
        *has_pattern = 1;
    }
    if (key) r->key = sx_xstrdup(key->str);
    return SX_OK;
}

struct sx_scrub_rules *sx_scrub_rules_parse(const char *json, size_t len, char *err, size_t errlen)
{
    struct sx_jv_limits lim = {.max_depth = 4, .max_items = 1000, .max_string = 4096};
    struct sx_jv *root = NULL;
    struct sx_arena *a = sx_arena_create(16 * 1024, 4u << 20);
    struct sx_scrub_rules *rules = sx_xcalloc(1, sizeof(*rules));
    char jerr[200];

    err[0] = '\0';
    if (sx_jv_parse(json, len, &lim, a, &root, jerr, sizeof(jerr)) != SX_OK) {
        snprintf(err, errlen, "attribute rules are not valid JSON: %s", jerr);
        goto fail;
    }
    if (root->type != SX_JV_ARRAY) {
        snprintf(err, errlen, "attribute rules must be a JSON array of rule objects");
        goto fail;
    }
    if (root->n > SX_SCRUB_MAX_RULES) {
        snprintf(err, errlen, "%zu attribute rules: at most %d", root->n, SX_SCRUB_MAX_RULES);
        goto fail;
    }
    for (const struct sx_jv *o = root->first; o; o = o->next) {
        if (parse_rule(o, &rules->r[rules->n], rules->n, &rules->has_patterns, err, errlen) != SX_OK) {
            /* The failed rule owns nothing (regcomp failure frees itself). */
            goto fail;
        }
        rules->n++;
    }
    sx_arena_destroy(a);
    return rules;
fail:
    sx_arena_destroy(a);
    sx_scrub_rules_destroy(rules);
    return NULL;
}

/* --- built-in secrets ---------------------------------------------------------- */

static const struct {
    const char *w;
    size_t len;
} secret_words[] = {
#define W(s) {s, sizeof(s) - 1}
    W("password"), W("passwd"), W("pwd"), W("secret"), W("token"), W("api_key"), W("apikey"), W("api-key"),
    W("authorization"), W("cookie"), W("set-cookie"), W("private_key"), W("credentials"),
#undef W
};

static int is_sep(char c)
{
    return c == '.' || c == '_' || c == '-' || c == ' ';
}

/* Last letters of the secret words: most keys end otherwise and cost one
 * table look-up. */
static const unsigned char last_letter[256] = {['d'] = 1, ['D'] = 1, ['t'] = 1, ['T'] = 1, ['n'] = 1, ['N'] = 1,
                                               ['y'] = 1, ['Y'] = 1, ['e'] = 1, ['E'] = 1, ['s'] = 1, ['S'] = 1};

int sx_scrub_secret_key(const char *key)
{
    if (!key || !key[0]) return 0;
    size_t n = strlen(key);
    if (!last_letter[(unsigned char)key[n - 1]]) return 0;
    char l1 = (char)(key[n - 1] | 0x20), l2 = n > 1 ? (char)(key[n - 2] | 0x20) : 0;
    for (size_t i = 0; i < SX_ARRAY_LEN(secret_words); i++) {
        size_t w = secret_words[i].len;
        const char *word = secret_words[i].w;
        if (w > n || l1 != word[w - 1] || l2 != word[w - 2]) continue;
        if (strncasecmp(key + n - w, word, w - 2) != 0) continue;
        if (n == w || is_sep(key[n - w - 1])) return 1;
    }
    return 0;
}

int sx_scrub_luhn(const char *s, size_t n)
{
    int sum = 0, dbl = 0, digits = 0;
    for (size_t i = n; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9') continue;
        int d = s[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        dbl = !dbl;
        digits++;
    }
    return digits > 0 && sum % 10 == 0;
}

static int is_b64url(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_';
}

/* Card number starting at s[i] (a digit after a non-alphanumeric): sets *end
 * and returns 1 when it is one. *skip is where scanning resumes either way. */
static int card_at(const char *s, size_t n, size_t i, size_t *end, size_t *skip)
{
    size_t j = i, digits = 0, last = i;
    while (j < n) {
        if (isdigit((unsigned char)s[j])) {
            digits++;
            last = j + 1;
            j++;
        } else if ((s[j] == ' ' || s[j] == '-') && j + 1 < n && isdigit((unsigned char)s[j + 1]) && j > i &&
                   isdigit((unsigned char)s[j - 1])) {
            j++;
        } else {
            break;
        }
        if (digits > 19) break;
    }
    *skip = last > i ? last : i + 1;
    /* Skip the rest of a long digit run as one. */
    while (*skip < n && isdigit((unsigned char)s[*skip])) (*skip)++;
    if (digits < 13 || digits > 19) return 0;
    if (last < n && isalnum((unsigned char)s[last])) return 0;
    if (s[i] < '2' || s[i] > '6') return 0;
    if (!sx_scrub_luhn(s + i, last - i)) return 0;
    *end = last;
    return 1;
}

/* JWT at s[i] ("eyJ"): header.payload.signature in base64url. */
static int jwt_at(const char *s, size_t n, size_t i, size_t *end)
{
    size_t j = i, part = 0, plen = 0;
    size_t lens[3] = {0, 0, 0};
    while (j < n && part < 3) {
        if (is_b64url((unsigned char)s[j])) {
            plen++;
        } else if (s[j] == '.' && part < 2) {
            lens[part++] = plen;
            plen = 0;
        } else {
            break;
        }
        j++;
    }
    if (part < 2) return 0;
    lens[2] = plen;
    if (lens[0] < 10 || lens[1] < 10 || strncmp(s + i + lens[0] + 1, "eyJ", 3) != 0) return 0;
    *end = j;
    return 1;
}

/* Bytes that may start a secret: digits (cards), b/B (Bearer, Basic), e (eyJ). */
static const unsigned char may_start[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['b'] = 1, ['B'] = 1, ['e'] = 1};

char *sx_scrub_secret_value(const char *s, size_t n, struct sx_arena *a, int *failed)
{
    size_t from[MAX_HITS], to[MAX_HITS], hits = 0;
    size_t i = 0;
    while (i < n && hits < MAX_HITS) {
        unsigned char c = (unsigned char)s[i];
        if (!may_start[c]) {
            i++;
            continue;
        }
        int word_start = c != 'e' && (i == 0 || !isalnum((unsigned char)s[i - 1]));
        if (c >= '0' && c <= '9') {
            size_t end = 0, skip = i + 1;
            if (word_start && card_at(s, n, i, &end, &skip)) {
                from[hits] = i;
                to[hits++] = end;
            }
            i = skip;
            continue;
        }
        if (c == 'e') {
            size_t end;
            if (i + 2 < n && s[i + 1] == 'y' && s[i + 2] == 'J' && (i == 0 || !is_b64url((unsigned char)s[i - 1])) &&
                jwt_at(s, n, i, &end)) {
                from[hits] = i;
                to[hits++] = end;
                i = end;
                continue;
            }
            i++;
            continue;
        }
        /* b or B */
        if (word_start && i + 6 < n && (strncasecmp(s + i, "bearer ", 7) == 0 || strncasecmp(s + i, "basic ", 6) == 0)) {
            size_t j = i + (s[i + 1] == 'e' || s[i + 1] == 'E' ? 7 : 6);
            while (j < n && s[j] == ' ') j++;
            size_t k = j;
            while (k < n && !isspace((unsigned char)s[k]) && s[k] != '"' && s[k] != '\'' && s[k] != ',') k++;
            if (k - j >= 8) {
                from[hits] = j;
                to[hits++] = k;
                i = k;
                continue;
            }
            i = j;
            continue;
        }
        i++;
    }
    if (!hits) return NULL;
    size_t out_len = n;
    for (size_t h = 0; h < hits; h++) out_len = out_len - (to[h] - from[h]) + strlen(SX_SCRUB_REDACTED);
    char *d = sx_arena_alloc(a, out_len + 1);
    if (!d) {
        if (failed) *failed = 1;
        return NULL;
    }
    size_t o = 0, at = 0;
    for (size_t h = 0; h < hits; h++) {
        memcpy(d + o, s + at, from[h] - at);
        o += from[h] - at;
        memcpy(d + o, SX_SCRUB_REDACTED, strlen(SX_SCRUB_REDACTED));
        o += strlen(SX_SCRUB_REDACTED);
        at = to[h];
    }
    memcpy(d + o, s + at, n - at);
    o += n - at;
    d[o] = '\0';
    return d;
}

/* --- applying -------------------------------------------------------------------- */

struct scrub {
    const struct sx_scrub_rules *rules;
    int secrets;
    struct sx_arena *a;
    struct sx_scrub_stats *st;
};

static int key_match(const struct sx_scrub_rule *r, const char *key)
{
    if (!r->key) return 1;
    if (!key) return 0;
    if (!strchr(r->key, '*')) return strcmp(r->key, key) == 0;
    return fnmatch(r->key, key, 0) == 0;
}

/* Replaces every match of re in *sp with "[REDACTED]"; 1 when it did. */
static int redact_pattern(struct scrub *x, const regex_t *re, char **sp)
{
    const char *s = *sp;
    regmatch_t m;
    struct {
        char *d;
        size_t len, cap;
    } b = {NULL, 0, 0};
    size_t at = 0, n = strlen(s), matches = 0;
    int eflags = 0;
    while (at <= n && matches < RE_MAX_MATCHES && regexec(re, s + at, 1, &m, eflags) == 0) {
        size_t so = at + (size_t)m.rm_so, eo = at + (size_t)m.rm_eo;
        size_t need = b.len + (so - at) + strlen(SX_SCRUB_REDACTED) + (n - eo) + 1;
        if (need > b.cap) {
            size_t cap = SX_MAX(need, 2 * b.cap);
            char *nd = sx_arena_realloc(x->a, b.d, b.cap, cap);
            if (!nd) return 0; /* arena full: leave the value */
            b.d = nd;
            b.cap = cap;
        }
        memcpy(b.d + b.len, s + at, so - at);
        b.len += so - at;
        memcpy(b.d + b.len, SX_SCRUB_REDACTED, strlen(SX_SCRUB_REDACTED));
        b.len += strlen(SX_SCRUB_REDACTED);
        matches++;
        if (eo == so) { /* empty match: copy one byte and move on */
            if (eo < n) b.d[b.len++] = s[eo];
            at = eo + 1;
        } else {
            at = eo;
        }
        eflags = REG_NOTBOL;
    }
    if (!matches) return 0;
    if (at < n) {
        memcpy(b.d + b.len, s + at, n - at);
        b.len += n - at;
    }
    b.d[b.len] = '\0';
    *sp = b.d;
    return 1;
}

/* Cuts *sp at most max bytes, at a UTF-8 boundary; 1 when it did. */
static int truncate_utf8(struct scrub *x, char **sp, size_t max)
{
    size_t n = strlen(*sp);
    if (n <= max) return 0;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)(*sp)[cut] & 0xC0) == 0x80) cut--;
    char *d = sx_arena_strndup(x->a, *sp, cut);
    if (!d) return 0;
    *sp = d;
    return 1;
}

static void set_redacted(struct scrub *x, pb_any *v)
{
    char *d = sx_arena_strndup(x->a, SX_SCRUB_REDACTED, strlen(SX_SCRUB_REDACTED));
    if (!d) return;
    v->value_case = ANY_STRING;
    v->string_value = d;
}

static void scrub_kvs(struct scrub *x, pb_kv ***kvs, size_t *n, int depth);

/* One value under key (NULL for log bodies and array members without a
 * keyed parent rule). Returns 1 when something was redacted. */
static int scrub_value(struct scrub *x, const char *key, pb_any *v, int depth)
{
    int redacted = 0;
    if (!v || depth > MAX_DEPTH) return 0;
    if (v->value_case == ANY_KVLIST && v->kvlist_value) {
        scrub_kvs(x, &v->kvlist_value->values, &v->kvlist_value->n_values, depth + 1);
        return 0;
    }
    if (v->value_case == ANY_ARRAY && v->array_value) {
        for (size_t i = 0; i < v->array_value->n_values; i++)
            redacted |= scrub_value(x, key, v->array_value->values[i], depth + 1);
        return redacted;
    }
    if (v->value_case != ANY_STRING || !v->string_value) return 0;
    if (x->rules) {
        for (size_t i = 0; i < x->rules->n; i++) {
            const struct sx_scrub_rule *r = &x->rules->r[i];
            if (r->action == SX_SCRUB_DROP) continue;
            if (r->key && (!key || !key_match(r, key))) continue;
            if (r->action == SX_SCRUB_TRUNCATE) {
                if (truncate_utf8(x, &v->string_value, r->max_len)) x->st->truncated++;
            } else if (r->has_re) {
                redacted |= redact_pattern(x, &r->re, &v->string_value);
            }
        }
    }
    if (x->secrets) {
        char *d = sx_scrub_secret_value(v->string_value, strlen(v->string_value), x->a, NULL);
        if (d) {
            v->string_value = d;
            redacted = 1;
        }
    }
    return redacted;
}

static void scrub_kvs(struct scrub *x, pb_kv ***kvs, size_t *n, int depth)
{
    size_t w = 0;
    pb_kv **arr = *kvs;
    for (size_t i = 0; i < *n; i++) {
        pb_kv *kv = arr[i];
        int drop = 0, whole = 0;
        if (!kv) continue;
        if (x->rules) {
            for (size_t r = 0; r < x->rules->n && !drop; r++) {
                const struct sx_scrub_rule *rule = &x->rules->r[r];
                if (!rule->key || !key_match(rule, kv->key)) continue;
                if (rule->action == SX_SCRUB_DROP) drop = 1;
                else if (rule->action == SX_SCRUB_REDACT && !rule->has_re) whole = 1;
            }
        }
        if (drop) {
            x->st->dropped++;
            continue;
        }
        if (!whole && x->secrets && sx_scrub_secret_key(kv->key)) whole = 1;
        if (whole && kv->value) {
            set_redacted(x, kv->value);
            x->st->redacted++;
        } else if (scrub_value(x, kv->key, kv->value, depth)) {
            x->st->redacted++;
        }
        arr[w++] = kv;
    }
    *n = w;
}

static void scrub_attrs(struct scrub *x, pb_kv ***kvs, size_t *n)
{
    if (*n) scrub_kvs(x, kvs, n, 0);
}

static void scrub_resource(struct scrub *x, pb_resource *res)
{
    if (res) scrub_attrs(x, &res->attributes, &res->n_attributes);
}

void sx_scrub_trace_req(sx_trace_req *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                        struct sx_scrub_stats *st)
{
    struct scrub x = {rules && rules->n ? rules : NULL, secrets, a, st};
    if (!x.rules && !secrets) return;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[i];
        scrub_resource(&x, rs->resource);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                scrub_attrs(&x, &sp->attributes, &sp->n_attributes);
                for (size_t e = 0; e < sp->n_events; e++)
                    scrub_attrs(&x, &sp->events[e]->attributes, &sp->events[e]->n_attributes);
                for (size_t l = 0; l < sp->n_links; l++)
                    scrub_attrs(&x, &sp->links[l]->attributes, &sp->links[l]->n_attributes);
            }
        }
    }
}

void sx_scrub_logs_req(sx_logs_req *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                       struct sx_scrub_stats *st)
{
    struct scrub x = {rules && rules->n ? rules : NULL, secrets, a, st};
    if (!x.rules && !secrets) return;
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];
        scrub_resource(&x, rl->resource);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                scrub_attrs(&x, &lr->attributes, &lr->n_attributes);
                /* Bodies have no key: keyless pattern rules and the secret scan apply. */
                if (scrub_value(&x, NULL, lr->body, 0)) st->redacted++;
            }
        }
    }
}

#define POINTS_LOOP(T, data)                                                         \
    for (size_t p = 0; (data) && p < (data)->n_data_points; p++)                     \
        scrub_attrs(&x, &(data)->data_points[p]->attributes, &(data)->data_points[p]->n_attributes)

void sx_scrub_metrics_req(sx_metrics_req *req, const struct sx_scrub_rules *rules, int secrets, struct sx_arena *a,
                          struct sx_scrub_stats *st)
{
    struct scrub x = {rules && rules->n ? rules : NULL, secrets, a, st};
    if (!x.rules && !secrets) return;
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[i];
        scrub_resource(&x, rm->resource);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: POINTS_LOOP(gauge, m->gauge); break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: POINTS_LOOP(sum, m->sum); break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    POINTS_LOOP(histogram, m->histogram);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    POINTS_LOOP(exp, m->exponential_histogram);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: POINTS_LOOP(summary, m->summary); break;
                default: break;
                }
            }
        }
    }
}
