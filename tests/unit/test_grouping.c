/* test_grouping.c: error grouping v1 (lib/grouping.c): message normalization table, frame keys,
 * which errors share a fingerprint and which do not, title, culprit and message splitting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grouping.h"

static void test_normalize(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } c[] = {
        {"User 123 not found", "User <num> not found"},
        {"Order -5 has 3.14 items, 1e10 max", "Order <num> has <num> items, <num> max"},
        {"range 10-20, x=-5 (-3) v1.2.3 user42 utf8", "range <num>-<num>, x=<num> (<num>) v1.2.3 user42 utf8"},
        {"timeout after 5000ms", "timeout after <num>ms"},
        {"ptr 0xdeadBEEF, commit 3f9a2c1b9e8d7f60, word deadbeef", "ptr <hex>, commit <hex>, word deadbeef"},
        {"request 123e4567-e89b-12d3-a456-426614174000 failed", "request <uuid> failed"},
        {"can't find 'abc' or \"x y\" or `z`", "can't find <str> or <str> or <str>"},
        {"It's O'Brien's 'id'", "It's O'Brien's <str>"},
        {"Cannot read properties of undefined (reading 'id')", "Cannot read properties of undefined (reading <str>)"},
        {"mail bob.smith+tag@example.co.uk now", "mail <email> now"},
        {"GET https://api.example.com/v1/users/42?x=1. failed", "GET <url>. failed"},
        {"open /var/lib/app/data.db: no such file", "open <path>: no such file"},
        {"GET /users/42 failed", "GET <path> failed"},
        {"./rel/path and ~/x and ../up/x.py", "<path> and <path> and <path>"},
        {"C:\\Users\\bob\\file.txt missing", "<path> missing"},
        {"share \\\\fs01\\data\\x.csv gone", "share <path> gone"},
        {"connect 10.0.0.12:5432 refused", "connect <ip> refused"},
        {"[2001:db8::1] and ::1 and fe80::1ff:fe23:4567:890a", "[<ip>] and <ip> and <ip>"},
        {"at 2024-01-05T10:00:00.123Z or 2024-01-05 10:00 or 2024-01-05", "at <date> or <date> or <date>"},
        {"took until 10:22:33.5 at 23:59:59+02:00", "took until <date> at <date>"},
        {"Foo::Bar and a/b and 1/2", "Foo::Bar and a/b and <num>/<num>"},
        {"ünïcödé 42 ☃ 7", "ünïcödé <num> ☃ <num>"},
        {"", ""},
    };
    char out[2048], again[2048];
    for (size_t i = 0; i < SX_ARRAY_LEN(c); i++) {
        size_t n = sx_grouping_normalize_message(c[i].in, strlen(c[i].in), out, sizeof(out));
        if (strcmp(out, c[i].want) != 0 || n != strlen(out)) {
            print_error("input %s\nwant  %s\ngot   %s\n", c[i].in, c[i].want, out);
            fail();
        }
        /* Idempotent: normalizing the result changes nothing. */
        sx_grouping_normalize_message(out, n, again, sizeof(again));
        assert_string_equal(again, out);
    }
}

static void test_normalize_bounds(void **state)
{
    (void)state;
    char out[16];
    /* A token that does not fit ends the output; UTF-8 is never split. */
    size_t n = sx_grouping_normalize_message("id 1 and 2 and 3", 16, out, 12);
    assert_string_equal(out, "id <num> "); /* "and" did not fit whole */
    assert_int_equal(n, 9);
    n = sx_grouping_normalize_message("aé", 3, out, 3);
    assert_string_equal(out, "a");
    n = sx_grouping_normalize_message("x", 1, out, 1);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    /* At most SX_GROUPING_MSG_MAX bytes whatever the input. */
    size_t big = 100000;
    char *in = malloc(big), *o = malloc(big);
    assert_non_null(in);
    assert_non_null(o);
    for (size_t i = 0; i < big; i++) in[i] = (i % 2) ? ' ' : '7';
    n = sx_grouping_normalize_message(in, big, o, big);
    assert_true(n <= SX_GROUPING_MSG_MAX);
    assert_int_equal(strlen(o), n);
    free(in);
    free(o);
}

