/* otlp_cases.h: helpers shared by the trace, logs and metrics decoder tests: files,
 * fixtures, a strict UTF-8 walk over any message, and the data-driven case
 * runner. Included by one test file each (static functions).
 *
 * A case is NAME.json or NAME.bin (protobuf) with NAME.expect, whose lines are:
 *   # comment
 *   limits name=value ...   limits for this case (max_json_depth, max_attributes,
 *                           max_attr_key_len, max_attr_value_len, max_any_value_depth,
 *                           max_spans, max_events, max_links, max_log_records,
 *                           max_points, max_log_body_len)
 *   error SX_OTLP_E_...     the decoder must fail with this code (and a message)
 *   ok key=value ...        decoding succeeds; after validation each stat has the
 *                           value: in, kept, rejected, attrs_dropped, values_truncated,
 *                           events_dropped, links_dropped, bodies_truncated,
 *                           metrics_dropped, resources (groups
 *                           left), count (items left, counted by _count)
 *   reason TEXT             st.reason contains TEXT
 * Whatever is accepted must be valid UTF-8, and pack and decode back to the
 * same count. */
#ifndef SX_TEST_OTLP_CASES_H
#define SX_TEST_OTLP_CASES_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "otlp.h"

#define ARENA_MAX (64u << 20)

/* One signal's functions, over the generic message type. */
struct case_ops {
    const char *data_dir; /* default; SX_TESTDATA overrides */
    int (*decode)(int json, const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                  ProtobufCMessage **out, char *err, size_t errlen);
    void (*validate)(ProtobufCMessage *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                     struct sx_otlp_stats *st);
    size_t (*count)(const ProtobufCMessage *req);
    uint8_t *(*pack)(const ProtobufCMessage *req, struct sx_arena *a, size_t *len);
    size_t (*groups)(const ProtobufCMessage *req); /* resource groups */
};

static const char *fixtures_dir(void)
{
    const char *d = getenv("SX_FIXTURES");
    return d && *d ? d : "../shared/otlp-fixtures";
}

static const char *case_dir(const struct case_ops *ops)
{
    const char *d = getenv("SX_TESTDATA");
    return d && *d ? d : ops->data_dir;
}

/* Reads a whole file (malloc'd, NUL-terminated); NULL when missing. */
static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    assert_int_equal(got, (size_t)n);
    p[n] = 0;
    *len = (size_t)n;
    return p;
}

static uint8_t *fixture(const char *name, size_t *len)
{
    uint8_t *p = slurp(fixtures_dir(), name, len);
    if (!p) fail_msg("missing fixture %s/%s (set SX_FIXTURES)", fixtures_dir(), name);
    return p;
}

static void default_limits(struct sx_otlp_limits *l)
{
    struct sx_config c;
    sx_config_defaults(&c);
    sx_otlp_limits_from_config(l, &c);
}

static void hex(const ProtobufCBinaryData *b, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < b->len; i++) {
        out[2 * i] = digits[b->data[i] >> 4];
        out[2 * i + 1] = digits[b->data[i] & 15];
    }
    out[2 * b->len] = 0;
}

/* Strict UTF-8 check, written independently of the validator's. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F, k = 2;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F, k = 3;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07, k = 4;
        } else {
            return 0;
        }
        if (i + k > n) return 0;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k;
    }
    return 1;
}

/* Walks every string field of a message tree (via descriptors); returns the
 * number of strings that are not valid UTF-8. */
static size_t bad_strings(const ProtobufCMessage *m)
{
    size_t bad = 0;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        }
        size_t n = 1;
        const void *const *items = (const void *const *)(base + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            items = *(const void *const *const *)(base + f->offset);
        }
        for (size_t j = 0; j < n; j++) {
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = items[j];
                if (s && !utf8_valid((const unsigned char *)s, strlen(s))) bad++;
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (items[j]) bad += bad_strings(items[j]);
            }
        }
    }
    return bad;
}

/* --- data-driven cases ------------------------------------------------------------ */

