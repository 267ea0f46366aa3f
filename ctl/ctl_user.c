/* ctl_user.c: `sextantctl user|member`: users, their passwords and personal
 * access tokens, and project memberships, each recorded in audit_log with
 * actor 'sextantctl'.
 *
 * Passwords: --password-stdin reads one line from stdin (the newline
 * dropped); without it a strong password is generated (lib/password.h) and
 * printed once in "password". A password read from stdin is never printed:
 * "password" is null then. `user passwd` also revokes the user's sessions
 * (a changed password logs out every browser). */
#include "ctl.h"

#include "keys.h"
#include "password.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX_LEN 12

/* Parsed arguments of a user/member command: positionals and options. */
struct args {
    const char *pos[4];
    int npos;
    const char *name, *project, *expires;
    int admin, pw_stdin;
};

/* Parses argv (after "user create" etc.). SX_ERR on an unknown option, an
 * option without its value, or too many positionals. */
static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        const char **slot = NULL;
        if (strcmp(s, "--admin") == 0) a->admin = 1;
        else if (strcmp(s, "--password-stdin") == 0) a->pw_stdin = 1;
        else if (strcmp(s, "--name") == 0) slot = &a->name;
        else if (strcmp(s, "--project") == 0) slot = &a->project;
        else if (strcmp(s, "--expires-days") == 0) slot = &a->expires;
        else if (strncmp(s, "--", 2) == 0) {
            sx_ctl_err("unknown option '%s'", s);
            return SX_ERR;
        } else if (a->npos < (int)SX_ARRAY_LEN(a->pos)) a->pos[a->npos++] = s;
        else return SX_ERR;
        if (slot) {
            if (i + 1 >= argc) {
                sx_ctl_err("%s needs a value", s);
                return SX_ERR;
            }
            *slot = argv[++i];
        }
    }
    return SX_OK;
}

/* Reads the password: one line of stdin, or a generated one (gen set). */
static int get_password(int from_stdin, char *pw, size_t pwlen, int *gen)
{
    *gen = 0;
    if (!from_stdin) {
        char g[SX_PASSWORD_GEN_LEN + 1];
        sx_password_generate(g);
        snprintf(pw, pwlen, "%s", g);
        *gen = 1;
        return SX_OK;
    }
    if (!fgets(pw, (int)pwlen, stdin)) {
        sx_ctl_err("--password-stdin: nothing on stdin");
        return SX_ERR;
    }
    size_t n = strlen(pw);
    if (n && pw[n - 1] != '\n' && !feof(stdin)) {
        sx_ctl_err("--password-stdin: password longer than %d bytes", SX_PASSWORD_MAX);
        return SX_ERR;
    }
    while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r')) pw[--n] = '\0';
    if (n < SX_PASSWORD_MIN || n > SX_PASSWORD_MAX) {
        sx_ctl_err("--password-stdin: a password has %d to %d bytes", SX_PASSWORD_MIN, SX_PASSWORD_MAX);
        return SX_ERR;
    }
    return SX_OK;
}

static int hash_password(const char *pw, char out[SX_PASSWORD_HASH_MAX])
{
    if (sx_password_init() != SX_OK || sx_password_hash(pw, strlen(pw), out) != SX_OK) {
        sx_ctl_err("sx_password_hash failed (libsodium unavailable or out of memory)");
        return SX_ERR;
    }
    return SX_OK;
}

/* Finds a user by email (case-insensitive) into *id; printed when missing. */
static int user_id(struct sx_ctl *ctl, const char *email, char id[24])
{
    const char *params[1] = {email};
    PGresult *res = sx_ctl_query(ctl, "SELECT id FROM users WHERE lower(email) = lower($1)", 1, params, "find user");
    if (!res) return SX_ERR;
    int rc = SX_ERR;
    if (PQntuples(res) == 1) {
        snprintf(id, 24, "%s", PQgetvalue(res, 0, 0));
        rc = SX_OK;
    } else {
        sx_ctl_err("no user '%s'", email);
    }
    PQclear(res);
    return rc;
}

/* Opens the answer object of a command about one user: {"id","email", ... */
static void user_json_open(struct sx_ctl *ctl, const char *id, const char *email)
{
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, strtoll(id, NULL, 10));
    sx_json_key(&ctl->w, "email");
    sx_json_strz(&ctl->w, email);
}

