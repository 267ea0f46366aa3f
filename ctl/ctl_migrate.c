/* ctl_migrate.c: `sextantctl migrate`: applies numbered sql/NNN_name.sql files once each, in order. */
#include "ctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIGRATION_MAX_BYTES ((long)16 << 20)
#define MIGRATIONS_MAX 4096
/* Key of the session advisory lock that serializes concurrent migrate runs. */
#define MIGRATE_LOCK "5378616e74"

struct migration {
    int version;
    char file[256]; /* NNN_name.sql */
    char name[256]; /* NNN_name */
};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The SQL directory: --sql-dir, else $SEXTANT_SQL_DIR, else <exe dir>/../sql,
 * else <exe dir>/../share/sextant/sql. */
static int sql_dir(const char *flag, char *out, size_t len)
{
    char exe[PATH_MAX];
    if (flag) {
        snprintf(out, len, "%s", flag);
        return is_dir(out) ? SX_OK : SX_ERR;
    }
    const char *env = getenv("SEXTANT_SQL_DIR");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return is_dir(out) ? SX_OK : SX_ERR;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        snprintf(out, len, "./sql");
        return is_dir(out) ? SX_OK : SX_ERR;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    int k = snprintf(out, len, "%s/../sql", exe);
    if (k > 0 && (size_t)k < len && is_dir(out)) return SX_OK;
    k = snprintf(out, len, "%s/../share/sextant/sql", exe);
    return k > 0 && (size_t)k < len && is_dir(out) ? SX_OK : SX_ERR;
}

static int by_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Lists NNN_name.sql files sorted by version; SX_ERR (printed) on a
 * duplicate version or an unreadable directory. Caller frees *out. */
static int list_migrations(const char *dir, struct migration **out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct migration *m = NULL;
    size_t cnt = 0;
    int rc = SX_ERR;
    *out = NULL;
    *n = 0;
    if (!d) {
        sx_ctl_err("opendir(%s) failed: %s", dir, strerror(errno));
        return SX_ERR;
    }
    m = calloc(MIGRATIONS_MAX, sizeof(*m));
    if (!m) goto cleanup;
    while ((de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        size_t fl = strlen(f), digits = 0;
        while (isdigit((unsigned char)f[digits])) digits++;
        if (digits == 0 || digits > 6 || f[digits] != '_' || fl < digits + 6 || fl >= sizeof(m->file) ||
            strcmp(f + fl - 4, ".sql") != 0)
            continue;
        if (cnt == MIGRATIONS_MAX) {
            sx_ctl_err("%s: more than %d migrations", dir, MIGRATIONS_MAX);
            goto cleanup;
        }
        m[cnt].version = atoi(f);
        memcpy(m[cnt].file, f, fl + 1);
        memcpy(m[cnt].name, f, fl - 4);
        m[cnt].name[fl - 4] = '\0';
        cnt++;
    }
    qsort(m, cnt, sizeof(*m), by_version);
    for (size_t i = 1; i < cnt; i++)
        if (m[i].version == m[i - 1].version) {
            sx_ctl_err("%s: %s and %s have the same version", dir, m[i - 1].file, m[i].file);
            goto cleanup;
        }
    *out = m;
    *n = cnt;
    m = NULL;
    rc = SX_OK;
cleanup:
    free(m);
    closedir(d);
    return rc;
}

/* Reads a whole file as a NUL-terminated string; NULL (printed) on failure.
 * Caller frees. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        sx_ctl_err("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) goto fail;
    long sz = ftell(f);
    if (sz < 0 || sz > MIGRATION_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) goto fail;
    buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) goto fail;
    buf[sz] = '\0';
    fclose(f);
    return buf;
fail:
    sx_ctl_err("%s: cannot read (or larger than %ld bytes)", path, MIGRATION_MAX_BYTES);
    free(buf);
    fclose(f);
    return NULL;
}

static int exec_simple(struct sx_ctl *ctl, const char *sql, const char *what)
{
    PGresult *res = sx_ctl_query(ctl, sql, 0, NULL, what);
    if (!res) return SX_ERR;
    PQclear(res);
    return SX_OK;
}

/* Applies one migration and records it, in one transaction. */
static int apply(struct sx_ctl *ctl, const char *dir, const struct migration *m)
{
    char path[PATH_MAX + 256], ver[16];
    PGresult *res = NULL;
    int rc = SX_ERR, began = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, m->file);
    char *sql = read_file(path);
    if (!sql) return SX_ERR;
    if (exec_simple(ctl, "BEGIN", "BEGIN") != SX_OK) goto cleanup;
    began = 1;
    /* PQexec (simple protocol) runs a file of many statements. */
    res = PQexec(ctl->pg, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[800];
        snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(ctl->pg));
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
        sx_ctl_err("%s: %s", m->file, msg);
        goto cleanup;
    }
    PQclear(res);
    snprintf(ver, sizeof(ver), "%d", m->version);
    const char *params[2] = {ver, m->name};
    res = sx_ctl_query(ctl, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2, params,
                       "record migration");
    if (!res) goto cleanup;
    PQclear(res);
    res = NULL;
    if (exec_simple(ctl, "COMMIT", "COMMIT") != SX_OK) goto cleanup;
    began = 0;
    rc = SX_OK;
