/* test_projset.c: the shared project settings table and its checks (lib/projset.c), which
 * `sextantctl project set` and PUT /api/v1/projects/{p} both use, and the
 * projects_create_admin_only setting that guards POST /api/v1/projects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "projset.h"

static const struct sx_projset *find(const char *column)
{
    for (size_t i = 0; i < SX_PROJSET_COUNT; i++)
        if (strcmp(sx_projset_fields[i].column, column) == 0) return &sx_projset_fields[i];
    fail_msg("no setting %s", column);
    return NULL;
}

static int check(const char *column, const char *v, const char **out)
{
    char err[400];
    return sx_projset_check(find(column), v, out, err, sizeof(err));
}

static void test_values(void **state)
{
    (void)state;
    const char *out;
    assert_int_equal(check("sampling_rate", "0.25", &out), SX_OK);
    assert_string_equal(out, "0.25");
    assert_int_equal(check("sampling_rate", "1.5", &out), SX_ERR);
    assert_int_equal(check("sampling_rate", "x", &out), SX_ERR);
    assert_int_equal(check("rate_spans_per_s", "none", &out), SX_OK);
    assert_null(out);
    assert_int_equal(check("rate_spans_per_s", "0", &out), SX_ERR);
    assert_int_equal(check("rate_spans_per_s", "2147483648", &out), SX_ERR);
    assert_int_equal(check("quota_logs_daily", "0", &out), SX_OK);
    assert_int_equal(check("quota_logs_daily", "-1", &out), SX_ERR);
    assert_int_equal(check("slow_trace_ms", "none", &out), SX_ERR);
    assert_int_equal(check("retention_traces_days", "3650", &out), SX_OK);
    assert_int_equal(check("retention_traces_days", "3651", &out), SX_ERR);
    assert_int_equal(check("retention_logs_days", "1.5", &out), SX_ERR);
    assert_int_equal(check("status", "suspended", &out), SX_OK);
    assert_int_equal(check("status", "paused", &out), SX_ERR);
    assert_int_equal(check("redact_secrets", "off", &out), SX_OK);
    assert_string_equal(out, "false");
    assert_int_equal(check("attribute_rules", "[]", &out), SX_OK);
    assert_int_equal(check("attribute_rules", "[{\"action\":\"explode\"}]", &out), SX_ERR);
}

static void test_api_names_unique(void **state)
{
    (void)state;
    for (size_t i = 0; i < SX_PROJSET_COUNT; i++)
        for (size_t j = i + 1; j < SX_PROJSET_COUNT; j++) {
            const struct sx_projset *a = &sx_projset_fields[i], *b = &sx_projset_fields[j];
            int same_group = (!a->group && !b->group) || (a->group && b->group && strcmp(a->group, b->group) == 0);
            assert_false(same_group && strcmp(a->key, b->key) == 0);
            assert_string_not_equal(a->column, b->column);
        }
}

static void test_create_admin_only_default(void **state)
{
    (void)state;
    struct sx_config c;
    sx_config_defaults(&c);
    assert_int_equal(c.projects_create_admin_only, 0);
    char err[256];
    assert_int_equal(sx_config_set(&c, "projects_create_admin_only", "2", err, sizeof(err)), SX_ERR);
    assert_int_equal(sx_config_set(&c, "projects_create_admin_only", "1", err, sizeof(err)), SX_OK);
    assert_int_equal(c.projects_create_admin_only, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_api_names_unique),
        cmocka_unit_test(test_create_admin_only_default),
    };
    return cmocka_run_group_tests_name("projset", tests, NULL, NULL);
}
