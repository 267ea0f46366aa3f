/* otlp_validate.c: validation and normalization of decoded OTLP trace
 * requests, and the helpers every signal's validation shares (otlp_int.h).
 *
 * One pass over the request, in place: invalid spans are dropped, attribute
 * lists, events and links are trimmed to the limits, string values are cut
 * at a UTF-8 boundary, invalid UTF-8 anywhere becomes U+FFFD, and groups left
 * empty are removed. Repaired or cut strings are new copies in the arena, so
 * read-only input strings are never written; only when the arena is full are
 * bad bytes replaced in place ('?') as a last resort. Everything dropped is
 * counted, and the first reason of each kind is kept for partial_success. */
#include "json.h"
#include "otlp_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_ss;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;


/* --- UTF-8 ------------------------------------------------------------------ */

/* Offset of the first byte that is not valid UTF-8, or n when all are. */
static size_t utf8_first_bad(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII runs, eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = sx_utf8_seq_len(s + i, n - i);
        if (!k) return i;
        i += k;
    }
    return n;
}

size_t sx_otlp_repair_utf8(struct sx_otlp_vctx *v, char **sp)
{
    char *s = *sp;
    if (!s) return 0;
    size_t n = strlen(s);
    const unsigned char *u = (const unsigned char *)s;
    size_t bad_at = utf8_first_bad(u, n);
    if (bad_at == n) return n;

    size_t bad = 0;
    for (size_t i = bad_at; i < n;) {
        size_t k = sx_utf8_seq_len(u + i, n - i);
        if (k) {
            i += k;
        } else {
            bad++;
            i++;
        }
    }
    char *d = sx_arena_alloc(v->a, n + 2 * bad + 1);
    if (!d) { /* arena full: same length, in place */
        for (size_t i = bad_at; i < n;) {
            size_t k = sx_utf8_seq_len(u + i, n - i);
            if (k) {
                i += k;
            } else {
                s[i++] = '?';
            }
        }
        return n;
    }
    memcpy(d, s, bad_at);
    size_t o = bad_at;
    for (size_t i = bad_at; i < n;) {
        size_t k = sx_utf8_seq_len(u + i, n - i);
        if (k) {
            memcpy(d + o, s + i, k);
            o += k;
            i += k;
        } else {
            d[o++] = (char)0xEF; /* U+FFFD */
            d[o++] = (char)0xBF;
            d[o++] = (char)0xBD;
            i++;
        }
    }
    d[o] = '\0';
    *sp = d;
    return o;
}

int sx_otlp_cut_str(struct sx_otlp_vctx *v, char **sp, size_t max)
{
    size_t n = sx_otlp_repair_utf8(v, sp);
    if (n <= max) return 0;
    const unsigned char *u = (const unsigned char *)*sp;
    size_t cut = max;
    while (cut > 0 && (u[cut] & 0xC0) == 0x80) cut--;
    char *d = sx_arena_strndup(v->a, *sp, cut);
    if (d) {
        *sp = d;
    } else {
        (*sp)[cut] = '\0'; /* arena full: strings we get here are arena copies */
    }
    return 1;
}

void sx_otlp_fix_value_str(struct sx_otlp_vctx *v, char **sp)
{
    if (sx_otlp_cut_str(v, sp, v->l->max_attr_value_len)) v->st->values_truncated++;
}

/* --- attributes ------------------------------------------------------------- */

/* Nonzero when an array/kvlist inside any nests deeper than max levels. */
static int too_deep(const pb_any *any, size_t level, size_t max)
{
    if (!any) return 0;
    if (any->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE) {
        if (level + 1 > max) return 1;
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = any->array_value;
        if (!arr) return 0;
        for (size_t i = 0; i < arr->n_values; i++)
            if (too_deep(arr->values[i], level + 1, max)) return 1;
    } else if (any->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE) {
        if (level + 1 > max) return 1;
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = any->kvlist_value;
        if (!kl) return 0;
        for (size_t i = 0; i < kl->n_values; i++)
            if (kl->values[i] && too_deep(kl->values[i]->value, level + 1, max)) return 1;
    }
    return 0;
}

