#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Included to reach both CRC implementations. */
#include "common/hash.c"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static uint32_t via_table(uint32_t crc, const void *p, size_t n)
{
    return ~crc32c_table(~crc, p, n);
}

#if defined(__x86_64__)
static uint32_t via_sse(uint32_t crc, const void *p, size_t n)
{
    return ~crc32c_sse42(~crc, p, n);
}
#endif

static void check_vectors(crc_fn f)
{
    assert_int_equal(f(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(f(0, "", 0), 0);
    assert_int_equal(f(0, "a", 1), 0xC1D04330u);
    /* RFC 3720 (iSCSI) B.4 test vectors. */
    unsigned char buf[48];
    memset(buf, 0, 32);
    assert_int_equal(f(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    assert_int_equal(f(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(f(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(f(0, buf, 32), 0x113FDB5Cu);
    /* Continuation equals one pass, at every split point and alignment. */
    for (int i = 0; i < 48; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    uint32_t whole = f(0, buf, 48);
    for (size_t split = 0; split <= 48; split++)
        assert_int_equal(f(f(0, buf, split), buf + split, 48 - split), whole);
}

static void test_table(void **state)
{
    (void)state;
    check_vectors(via_table);
}

static void test_sse42(void **state)
{
    (void)state;
#if defined(__x86_64__)
    if (!have_sse42())
        skip();
    check_vectors(via_sse);
#else
    skip();
#endif
}

static void test_public_and_paths_agree(void **state)
{
    (void)state;
    check_vectors(sl_crc32c);
    unsigned char data[1000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 9; off++) {
        for (size_t n = 0; n < 300; n += 13) {
            uint32_t t = via_table(0, data + off, n);
            assert_int_equal(sl_crc32c(0, data + off, n), t);
#if defined(__x86_64__)
            if (have_sse42())
                assert_int_equal(via_sse(0, data + off, n), t);
#endif
        }
    }
}

static void test_xxh3(void **state)
{
    (void)state;
    /* Published XXH3-64 (seed 0) values. */
    assert_true(sl_xxh3("", 0) == 0x2D06800538D394C2ULL);
    assert_true(sl_xxh3("a", 1) == XXH3_64bits("a", 1));
    assert_true(sl_xxh3("abc", 3) != sl_xxh3("abd", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_sse42),
        cmocka_unit_test(test_public_and_paths_agree),
        cmocka_unit_test(test_xxh3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
