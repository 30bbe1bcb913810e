/* Tests for common/compress.c: round trips, frames without a content size,
 * concatenation, corrupt and truncated input, and decompression bombs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/err.h"
#include "common/mem.h"

/* Log-like data: compressible but not trivially so. */
static char *sample(size_t n)
{
    char *p = sl_malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[k] = (k % 61 == 60) ? '\n' : (char)("abcdefgh level=info msg=ok"[x % 26]);
    }
    return p;
}

static void round_trip(enum sl_codec c, const char *in, size_t n, int level)
{
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    assert_int_equal(sl_compress(c, &z, in, n, level), 0);
    sl_buf_append_str(&out, "keep");
    assert_int_equal(sl_decompress(c, &out, z.data, z.len, n), 0);
    assert_int_equal(out.len, n + 4);
    assert_memory_equal(out.data, "keep", 4);
    if (n)
        assert_memory_equal(out.data + 4, in, n);
    /* one byte less room is a bomb, and leaves out as it was */
    if (n) {
        assert_int_equal(sl_decompress(c, &out, z.data, z.len, n - 1), SL_ETOOBIG);
        assert_int_equal(out.len, n + 4);
    }
    sl_buf_release(&z);
    sl_buf_release(&out);
}

static void test_round_trips(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 100, 70000, 1 << 20};
    int zlevels[] = {0, 1, 3, 19, -5};
    int glevels[] = {0, 1, 9};
    for (size_t s = 0; s < SL_ARRAY_LEN(sizes); s++) {
        char *in = sample(sizes[s] ? sizes[s] : 1);
        for (size_t l = 0; l < SL_ARRAY_LEN(zlevels); l++)
            round_trip(SL_CODEC_ZSTD, in, sizes[s], zlevels[l]);
        for (size_t l = 0; l < SL_ARRAY_LEN(glevels); l++)
            round_trip(SL_CODEC_GZIP, in, sizes[s], glevels[l]);
        round_trip(SL_CODEC_NONE, in, sizes[s], 0);
        sl_free(in);
    }
}

static void test_levels_and_names(void **state)
{
    (void)state;
    struct sl_buf z = SL_BUF_INIT;
    assert_int_equal(sl_zstd_compress(&z, "x", 1, 1000), SL_EINVAL);
    assert_int_equal(sl_gzip_compress(&z, "x", 1, 10), SL_EINVAL);
    assert_int_equal(sl_gzip_compress(&z, "x", 1, -1), SL_EINVAL);
    assert_int_equal(z.len, 0);
    sl_buf_release(&z);

    enum sl_codec c = SL_CODEC_GZIP;
    assert_int_equal(sl_codec_parse("zstd", 4, &c), 0);
    assert_int_equal(c, SL_CODEC_ZSTD);
    assert_int_equal(sl_codec_parse("GZip", 4, &c), 0);
    assert_int_equal(c, SL_CODEC_GZIP);
    assert_int_equal(sl_codec_parse("x-gzip", 6, &c), 0);
    assert_int_equal(c, SL_CODEC_GZIP);
    assert_int_equal(sl_codec_parse("identity", 8, &c), 0);
    assert_int_equal(c, SL_CODEC_NONE);
    c = SL_CODEC_ZSTD;
    assert_int_equal(sl_codec_parse("", 0, &c), 0);
    assert_int_equal(c, SL_CODEC_NONE);
    assert_int_equal(sl_codec_parse("none", 4, &c), 0);
    assert_int_equal(sl_codec_parse("zstdx", 5, &c), SL_EUNSUPP);
    assert_int_equal(sl_codec_parse("zstdx", 4, &c), 0); /* length-bounded */
    assert_int_equal(sl_codec_parse("br", 2, &c), SL_EUNSUPP);
    assert_int_equal(sl_codec_parse("deflate", 7, &c), SL_EUNSUPP);
    assert_string_equal(sl_codec_name(SL_CODEC_ZSTD), "zstd");
    assert_string_equal(sl_codec_name(SL_CODEC_GZIP), "gzip");
    assert_string_equal(sl_codec_name(SL_CODEC_NONE), "none");

    struct sl_buf out = SL_BUF_INIT;
    assert_int_equal(sl_decompress(SL_CODEC_NONE, &out, "abc", 3, 2), SL_ETOOBIG);
    assert_int_equal(sl_decompress(SL_CODEC_NONE, &out, "abc", 3, 3), 0);
    assert_int_equal(out.len, 3);
    sl_buf_release(&out);
}

