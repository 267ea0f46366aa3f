/* projset.h: the settable per-project ingest settings (projects columns of
 * sql/013) and their validation, shared by `sextantctl project set` and the
 * API's PUT /api/v1/projects/{p}, so both accept exactly the same values. */
#ifndef SX_PROJSET_H
#define SX_PROJSET_H

#include <stddef.h>

/* One settable column. kind: 'd' number 0..1, 'i' integer 0..2^31-1, 'n'
 * positive 32-bit integer or "none" (NULL), 'q' integer >= 0 or "none", 'r'
 * retention days 1..3650, 's' active|suspended, 'b' on|off, 'j' attribute
 * rules (JSON text, sx_scrub_rules_parse). */
struct sx_projset {
    const char *opt;    /* sextantctl option, "--sampling-rate" */
    const char *column; /* projects column */
    const char *cast;   /* SQL type of the parameter */
    char kind;
    const char *json;   /* name in `project show` */
    const char *group;  /* API: enclosing object ("rateLimits") or NULL */
    const char *key;    /* API: member name */
};

#define SX_PROJSET_COUNT 15
extern const struct sx_projset sx_projset_fields[SX_PROJSET_COUNT];

/* Checks the text form of a value (numbers as text, "none" for no limit,
 * on|off, the rules' JSON) and sets *out to the SQL parameter text: a
 * pointer into v, a static string, or NULL for SQL NULL. SX_ERR with a
 * message ("--slow-trace-ms must be ...", or the rules' error) in err. */
int sx_projset_check(const struct sx_projset *s, const char *v, const char **out, char *err, size_t errlen);

#endif
