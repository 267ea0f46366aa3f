/* grouping.h: error grouping, algorithm v1: which occurrences of an error are one issue,
 * plus the title and culprit. No I/O, no mutable globals, no allocation except
 * one OpenSSL digest context per fingerprint.
 *
 * Fingerprint (the first rule that applies wins; the rule's name is reported):
 *   1. "fingerprint": an explicit fingerprint (an attribute such as sextant.fingerprint
 *      or error.fingerprint, passed by the caller; blank counts as absent): its bytes
 *      alone, so the application decides.
 *   2. "in_app_frames": the exception type plus, for every in-app frame of the main
 *      exception and then of each cause (with the cause's type), oldest first, the
 *      normalized module and function. Never line, column, message or file path beyond
 *      the module key below, so code that moves within a file, or ids in the message, do
 *      not split an issue, while the same type thrown from another function does.
 *      Consecutive identical frames (recursion) count once.
 *   3. "message": the type plus the normalized message (sx_grouping_normalize_message),
 *      when no exception of the chain has an in-app frame.
 * The type is the caller's (exception.type), else the one parsed from the stack, else the
 * language's default (sx_grouping_default_type). The hash is SHA-256 over a versioned,
 * NUL-separated encoding of the above, cut to 16 bytes (hex: 32 characters).
 *
 * Frame keys (sx_grouping_frame_key):
 *   module  Java/Kotlin class, .NET class, Go import path when the frame has one, else
 *           the file: URL scheme, host, query and fragment dropped, backslashes made
 *           slashes, only the last two path components kept (`src/users.js`,
 *           `shop/views.py`), bundler content hashes dropped from the file name
 *           (`main.3f9a2c1b.js` and `index-DiwrgTda.js` become `main.js`, `index.js`).
 *           JVM: cut at `$$` (CGLIB/ByteBuddy proxies, lambda classes), digits after `$`
 *           dropped (`Foo$1` -> `Foo$`). .NET: compiler-generated classes (`<>c`,
 *           `<>c__DisplayClass5_0`, async state machines `<ShipAsync>d__5`) dropped.
 *   function
 *           JS: `async `, `new `, Firefox `async*`/`promise callback*` prefixes, ` [as x]`
 *           and Firefox `/<` suffixes dropped. Python: <listcomp>, <dictcomp>, <setcomp>,
 *           <genexpr> frames are skipped (3.12 inlines them). JVM: a trailing `$N`
 *           (`lambda$ship$0` -> `lambda$ship`, `access$000` -> `access`). Go: closure and
 *           wrapper suffixes `.func1`, `.func1.2`, `.gowrap1`, `.deferwrap1` and generic
 *           `[...]` dropped. .NET: `<Ship>b__0_0`, `<Ship>g__Local|3_0` -> `Ship`,
 *           `MoveNext` of `<ShipAsync>d__5` -> `ShipAsync`. Ruby: `block in `,
 *           `block (2 levels) in `, `rescue in `, `ensure in ` dropped, then the receiver
 *           (`Order#ship!` -> `ship!`, so Ruby 3.4 and older group alike), and ERB
 *           template suffixes `___12345_6789`.
 *   Keys are cut at SX_GROUPING_KEY_MAX bytes.
 *
 * Message normalization replaces, left to right, tokens that start at a word boundary:
 *   quoted strings '...', "...", `...` on one line (a single quote closes only before
 *   a byte that is neither a word byte nor '<', so "can't" stays) -> <str>
 *   URLs (scheme://...)                                      -> <url>
 *   emails                                                   -> <email>
 *   UUIDs (8-4-4-4-12 hex)                                   -> <uuid>
 *   dates and times (2024-01-05, 2024-01-05T10:00:00.123Z, 10:00:00) -> <date>
 *   IPv4 (with :port) and IPv6 addresses                     -> <ip>
 *   0x hex, and runs of 6+ hex digits with a digit and a letter (hashes) -> <hex>
 *   unix paths (two slashes or a dotted file name: /app/x.py, ./a/b, ~/x) and Windows
 *   paths (C:\x, \\server\share)                             -> <path>
 *   numbers: integers, decimals, exponents, versions 1.2.3, a sign after a space,
 *   '(', '[', '=', ',' or ':'; a unit suffix stays (5000ms -> <num>ms); digits inside a
 *   word stay (user42, utf8)                                 -> <num>
 * It is idempotent (normalizing a result again changes nothing, unless the result was cut
 * at SX_GROUPING_MSG_MAX), works on bytes (UTF-8
 * is copied whole, never split) and the result is at most SX_GROUPING_MSG_MAX bytes: a
 * token that does not fit ends it. Placeholders are at most 7 bytes, so the result is
 * never longer than 7 times the input either. */