static int user_create(struct sx_ctl *ctl, int argc, char **argv)
{
    struct args a;
    char pw[SX_PASSWORD_MAX + 2], hash[SX_PASSWORD_HASH_MAX];
    int gen;
    if (parse_args(argc - 2, argv + 2, &a) != SX_OK || a.npos != 1 || a.project || a.expires) {
        sx_ctl_err("usage: user create EMAIL [--name NAME] [--admin] [--password-stdin]");
        return SX_CTL_USAGE;
    }
    const char *email = a.pos[0];
    if (!strchr(email, '@') || strlen(email) > 254) {
        sx_ctl_err("'%s' is not an email address", email);
        return SX_CTL_USAGE;
    }
    if (get_password(a.pw_stdin, pw, sizeof(pw), &gen) != SX_OK || hash_password(pw, hash) != SX_OK) return SX_CTL_FAIL;
    const char *params[4] = {email, a.name ? a.name : "", hash, a.admin ? "true" : "false"};
    PGresult *res = sx_ctl_query(ctl,
                                 "INSERT INTO users (email, name, password_hash, is_admin) "
                                 "SELECT $1, $2, $3, $4::boolean "
                                 "WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1)) RETURNING id",
                                 4, params, "create user");
    if (!res) return SX_CTL_FAIL;
    if (PQntuples(res) != 1) {
        PQclear(res);
        sx_ctl_err("a user with email '%s' exists already", email);
        return SX_CTL_FAIL;
    }
    long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    (void)sx_ctl_audit(ctl, "user.create", email, NULL, a.admin ? "{\"isAdmin\":true}" : "{\"isAdmin\":false}");
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, id);
    sx_json_key(&ctl->w, "email");
    sx_json_strz(&ctl->w, email);
    sx_json_key(&ctl->w, "isAdmin");
    sx_json_bool(&ctl->w, a.admin);
    sx_json_key(&ctl->w, "password");
    sx_json_strz(&ctl->w, gen ? pw : NULL);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

static int user_passwd(struct sx_ctl *ctl, int argc, char **argv)
{
    struct args a;
    char pw[SX_PASSWORD_MAX + 2], hash[SX_PASSWORD_HASH_MAX], id[24];
    int gen;
    if (parse_args(argc - 2, argv + 2, &a) != SX_OK || a.npos != 1 || a.project || a.expires || a.name || a.admin) {
        sx_ctl_err("usage: user passwd EMAIL [--password-stdin]");
        return SX_CTL_USAGE;
    }
    if (user_id(ctl, a.pos[0], id) != SX_OK) return SX_CTL_FAIL;
    if (get_password(a.pw_stdin, pw, sizeof(pw), &gen) != SX_OK || hash_password(pw, hash) != SX_OK) return SX_CTL_FAIL;
    const char *params[2] = {id, hash};
    /* One statement: the new hash and the end of every session. */
    PGresult *res = sx_ctl_query(ctl,
                                 "WITH u AS (UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1::int) "
                                 "UPDATE sessions SET revoked_at = now() WHERE user_id = $1::int AND revoked_at IS NULL "
                                 "AND expires_at > now() RETURNING id",
                                 2, params, "set password");
    if (!res) return SX_CTL_FAIL;
    int revoked = PQntuples(res);
    PQclear(res);
    char details[64];
    snprintf(details, sizeof(details), "{\"sessionsRevoked\":%d}", revoked);
    (void)sx_ctl_audit(ctl, "user.passwd", a.pos[0], NULL, details);
    user_json_open(ctl, id, a.pos[0]);
    sx_json_key(&ctl->w, "password");
    sx_json_strz(&ctl->w, gen ? pw : NULL);
    sx_json_key(&ctl->w, "sessionsRevoked");
    sx_json_int(&ctl->w, revoked);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

static int user_token(struct sx_ctl *ctl, int argc, char **argv)
{
    struct args a;
    char id[24], token[SX_KEY_MAX], hex[2 * SX_SHA256_LEN + 1], hashlit[2 * SX_SHA256_LEN + 3];
    char prefix[KEY_PREFIX_LEN + 1];
    uint8_t h[SX_SHA256_LEN];
    char *end = NULL;
    if (parse_args(argc - 2, argv + 2, &a) != SX_OK || a.npos != 1 || a.project || a.admin || a.pw_stdin ||
        (a.expires && (strtol(a.expires, &end, 10) < 1 || strtol(a.expires, NULL, 10) > 3650 || *end))) {
        sx_ctl_err("usage: user token EMAIL [--name NAME] [--expires-days D]   (D: 1..3650)");
        return SX_CTL_USAGE;
    }
    if (user_id(ctl, a.pos[0], id) != SX_OK) return SX_CTL_FAIL;
    if (sx_key_generate("sxp", token, sizeof(token)) != SX_OK) {
        sx_ctl_err("sx_key_generate failed: no randomness from the OS");
        return SX_CTL_FAIL;
    }
    sx_sha256(token, strlen(token), h);
    sx_hex_encode(h, sizeof(h), hex);
    snprintf(hashlit, sizeof(hashlit), "\\x%s", hex);
    snprintf(prefix, sizeof(prefix), "%.*s", KEY_PREFIX_LEN, token);
    const char *params[5] = {id, hashlit, prefix, a.name ? a.name : "sextantctl", a.expires};
    PGresult *res = sx_ctl_query(ctl,
                                 "INSERT INTO access_tokens (user_id, token_hash, token_prefix, name, expires_at) "
                                 "VALUES ($1::int, $2::bytea, $3, $4, now() + make_interval(days => $5::int)) "
                                 "RETURNING id, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                                 5, params, "create personal access token");
    if (!res) return SX_CTL_FAIL;
    long long tid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "token");
    sx_json_strz(&ctl->w, token);
    sx_json_key(&ctl->w, "id");
    sx_json_int(&ctl->w, tid);
    sx_json_key(&ctl->w, "expiresAt");
    sx_json_strz(&ctl->w, PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1));
    sx_json_obj_close(&ctl->w);
    PQclear(res);
    char details[64];
    snprintf(details, sizeof(details), "{\"tokenId\":%lld}", tid);
    (void)sx_ctl_audit(ctl, "token.create", a.pos[0], NULL, details);
    return SX_CTL_OK;
}

