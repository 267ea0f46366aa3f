/* sx.h: return codes and tiny helpers shared by every Sextant component. */
#ifndef SX_H
#define SX_H

#include <stddef.h>
#include <stdint.h>

#define SX_OK 0
#define SX_ERR (-1)
#define SX_AGAIN (-2)

#define SX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SX_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SX_UNUSED(x) ((void)(x))

#if defined(__GNUC__)
#define SX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SX_NORETURN __attribute__((noreturn))
#else
#define SX_PRINTF(f, a)
#define SX_NORETURN
#endif

/* Allocation that aborts on out-of-memory: only for fixed, small sizes that
 * do not come from input (Redis zmalloc). Sizes from input use arenas or
 * sx_buf, which fail softly. */
void *sx_xmalloc(size_t n);
void *sx_xcalloc(size_t n, size_t size);
char *sx_xstrdup(const char *s);

/* Wall clock in unix nanoseconds / milliseconds, and a monotonic clock in ns. */
int64_t sx_now_ns(void);
int64_t sx_now_ms(void);
int64_t sx_mono_ns(void);

#endif