#ifndef SX_GROUPING_H
#define SX_GROUPING_H

#include "stacktrace.h"

#define SX_GROUPING_VERSION "v1"
#define SX_GROUPING_HASH_LEN 16
#define SX_GROUPING_MSG_MAX 1024
#define SX_GROUPING_KEY_MAX 256

enum sx_grouping_rule { SX_GROUPING_RULE_FINGERPRINT, SX_GROUPING_RULE_IN_APP_FRAMES, SX_GROUPING_RULE_MESSAGE };

struct sx_grouping {
    uint8_t hash[SX_GROUPING_HASH_LEN];
    char hex[2 * SX_GROUPING_HASH_LEN + 1];
    enum sx_grouping_rule rule;
};

/* "fingerprint", "in_app_frames" or "message". */
const char *sx_grouping_rule_name(enum sx_grouping_rule rule);

/* The type used when an error has none: "Error" (JS, unknown), "Exception" (Python),
 * "java.lang.Throwable", "panic" (Go), "RuntimeError" (Ruby), "System.Exception". */
const char *sx_grouping_default_type(enum sx_st_lang lang);

/* Normalizes in[0..n) (any bytes) into out (cap >= 1 bytes), always NUL-terminated; see
 * above. Returns the length written. */
size_t sx_grouping_normalize_message(const char *in, size_t n, char *out, size_t cap);

/* The grouping keys of one frame of lang into mod and fn (each SX_GROUPING_KEY_MAX + 1
 * bytes, NUL-terminated). Returns 0 when the frame does not take part in grouping. */
int sx_grouping_frame_key(enum sx_st_lang lang, const struct sx_st_frame *f, char *mod, char *fn);

/* Computes the v1 fingerprint into out. fingerprint, type and message may be NULL (type
 * and message then come from the trace), trace may be NULL. SX_ERR only when OpenSSL
 * fails (out is then zeroed). */
int sx_grouping_fingerprint(const char *fingerprint, const char *type, const char *message,
                            const struct sx_st_trace *trace, struct sx_grouping *out);

/* Issue title `Type: first line of the message` (just one of them when the other is empty
 * or NULL; "Error" when both are) into out (outlen >= 1), cut at a UTF-8 boundary.
 * Returns the length written. */
size_t sx_grouping_title(const char *type, const char *message, char *out, size_t outlen);

/* Culprit, Sentry style `module in function` (the frame keys above: `src/users.js in
 * getUser`, `com.acme.OrderService in ship`), of the crashing-most in-app frame of the
 * main exception, else of its causes in order, else of the crashing frame; just the one
 * that is known when the other is empty; "" when there is no frame. Written to out
 * (outlen >= 1), cut at a UTF-8 boundary; returns the length. */
size_t sx_grouping_culprit(const struct sx_st_trace *trace, char *out, size_t outlen);

/* For errors without exception.type/exception.message attributes: the type and message
 * that the stack text repeats (a V8 stack's first line, Python's last line, Java's first
 * line, ...), as sx_st_parse finds them; "" when it has none. Strings live in a.
 * SX_ERR when the arena is exhausted. */
int sx_grouping_split_message(const char *stack, size_t n, enum sx_st_lang hint, struct sx_arena *a,
                              const char **type, const char **message);

#endif
