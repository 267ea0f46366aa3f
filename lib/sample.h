/* sample.h: trace sampling at ingest, decided by trace id so a trace is kept or dropped whole.
 *
 * A trace is kept when the low 56 bits of its id (bytes 9..15, big-endian:
 * the part W3C Trace Context level 2 makes random) are below
 * rate x 2^56. Every ingest process, and anyone else, reaches the same answer
 * for the same id, whatever batch its spans arrive in. Whatever the rate,
 * a span is kept when its status is ERROR, when it has an event named
 * "exception", or when its own duration is at least the slow threshold
 * (slow_ns > 0). Ingest never sees whole traces, so "slow traces" is decided
 * per span: a slow span (a slow root span is a slow trace) is kept, but
 * the other spans of its trace are kept only by the id rule. No I/O. */
#ifndef SX_SAMPLE_H
#define SX_SAMPLE_H

#include "otlp.h"

#include <stdint.h>

#define SX_SAMPLE_ONE (UINT64_C(1) << 56)

/* rate (clamped to 0..1) x 2^56: the threshold sx_sample_keep compares with. */
uint64_t sx_sample_threshold(double rate);

/* Nonzero when the trace with this id (len bytes; 16 for a valid one) is
 * kept at threshold. Ids shorter than 8 bytes are kept. */
int sx_sample_keep(const uint8_t *id, size_t len, uint64_t threshold);

/* Drops from req the spans that sampling at rate does not keep (rules
 * above), removing scopes and resources left empty. Returns the number of
 * spans dropped (0 and no work when rate >= 1). */
size_t sx_sample_traces(sx_trace_req *req, double rate, uint64_t slow_ns);

#endif
