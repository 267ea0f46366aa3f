/* stream.h: the Redis ingest stream contract between sextant-ingest and the
 * stream consumers (sextant-persist now, sextant-rollup later).
 *
 * One stream per signal: "<prefix>:stream:spans", "<prefix>:stream:logs" and
 * "<prefix>:stream:metrics". Each entry is one project's batch from one
 * request, with the same fields on every stream:
 *   p  project id (decimal)
 *   k  ingest key id (decimal)
 *   n  item count after validation: spans, log records, or data points (of
 *      every kind)
 *   t  receive time, unix nanoseconds (decimal); log records with neither
 *      time nor observed time carry both as 0: use t for them
 *   b  the normalized ExportTraceServiceRequest / ExportLogsServiceRequest /
 *      ExportMetricsServiceRequest, packed protobuf
 * Entries are added by a Lua script that refuses (returns nil) when XLEN is at
 * or over the high-water mark, so ingest answers 503 instead of growing the
 * stream without bound. Consumers read with consumer groups; sextant-persist's
 * group is "persist". Acknowledged entries are trimmed by the consumers
 * (XTRIM MINID below the oldest entry any group still needs); unconsumed
 * entries are never trimmed. */
#ifndef SX_STREAM_H
#define SX_STREAM_H

#define SX_STREAM_SPANS "stream:spans"
#define SX_STREAM_LOGS "stream:logs"
#define SX_STREAM_METRICS "stream:metrics"
#define SX_GROUP_PERSIST "persist"

#define SX_FIELD_PROJECT "p"
#define SX_FIELD_KEY "k"
#define SX_FIELD_COUNT "n"
#define SX_FIELD_TIME "t"
#define SX_FIELD_BODY "b"

#endif
