/* stacktrace.h: parses the text of an exception's stack trace (the OTel
 * `exception.stacktrace` attribute) into frames, for error grouping. No I/O,
 * no mutable globals; every string of the result lives in the caller's arena.
 *
 * Languages and formats (one parser each; sx_st_detect picks one):
 *   SX_ST_JS      V8 (Node.js, Chrome, Edge): `    at fn (file:line:col)`,
 *                 `    at file:line:col`, `at async fn (...)`, `at new Foo (...)`,
 *                 `at fn (node:internal/...)`, `at eval (eval at f (file:l:c), <anonymous>:1:1)`
 *                 (the innermost real location is kept), `at new Promise (<anonymous>)`,
 *                 `at async Promise.all (index 0)` (no file). The lines before the first
 *                 frame repeat `Type: message` (the message may span lines): they are the
 *                 type and message, never frames. A leading `Uncaught ` goes.
 *                 Firefox and Safari: `fn@file:line:col`, `@file:line:col`,
 *                 `async*fn@...`, `map@[native code]`; these stacks carry no message.
 *   SX_ST_PYTHON  `Traceback (most recent call last):`, `  File "path", line N, in fn`, the
 *                 source and caret lines below (skipped), the final `Type: message` (more
 *                 message lines may follow). Chains joined by `During handling of the above
 *                 exception, another exception occurred:` or `The above exception was the
 *                 direct cause of the following exception:`: the last block printed is
 *                 the main exception, the blocks before it its causes.
 *   SX_ST_JAVA    (and Kotlin, Scala) `[Exception in thread "main" ]pkg.Type: message`,
 *                 `\tat pkg.Class.method(File.java:42)`, `(Native Method)`,
 *                 `(Unknown Source)`, module prefixes (`java.base/`, `app//`) dropped,
 *                 trailing `~[jar:ver]` ignored, `\t... 12 more` counted in `omitted`,
 *                 `Caused by: Type: message` chains; `Suppressed:` blocks are skipped.
 *   SX_ST_GO      `panic: msg [recovered]` (type "panic"; `fatal error: msg` gives type
 *                 "fatal error"), `goroutine 1 [running]:`, then pairs
 *                 `pkg.(*T).fn(0x...)` / `\t/path/file.go:42 +0x1d`, `created by pkg.fn in
 *                 goroutine 7` (a frame). Only the first goroutine printed (the panicking
 *                 one) is kept. `runtime/debug.Stack()` output parses the same, without
 *                 a message. module = import path (`net/http`), function = the rest
 *                 (`(*Server).Serve`).
 *   SX_ST_RUBY    `app/models/user.rb:12:in `save': message (Type)` then
 *                 `\tfrom path:line:in `fn'`; Ruby 3.4 quoting `'Foo#bar'` too, and plain
 *                 backtrace lines without `from`.
 *   SX_ST_DOTNET  `Ns.Type: message`, ` ---> Ns.Inner: message` (inner exceptions),
 *                 `   at Ns.Class.Method(Args) in /path/File.cs:line 42`, `   --- End of
 *                 inner exception stack trace ---` (the frames before it belong to the
 *                 inner exception), `--- End of stack trace from previous location ---`
 *                 (skipped). module = `Ns.Class`, function = `Method`.
 *   SX_ST_UNKNOWN anything else: zero frames, the caller keeps the raw text.
 *
 * Frame order: as Sentry stores them, OLDEST CALL FIRST, THE CRASHING FRAME LAST
 * (frames[n - 1]), whatever order the language prints them in.
 *
 * Exceptions: trace->type/message/frames are the main exception (the one thrown and
 * reported; for Java and .NET the first printed, for Python the last printed);
 * trace->causes[0] is its direct cause (Java `Caused by:`, .NET inner exception, Python
 * earlier block), causes[1] the cause of that, and so on.
 *
 * In-app: a frame is in-app unless a default rule marks it as library code:
 *   JS      file under node_modules/, node: (node:internal, node:fs, ...), internal/...,
 *           a file without any '/' (old Node core modules: events.js), no file
 *           (<anonymous>, native, [native code], index N), webpack/bootstrap
 *   Python  site-packages/, dist-packages/, /lib/pythonX (stdlib), files starting with '<'
 *           (<frozen ...>, <string>)
 *   Java    module (class) starting with java. javax. jakarta. jdk. sun. com.sun.
 *           kotlin. kotlinx. scala. groovy. org.codehaus.groovy. org.springframework.
 *           org.apache. io.netty. org.hibernate. com.fasterxml. org.eclipse.jetty.
 *           io.micronaut. io.quarkus. io.vertx. reactor. io.reactivex. okhttp3.
 *           org.junit. com.google. org.slf4j. ch.qos.logback. io.opentelemetry.
 *           org.jboss. io.grpc. org.glassfish. com.zaxxer. net.bytebuddy. org.aspectj.
 *   Go      module runtime or a standard library package (first path element has no
 *           dot and is a std top-level package: net, net/http, encoding, sync, ...),
 *           files under GOROOT (/usr/local/go/src/, /usr/lib/go/src/, /usr/lib/go-*)
 *           or the module cache (/pkg/mod/)
 *   Ruby    /gems/ (bundler, rubygems), /lib/ruby/ (stdlib), files starting with '<'
 *           (<internal:kernel>)
 *   .NET    module System, System.*, Microsoft.*, Newtonsoft.*, Npgsql.*, Grpc.*
 * Project rules (struct sx_st_rules) come first: a frame matching an exclude pattern is
 * never in-app; otherwise one matching an include pattern is always in-app; otherwise
 * the defaults apply. Pattern syntax: matched against the start of the frame's module,
 * file and function (any of the three); `*` matches any run of bytes, other bytes match
 * themselves. So `com.acme.` matches that package, `*node_modules/@acme/` a scoped npm
 * package anywhere, `*vendor/` vendored code.
 *
 * Limits (input beyond them is ignored, never an error): SX_ST_MAX_INPUT bytes of text,
 * lines longer than SX_ST_MAX_LINE are never frames, SX_ST_MAX_FRAMES frames per
 * exception (the ones nearest the crash are kept), SX_ST_MAX_CAUSES causes,
 * SX_ST_MAX_MESSAGE bytes of message. The arena needs at most about
 * 2 * min(n, SX_ST_MAX_INPUT) + 128 KiB. */
