/* log.h: the one logging macro family; checks the level before formatting. */
#ifndef SX_LOG_H
#define SX_LOG_H

#include "sx.h"

enum sx_log_level {
    SX_LOG_DEBUG = 0,
    SX_LOG_INFO = 1,
    SX_LOG_WARN = 2,
    SX_LOG_ERROR = 3
};

/* Current threshold; written once at startup by sx_log_init. */
extern int sx_log_threshold;

/* Sets the program and instance names printed on every line and the level.
 * Strings are copied. Safe to call again (e.g. after reading config). */
void sx_log_init(const char *program, const char *instance, int level);

/* Parses "debug|info|warn|error"; returns the level or SX_ERR. */
int sx_log_level_parse(const char *name);

/* Writes one line to stderr: "LEVEL program[instance] req=ID: message".
 * reqid may be NULL. Prefer the macros, which skip formatting when filtered. */
void sx_log_write(int level, const char *reqid, const char *fmt, ...) SX_PRINTF(3, 4);

#define SX_LOG(lvl, reqid, ...) \
    do { \
        if ((lvl) >= sx_log_threshold) sx_log_write((lvl), (reqid), __VA_ARGS__); \
    } while (0)

#define sx_debug(...) SX_LOG(SX_LOG_DEBUG, NULL, __VA_ARGS__)
#define sx_info(...) SX_LOG(SX_LOG_INFO, NULL, __VA_ARGS__)
#define sx_warn(...) SX_LOG(SX_LOG_WARN, NULL, __VA_ARGS__)
#define sx_error(...) SX_LOG(SX_LOG_ERROR, NULL, __VA_ARGS__)
/* Request-scoped variants: the request id is printed after the program. */
#define sx_rdebug(rid, ...) SX_LOG(SX_LOG_DEBUG, (rid), __VA_ARGS__)
#define sx_rinfo(rid, ...) SX_LOG(SX_LOG_INFO, (rid), __VA_ARGS__)
#define sx_rwarn(rid, ...) SX_LOG(SX_LOG_WARN, (rid), __VA_ARGS__)
#define sx_rerror(rid, ...) SX_LOG(SX_LOG_ERROR, (rid), __VA_ARGS__)

#endif
