/* test_stacktrace.c: stack trace parsing (lib/stacktrace.c) on the real-looking traces in
 * tests/data/stacks: language, type, message, frames (oldest first), in-app flags, causes,
 * and the title and culprit grouping derives from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grouping.h"
#include "stacktrace.h"

#define DATA "tests/data/stacks/"

struct fexp {
    const char *function, *file;
    int line, column;
};

struct tcase {
    const char *file;
    enum sx_st_lang lang;
    const char *type, *message;
    size_t n;
    struct fexp first, last; /* frames[0] (oldest) and frames[n - 1] (crashing) */
    const char *in_app;      /* 'A' in-app, 'L' library, oldest first */
    size_t ncauses;
    const char *title, *culprit;
};

static const struct tcase cases[] = {
    {"node.txt", SX_ST_JS, "TypeError", "Cannot read properties of undefined (reading 'id')", 9,
     {"process.processTicksAndRejections", "node:internal/process/task_queues", 95, 5},
     {"getUser", "/app/src/services/users.js", 42, 17}, "LLLAALLAA", 0,
     "TypeError: Cannot read properties of undefined (reading 'id')", "services/users.js in getUser"},
    {"node_multiline.txt", SX_ST_JS, "Error", "Request failed with status 502\nupstream: billing-api\nattempt 3 of 3", 6,
     {NULL, "/srv/shop/lib/jobs.js", 40, 3}, {"fetchInvoice", "/srv/shop/lib/billing.js", 88, 11}, "ALLLAA", 0,
     "Error: Request failed with status 502", "lib/billing.js in fetchInvoice"},
    {"chrome.txt", SX_ST_JS, "TypeError", "Cannot read properties of null (reading 'addEventListener')", 4,
     {NULL, "webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js", 3994, 14},
     {"initCart", "https://shop.example.com/static/js/main.3f9a2c1b.js", 2, 18342}, "LAAA", 0,
     "TypeError: Cannot read properties of null (reading 'addEventListener')", "js/main.js in initCart"},
    {"firefox.txt", SX_ST_JS, "", "", 5, {"map", NULL, 0, 0},
     {"initCart", "https://shop.example.com/static/js/main.3f9a2c1b.js", 2, 18342}, "LAAAA", 0, "Error",
     "js/main.js in initCart"},
    {"python.txt", SX_ST_PYTHON, "shop.errors.OrderNotFound", "order 8812 not found", 3,
     {"inner", "/usr/local/lib/python3.11/site-packages/django/core/handlers/exception.py", 55, 0},
     {"fetch_order", "/app/shop/views.py", 17, 0}, "LAA", 1, "shop.errors.OrderNotFound: order 8812 not found",
     "shop/views.py in fetch_order"},
    {"java_spring.txt", SX_ST_JAVA, "org.springframework.web.util.NestedServletException",
     "Request processing failed; nested exception is java.lang.IllegalStateException: Order 42 already shipped", 5,
     {"run", "Thread.java", 833, 0}, {"processRequest", "FrameworkServlet.java", 1014, 0}, "LLLLL", 1,
     "org.springframework.web.util.NestedServletException: Request processing failed; nested exception is "
     "java.lang.IllegalStateException: Order 42 already shipped",
     "com.acme.shop.order.OrderService in ship"},
    {"kotlin.txt", SX_ST_JAVA, "java.lang.IllegalArgumentException", "Invalid quantity: -3", 5,
     {"main", "Main.kt", 9, 0}, {"addItem", "Cart.kt", 14, 0}, "ALLAA", 0,
     "java.lang.IllegalArgumentException: Invalid quantity: -3", "com.acme.cart.CartKt in addItem"},
    {"go_panic.txt", SX_ST_GO, "panic", "runtime error: index out of range [5] with length 3", 6,
     {"(*Server).Serve", "/usr/local/go/src/net/http/server.go", 3086, 0},
     {"(*Server).orderItems", "/app/internal/api/orders.go", 88, 0}, "LLLLAA", 0,
     "panic: runtime error: index out of range [5] with length 3",
     "github.com/acme/shop/internal/api in (*Server).orderItems"},
    {"ruby_rails.txt", SX_ST_RUBY, "Order::NotShippable", "Order 42 cannot ship: address missing", 7,
     {"send_action", "/usr/local/bundle/gems/actionpack-7.1.2/lib/action_controller/metal/basic_implicit_render.rb", 6, 0},
     {"ship!", "/app/app/models/order.rb", 27, 0}, "LAALLAA", 0,
     "Order::NotShippable: Order 42 cannot ship: address missing", "models/order.rb in ship!"},
    {"ruby34.txt", SX_ST_RUBY, "Order::NotShippable", "Order 42 cannot ship: address missing", 4,
     {"OrdersController#ship", "/app/app/controllers/orders_controller.rb", 33, 0},
     {"Order#ship!", "/app/app/models/order.rb", 27, 0}, "ALAA", 0,
     "Order::NotShippable: Order 42 cannot ship: address missing", "models/order.rb in ship!"},
    {"dotnet.txt", SX_ST_DOTNET, "System.InvalidOperationException", "Order 42 cannot be shipped", 5,
     {"Execute", NULL, 0, 0}, {"Reserve", "/src/Acme.Shop/Services/InventoryService.cs", 63, 0}, "LALAA", 1,
     "System.InvalidOperationException: Order 42 cannot be shipped", "Acme.Shop.Services.InventoryService in Reserve"},
    {"unknown.txt", SX_ST_UNKNOWN, "", "", 0, {NULL, NULL, 0, 0}, {NULL, NULL, 0, 0}, "", 0, "Error", ""},
};

