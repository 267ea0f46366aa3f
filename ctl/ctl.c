/* ctl.c: sextantctl entry point: options, config, connections and command dispatch. */
#include "ctl.h"

#include "log.h"
#include "pg.h"
#include "redis.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX ((size_t)64 << 20)

void sx_ctl_err(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "sextantctl: %s\n", msg);
}

PGconn *sx_ctl_pg(struct sx_ctl *ctl)
{
    char err[600];
    if (ctl->pg) return ctl->pg;
    ctl->pg = sx_pg_connect(ctl->cfg.pg_conninfo, err, sizeof(err));
    if (!ctl->pg) {
        sx_ctl_err("%s", err);
        return NULL;
    }
    PGresult *res = PQexec(ctl->pg, "SET client_min_messages = warning");
    PQclear(res);
    return ctl->pg;
}

redisContext *sx_ctl_redis(struct sx_ctl *ctl)
{
    char err[300];
    if (ctl->rc && !ctl->rc->err) return ctl->rc;
    if (ctl->rc) redisFree(ctl->rc);
    ctl->rc = sx_redis_connect(&ctl->cfg, 2000, 5000, err, sizeof(err));
    if (!ctl->rc) sx_ctl_err("%s", err);
    return ctl->rc;
}

PGresult *sx_ctl_query(struct sx_ctl *ctl, const char *sql, int nparams, const char *const *params, const char *what)
{
    PGconn *pg = sx_ctl_pg(ctl);
    if (!pg) return NULL;
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
        sx_ctl_err("%s: %s", what, msg);
        PQclear(res);
        return NULL;
    }
    return res;
}

int sx_ctl_project_id(struct sx_ctl *ctl, const char *ref, long long *id)
{
    const char *params[1] = {ref};
    PGresult *res = sx_ctl_query(ctl,
                                 "SELECT id FROM projects WHERE slug = $1 OR id::text = $1 "
                                 "ORDER BY (id::text = $1) DESC LIMIT 1",
                                 1, params, "find project");
    if (!res) return SX_ERR;
    int rc = SX_ERR;
    if (PQntuples(res) == 1) {
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rc = SX_OK;
    } else {
        sx_ctl_err("no project '%s'", ref);
    }
    PQclear(res);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sextantctl [--config FILE] <command>\n"
            "\n"
            "commands (output is JSON on stdout):\n"
            "  migrate [--sql-dir DIR]                  apply new sql/NNN_name.sql migrations in order\n"
            "  project create NAME [--slug SLUG]        create a project and its first ingest key\n"
            "  project errors SLUG [--error-logs on|off] [--inapp-include P,P] [--inapp-exclude P,P]\n"
            "                                           show or set how error events are derived\n"
            "  project list\n"
            "  project show SLUG                        ingest settings (sampling, limits, quotas, retention, rules)\n"
            "  project set SLUG [--sampling-rate R] [--slow-trace-ms MS] [--rate-spans|--rate-logs|\n"
            "      --rate-metric-points N|none] [--quota-spans|--quota-logs|--quota-metric-points N|none]\n"
            "      [--storage-quota BYTES|none] [--retention-traces|--retention-logs|--retention-metrics DAYS]\n"
            "      [--status active|suspended] [--redact-secrets on|off] [--attribute-rules JSON|@FILE]\n"
            "                                           change them (audited; ingest applies them within 2 s)\n"
            "  key create --project P [--name N]        new ingest key (P: project id or slug)\n"
            "  key list --project P\n"
            "  key revoke KEY_ID                        revoke at once (also drops the key cache entry)\n"
            "  token create --project P [--name N]      new access token for the API\n"
            "  user create EMAIL [--name N] [--admin] [--password-stdin]\n"
            "                                           new user; prints the password when generated\n"
            "  user passwd EMAIL [--password-stdin]     set a password (generated and printed when not\n"
            "                                           given); ends the user's sessions\n"
            "  user token EMAIL [--name N] [--expires-days D]  new personal access token\n"
            "  user list\n"
            "  user disable EMAIL | user enable EMAIL   a disabled user cannot log in; sessions end,\n"
            "                                           personal tokens answer 401 until enabled\n"
            "  member add --project P EMAIL ROLE        give a user a role (owner, admin, member, viewer)\n"
            "  member remove --project P EMAIL\n"
            "  member list --project P\n"
            "  status                                   streams, consumer groups, writer state, today's usage\n"
            "  usage --project P [--days N]             usage counters per UTC day (accepted, rate_limited, ...)\n"
            "  maintain                                 drop expired data (retention), refresh storage estimates\n"
            "  config example | config help             example config file / every setting\n"
            "\n"
            "--config FILE defaults to $SEXTANT_CONFIG, else $SEXTANT_HOME/sextant.conf, else\n"
            "./var/sextant.conf (a missing default file is fine). Errors go to stderr with exit\n"
            "status 1; usage errors exit with 2.\n");
}