static void test_frame_keys(void **state)
{
    (void)state;
    static const struct {
        enum sx_st_lang lang;
        const char *function, *module, *file;
        const char *mod, *fn;
    } c[] = {
        {SX_ST_JS, "async loadOrder", NULL, "/app/src/routes/orders.js", "routes/orders.js", "loadOrder"},
        {SX_ST_JS, "new OrderView", NULL, "/srv/v2/src/views/order.js", "views/order.js", "OrderView"},
        {SX_ST_JS, "Layer.handle [as handle_request]", NULL, "/a/b/layer.js", "b/layer.js", "Layer.handle"},
        {SX_ST_JS, "promise callback*setup/<", NULL, "https://cdn.example.com/static/js/main.3f9a2c1b.js?v=2",
         "js/main.js", "setup"},
        {SX_ST_JS, "render", NULL, "https://example.com/assets/index-DiwrgTda.js", "assets/index.js", "render"},
        {SX_ST_JS, "render", NULL, "https://example.com/assets/react-dom.production.min.js", "assets/react-dom.production.min.js",
         "render"},
        {SX_ST_PYTHON, "get_order", NULL, "/app/shop/views.py", "shop/views.py", "get_order"},
        {SX_ST_JAVA, "lambda$ship$0", "com.acme.OrderService", "OrderService.java", "com.acme.OrderService", "lambda$ship"},
        {SX_ST_JAVA, "ship", "com.acme.OrderService$$SpringCGLIB$$0", NULL, "com.acme.OrderService", "ship"},
        {SX_ST_JAVA, "invokeSuspend", "com.acme.CartService$checkout$1", NULL, "com.acme.CartService$checkout$",
         "invokeSuspend"},
        {SX_ST_JAVA, "run", "com.acme.Jobs$12", NULL, "com.acme.Jobs$", "run"},
        {SX_ST_GO, "(*Server).handleOrder.func1.2", "github.com/acme/api", NULL, "github.com/acme/api",
         "(*Server).handleOrder"},
        {SX_ST_GO, "main.gowrap1", "main", NULL, "main", "main"},
        {SX_ST_GO, "Map[...]", "github.com/acme/coll", NULL, "github.com/acme/coll", "Map"},
        {SX_ST_DOTNET, "MoveNext", "Acme.Shop.OrderService.<ShipAsync>d__5", NULL, "Acme.Shop.OrderService", "ShipAsync"},
        {SX_ST_DOTNET, "MoveNext", "Acme.Shop.OrderService+<ShipAsync>d__5", NULL, "Acme.Shop.OrderService", "ShipAsync"},
        {SX_ST_DOTNET, "<Ship>b__0_0", "Acme.Shop.OrderService.<>c", NULL, "Acme.Shop.OrderService", "Ship"},
        {SX_ST_DOTNET, "<Ship>g__Local|3_0", "Acme.Shop.OrderService", NULL, "Acme.Shop.OrderService", "Ship"},
        {SX_ST_DOTNET, "<Ship>b__1", "Acme.Shop.OrderService+<>c__DisplayClass5_0", NULL, "Acme.Shop.OrderService", "Ship"},
        {SX_ST_RUBY, "block (2 levels) in call", NULL, "/app/app/services/ship.rb", "services/ship.rb", "call"},
        {SX_ST_RUBY, "block in ShippingService#call", NULL, "/app/app/services/ship.rb", "services/ship.rb", "call"},
        {SX_ST_RUBY, "rescue in Order.find!", NULL, "/app/app/models/order.rb", "models/order.rb", "find!"},
        {SX_ST_RUBY, "_app_views_orders_show_html_erb___1234567_89012", NULL, "/app/app/views/orders/show.html.erb",
         "orders/show.html.erb", "_app_views_orders_show_html_erb"},
        {SX_ST_RUBY, "<main>", NULL, "/app/bin/run.rb", "bin/run.rb", "<main>"},
    };
    char mod[SX_GROUPING_KEY_MAX + 1], fn[SX_GROUPING_KEY_MAX + 1];
    for (size_t i = 0; i < SX_ARRAY_LEN(c); i++) {
        struct sx_st_frame f = {c[i].function, c[i].module, c[i].file, 1, 1, 1};
        assert_true(sx_grouping_frame_key(c[i].lang, &f, mod, fn));
        if (strcmp(mod, c[i].mod) != 0 || strcmp(fn, c[i].fn) != 0) {
            print_error("%s / %s: got [%s] [%s], want [%s] [%s]\n", c[i].function, c[i].module ? c[i].module : c[i].file,
                        mod, fn, c[i].mod, c[i].fn);
            fail();
        }
    }
    struct sx_st_frame comp = {"<listcomp>", NULL, "/app/x.py", 3, 0, 1};
    assert_false(sx_grouping_frame_key(SX_ST_PYTHON, &comp, mod, fn));
}