static char *load(const char *name, size_t *n)
{
    char path[256];
    snprintf(path, sizeof(path), DATA "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s (run from the repository root)\n", path);
        fail();
    }
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *n = fread(buf, 1, (1 << 16) - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

static void str_eq(const char *what, const char *file, const char *got, const char *want)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
        print_error("%s: %s: got [%s], want [%s]\n", file, what, got ? got : "(null)", want ? want : "(null)");
        fail();
    }
}

static void frame_eq(const char *file, const struct sx_st_frame *f, const struct fexp *e)
{
    str_eq("function", file, f->function, e->function);
    str_eq("file", file, f->file, e->file);
    if (f->line != e->line || f->column != e->column) {
        print_error("%s: %s at %d:%d, want %d:%d\n", file, e->function, f->line, f->column, e->line, e->column);
        fail();
    }
}

static void test_cases(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(64 * 1024, 4 << 20);
    for (size_t i = 0; i < SX_ARRAY_LEN(cases); i++) {
        const struct tcase *c = &cases[i];
        size_t n;
        char *text = load(c->file, &n);
        struct sx_st_trace t;
        assert_int_equal(sx_st_parse(text, n, SX_ST_UNKNOWN, NULL, a, &t), SX_OK);
        if (t.lang != c->lang || t.n != c->n) {
            print_error("%s: lang %s n %zu, want %s n %zu\n", c->file, sx_st_lang_name(t.lang), t.n,
                        sx_st_lang_name(c->lang), c->n);
            fail();
        }
        str_eq("type", c->file, t.type, c->type);
        str_eq("message", c->file, t.message, c->message);
        if (c->n) {
            frame_eq(c->file, &t.frames[0], &c->first);
            frame_eq(c->file, &t.frames[t.n - 1], &c->last);
        }
        char flags[SX_ST_MAX_FRAMES + 1];
        for (size_t k = 0; k < t.n; k++) flags[k] = t.frames[k].in_app ? 'A' : 'L';
        flags[t.n] = '\0';
        str_eq("in-app flags", c->file, flags, c->in_app);
        assert_int_equal(t.ncauses, c->ncauses);
        char title[512], culprit[256];
        sx_grouping_title(t.type, t.message, title, sizeof(title));
        sx_grouping_culprit(&t, culprit, sizeof(culprit));
        str_eq("title", c->file, title, c->title);
        str_eq("culprit", c->file, culprit, c->culprit);
        /* The same text under its SDK's language hint parses the same. */
        struct sx_st_trace h;
        assert_int_equal(sx_st_parse(text, n, c->lang, NULL, a, &h), SX_OK);
        assert_int_equal(h.lang, t.lang);
        assert_int_equal(h.n, t.n);
        free(text);
        sx_arena_reset(a);
    }
    sx_arena_destroy(a);
}

