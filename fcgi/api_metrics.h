/* api_metrics.h: sextant-api's metrics endpoints (api_metrics.c). Same
 * contract as the handlers in api_int.h: each runs inside the request's RLS
 * transaction, writes a 200 body into r->out and returns SX_OK, or fills an
 * error response and returns SX_ERR. */
#ifndef SX_API_METRICS_H
#define SX_API_METRICS_H

#include "api_int.h"

/* GET .../metrics: {"metrics":[{"name","type","unit","description","seriesCount"}]}. */
int sx_api_metrics_list(struct sx_api_req *r);

/* GET .../metrics/query?name=&agg=&step=&groupBy=&filter=&from=&to=&timeRange=:
 * {"series":[{"labels":{...},"points":[[unixMs, value], ...]}]} from the
 * one-minute rollups (metric_points_1m). */
int sx_api_metrics_query(struct sx_api_req *r);

/* GET /api/v1/projects/{project}/metrics/{name}/labels: the attribute keys of
 * the metric's series, each with its distinct values (the first
 * MAX_LABEL_VALUES in byte order) and how many there are:
 * {"name","seriesCount","labels":[{"key","valueCount","values":[...]}]};
 * 404 when the project has no series of that name. */
int sx_api_metric_labels(struct sx_api_req *r, const char *name);

#endif