int main(int argc, char **argv)
{
    static struct sx_ctl ctl; /* the run's state; lives until exit */
    char path[SX_CONF_STR_MAX], err[600];
    const char *config_path = NULL;
    int i = 1, rc = SX_CTL_USAGE;

    signal(SIGPIPE, SIG_IGN);
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return SX_CTL_OK;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
            i++;
        } else {
            sx_ctl_err("unknown option '%s'", argv[i]);
            usage(stderr);
            return SX_CTL_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return SX_CTL_USAGE;
    }
    const char *cmd = argv[i];
    int cargc = argc - i;
    char **cargv = argv + i;

    if (strcmp(cmd, "config") == 0) {
        if (cargc == 2 && strcmp(cargv[1], "example") == 0) {
            sx_config_print_example(stdout);
            return SX_CTL_OK;
        }
        if (cargc == 2 && strcmp(cargv[1], "help") == 0) {
            sx_config_print_help(stdout);
            return SX_CTL_OK;
        }
        sx_ctl_err("usage: config example | config help");
        return SX_CTL_USAGE;
    }

    sx_config_defaults(&ctl.cfg);
    if (!config_path) sx_config_default_path(path, sizeof(path));
    if (sx_config_load(&ctl.cfg, config_path ? config_path : path, config_path != NULL, err, sizeof(err)) != SX_OK) {
        fprintf(stderr, "%s\n", err);
        return SX_CTL_USAGE;
    }
    sx_log_init("sextantctl", NULL, SX_LOG_WARN);
    sx_pg_set_application_name("sextantctl");
    sx_buf_init(&ctl.out, OUT_MAX);
    sx_json_init(&ctl.w, &ctl.out);

    if (strcmp(cmd, "migrate") == 0) rc = sx_ctl_migrate(&ctl, cargc, cargv);
    else if (strcmp(cmd, "project") == 0) rc = sx_ctl_project(&ctl, cargc, cargv);
    else if (strcmp(cmd, "key") == 0) rc = sx_ctl_key(&ctl, cargc, cargv);
    else if (strcmp(cmd, "token") == 0) rc = sx_ctl_token(&ctl, cargc, cargv);
    else if (strcmp(cmd, "user") == 0) rc = sx_ctl_user(&ctl, cargc, cargv);
    else if (strcmp(cmd, "member") == 0) rc = sx_ctl_member(&ctl, cargc, cargv);
    else if (strcmp(cmd, "status") == 0) rc = sx_ctl_status(&ctl, cargc, cargv);
    else if (strcmp(cmd, "usage") == 0) rc = sx_ctl_usage(&ctl, cargc, cargv);
    else if (strcmp(cmd, "maintain") == 0) rc = sx_ctl_maintain(&ctl, cargc, cargv);
    else {
        sx_ctl_err("unknown command '%s'", cmd);
        usage(stderr);
        rc = SX_CTL_USAGE;
    }

    if (ctl.w.err) {
        sx_ctl_err("output too large");
        rc = SX_CTL_FAIL;
    } else if (ctl.out.len) {
        fwrite(ctl.out.data, 1, ctl.out.len, stdout);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 && rc == SX_CTL_OK) rc = SX_CTL_FAIL;
    sx_buf_term(&ctl.out);
    if (ctl.pg) PQfinish(ctl.pg);
    if (ctl.rc) redisFree(ctl.rc);
    return rc;
}

int sx_ctl_exec(struct sx_ctl *ctl, const char *sql)
{
    PGresult *res = sx_ctl_query(ctl, sql, 0, NULL, sql);
    if (!res) return SX_ERR;
    PQclear(res);
    return SX_OK;
}

int sx_ctl_audit(struct sx_ctl *ctl, const char *action, const char *target, const char *project_id,
                 const char *details)
{
    const char *params[4] = {action, target, project_id, details ? details : "{}"};
    PGresult *res = sx_ctl_query(ctl,
                                 "INSERT INTO audit_log (actor, action, target, project_id, details) "
                                 "VALUES ('sextantctl', $1, $2, $3::int, $4::json)",
                                 4, params, "record audit_log");
    if (!res) return SX_ERR;
    PQclear(res);
    return SX_OK;
}

int sx_ctl_rows(struct sx_ctl *ctl, PGresult *res, const struct sx_ctl_col *cols, int ncols)
{
    sx_json_arr_open(&ctl->w);
    for (int i = 0; i < PQntuples(res); i++) {
        sx_json_obj_open(&ctl->w);
        for (int c = 0; c < ncols; c++) {
            const char *v = PQgetvalue(res, i, c);
            sx_json_key(&ctl->w, cols[c].key);
            if (cols[c].kind == 'i') sx_json_int(&ctl->w, strtoll(v, NULL, 10));
            else if (cols[c].kind == 'b') sx_json_bool(&ctl->w, v[0] == 't');
            else sx_json_strz(&ctl->w, v);
        }
        sx_json_obj_close(&ctl->w);
    }
    sx_json_arr_close(&ctl->w);
    PQclear(res);
    return SX_CTL_OK;
}
