/* ledger.c: the persist_ledger insert shared by the rollup workers (see ledger.h). */
#include "ledger.h"

#include "pg.h"

#include <stdlib.h>
#include <string.h>

static const char ledger_sql[] =
    "INSERT INTO persist_ledger (stream, entry_hash, entry_id) "
    "SELECT $1, decode(u.h, 'hex'), u.i FROM unnest($2::text[], $3::text[]) AS u(h, i) ORDER BY u.h "
    "ON CONFLICT DO NOTHING RETURNING encode(entry_hash, 'hex')";

static const char hexd[] = "0123456789abcdef";

/* By key, then by index: equal keys keep their stream order. */
static int item_cmp(const void *a, const void *b, void *arg)
{
    const struct sx_ledger_item *it = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = memcmp(it[x].key, it[y].key, SX_ENTRY_KEY_LEN);
    return c ? c : (x < y ? -1 : x > y);
}

static int hexval(char c)
{
    const char *p = c ? strchr(hexd, c) : NULL;
    return p ? (int)(p - hexd) : -1;
}

long long sx_ledger_insert(PGconn *pg, const char *stream, struct sx_ledger_item *items, size_t n,
                           struct sx_buf *scratch)
{
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    size_t fresh = 0, nk = 0;
    if (!order) return -1;
    for (size_t i = 0; i < n; i++) order[i] = i, items[i].fresh = 0;
    qsort_r(order, n, sizeof(*order), item_cmp, items);

    /* "{hex,...}" NUL "{"id",...}" NUL: the two text[] parameters. */
    struct sx_buf *b = scratch;
    sx_buf_reset(b);
    int ok = sx_buf_putc(b, '{') == SX_OK;
    for (size_t k = 0; k < n && ok; k++) {
        const struct sx_ledger_item *e = &items[order[k]];
        if (k && memcmp(e->key, items[order[k - 1]].key, SX_ENTRY_KEY_LEN) == 0) continue;
        char hex[2 * SX_ENTRY_KEY_LEN];
        for (int j = 0; j < SX_ENTRY_KEY_LEN; j++) hex[2 * j] = hexd[e->key[j] >> 4], hex[2 * j + 1] = hexd[e->key[j] & 15];
        if (nk++) ok &= sx_buf_putc(b, ',') == SX_OK;
        ok &= sx_buf_append(b, hex, sizeof(hex)) == SX_OK;
    }
    size_t ids = b->len + 2;
    ok &= sx_buf_putc(b, '}') == SX_OK && sx_buf_putc(b, '\0') == SX_OK && sx_buf_putc(b, '{') == SX_OK;
    nk = 0;
    for (size_t k = 0; k < n && ok; k++) {
        const struct sx_ledger_item *e = &items[order[k]];
        if (k && memcmp(e->key, items[order[k - 1]].key, SX_ENTRY_KEY_LEN) == 0) continue;
        /* Stream ids are digits and one '-': nothing to escape. */
        if (nk++) ok &= sx_buf_putc(b, ',') == SX_OK;
        ok &= sx_buf_putc(b, '"') == SX_OK && sx_buf_append(b, e->id, SX_MIN(e->idlen, (size_t)63)) == SX_OK &&
              sx_buf_putc(b, '"') == SX_OK;
    }
    ok &= sx_buf_putc(b, '}') == SX_OK && sx_buf_putc(b, '\0') == SX_OK;
    if (!ok) {
        free(order);
        return -1;
    }

    const char *params[3] = {stream, b->data, b->data + ids};
    PGresult *res = sx_pg_query(pg, ledger_sql, 3, params, "INSERT persist_ledger");
    if (!res) {
        free(order);
        return -1;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        const char *hx = PQgetvalue(res, row, 0);
        uint8_t h[SX_ENTRY_KEY_LEN];
        int bad = strlen(hx) != 2 * SX_ENTRY_KEY_LEN;
        for (int j = 0; j < SX_ENTRY_KEY_LEN && !bad; j++) {
            int hi = hexval(hx[2 * j]), lo = hexval(hx[2 * j + 1]);
            if (hi < 0 || lo < 0) bad = 1;
            else h[j] = (uint8_t)(hi << 4 | lo);
        }
        if (bad) continue;
        size_t lo = 0, hi = n; /* the first item with this key */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (memcmp(items[order[mid]].key, h, SX_ENTRY_KEY_LEN) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo < n && memcmp(items[order[lo]].key, h, SX_ENTRY_KEY_LEN) == 0 && !items[order[lo]].fresh) {
            items[order[lo]].fresh = 1;
            fresh++;
        }
    }
    PQclear(res);
    free(order);
    return (long long)(n - fresh);
}
