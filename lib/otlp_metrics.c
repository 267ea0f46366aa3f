/* otlp_metrics.c: OTLP metrics requests: decoding (protobuf and JSON through
 * the shared engines), validation and normalization, counting, packing and
 * the ExportMetricsServiceResponse.
 *
 * Items are data points of every kind (number, histogram, exponential
 * histogram, summary): they are what max_points limits, what the stream
 * entry's n counts and what partial_success rejects. Validation is one pass
 * in place: a metric without a name or without data is dropped whole (its
 * points counted as rejected), a point without timeUnixNano is dropped, and
 * so is a histogram point whose buckets do not match its bounds; exemplars
 * with ids of the wrong length lose the ids; attributes are trimmed to the
 * span limits; invalid UTF-8 becomes U+FFFD; metrics, scopes and resources
 * left empty are removed. */
#include "otlp_int.h"

#include <math.h>
#include <string.h>

typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pb_rm;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pb_sm;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_ndp;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hdp;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint pb_edp;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint pb_sdp;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pb_exemplar;

static const ProtobufCMessageDescriptor *const point_items[] = {
    &opentelemetry__proto__metrics__v1__number_data_point__descriptor,
    &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor,
    &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor,
    &opentelemetry__proto__metrics__v1__summary_data_point__descriptor,
    NULL,
};

static void metrics_schema(struct sx_otlp_schema *s, const struct sx_otlp_limits *l)
{
    s->request = &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    s->items = point_items;
    s->max_items = l->max_points;
    s->noun = "data points";
}

int sx_otlp_metrics_decode_pb(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                              sx_metrics_req **out, char *err, size_t errlen)
{
    struct sx_otlp_schema s;
    metrics_schema(&s, l);
    return sx_otlp_pb_decode(buf, len, &s, a, l, (ProtobufCMessage **)out, err, errlen);
}

int sx_otlp_metrics_decode_json(const uint8_t *buf, size_t len, struct sx_arena *a, const struct sx_otlp_limits *l,
                                sx_metrics_req **out, char *err, size_t errlen)
{
    struct sx_otlp_schema s;
    metrics_schema(&s, l);
    return sx_otlp_json_decode(buf, len, &s, a, l, (ProtobufCMessage **)out, err, errlen);
}

/* The data points of a metric: the repeated field of whichever data kind it
 * holds. When it holds none, *n points at *none (set to 0) and the result
 * is NULL. */
static void **metric_points(pb_metric *m, size_t **n, size_t *none)
{
    *none = 0;
    *n = none;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        if (!m->gauge) break;
        *n = &m->gauge->n_data_points;
        return (void **)m->gauge->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (!m->sum) break;
        *n = &m->sum->n_data_points;
        return (void **)m->sum->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        if (!m->histogram) break;
        *n = &m->histogram->n_data_points;
        return (void **)m->histogram->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        if (!m->exponential_histogram) break;
        *n = &m->exponential_histogram->n_data_points;
        return (void **)m->exponential_histogram->data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        if (!m->summary) break;
        *n = &m->summary->n_data_points;
        return (void **)m->summary->data_points;
    default:
        break;
    }
    return NULL;
}

/* Points of a metric, without changing anything. */
static size_t metric_npoints(const pb_metric *m)
{
    size_t *n, none;
    metric_points((pb_metric *)m, &n, &none);
    return *n;
}

size_t sx_otlp_metrics_count(const sx_metrics_req *req)
{
    size_t n = 0;
    if (!req) return 0;
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const pb_rm *rm = req->resource_metrics[i];
        if (!rm) continue;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const pb_sm *sm = rm->scope_metrics[j];
            if (!sm) continue;
            for (size_t k = 0; k < sm->n_metrics; k++)
                if (sm->metrics[k]) n += metric_npoints(sm->metrics[k]);
        }
    }
    return n;
}

uint8_t *sx_otlp_metrics_pack(const sx_metrics_req *req, struct sx_arena *a, size_t *len)
{
    return sx_otlp_pack_msg(&req->base, a, len);
}

uint8_t *sx_otlp_metrics_response(int json, int64_t rejected, const char *message, struct sx_arena *a,
                                  size_t *len)
{
    if (!message) message = "";
    if (json) return sx_otlp_response_json(rejected, "rejectedDataPoints", message, a, len);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    if (rejected > 0 || message[0]) {
        ps.rejected_data_points = rejected > 0 ? rejected : 0;
        ps.error_message = (char *)message;
        resp.partial_success = &ps;
    }
    return sx_otlp_pack_msg(&resp.base, a, len);
}

/* --- validation ------------------------------------------------------------------ */

/* Exemplars are samples: one with a broken id keeps its value, not the id. */
static void fix_exemplars(struct sx_otlp_vctx *v, pb_exemplar **ex, size_t *n)
{
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        pb_exemplar *e = ex[i];
        if (!e) continue;
        if (e->trace_id.len != 16 || sx_otlp_all_zero(e->trace_id.data, 16) || e->span_id.len != 8 ||
            sx_otlp_all_zero(e->span_id.data, 8)) {
            e->trace_id.len = e->span_id.len = 0;
            e->trace_id.data = e->span_id.data = NULL;
        }
        sx_otlp_fix_attrs(v, e->filtered_attributes, &e->n_filtered_attributes, NULL);
        ex[w++] = e;
    }
    *n = w;
}

/* Why a histogram point must be dropped, or NULL. */
static const char *hist_invalid(const pb_hdp *p)
{
    if (p->n_bucket_counts == 0 && p->n_explicit_bounds == 0) return NULL;
    if (p->n_bucket_counts != p->n_explicit_bounds + 1) return "histogram bucket counts do not match its bounds";
    for (size_t i = 0; i < p->n_explicit_bounds; i++)
        if (isnan(p->explicit_bounds[i]) || (i > 0 && !(p->explicit_bounds[i] > p->explicit_bounds[i - 1])))
            return "histogram bounds not increasing";
    return NULL;
}

