/* api_perf.h: sextant-api's API performance endpoints (api_perf.c), from
 * the span rollups red_1m and edges_1m. Same contract as the handlers in
 * api_int.h: each runs inside the request's RLS transaction, writes a 200
 * body into r->out and returns SX_OK, or fills an error response and
 * returns SX_ERR. */
#ifndef SX_API_PERF_H
#define SX_API_PERF_H

#include "api_int.h"

/* GET .../services/{name}/performance?timeRange=|from&to:
 * {"endpoints":[{"operation","kind","requests","errors","errorRate",
 *   "status":{"2xx","3xx","4xx","5xx"},
 *   "durationMs":{"min","avg","max","p50","p95","p99"}}],
 *  "series":{"requests":[[unixMs,n]...],"errors":[...],"p95":[...]}}
 * (series: one point per minute that has requests). */
int sx_api_perf_service(struct sx_api_req *r, const char *service);

/* GET .../services/{name}/dependencies (service non-NULL: the edges from or
 * to it) and GET .../service-map (service NULL: every edge):
 * {"edges":[{"from","to","calls","errors","p95Ms"}]}. */
int sx_api_perf_edges(struct sx_api_req *r, const char *service);

#endif
