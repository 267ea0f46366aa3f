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
 * stream without bound. The same script checks the project's rate limit and
 * quotas and counts the batch (usage.h). Consumers read with consumer groups; sextant-persist's
 * group is "persist". Acknowledged entries are trimmed by the consumers
 * (XTRIM MINID below the oldest entry any group still needs); unconsumed
 * entries are never trimmed.
 *
 * Live streams, one per project: "<prefix>:{p<id>}:live", capped with
 * XADD MAXLEN ~ live_maxlen (5000; they are ephemeral: sextant-sse fans them
 * out to browsers, which resume with Last-Event-ID = the stream entry id).
 * Entries are added only after the data they announce is committed to
 * PostgreSQL. Every entry has a field "type"; the other fields depend on it:
 *   spans            one committed ingest entry's spans (sextant-persist)
 *   logs             one committed ingest entry's log records (sextant-persist)
 *   metrics          one applied ingest entry's metrics (sextant-rollup)
 *     project  project id (decimal)
 *     total    items in the ingest entry (decimal)
 *     items    compact JSON array of at most 50 items (lib/live.h; README
 *              "Live stream" has each type's fields)
 *   These three are published only while "<prefix>:{p<id>}:live:watch"
 *   exists: sextant-sse SETs it (EX 60, every 20 s) while it has an open
 *   stream on the project; producers cache the answer for 2 s per project
 *   and send their XADDs in the round trip of the batch's XACK.
 *   issue.new        a new issue was created (sextant-persist, after the
 *                    COMMIT that created it; always published)
 *   issue.regressed  a resolved issue saw a new event and is unresolved
 *                    again (substatus regressed)
 *     project  project id (decimal)
 *     issue    issue id (decimal, issues.id)
 *     shortId  "<SLUG>-<short_seq>", the slug upper-cased
 *     title    the issue's title at that moment
 * Affected users of an issue are counted in the HyperLogLog
 * "<prefix>:{p<id>}:issue:<issue id>:users" (PFADD of enduser.id / user.id,
 * flushed into issues.user_count by sextant-persist every few seconds). */
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

#define SX_LIVE_SUFFIX "live"
#define SX_LIVE_ISSUE_NEW "issue.new"
#define SX_LIVE_ISSUE_REGRESSED "issue.regressed"

#endif
