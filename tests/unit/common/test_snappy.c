/* Tests for common/snappy.c: round trips, corrupt and truncated blocks, the
 * max_out guard and the declared-length ratio guard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/snappy.h"

static char *sample(size_t n)
{
    char *p = sl_malloc(n ? n : 1);
    uint64_t x = 88172645463325252ull;
    for (size_t k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[k] = (k % 61 == 60) ? '\n' : (char)("abcdefgh level=info msg=ok"[x % 26]);
    }
    return p;
}

static void test_round_trips(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 100, 70000, 1 << 20};
    for (size_t s = 0; s < SL_ARRAY_LEN(sizes); s++) {
        size_t n = sizes[s];
        char *in = sample(n);
        struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
        assert_int_equal(sl_snappy_compress(&z, in, n), 0);
        sl_buf_append_str(&out, "keep");
        assert_int_equal(sl_snappy_decompress(&out, z.data, z.len, n), 0);
        assert_int_equal(out.len, n + 4);
        assert_memory_equal(out.data, "keep", 4);
        if (n) {
            assert_memory_equal(out.data + 4, in, n);
            /* one byte less room: refused, out unchanged */
            assert_int_equal(sl_snappy_decompress(&out, z.data, z.len, n - 1), SL_ETOOBIG);
            assert_int_equal(out.len, n + 4);
        }
        sl_buf_release(&z);
        sl_buf_release(&out);
        sl_free(in);
    }
}

static void test_known_block(void **state)
{
    (void)state;
    /* Block format: varint length 11, literal tag (len-1)<<2 = 0x28, "hello world". */
    static const char blk[] = "\x0b\x28hello world";
    struct sl_buf out = SL_BUF_INIT;
    assert_int_equal(sl_snappy_decompress(&out, blk, sizeof(blk) - 1, 100), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    sl_buf_release(&out);
}

static void test_corrupt(void **state)
{
    (void)state;
    char *in = sample(5000);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    assert_int_equal(sl_snappy_compress(&z, in, 5000), 0);
    /* truncated */
    for (size_t cut = 0; cut < z.len; cut += z.len / 7 + 1)
        assert_int_equal(sl_snappy_decompress(&out, z.data, cut, 1 << 20), SL_ECORRUPT);
    assert_int_equal(out.len, 0);
    /* a framed-format stream (starts with the 0xff stream identifier) is not a block */
    static const char framed[] = "\xff\x06\x00\x00sNaPpY";
    assert_int_equal(sl_snappy_decompress(&out, framed, sizeof(framed) - 1, 1 << 20), SL_ECORRUPT);
    /* a header longer than ten varint bytes */
    static const char badlen[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    assert_int_not_equal(sl_snappy_decompress(&out, badlen, sizeof(badlen) - 1, 1 << 20), 0);
    assert_int_equal(out.len, 0);
    sl_buf_release(&z);
    sl_buf_release(&out);
    sl_free(in);
}

static void test_declared_length_lie(void **state)
{
    (void)state;
    /* Declares 200 MB in a 5-byte body: refused before any allocation. */
    static const char lie[] = "\x80\x84\xaf\x5f\x00";
    struct sl_buf out = SL_BUF_INIT;
    assert_int_equal(sl_snappy_decompress(&out, lie, sizeof(lie) - 1, 256u << 20), SL_ECORRUPT);
    assert_int_equal(out.cap, 0);
    /* but a real, highly compressible block of 1 MiB passes the ratio guard */
    char *zeros = sl_calloc(1, 1 << 20);
    struct sl_buf z = SL_BUF_INIT;
    assert_int_equal(sl_snappy_compress(&z, zeros, 1 << 20), 0);
    assert_int_equal(sl_snappy_decompress(&out, z.data, z.len, 1 << 20), 0);
    assert_int_equal(out.len, 1 << 20);
    sl_free(zeros);
    sl_buf_release(&z);
    sl_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_known_block),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_declared_length_lie),
    };
    return cmocka_run_group_tests_name("snappy", tests, NULL, NULL);
}
