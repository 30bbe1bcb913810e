/* Tests for common/gostr.c: Go string escapes, one sequence at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/gostr.h"

/* Decodes the escape at the start of s (the text after a backslash) and
 * checks the bytes and how much was consumed. */
static void ok(const char *s, const char *want, size_t want_len, size_t consumed)
{
    char out[8];
    memset(out, 0x55, sizeof(out));
    size_t i = 0;
    const char *why = "untouched";
    int len = sl_go_unescape(s, strlen(s), &i, out, &why);
    assert_int_equal(len, (int)want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal((unsigned char)out[want_len], 0x55); /* nothing beyond */
    assert_int_equal(i, consumed);
    assert_string_equal(why, "untouched");
}

static void bad_n(const char *s, size_t n, const char *why_want)
{
    char out[8];
    memset(out, 0x55, sizeof(out));
    size_t i = 0;
    const char *why = NULL;
    assert_int_equal(sl_go_unescape(s, n, &i, out, &why), SL_EINVAL);
    assert_int_equal(i, 0);
    assert_non_null(why);
    assert_string_equal(why, why_want);
    for (size_t k = 0; k < sizeof(out); k++)
        assert_int_equal((unsigned char)out[k], 0x55);
}

static void bad(const char *s, const char *why_want)
{
    bad_n(s, strlen(s), why_want);
}

static void test_simple(void **state)
{
    (void)state;
    ok("a", "\a", 1, 1);
    ok("b", "\b", 1, 1);
    ok("f", "\f", 1, 1);
    ok("n", "\n", 1, 1);
    ok("r", "\r", 1, 1);
    ok("t", "\t", 1, 1);
    ok("v", "\v", 1, 1);
    ok("\\", "\\", 1, 1);
    ok("\"", "\"", 1, 1);
    ok("nrest", "\n", 1, 1); /* only the one sequence */
}

static void test_hex_and_octal(void **state)
{
    (void)state;
    ok("x41", "A", 1, 3);
    ok("xfF", "\xff", 1, 3); /* a raw byte, not UTF-8 */
    ok("x00", "\0", 1, 3);
    ok("x4142", "A", 1, 3);
    ok("101", "A", 1, 3);
    ok("000", "\0", 1, 3);
    ok("377", "\xff", 1, 3);
    ok("1234", "S", 1, 3);
    bad("xZZ", "invalid \\x escape");
    bad("x4", "invalid \\x escape");
    bad("x", "invalid \\x escape");
    bad("400", "invalid octal escape"); /* > 255 */
    bad("12", "invalid octal escape");
    bad("18", "invalid octal escape");
    bad("7", "invalid octal escape");
}

static void test_unicode(void **state)
{
    (void)state;
    ok("u00e9", "\xc3\xa9", 2, 5);
    ok("u0041", "A", 1, 5);
    ok("u20AC", "\xe2\x82\xac", 3, 5);
    ok("uFFFF", "\xef\xbf\xbf", 3, 5);
    ok("U0001F600", "\xf0\x9f\x98\x80", 4, 9);
    ok("U0010FFFF", "\xf4\x8f\xbf\xbf", 4, 9);
    ok("u00e9zz", "\xc3\xa9", 2, 5);
    bad("ud800", "invalid unicode escape"); /* surrogates */
    bad("uDFFF", "invalid unicode escape");
    bad("U0000D800", "invalid unicode escape");
    bad("U00110000", "invalid unicode escape"); /* above U+10FFFF */
    bad("UFFFFFFFF", "invalid unicode escape");
    bad("u00e", "invalid unicode escape");
    bad("u00eg", "invalid unicode escape");
    bad("U0001F60", "invalid unicode escape");
}

static void test_rejected(void **state)
{
    (void)state;
    bad("q", "unknown escape");
    bad("'", "unknown escape"); /* only valid in rune literals */
    bad("8", "unknown escape");
    bad("`", "unknown escape");
    bad("", "unterminated escape");
    bad_n("\0", 1, "unknown escape");
}

/* Digits past n are not read even when the memory holds valid ones. */
static void test_bounds(void **state)
{
    (void)state;
    bad_n("x41", 2, "invalid \\x escape");
    bad_n("u00e9", 4, "invalid unicode escape");
    bad_n("101", 2, "invalid octal escape");
    bad_n("n", 0, "unterminated escape");
    /* decoding from the middle of a string */
    const char *s = "ab\\u00e9cd";
    char out[4];
    size_t i = 3;
    assert_int_equal(sl_go_unescape(s, strlen(s), &i, out, NULL), 2);
    assert_int_equal(i, 8);
    i = 9;
    assert_int_equal(sl_go_unescape(s, strlen(s), &i, out, NULL), SL_EINVAL); /* \d */
    assert_int_equal(i, 9);
}

/* Every \u value either decodes to the code point's UTF-8 or is a surrogate. */
static void test_all_bmp(void **state)
{
    (void)state;
    static const char hex[] = "0123456789abcdef";
    for (uint32_t cp = 0; cp <= 0xffff; cp++) {
        char s[6] = {'u', hex[cp >> 12], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15], hex[cp & 15]};
        char out[4];
        size_t i = 0;
        int len = sl_go_unescape(s, 5, &i, out, NULL);
        if (cp >= 0xd800 && cp <= 0xdfff) {
            assert_int_equal(len, SL_EINVAL);
            continue;
        }
        assert_int_equal(len, cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3);
        assert_int_equal(i, 5);
        uint32_t back = len == 1 ? (unsigned char)out[0]
                        : len == 2
                            ? ((out[0] & 0x1fu) << 6) | (out[1] & 0x3fu)
                            : ((out[0] & 0x0fu) << 12) | ((out[1] & 0x3fu) << 6) | (out[2] & 0x3fu);
        assert_int_equal(back, cp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),  cmocka_unit_test(test_hex_and_octal),
        cmocka_unit_test(test_unicode), cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_bounds),  cmocka_unit_test(test_all_bmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