size_t sx_otlp_fix_any_max(struct sx_otlp_vctx *v, pb_any *any, size_t max)
{
    size_t cut = 0;
    if (!any) return 0;
    switch (any->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        cut += (size_t)sx_otlp_cut_str(v, &any->string_value, max);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        if (any->array_value)
            for (size_t i = 0; i < any->array_value->n_values; i++)
                cut += sx_otlp_fix_any_max(v, any->array_value->values[i], max);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (any->kvlist_value)
            for (size_t i = 0; i < any->kvlist_value->n_values; i++) {
                pb_kv *kv = any->kvlist_value->values[i];
                if (!kv) continue;
                sx_otlp_repair_utf8(v, &kv->key);
                cut += sx_otlp_fix_any_max(v, kv->value, max);
            }
        break;
    default:
        break;
    }
    return cut;
}

/* Repairs and truncates every string in a value already checked by too_deep. */
static void fix_any(struct sx_otlp_vctx *v, pb_any *any)
{
    v->st->values_truncated += sx_otlp_fix_any_max(v, any, v->l->max_attr_value_len);
}

static void add_dropped(uint32_t *count, size_t n)
{
    if (!count) return;
    uint64_t x = (uint64_t)*count + n;
    *count = x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

void sx_otlp_fix_attrs(struct sx_otlp_vctx *v, pb_kv **kv, size_t *n, uint32_t *dropped)
{
    const struct sx_otlp_limits *l = v->l;
    size_t w = 0, before = *n;
    for (size_t i = 0; i < before; i++) {
        pb_kv *x = kv[i];
        const char *why = NULL;
        if (!x) {
            why = "missing attribute";
        } else if (w >= l->max_attributes) {
            why = "over max_attributes";
        } else {
            size_t klen = x->key ? strlen(x->key) : 0;
            if (klen == 0)
                why = "empty attribute key";
            else if (klen > l->max_attr_key_len)
                why = "attribute key too long";
            else if (too_deep(x->value, 0, l->max_any_value_depth))
                why = "attribute value nested too deep";
        }
        if (why) {
            if (!v->attr_reason) v->attr_reason = why;
            continue;
        }
        sx_otlp_repair_utf8(v, &x->key);
        fix_any(v, x->value);
        kv[w++] = x;
    }
    *n = w;
    if (before > w) {
        v->st->attrs_dropped += before - w;
        add_dropped(dropped, before - w);
    }
}

/* --- spans ------------------------------------------------------------------- */

int sx_otlp_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Why a span must be dropped, or NULL when it is valid. */
static const char *span_invalid(pb_span *s)
{
    if (!s) return "missing span";
    if (s->trace_id.len != 16 || sx_otlp_all_zero(s->trace_id.data, 16)) return "invalid trace id";
    if (s->span_id.len != 8 || sx_otlp_all_zero(s->span_id.data, 8)) return "invalid span id";
    if (s->parent_span_id.len != 0 && s->parent_span_id.len != 8) return "invalid parent span id";
    if (s->start_time_unix_nano == 0) return "missing start time";
    if (s->end_time_unix_nano < s->start_time_unix_nano) return "end time before start time";
    return NULL;
}

static void fix_span(struct sx_otlp_vctx *v, pb_span *s)
{
    const struct sx_otlp_limits *l = v->l;

    /* An all-zero parent id is how some senders spell "root". */
    if (s->parent_span_id.len == 8 && sx_otlp_all_zero(s->parent_span_id.data, 8)) {
        s->parent_span_id.len = 0;
        s->parent_span_id.data = NULL;
    }
    sx_otlp_repair_utf8(v, &s->name);
    sx_otlp_repair_utf8(v, &s->trace_state);
    if (s->status) sx_otlp_repair_utf8(v, &s->status->message);
    sx_otlp_fix_attrs(v, s->attributes, &s->n_attributes, &s->dropped_attributes_count);

    if (s->n_events > l->max_events) {
        size_t d = s->n_events - l->max_events;
        v->st->events_dropped += d;
        add_dropped(&s->dropped_events_count, d);
        s->n_events = l->max_events;
    }
    size_t w = 0;
    for (size_t i = 0; i < s->n_events; i++) {
        pb_event *e = s->events[i];
        if (!e) continue;
        sx_otlp_repair_utf8(v, &e->name);
        sx_otlp_fix_attrs(v, e->attributes, &e->n_attributes, &e->dropped_attributes_count);
        s->events[w++] = e;
    }
    s->n_events = w;

    if (s->n_links > l->max_links) {
        size_t d = s->n_links - l->max_links;
        v->st->links_dropped += d;
        add_dropped(&s->dropped_links_count, d);
        s->n_links = l->max_links;
    }
    w = 0;
    for (size_t i = 0; i < s->n_links; i++) {
        pb_link *k = s->links[i];
        if (!k) continue;
        sx_otlp_repair_utf8(v, &k->trace_state);
        sx_otlp_fix_attrs(v, k->attributes, &k->n_attributes, &k->dropped_attributes_count);
        s->links[w++] = k;
    }
    s->n_links = w;
}

void sx_otlp_fix_scope(struct sx_otlp_vctx *v, Opentelemetry__Proto__Common__V1__InstrumentationScope *sc)
{
    if (!sc) return;
    sx_otlp_repair_utf8(v, &sc->name);
    sx_otlp_repair_utf8(v, &sc->version);
    sx_otlp_fix_attrs(v, sc->attributes, &sc->n_attributes, &sc->dropped_attributes_count);
}

void sx_otlp_fix_resource(struct sx_otlp_vctx *v, Opentelemetry__Proto__Resource__V1__Resource *r)
{
    if (!r) return;
    sx_otlp_fix_attrs(v, r->attributes, &r->n_attributes, &r->dropped_attributes_count);
}

void sx_otlp_reason_add(char *r, size_t rlen, const char *fmt, ...)
{
    size_t used = strnlen(r, rlen);
    if (used + 1 >= rlen) return;
    if (used) {
        int k = snprintf(r + used, rlen - used, "; ");
        if (k < 0) return;
        used += (size_t)k;
        if (used + 1 >= rlen) return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r + used, rlen - used, fmt, ap);
    va_end(ap);
}

void sx_otlp_reason_attrs(const struct sx_otlp_vctx *v)
{
    struct sx_otlp_stats *st = v->st;
    if (st->attrs_dropped)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu attribute%s dropped: %s", st->attrs_dropped,
                           st->attrs_dropped == 1 ? "" : "s", v->attr_reason ? v->attr_reason : "invalid");
    if (st->values_truncated)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu attribute value%s truncated to %zu bytes",
                           st->values_truncated, st->values_truncated == 1 ? "" : "s", v->l->max_attr_value_len);
}

