/* Tests for the reusable zstd context of common/compress.c
 * (sl_zstd_cctx_*): one context over many inputs of different sizes and
 * levels gives the same frames as sl_zstd_compress, which round trip, and
 * it appends to out like every other compressor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/err.h"
#include "common/mem.h"

/* Log-like data, different for each seed. */
static char *sample(size_t n, uint64_t seed)
{
    char *p = sl_malloc(n ? n : 1);
    uint64_t x = 88172645463325252ull ^ seed;
    for (size_t k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[k] = (k % 61 == 60) ? '\n' : (char)("abcdefgh level=info msg=ok"[x % 26]);
    }
    return p;
}

static void test_reuse_matches_one_shot(void **state)
{
    (void)state;
    /* big, small, empty, big again: state from one call must not leak into
     * the next */
    size_t sizes[] = {1 << 20, 100, 0, 70000, 1, (1 << 20) + 12345};
    int levels[] = {0, 1, 3, 1, -5, 0};
    struct sl_zstd_cctx *c = sl_zstd_cctx_new();
    for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
        char *in = sample(sizes[i], i);
        struct sl_buf got = SL_BUF_INIT, want = SL_BUF_INIT, back = SL_BUF_INIT;
        assert_int_equal(sl_zstd_compress_cctx(c, &got, in, sizes[i], levels[i]), 0);
        assert_int_equal(sl_zstd_compress(&want, in, sizes[i], levels[i]), 0);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, got.len);
        assert_int_equal(sl_zstd_decompress(&back, got.data, got.len, sizes[i]), 0);
        assert_int_equal(back.len, sizes[i]);
        if (sizes[i])
            assert_memory_equal(back.data, in, sizes[i]);
        sl_buf_release(&got);
        sl_buf_release(&want);
        sl_buf_release(&back);
        sl_free(in);
    }
    sl_zstd_cctx_free(c);
}

static void test_appends_and_errors(void **state)
{
    (void)state;
    struct sl_zstd_cctx *c = sl_zstd_cctx_new();
    char *in = sample(5000, 7);
    struct sl_buf out = SL_BUF_INIT, back = SL_BUF_INIT;
    sl_buf_append_str(&out, "head");
    assert_int_equal(sl_zstd_compress_cctx(c, &out, in, 5000, 1), 0);
    assert_true(out.len > 4);
    assert_memory_equal(out.data, "head", 4);
    assert_int_equal(sl_zstd_decompress(&back, out.data + 4, out.len - 4, 5000), 0);
    assert_int_equal(back.len, 5000);
    assert_memory_equal(back.data, in, 5000);
    /* a level zstd does not have: refused, out untouched, context still good */
    size_t len = out.len;
    assert_int_equal(sl_zstd_compress_cctx(c, &out, in, 5000, 1000), SL_EINVAL);
    assert_int_equal(out.len, len);
    sl_buf_clear(&out);
    assert_int_equal(sl_zstd_compress_cctx(c, &out, in, 5000, 1), 0);
    sl_buf_clear(&back);
    assert_int_equal(sl_zstd_decompress(&back, out.data, out.len, 5000), 0);
    assert_memory_equal(back.data, in, 5000);
    sl_buf_release(&out);
    sl_buf_release(&back);
    sl_free(in);
    sl_zstd_cctx_free(c);
    sl_zstd_cctx_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_matches_one_shot),
        cmocka_unit_test(test_appends_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