static void test_causes(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(64 * 1024, 4 << 20);
    size_t n;
    struct sx_st_trace t;

    /* Java: Caused by with "... 48 more"; the Suppressed block's frames are nobody's. */
    char *text = load("java_spring.txt", &n);
    assert_int_equal(sx_st_parse(text, n, SX_ST_JAVA, NULL, a, &t), SX_OK);
    assert_string_equal(t.causes[0].type, "java.lang.IllegalStateException");
    assert_string_equal(t.causes[0].message, "Order 42 already shipped");
    assert_int_equal(t.causes[0].n, 7);
    assert_int_equal(t.causes[0].omitted, 48);
    assert_string_equal(t.causes[0].frames[6].function, "ship");
    assert_string_equal(t.causes[0].frames[6].module, "com.acme.shop.order.OrderService");
    assert_int_equal(t.causes[0].frames[6].line, 57);
    assert_true(t.causes[0].frames[6].in_app);
    assert_null(t.causes[0].frames[3].file); /* GeneratedMethodAccessor12(Unknown Source) */
    assert_string_equal(t.causes[0].frames[1].module, "java.lang.reflect.Method"); /* java.base/ dropped */
    assert_null(t.causes[0].frames[1].file);                                      /* Native Method */
    free(text);

    /* Python: the last block printed is the main exception, the first its cause. */
    text = load("python.txt", &n);
    assert_int_equal(sx_st_parse(text, n, SX_ST_UNKNOWN, NULL, a, &t), SX_OK);
    assert_string_equal(t.causes[0].type, "shop.models.Order.DoesNotExist");
    assert_string_equal(t.causes[0].message, "Order matching query does not exist.");
    assert_int_equal(t.causes[0].n, 3);
    assert_string_equal(t.causes[0].frames[0].function, "fetch_order");
    assert_string_equal(t.causes[0].frames[2].function, "get");
    free(text);

    /* .NET: the frames before "End of inner exception stack trace" are the inner one's. */
    text = load("dotnet.txt", &n);
    assert_int_equal(sx_st_parse(text, n, SX_ST_UNKNOWN, NULL, a, &t), SX_OK);
    assert_string_equal(t.causes[0].type, "System.Collections.Generic.KeyNotFoundException");
    assert_string_equal(t.causes[0].message, "The given key 'SKU-991' was not present in the dictionary.");
    assert_int_equal(t.causes[0].n, 2);
    assert_string_equal(t.causes[0].frames[1].module, "System.Collections.Generic.Dictionary`2");
    assert_string_equal(t.causes[0].frames[1].function, "get_Item");
    assert_false(t.causes[0].frames[1].in_app);
    assert_int_equal(t.causes[0].frames[0].line, 57);
    assert_string_equal(t.frames[3].module, "Acme.Shop.Services.OrderService.<ShipAsync>d__5");
    assert_string_equal(t.frames[3].function, "MoveNext");
    free(text);
    sx_arena_destroy(a);
}

static void parse_str(struct sx_arena *a, const char *s, enum sx_st_lang hint, struct sx_st_trace *t)
{
    assert_int_equal(sx_st_parse(s, strlen(s), hint, NULL, a, t), SX_OK);
}