/* A frame written by the streaming API without a content size, several
 * frames back to back, and a skippable frame. */
static void zstd_unknown_size(struct sl_buf *z, const char *in, size_t n)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
    size_t cap = ZSTD_compressBound(n) + 64;
    ZSTD_outBuffer ob = {sl_buf_reserve(z, cap), cap, 0};
    ZSTD_inBuffer ib = {in, n, 0};
    size_t r = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
    assert_int_equal(r, 0);
    sl_buf_commit(z, ob.pos);
    ZSTD_freeCCtx(cc);
}

static void test_zstd_streams(void **state)
{
    (void)state;
    size_t n = 3 << 20;
    char *in = sample(n);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    zstd_unknown_size(&z, in, n);
    assert_int_equal(ZSTD_getFrameContentSize(z.data, z.len), ZSTD_CONTENTSIZE_UNKNOWN);
    assert_int_equal(sl_zstd_decompress(&out, z.data, z.len, n), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, in, n);
    sl_buf_clear(&out);
    assert_int_equal(sl_zstd_decompress(&out, z.data, z.len, n - 1), SL_ETOOBIG);
    assert_int_equal(out.len, 0);

    /* concatenated: unknown-size frame + skippable frame + sized frame */
    static const char skippable[] = "\x50\x2a\x4d\x18\x03\x00\x00\x00xyz";
    sl_buf_append(&z, skippable, sizeof(skippable) - 1);
    assert_int_equal(sl_zstd_compress(&z, "tail", 4, 0), 0);
    assert_int_equal(sl_zstd_decompress(&out, z.data, z.len, n + 4), 0);
    assert_int_equal(out.len, n + 4);
    assert_memory_equal(out.data + n, "tail", 4);
    sl_buf_clear(&out);
    assert_int_equal(sl_zstd_decompress(&out, z.data, z.len, n + 3), SL_ETOOBIG);
    sl_buf_release(&z);
    sl_buf_release(&out);
    sl_free(in);
}

static void test_zstd_corrupt(void **state)
{
    (void)state;
    char *in = sample(200000);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    assert_int_equal(sl_zstd_compress(&z, in, 200000, 3), 0);
    assert_int_equal(sl_zstd_decompress(&out, "", 0, 100), SL_ECORRUPT);
    assert_int_equal(sl_zstd_decompress(&out, "not zstd at all", 15, 100), SL_ECORRUPT);
    /* every truncation */
    for (size_t k = 1; k < z.len; k += (k < 64 ? 1 : 997)) {
        sl_buf_clear(&out);
        if (sl_zstd_decompress(&out, z.data, k, 1 << 20) != SL_ECORRUPT)
            fail_msg("truncated at %zu accepted", k);
        assert_int_equal(out.len, 0);
    }
    /* trailing garbage after a complete frame */
    struct sl_buf g = SL_BUF_INIT;
    sl_buf_append(&g, z.data, z.len);
    sl_buf_append(&g, "junk", 4);
    assert_int_equal(sl_zstd_decompress(&out, g.data, g.len, 1 << 20), SL_ECORRUPT);
    /* a flipped byte in the payload of a checksummed frame: the checksum or
     * the entropy decoder notices */
    sl_buf_clear(&g);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    size_t cap = ZSTD_compressBound(200000);
    size_t r = ZSTD_compress2(cc, sl_buf_reserve(&g, cap), cap, in, 200000);
    assert_false(ZSTD_isError(r));
    sl_buf_commit(&g, r);
    ZSTD_freeCCtx(cc);
    assert_int_equal(sl_zstd_decompress(&out, g.data, g.len, 1 << 20), 0);
    sl_buf_clear(&out);
    g.data[g.len / 2] ^= 0x55;
    assert_int_equal(sl_zstd_decompress(&out, g.data, g.len, 1 << 20), SL_ECORRUPT);
    sl_buf_release(&g);
    sl_buf_release(&z);
    sl_buf_release(&out);
    sl_free(in);
}

