/* jsonval.h: small JSON documents (API request bodies) parsed into a tree in
 * an arena, with limits.
 *
 * yajl's callback parser builds the tree; yajl and the nodes allocate from
 * the request's arena, so the whole document goes with sx_arena_reset. Meant
 * for bodies of a few KB (PATCH/POST of the API), not for telemetry: OTLP
 * JSON has its own streaming decoder (otlp_json.c). No I/O.
 *
 * yajl does not survive a failed allocation of its own buffers: give an
 * arena far larger than the document (the API caps bodies at 64 KB and its
 * arenas at 64 MB); the tree nodes fail softly. */
#ifndef SX_JSONVAL_H
#define SX_JSONVAL_H

#include "arena.h"
#include "json.h"
#include "sx.h"

enum sx_jv_type { SX_JV_NULL, SX_JV_BOOL, SX_JV_NUMBER, SX_JV_STRING, SX_JV_ARRAY, SX_JV_OBJECT };

struct sx_jv {
    enum sx_jv_type type;
    int boolean;            /* SX_JV_BOOL */
    const char *str;        /* STRING: the value (UTF-8, NUL-terminated); NUMBER: its text */
    size_t len;
    const char *key;        /* the member's key when the parent is an object */
    struct sx_jv *first;    /* ARRAY / OBJECT: the children in document order */
    struct sx_jv *next;     /* the next sibling */
    size_t n;               /* ARRAY / OBJECT: number of children */
};

/* Limits of one document; 0 takes the default in brackets. */
struct sx_jv_limits {
    size_t max_depth;       /* nesting of arrays and objects [8] */
    size_t max_items;       /* values in the whole document [10000] */
    size_t max_string;      /* bytes of one string or key [4096] */
};

/* Parses len bytes at buf into *out (arena memory of a). Objects with a key
 * given twice are refused. SX_ERR with a message in err (invalid JSON with
 * yajl's reason, a limit passed, a duplicate key, arena exhausted). */
int sx_jv_parse(const char *buf, size_t len, const struct sx_jv_limits *l, struct sx_arena *a, struct sx_jv **out,
                char *err, size_t errlen);

/* The member key of object o, or NULL when o is not an object or lacks it. */
const struct sx_jv *sx_jv_get(const struct sx_jv *o, const char *key);

/* Reads an integer in [lo, hi] from a number without fraction or exponent,
 * or from a string of decimal digits ("42", as ids travel); SX_ERR otherwise. */
int sx_jv_int(const struct sx_jv *v, long long lo, long long hi, long long *out);

/* Writes v back as compact JSON text with w (errors stick in w->err). */
void sx_jv_write(struct sx_json *w, const struct sx_jv *v);

#endif