static void test_small_formats(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(64 * 1024, 4 << 20);
    struct sx_st_trace t;

    /* Go runtime/debug.Stack(): no panic line, closures, created-by. */
    parse_str(a,
              "goroutine 7 [running]:\n"
              "runtime/debug.Stack()\n"
              "\t/usr/local/go/src/runtime/debug/stack.go:24 +0x5e\n"
              "main.worker.func1()\n"
              "\t/app/worker.go:31 +0x25\n"
              "created by main.worker in goroutine 1\n"
              "\t/app/worker.go:29 +0x6f\n",
              SX_ST_UNKNOWN, &t);
    assert_int_equal(t.lang, SX_ST_GO);
    assert_string_equal(t.type, "");
    assert_int_equal(t.n, 3);
    assert_string_equal(t.frames[0].function, "worker");
    assert_string_equal(t.frames[0].module, "main");
    assert_string_equal(t.frames[1].function, "worker.func1");
    assert_string_equal(t.frames[2].module, "runtime/debug");
    assert_false(t.frames[2].in_app);
    assert_true(t.frames[1].in_app);

    /* Go fatal error, and a recovered panic line. */
    parse_str(a, "panic: boom [recovered]\n\tpanic: again\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:9 +0x1\n",
              SX_ST_GO, &t);
    assert_string_equal(t.type, "panic");
    assert_string_equal(t.message, "boom");
    assert_int_equal(t.n, 1);
    parse_str(a, "fatal error: concurrent map writes\n\ngoroutine 5 [running]:\nmain.put(...)\n\t/app/m.go:3\n",
              SX_ST_UNKNOWN, &t);
    assert_string_equal(t.type, "fatal error");
    assert_string_equal(t.frames[0].file, "/app/m.go");

    /* Python without a message line type, multi-line message, frozen and <string> files. */
    parse_str(a,
              "Traceback (most recent call last):\n"
              "  File \"<frozen runpy>\", line 198, in _run_module_as_main\n"
              "  File \"/srv/app/cli.py\", line 12, in <module>\n"
              "    main()\n"
              "  File \"/srv/app/cli.py\", line 9, in main\n"
              "    raise ValueError(\"bad\\nthing\")\n"
              "ValueError: first line\n"
              "second line\n",
              SX_ST_UNKNOWN, &t);
    assert_int_equal(t.lang, SX_ST_PYTHON);
    assert_string_equal(t.type, "ValueError");
    assert_string_equal(t.message, "first line\nsecond line");
    assert_int_equal(t.n, 3);
    assert_false(t.frames[0].in_app);
    assert_string_equal(t.frames[2].function, "main");
    parse_str(a, "Traceback (most recent call last):\n  File \"/a/b.py\", line 1, in f\nKeyboardInterrupt\n", SX_ST_UNKNOWN,
              &t);
    assert_string_equal(t.type, "KeyboardInterrupt");
    assert_string_equal(t.message, "");

    /* Node: Error [CODE] header, old core module files. */
    parse_str(a,
              "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers after they are sent to the client\n"
              "    at ServerResponse.setHeader (_http_outgoing.js:470:11)\n"
              "    at sendJson (/app/lib/reply.js:5:7)\r\n",
              SX_ST_UNKNOWN, &t);
    assert_string_equal(t.type, "Error");
    assert_int_equal(t.n, 2);
    assert_false(t.frames[1].in_app);
    assert_string_equal(t.frames[0].file, "/app/lib/reply.js"); /* \r\n line ends */

    /* .NET: constructors, no file. */
    parse_str(a,
              "System.ArgumentNullException: Value cannot be null. (Parameter 'name')\n"
              "   at Acme.Shop.Customer..ctor(String name)\n"
              "   at Acme.Shop.Program.<Main>$(String[] args) in C:\\src\\Shop\\Program.cs:line 7\n",
              SX_ST_UNKNOWN, &t);
    assert_int_equal(t.lang, SX_ST_DOTNET);
    assert_string_equal(t.frames[1].function, ".ctor");
    assert_string_equal(t.frames[1].module, "Acme.Shop.Customer");
    assert_string_equal(t.frames[0].file, "C:\\src\\Shop\\Program.cs");
    assert_int_equal(t.frames[0].line, 7);

    /* Anything else: unknown, no frames; empty input too. */
    parse_str(a, "something went wrong\nreally", SX_ST_UNKNOWN, &t);
    assert_int_equal(t.lang, SX_ST_UNKNOWN);
    assert_int_equal(t.n, 0);
    assert_int_equal(sx_st_parse("", 0, SX_ST_JS, NULL, a, &t), SX_OK);
    assert_int_equal(t.n, 0);
    sx_arena_destroy(a);
}