static void test_zstd_bomb(void **state)
{
    (void)state;
    size_t n = 64 << 20;
    char *zeros = sl_calloc(1, n);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    /* sized frame: refused from the header */
    assert_int_equal(sl_zstd_compress(&z, zeros, n, 19), 0);
    assert_true(z.len < 8192);
    sl_buf_append_str(&out, "pre");
    assert_int_equal(sl_zstd_decompress(&out, z.data, z.len, 1 << 20), SL_ETOOBIG);
    assert_int_equal(out.len, 3);
    assert_true(out.cap < (2 << 20));
    /* unknown size: found while streaming, without filling memory */
    sl_buf_clear(&z);
    zstd_unknown_size(&z, zeros, n);
    assert_int_equal(sl_zstd_decompress(&out, z.data, z.len, 1 << 20), SL_ETOOBIG);
    assert_int_equal(out.len, 3);
    assert_true(out.cap < (4 << 20));
    sl_buf_release(&z);
    sl_buf_release(&out);
    sl_free(zeros);
}

/* ------------------------------------------------------------------ gzip */

static void test_gzip_members_and_zlib(void **state)
{
    (void)state;
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    assert_int_equal(sl_gzip_compress(&z, "hello ", 6, 0), 0);
    assert_int_equal((unsigned char)z.data[0], 0x1f);
    assert_int_equal((unsigned char)z.data[1], 0x8b);
    assert_int_equal(sl_gzip_compress(&z, "world", 5, 9), 0);
    assert_int_equal(sl_gzip_compress(&z, "", 0, 1), 0);
    assert_int_equal(sl_gzip_decompress(&out, z.data, z.len, 11), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    sl_buf_clear(&out);
    assert_int_equal(sl_gzip_decompress(&out, z.data, z.len, 10), SL_ETOOBIG);
    assert_int_equal(out.len, 0);

    /* zlib framing (what compress2 writes) is detected too */
    unsigned char zl[128];
    uLongf zlen = sizeof(zl);
    assert_int_equal(compress2(zl, &zlen, (const Bytef *)"zlib data", 9, 6), Z_OK);
    assert_int_equal(sl_gzip_decompress(&out, zl, zlen, 100), 0);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.data, "zlib data", 9);
    sl_buf_release(&z);
    sl_buf_release(&out);
}

static void test_gzip_corrupt(void **state)
{
    (void)state;
    char *in = sample(100000);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT, g = SL_BUF_INIT;
    assert_int_equal(sl_gzip_compress(&z, in, 100000, 6), 0);
    assert_int_equal(sl_gzip_decompress(&out, "", 0, 100), SL_ECORRUPT);
    assert_int_equal(sl_gzip_decompress(&out, "plain text body", 15, 100), SL_ECORRUPT);
    for (size_t k = 1; k < z.len; k += (k < 64 ? 1 : 499)) {
        if (sl_gzip_decompress(&out, z.data, k, 1 << 20) != SL_ECORRUPT)
            fail_msg("truncated at %zu accepted", k);
        assert_int_equal(out.len, 0);
    }
    /* trailing garbage after a member is not another member */
    sl_buf_append(&g, z.data, z.len);
    sl_buf_append(&g, "\0\0\0\0", 4);
    assert_int_equal(sl_gzip_decompress(&out, g.data, g.len, 1 << 20), SL_ECORRUPT);
    /* the CRC-32 in the trailer catches a changed byte */
    sl_buf_clear(&g);
    sl_buf_append(&g, z.data, z.len);
    g.data[g.len - 6] ^= 1;
    assert_int_equal(sl_gzip_decompress(&out, g.data, g.len, 1 << 20), SL_ECORRUPT);
    assert_int_equal(out.len, 0);
    sl_buf_release(&g);
    sl_buf_release(&z);
    sl_buf_release(&out);
    sl_free(in);
}

static void test_gzip_bomb(void **state)
{
    (void)state;
    size_t n = 32 << 20;
    char *zeros = sl_calloc(1, n);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    assert_int_equal(sl_gzip_compress(&z, zeros, n, 9), 0);
    assert_true(z.len < 64 * 1024);
    assert_int_equal(sl_gzip_decompress(&out, z.data, z.len, 100000), SL_ETOOBIG);
    assert_int_equal(out.len, 0);
    assert_true(out.cap < (1 << 20));
    assert_int_equal(sl_gzip_decompress(&out, z.data, z.len, n), 0);
    assert_int_equal(out.len, n);
    sl_buf_release(&z);
    sl_buf_release(&out);
    sl_free(zeros);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),  cmocka_unit_test(test_levels_and_names),
        cmocka_unit_test(test_zstd_streams), cmocka_unit_test(test_zstd_corrupt),
        cmocka_unit_test(test_zstd_bomb),    cmocka_unit_test(test_gzip_members_and_zlib),
        cmocka_unit_test(test_gzip_corrupt), cmocka_unit_test(test_gzip_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