/* Parses text and fingerprints it with the given type and message. */
static struct sx_grouping fp(const char *fingerprint, const char *type, const char *msg, const char *text,
                             const struct sx_st_rules *rules)
{
    struct sx_arena *a = sx_arena_create(64 * 1024, 4 << 20);
    struct sx_st_trace t;
    struct sx_grouping g;
    assert_int_equal(sx_st_parse(text, strlen(text), SX_ST_UNKNOWN, rules, a, &t), SX_OK);
    assert_int_equal(sx_grouping_fingerprint(fingerprint, type, msg, &t, &g), SX_OK);
    assert_int_equal(strlen(g.hex), 32);
    sx_arena_destroy(a);
    return g;
}

static int same(struct sx_grouping a, struct sx_grouping b)
{
    return memcmp(a.hash, b.hash, sizeof(a.hash)) == 0;
}

#define STACK(msg, fn, line)                                                                                           \
    "Error: " msg "\n"                                                                                                 \
    "    at " fn " (/app/src/services/users.js:" line ")\n"                                                            \
    "    at async handler (/app/src/routes/users.js:18:5)\n"                                                           \
    "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)\n"

#define LIB_ONLY(msg)                                                                                                  \
    "Error: " msg "\n"                                                                                                 \
    "    at Query.run (/app/node_modules/pg/lib/query.js:10:3)\n"                                                      \
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"

