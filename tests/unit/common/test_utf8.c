/* Tests for common/utf8.c: strict UTF-8 validation, decoding and encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/utf8.h"

static void test_utf8(void **state)
{
    (void)state;
    assert_true(sl_utf8_valid("plain ascii text!", 17));
    assert_true(sl_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    assert_false(sl_utf8_valid("\xc0\xaf", 2));          /* overlong */
    assert_false(sl_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    assert_false(sl_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
    assert_false(sl_utf8_valid("abcdefgh\xe2\x82", 10)); /* truncated */
    assert_false(sl_utf8_valid("\x80", 1));
    char out[4];
    assert_int_equal(sl_utf8_encode(out, 0x20ac), 3);
    assert_memory_equal(out, "\xe2\x82\xac", 3);
    assert_int_equal(sl_utf8_encode(out, 0xd800), 0);
    assert_int_equal(sl_utf8_encode(out, 0x110000), 0);
    uint32_t cp;
    assert_int_equal(sl_utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1f600);
}

/* Every scalar value encodes, validates and decodes back to itself; every
 * surrogate is refused. */
static void test_utf8_all_code_points(void **state)
{
    (void)state;
    char out[4];
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        size_t n = sl_utf8_encode(out, cp);
        if (cp >= 0xd800 && cp <= 0xdfff) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_int_equal(n, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
        assert_true(sl_utf8_valid(out, n));
        uint32_t back = 0;
        assert_int_equal(sl_utf8_decode(out, n, &back), n);
        assert_int_equal(back, cp);
    }
}

/* A sequence cut short is invalid at every cut point. */
static void test_utf8_truncations(void **state)
{
    (void)state;
    const char *s = "\xf0\x9f\x98\x80";
    uint32_t cp;
    for (size_t n = 1; n < 4; n++) {
        assert_false(sl_utf8_valid(s, n));
        assert_int_equal(sl_utf8_decode(s, n, &cp), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_utf8_all_code_points),
        cmocka_unit_test(test_utf8_truncations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
