/* jsonval.c: small JSON documents parsed into an arena tree (see jsonval.h).
 *
 * The parser keeps a stack of the open containers; each new value is linked
 * after the last child of the container on top (tail pointers on the stack),
 * so building is O(1) per value. Duplicate keys are found by a walk of the
 * object's members, which is quadratic in the members of one object:
 * harmless at the documents' sizes (max_items bounds it). */
#include "jsonval.h"

#include "apiutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define DEFAULT_DEPTH 8
#define DEFAULT_ITEMS 10000
#define DEFAULT_STRING 4096

struct frame {
    struct sx_jv *node;
    struct sx_jv *tail;
};

struct ctx {
    struct sx_arena *a;
    size_t max_depth, max_items, max_string;
    struct frame *st;
    size_t depth;           /* open containers */
    size_t items;
    const char *key;        /* pending member key */
    struct sx_jv *root;
    char *err;
    size_t errlen;
    int failed;
};

static int fail(struct ctx *c, const char *fmt, ...) SX_PRINTF(2, 3);
static int fail(struct ctx *c, const char *fmt, ...)
{
    if (!c->failed && c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return 0; /* yajl: stop */
}

/* --- yajl allocation from the arena (a size header per block for realloc) --- */
#define YHDR 16

static void *y_malloc(void *ctx, size_t n)
{
    if (n > SIZE_MAX - YHDR) return NULL;
    unsigned char *p = sx_arena_alloc(ctx, n + YHDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof(n));
    return p + YHDR;
}

static void *y_realloc(void *ctx, void *ptr, size_t n)
{
    if (!ptr) return y_malloc(ctx, n);
    unsigned char *h = (unsigned char *)ptr - YHDR;
    size_t old;
    memcpy(&old, h, sizeof(old));
    if (n <= old) return ptr;
    if (n > SIZE_MAX - YHDR) return NULL;
    unsigned char *q = sx_arena_realloc(ctx, h, old + YHDR, n + YHDR);
    if (!q) return NULL;
    memcpy(q, &n, sizeof(n));
    return q + YHDR;
}

static void y_free(void *ctx, void *ptr)
{
    SX_UNUSED(ctx);
    SX_UNUSED(ptr);
}

/* Makes a node of type t and links it into the open container (or makes it
 * the root); NULL with the context failed. */
static struct sx_jv *add(struct ctx *c, enum sx_jv_type t)
{
    if (++c->items > c->max_items) {
        fail(c, "too many values (at most %zu)", c->max_items);
        return NULL;
    }
    struct sx_jv *v = sx_arena_calloc(c->a, 1, sizeof(*v));
    if (!v) {
        fail(c, "document too large");
        return NULL;
    }
    v->type = t;
    if (c->depth == 0) {
        c->root = v;
        return v;
    }
    struct frame *f = &c->st[c->depth - 1];
    if (f->node->type == SX_JV_OBJECT) {
        v->key = c->key;
        c->key = NULL;
    }
    if (f->tail) f->tail->next = v;
    else f->node->first = v;
    f->tail = v;
    f->node->n++;
    return v;
}

static int text_value(struct ctx *c, enum sx_jv_type t, const unsigned char *s, size_t n)
{
    if (n > c->max_string) return fail(c, "string too long (at most %zu bytes)", c->max_string);
    struct sx_jv *v = add(c, t);
    if (!v) return 0;
    if (!(v->str = sx_arena_strndup(c->a, (const char *)s, n))) return fail(c, "document too large");
    if (t == SX_JV_STRING && memchr(s, '\0', n)) return fail(c, "strings may not contain NUL");
    v->len = n;
    return 1;
}

static int cb_null(void *ctx)
{
    return add(ctx, SX_JV_NULL) != NULL;
}

static int cb_bool(void *ctx, int b)
{
    struct sx_jv *v = add(ctx, SX_JV_BOOL);
    if (v) v->boolean = b != 0;
    return v != NULL;
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    return text_value(ctx, SX_JV_NUMBER, (const unsigned char *)s, n);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    return text_value(ctx, SX_JV_STRING, s, n);
}

static int open_container(struct ctx *c, enum sx_jv_type t)
{
    if (c->depth >= c->max_depth) return fail(c, "nested too deeply (at most %zu levels)", c->max_depth);
    struct sx_jv *v = add(c, t);
    if (!v) return 0;
    c->st[c->depth].node = v;
    c->st[c->depth].tail = NULL;
    c->depth++;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, SX_JV_OBJECT);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, SX_JV_ARRAY);
}

