/* ctl_admin.c: `sextantctl project|key|token`: projects, ingest keys and access tokens. */
#include "ctl.h"

#include "keys.h"
#include "redis.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLUG_MAX 63
#define KEY_PREFIX_LEN 12
#define SLUG_TRIES 1000

/* Time columns as RFC 3339 UTC text. */
#define RFC3339(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* Lowercase, runs of non-alphanumerics become one '-', no '-' at either
 * end, at most max characters; "project" when nothing is left. */
static void slugify(const char *name, char *out, size_t max)
{
    size_t o = 0;
    int dash = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && o < max; p++) {
        if (*p < 0x80 && isalnum(*p)) {
            if (dash && o) {
                out[o++] = '-';
                if (o == max) break;
            }
            dash = 0;
            out[o++] = (char)tolower(*p);
        } else {
            dash = 1;
        }
    }
    while (o && out[o - 1] == '-') o--;
    out[o] = '\0';
    if (!o) snprintf(out, max + 1, "project");
}

/* Same rule as the CHECK on projects.slug. */
static int slug_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SLUG_MAX || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0]))) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-')) return 0;
    return 1;
}

/* Generates a secret with prefix ("sxk"/"sxt") into secret and its hash as a
 * bytea text literal (\x...) into hashlit. */
static int new_secret(const char *prefix, char *secret, size_t slen, char *hashlit, size_t hlen)
{
    uint8_t h[SX_SHA256_LEN];
    char hex[2 * SX_SHA256_LEN + 1];
    if (sx_key_generate(prefix, secret, slen) != SX_OK) {
        sx_ctl_err("sx_key_generate failed: no randomness from the OS");
        return SX_ERR;
    }
    sx_sha256(secret, strlen(secret), h);
    sx_hex_encode(h, sizeof(h), hex);
    snprintf(hashlit, hlen, "\\x%s", hex);
    return SX_OK;
}

/* The first KEY_PREFIX_LEN characters of a secret, shown in listings. */
static void secret_prefix(const char *secret, char out[KEY_PREFIX_LEN + 1])
{
    size_t n = strnlen(secret, KEY_PREFIX_LEN);
    memcpy(out, secret, n);
    out[n] = '\0';
}

/* Inserts an ingest key for project; fills key and *id. */
static int create_key(struct sx_ctl *ctl, long long project, const char *name, char *key, size_t keylen, long long *id)
{
    char hashlit[80], pid[24], prefix[KEY_PREFIX_LEN + 1];
    if (new_secret("sxk", key, keylen, hashlit, sizeof(hashlit)) != SX_OK) return SX_ERR;
    snprintf(pid, sizeof(pid), "%lld", project);
    secret_prefix(key, prefix);
    const char *params[4] = {pid, hashlit, prefix, name};
    PGresult *res = sx_ctl_query(ctl,
                                 "INSERT INTO ingest_keys (project_id, key_hash, key_prefix, name) "
                                 "VALUES ($1::int, $2::bytea, $3, $4) RETURNING id",
                                 4, params, "create ingest key");
    if (!res) return SX_ERR;
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return SX_OK;
}

/* Options "--name value" / "--name=value" after the positional arguments. */
static const char *opt(int argc, char **argv, const char *name, int *bad)
{
    size_t n = strlen(name);
    const char *v = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], name, n) != 0) continue;
        if (argv[i][n] == '=') v = argv[i] + n + 1;
        else if (argv[i][n] == '\0' && i + 1 < argc) v = argv[i + 1];
        else if (argv[i][n] == '\0') *bad = 1;
    }
    return v;
}

/* Fails on any "--x" not in allowed (NULL-terminated). */
static int only_opts(int argc, char **argv, const char *const *allowed)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) continue;
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) {
            size_t n = strlen(*a);
            if (strncmp(argv[i], *a, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '=')) ok = 1;
        }
        if (!ok) return SX_ERR;
        if (!strchr(argv[i], '=')) i++; /* skip the value */
    }
    return SX_OK;
}