static void test_fingerprint_rules(void **state)
{
    (void)state;
    /* Same place, other ids in the message: one issue. */
    struct sx_grouping a = fp(NULL, "Error", "User 123 not found", STACK("User 123 not found", "getUser", "42:17"), NULL);
    struct sx_grouping b = fp(NULL, "Error", "User 456 not found", STACK("User 456 not found", "getUser", "42:17"), NULL);
    assert_int_equal(a.rule, SX_GROUPING_RULE_IN_APP_FRAMES);
    assert_string_equal(sx_grouping_rule_name(a.rule), "in_app_frames");
    assert_true(same(a, b));
    /* Code moved: other lines and columns, same issue. */
    assert_true(same(a, fp(NULL, "Error", "User 1 not found", STACK("User 1 not found", "getUser", "57:3"), NULL)));
    /* Same type thrown from another function: another issue. */
    assert_false(same(a, fp(NULL, "Error", "User 123 not found", STACK("User 123 not found", "getAccount", "42:17"), NULL)));
    /* Another type from the same place: another issue. */
    assert_false(same(a, fp(NULL, "TypeError", "User 123 not found", STACK("x", "getUser", "42:17"), NULL)));
    /* No type given: the parsed one, and a parsed "" is the language's default ("Error"). */
    assert_true(same(a, fp(NULL, NULL, NULL, STACK("User 9 not found", "getUser", "1:1"), NULL)));
    assert_true(same(a, fp(NULL, "", NULL, "    at getUser (/app/src/services/users.js:1:1)\n"
                                          "    at async handler (/app/src/routes/users.js:18:5)\n", NULL)));

    /* Only library frames: the message decides, with its variable parts gone. */
    struct sx_grouping u1 = fp(NULL, "Error", "User 123 not found", LIB_ONLY("User 123 not found"), NULL);
    struct sx_grouping u2 = fp(NULL, "Error", "User 456 not found", LIB_ONLY("User 456 not found"), NULL);
    struct sx_grouping o1 = fp(NULL, "Error", "Order 1 not found", LIB_ONLY("Order 1 not found"), NULL);
    assert_int_equal(u1.rule, SX_GROUPING_RULE_MESSAGE);
    assert_true(same(u1, u2));
    assert_false(same(u1, o1));
    /* The message from the stack when the caller has none. */
    assert_true(same(u1, fp(NULL, NULL, NULL, LIB_ONLY("User 789 not found"), NULL)));
    /* No trace at all. */
    struct sx_grouping n1, n2;
    assert_int_equal(sx_grouping_fingerprint(NULL, "Error", "User 5 not found", NULL, &n1), SX_OK);
    assert_int_equal(sx_grouping_fingerprint(NULL, NULL, "User 6 not found", NULL, &n2), SX_OK);
    assert_true(same(n1, n2));
    assert_true(same(n1, u1));

    /* An explicit fingerprint wins over everything. */
    struct sx_grouping f1 = fp("checkout-timeout", "Error", "a", STACK("a", "getUser", "1:1"), NULL);
    struct sx_grouping f2 = fp("checkout-timeout", "TypeError", "b", LIB_ONLY("b"), NULL);
    assert_int_equal(f1.rule, SX_GROUPING_RULE_FINGERPRINT);
    assert_true(same(f1, f2));
    assert_false(same(f1, fp("other", "Error", "a", STACK("a", "getUser", "1:1"), NULL)));
    assert_true(same(a, fp("  ", "Error", "a", STACK("a", "getUser", "1:1"), NULL))); /* blank: absent */

    /* A project include pattern makes a package in-app, and so changes the grouping. */
    const char *text = "Error: card declined\n"
                       "    at charge (/app/node_modules/@acme/billing/index.js:10:3)\n"
                       "    at Query.run (/app/node_modules/pg/lib/query.js:10:3)\n";
    const char *const inc[] = {"*node_modules/@acme/"};
    struct sx_st_rules rules = {inc, 1, NULL, 0};
    struct sx_grouping d = fp(NULL, NULL, NULL, text, NULL), p = fp(NULL, NULL, NULL, text, &rules);
    assert_int_equal(d.rule, SX_GROUPING_RULE_MESSAGE);
    assert_int_equal(p.rule, SX_GROUPING_RULE_IN_APP_FRAMES);
    assert_false(same(d, p));
}

static char *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/data/stacks/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_fingerprint_languages(void **state)
{
    (void)state;
    /* Ruby 3.3 and 3.4 print the same error differently: still one issue. */
    char *r33 = load("ruby_rails.txt"), *r34 = load("ruby34.txt");
    assert_true(same(fp(NULL, NULL, NULL, r33, NULL), fp(NULL, NULL, NULL, r34, NULL)));
    free(r33);
    free(r34);
    /* Deeper recursion of the same function: one issue. */
    assert_true(same(fp(NULL, NULL, NULL,
                        "RangeError: x\n    at walk (/app/t.js:3:1)\n    at walk (/app/t.js:3:1)\n    at main (/app/m.js:1:1)\n",
                        NULL),
                     fp(NULL, NULL, NULL, "RangeError: x\n    at walk (/app/t.js:3:1)\n    at main (/app/m.js:1:1)\n", NULL)));
    /* Go: a closure renumbered by the compiler, a new line: one issue. */
    char *go = load("go_panic.txt");
    struct sx_grouping g1 = fp(NULL, NULL, NULL, go, NULL);
    char *p = strstr(go, "handleOrder.func1(...)");
    assert_non_null(p);
    memcpy(p, "handleOrder.func2(...)", 22);
    p = strstr(go, "orders.go:88");
    memcpy(p, "orders.go:93", 12);
    assert_true(same(g1, fp(NULL, NULL, NULL, go, NULL)));
    free(go);
    /* Java: the root cause's app frames group a wrapper thrown from framework code;
     * another message changes nothing. */
    char *java = load("java_spring.txt");
    struct sx_grouping j1 = fp(NULL, NULL, NULL, java, NULL);
    assert_int_equal(j1.rule, SX_GROUPING_RULE_IN_APP_FRAMES);
    p = strstr(java, "Order 42 already");
    memcpy(p, "Order 77 already", 16);
    assert_true(same(j1, fp(NULL, NULL, NULL, java, NULL)));
    free(java);
}

