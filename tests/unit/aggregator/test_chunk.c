/* Chunk format: round trips with both codecs, metadata, time skipping
 * without decompression, corruption detected everywhere, key layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/chunk/chunk.h"
#include "common/err.h"
#include "common/format.h"
#include "common/labels.h"
#include "common/mem.h"

struct got {
    int64_t ts[64];
    char line[64][32];
    size_t n_meta[64];
    int n;
};

static int collect(const struct sl_chunk_entry *e, void *ud)
{
    struct got *g = ud;
    assert_true(g->n < 64);
    g->ts[g->n] = e->ts;
    snprintf(g->line[g->n], 32, "%.*s", (int)e->line.len, e->line.ptr);
    g->n_meta[g->n] = e->n_meta;
    g->n++;
    return 0;
}

/* Three blocks of 10 entries: [1000, 1009], [2000, 2009], [3000, 3009]. */
static void build(enum sl_codec codec, bool meta, struct sl_buf *obj, struct sl_chunk_meta *m)
{
    struct sl_chunk_writer w;
    sl_chunk_writer_init(&w, codec, 0, SL_BYTES_LIT("{app=\"a\"}"));
    struct sl_label md[1] = {{SL_BYTES_LIT("trace_id"), SL_BYTES_LIT("abc")}};
    for (int b = 0; b < 3; b++) {
        struct sl_buf raw = SL_BUF_INIT;
        int64_t base = 1000 * (b + 1), prev = base;
        for (int i = 0; i < 10; i++) {
            char line[32];
            int n = snprintf(line, sizeof line, "line %d.%d", b, i);
            sl_chunk_payload_put(&raw, &prev, base + i, sl_bytes(line, (size_t)n), meta, md,
                                 (size_t)(i % 2));
        }
        struct sl_chunk_block_info bi = {.entries = 10,
                                         .min_ts = base,
                                         .max_ts = base + 9,
                                         .flags = meta ? SL_CHUNK_BLOCK_META : 0};
        assert_int_equal(sl_chunk_writer_add_raw(&w, &bi, raw.data, raw.len), 0);
        sl_buf_release(&raw);
    }
    assert_int_equal(sl_chunk_writer_finish(&w, obj, m), 0);
}

static void roundtrip(enum sl_codec codec, bool meta)
{
    struct sl_buf obj = SL_BUF_INIT;
    struct sl_chunk_meta m;
    build(codec, meta, &obj, &m);
    assert_int_equal(m.from, 1000);
    assert_int_equal(m.through, 3009);
    assert_int_equal(m.entries, 30);
    assert_int_equal(m.nblocks, 3);
    struct sl_chunk_reader r;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
    assert_int_equal(r.codec, codec);
    assert_true(sl_bytes_eq(r.labels, SL_BYTES_LIT("{app=\"a\"}")));
    struct got g = {0};
    assert_int_equal(sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, collect, &g), 0);
    assert_int_equal(g.n, 30);
    assert_int_equal(g.ts[0], 1000);
    assert_string_equal(g.line[0], "line 0.0");
    assert_int_equal(g.ts[29], 3009);
    assert_string_equal(g.line[29], "line 2.9");
    assert_int_equal(g.n_meta[1], meta ? 1 : 0);
    sl_buf_release(&obj);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip(SL_CODEC_ZSTD, false);
    roundtrip(SL_CODEC_GZIP, false);
    roundtrip(SL_CODEC_NONE, false);
    roundtrip(SL_CODEC_ZSTD, true);
}

static int meta_pairs(const struct sl_chunk_entry *e, void *ud)
{
    int *n = ud;
    size_t pos = 0;
    struct sl_bytes k, v;
    int rc;
    while ((rc = sl_chunk_meta_next(e, &pos, &k, &v)) == 1) {
        assert_true(sl_bytes_eq(k, SL_BYTES_LIT("trace_id")));
        assert_true(sl_bytes_eq(v, SL_BYTES_LIT("abc")));
        (*n)++;
    }
    assert_int_equal(rc, 0);
    return 0;
}

