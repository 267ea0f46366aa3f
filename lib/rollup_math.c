/* rollup_math.c: cumulative-to-delta conversion, cumulative state text, exponential histogram scaling and quantiles. */
#include "rollup_math.h"

#include <errno.h>
#include <stdarg.h>
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

/* Appends formatted text at out + *len; 0 when it does not fit. */
static int put(char *out, size_t outlen, size_t *len, const char *fmt, ...) SX_PRINTF(4, 5);
static int put(char *out, size_t outlen, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, outlen - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= outlen - *len) return 0;
    *len += (size_t)n;
    return 1;
}

static int put_side(char *out, size_t outlen, size_t *len, const struct sx_rollup_exp_side *s)
{
    if (!put(out, outlen, len, " %" PRId32 " %zu", s->offset, s->n)) return 0;
    for (size_t i = 0; i < s->n; i++)
        if (!put(out, outlen, len, " %" PRIu64, s->counts[i])) return 0;
    return 1;
}

int sx_rollup_cum_stale(const struct sx_rollup_cum *prev, uint64_t start_ns, uint64_t time_ns)
{
    return prev->have && prev->time_ns && time_ns <= prev->time_ns && start_ns <= prev->start_ns;
}

size_t sx_rollup_cum_format(const struct sx_rollup_cum *c, char *out, size_t outlen)
{
    size_t len = 0;
    if (!c->have || outlen == 0) return 0;
    if (!c->hist)
        return put(out, outlen, &len, "N %" PRIu64 " %" PRIu64 " %.17g", c->start_ns, c->time_ns, c->value) ? len : 0;
    if (c->exp) {
        if (!put(out, outlen, &len, "E %" PRIu64 " %" PRIu64 " %" PRIu64 " %.17g %" PRId32 " %" PRIu64, c->start_ns,
                 c->time_ns, c->count, c->sum, c->e.scale, c->e.zero) ||
            !put_side(out, outlen, &len, &c->e.pos) || !put_side(out, outlen, &len, &c->e.neg))
            return 0;
        return len;
    }
    if (!put(out, outlen, &len, "H %" PRIu64 " %" PRIu64 " %" PRIu64 " %.17g %zu", c->start_ns, c->time_ns, c->count,
             c->sum, c->nb))
        return 0;
    for (size_t i = 0; i < c->nb; i++)
        if (!put(out, outlen, &len, " %" PRIu64, c->buckets[i])) return 0;
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

static int tok_i32(const char **p, const char *end, int32_t *v)
{
    char tok[16], *e;
    if (next_tok(p, end, tok, sizeof(tok)) != SX_OK) return SX_ERR;
    errno = 0;
    long x = strtol(tok, &e, 10);
    if (errno || *e || x < INT32_MIN || x > INT32_MAX) return SX_ERR;
    *v = (int32_t)x;
    return SX_OK;
}

static int tok_side(const char **p, const char *end, struct sx_rollup_exp_side *s)
{
    uint64_t n;
    if (tok_i32(p, end, &s->offset) != SX_OK || tok_u64(p, end, &n) != SX_OK || n > SX_ROLLUP_EXP_MAX) return SX_ERR;
    s->n = (size_t)n;
    for (size_t i = 0; i < s->n; i++)
        if (tok_u64(p, end, &s->counts[i]) != SX_OK) return SX_ERR;
    return SX_OK;
}

int sx_rollup_cum_parse(const char *s, size_t len, struct sx_rollup_cum *c)
{
    const char *p = s, *end = s + len;
    char kind[4];
    uint64_t nb;
    memset(c, 0, sizeof(*c));
    if (next_tok(&p, end, kind, sizeof(kind)) != SX_OK || tok_u64(&p, end, &c->start_ns) != SX_OK) goto bad;
    int upper = kind[0] == 'N' || kind[0] == 'H' || kind[0] == 'E';
    if (upper && tok_u64(&p, end, &c->time_ns) != SX_OK) goto bad;
    if (strcmp(kind, "n") == 0 || strcmp(kind, "N") == 0) {
        if (tok_double(&p, end, &c->value) != SX_OK) goto bad;
    } else if (strcmp(kind, "h") == 0 || strcmp(kind, "H") == 0) {
        c->hist = 1;
        if (tok_u64(&p, end, &c->count) != SX_OK || tok_double(&p, end, &c->sum) != SX_OK ||
            tok_u64(&p, end, &nb) != SX_OK || nb > SX_ROLLUP_MAX_BUCKETS)
            goto bad;
        c->nb = (size_t)nb;
        for (size_t i = 0; i < c->nb; i++)
            if (tok_u64(&p, end, &c->buckets[i]) != SX_OK) goto bad;
    } else if (strcmp(kind, "E") == 0) {
        c->hist = c->exp = 1;
        c->e.have = 1;
        if (tok_u64(&p, end, &c->count) != SX_OK || tok_double(&p, end, &c->sum) != SX_OK ||
            tok_i32(&p, end, &c->e.scale) != SX_OK || c->e.scale < SX_ROLLUP_EXP_MIN_SCALE || c->e.scale > 20 ||
            tok_u64(&p, end, &c->e.zero) != SX_OK || tok_side(&p, end, &c->e.pos) != SX_OK ||
            tok_side(&p, end, &c->e.neg) != SX_OK)
            goto bad;
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

/* ---- exponential histograms ---------------------------------------------- */

/* floor(a / 2^by) */
static int64_t shr_floor(int64_t a, int by)
{
    return a >= 0 ? a >> by : -((-a - 1) >> by) - 1;
}

/* Buckets a side would need at `by` steps below its scale over [lo, hi]. */
static int64_t span_at(int64_t lo, int64_t hi, int by)
{
    return shr_floor(hi, by) - shr_floor(lo, by) + 1;
}

/* The first and last nonzero bucket indexes of counts (offset first); 0 when none. */
static int nz_range(int64_t offset, const uint64_t *counts, size_t n, int64_t *lo, int64_t *hi)
{
    size_t a = 0, b = n;
    while (a < n && counts[a] == 0) a++;
    if (a == n) return 0;
    while (b > a && counts[b - 1] == 0) b--;
    *lo = offset + (int64_t)a;
    *hi = offset + (int64_t)b - 1;
    return 1;
}

/* Adds counts (bucket offset + i, at `by` steps above the side's scale) into
 * side, whose offset must already be the downscaled lowest index. */
static void side_add(struct sx_rollup_exp_side *side, int64_t offset, const uint64_t *counts, size_t n, int by)
{
    for (size_t i = 0; i < n; i++) {
        if (!counts[i]) continue;
        int64_t k = shr_floor(offset + (int64_t)i, by) - side->offset;
        side->counts[k] += counts[i];
        if ((size_t)k + 1 > side->n) side->n = (size_t)k + 1;
    }
}

int sx_rollup_exp_set(struct sx_rollup_exp *e, int32_t scale, uint64_t zero, int32_t pos_offset, const uint64_t *pos,
                      size_t npos, int32_t neg_offset, const uint64_t *neg, size_t nneg)
{
    int64_t plo = 0, phi = -1, nlo = 0, nhi = -1;
    int hp = nz_range(pos_offset, pos, npos, &plo, &phi), hn = nz_range(neg_offset, neg, nneg, &nlo, &nhi);
    int by = 0;
    memset(e, 0, sizeof(*e));
    if (scale < SX_ROLLUP_EXP_MIN_SCALE || scale > 20) return SX_ERR;
    while ((hp && span_at(plo, phi, by) > SX_ROLLUP_EXP_MAX) || (hn && span_at(nlo, nhi, by) > SX_ROLLUP_EXP_MAX)) {
        if (scale - by <= SX_ROLLUP_EXP_MIN_SCALE) return SX_ERR;
        by++;
    }
    e->have = 1;
    e->scale = scale - by;
    e->zero = zero;
    if (hp) {
        e->pos.offset = (int32_t)shr_floor(plo, by);
        side_add(&e->pos, pos_offset, pos, npos, by);
    }
    if (hn) {
        e->neg.offset = (int32_t)shr_floor(nlo, by);
        side_add(&e->neg, neg_offset, neg, nneg, by);
    }
    return SX_OK;
}

static void side_downscale(struct sx_rollup_exp_side *s, int by)
{
    uint64_t tmp[SX_ROLLUP_EXP_MAX];
    size_t n = s->n;
    int32_t off = s->offset;
    if (by <= 0) return;
    memcpy(tmp, s->counts, n * sizeof(tmp[0]));
    memset(s->counts, 0, sizeof(s->counts));
    s->n = 0;
    s->offset = (int32_t)shr_floor(off, by);
    side_add(s, off, tmp, n, by);
}

void sx_rollup_exp_downscale(struct sx_rollup_exp *e, int by)
{
    if (by <= 0) return;
    side_downscale(&e->pos, by);
    side_downscale(&e->neg, by);
    e->scale -= by;
}

/* Buckets the union of two sides would need at `by` steps below their (equal) scale. */
static int64_t union_span(const struct sx_rollup_exp_side *a, const struct sx_rollup_exp_side *b, int by)
{
    int64_t alo, ahi, blo, bhi;
    int ha = nz_range(a->offset, a->counts, a->n, &alo, &ahi), hb = nz_range(b->offset, b->counts, b->n, &blo, &bhi);
    if (!ha && !hb) return 0;
    if (!ha) alo = blo, ahi = bhi;
    if (!hb) blo = alo, bhi = ahi;
    return span_at(alo < blo ? alo : blo, ahi > bhi ? ahi : bhi, by);
}

/* Adds side b into side a (same scale; the union fits). */
static void side_merge(struct sx_rollup_exp_side *a, const struct sx_rollup_exp_side *b)
{
    int64_t alo, ahi, blo, bhi;
    int ha = nz_range(a->offset, a->counts, a->n, &alo, &ahi), hb = nz_range(b->offset, b->counts, b->n, &blo, &bhi);
    if (!hb) return;
    struct sx_rollup_exp_side out;
    memset(&out, 0, sizeof(out));
    out.offset = (int32_t)(ha && alo < blo ? alo : blo);
    if (ha) side_add(&out, a->offset, a->counts, a->n, 0);
    side_add(&out, b->offset, b->counts, b->n, 0);
    *a = out;
}

int sx_rollup_exp_merge(struct sx_rollup_exp *dst, const struct sx_rollup_exp *src)
{
    if (!src->have) return SX_OK;
    if (!dst->have) {
        *dst = *src;
        return SX_OK;
    }
    struct sx_rollup_exp a = *dst, b = *src;
    int32_t s = a.scale < b.scale ? a.scale : b.scale;
    sx_rollup_exp_downscale(&a, a.scale - s);
    sx_rollup_exp_downscale(&b, b.scale - s);
    int by = 0;
    while (union_span(&a.pos, &b.pos, by) > SX_ROLLUP_EXP_MAX || union_span(&a.neg, &b.neg, by) > SX_ROLLUP_EXP_MAX) {
        if (s - by <= SX_ROLLUP_EXP_MIN_SCALE) return SX_ERR;
        by++;
    }
    sx_rollup_exp_downscale(&a, by);
    sx_rollup_exp_downscale(&b, by);
    side_merge(&a.pos, &b.pos);
    side_merge(&a.neg, &b.neg);
    a.zero += b.zero;
    *dst = a;
    return SX_OK;
}

/* d = cur - prev for one side (same scale); 0 when some bucket of prev is
 * missing from cur or larger there (a reset). */
static int side_sub(const struct sx_rollup_exp_side *cur, const struct sx_rollup_exp_side *prev,
                    struct sx_rollup_exp_side *d)
{
    *d = *cur;
    for (size_t i = 0; i < prev->n; i++) {
        if (!prev->counts[i]) continue;
        int64_t k = (int64_t)prev->offset + (int64_t)i - cur->offset;
        if (k < 0 || (size_t)k >= cur->n || cur->counts[k] < prev->counts[i]) return 0;
        d->counts[k] -= prev->counts[i];
    }
    return 1;
}

void sx_rollup_exp_delta(struct sx_rollup_cum *prev, uint64_t start_ns, uint64_t count, double sum,
                         const struct sx_rollup_exp *cur, uint64_t *dcount, double *dsum, struct sx_rollup_exp *d,
                         int *reset)
{
    int r = !prev->have || !prev->hist || !prev->exp || prev->start_ns != start_ns || count < prev->count ||
            cur->scale > prev->e.scale || cur->zero < prev->e.zero;
    if (!r) {
        struct sx_rollup_exp p = prev->e;
        sx_rollup_exp_downscale(&p, p.scale - cur->scale);
        *d = *cur;
        d->zero = cur->zero - p.zero;
        r = !side_sub(&cur->pos, &p.pos, &d->pos) || !side_sub(&cur->neg, &p.neg, &d->neg);
    }
    if (r) *d = *cur;
    *dcount = r ? count : count - prev->count;
    *dsum = r ? sum : sum - prev->sum;
    memset(prev, 0, sizeof(*prev));
    prev->have = prev->hist = prev->exp = 1;
    prev->start_ns = start_ns;
    prev->count = count;
    prev->sum = sum;
    prev->e = *cur;
    if (reset) *reset = r;
}

/* base^k for base = 2^(2^-scale) */
static double exp_bound(int32_t scale, int64_t k)
{
    return exp2(ldexp((double)k, -scale));
}

double sx_rollup_exp_quantile(const struct sx_rollup_exp *e, double q)
{
    double total = (double)e->zero, cum = 0;
    if (!e->have || !(q > 0) || !(q < 1)) return NAN;
    for (size_t i = 0; i < e->pos.n; i++) total += (double)e->pos.counts[i];
    for (size_t i = 0; i < e->neg.n; i++) total += (double)e->neg.counts[i];
    if (total <= 0) return NAN;
    double rank = q * total;
    for (size_t i = e->neg.n; i-- > 0;) {
        double c = (double)e->neg.counts[i];
        if (c > 0 && cum + c >= rank) {
            int64_t k = (int64_t)e->neg.offset + (int64_t)i;
            double lo = -exp_bound(e->scale, k + 1), hi = -exp_bound(e->scale, k);
            return lo + (hi - lo) * ((rank - cum) / c);
        }
        cum += c;
    }
    if (e->zero && cum + (double)e->zero >= rank) return 0;
    cum += (double)e->zero;
    for (size_t i = 0; i < e->pos.n; i++) {
        double c = (double)e->pos.counts[i];
        if (c > 0 && cum + c >= rank) {
            int64_t k = (int64_t)e->pos.offset + (int64_t)i;
            double lo = exp_bound(e->scale, k), hi = exp_bound(e->scale, k + 1);
            return lo + (hi - lo) * ((rank - cum) / c);
        }
        cum += c;
    }
    /* Rounding left the rank past the last bucket: its upper bound. */
    for (size_t i = e->pos.n; i-- > 0;)
        if (e->pos.counts[i]) return exp_bound(e->scale, (int64_t)e->pos.offset + (int64_t)i + 1);
    return 0;
}

double sx_rollup_summary_quantile(const double *qs, const double *vs, size_t n, double q)
{
    if (n == 0) return NAN;
    if (q <= qs[0]) return vs[0];
    for (size_t i = 1; i < n; i++) {
        if (q <= qs[i]) {
            double span = qs[i] - qs[i - 1];
            if (!(span > 0)) return vs[i];
            return vs[i - 1] + (vs[i] - vs[i - 1]) * ((q - qs[i - 1]) / span);
        }
    }
    return vs[n - 1];
}
