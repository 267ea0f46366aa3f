/* test_gzip.c: bounded gunzip: SDK fixtures, bombs, corrupt and truncated
 * streams, concatenated members, zlib streams and the arena cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "arena.h"
#include "gzip.h"

static const char *fixtures_dir(void)
{
    const char *d = getenv("SX_FIXTURES");
    return d && *d ? d : "../shared/otlp-fixtures";
}

static uint8_t *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("missing fixture %s (set SX_FIXTURES)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Compresses in (repeated `times` times) as gzip (wbits 31) or zlib (15).
 * Caller frees. */
static uint8_t *deflate_buf(const uint8_t *in, size_t len, size_t times, int wbits, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len * times) + 64, used = 0;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    for (size_t t = 0; t < times; t++) {
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = (uInt)len;
        int flush = t + 1 == times ? Z_FINISH : Z_NO_FLUSH;
        do {
            zs.next_out = out + used;
            zs.avail_out = (uInt)(cap - used);
            int rc = deflate(&zs, flush);
            assert_true(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
            used = cap - zs.avail_out;
        } while (zs.avail_in > 0 || (flush == Z_FINISH && zs.avail_out == 0));
    }
    deflateEnd(&zs);
    *out_len = used;
    return out;
}

static void check_fixture(const char *plain, const char *gz)
{
    size_t plen, glen, olen = 0;
    uint8_t *p = slurp(plain, &plen), *g = slurp(gz, &glen), *out = NULL;
    struct sx_arena *a = sx_arena_create(64 * 1024, 64u << 20);
    assert_int_equal(sx_gunzip(g, glen, 32u << 20, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, plen);
    assert_memory_equal(out, p, plen);
    /* The exact size is allowed; one byte less is not. */
    assert_int_equal(sx_gunzip(g, glen, plen, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, plen);
    assert_int_equal(sx_gunzip(g, glen, plen - 1, a, &out, &olen), SX_GZIP_E_TOO_BIG);
    assert_null(out);
    sx_arena_destroy(a);
    free(p);
    free(g);
}

static void test_fixtures(void **state)
{
    (void)state;
    check_fixture("traces-proto.bin", "traces-proto.bin.gz");
    check_fixture("traces-json.json", "traces-json.json.gz");
    check_fixture("traces-payments-worker-proto.bin", "traces-payments-worker-proto.bin.gz");
    check_fixture("traces-payments-worker-json.json", "traces-payments-worker-json.json.gz");
    check_fixture("logs-proto.bin", "logs-proto.bin.gz");
    check_fixture("logs-json.json", "logs-json.json.gz");

    /* The metrics .gz bodies come from another collection than the plain
     * ones (other timestamps): same size, other bytes. */
    static const char *const metrics[][2] = {
        {"metrics-1-proto.bin", "metrics-1-proto.bin.gz"},
        {"metrics-3-json.json", "metrics-3-json.json.gz"},
    };
    for (size_t i = 0; i < 2; i++) {
        size_t plen, glen, olen;
        uint8_t *p = slurp(metrics[i][0], &plen), *g = slurp(metrics[i][1], &glen), *out;
        struct sx_arena *a = sx_arena_create(4096, 1u << 20);
        assert_int_equal(sx_gunzip(g, glen, 1u << 20, a, &out, &olen), SX_GZIP_OK);
        assert_int_equal(olen, plen);
        sx_arena_destroy(a);
        free(p);
        free(g);
    }
}

/* 50 MB of zeros (about 50 KB compressed) against a 1 MB cap: rejected after
 * inflating just over 1 MB, never the whole 50 MB. */
static void test_bomb(void **state)
{
    (void)state;
    static uint8_t zeros[1 << 20];
    size_t glen, olen = 0;
    uint8_t *g = deflate_buf(zeros, sizeof(zeros), 50, 31, &glen);
    assert_true(glen < 200 * 1024);
    struct sx_arena *a = sx_arena_create(64 * 1024, 64u << 20);
    uint8_t *out = NULL;
    assert_int_equal(sx_gunzip(g, glen, 1u << 20, a, &out, &olen), SX_GZIP_E_TOO_BIG);
    assert_null(out);
    assert_int_equal(olen, 0);
    assert_true(sx_arena_reserved(a) < (4u << 20)); /* bounded by the cap, not the bomb */

    /* With room for all of it, it inflates exactly; ISIZE sizes the buffer
     * once, so 50 MB fit a 64 MB arena. */
    sx_arena_reset(a);
    assert_int_equal(sx_gunzip(g, glen, 50u << 20, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, 50u << 20);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[olen - 1], 0);
    sx_arena_destroy(a);
    free(g);
}

static void test_corrupt(void **state)
{
    (void)state;
    size_t plen, glen, olen;
    uint8_t *p = slurp("traces-json.json", &plen), *g = slurp("traces-json.json.gz", &glen), *out;
    struct sx_arena *a = sx_arena_create(64 * 1024, 64u << 20);

    /* not gzip at all, and empty */
    static const uint8_t text[] = "{\"resourceSpans\":[]}";
    assert_int_equal(sx_gunzip(text, sizeof(text) - 1, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    assert_int_equal(sx_gunzip(text, 0, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    assert_int_equal(sx_gunzip(NULL, 0, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);

    /* header only, and every truncation point of the stream */
    assert_int_equal(sx_gunzip(g, 10, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    for (size_t cut = 1; cut < glen; cut += (cut < 32 || glen - cut < 32) ? 1 : 97)
        assert_int_equal(sx_gunzip(g, cut, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);

    /* a flipped bit in the data or in the CRC-32 / ISIZE trailer */
    uint8_t *bad = malloc(glen);
    memcpy(bad, g, glen);
    bad[glen / 2] ^= 0x10;
    assert_int_equal(sx_gunzip(bad, glen, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    memcpy(bad, g, glen);
    bad[glen - 6] ^= 0x01; /* CRC-32 */
    assert_int_equal(sx_gunzip(bad, glen, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    memcpy(bad, g, glen);
    bad[glen - 2] ^= 0x01; /* ISIZE */
    assert_int_equal(sx_gunzip(bad, glen, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    memcpy(bad, g, glen);
    bad[0] = 0x1e; /* magic */
    assert_int_equal(sx_gunzip(bad, glen, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    free(bad);

    /* trailing garbage after a valid member */
    uint8_t *tail = malloc(glen + 4);
    memcpy(tail, g, glen);
    memcpy(tail + glen, "junk", 4);
    assert_int_equal(sx_gunzip(tail, glen + 4, 1 << 20, a, &out, &olen), SX_GZIP_E_CORRUPT);
    free(tail);

    /* the untouched stream still inflates */
    assert_int_equal(sx_gunzip(g, glen, 1 << 20, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, plen);
    sx_arena_destroy(a);
    free(p);
    free(g);
}

static void test_concatenated_members(void **state)
{
    (void)state;
    static const uint8_t one[] = "first member, ";
    static const uint8_t two[] = "second member";
    size_t l1, l2, olen;
    uint8_t *g1 = deflate_buf(one, sizeof(one) - 1, 1, 31, &l1);
    uint8_t *g2 = deflate_buf(two, sizeof(two) - 1, 1, 31, &l2);
    uint8_t *cat = malloc(l1 + l2), *out;
    memcpy(cat, g1, l1);
    memcpy(cat + l1, g2, l2);
    struct sx_arena *a = sx_arena_create(4096, 1 << 20);
    assert_int_equal(sx_gunzip(cat, l1 + l2, 1024, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, sizeof(one) - 1 + sizeof(two) - 1);
    assert_memory_equal(out, "first member, second member", olen);
    /* the limit counts both members together */
    assert_int_equal(sx_gunzip(cat, l1 + l2, olen - 1, a, &out, &olen), SX_GZIP_E_TOO_BIG);
    /* a truncated second member */
    assert_int_equal(sx_gunzip(cat, l1 + l2 - 3, 1024, a, &out, &olen), SX_GZIP_E_CORRUPT);
    sx_arena_destroy(a);
    free(g1);
    free(g2);
    free(cat);
}

static void test_zlib_and_growth(void **state)
{
    (void)state;
    /* 3 MB of varied text: the output buffer must grow several times. */
    size_t n = 3u << 20, glen, olen;
    uint8_t *text = malloc(n), *out;
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        text[i] = (uint8_t)('a' + (x >> 16) % 16);
    }
    struct sx_arena *a = sx_arena_create(64 * 1024, 64u << 20);
    uint8_t *z = deflate_buf(text, n, 1, 15, &glen); /* zlib header, auto-detected */
    assert_int_equal(sx_gunzip(z, glen, n, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, n);
    assert_memory_equal(out, text, n);
    free(z);

    uint8_t *g = deflate_buf(text, n, 1, 31, &glen);
    sx_arena_reset(a);
    assert_int_equal(sx_gunzip(g, glen, n + 100, a, &out, &olen), SX_GZIP_OK);
    assert_memory_equal(out, text, n);

    /* raw deflate (no header) is not accepted */
    size_t rlen;
    uint8_t *raw = deflate_buf(text, 1000, 1, -15, &rlen);
    assert_int_equal(sx_gunzip(raw, rlen, n, a, &out, &olen), SX_GZIP_E_CORRUPT);
    free(raw);

    /* an arena cap below the output: NOMEM, not TOO_BIG (sized from ISIZE,
     * and growing from a guess when ISIZE is not usable) */
    struct sx_arena *small = sx_arena_create(4096, 256 * 1024);
    assert_int_equal(sx_gunzip(g, glen, n, small, &out, &olen), SX_GZIP_E_NOMEM);
    uint8_t *lying = malloc(glen);
    memcpy(lying, g, glen);
    memset(lying + glen - 4, 0, 4); /* ISIZE 0: no hint, and the check then fails */
    sx_arena_reset(small);
    assert_int_equal(sx_gunzip(lying, glen, n, small, &out, &olen), SX_GZIP_E_NOMEM);
    sx_arena_reset(a);
    assert_int_equal(sx_gunzip(lying, glen, n, a, &out, &olen), SX_GZIP_E_CORRUPT);
    free(lying);
    sx_arena_destroy(small);

    /* max_out 0: only an empty stream fits */
    size_t elen;
    uint8_t *e = deflate_buf((const uint8_t *)"", 0, 1, 31, &elen);
    assert_int_equal(sx_gunzip(e, elen, 0, a, &out, &olen), SX_GZIP_OK);
    assert_int_equal(olen, 0);
    free(e);
    e = deflate_buf((const uint8_t *)"x", 1, 1, 31, &elen);
    assert_int_equal(sx_gunzip(e, elen, 0, a, &out, &olen), SX_GZIP_E_TOO_BIG);
    free(e);

    sx_arena_destroy(a);
    free(g);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_concatenated_members),
        cmocka_unit_test(test_zlib_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
