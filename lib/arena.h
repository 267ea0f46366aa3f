/* arena.h: per-request bump allocator with a hard cap.
 *
 * One arena per request (nginx r->pool): protobuf-c and yajl allocate from it
 * and the whole request is released at once with sx_arena_reset. Allocation
 * fails softly (NULL) once the cap is reached, so sizes that come from input
 * turn into a 400/413 instead of an abort. Not thread-safe: one per thread. */
#ifndef SX_ARENA_H
#define SX_ARENA_H

#include "sx.h"

#include <protobuf-c/protobuf-c.h>

struct sx_arena;

/* Creates an arena whose chunks are at least chunk_size bytes and whose total
 * reserved memory never exceeds max_bytes. Aborts on OOM (fixed size).
 * Caller frees with sx_arena_destroy. */
struct sx_arena *sx_arena_create(size_t chunk_size, size_t max_bytes);

/* Frees every chunk; accepts NULL. */
void sx_arena_destroy(struct sx_arena *a);

/* Returns 16-byte aligned memory, or NULL when the cap would be exceeded or
 * malloc failed. Memory lives until the next reset. */
void *sx_arena_alloc(struct sx_arena *a, size_t n);
void *sx_arena_calloc(struct sx_arena *a, size_t n, size_t size);
/* Copies n bytes and adds a NUL; NULL on failure. */
char *sx_arena_strndup(struct sx_arena *a, const char *s, size_t n);
/* Grows the most recent allocation p (old size old_n) to new_n when possible,
 * otherwise copies; NULL on failure (p stays valid). */
void *sx_arena_realloc(struct sx_arena *a, void *p, size_t old_n, size_t new_n);

/* Releases all allocations; keeps the first chunk for reuse. */
void sx_arena_reset(struct sx_arena *a);

/* Bytes handed out since the last reset, and reserved from malloc. */
size_t sx_arena_used(const struct sx_arena *a);
size_t sx_arena_reserved(const struct sx_arena *a);
/* Set when an allocation failed since the last reset (cap reached). */
int sx_arena_failed(const struct sx_arena *a);

/* Fills a ProtobufCAllocator that allocates from a (free is a no-op). */
void sx_arena_pb_allocator(struct sx_arena *a, ProtobufCAllocator *out);

#endif