#ifndef SX_STACKTRACE_H
#define SX_STACKTRACE_H

#include "arena.h"
#include "sx.h"

#define SX_ST_MAX_INPUT (256 * 1024)
#define SX_ST_MAX_LINE 4096
#define SX_ST_MAX_FRAMES 256
#define SX_ST_MAX_CAUSES 8
#define SX_ST_MAX_MESSAGE 4096

enum sx_st_lang { SX_ST_UNKNOWN, SX_ST_JS, SX_ST_PYTHON, SX_ST_JAVA, SX_ST_GO, SX_ST_RUBY, SX_ST_DOTNET };

struct sx_st_frame {
    const char *function; /* NULL when not printed (JS `at file:1:2`) */
    const char *module;   /* Java/Kotlin class, .NET namespace.class, Go import path; else NULL */
    const char *file;     /* path or URL as printed; NULL when none (native, <anonymous>) */
    int line, column;     /* 0 when unknown */
    int in_app;
};

struct sx_st_exception {
    const char *type, *message; /* "" when the text has none */
    struct sx_st_frame *frames; /* oldest first, crashing frame last */
    size_t n;
    size_t omitted; /* Java `... N more`: frames shared with the enclosing exception */
};

struct sx_st_trace {
    enum sx_st_lang lang;
    const char *type, *message; /* main exception; "" when the text has none */
    struct sx_st_frame *frames; /* main exception, oldest first, crashing frame last */
    size_t n;
    size_t omitted;
    struct sx_st_exception causes[SX_ST_MAX_CAUSES]; /* causes[0]: direct cause of the main one */
    size_t ncauses;
    int truncated; /* a limit cut something off */
};

/* Per-project in-app patterns; both lists may be empty (NULL, 0). */
struct sx_st_rules {
    const char *const *include;
    size_t ninclude;
    const char *const *exclude;
    size_t nexclude;
};

/* Maps an OTel `telemetry.sdk.language` value (nodejs, webjs, python, java, go, ruby,
 * dotnet; NULL or anything else: SX_ST_UNKNOWN). */
enum sx_st_lang sx_st_lang_from_sdk(const char *sdk_language);
/* "js", "python", "java", "go", "ruby", "dotnet" or "unknown"; never NULL. */
const char *sx_st_lang_name(enum sx_st_lang lang);

/* Guesses the format of text[0..n) by scoring the lines each format recognizes; a hint
 * other than SX_ST_UNKNOWN wins when its format scores at least half the best score.
 * SX_ST_UNKNOWN when no format recognizes anything. */
enum sx_st_lang sx_st_detect(const char *text, size_t n, enum sx_st_lang hint);

/* Parses text[0..n) (need not be NUL-terminated; may hold any bytes) into out, strings
 * in a. hint as for sx_st_detect; rules may be NULL. An unrecognized text gives SX_OK
 * with lang SX_ST_UNKNOWN and no frames. SX_ERR only when the arena is exhausted (out
 * then holds an empty trace). */
int sx_st_parse(const char *text, size_t n, enum sx_st_lang hint, const struct sx_st_rules *rules,
                struct sx_arena *a, struct sx_st_trace *out);

/* Whether a frame of lang is in-app under rules (may be NULL) and the default rules above. */
int sx_st_in_app(enum sx_st_lang lang, const struct sx_st_frame *f, const struct sx_st_rules *rules);

/* Matches one project pattern (syntax above) against the start of s; 0 when s is NULL. */
int sx_st_pattern_match(const char *pattern, const char *s);

#endif
