/* test_cli.c: the shared daemon command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage_text(FILE *f)
{
    fputs("usage: test\n", f);
}

static void test_sets_extra_and_instance(void **state)
{
    (void)state;
    char path[] = "/tmp/sx-cli-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("ingest_threads 3\nredis_prefix fromfile\n", f);
    fclose(f);
    struct sx_config cfg;
    struct sx_cli cli = {.program = "t", .extra = {"--writers"}};
    char *argv[] = {"t", "--config", path, "--set", "ingest_threads=5", "--instance=7", "--writers", "4", NULL};
    assert_int_equal(sx_cli_parse(&cli, 8, argv, &cfg, usage_text), -1);
    assert_int_equal(cfg.ingest_threads, 5); /* --set wins over the file */
    assert_string_equal(cfg.redis_prefix, "fromfile");
    assert_string_equal(cli.instance, "7");
    assert_string_equal(cli.extra_val[0], "4");
    unlink(path);
}

static void test_errors_and_help(void **state)
{
    (void)state;
    struct sx_config cfg;
    struct sx_cli a = {.program = "t"};
    char *bad[] = {"t", "--nope", NULL};
    assert_int_equal(sx_cli_parse(&a, 2, bad, &cfg, usage_text), 2);
    struct sx_cli b = {.program = "t"};
    char *missing[] = {"t", "--config", NULL};
    assert_int_equal(sx_cli_parse(&b, 2, missing, &cfg, usage_text), 2);
    struct sx_cli c = {.program = "t"};
    char *noexist[] = {"t", "--config", "/nonexistent/sextant.conf", NULL};
    assert_int_equal(sx_cli_parse(&c, 3, noexist, &cfg, usage_text), 2);
    struct sx_cli d = {.program = "t"};
    char *range[] = {"t", "--config", "/dev/null", "--set", "retry_after_seconds=9", NULL};
    assert_int_equal(sx_cli_parse(&d, 5, range, &cfg, usage_text), 2);
    struct sx_cli e = {.program = "t"};
    char *noeq[] = {"t", "--config", "/dev/null", "--set", "log_level", NULL};
    assert_int_equal(sx_cli_parse(&e, 5, noeq, &cfg, usage_text), 2);
    struct sx_cli h = {.program = "t"};
    char *help[] = {"t", "--help", NULL};
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = sx_cli_parse(&h, 2, help, &cfg, usage_text);
    fclose(stdout);
    stdout = saved;
    assert_int_equal(rc, 0);
}

/* Each daemon takes its own <program>_pg_conninfo; the rest keep pg_conninfo. */
static void test_pg_conninfo_per_program(void **state)
{
    (void)state;
    struct sx_config cfg;
    struct sx_cli api = {.program = "sextant-api"};
    char *argv[] = {"sextant-api", "--config", "/dev/null", "--set", "pg_conninfo=dbname=sx user=owner",
                    "--set", "api_pg_conninfo=dbname=sx user=sextant_api", NULL};
    assert_int_equal(sx_cli_parse(&api, 7, argv, &cfg, usage_text), -1);
    assert_string_equal(cfg.pg_conninfo, "dbname=sx user=sextant_api");

    struct sx_cli persist = {.program = "sextant-persist"}; /* its own setting empty: pg_conninfo */
    assert_int_equal(sx_cli_parse(&persist, 7, argv, &cfg, usage_text), -1);
    assert_string_equal(cfg.pg_conninfo, "dbname=sx user=owner");

    struct sx_cli other = {.program = "sextant-sse"}; /* no such setting: pg_conninfo */
    assert_int_equal(sx_cli_parse(&other, 7, argv, &cfg, usage_text), -1);
    assert_string_equal(cfg.pg_conninfo, "dbname=sx user=owner");

    /* URIs are connection strings too. */
    char err[256];
    sx_config_defaults(&cfg);
    assert_int_equal(sx_config_set(&cfg, "rollup_pg_conninfo", "postgresql://sextant_rollup@/sextant?host=/run/pg",
                                   err, sizeof(err)), SX_OK);
    assert_int_equal(sx_config_select_pg(&cfg, "rollup"), 1);
    assert_string_equal(cfg.pg_conninfo, "postgresql://sextant_rollup@/sextant?host=/run/pg");
    assert_int_equal(sx_config_select_pg(&cfg, "ingest"), 0);
}

/* A connection string libpq cannot parse fails when the config is read. */
static void test_pg_conninfo_rejected(void **state)
{
    (void)state;
    struct sx_config cfg;
    char err[256];
    sx_config_defaults(&cfg);
    assert_int_equal(sx_config_set(&cfg, "persist_pg_conninfo", "user sextant_persist", err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, "persist_pg_conninfo: not a libpq connection string"));
    assert_null(strchr(err, '\n'));
    assert_int_equal(sx_config_set(&cfg, "pg_conninfo", "dbname='unterminated", err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_config_set(&cfg, "api_pg_conninfo", "bogus_keyword=1", err, sizeof(err)), SX_ERR);
    assert_string_equal(cfg.api_pg_conninfo, ""); /* unchanged */
    assert_int_equal(sx_config_set(&cfg, "api_pg_conninfo", "", err, sizeof(err)), SX_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_extra_and_instance),
        cmocka_unit_test(test_errors_and_help),
        cmocka_unit_test(test_pg_conninfo_per_program),
        cmocka_unit_test(test_pg_conninfo_rejected),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
