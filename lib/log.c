/* log.c: line-oriented logging to stderr (journald adds the timestamp in production). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int sx_log_threshold = SX_LOG_INFO;

static char log_program[64] = "sextant";
static char log_instance[64] = "";
static int log_stamp = 1; /* timestamps unless stderr goes to journald */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sx_log_init(const char *program, const char *instance, int level)
{
    if (program) snprintf(log_program, sizeof(log_program), "%s", program);
    if (instance) snprintf(log_instance, sizeof(log_instance), "%s", instance);
    if (level >= SX_LOG_DEBUG && level <= SX_LOG_ERROR) sx_log_threshold = level;
    log_stamp = getenv("JOURNAL_STREAM") == NULL;
}

int sx_log_level_parse(const char *name)
{
    for (size_t i = 0; i < SX_ARRAY_LEN(level_names); i++)
        if (strcasecmp(name, level_names[i]) == 0) return (int)i;
    return SX_ERR;
}

void sx_log_write(int level, const char *reqid, const char *fmt, ...)
{
    char line[2048];
    size_t off = 0;
    int n;

    if (level < SX_LOG_DEBUG || level > SX_LOG_ERROR) level = SX_LOG_ERROR;
    if (log_stamp) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        off += strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line + off, sizeof(line) - off, ".%03ldZ ", ts.tv_nsec / 1000000);
        if (n > 0) off += (size_t)n;
    }
    n = snprintf(line + off, sizeof(line) - off, "%s %s%s%s%s%s%s: ", level_names[level], log_program,
                 log_instance[0] ? "@" : "", log_instance, reqid ? " req=" : "", reqid ? reqid : "", "");
    if (n > 0) off += (size_t)n;
    if (off < sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
        va_end(ap);
        if (n > 0) off += (size_t)n;
    }
    if (off > sizeof(line) - 2) off = sizeof(line) - 2;
    line[off++] = '\n';
    /* One write per line so concurrent threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, off);
    SX_UNUSED(w);
}