/* Validates one point of a metric of the given data kind; returns why it
 * must be dropped, or NULL after fixing it. The common fields (attributes,
 * times, exemplars) sit in different places per point type. */
static const char *fix_point(struct sx_otlp_vctx *v, Opentelemetry__Proto__Metrics__V1__Metric__DataCase kind,
                             void *pt)
{
    if (!pt) return "missing data point";
    switch (kind) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        pb_ndp *p = pt;
        if (p->time_unix_nano == 0) return "data point without a time";
        sx_otlp_fix_attrs(v, p->attributes, &p->n_attributes, NULL);
        fix_exemplars(v, p->exemplars, &p->n_exemplars);
        return NULL;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        pb_hdp *p = pt;
        if (p->time_unix_nano == 0) return "data point without a time";
        const char *why = hist_invalid(p);
        if (why) return why;
        sx_otlp_fix_attrs(v, p->attributes, &p->n_attributes, NULL);
        fix_exemplars(v, p->exemplars, &p->n_exemplars);
        return NULL;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        pb_edp *p = pt;
        if (p->time_unix_nano == 0) return "data point without a time";
        sx_otlp_fix_attrs(v, p->attributes, &p->n_attributes, NULL);
        fix_exemplars(v, p->exemplars, &p->n_exemplars);
        return NULL;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: {
        pb_sdp *p = pt;
        if (p->time_unix_nano == 0) return "data point without a time";
        size_t w = 0;
        for (size_t i = 0; i < p->n_quantile_values; i++)
            if (p->quantile_values[i]) p->quantile_values[w++] = p->quantile_values[i];
        p->n_quantile_values = w;
        sx_otlp_fix_attrs(v, p->attributes, &p->n_attributes, NULL);
        return NULL;
    }
    default:
        return "data point of an unknown kind";
    }
}

/* Validates a metric and its points; returns nonzero when it is kept. */
static int fix_metric(struct sx_otlp_vctx *v, pb_metric *m)
{
    struct sx_otlp_stats *st = v->st;
    size_t *n, none;
    void **pts = metric_points(m, &n, &none);
    const char *why = NULL;

    st->items_in += *n;
    if (!m->name || !m->name[0])
        why = "metric without a name";
    else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET)
        why = "metric without data";
    if (why) {
        st->metrics_dropped++;
        st->items_rejected += *n;
        if (!v->metric_reason) v->metric_reason = why;
        return 0;
    }
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        const char *bad = fix_point(v, m->data_case, pts[i]);
        if (bad) {
            st->items_rejected++;
            if (!v->item_reason) v->item_reason = bad;
            continue;
        }
        pts[w++] = pts[i];
    }
    *n = w;
    if (w == 0) return 0; /* metric left empty (or sent empty): nothing to store */
    sx_otlp_fix_value_str(v, &m->name);
    sx_otlp_fix_value_str(v, &m->description);
    sx_otlp_fix_value_str(v, &m->unit);
    sx_otlp_fix_attrs(v, m->metadata, &m->n_metadata, NULL);
    return 1;
}

static void build_reason(const struct sx_otlp_vctx *v)
{
    struct sx_otlp_stats *st = v->st;
    st->reason[0] = '\0';
    if (st->metrics_dropped)
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu metric%s dropped: %s", st->metrics_dropped,
                           st->metrics_dropped == 1 ? "" : "s", v->metric_reason ? v->metric_reason : "invalid");
    if (v->item_reason) {
        /* Points dropped one by one (those of dropped metrics are in the
         * total too). */
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu data point%s rejected: %s", st->items_rejected,
                           st->items_rejected == 1 ? "" : "s", v->item_reason);
    } else if (st->items_rejected) {
        sx_otlp_reason_add(st->reason, sizeof(st->reason), "%zu data point%s rejected with them",
                           st->items_rejected, st->items_rejected == 1 ? "" : "s");
    }
    sx_otlp_reason_attrs(v);
}

void sx_otlp_metrics_validate(sx_metrics_req *req, const struct sx_otlp_limits *l, struct sx_arena *a,
                              struct sx_otlp_stats *st)
{
    struct sx_otlp_vctx v = {l, a, st, NULL, NULL, NULL};
    memset(st, 0, sizeof(*st));
    if (!req) return;

    size_t rw = 0;
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        pb_rm *rm = req->resource_metrics[i];
        if (!rm) continue;
        size_t sw = 0;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            pb_sm *sm = rm->scope_metrics[j];
            if (!sm) continue;
            size_t kw = 0;
            for (size_t k = 0; k < sm->n_metrics; k++) {
                pb_metric *m = sm->metrics[k];
                if (m && fix_metric(&v, m)) sm->metrics[kw++] = m;
            }
            sm->n_metrics = kw;
            if (kw == 0) continue; /* scope left empty */
            sx_otlp_fix_scope(&v, sm->scope);
            sx_otlp_repair_utf8(&v, &sm->schema_url);
            rm->scope_metrics[sw++] = sm;
        }
        rm->n_scope_metrics = sw;
        if (sw == 0) continue; /* resource left empty */
        sx_otlp_fix_resource(&v, rm->resource);
        sx_otlp_repair_utf8(&v, &rm->schema_url);
        req->resource_metrics[rw++] = rm;
    }
    req->n_resource_metrics = rw;
    st->items_kept = st->items_in - st->items_rejected;
    build_reason(&v);
}
