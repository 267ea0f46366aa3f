/* ctl.h: sextantctl internals shared by its command files. */
#ifndef SX_CTL_H
#define SX_CTL_H

#include "buf.h"
#include "config.h"
#include "json.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>

/* Exit codes: success, failure (message on stderr), usage error. */
#define SX_CTL_OK 0
#define SX_CTL_FAIL 1
#define SX_CTL_USAGE 2

/* Process-wide state of one sextantctl run; owned by main. Connections are
 * opened on first use and closed by main. */
struct sx_ctl {
    struct sx_config cfg;
    PGconn *pg;
    redisContext *rc;
    struct sx_buf out;  /* JSON written to stdout at the end */
    struct sx_json w;
};

/* Prints "sextantctl: <message>" on stderr. */
void sx_ctl_err(const char *fmt, ...) SX_PRINTF(1, 2);

/* The PostgreSQL connection (connecting on first use), or NULL with the
 * reason printed on stderr. Owned by ctl. */
PGconn *sx_ctl_pg(struct sx_ctl *ctl);

/* The Redis connection (connecting on first use), or NULL with the reason
 * printed on stderr. Owned by ctl. */
redisContext *sx_ctl_redis(struct sx_ctl *ctl);

/* Runs a parameterized statement; returns the result (caller PQclears) when
 * it succeeded, otherwise prints "what: <error>" on stderr and returns NULL. */
PGresult *sx_ctl_query(struct sx_ctl *ctl, const char *sql, int nparams, const char *const *params, const char *what);
/* Runs a statement without parameters or result (BEGIN, COMMIT, ...); SX_ERR
 * after printing the error. */
int sx_ctl_exec(struct sx_ctl *ctl, const char *sql);
/* Records an action in audit_log with actor 'sextantctl'; project_id may be
 * NULL, details is JSON text (NULL: {}). SX_ERR after printing the error. */
int sx_ctl_audit(struct sx_ctl *ctl, const char *action, const char *target, const char *project_id,
                 const char *details);

/* One column of a listing: its JSON key and kind: 'i' integer, 's' string,
 * 'b' boolean ("t"/"f"). */
struct sx_ctl_col {
    const char *key;
    char kind;
};
/* Writes the rows of res as a JSON array of objects, column c under
 * cols[c].key (ncols columns), then PQclears res; returns SX_CTL_OK. */
int sx_ctl_rows(struct sx_ctl *ctl, PGresult *res, const struct sx_ctl_col *cols, int ncols);

/* Resolves a project given by id or slug into *id; SX_ERR (printed) when
 * there is no such project. */
int sx_ctl_project_id(struct sx_ctl *ctl, const char *ref, long long *id);

/* Commands: each returns an exit code and writes its JSON with ctl->w.
 * argv[0] is the command name. */
int sx_ctl_migrate(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_project(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_key(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_token(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_status(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_user(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_member(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_project_settings(struct sx_ctl *ctl, int argc, char **argv); /* project set | project show */
int sx_ctl_usage(struct sx_ctl *ctl, int argc, char **argv);
int sx_ctl_maintain(struct sx_ctl *ctl, int argc, char **argv);

/* Writes the JSON array of every project with today's usage counters
 * (usage.h); SX_ERR when Redis or PostgreSQL failed (null counters). */
int sx_ctl_status_usage(struct sx_ctl *ctl, redisContext *rc);

#endif
