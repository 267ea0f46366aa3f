/* copyrow.c: COPY text field writers shared by spanrow.c and logrow.c; see
 * copyrow.h. */
#include "copyrow.h"

#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;

static const char hexdig[] = "0123456789abcdef";

int sx_copyrow_text(struct sx_buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* run: start of bytes copied verbatim */
    while (i < n) {
        unsigned char c = s[i];
        const char *esc;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = sx_utf8_seq_len(s + i, n - i);
            if (l) {
                i += l;
                continue;
            }
            esc = "\xEF\xBF\xBD";
        } else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == 0) esc = "\xEF\xBF\xBD";
        else {
            i++; /* other control characters are literal in COPY text */
            continue;
        }
        if (i > run && sx_buf_append(out, s + run, i - run) != SX_OK) return SX_ERR;
        if (sx_buf_puts(out, esc) != SX_OK) return SX_ERR;
        i++;
        run = i;
    }
    if (i > run && sx_buf_append(out, s + run, i - run) != SX_OK) return SX_ERR;
    return SX_OK;
}

int sx_copyrow_opt_text(struct sx_buf *out, const char *s)
{
    if (!s || !*s) return sx_buf_puts(out, "\\N");
    return sx_copyrow_text(out, s, strlen(s));
}

int sx_copyrow_json(struct sx_buf *out, const char *s, size_t n)
{
    while (n) {
        const char *bs = memchr(s, '\\', n);
        size_t chunk = bs ? (size_t)(bs - s) : n;
        if (chunk && sx_buf_append(out, s, chunk) != SX_OK) return SX_ERR;
        if (!bs) break;
        if (sx_buf_append(out, "\\\\", 2) != SX_OK) return SX_ERR;
        s = bs + 1;
        n -= chunk + 1;
    }
    return SX_OK;
}

int sx_copyrow_int(struct sx_buf *out, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return sx_buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

int sx_copyrow_bytea(struct sx_buf *out, const uint8_t *p, size_t n)
{
    char *dst = sx_buf_reserve(out, 3 + 2 * n);
    if (!dst) return SX_ERR;
    dst[0] = '\\';
    dst[1] = '\\';
    dst[2] = 'x';
    for (size_t i = 0; i < n; i++) {
        dst[3 + 2 * i] = hexdig[p[i] >> 4];
        dst[4 + 2 * i] = hexdig[p[i] & 15];
    }
    sx_buf_commit(out, 3 + 2 * n);
    return SX_OK;
}

int sx_copyrow_base64(struct sx_buf *b, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sx_buf_reset(b);
    char *d = sx_buf_reserve(b, 2 + 4 * ((n + 2) / 3));
    if (!d) return SX_ERR;
    size_t o = 0, i = 0;
    d[o++] = '"';
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = tbl[(v >> 6) & 63];
        d[o++] = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = '=';
        d[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        d[o++] = tbl[v >> 18];
        d[o++] = tbl[(v >> 12) & 63];
        d[o++] = tbl[(v >> 6) & 63];
        d[o++] = '=';
    }
    d[o++] = '"';
    sx_buf_commit(b, o);
    return SX_OK;
}

void sx_copyrow_json_any(struct sx_json *w, struct sx_buf *b64, const pb_any *v, int depth)
{
    if (!v || depth > SX_COPYROW_ANY_MAX_DEPTH) {
        sx_json_null(w);
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        sx_json_strz(w, v->string_value ? v->string_value : "");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        sx_json_bool(w, v->bool_value != 0);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        sx_json_int(w, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        sx_json_double(w, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        if (sx_copyrow_base64(b64, v->bytes_value.data, v->bytes_value.len) != SX_OK) w->err = SX_ERR;
        else sx_json_raw(w, b64->data, b64->len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        sx_json_arr_open(w);
        if (v->array_value)
            for (size_t i = 0; i < v->array_value->n_values; i++)
                sx_copyrow_json_any(w, b64, v->array_value->values[i], depth + 1);
        sx_json_arr_close(w);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (v->kvlist_value)
            sx_copyrow_json_kvs(w, b64, v->kvlist_value->values, v->kvlist_value->n_values, depth + 1);
        else {
            sx_json_obj_open(w);
            sx_json_obj_close(w);
        }
        break;
    default:
        sx_json_null(w);
        break;
    }
}

void sx_copyrow_json_kvs(struct sx_json *w, struct sx_buf *b64, pb_kv **kvs, size_t n, int depth)
{
    sx_json_obj_open(w);
    for (size_t i = 0; i < n; i++) {
        if (!kvs[i]) continue;
        sx_json_key(w, kvs[i]->key ? kvs[i]->key : "");
        sx_copyrow_json_any(w, b64, kvs[i]->value, depth);
    }
    sx_json_obj_close(w);
}

int sx_copyrow_attrs(struct sx_buf *out, struct sx_buf *json, struct sx_buf *b64, pb_kv **kvs, size_t n)
{
    if (n == 0) return sx_buf_puts(out, "{}");
    struct sx_json w;
    sx_buf_reset(json);
    sx_json_init(&w, json);
    sx_copyrow_json_kvs(&w, b64, kvs, n, 0);
    if (w.err) return SX_ERR;
    return sx_copyrow_json(out, json->data, json->len);
}

const char *sx_copyrow_find_str(pb_kv **kvs, size_t n, const char *key)
{
    for (size_t i = n; i-- > 0;) {
        const pb_kv *kv = kvs[i];
        if (!kv || !kv->key || !kv->value || strcmp(kv->key, key) != 0) continue;
        if (kv->value->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE ||
            !kv->value->string_value || !kv->value->string_value[0])
            return NULL;
        return kv->value->string_value;
    }
    return NULL;
}

void sx_copyrow_days_init(struct sx_copyrow_days *d)
{
    d->v = NULL;
    d->n = d->cap = 0;
    d->sorted = 1;
}

void sx_copyrow_days_term(struct sx_copyrow_days *d)
{
    free(d->v);
    sx_copyrow_days_init(d);
}

void sx_copyrow_days_reset(struct sx_copyrow_days *d)
{
    d->n = 0;
    d->sorted = 1;
}

int sx_copyrow_days_add(struct sx_copyrow_days *d, int64_t day)
{
    if (d->n && d->v[d->n - 1] == day) return SX_OK;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        int64_t *p = realloc(d->v, cap * sizeof(*p));
        if (!p) return SX_ERR;
        d->v = p;
        d->cap = cap;
    }
    d->v[d->n++] = day;
    if (d->n > 1) d->sorted = 0;
    return SX_OK;
}

static int day_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

const int64_t *sx_copyrow_days_get(struct sx_copyrow_days *d, size_t *n)
{
    if (!d->sorted && d->n > 1) {
        qsort(d->v, d->n, sizeof(d->v[0]), day_cmp);
        size_t w = 1;
        for (size_t i = 1; i < d->n; i++)
            if (d->v[i] != d->v[w - 1]) d->v[w++] = d->v[i];
        d->n = w;
    }
    d->sorted = 1;
    *n = d->n;
    return d->v;
}

void sx_copyrow_scratch_init(struct sx_copyrow_scratch *s, size_t max_json)
{
    sx_buf_init(&s->json, max_json);
    sx_buf_init(&s->b64, max_json);
    sx_buf_init(&s->res, max_json * 2);
    sx_copyrow_days_init(&s->days);
}

void sx_copyrow_scratch_term(struct sx_copyrow_scratch *s)
{
    sx_buf_term(&s->json);
    sx_buf_term(&s->b64);
    sx_buf_term(&s->res);
    sx_copyrow_days_term(&s->days);
}