/* user disable|enable EMAIL. Disabling sets disabled_at (the API then
 * refuses the user's login, sessions and personal tokens: 401) and revokes
 * their sessions in the same statement, so enabling again never brings a
 * browser session back; personal tokens work again after enable. */
static int user_disable(struct sx_ctl *ctl, int argc, char **argv, int disable)
{
    struct args a;
    char id[24];
    if (parse_args(argc - 2, argv + 2, &a) != SX_OK || a.npos != 1 || a.project || a.expires || a.name || a.admin ||
        a.pw_stdin) {
        sx_ctl_err("usage: user %s EMAIL", disable ? "disable" : "enable");
        return SX_CTL_USAGE;
    }
    if (user_id(ctl, a.pos[0], id) != SX_OK) return SX_CTL_FAIL;
    const char *params[1] = {id};
    PGresult *res = sx_ctl_query(ctl,
                                 disable ? "WITH u AS (UPDATE users SET disabled_at = COALESCE(disabled_at, now()), "
                                           "updated_at = now() WHERE id = $1::int) "
                                           "UPDATE sessions SET revoked_at = now() WHERE user_id = $1::int "
                                           "AND revoked_at IS NULL AND expires_at > now() RETURNING id"
                                         : "UPDATE users SET disabled_at = NULL, updated_at = now() WHERE id = $1::int "
                                           "AND disabled_at IS NOT NULL RETURNING NULL",
                                 1, params, disable ? "disable user" : "enable user");
    if (!res) return SX_CTL_FAIL;
    int n = PQntuples(res); /* sessions revoked, or 1 when an enable changed something */
    PQclear(res);
    char details[64];
    if (disable) snprintf(details, sizeof(details), "{\"sessionsRevoked\":%d}", n);
    else snprintf(details, sizeof(details), "{\"wasDisabled\":%s}", n ? "true" : "false");
    (void)sx_ctl_audit(ctl, disable ? "user.disable" : "user.enable", a.pos[0], NULL, details);
    user_json_open(ctl, id, a.pos[0]);
    sx_json_key(&ctl->w, "disabled");
    sx_json_bool(&ctl->w, disable);
    if (disable) {
        sx_json_key(&ctl->w, "sessionsRevoked");
        sx_json_int(&ctl->w, n);
    }
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

static int user_list(struct sx_ctl *ctl, int argc, char **argv)
{
    SX_UNUSED(argv);
    if (argc != 2) {
        sx_ctl_err("usage: user list");
        return SX_CTL_USAGE;
    }
    PGresult *res = sx_ctl_query(ctl,
                                 "SELECT id, email, name, is_admin, disabled_at IS NOT NULL FROM users ORDER BY id", 0,
                                 NULL, "list users");
    if (!res) return SX_CTL_FAIL;
    static const struct sx_ctl_col cols[] = {{"id", 'i'}, {"email", 's'}, {"name", 's'}, {"isAdmin", 'b'},
                                             {"disabled", 'b'}};
    return sx_ctl_rows(ctl, res, cols, 5);
}

int sx_ctl_user(struct sx_ctl *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "create") == 0) return user_create(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "passwd") == 0) return user_passwd(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "token") == 0) return user_token(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "list") == 0) return user_list(ctl, argc, argv);
    if (argc >= 2 && strcmp(argv[1], "disable") == 0) return user_disable(ctl, argc, argv, 1);
    if (argc >= 2 && strcmp(argv[1], "enable") == 0) return user_disable(ctl, argc, argv, 0);
    sx_ctl_err("usage: user create EMAIL [--name NAME] [--admin] [--password-stdin] | user passwd EMAIL "
               "[--password-stdin] | user token EMAIL [--name NAME] [--expires-days D] | user list | "
               "user disable EMAIL | user enable EMAIL");
    return SX_CTL_USAGE;
}

