/* sqlnorm.h: SQL statement normalization for grouping database spans: literals become ?, so
 * `WHERE id = 42` and `WHERE id = 7` are one statement. No I/O, no allocation.
 *
 * What it does, in one pass over the bytes:
 *   - string literals ('...' with '' inside; E'...' with backslash escapes;
 *     the prefixed forms N'', B'', X'', U&''), dollar-quoted strings
 *     ($$...$$, $tag$...$tag$), numbers (integers, decimals, exponents,
 *     0x hex) and positional parameters ($1) become ?;
 *   - a minus sign right before a number is part of it where it can only be
 *     a sign (after an operator, '(', ',', a keyword such as WHERE or AND,
 *     or at the start), so `x = -5` is `x = ?` and `a - 5` is `a - ?`;
 *   - comments (-- to end of line, nested slash-star) are dropped;
 *   - runs of whitespace become one space; leading and trailing space goes;
 *   - a parenthesized list of only ? is (?), and a tuple list (?), (?) is
 *     one (?): IN (1, 2, 3) -> IN (?), VALUES (1, 'a'), (2, 'b') ->
 *     VALUES (?);
 *   - identifiers stay as they are, digits included (t1, col_2, "x1",
 *     `t2`, bytes >= 0x80 count as identifier characters), keywords keep
 *     their case.
 * An unterminated literal or comment runs to the end of the input. */
#ifndef SX_SQLNORM_H
#define SX_SQLNORM_H

#include <stddef.h>

/* Normalizes in[0..n) into out (cap bytes, cap >= 1), always NUL-terminated.
 * The result is never longer than the input, so cap = n + 1 always holds it;
 * with less room it is cut at a UTF-8 character boundary. Returns the length
 * written (without the NUL). */
size_t sx_sqlnorm(const char *in, size_t n, char *out, size_t cap);

#endif
