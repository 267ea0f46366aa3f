/* test_foundation.c: arena, bounded buffer, JSON writer and config table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "config.h"
#include "json.h"

static void test_arena_cap_and_reset(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(1024, 8192);
    void *p = sx_arena_alloc(a, 100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_null(sx_arena_alloc(a, 100000)); /* over the cap fails softly */
    assert_true(sx_arena_failed(a));
    sx_arena_reset(a);
    assert_false(sx_arena_failed(a));
    assert_int_equal(sx_arena_used(a), 0);
    char *s = sx_arena_strndup(a, "hello", 3);
    assert_string_equal(s, "hel");
    /* growing the last allocation keeps its contents */
    char *g = sx_arena_realloc(a, s, 4, 200);
    assert_non_null(g);
    assert_string_equal(g, "hel");
    sx_arena_destroy(a);
    sx_arena_destroy(NULL);
}

static void test_buf_max(void **state)
{
    (void)state;
    struct sx_buf b;
    sx_buf_init(&b, 10);
    assert_int_equal(sx_buf_puts(&b, "12345"), SX_OK);
    assert_int_equal(sx_buf_printf(&b, "%d", 6789), SX_OK);
    assert_string_equal(b.data, "123456789");
    assert_int_equal(sx_buf_puts(&b, "ab"), SX_ERR); /* would pass max */
    assert_string_equal(b.data, "123456789");
    assert_int_equal(sx_buf_putc(&b, 'x'), SX_OK);
    assert_int_equal(b.len, 10);
    sx_buf_term(&b);
}

static void test_json_writer(void **state)
{
    (void)state;
    struct sx_buf b;
    struct sx_json w;
    sx_buf_init(&b, 1 << 16);
    sx_json_init(&w, &b);
    sx_json_obj_open(&w);
    sx_json_key(&w, "s");
    sx_json_str(&w, "a\"b\\c\n\x01\xff\0z", 10);
    sx_json_key(&w, "n");
    sx_json_int(&w, -5);
    sx_json_key(&w, "ns");
    sx_json_int_str(&w, 1767225600000000000LL);
    sx_json_key(&w, "d");
    sx_json_double(&w, 0.1);
    sx_json_key(&w, "nan");
    sx_json_double(&w, NAN);
    sx_json_key(&w, "a");
    sx_json_arr_open(&w);
    sx_json_bool(&w, true);
    sx_json_null(&w);
    static const uint8_t id[] = {0xde, 0xad, 0x01};
    sx_json_hex(&w, id, sizeof(id));
    sx_json_arr_close(&w);
    sx_json_key(&w, "u");
    sx_json_strz(&w, "Größe ✓");
    sx_json_obj_close(&w);
    assert_int_equal(w.err, 0);
    assert_string_equal(b.data, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\\ufffdz\",\"n\":-5,"
                                "\"ns\":\"1767225600000000000\",\"d\":0.1,\"nan\":null,"
                                "\"a\":[true,null,\"dead01\"],\"u\":\"Größe ✓\"}");
    sx_buf_term(&b);
}

static void test_config_table(void **state)
{
    (void)state;
    struct sx_config c;
    char err[256];
    char path[] = "/tmp/sx-conf-XXXXXX";
    sx_config_defaults(&c);
    assert_int_equal(c.ingest_threads, 8);
    assert_int_equal(c.max_body_bytes, 8 << 20);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\nmax_body_bytes 512k\nredis_socket \"/tmp/r.sock\"\n\ningest_threads = 3\n", f);
    fclose(f);
    assert_int_equal(sx_config_load(&c, path, 1, err, sizeof(err)), SX_OK);
    assert_int_equal(c.max_body_bytes, 512 << 10);
    assert_string_equal(c.redis_socket, "/tmp/r.sock");
    assert_int_equal(c.ingest_threads, 3);
    f = fopen(path, "w");
    fputs("ingest_threads 3\nretry_after_seconds 9\n", f);
    fclose(f);
    assert_int_equal(sx_config_load(&c, path, 1, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, ":2: retry_after_seconds"));
    f = fopen(path, "w");
    fputs("no_such_thing 1\n", f);
    fclose(f);
    assert_int_equal(sx_config_load(&c, path, 1, err, sizeof(err)), SX_ERR);
    assert_non_null(strstr(err, ":1: unknown setting"));
    unlink(path);
    assert_int_equal(sx_config_load(&c, path, 0, err, sizeof(err)), SX_OK);
    assert_int_equal(sx_config_load(&c, path, 1, err, sizeof(err)), SX_ERR);
}

/* README.md documents every setting (tests run from the repo root). */
static void test_readme_lists_every_setting(void **state)
{
    (void)state;
    FILE *f = fopen("README.md", "r");
    assert_non_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    size_t i = 0;
    for (const char *name; (name = sx_config_name(i)); i++) {
        char cell[96];
        snprintf(cell, sizeof(cell), "| `%s` |", name);
        if (!strstr(text, cell)) fail_msg("README.md has no row for setting %s", name);
    }
    assert_true(i > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_cap_and_reset),
        cmocka_unit_test(test_buf_max),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_config_table),
        cmocka_unit_test(test_readme_lists_every_setting),
    };
    return cmocka_run_group_tests_name("foundation", tests, NULL, NULL);
}
