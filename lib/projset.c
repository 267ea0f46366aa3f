/* projset.c: the per-project settings table and its validation (projset.h). */
#include "projset.h"

#include "scrub.h"
#include "sx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sx_projset sx_projset_fields[SX_PROJSET_COUNT] = {
    {"--sampling-rate", "sampling_rate", "double precision", 'd', "samplingRate", NULL, "samplingRate"},
    {"--slow-trace-ms", "slow_trace_ms", "integer", 'i', "slowTraceMs", NULL, "slowTraceMs"},
    {"--rate-spans", "rate_spans_per_s", "integer", 'n', "rateSpansPerS", "rateLimits", "spansPerSecond"},
    {"--rate-logs", "rate_logs_per_s", "integer", 'n', "rateLogsPerS", "rateLimits", "logsPerSecond"},
    {"--rate-metric-points", "rate_metric_points_per_s", "integer", 'n', "rateMetricPointsPerS", "rateLimits",
     "metricPointsPerSecond"},
    {"--quota-spans", "quota_spans_daily", "bigint", 'q', "quotaSpansDaily", "dailyQuota", "spans"},
    {"--quota-logs", "quota_logs_daily", "bigint", 'q', "quotaLogsDaily", "dailyQuota", "logs"},
    {"--quota-metric-points", "quota_metric_points_daily", "bigint", 'q', "quotaMetricPointsDaily", "dailyQuota",
     "metricPoints"},
    {"--storage-quota", "storage_quota_bytes", "bigint", 'q', "storageQuotaBytes", NULL, "storageQuotaBytes"},
    {"--retention-traces", "retention_traces_days", "integer", 'r', "retentionTracesDays", "retentionDays", "traces"},
    {"--retention-logs", "retention_logs_days", "integer", 'r', "retentionLogsDays", "retentionDays", "logs"},
    {"--retention-metrics", "retention_metrics_days", "integer", 'r', "retentionMetricsDays", "retentionDays",
     "metrics"},
    {"--status", "status", "text", 's', "status", NULL, "status"},
    {"--redact-secrets", "redact_secrets", "boolean", 'b', "redactSecrets", NULL, "redactSecrets"},
    {"--attribute-rules", "attribute_rules", "json", 'j', "attributeRules", NULL, "attributeRules"},
};

int sx_projset_check(const struct sx_projset *s, const char *v, const char **out, char *err, size_t errlen)
{
    char *end;
    *out = NULL;
    switch (s->kind) {
    case 'd': {
        double d = strtod(v, &end);
        if (*end || end == v || !(d >= 0 && d <= 1)) break;
        *out = v;
        return SX_OK;
    }
    case 'i':
    case 'n':
    case 'q':
    case 'r': {
        if ((s->kind == 'n' || s->kind == 'q') && strcmp(v, "none") == 0) return SX_OK;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (*end || end == v || errno) break;
        if (s->kind == 'n' && (x <= 0 || x > INT32_MAX)) break;
        if (s->kind == 'i' && (x < 0 || x > INT32_MAX)) break;
        if (s->kind == 'q' && x < 0) break;
        if (s->kind == 'r' && (x < 1 || x > 3650)) break;
        *out = v;
        return SX_OK;
    }
    case 's':
        if (strcmp(v, "active") != 0 && strcmp(v, "suspended") != 0) break;
        *out = v;
        return SX_OK;
    case 'b':
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) break;
        *out = strcmp(v, "on") == 0 ? "true" : "false";
        return SX_OK;
    case 'j': {
        char e[300];
        struct sx_scrub_rules *r = sx_scrub_rules_parse(v, strlen(v), e, sizeof(e));
        if (!r) {
            snprintf(err, errlen, "%s: %s", s->opt, e);
            return SX_ERR;
        }
        sx_scrub_rules_destroy(r);
        *out = v;
        return SX_OK;
    }
    default: break;
    }
    static const char *const want[] = {
        ['d'] = "a number from 0 to 1", ['i'] = "an integer >= 0", ['n'] = "a positive integer or none",
        ['q'] = "an integer >= 0 or none", ['r'] = "days from 1 to 3650", ['s'] = "active or suspended",
        ['b'] = "on or off"};
    snprintf(err, errlen, "%s must be %s, got '%.100s'", s->opt, want[(unsigned char)s->kind], v);
    return SX_ERR;
}