static void build_reason(const struct sx_otlp_vctx *v)
{
    struct sx_otlp_stats *st = v->st;
    const struct sx_otlp_limits *l = v->l;
    st->reason[0] = '\0';
    if (st->spans_rejected)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu span%s rejected: %s", st->spans_rejected,
                           st->spans_rejected == 1 ? "" : "s", v->item_reason ? v->item_reason : "invalid");
    sx_otlp_reason_attrs(v);
    if (st->events_dropped)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu event%s dropped: over %zu per span",
                           st->events_dropped, st->events_dropped == 1 ? "" : "s", l->max_events);
    if (st->links_dropped)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu link%s dropped: over %zu per span",
                           st->links_dropped, st->links_dropped == 1 ? "" : "s", l->max_links);
}

void sx_otlp_trace_validate(sx_trace_req *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                            struct sx_otlp_stats *st)
{
    struct sx_otlp_vctx v = {l, a, st, NULL, NULL, NULL};
    memset(st, 0, sizeof(*st));
    if (!req) return;

    size_t rw = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        pb_rs *rs = req->resource_spans[i];
        if (!rs) continue;
        size_t sw = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            pb_ss *ss = rs->scope_spans[j];
            if (!ss) continue;
            size_t kw = 0;
            for (size_t k = 0; k < ss->n_spans; k++) {
                pb_span *s = ss->spans[k];
                st->spans_in++;
                const char *why = span_invalid(s);
                if (why) {
                    st->spans_rejected++;
                    if (!v.item_reason) v.item_reason = why;
                    continue;
                }
                fix_span(&v, s);
                ss->spans[kw++] = s;
            }
            ss->n_spans = kw;
            if (kw == 0) continue; /* scope left empty */
            sx_otlp_fix_scope(&v, ss->scope);
            sx_otlp_repair_utf8(&v, &ss->schema_url);
            rs->scope_spans[sw++] = ss;
        }
        rs->n_scope_spans = sw;
        if (sw == 0) continue; /* resource left empty */
        sx_otlp_fix_resource(&v, rs->resource);
        sx_otlp_repair_utf8(&v, &rs->schema_url);
        req->resource_spans[rw++] = rs;
    }
    req->n_resource_spans = rw;
    st->spans_kept = st->spans_in - st->spans_rejected;
    build_reason(&v);
}
