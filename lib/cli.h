/* cli.h: the command line every Sextant daemon shares. */
#ifndef SX_CLI_H
#define SX_CLI_H

#include "config.h"

#include <stdio.h>

#define SX_CLI_MAX_EXTRA 4

struct sx_cli {
    const char *program;                     /* name in messages and log lines */
    const char *instance;                    /* --instance NAME, or NULL */
    const char *extra[SX_CLI_MAX_EXTRA];     /* program options taking a value ("--writers"), NULL-ended */
    const char *extra_val[SX_CLI_MAX_EXTRA]; /* their values, NULL when not given */
};

/* Parses --config FILE, --set name=value (repeatable; applied after the file),
 * --instance NAME, --help and the program's extra options ("--name value" or
 * "--name=value"), and fills cfg: defaults, then the file (the default path
 * from sx_config_default_path may be missing; an explicit --config must
 * exist), then every --set. usage prints the program's own text (for --help
 * and usage errors). Returns -1 to go on, or the exit code: 0 after --help,
 * 2 after a usage or config error (the message, "file:line: ..." for config
 * lines, is printed on stderr). Strings in cli point into argv. */
int sx_cli_parse(struct sx_cli *cli, int argc, char **argv, struct sx_config *cfg, void (*usage)(FILE *f));

/* Starts logging with the program and instance names at cfg's log_level. */
void sx_cli_log_init(const struct sx_cli *cli, const struct sx_config *cfg);
/* Prints the usage text of a FastCGI program that takes only the common
 * options (--config, --set, --instance, --help); what: one line saying what
 * it serves. */
void sx_cli_usage(FILE *f, const char *program, const char *what);

#endif
