/* rollup_math.c: cumulative-to-delta conversion, cumulative state text and histogram quantiles. */
#include "rollup_math.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double sx_rollup_sum_delta(struct sx_rollup_cum *prev, uint64_t start_ns, double value, int monotonic, int *reset)
{
    int r = !prev->have || prev->hist || prev->start_ns != start_ns || (monotonic && value < prev->value);
    double d = r ? value : value - prev->value;
    memset(prev, 0, sizeof(*prev));
    prev->have = 1;
    prev->start_ns = start_ns;
    prev->value = value;
    if (reset) *reset = r;
    return d;
}

int sx_rollup_hist_delta(struct sx_rollup_cum *prev, uint64_t start_ns, uint64_t count, double sum,
                         const uint64_t *buckets, size_t nb, uint64_t *dcount, double *dsum, uint64_t *dbuckets,
                         int *reset)
{
    if (nb > SX_ROLLUP_MAX_BUCKETS) return SX_ERR;
    int r = !prev->have || !prev->hist || prev->start_ns != start_ns || prev->nb != nb || count < prev->count;
    for (size_t i = 0; !r && i < nb; i++)
        if (buckets[i] < prev->buckets[i]) r = 1;
    *dcount = r ? count : count - prev->count;
    *dsum = r ? sum : sum - prev->sum;
    for (size_t i = 0; i < nb; i++) dbuckets[i] = r ? buckets[i] : buckets[i] - prev->buckets[i];
    memset(prev, 0, sizeof(*prev));
    prev->have = 1;
    prev->hist = 1;
    prev->start_ns = start_ns;
    prev->count = count;
    prev->sum = sum;
    prev->nb = nb;
    if (nb) memcpy(prev->buckets, buckets, nb * sizeof(buckets[0]));
    if (reset) *reset = r;
    return SX_OK;
}

size_t sx_rollup_cum_format(const struct sx_rollup_cum *c, char *out, size_t outlen)
{
    size_t len;
    int n;
    if (!c->have) return 0;
    if (!c->hist)
        n = snprintf(out, outlen, "n %" PRIu64 " %.17g", c->start_ns, c->value);
    else
        n = snprintf(out, outlen, "h %" PRIu64 " %" PRIu64 " %.17g %zu", c->start_ns, c->count, c->sum, c->nb);
    if (n < 0 || (size_t)n >= outlen) return 0;
    len = (size_t)n;
    for (size_t i = 0; c->hist && i < c->nb; i++) {
        n = snprintf(out + len, outlen - len, " %" PRIu64, c->buckets[i]);
        if (n < 0 || (size_t)n >= outlen - len) return 0;
        len += (size_t)n;
    }
    return len;
}

/* Next space-separated token of [*p, end) as a NUL-terminated copy in tok. */
static int next_tok(const char **p, const char *end, char *tok, size_t toklen)
{
    while (*p < end && **p == ' ') (*p)++;
    const char *s = *p;
    while (*p < end && **p != ' ') (*p)++;
    size_t n = (size_t)(*p - s);
    if (n == 0 || n >= toklen) return SX_ERR;
    memcpy(tok, s, n);
    tok[n] = '\0';
    return SX_OK;
}

static int tok_u64(const char **p, const char *end, uint64_t *v)
{
    char tok[32], *e;
    if (next_tok(p, end, tok, sizeof(tok)) != SX_OK || tok[0] == '-') return SX_ERR;
    errno = 0;
    unsigned long long x = strtoull(tok, &e, 10);
    if (errno || *e) return SX_ERR;
    *v = x;
    return SX_OK;
}

static int tok_double(const char **p, const char *end, double *v)
{
    char tok[40], *e;
    if (next_tok(p, end, tok, sizeof(tok)) != SX_OK) return SX_ERR;
    errno = 0;
    double x = strtod(tok, &e);
    if (errno || *e || !isfinite(x)) return SX_ERR;
    *v = x;
    return SX_OK;
}

int sx_rollup_cum_parse(const char *s, size_t len, struct sx_rollup_cum *c)
{
    const char *p = s, *end = s + len;
    char kind[4];
    uint64_t nb;
    memset(c, 0, sizeof(*c));
    if (next_tok(&p, end, kind, sizeof(kind)) != SX_OK || tok_u64(&p, end, &c->start_ns) != SX_OK) goto bad;
    if (strcmp(kind, "n") == 0) {
        if (tok_double(&p, end, &c->value) != SX_OK) goto bad;
    } else if (strcmp(kind, "h") == 0) {
        c->hist = 1;
        if (tok_u64(&p, end, &c->count) != SX_OK || tok_double(&p, end, &c->sum) != SX_OK ||
            tok_u64(&p, end, &nb) != SX_OK || nb > SX_ROLLUP_MAX_BUCKETS)
            goto bad;
        c->nb = (size_t)nb;
        for (size_t i = 0; i < c->nb; i++)
            if (tok_u64(&p, end, &c->buckets[i]) != SX_OK) goto bad;
    } else {
        goto bad;
    }
    while (p < end && *p == ' ') p++;
    if (p != end) goto bad;
    c->have = 1;
    return SX_OK;
bad:
    memset(c, 0, sizeof(*c));
    return SX_ERR;
}

double sx_rollup_quantile(const double *bounds, size_t nbounds, const double *counts, double q)
{
    double total = 0, cum = 0;
    size_t nb = nbounds + 1;
    for (size_t i = 0; i < nb; i++) total += counts[i] > 0 ? counts[i] : 0;
    if (total <= 0 || !(q > 0) || !(q < 1)) return NAN;
    double rank = q * total;
    for (size_t i = 0; i < nb; i++) {
        double c = counts[i] > 0 ? counts[i] : 0;
        if (c > 0 && cum + c >= rank) {
            if (i == nbounds) return nbounds ? bounds[nbounds - 1] : NAN;
            double hi = bounds[i];
            double lo = i == 0 ? (hi < 0 ? hi : 0) : bounds[i - 1];
            return lo + (hi - lo) * ((rank - cum) / c);
        }
        cum += c;
    }
    return nbounds ? bounds[nbounds - 1] : NAN;
}