static int cb_end(void *ctx)
{
    struct ctx *c = ctx;
    c->depth--;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
    struct ctx *c = ctx;
    if (n > c->max_string) return fail(c, "key too long (at most %zu bytes)", c->max_string);
    if (memchr(s, '\0', n)) return fail(c, "keys may not contain NUL");
    const struct sx_jv *o = c->st[c->depth - 1].node;
    for (const struct sx_jv *m = o->first; m; m = m->next)
        if (strlen(m->key) == n && memcmp(m->key, s, n) == 0) return fail(c, "duplicate key \"%.64s\"", m->key);
    if (!(c->key = sx_arena_strndup(c->a, (const char *)s, n))) return fail(c, "document too large");
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string, cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

int sx_jv_parse(const char *buf, size_t len, const struct sx_jv_limits *l, struct sx_arena *a, struct sx_jv **out,
                char *err, size_t errlen)
{
    struct ctx c;
    yajl_alloc_funcs af = {y_malloc, y_realloc, y_free, a};

    *out = NULL;
    if (err && errlen) err[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.a = a;
    c.err = err;
    c.errlen = errlen;
    c.max_depth = l && l->max_depth ? l->max_depth : DEFAULT_DEPTH;
    c.max_items = l && l->max_items ? l->max_items : DEFAULT_ITEMS;
    c.max_string = l && l->max_string ? l->max_string : DEFAULT_STRING;
    if (!(c.st = sx_arena_alloc(a, c.max_depth * sizeof(*c.st)))) {
        fail(&c, "document too large");
        return SX_ERR;
    }
    yajl_handle h = yajl_alloc(&callbacks, &af, &c);
    if (!h) {
        fail(&c, "document too large");
        return SX_ERR;
    }
    const unsigned char *p = (const unsigned char *)(buf ? buf : "");
    yajl_status ys = yajl_parse(h, p, len);
    if (ys == yajl_status_ok) ys = yajl_complete_parse(h);
    if (ys != yajl_status_ok && !c.failed) {
        if (sx_arena_failed(a)) {
            fail(&c, "document too large");
        } else {
            unsigned char *msg = yajl_get_error(h, 0, p, len);
            fail(&c, "invalid JSON: %s", msg ? (const char *)msg : "syntax error");
            if (msg) yajl_free_error(h, msg);
            if (err && errlen) { /* yajl's message ends with a newline */
                size_t el = strlen(err);
                while (el > 0 && (err[el - 1] == '\n' || err[el - 1] == ' ')) err[--el] = '\0';
            }
        }
    }
    yajl_free(h);
    if (c.failed) return SX_ERR;
    if (!c.root) {
        fail(&c, "invalid JSON: empty document");
        return SX_ERR;
    }
    *out = c.root;
    return SX_OK;
}

const struct sx_jv *sx_jv_get(const struct sx_jv *o, const char *key)
{
    if (!o || o->type != SX_JV_OBJECT) return NULL;
    for (const struct sx_jv *m = o->first; m; m = m->next)
        if (strcmp(m->key, key) == 0) return m;
    return NULL;
}

int sx_jv_int(const struct sx_jv *v, long long lo, long long hi, long long *out)
{
    if (!v) return SX_ERR;
    if (v->type == SX_JV_STRING && (v->len == 0 || v->str[0] == '-')) return SX_ERR;
    if (v->type != SX_JV_NUMBER && v->type != SX_JV_STRING) return SX_ERR;
    return sx_api_parse_int(v->str, lo, hi, out);
}

void sx_jv_write(struct sx_json *w, const struct sx_jv *v)
{
    switch (v->type) {
    case SX_JV_NULL: sx_json_null(w); break;
    case SX_JV_BOOL: sx_json_bool(w, v->boolean); break;
    case SX_JV_NUMBER: sx_json_raw(w, v->str, v->len); break;
    case SX_JV_STRING: sx_json_str(w, v->str, v->len); break;
    case SX_JV_ARRAY:
        sx_json_arr_open(w);
        for (const struct sx_jv *c = v->first; c; c = c->next) sx_jv_write(w, c);
        sx_json_arr_close(w);
        break;
    case SX_JV_OBJECT:
        sx_json_obj_open(w);
        for (const struct sx_jv *c = v->first; c; c = c->next) {
            sx_json_key(w, c->key);
            sx_jv_write(w, c);
        }
        sx_json_obj_close(w);
        break;
    }
}
