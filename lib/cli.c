/* cli.c: the shared daemon command line (--config, --set, --instance, --help). */
#include "cli.h"

#include "log.h"
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value of option name at argv[*i] ("--name value" or "--name=value"),
 * advancing *i; NULL when argv[*i] is another option. *missing is set when
 * the option is there without a value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

/* Applies one "name=value"; SX_ERR with the message printed. */
static int apply_set(struct sx_config *cfg, const char *set)
{
    char name[128], err[600];
    const char *eq = strchr(set, '=');
    size_t nl = eq ? (size_t)(eq - set) : 0;
    if (!eq || nl == 0 || nl >= sizeof(name)) {
        fprintf(stderr, "--set %s: expected name=value\n", set);
        return SX_ERR;
    }
    memcpy(name, set, nl);
    name[nl] = '\0';
    if (sx_config_set(cfg, name, eq + 1, err, sizeof(err)) != SX_OK) {
        fprintf(stderr, "--set %s: %s\n", set, err);
        return SX_ERR;
    }
    return SX_OK;
}

/* Each program connects to PostgreSQL as its own login: "sextant-api" uses
 * api_pg_conninfo when set, and names its connections "sextant-api" (or
 * "sextant-api@INSTANCE") in pg_stat_activity. */
static void select_pg(const struct sx_cli *cli, struct sx_config *cfg)
{
    static const char prefix[] = "sextant-";
    char app[64];
    const char *p = cli->program;
    if (strncmp(p, prefix, sizeof(prefix) - 1) == 0) p += sizeof(prefix) - 1;
    sx_config_select_pg(cfg, p);
    if (cli->instance) snprintf(app, sizeof(app), "%s@%s", cli->program, cli->instance);
    else snprintf(app, sizeof(app), "%s", cli->program);
    sx_pg_set_application_name(app);
}

int sx_cli_parse(struct sx_cli *cli, int argc, char **argv, struct sx_config *cfg, void (*usage)(FILE *f))
{
    char path[SX_CONF_STR_MAX], err[600];
    const char *config_path = NULL;
    const char **sets = sx_xcalloc((size_t)argc + 1, sizeof(*sets));
    int nsets = 0, rc = 2;

    for (int i = 1; i < argc; i++) {
        int missing = 0, known = 0;
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            sx_config_print_help(stdout);
            rc = 0;
            goto out;
        } else if ((v = opt_value(argc, argv, &i, "--config", &missing))) {
            config_path = v;
            known = 1;
        } else if ((v = opt_value(argc, argv, &i, "--set", &missing))) {
            sets[nsets++] = v;
            known = 1;
        } else if ((v = opt_value(argc, argv, &i, "--instance", &missing))) {
            cli->instance = v;
            known = 1;
        } else {
            for (int e = 0; e < SX_CLI_MAX_EXTRA && cli->extra[e] && !missing; e++) {
                if ((v = opt_value(argc, argv, &i, cli->extra[e], &missing))) {
                    cli->extra_val[e] = v;
                    known = 1;
                    break;
                }
            }
        }
        if (!known) {
            fprintf(stderr, "%s: %s '%s'\n", cli->program, missing ? "missing value for" : "unknown argument",
                    argv[i]);
            usage(stderr);
            goto out;
        }
    }

    sx_config_defaults(cfg);
    if (!config_path) sx_config_default_path(path, sizeof(path));
    if (sx_config_load(cfg, config_path ? config_path : path, config_path != NULL, err, sizeof(err)) != SX_OK) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    for (int i = 0; i < nsets; i++)
        if (apply_set(cfg, sets[i]) != SX_OK) goto out;
    select_pg(cli, cfg);
    rc = -1;
out:
    free(sets);
    return rc;
}

void sx_cli_log_init(const struct sx_cli *cli, const struct sx_config *cfg)
{
    int level = sx_log_level_parse(cfg->log_level);
    sx_log_init(cli->program, cli->instance, level == SX_ERR ? SX_LOG_INFO : level);
}

void sx_cli_usage(FILE *f, const char *program, const char *what)
{
    fprintf(f,
            "usage: %s [--config FILE] [--set name=value]... [--instance NAME] [--help]\n"
            "%s\n"
            "  --config FILE      settings file (default: $SEXTANT_CONFIG, else $SEXTANT_HOME/sextant.conf,\n"
            "                     else ./var/sextant.conf; a missing default file is fine)\n"
            "  --set name=value   override one setting (after the file)\n"
            "  --instance NAME    instance name shown in logs\n"
            "  --help             this text and every setting\n",
            program, what);
}