cleanup:
    PQclear(res);
    if (began) {
        res = PQexec(ctl->pg, "ROLLBACK");
        PQclear(res);
    }
    free(sql);
    return rc;
}

static int applied_before(PGresult *res, int version)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (atoi(PQgetvalue(res, i, 0)) == version) return 1;
    return 0;
}

int sx_ctl_migrate(struct sx_ctl *ctl, int argc, char **argv)
{
    const char *flag = NULL;
    char dir[PATH_MAX];
    struct migration *m = NULL;
    size_t n = 0;
    PGresult *done = NULL, *res;
    int rc = SX_CTL_FAIL, locked = 0;
    size_t *applied = NULL, napplied = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sql-dir") == 0 && i + 1 < argc) flag = argv[++i];
        else if (strncmp(argv[i], "--sql-dir=", 10) == 0) flag = argv[i] + 10;
        else {
            sx_ctl_err("usage: migrate [--sql-dir DIR]");
            return SX_CTL_USAGE;
        }
    }
    if (sql_dir(flag, dir, sizeof(dir)) != SX_OK) {
        sx_ctl_err("no SQL directory (tried %s); use --sql-dir or SEXTANT_SQL_DIR", dir);
        return SX_CTL_FAIL;
    }
    if (list_migrations(dir, &m, &n) != SX_OK) return SX_CTL_FAIL;
    if (!sx_ctl_pg(ctl)) goto cleanup;
    if (exec_simple(ctl, "SELECT pg_advisory_lock(x'" MIGRATE_LOCK "'::bigint)", "pg_advisory_lock") != SX_OK)
        goto cleanup;
    locked = 1;
    if (exec_simple(ctl,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "version integer PRIMARY KEY, name text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())",
                    "CREATE TABLE schema_migrations") != SX_OK)
        goto cleanup;
    done = sx_ctl_query(ctl, "SELECT version FROM schema_migrations", 0, NULL, "read schema_migrations");
    if (!done) goto cleanup;
    applied = calloc(n ? n : 1, sizeof(*applied));
    if (!applied) goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (applied_before(done, m[i].version)) continue;
        if (apply(ctl, dir, &m[i]) != SX_OK) goto cleanup;
        applied[napplied++] = i;
    }
    res = sx_ctl_query(ctl, "SELECT COALESCE(max(version), 0) FROM schema_migrations", 0, NULL, "read version");
    if (!res) goto cleanup;
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "applied");
    sx_json_arr_open(&ctl->w);
    for (size_t i = 0; i < napplied; i++) sx_json_strz(&ctl->w, m[applied[i]].name);
    sx_json_arr_close(&ctl->w);
    sx_json_key(&ctl->w, "current");
    sx_json_int(&ctl->w, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    sx_json_obj_close(&ctl->w);
    PQclear(res);
    rc = SX_CTL_OK;

cleanup:
    if (rc != SX_CTL_OK && napplied) {
        fprintf(stderr, "sextantctl: applied before the failure:");
        for (size_t i = 0; i < napplied; i++) fprintf(stderr, " %s", m[applied[i]].name);
        fputc('\n', stderr);
    }
    if (locked) {
        res = PQexec(ctl->pg, "SELECT pg_advisory_unlock(x'" MIGRATE_LOCK "'::bigint)");
        PQclear(res);
    }
    PQclear(done);
    free(applied);
    free(m);
    return rc;
}
