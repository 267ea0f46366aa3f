/* arena.c: chunked bump allocator; see arena.h for the design. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    /* data follows, aligned */
};

struct sx_arena {
    struct arena_chunk *head; /* current chunk; older ones follow via next */
    size_t chunk_size;
    size_t max_bytes;
    size_t reserved;
    size_t used;
    void *last; /* most recent allocation, for in-place realloc */
    int failed;
};

#define CHUNK_HDR ((sizeof(struct arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

static unsigned char *chunk_data(struct arena_chunk *c)
{
    return (unsigned char *)c + CHUNK_HDR;
}

static struct arena_chunk *chunk_new(struct sx_arena *a, size_t min)
{
    size_t size = min > a->chunk_size ? min : a->chunk_size;
    if (a->reserved + size + CHUNK_HDR > a->max_bytes) {
        /* Last chance: exactly what is needed, if it fits. */
        size = min;
        if (a->reserved + size + CHUNK_HDR > a->max_bytes) return NULL;
    }
    struct arena_chunk *c = malloc(CHUNK_HDR + size);
    if (!c) return NULL;
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
    a->reserved += CHUNK_HDR + size;
    return c;
}

struct sx_arena *sx_arena_create(size_t chunk_size, size_t max_bytes)
{
    struct sx_arena *a = sx_xcalloc(1, sizeof(*a));
    a->chunk_size = chunk_size < 1024 ? 1024 : chunk_size;
    a->max_bytes = max_bytes;
    return a;
}

void sx_arena_destroy(struct sx_arena *a)
{
    if (!a) return;
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

void *sx_arena_alloc(struct sx_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n) { /* overflow */
        a->failed = 1;
        return NULL;
    }
    if (need == 0) need = ARENA_ALIGN;
    struct arena_chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        c = chunk_new(a, need);
        if (!c) {
            a->failed = 1;
            return NULL;
        }
    }
    void *p = chunk_data(c) + c->used;
    c->used += need;
    a->used += need;
    a->last = p;
    return p;
}

void *sx_arena_calloc(struct sx_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        a->failed = 1;
        return NULL;
    }
    void *p = sx_arena_alloc(a, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

char *sx_arena_strndup(struct sx_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) return NULL;
    char *p = sx_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *sx_arena_realloc(struct sx_arena *a, void *p, size_t old_n, size_t new_n)
{
    if (!p) return sx_arena_alloc(a, new_n);
    if (new_n <= old_n) return p;
    struct arena_chunk *c = a->head;
    if (p == a->last && c) {
        size_t old_al = (old_n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        size_t new_al = (new_n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        if (new_al >= new_n && (unsigned char *)p + old_al == chunk_data(c) + c->used &&
            c->size - c->used >= new_al - old_al) {
            c->used += new_al - old_al;
            a->used += new_al - old_al;
            return p;
        }
    }
    void *q = sx_arena_alloc(a, new_n);
    if (!q) return NULL;
    memcpy(q, p, old_n);
    return q;
}

void sx_arena_reset(struct sx_arena *a)
{
    if (!a->head) return;
    /* Keep the oldest chunk (the first one made, normally chunk_size). */
    struct arena_chunk *keep = a->head;
    while (keep->next) {
        struct arena_chunk *n = keep->next;
        free(keep);
        keep = n;
    }
    a->head = keep;
    keep->used = 0;
    keep->next = NULL;
    a->reserved = CHUNK_HDR + keep->size;
    a->used = 0;
    a->last = NULL;
    a->failed = 0;
    /* A huge first chunk (one big request) is not kept forever. */
    if (keep->size > a->chunk_size) {
        free(keep);
        a->head = NULL;
        a->reserved = 0;
    }
}

size_t sx_arena_used(const struct sx_arena *a)
{
    return a->used;
}

size_t sx_arena_reserved(const struct sx_arena *a)
{
    return a->reserved;
}

int sx_arena_failed(const struct sx_arena *a)
{
    return a->failed;
}

static void *pb_alloc(void *data, size_t size)
{
    return sx_arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
    SX_UNUSED(data);
    SX_UNUSED(p);
}

void sx_arena_pb_allocator(struct sx_arena *a, ProtobufCAllocator *out)
{
    out->alloc = pb_alloc;
    out->free = pb_free;
    out->allocator_data = a;
}