static void test_detect(void **state)
{
    (void)state;
    assert_int_equal(sx_st_lang_from_sdk("nodejs"), SX_ST_JS);
    assert_int_equal(sx_st_lang_from_sdk("webjs"), SX_ST_JS);
    assert_int_equal(sx_st_lang_from_sdk("python"), SX_ST_PYTHON);
    assert_int_equal(sx_st_lang_from_sdk("java"), SX_ST_JAVA);
    assert_int_equal(sx_st_lang_from_sdk("go"), SX_ST_GO);
    assert_int_equal(sx_st_lang_from_sdk("ruby"), SX_ST_RUBY);
    assert_int_equal(sx_st_lang_from_sdk("dotnet"), SX_ST_DOTNET);
    assert_int_equal(sx_st_lang_from_sdk("php"), SX_ST_UNKNOWN);
    assert_int_equal(sx_st_lang_from_sdk(NULL), SX_ST_UNKNOWN);
    size_t n;
    char *text = load("node.txt", &n);
    /* A wrong hint does not win over what the text is. */
    assert_int_equal(sx_st_detect(text, n, SX_ST_PYTHON), SX_ST_JS);
    assert_int_equal(sx_st_detect(text, n, SX_ST_UNKNOWN), SX_ST_JS);
    free(text);
    text = load("java_spring.txt", &n);
    assert_int_equal(sx_st_detect(text, n, SX_ST_DOTNET), SX_ST_JAVA);
    free(text);
}

static void test_limits(void **state)
{
    (void)state;
    struct sx_arena *a = sx_arena_create(64 * 1024, 16 << 20);
    struct sx_st_trace t;
    size_t cap = 200 * 1000, len = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    /* 1000 V8 frames, crashing frame first: the 256 nearest the crash stay. */
    len = (size_t)snprintf(big, cap, "RangeError: Maximum call stack size exceeded\n");
    for (int i = 0; i < 1000; i++) len += (size_t)snprintf(big + len, cap - len, "    at f%d (/app/r.js:%d:1)\n", i, i + 1);
    assert_int_equal(sx_st_parse(big, len, SX_ST_JS, NULL, a, &t), SX_OK);
    assert_int_equal(t.n, SX_ST_MAX_FRAMES);
    assert_true(t.truncated);
    assert_string_equal(t.frames[t.n - 1].function, "f0");
    assert_string_equal(t.frames[0].function, "f255");
    /* 1000 Python frames, crashing frame last: also the 256 nearest the crash. */
    len = (size_t)snprintf(big, cap, "Traceback (most recent call last):\n");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(big + len, cap - len, "  File \"/app/r.py\", line %d, in f%d\n    f()\n", i + 1, i);
    len += (size_t)snprintf(big + len, cap - len, "RecursionError: maximum recursion depth exceeded\n");
    sx_arena_reset(a);
    assert_int_equal(sx_st_parse(big, len, SX_ST_UNKNOWN, NULL, a, &t), SX_OK);
    assert_int_equal(t.n, SX_ST_MAX_FRAMES);
    assert_string_equal(t.frames[t.n - 1].function, "f999");
    assert_string_equal(t.frames[0].function, "f744");
    assert_string_equal(t.type, "RecursionError");
    /* A line over SX_ST_MAX_LINE is never a frame. */
    memset(big, 'x', SX_ST_MAX_LINE + 10);
    memcpy(big, "    at f (/a.js:1:1) ", 21);
    sx_arena_reset(a);
    assert_int_equal(sx_st_parse(big, SX_ST_MAX_LINE + 10, SX_ST_JS, NULL, a, &t), SX_OK);
    assert_int_equal(t.n, 0);
    /* An exhausted arena is SX_ERR with an empty trace. */
    struct sx_arena *tiny = sx_arena_create(1024, 2048);
    size_t n;
    char *text = load("node.txt", &n);
    assert_int_equal(sx_st_parse(text, n, SX_ST_JS, NULL, tiny, &t), SX_ERR);
    assert_int_equal(t.n, 0);
    assert_string_equal(t.type, "");
    free(text);
    sx_arena_destroy(tiny);
    free(big);
    sx_arena_destroy(a);
}

