/* stream.h: the Redis ingest stream contract between sextant-ingest and the
 * stream consumers (sextant-persist now, sextant-rollup later).
 *
 * One stream per signal: "<prefix>:stream:spans". Each entry is one project's
 * batch from one request, with the fields:
 *   p  project id (decimal)
 *   k  ingest key id (decimal)
 *   n  item count (spans) after validation
 *   t  receive time, unix nanoseconds (decimal)
 *   b  the normalized ExportTraceServiceRequest, packed protobuf
 * Entries are added by a Lua script that refuses (returns nil) when XLEN is at
 * or over the high-water mark, so ingest answers 503 instead of growing the
 * stream without bound. Consumers read with consumer groups; sextant-persist's
 * group is "persist". Acknowledged entries are trimmed by the consumers
 * (XTRIM MINID below the oldest entry any group still needs); unconsumed
 * entries are never trimmed. */
#ifndef SX_STREAM_H
#define SX_STREAM_H

#define SX_STREAM_SPANS "stream:spans"
#define SX_GROUP_PERSIST "persist"

#define SX_FIELD_PROJECT "p"
#define SX_FIELD_KEY "k"
#define SX_FIELD_COUNT "n"
#define SX_FIELD_TIME "t"
#define SX_FIELD_BODY "b"

#endif