static int project_create(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char *const allowed[] = {"--slug", NULL};
    int bad = 0;
    const char *slug_opt = opt(argc, argv, "--slug", &bad);
    if (argc < 3 || argv[2][0] == '-' || bad || only_opts(argc - 3, argv + 3, allowed) != SX_OK) {
        sx_ctl_err("usage: project create NAME [--slug SLUG]");
        return SX_CTL_USAGE;
    }
    const char *name = argv[2];
    size_t nl = strlen(name);
    if (nl == 0 || nl > 200) {
        sx_ctl_err("project name must be 1 to 200 characters");
        return SX_CTL_USAGE;
    }
    if (slug_opt && !slug_valid(slug_opt)) {
        sx_ctl_err("slug '%s' must match [a-z0-9][a-z0-9-]{0,62}", slug_opt);
        return SX_CTL_USAGE;
    }
    char base[SLUG_MAX + 1], slug[SLUG_MAX + 1], key[SX_KEY_MAX];
    long long id = 0, key_id = 0;
    if (slug_opt) snprintf(base, sizeof(base), "%s", slug_opt);
    else slugify(name, base, SLUG_MAX);

    if (!sx_ctl_pg(ctl) || sx_ctl_exec(ctl, "BEGIN") != SX_OK) return SX_CTL_FAIL;
    for (int n = 1; n <= SLUG_TRIES && !id; n++) {
        if (n == 1) {
            snprintf(slug, sizeof(slug), "%s", base);
        } else {
            char suffix[16];
            int sl = snprintf(suffix, sizeof(suffix), "-%d", n);
            size_t keep = strlen(base);
            if (keep + (size_t)sl > SLUG_MAX) keep = SLUG_MAX - (size_t)sl;
            while (keep && base[keep - 1] == '-') keep--;
            snprintf(slug, sizeof(slug), "%.*s%s", (int)keep, base, suffix);
        }
        const char *params[2] = {slug, name};
        /* Look first so taken slugs do not burn identity values; the
         * ON CONFLICT below still settles a race with another run. */
        PGresult *res = sx_ctl_query(ctl, "SELECT 1 FROM projects WHERE slug = $1", 1, params, "find slug");
        if (!res) goto fail;
        int taken = PQntuples(res) > 0;
        PQclear(res);
        if (taken && !slug_opt) continue;
        if (taken) {
            sx_ctl_err("slug '%s' is already taken", slug_opt);
            goto fail;
        }
        res = sx_ctl_query(ctl,
                                     "INSERT INTO projects (slug, name) VALUES ($1, $2) "
                                     "ON CONFLICT (slug) DO NOTHING RETURNING id",
                                     2, params, "create project");
        if (!res) goto fail;
        if (PQntuples(res) == 1) id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (!id && slug_opt) {
            sx_ctl_err("slug '%s' is already taken", slug_opt);
            goto fail;
        }
    }
    if (!id) {
        sx_ctl_err("no free slug for '%s'", base);
        goto fail;
    }
    if (create_key(ctl, id, "default", key, sizeof(key), &key_id) != SX_OK) goto fail;
    if (sx_ctl_exec(ctl, "COMMIT") != SX_OK) return SX_CTL_FAIL;

    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, id);
    sx_json_key(&ctl->w, "slug");
    sx_json_strz(&ctl->w, slug);
    sx_json_key(&ctl->w, "name");
    sx_json_strz(&ctl->w, name);
    sx_json_key(&ctl->w, "ingestKey");
    sx_json_strz(&ctl->w, key);
    sx_json_key(&ctl->w, "ingestKeyId");
    sx_json_int(&ctl->w, key_id);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
fail:
    sx_ctl_exec(ctl, "ROLLBACK");
    return SX_CTL_FAIL;
}

static int project_list(struct sx_ctl *ctl)
{
    PGresult *res = sx_ctl_query(ctl, "SELECT id, slug, name, status FROM projects ORDER BY id", 0, NULL,
                                 "list projects");
    if (!res) return SX_CTL_FAIL;
    static const struct sx_ctl_col cols[] = {{"id", 'i'}, {"slug", 's'}, {"name", 's'}, {"status", 's'}};
    return sx_ctl_rows(ctl, res, cols, 4);
}

/* project errors SLUG [--error-logs on|off] [--inapp-include P,P...] [--inapp-exclude P,P...]:
 * shows, or changes then shows, how sextant-persist derives a project's
 * error events (sql/010_errors.sql). An empty list clears the patterns.
 * sextant-persist takes a change within 10 s (its per-project cache). */
