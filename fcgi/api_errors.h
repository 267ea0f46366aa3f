/* api_errors.h: sextant-api's error-tracking endpoints (api_errors.c): the
 * issues that sextant-persist derives from spans and logs (sql/010_errors.sql),
 * their events and statistics, and the user's triage (status, ignore, merge).
 * Same contract as the handlers in api_int.h: each runs inside the request's
 * RLS transaction, writes a 200 body into r->out and returns SX_OK, or fills an
 * error response and returns SX_ERR. An issue is named by its numeric id or its
 * shortId ("<SLUG>-<seq>"); the id of a merged issue stands for the issue it
 * was merged into. */
#ifndef SX_API_ERRORS_H
#define SX_API_ERRORS_H

#include "api_int.h"

/* GET .../errors?status=&service=&environment=&release=&q=&sort=&from=&to=&timeRange=&limit=&cursor=
 * {"issues":[<issue>],"nextCursor"}. */
int sx_api_errors_list(struct sx_api_req *r);

/* GET .../errors/{issueId}: <issue> with "latestEvent", "traceId", "tags",
 * "hourly" (24 hours) and "daily" (30 days). */
int sx_api_error_get(struct sx_api_req *r, const char *ref);

/* GET .../errors/{issueId}/events?limit=&cursor=: {"events":[<event>],"nextCursor"}. */
int sx_api_error_events(struct sx_api_req *r, const char *ref);

/* PATCH .../errors/{issueId} (ref) or PATCH .../errors (ref NULL, body
 * "ids"): a status change; answers the issue, or {"issues":[...]}. */
int sx_api_errors_patch(struct sx_api_req *r, const char *ref);

/* POST .../errors/merge {"ids":[...],"target"?}: {"issue":<target>,"merged":[ids]}. */
int sx_api_errors_merge(struct sx_api_req *r);

/* GET .../errors/stats?timeRange=&service=: new, regressed and unresolved
 * counts, events per hour and the top issues of the window. */
int sx_api_errors_stats(struct sx_api_req *r);

#endif
