/* api_perf.h: sextant-api's API performance endpoints (api_perf.c), from the span rollups red_1m,
 * edges_1m and db_statements_1m (sql/007_red.sql). Same contract as the handlers in api_int.h: each
 * runs inside the request's RLS transaction, writes a 200 body into r->out and returns SX_OK, or
 * fills an error response and returns SX_ERR. */
#ifndef SX_API_PERF_H
#define SX_API_PERF_H

#include "api_int.h"

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
 * against the 24 hours before it (lib/red.h):
 * {"windowMs","endpoints":[{"service","operation","kind","status","reason",
 *   "requests","errors","errorRate","p95Ms","baseline":{"requests","errors","errorRate","p95Ms"}}],
 *  "summary":{"healthy","degraded","failing"}}. */
int sx_api_perf_health(struct sx_api_req *r);

/* GET .../services/{name}/database?timeRange=|from&to[&limit=]: the
 * slowest statements by p95:
 * {"statements":[{"statement","dbSystem","dbName","calls","errors","errorRate",
 *   "avgMs","maxMs","p50Ms","p95Ms","p99Ms"}]}. */
int sx_api_perf_database(struct sx_api_req *r, const char *service);

#endif