static void test_rules(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *s;
        int want;
    } m[] = {
        {"com.acme.", "com.acme.shop.Order", 1},  {"com.acme.", "com.acmex.Order", 0},
        {"*node_modules/@acme/", "/app/node_modules/@acme/billing/index.js", 1},
        {"*node_modules/@acme/", "/app/node_modules/express/index.js", 0},
        {"/app/*/legacy/", "/app/src/legacy/x.js", 1}, {"*", "anything", 1}, {"", "anything", 0},
        {"a*b*c", "aXbYc-tail", 1},               {"a*b*c", "aXbY", 0},
    };
    for (size_t i = 0; i < SX_ARRAY_LEN(m); i++) {
        if (sx_st_pattern_match(m[i].pattern, m[i].s) != m[i].want) {
            print_error("pattern %s on %s: want %d\n", m[i].pattern, m[i].s, m[i].want);
            fail();
        }
    }
    assert_false(sx_st_pattern_match("x", NULL));

    struct sx_st_frame lib = {"charge", NULL, "/app/node_modules/@acme/billing/index.js", 3, 9, 0};
    struct sx_st_frame app = {"getUser", NULL, "/app/src/legacy/users.js", 1, 1, 0};
    assert_false(sx_st_in_app(SX_ST_JS, &lib, NULL));
    assert_true(sx_st_in_app(SX_ST_JS, &app, NULL));
    const char *const inc[] = {"*node_modules/@acme/"};
    const char *const exc[] = {"*/legacy/", "*node_modules/@acme/billing/"};
    struct sx_st_rules only_inc = {inc, 1, NULL, 0}, both = {inc, 1, exc, 2};
    assert_true(sx_st_in_app(SX_ST_JS, &lib, &only_inc));
    assert_false(sx_st_in_app(SX_ST_JS, &lib, &both)); /* exclude wins over include */
    assert_false(sx_st_in_app(SX_ST_JS, &app, &both)); /* and over the defaults */
    /* Rules reach the parser. */
    struct sx_arena *a = sx_arena_create(64 * 1024, 4 << 20);
    size_t n;
    char *text = load("node.txt", &n);
    const char *const express[] = {"*node_modules/express/"};
    struct sx_st_rules r = {express, 1, NULL, 0};
    struct sx_st_trace t;
    assert_int_equal(sx_st_parse(text, n, SX_ST_JS, &r, a, &t), SX_OK);
    assert_true(t.frames[5].in_app);
    assert_true(t.frames[6].in_app);
    free(text);
    sx_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),  cmocka_unit_test(test_causes), cmocka_unit_test(test_small_formats),
        cmocka_unit_test(test_detect), cmocka_unit_test(test_limits), cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests_name("stacktrace", tests, NULL, NULL);
}