static int project_errors(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char *const allowed[] = {"--error-logs", "--inapp-include", "--inapp-exclude", NULL};
    static const char usage[] =
        "usage: project errors SLUG [--error-logs on|off] [--inapp-include P,P...] [--inapp-exclude P,P...]";
    int bad = 0;
    const char *logs = opt(argc, argv, "--error-logs", &bad);
    const char *inc = bad ? NULL : opt(argc, argv, "--inapp-include", &bad);
    const char *exc = bad ? NULL : opt(argc, argv, "--inapp-exclude", &bad);
    if (argc < 3 || argv[2][0] == '-' || bad || only_opts(argc - 3, argv + 3, allowed) != SX_OK ||
        (logs && strcmp(logs, "on") != 0 && strcmp(logs, "off") != 0)) {
        sx_ctl_err("%s", usage);
        return SX_CTL_USAGE;
    }
    const char *params[4] = {argv[2], logs ? (strcmp(logs, "on") == 0 ? "true" : "false") : NULL, inc, exc};
    PGresult *res = sx_ctl_query(ctl,
                                 "UPDATE projects SET error_logs_as_events = COALESCE($2::boolean, error_logs_as_events), "
                                 "inapp_include = COALESCE(array_remove(string_to_array($3, ','), ''), inapp_include), "
                                 "inapp_exclude = COALESCE(array_remove(string_to_array($4, ','), ''), inapp_exclude) "
                                 "WHERE slug = $1 RETURNING slug, error_logs_as_events, "
                                 "array_to_json(inapp_include)::text, array_to_json(inapp_exclude)::text",
                                 4, params, "project errors");
    if (!res) return SX_CTL_FAIL;
    if (PQntuples(res) != 1) {
        PQclear(res);
        sx_ctl_err("no project '%s'", argv[2]);
        return SX_CTL_FAIL;
    }
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "slug");
    sx_json_strz(&ctl->w, PQgetvalue(res, 0, 0));
    sx_json_key(&ctl->w, "errorLogsAsEvents");
    sx_json_bool(&ctl->w, PQgetvalue(res, 0, 1)[0] == 't');
    sx_json_key(&ctl->w, "inAppInclude");
    sx_json_raw(&ctl->w, PQgetvalue(res, 0, 2), (size_t)PQgetlength(res, 0, 2));
    sx_json_key(&ctl->w, "inAppExclude");
    sx_json_raw(&ctl->w, PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
    sx_json_obj_close(&ctl->w);
    PQclear(res);
    return SX_CTL_OK;
}

int sx_ctl_project(struct sx_ctl *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "create") == 0) return project_create(ctl, argc, argv);
    if (argc == 2 && strcmp(argv[1], "list") == 0) return project_list(ctl);
    if (argc >= 2 && strcmp(argv[1], "errors") == 0) return project_errors(ctl, argc, argv);
    if (argc >= 2 && (strcmp(argv[1], "set") == 0 || strcmp(argv[1], "show") == 0))
        return sx_ctl_project_settings(ctl, argc, argv);
    sx_ctl_err("usage: project create NAME [--slug SLUG] | project list | project errors SLUG [options] | "
               "project show SLUG | project set SLUG [options]");
    return SX_CTL_USAGE;
}

static int key_create(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char *const allowed[] = {"--project", "--name", NULL};
    int bad = 0;
    const char *project = opt(argc - 2, argv + 2, "--project", &bad);
    const char *name = opt(argc - 2, argv + 2, "--name", &bad);
    long long pid, id;
    char key[SX_KEY_MAX];
    if (!project || bad || only_opts(argc - 2, argv + 2, allowed) != SX_OK) {
        sx_ctl_err("usage: key create --project P [--name N]");
        return SX_CTL_USAGE;
    }
    if (sx_ctl_project_id(ctl, project, &pid) != SX_OK) return SX_CTL_FAIL;
    if (create_key(ctl, pid, name, key, sizeof(key), &id) != SX_OK) return SX_CTL_FAIL;
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, id);
    sx_json_key(&ctl->w, "ingestKey");
    sx_json_strz(&ctl->w, key);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

static int key_list(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char *const allowed[] = {"--project", NULL};
    int bad = 0;
    const char *project = opt(argc - 2, argv + 2, "--project", &bad);
    long long pid;
    char pidtxt[24];
    if (!project || bad || only_opts(argc - 2, argv + 2, allowed) != SX_OK) {
        sx_ctl_err("usage: key list --project P");
        return SX_CTL_USAGE;
    }
    if (sx_ctl_project_id(ctl, project, &pid) != SX_OK) return SX_CTL_FAIL;
    snprintf(pidtxt, sizeof(pidtxt), "%lld", pid);
    const char *params[1] = {pidtxt};
    PGresult *res = sx_ctl_query(ctl,
                                 "SELECT id, key_prefix, name, " RFC3339("created_at") ", " RFC3339("revoked_at")
                                 " FROM ingest_keys WHERE project_id = $1::int ORDER BY id",
                                 1, params, "list ingest keys");
    if (!res) return SX_CTL_FAIL;
    sx_json_arr_open(&ctl->w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&ctl->w);
        sx_json_key(&ctl->w, "id");
        sx_json_int(&ctl->w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        sx_json_key(&ctl->w, "prefix");
        sx_json_strz(&ctl->w, PQgetvalue(res, i, 1));
        sx_json_key(&ctl->w, "name");
        sx_json_strz(&ctl->w, PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2));
        sx_json_key(&ctl->w, "createdAt");
        sx_json_strz(&ctl->w, PQgetvalue(res, i, 3));
        sx_json_key(&ctl->w, "revokedAt");
        sx_json_strz(&ctl->w, PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4));
        sx_json_obj_close(&ctl->w);
    }
    sx_json_arr_close(&ctl->w);
    PQclear(res);
    return SX_CTL_OK;
}