static void test_title(void **state)
{
    (void)state;
    char out[64];
    sx_grouping_title("TypeError", "Cannot read properties of undefined (reading 'id')", out, sizeof(out));
    assert_string_equal(out, "TypeError: Cannot read properties of undefined (reading 'id')");
    sx_grouping_title("TypeError", "Cannot read properties of undefined", out, 20);
    assert_string_equal(out, "TypeError: Cannot r");
    sx_grouping_title("ValueError", "  first line\nsecond line", out, sizeof(out));
    assert_string_equal(out, "ValueError: first line");
    sx_grouping_title("", "just a message", out, sizeof(out));
    assert_string_equal(out, "just a message");
    sx_grouping_title("KeyboardInterrupt", NULL, out, sizeof(out));
    assert_string_equal(out, "KeyboardInterrupt");
    sx_grouping_title(NULL, "", out, sizeof(out));
    assert_string_equal(out, "Error");
    /* UTF-8 never split */
    size_t n = sx_grouping_title("E", "ünï", out, 6);
    assert_string_equal(out, "E: ü");
    assert_int_equal(n, 5);
    n = sx_grouping_title("E", "x", out, 1);
    assert_int_equal(n, 0);
}

static void test_culprit_and_split(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(64 * 1024, 4 << 20);
    char *text = load("dotnet.txt");
    struct sx_st_trace t;
    assert_int_equal(sx_st_parse(text, strlen(text), SX_ST_DOTNET, NULL, a, &t), SX_OK);
    char out[256];
    sx_grouping_culprit(&t, out, sizeof(out));
    assert_string_equal(out, "Acme.Shop.Services.InventoryService in Reserve");
    /* cut at the room given */
    assert_int_equal(sx_grouping_culprit(&t, out, 10), 9);
    assert_string_equal(out, "Acme.Shop");
    assert_int_equal(sx_grouping_culprit(NULL, out, sizeof(out)), 0);
    free(text);

    /* The message a stack repeats, for errors without exception.type/message. */
    const char *type, *msg;
    const char *v8 = "TypeError: Cannot read properties of undefined (reading 'id')\n    at f (/app/a.js:1:2)\n";
    assert_int_equal(sx_grouping_split_message(v8, strlen(v8), SX_ST_JS, a, &type, &msg), SX_OK);
    assert_string_equal(type, "TypeError");
    assert_string_equal(msg, "Cannot read properties of undefined (reading 'id')");
    text = load("python.txt");
    assert_int_equal(sx_grouping_split_message(text, strlen(text), SX_ST_UNKNOWN, a, &type, &msg), SX_OK);
    assert_string_equal(type, "shop.errors.OrderNotFound");
    assert_string_equal(msg, "order 8812 not found");
    free(text);
    text = load("kotlin.txt");
    assert_int_equal(sx_grouping_split_message(text, strlen(text), SX_ST_UNKNOWN, a, &type, &msg), SX_OK);
    assert_string_equal(type, "java.lang.IllegalArgumentException");
    assert_string_equal(msg, "Invalid quantity: -3");
    free(text);
    assert_int_equal(sx_grouping_split_message("no stack here", 13, SX_ST_UNKNOWN, a, &type, &msg), SX_OK);
    assert_string_equal(type, "");
    assert_string_equal(msg, "");
    assert_string_equal(sx_grouping_default_type(SX_ST_PYTHON), "Exception");
    assert_string_equal(SX_GROUPING_VERSION, "v1");
    sx_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_normalize_bounds),
        cmocka_unit_test(test_frame_keys),
        cmocka_unit_test(test_fingerprint_rules),
        cmocka_unit_test(test_fingerprint_languages),
        cmocka_unit_test(test_title),
        cmocka_unit_test(test_culprit_and_split),
    };
    return cmocka_run_group_tests_name("grouping", tests, NULL, NULL);
}