static void test_metadata(void **state)
{
    (void)state;
    struct sl_buf obj = SL_BUF_INIT;
    build(SL_CODEC_ZSTD, true, &obj, NULL);
    struct sl_chunk_reader r;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
    int n = 0;
    assert_int_equal(sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, meta_pairs, &n), 0);
    assert_int_equal(n, 15);
    sl_buf_release(&obj);
}

static void test_skip_blocks(void **state)
{
    (void)state;
    struct sl_buf obj = SL_BUF_INIT;
    build(SL_CODEC_ZSTD, false, &obj, NULL);
    struct sl_chunk_reader r;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
    /* Damage the payload of the first and last blocks: a scan of the middle
     * block must not touch them. */
    struct sl_chunk_block_info bi;
    sl_chunk_reader_block(&r, 0, &bi);
    assert_int_equal(bi.min_ts, 1000);
    size_t first = SL_CHUNK_HEADER_SIZE + r.labels.len + SL_CHUNK_BLOCK_HEADER_SIZE;
    obj.data[first + 2] ^= 0x55;
    struct got g = {0};
    assert_int_equal(sl_chunk_reader_scan(&r, 2003, 2005, collect, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.ts[0], 2003);
    assert_int_equal(g.ts[1], 2004);
    assert_int_equal(r.blocks_skipped, 2);
    assert_int_equal(r.blocks_read, 1);
    /* the damaged block is found when read */
    memset(&g, 0, sizeof g);
    assert_int_equal(sl_chunk_reader_scan(&r, 1000, 1001, collect, &g), SL_ECORRUPT);
    sl_buf_release(&obj);
}

static int count_entries(const struct sl_chunk_entry *e, void *ud)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

static void test_corruption(void **state)
{
    (void)state;
    struct sl_buf obj = SL_BUF_INIT;
    build(SL_CODEC_ZSTD, false, &obj, NULL);
    /* Every single-byte change is either refused or read as the same 30
     * entries (only reserved bytes may change unnoticed). */
    for (size_t i = 0; i < obj.len; i++) {
        obj.data[i] ^= 0x01;
        struct sl_chunk_reader r;
        int rc = sl_chunk_reader_open(&r, obj.data, obj.len);
        if (rc == 0) {
            int n = 0;
            rc = sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, count_entries, &n);
            if (rc == 0)
                assert_int_equal(n, 30);
        }
        obj.data[i] ^= 0x01;
    }
    struct sl_chunk_reader r;
    for (size_t n = 0; n < obj.len; n += 7)
        assert_int_not_equal(sl_chunk_reader_open(&r, obj.data, n), 0);
    obj.data[4] = SL_CHUNK_VERSION + 1;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), SL_EUNSUPP);
    sl_buf_release(&obj);
}

static void test_writer_errors_and_key(void **state)
{
    (void)state;
    struct sl_chunk_writer w;
    sl_chunk_writer_init(&w, SL_CODEC_ZSTD, 0, SL_BYTES_LIT("{}"));
    struct sl_chunk_block_info bi = {.entries = 0, .min_ts = 1, .max_ts = 2};
    assert_int_equal(sl_chunk_writer_add_raw(&w, &bi, "x", 1), SL_EINVAL);
    struct sl_buf out = SL_BUF_INIT;
    assert_int_equal(sl_chunk_writer_finish(&w, &out, NULL), SL_EINVAL);
    struct sl_chunk_meta m = {.from = 5, .through = 1700000000000000000LL, .crc = 0xabc};
    sl_chunk_key(&out, SL_BYTES_LIT("team-a"), 0x1234, &m);
    assert_string_equal(out.data, "chunks/team-a/0000000000001234/5-1700000000000000000-00000abc");
    sl_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_skip_blocks),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_writer_errors_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