static int member_add(struct sx_ctl *ctl, struct args *a)
{
    char uid[24], pid[24], details[96];
    long long p;
    const char *role = a->pos[1];
    if (strcmp(role, "owner") != 0 && strcmp(role, "admin") != 0 && strcmp(role, "member") != 0 &&
        strcmp(role, "viewer") != 0) {
        sx_ctl_err("ROLE is owner, admin, member or viewer, got '%s'", role);
        return SX_CTL_USAGE;
    }
    if (sx_ctl_project_id(ctl, a->project, &p) != SX_OK || user_id(ctl, a->pos[0], uid) != SX_OK) return SX_CTL_FAIL;
    snprintf(pid, sizeof(pid), "%lld", p);
    const char *params[3] = {pid, uid, role};
    PGresult *res = sx_ctl_query(ctl,
                                 "INSERT INTO project_members (project_id, user_id, role) VALUES ($1::int, $2::int, $3) "
                                 "ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role",
                                 3, params, "add member");
    if (!res) return SX_CTL_FAIL;
    PQclear(res);
    snprintf(details, sizeof(details), "{\"role\":\"%s\"}", role);
    (void)sx_ctl_audit(ctl, "member.add", a->pos[0], pid, details);
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "projectId");
    sx_json_int(&ctl->w, p);
    sx_json_key(&ctl->w, "userId");
    sx_json_int(&ctl->w, strtoll(uid, NULL, 10));
    sx_json_key(&ctl->w, "role");
    sx_json_strz(&ctl->w, role);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

static int member_remove(struct sx_ctl *ctl, struct args *a)
{
    char uid[24], pid[24];
    long long p;
    if (sx_ctl_project_id(ctl, a->project, &p) != SX_OK || user_id(ctl, a->pos[0], uid) != SX_OK) return SX_CTL_FAIL;
    snprintf(pid, sizeof(pid), "%lld", p);
    const char *params[2] = {pid, uid};
    PGresult *res = sx_ctl_query(ctl, "DELETE FROM project_members WHERE project_id = $1::int AND user_id = $2::int",
                                 2, params, "remove member");
    if (!res) return SX_CTL_FAIL;
    int removed = atoi(PQcmdTuples(res)) > 0;
    PQclear(res);
    if (removed) (void)sx_ctl_audit(ctl, "member.remove", a->pos[0], pid, NULL);
    sx_json_obj_open(&ctl->w);
    sx_json_key(&ctl->w, "removed");
    sx_json_bool(&ctl->w, removed);
    sx_json_obj_close(&ctl->w);
    return SX_CTL_OK;
}

static int member_list(struct sx_ctl *ctl, struct args *a)
{
    char pid[24];
    long long p;
    if (sx_ctl_project_id(ctl, a->project, &p) != SX_OK) return SX_CTL_FAIL;
    snprintf(pid, sizeof(pid), "%lld", p);
    const char *params[1] = {pid};
    PGresult *res = sx_ctl_query(ctl,
                                 "SELECT u.id, u.email, u.name, m.role FROM project_members m JOIN users u "
                                 "ON u.id = m.user_id WHERE m.project_id = $1::int ORDER BY u.id",
                                 1, params, "list members");
    if (!res) return SX_CTL_FAIL;
    static const struct sx_ctl_col cols[] = {{"userId", 'i'}, {"email", 's'}, {"name", 's'}, {"role", 's'}};
    return sx_ctl_rows(ctl, res, cols, 4);
}

int sx_ctl_member(struct sx_ctl *ctl, int argc, char **argv)
{
    static const char usage[] = "usage: member add --project P EMAIL ROLE | member remove --project P EMAIL | "
                                "member list --project P";
    struct args a;
    if (argc < 2 || parse_args(argc - 2, argv + 2, &a) != SX_OK || !a.project || a.name || a.expires || a.admin ||
        a.pw_stdin) {
        sx_ctl_err("%s", usage);
        return SX_CTL_USAGE;
    }
    if (strcmp(argv[1], "add") == 0 && a.npos == 2) return member_add(ctl, &a);
    if (strcmp(argv[1], "remove") == 0 && a.npos == 1) return member_remove(ctl, &a);
    if (strcmp(argv[1], "list") == 0 && a.npos == 0) return member_list(ctl, &a);
    sx_ctl_err("%s", usage);
    return SX_CTL_USAGE;
}