static int key_revoke(struct sx_ctl *ctl, int argc, char **argv)
{
    char *end;
    if (argc != 3) {
        sx_ctl_err("usage: key revoke KEY_ID");
        return SX_CTL_USAGE;
    }
    long long id = strtoll(argv[2], &end, 10);
    if (*end || end == argv[2] || id <= 0 || id > INT32_MAX) {
        sx_ctl_err("KEY_ID must be a key id (a positive integer), got '%s'", argv[2]);
        return SX_CTL_USAGE;
    }
    const char *params[1] = {argv[2]};
    PGresult *res = sx_ctl_query(ctl,
                                 "UPDATE ingest_keys SET revoked_at = COALESCE(revoked_at, now()) "
                                 "WHERE id = $1::int RETURNING encode(key_hash, 'hex')",
                                 1, params, "revoke ingest key");
    if (!res) return SX_CTL_FAIL;
    if (PQntuples(res) != 1) {
        PQclear(res);
        sx_ctl_err("no ingest key %lld", id);
        return SX_CTL_FAIL;
    }
    char suffix[8 + 2 * SX_SHA256_LEN + 1], cache_key[SX_CONF_STR_MAX];
    snprintf(suffix, sizeof(suffix), "key:%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    sx_redis_key(cache_key, sizeof(cache_key), &ctl->cfg, suffix);

    /* The key is revoked in PostgreSQL either way; the cache entry would
     * otherwise let it in until its TTL runs out. */
    int cleared = 0;
    redisContext *rc = sx_ctl_redis(ctl);
    if (rc) {
        redisReply *r = redisCommand(rc, "DEL %s", cache_key);
        if (r && r->type == REDIS_REPLY_INTEGER) cleared = 1;
        else sx_ctl_err("DEL %s failed: %s", cache_key, r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
    }
    if (!cleared)
        sx_ctl_err("warning: key cache entry not cleared; ingest may accept the key for up to key_cache_ttl (%lld s)",
                   ctl->cfg.key_cache_ttl);
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, id);
    sx_json_key(&ctl->w, "revoked");
    sx_json_bool(&ctl->w, true);
    sx_json_key(&ctl->w, "cacheCleared");
    sx_json_bool(&ctl->w, cleared);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

int sx_ctl_key(struct sx_ctl *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "create") == 0) return key_create(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "list") == 0) return key_list(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0) return key_revoke(ctl, argc, argv);
    sx_ctl_err("usage: key create --project P [--name N] | key list --project P | key revoke KEY_ID");
    return SX_CTL_USAGE;
}

int sx_ctl_token(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char *const allowed[] = {"--project", "--name", NULL};
    int bad = 0;
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        sx_ctl_err("usage: token create --project P [--name N]");
        return SX_CTL_USAGE;
    }
    const char *project = opt(argc - 2, argv + 2, "--project", &bad);
    const char *name = opt(argc - 2, argv + 2, "--name", &bad);
    if (!project || bad || only_opts(argc - 2, argv + 2, allowed) != SX_OK) {
        sx_ctl_err("usage: token create --project P [--name N]");
        return SX_CTL_USAGE;
    }
    long long pid;
    char token[SX_KEY_MAX], hashlit[80], pidtxt[24], prefix[KEY_PREFIX_LEN + 1];
    if (sx_ctl_project_id(ctl, project, &pid) != SX_OK) return SX_CTL_FAIL;
    if (new_secret("sxt", token, sizeof(token), hashlit, sizeof(hashlit)) != SX_OK) return SX_CTL_FAIL;
    snprintf(pidtxt, sizeof(pidtxt), "%lld", pid);
    secret_prefix(token, prefix);
    const char *params[4] = {pidtxt, hashlit, prefix, name};
    PGresult *res = sx_ctl_query(ctl,
                                 "INSERT INTO access_tokens (project_id, token_hash, token_prefix, name) "
                                 "VALUES ($1::int, $2::bytea, $3, $4) RETURNING id",
                                 4, params, "create access token");
    if (!res) return SX_CTL_FAIL;
    long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "token");
    sx_json_strz(&ctl->w, token);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, id);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}
