/* api_perf.h: sextant-api's API performance endpoints (api_perf.c), from the span rollups red_1m,
 * edges_1m and db_statements_1m (sql/007_red.sql). Same contract as the handlers in api_int.h: each
 * runs inside the request's RLS transaction, writes a 200 body into r->out and returns SX_OK, or
 * fills an error response and returns SX_ERR. */
#ifndef SX_API_PERF_H
#define SX_API_PERF_H

#include "api_int.h"
#include "red.h"

/* GET .../services/{name}/performance?timeRange=|from&to[&step=]:
 * {"service","fromUnixNano","toUnixNano","stepMs",
 *  "endpoints":[{"operation","kind","requests","errors","errorRate","rps",
 *    "s2xx","s3xx","s4xx","s5xx","minMs","avgMs","maxMs","p50Ms","p95Ms","p99Ms"}],
 *  "series":[{"timeUnixMs","requests","errors","p95Ms"}]}
 * (series: one point per step that has requests). */
int sx_api_perf_service(struct sx_api_req *r, const char *service);

/* GET .../services/{name}/dependencies (service non-NULL: the edges from or
 * to it) and GET .../service-map (service NULL: every edge):
 * {"nodes":[{"service"}],"edges":[{"from","to","calls","errors","errorRate","p95Ms"}]}. */
int sx_api_perf_edges(struct sx_api_req *r, const char *service);

/* GET .../health?window=15m[&service=]: every endpoint judged on the window
 * against the 24 hours before it, from the hour (24 to 25 hours; lib/red.h):
 * {"windowMs","endpoints":[{"service","operation","kind","status","reason",
 *   "requests","errors","errorRate","p95Ms","baseline":{"requests","errors","errorRate","p95Ms"}}],
 *  "summary":{"healthy","degraded","failing"}}. */
int sx_api_perf_health(struct sx_api_req *r);

/* GET .../services/{name}/database?timeRange=|from&to[&limit=]: the
 * slowest statements by p95:
 * {"statements":[{"statement","dbSystem","dbName","calls","errors","errorRate",
 *   "avgMs","maxMs","p50Ms","p95Ms","p99Ms"}]}. */
int sx_api_perf_database(struct sx_api_req *r, const char *service);

/* ---- shared with api_overview.c -------------------------------------------- */

/* The recent window of the health judgement when none is asked for. */
#define SX_API_HEALTH_WINDOW_NS (15LL * 60 * 1000000000LL)

/* Writes "ARRAY[coalesce(sum(dur_buckets[1])<filter>, 0), ...]", the
 * element-wise sum of red_1m's bucket arrays, into out (4096 bytes hold it). */
void sx_api_red_sum_buckets(char *out, size_t len, const char *filter);
/* The whole hours inside [from, to] (to inclusive, unix ns): *a the first
 * hour's start, *h the end of the last one, for sx_api_red_source. With hours
 * 0, or none inside, *a = *h = to + 1 (minutes only). */
void sx_api_red_hours(int64_t from, int64_t to, int hours, int64_t *a, int64_t *h);
/* Writes into out a row source with red_1m's columns, "(SELECT ... UNION
 * ALL SELECT ...)", of the rows of [$pfrom, $pto] (bind the values of
 * sx_api_red_hours to $pa and $ph): the whole hours [$pa, $ph) from red_1h
 * (sql/018), the minutes before and after them from red_1m. Sums over it equal
 * sums over red_1m alone. where: more conditions for both tables (fixed text
 * and placeholders). SX_ERR when out is too small. */
int sx_api_red_source(char *out, size_t len, const char *where, int pfrom, int pa, int ph, int pto);
/* Parses "{1,2,...}" into SX_RED_NBUCKETS counts; missing ones are 0. */
void sx_api_red_parse_buckets(const char *s, double *out);
/* A result column as a double; NAN when NULL. */
double sx_api_col_dbl(const PGresult *res, int row, int col);

/* The health query: per (project, service, operation, kind) of red_1m, the
 * recent window (window ns before now, its start rounded down to the
 * minute: *recent_from) and the 24 hours before it, from the hour at or
 * before (*base_from; 24 to 25 hours, read mostly from red_1h), over the
 * projects of the array literal projects ("{1,2}", nprojects of them; RLS
 * still applies), optionally one service. Rows ordered by project, then
 * service, operation and kind; judge each with sx_api_perf_judge_row. The
 * caller PQclears the result; NULL with the error response set. */
PGresult *sx_api_perf_health_rows(struct sx_api_req *r, const char *projects, size_t nprojects, int64_t window,
                                  const char *service, int64_t *recent_from, int64_t *base_from);
/* Judges row of a sx_api_perf_health_rows result (column 0 is the
 * project id): fills recent and base and writes the reason. */
enum sx_red_health sx_api_perf_judge_row(const PGresult *res, int row, struct sx_red_period *recent,
                                         struct sx_red_period *base, char *reason, size_t reasonlen);

#endif
