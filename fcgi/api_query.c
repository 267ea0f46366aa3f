/* api_query.c: what sextant-api's search endpoints (api_traces.c,
 * api_logs.c) share: reading the time window, limit and attr filters of a
 * request, building parameterized SQL, and reading result columns; see
 * api_int.h. */
#include "api_int.h"

#include "keys.h"

#include <stdlib.h>
#include <string.h>

void sx_api_qb_init(struct sx_api_qb *b, struct sx_api_req *r, size_t sql_max)
{
    b->r = r;
    b->n = 0;
    sx_buf_init(&b->sql, sql_max);
}

void sx_api_qb_term(struct sx_api_qb *b)
{
    sx_buf_term(&b->sql);
}

int sx_api_qb_param(struct sx_api_qb *b, const char *v)
{
    if (!v || b->n >= SX_API_QB_MAX_PARAMS) return 0;
    b->params[b->n++] = v;
    return b->n;
}

int sx_api_qb_num(struct sx_api_qb *b, long long v)
{
    return sx_api_qb_param(b, sx_api_strf(b->r, "%lld", v));
}

int sx_api_qb_bytea(struct sx_api_qb *b, const uint8_t *p, size_t n)
{
    char *hex = sx_arena_alloc(b->r->fr->arena, 2 + 2 * n + 1);
    if (!hex) return 0;
    hex[0] = '\\';
    hex[1] = 'x';
    sx_hex_encode(p, n, hex + 2);
    return sx_api_qb_param(b, hex);
}

int sx_api_qb_attr(struct sx_api_qb *b, const char *kv, int *pk, int *pv)
{
    const char *eq = strchr(kv, '=');
    *pk = sx_api_qb_param(b, sx_arena_strndup(b->r->fr->arena, kv, (size_t)(eq - kv)));
    *pv = sx_api_qb_param(b, eq + 1);
    return *pk && *pv ? SX_OK : SX_ERR;
}

int sx_api_page_init(struct sx_api_page *p, struct sx_api_req *r, long long limit)
{
    memset(p, 0, sizeof(*p));
    p->cap = (int)limit + 1;
    p->res_of = sx_arena_alloc(r->fr->arena, (size_t)p->cap * sizeof(*p->res_of));
    p->row_of = sx_arena_alloc(r->fr->arena, (size_t)p->cap * sizeof(*p->row_of));
    if (!p->res_of || !p->row_of) {
        p->cap = 0;
        return sx_api_fail(r, 500, "internal", "out of memory");
    }
    return SX_OK;
}

int sx_api_page_add(struct sx_api_page *p, struct sx_api_req *r, PGresult *res)
{
    if (p->nres >= SX_API_PAGE_STEPS) {
        PQclear(res);
        sx_api_fail(r, 500, "internal", "internal error");
        return -1;
    }
    p->res[p->nres] = res;
    return p->nres++;
}

void sx_api_page_take(struct sx_api_page *p, int idx, int row)
{
    if (p->n >= p->cap) return;
    p->res_of[p->n] = idx;
    p->row_of[p->n] = row;
    p->n++;
}

int sx_api_page_need(const struct sx_api_page *p)
{
    return p->cap - p->n;
}

int sx_api_page_reply(struct sx_api_req *r, const struct sx_api_list *s, const struct sx_api_page *p)
{
    struct sx_json w;
    /* limit + 1 rows taken means another page follows. */
    int limit = p->cap - 1, shown = p->n > limit ? limit : p->n;
    sx_buf_reset(r->out);
    sx_json_init(&w, r->out);
    sx_json_obj_open(&w);
    sx_json_key(&w, s->key);
    sx_json_arr_open(&w);
    for (int i = 0; i < shown && !w.err; i++) s->write(&w, p->res[p->res_of[i]], p->row_of[i]);
    sx_json_arr_close(&w);
    sx_json_key(&w, "nextCursor");
    if (p->n > limit) {
        char cur[SX_API_CURSOR_LEN + 1];
        if (s->cursor(p->res[p->res_of[shown - 1]], p->row_of[shown - 1], cur) != SX_OK)
            return sx_api_fail(r, 500, "internal", "internal error");
        sx_json_strz(&w, cur);
    } else if (p->resume[0]) {
        sx_json_strz(&w, p->resume);
    } else {
        sx_json_null(&w);
    }
    if (p->n <= limit && p->resume[0]) {
        sx_json_key(&w, "partial");
        sx_json_bool(&w, 1);
    }
    return sx_api_reply(r, &w);
}