static const struct {
    const char *name;
    int code;
} err_names[] = {
    {"SX_OTLP_OK", SX_OTLP_OK},
    {"SX_OTLP_E_PROTOBUF", SX_OTLP_E_PROTOBUF},
    {"SX_OTLP_E_JSON", SX_OTLP_E_JSON},
    {"SX_OTLP_E_JSON_DEPTH", SX_OTLP_E_JSON_DEPTH},
    {"SX_OTLP_E_SCHEMA", SX_OTLP_E_SCHEMA},
    {"SX_OTLP_E_TOO_MANY", SX_OTLP_E_TOO_MANY},
    {"SX_OTLP_E_NOMEM", SX_OTLP_E_NOMEM},
};

static int set_limit(struct sx_otlp_limits *l, const char *k, size_t v)
{
    if (!strcmp(k, "max_json_depth")) l->max_json_depth = v;
    else if (!strcmp(k, "max_attributes")) l->max_attributes = v;
    else if (!strcmp(k, "max_attr_key_len")) l->max_attr_key_len = v;
    else if (!strcmp(k, "max_attr_value_len")) l->max_attr_value_len = v;
    else if (!strcmp(k, "max_any_value_depth")) l->max_any_value_depth = v;
    else if (!strcmp(k, "max_spans")) l->max_spans = v;
    else if (!strcmp(k, "max_events")) l->max_events = v;
    else if (!strcmp(k, "max_links")) l->max_links = v;
    else if (!strcmp(k, "max_log_records")) l->max_log_records = v;
    else if (!strcmp(k, "max_points")) l->max_points = v;
    else if (!strcmp(k, "max_log_body_len")) l->max_log_body_len = v;
    else return -1;
    return 0;
}

static size_t stat_value(const struct case_ops *ops, const struct sx_otlp_stats *st, const ProtobufCMessage *req,
                         const char *k, int *ok)
{
    *ok = 1;
    if (!strcmp(k, "kept")) return st->items_kept;
    if (!strcmp(k, "rejected")) return st->items_rejected;
    if (!strcmp(k, "in")) return st->items_in;
    if (!strcmp(k, "attrs_dropped")) return st->attrs_dropped;
    if (!strcmp(k, "values_truncated")) return st->values_truncated;
    if (!strcmp(k, "events_dropped")) return st->events_dropped;
    if (!strcmp(k, "links_dropped")) return st->links_dropped;
    if (!strcmp(k, "bodies_truncated")) return st->bodies_truncated;
    if (!strcmp(k, "metrics_dropped")) return st->metrics_dropped;
    if (!strcmp(k, "resources")) return ops->groups(req);
    if (!strcmp(k, "count")) return ops->count(req);
    *ok = 0;
    return 0;
}

/* Checks one "ok ..." line against the validated request. */
static int check_ok_line(const struct case_ops *ops, const char *name, char *line, const struct sx_otlp_stats *st,
                         const ProtobufCMessage *req)
{
    int failed = 0;
    char *s2 = NULL;
    for (char *tok = strtok_r(line + 2, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
        char *eq = strchr(tok, '=');
        int ok;
        if (!eq) continue;
        *eq = 0;
        size_t want = strtoull(eq + 1, NULL, 10);
        size_t got = stat_value(ops, st, req, tok, &ok);
        if (!ok || got != want) {
            fprintf(stderr, "  %s: %s = %zu, want %zu%s\n", name, tok, got, want, ok ? "" : " (unknown)");
            failed = 1;
        }
    }
    if (st->items_kept != ops->count(req)) {
        fprintf(stderr, "  %s: kept %zu but count %zu\n", name, st->items_kept, ops->count(req));
        failed = 1;
    }
    return failed;
}

/* Runs one case; returns 0 when it matched its .expect, else prints why. */
static int run_case(const struct case_ops *ops, const char *name)
{
    char file[512], err[256] = "", line[512];
    size_t len, elen;
    struct sx_otlp_limits l;
    const char *dir = case_dir(ops);
    default_limits(&l);

    snprintf(file, sizeof(file), "%s.expect", name);
    char *expect = (char *)slurp(dir, file, &elen);
    if (!expect) return fprintf(stderr, "  %s: cannot read .expect\n", name), 1;

    int json = 1;
    snprintf(file, sizeof(file), "%s.json", name);
    uint8_t *buf = slurp(dir, file, &len);
    if (!buf) {
        json = 0;
        snprintf(file, sizeof(file), "%s.bin", name);
        buf = slurp(dir, file, &len);
    }
    if (!buf) {
        free(expect);
        return fprintf(stderr, "  %s: no .json or .bin input\n", name), 1;
    }

    char *save = NULL;
    char *copy = strdup(expect);
    for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (strncmp(ln, "limits ", 7) != 0) continue;
        char *s2 = NULL;
        for (char *tok = strtok_r(ln + 7, " ", &s2); tok; tok = strtok_r(NULL, " ", &s2)) {
            char *eq = strchr(tok, '=');
            if (eq) *eq = 0;
            if (!eq || set_limit(&l, tok, strtoull(eq + 1, NULL, 10)) != 0) {
                fprintf(stderr, "  %s: bad limit %s\n", name, tok);
                free(copy), free(expect), free(buf);
                return 1;
            }
        }
    }
    free(copy);

    struct sx_arena *a = sx_arena_create(16 * 1024, ARENA_MAX);
    ProtobufCMessage *req = NULL;
    int rc = ops->decode(json, buf, len, a, &l, &req, err, sizeof(err));
    struct sx_otlp_stats st;
    memset(&st, 0, sizeof(st));
    if (rc == SX_OTLP_OK) ops->validate(req, &l, a, &st);

    int failed = 0;
    save = NULL;
    for (char *ln = strtok_r(expect, "\n", &save); ln && !failed; ln = strtok_r(NULL, "\n", &save)) {
        snprintf(line, sizeof(line), "%s", ln);
        if (line[0] == '#' || !strncmp(line, "limits ", 7)) continue;
        if (!strncmp(line, "error ", 6)) {
            int want = -1;
            for (size_t i = 0; i < SX_ARRAY_LEN(err_names); i++)
                if (!strcmp(line + 6, err_names[i].name)) want = err_names[i].code;
            if (want < 0) {
                fprintf(stderr, "  %s: unknown error name %s\n", name, line + 6);
                failed = 1;
            } else if (rc != want) {
                fprintf(stderr, "  %s: got %d (%s), want %s\n", name, rc, err, line + 6);
                failed = 1;
            } else if (!err[0]) {
                fprintf(stderr, "  %s: error without a message\n", name);
                failed = 1;
            }
        } else if (!strncmp(line, "ok", 2)) {
            if (rc != SX_OTLP_OK) {
                fprintf(stderr, "  %s: got error %d (%s), want ok\n", name, rc, err);
                failed = 1;
                break;
            }
            failed = check_ok_line(ops, name, line, &st, req);
            size_t n1 = 0;
            if (!failed && bad_strings(req)) {
                fprintf(stderr, "  %s: invalid UTF-8 left after validation\n", name);
                failed = 1;
            }
            uint8_t *p = failed ? NULL : ops->pack(req, a, &n1);
            ProtobufCMessage *again = NULL;
            if (!failed && (!p || ops->decode(0, p, n1, a, &l, &again, err, sizeof(err)) != SX_OTLP_OK ||
                            ops->count(again) != st.items_kept)) {
                fprintf(stderr, "  %s: packed result does not decode back\n", name);
                failed = 1;
            }
        } else if (!strncmp(line, "reason ", 7)) {
            if (!strstr(st.reason, line + 7)) {
                fprintf(stderr, "  %s: reason \"%s\", want \"%s\"\n", name, st.reason, line + 7);
                failed = 1;
            }
        } else {
            fprintf(stderr, "  %s: bad .expect line: %s\n", name, line);
            failed = 1;
        }
    }
    sx_arena_destroy(a);
    free(expect);
    free(buf);
    return failed;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Runs every case of the signal's folder; fails the test when any fails or
 * when fewer than min_cases were found. */
static void run_data_cases(const struct case_ops *ops, size_t min_cases)
{
    DIR *d = opendir(case_dir(ops));
    if (!d) fail_msg("cannot open %s (run from the repo root or set SX_TESTDATA)", case_dir(ops));
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 7 && !strcmp(e->d_name + l - 7, ".expect") && n < SX_ARRAY_LEN(names))
            names[n++] = strndup(e->d_name, l - 7);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    assert_true(n >= min_cases);

    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        int f = run_case(ops, names[i]);
        if (f) failed++;
        printf("  %s %s\n", f ? "FAIL" : "ok  ", names[i]);
        free(names[i]);
    }
    printf("  %zu cases, %zu failed\n", n, failed);
    assert_int_equal(failed, 0);
}

#endif