void sx_api_page_term(struct sx_api_page *p)
{
    for (int i = 0; i < p->nres; i++) PQclear(p->res[i]);
    p->nres = 0;
}

int sx_api_list_run(struct sx_api_req *r, const struct sx_api_list *s, const void *filters, long long limit)
{
    struct sx_api_qb b;
    struct sx_api_page page;
    PGresult *res;
    int rc = SX_ERR, idx;

    if (sx_api_page_init(&page, r, limit) != SX_OK) return SX_ERR;
    sx_api_qb_init(&b, r, s->sql_max);
    if (s->build(r, filters, &b) != SX_OK) {
        sx_api_fail(r, 400, "bad_request", "query too large");
        goto out;
    }
    if (!(res = sx_api_exec(r, b.sql.data, b.n, b.params, s->what))) goto out;
    if ((idx = sx_api_page_add(&page, r, res)) < 0) goto out;
    /* The query asks for limit + 1 rows. */
    for (int i = 0; i < PQntuples(res); i++) sx_api_page_take(&page, idx, i);
    rc = sx_api_page_reply(r, s, &page);
out:
    sx_api_page_term(&page);
    sx_api_qb_term(&b);
    return rc;
}

int sx_api_reply(struct sx_api_req *r, struct sx_json *w)
{
    sx_json_obj_close(w);
    if (w->err) return sx_api_fail(r, 500, "internal", "response too large");
    r->status = 200;
    return SX_OK;
}

int sx_api_window_params(struct sx_api_req *r, const char **from, const char **to, const char **range)
{
    int bad = 0;
    *from = sx_api_param1(r, "from", &bad);
    *to = bad ? NULL : sx_api_param1(r, "to", &bad);
    *range = bad ? NULL : sx_api_param1(r, "timeRange", &bad);
    return bad ? SX_ERR : SX_OK;
}

int sx_api_window(struct sx_api_req *r, struct sx_api_window *win)
{
    char err[256];
    const char *from, *to, *range;
    if (sx_api_window_params(r, &from, &to, &range) != SX_OK) return SX_ERR;
    if (sx_api_time_window(from, to, range, r->now_ns, SX_API_DAY_NS, win, err, sizeof(err)) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "%s", err);
    return SX_OK;
}

int sx_api_limit(struct sx_api_req *r, long long *limit)
{
    int bad = 0;
    const char *v = sx_api_param1(r, "limit", &bad);
    if (v && sx_api_parse_int(v, 1, r->cfg->api_max_limit, limit) != SX_OK)
        return sx_api_fail(r, 400, "bad_request", "invalid limit: expected an integer from 1 to %lld",
                           r->cfg->api_max_limit);
    return bad ? SX_ERR : SX_OK;
}

int sx_api_attr_check(struct sx_api_req *r)
{
    if (sx_api_query_count(&r->q, "attr") > SX_API_MAX_ATTR_FILTERS)
        return sx_api_fail(r, 400, "bad_request", "invalid attr: at most %d attr filters",
                           SX_API_MAX_ATTR_FILTERS);
    for (size_t i = 0; i < r->q.n; i++) {
        if (strcmp(r->q.params[i].key, "attr") != 0) continue;
        const char *eq = strchr(r->q.params[i].value, '=');
        if (!eq || eq == r->q.params[i].value)
            return sx_api_fail(r, 400, "bad_request", "invalid attr: expected key=value");
    }
    return SX_OK;
}

int64_t sx_api_col_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

const char *sx_api_col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

void sx_api_col_json(struct sx_json *w, const PGresult *res, int row, int col, const char *dflt)
{
    if (PQgetisnull(res, row, col)) sx_json_raw(w, dflt, strlen(dflt));
    else sx_json_raw(w, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}
