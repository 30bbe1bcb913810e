/* Flusher: chunks and index files land in a filesystem store and read back
 * to the same entries; memory is freed only after both; a failing store is
 * retried until it works; WAL segment files are purged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/chunk/chunk.h"
#include "aggregator/flush/flush.h"
#include "aggregator/index/index.h"
#include "aggregator/ingester/ingester.h"
#include "aggregator/store/store.h"
#include "aggregator/wal/wal.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/labels.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/timeutil.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sl-test-flush-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static const int64_t T0 = 1700000000LL * 1000000000LL;

static void push(struct sl_ingester *ing, const char *labels, int64_t ts, const char *line)
{
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_labels ls;
    assert_int_equal(sl_labels_parse(&a, labels, strlen(labels), &ls, NULL), 0);
    sl_labels_sort(&ls);
    struct sl_batch_entry e = {.ts_ns = ts, .line = sl_bytes_str(line)};
    struct sl_push_result res = {0};
    sl_ingester_push(ing, SL_BYTES_LIT("t1"), &ls, &e, 1, NULL, &res);
    assert_int_equal(res.accepted, 1);
    sl_arena_release(&a);
}

struct keys {
    char k[32][160];
    int n;
};

static int on_key(const char *key, uint64_t size, void *ud)
{
    (void)size;
    struct keys *k = ud;
    if (k->n < 32)
        snprintf(k->k[k->n++], 160, "%s", key);
    return 0;
}

struct count {
    int entries;
    int64_t last;
};

static int count_entry(const struct sl_chunk_entry *e, void *ud)
{
    struct count *c = ud;
    assert_true(e->ts >= c->last);
    c->last = e->ts;
    c->entries++;
    return 0;
}

static int append_line(const struct sl_chunk_entry *e, void *ud)
{
    sl_buf_appendf(ud, "%lld ", (long long)e->ts);
    sl_buf_append(ud, e->line.ptr, e->line.len);
    sl_buf_append_char(ud, '\n');
    return 0;
}

static int on_series(const struct sl_labels *ls, uint64_t fp, const struct sl_index_chunk_ref *refs,
                     size_t n, void *ud)
{
    (void)ls, (void)fp, (void)refs;
    *(size_t *)ud += n;
    return 0;
}

static struct sl_store *open_store(void)
{
    char sdir[128];
    snprintf(sdir, sizeof sdir, "%s/store", dir);
    struct sl_store_opts so = {.backend = "filesystem", .fs_dir = sdir};
    struct sl_store *st;
    assert_int_equal(sl_store_open(&so, NULL, &st, NULL), 0);
    return st;
}

static void test_flush_roundtrip(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_ingester_opts io = {.block_size = 512, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, m);
    for (int i = 0; i < 200; i++) {
        char line[64];
        snprintf(line, sizeof line, "GET /api/items/%d 200 %dms", i, i % 17);
        push(ing, "{app=\"api\"}", T0 + i, line);
        push(ing, "{app=\"web\"}", T0 + i, line);
    }
    assert_int_equal(sl_ingester_streams(ing), 2);
    struct sl_store *st = open_store();
    struct sl_flusher_opts fo = {.ing = ing,
                                 .store = st,
                                 .metrics = m,
                                 .codec = SL_CODEC_ZSTD,
                                 .check_period_ns = 3600 * SL_NS_PER_SEC,
                                 .index_upload_period_ns = 3600 * SL_NS_PER_SEC,
                                 .concurrency = 2,
                                 .writer = "test"};
    struct sl_flusher *f;
    assert_int_equal(sl_flusher_start(&fo, &f), 0);
    assert_int_equal(sl_flusher_flush(f, 10 * SL_NS_PER_SEC), 0);
    assert_int_equal(sl_ingester_streams(ing), 0); /* freed once stored and indexed */

    struct keys k = {0};
    assert_int_equal(sl_store_list(st, "chunks/t1/", on_key, &k, NULL), 0);
    assert_int_equal(k.n, 2);
    int total = 0;
    for (int i = 0; i < k.n; i++) {
        struct sl_buf obj = SL_BUF_INIT;
        assert_int_equal(sl_store_get(st, k.k[i], &obj, NULL), 0);
        struct sl_chunk_reader r;
        assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
        assert_true(r.nblocks > 1);
        struct count c = {0, INT64_MIN};
        assert_int_equal(sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, count_entry, &c), 0);
        total += c.entries;
        sl_buf_release(&obj);
    }
    assert_int_equal(total, 400);

    memset(&k, 0, sizeof k);
    struct sl_buf prefix = SL_BUF_INIT;
    sl_index_prefix(&prefix, sl_index_day(T0), SL_BYTES_LIT("t1"));
    assert_int_equal(sl_store_list(st, prefix.data, on_key, &k, NULL), 0);
    assert_int_equal(k.n, 1);
    assert_non_null(strstr(k.k[0], "/test-"));
    struct sl_buf idx = SL_BUF_INIT;
    assert_int_equal(sl_store_get(st, k.k[0], &idx, NULL), 0);
    struct sl_index_reader *ir;
    assert_int_equal(sl_index_reader_open_mem(idx.data, idx.len, &ir), 0);
    assert_int_equal(sl_index_reader_series(ir), 2);
    size_t refs = 0;
    assert_int_equal(
        sl_index_reader_select(ir, NULL, 0, NULL, NULL, T0, T0 + 1000, on_series, &refs), 0);
    assert_int_equal(refs, 2);
    sl_index_reader_close(ir);

    /* a second flush with nothing new writes nothing */
    assert_int_equal(sl_flusher_flush(f, 10 * SL_NS_PER_SEC), 0);
    memset(&k, 0, sizeof k);
    assert_int_equal(sl_store_list(st, "chunks/", on_key, &k, NULL), 0);
    assert_int_equal(k.n, 2);

    struct sl_buf r = SL_BUF_INIT;
    sl_metrics_render(m, &r);
    assert_non_null(strstr(r.data, "sluice_aggregator_chunks_flushed_total 2"));
    sl_buf_release(&r);
    sl_buf_release(&idx);
    sl_buf_release(&prefix);
    sl_flusher_stop(f);
    sl_store_close(st);
    sl_ingester_free(ing);
    sl_metrics_free(m);
}

static void test_flush_retry(void **state)
{
    (void)state;
    struct sl_ingester_opts io = {.block_size = 4096, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, NULL);
    push(ing, "{app=\"api\"}", T0, "one");
    push(ing, "{app=\"api\"}", T0 + 1, "two");
    struct sl_store *st = open_store();
    /* a file where the chunks directory must go: every chunk put fails */
    char block[128];
    snprintf(block, sizeof block, "%s/store/chunks", dir);
    FILE *fp = fopen(block, "w");
    assert_non_null(fp);
    fclose(fp);
    struct sl_flusher_opts fo = {.ing = ing,
                                 .store = st,
                                 .codec = SL_CODEC_GZIP,
                                 .check_period_ns = 3600 * SL_NS_PER_SEC,
                                 .index_upload_period_ns = 3600 * SL_NS_PER_SEC,
                                 .writer = "test"};
    struct sl_flusher *f;
    assert_int_equal(sl_flusher_start(&fo, &f), 0);
    assert_int_equal(sl_flusher_flush(f, 700 * SL_NS_PER_MS), SL_ETIMEDOUT);
    assert_int_equal(sl_ingester_streams(ing), 1); /* still in memory */
    unlink(block);
    assert_int_equal(sl_flusher_flush(f, 20 * SL_NS_PER_SEC), 0);
    assert_int_equal(sl_ingester_streams(ing), 0);
    struct keys k = {0};
    assert_int_equal(sl_store_list(st, "chunks/t1/", on_key, &k, NULL), 0);
    assert_int_equal(k.n, 1);
    struct sl_buf obj = SL_BUF_INIT;
    assert_int_equal(sl_store_get(st, k.k[0], &obj, NULL), 0);
    struct sl_chunk_reader r;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
    assert_int_equal(r.codec, SL_CODEC_GZIP);
    sl_buf_release(&obj);
    sl_flusher_stop(f);
    sl_store_close(st);
    sl_ingester_free(ing);
}

static void test_wal_purge(void **state)
{
    (void)state;
    for (int i = 1; i <= 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s/%016x.wal", dir, i);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    size_t removed = 0;
    assert_int_equal(sl_wal_purge(dir, 3, &removed), 0);
    assert_int_equal(removed, 2);
    char p[160];
    snprintf(p, sizeof p, "%s/%016x.wal", dir, 3);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/%016x.wal", dir, 1);
    assert_int_not_equal(access(p, F_OK), 0);
    assert_int_equal(sl_wal_purge(dir, UINT64_MAX, &removed), 0);
    assert_int_equal(removed, 1);
}

/* Pushes the same lines to a fresh ingester and flushes them at level;
 * returns the chunk object's size and appends its lines (one per entry) to
 * lines. */
static size_t flush_at_level(int level, size_t stored_block_size, struct sl_buf *lines,
                             struct sl_buf *metrics, uint32_t *nblocks)
{
    struct sl_metrics *m = sl_metrics_new();
    struct sl_ingester_opts io = {.block_size = 16384, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, m);
    uint64_t x = 42;
    for (int i = 0; i < 3000; i++) {
        char line[160];
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(line, sizeof line,
                 "level=info msg=\"request served\" path=/api/v1/items/%u status=%u "
                 "duration_ms=%u user=%u region=eu-west-%u",
                 (unsigned)(x >> 40) % 5000, 200 + (unsigned)(x >> 20) % 3 * 100,
                 (unsigned)(x >> 8) % 900, (unsigned)(x >> 33) % 100000, (unsigned)(x >> 50) % 3);
        push(ing, "{app=\"api\"}", T0 + i * 1000, line);
    }
    struct sl_store *st = open_store();
    struct sl_flusher_opts fo = {.ing = ing,
                                 .store = st,
                                 .metrics = m,
                                 .codec = SL_CODEC_ZSTD,
                                 .level = level,
                                 .stored_block_size = stored_block_size,
                                 .check_period_ns = 3600 * SL_NS_PER_SEC,
                                 .index_upload_period_ns = 3600 * SL_NS_PER_SEC,
                                 .writer = "test"};
    struct sl_flusher *f;
    assert_int_equal(sl_flusher_start(&fo, &f), 0);
    assert_int_equal(sl_flusher_flush(f, 20 * SL_NS_PER_SEC), 0);
    struct keys k = {0};
    assert_int_equal(sl_store_list(st, "chunks/t1/", on_key, &k, NULL), 0);
    assert_int_equal(k.n, 1);
    struct sl_buf obj = SL_BUF_INIT;
    assert_int_equal(sl_store_get(st, k.k[0], &obj, NULL), 0);
    struct sl_chunk_reader r;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
    assert_int_equal(r.codec, SL_CODEC_ZSTD);
    *nblocks = r.nblocks;
    /* every block's bounds hold its entries: a scan of a sub-range skips */
    struct count sub = {0, INT64_MIN};
    assert_int_equal(
        sl_chunk_reader_scan(&r, T0 + 1000 * 1000, T0 + 1000 * 1100, count_entry, &sub), 0);
    assert_int_equal(sub.entries, 100);
    assert_true(r.blocks_skipped > 0);
    assert_int_equal(sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, append_line, lines), 0);
    size_t size = obj.len;
    sl_metrics_render(m, metrics);
    sl_buf_release(&obj);
    sl_flusher_stop(f);
    sl_store_close(st);
    sl_ingester_free(ing);
    sl_metrics_free(m);
    /* a fresh store for the next call */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/store'", dir);
    assert_int_equal(system(cmd), 0);
    return size;
}

/* Chunks are recompressed at the configured level: the same entries come
 * back, in fewer bytes than the ingester's level-1 blocks (level 1 stores
 * those as they are). */
static void test_flush_level(void **state)
{
    (void)state;
    struct sl_buf l1 = SL_BUF_INIT, l9 = SL_BUF_INIT, m1 = SL_BUF_INIT, m9 = SL_BUF_INIT;
    uint32_t n1, n9, ndef, njoined;
    size_t z1 = flush_at_level(1, 65536, &l1, &m1, &n1); /* level 1: blocks copied */
    size_t z9 = flush_at_level(9, 0, &l9, &m9, &n9);
    size_t zdef = flush_at_level(0, 0, &l9, &m9, &ndef); /* 0: the default, level 9 */
    assert_int_equal(l1.len * 2, l9.len);
    assert_memory_equal(l1.data, l9.data, l1.len);
    assert_memory_equal(l1.data, l9.data + l1.len, l1.len);
    assert_true(z9 < z1 * 95 / 100); /* ~9% on these lines */
    assert_true(n1 > 8);             /* the ingester's 16 KiB blocks */
    assert_int_equal(n9, n1);
    assert_int_equal(ndef, n1);
    /* joined into 64 KiB blocks: the same entries and timestamps */
    struct sl_buf lj = SL_BUF_INIT, mj = SL_BUF_INIT;
    size_t zj = flush_at_level(9, 65536, &lj, &mj, &njoined);
    assert_int_equal(lj.len, l1.len);
    assert_memory_equal(lj.data, l1.data, l1.len);
    assert_true(njoined <= n1 / 4 + 1 && njoined < n1);
    assert_true(zj <= z9);
    sl_buf_release(&lj);
    sl_buf_release(&mj);
    assert_int_equal(zdef, z9);
    /* raw bytes stored: every entry's line plus its two varints */
    char *p = strstr(m9.data, "\nsluice_aggregator_chunk_stored_raw_bytes_total ");
    assert_non_null(p);
    double raw = strtod(p + strlen("\nsluice_aggregator_chunk_stored_raw_bytes_total "), NULL);
    /* l1 holds per entry a 19-digit timestamp, a space and a newline */
    double lines_len = (double)l1.len - 3000 * 21;
    assert_true(raw > lines_len + 3000 * 2 && raw < lines_len + 3000 * 5);
    assert_non_null(strstr(m9.data, "sluice_aggregator_flush_compress_cpu_seconds_total "));
    sl_buf_release(&l1);
    sl_buf_release(&l9);
    sl_buf_release(&m1);
    sl_buf_release(&m9);
}

static int count_in(const struct sl_chunk_entry *e, void *ud)
{
    (void)e;
    (*(int *)ud)++;
    return 0;
}

/* Blocks that overlap in time (out-of-order entries) are not joined: every
 * entry comes back and a time-range scan finds each one. */
static void test_flush_overlap_not_joined(void **state)
{
    (void)state;
    struct sl_ingester_opts io = {.block_size = 1024, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, NULL);
    char line[64];
    for (int i = 0; i < 100; i++) { /* ts 1000..1099 (+T0), several blocks */
        snprintf(line, sizeof line, "in order entry number %04d of the first run", i);
        push(ing, "{app=\"api\"}", T0 + 1000 + i, line);
    }
    for (int i = 0; i < 100; i++) { /* ts 500..599: older, within the window */
        snprintf(line, sizeof line, "late entry number %04d of the second run", i);
        push(ing, "{app=\"api\"}", T0 + 500 + i, line);
    }
    struct sl_store *st = open_store();
    struct sl_flusher_opts fo = {.ing = ing,
                                 .store = st,
                                 .codec = SL_CODEC_ZSTD,
                                 .level = 3,
                                 .stored_block_size = 1 << 20,
                                 .check_period_ns = 3600 * SL_NS_PER_SEC,
                                 .index_upload_period_ns = 3600 * SL_NS_PER_SEC,
                                 .writer = "test"};
    struct sl_flusher *f;
    assert_int_equal(sl_flusher_start(&fo, &f), 0);
    assert_int_equal(sl_flusher_flush(f, 20 * SL_NS_PER_SEC), 0);
    struct keys k = {0};
    assert_int_equal(sl_store_list(st, "chunks/t1/", on_key, &k, NULL), 0);
    int total = 0, late = 0, early = 0;
    uint32_t blocks = 0;
    for (int c = 0; c < k.n; c++) {
        struct sl_buf obj = SL_BUF_INIT;
        assert_int_equal(sl_store_get(st, k.k[c], &obj, NULL), 0);
        struct sl_chunk_reader r;
        assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
        blocks += r.nblocks;
        for (uint32_t i = 1; i < r.nblocks; i++) { /* joined only where in order */
            struct sl_chunk_block_info a, b;
            sl_chunk_reader_block(&r, i - 1, &a);
            sl_chunk_reader_block(&r, i, &b);
            assert_true(b.min_ts < a.max_ts);
        }
        assert_int_equal(sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, count_in, &total), 0);
        assert_int_equal(sl_chunk_reader_scan(&r, T0 + 500, T0 + 600, count_in, &late), 0);
        assert_int_equal(sl_chunk_reader_scan(&r, T0 + 1000, T0 + 1100, count_in, &early), 0);
        sl_buf_release(&obj);
    }
    assert_true(blocks >= 2);
    assert_int_equal(total, 200);
    assert_int_equal(late, 100);
    assert_int_equal(early, 100);
    sl_flusher_stop(f);
    sl_store_close(st);
    sl_ingester_free(ing);
}

/* What a timed-out flush left behind is reported; a bounded stop ends the
 * threads and frees the flusher. */
static void test_pending_and_stop_within(void **state)
{
    (void)state;
    struct sl_ingester_opts io = {.block_size = 4096, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, NULL);
    push(ing, "{app=\"api\"}", T0 + 5, "one");
    push(ing, "{app=\"api\"}", T0 + 6, "two");
    push(ing, "{app=\"web\"}", T0 + 7, "three");
    struct sl_store *st = open_store();
    char block[128];
    snprintf(block, sizeof block, "%s/store/chunks", dir);
    FILE *fp = fopen(block, "w"); /* every chunk put fails */
    assert_non_null(fp);
    fclose(fp);
    struct sl_flusher_opts fo = {.ing = ing,
                                 .store = st,
                                 .codec = SL_CODEC_ZSTD,
                                 .check_period_ns = 3600 * SL_NS_PER_SEC,
                                 .index_upload_period_ns = 3600 * SL_NS_PER_SEC,
                                 .writer = "test"};
    struct sl_flusher *f;
    assert_int_equal(sl_flusher_start(&fo, &f), 0);
    struct sl_flusher_pending p;
    sl_flusher_pending(f, &p);
    assert_int_equal(p.chunks, 0);
    assert_int_equal(sl_flusher_flush(f, 700 * SL_NS_PER_MS), SL_ETIMEDOUT);
    /* the workers may be between attempts: poll until both are queued */
    for (int i = 0; i < 200; i++) {
        sl_flusher_pending(f, &p);
        if (p.entries == 3)
            break;
        usleep(10000);
    }
    assert_int_equal(p.chunks, 2);
    assert_int_equal(p.entries, 3);
    assert_int_equal(p.tenants, 1);
    assert_int_equal(p.oldest_ns, T0 + 5);
    int64_t t0 = sl_mono_ns();
    assert_int_equal(sl_flusher_stop_within(f, 10 * SL_NS_PER_SEC), 0);
    assert_true(sl_mono_ns() - t0 < 5 * SL_NS_PER_SEC);
    assert_int_equal(sl_ingester_streams(ing), 2); /* still in memory (and the WAL) */
    sl_store_close(st);
    sl_ingester_free(ing);
}

static uint64_t fixed_seq(void *ud)
{
    return *(uint64_t *)ud;
}

static void test_min_wal_seq(void **state)
{
    (void)state;
    struct sl_ingester_opts io = {.block_size = 4096, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, NULL);
    uint64_t seq = 5, got;
    sl_ingester_set_wal_seq_fn(ing, fixed_seq, &seq);
    assert_false(sl_ingester_min_wal_seq(ing, &got));
    push(ing, "{app=\"a\"}", T0, "x");
    seq = 9;
    push(ing, "{app=\"b\"}", T0, "y");
    push(ing, "{app=\"a\"}", T0 + 1, "z");
    assert_true(sl_ingester_min_wal_seq(ing, &got));
    assert_int_equal(got, 5);
    sl_ingester_free(ing);
}

/* ---- structured metadata ---- */

static int append_meta_entry(const struct sl_chunk_entry *e, void *ud)
{
    sl_buf_appendf(ud, "%lld %.*s {", (long long)(e->ts - T0), (int)e->line.len, e->line.ptr);
    size_t pos = 0;
    struct sl_bytes k, v;
    while (sl_chunk_meta_next(e, &pos, &k, &v) == 1)
        sl_buf_appendf(ud, "%.*s=%.*s;", (int)k.len, k.ptr, (int)v.len, v.ptr);
    sl_buf_append_str(ud, "}\n");
    return 0;
}

/* Flushes 90 entries (30 plain, 30 with metadata on every third, 30
 * plain) at level/stored_block_size; appends what the chunk holds to out,
 * counts blocks with and without the metadata flag. */
static void flush_meta(int level, size_t stored_block_size, struct sl_buf *out, uint32_t *with,
                       uint32_t *without)
{
    struct sl_ingester_opts io = {.block_size = 256, .max_chunk_age_ns = 7200 * SL_NS_PER_SEC};
    struct sl_ingester *ing = sl_ingester_new(&io, NULL);
    struct sl_label app = {SL_BYTES_LIT("app"), SL_BYTES_LIT("api")};
    struct sl_labels ls = {&app, 1};
    for (int i = 0; i < 90; i++) {
        char line[64], trace[32];
        snprintf(line, sizeof line, "request %d served", i);
        snprintf(trace, sizeof trace, "t%d", i);
        struct sl_label meta[2] = {{SL_BYTES_LIT("trace_id"), sl_bytes_str(trace)},
                                   {SL_BYTES_LIT("user"), SL_BYTES_LIT("ann")}};
        bool has = i >= 30 && i < 60 && i % 3 == 0;
        struct sl_batch_entry e = {T0 + i * 1000, sl_bytes_str(line), has ? meta : NULL,
                                   has ? 2 : 0};
        struct sl_push_result res = {0};
        sl_ingester_push(ing, SL_BYTES_LIT("t1"), &ls, &e, 1, NULL, &res);
        assert_int_equal(res.accepted, 1);
    }
    struct sl_store *st = open_store();
    struct sl_flusher_opts fo = {.ing = ing,
                                 .store = st,
                                 .codec = SL_CODEC_ZSTD,
                                 .level = level,
                                 .stored_block_size = stored_block_size,
                                 .check_period_ns = 3600 * SL_NS_PER_SEC,
                                 .index_upload_period_ns = 3600 * SL_NS_PER_SEC,
                                 .writer = "test"};
    struct sl_flusher *f;
    assert_int_equal(sl_flusher_start(&fo, &f), 0);
    assert_int_equal(sl_flusher_flush(f, 20 * SL_NS_PER_SEC), 0);
    struct keys k = {0};
    assert_int_equal(sl_store_list(st, "chunks/t1/", on_key, &k, NULL), 0);
    assert_int_equal(k.n, 1);
    struct sl_buf obj = SL_BUF_INIT;
    assert_int_equal(sl_store_get(st, k.k[0], &obj, NULL), 0);
    struct sl_chunk_reader r;
    assert_int_equal(sl_chunk_reader_open(&r, obj.data, obj.len), 0);
    *with = *without = 0;
    for (uint32_t i = 0; i < r.nblocks; i++) {
        struct sl_chunk_block_info bi;
        sl_chunk_reader_block(&r, i, &bi);
        if (bi.flags & SL_CHUNK_BLOCK_META)
            (*with)++;
        else
            (*without)++;
    }
    assert_int_equal(sl_chunk_reader_scan(&r, INT64_MIN, INT64_MAX, append_meta_entry, out), 0);
    sl_buf_release(&obj);
    sl_flusher_stop(f);
    sl_store_close(st);
    sl_ingester_free(ing);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/store'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Metadata survives the flush whether blocks are copied (level 1),
 * recompressed one by one, or joined; plain blocks stay plain. */
static void test_flush_metadata(void **state)
{
    (void)state;
    struct sl_buf want = SL_BUF_INIT;
    for (int i = 0; i < 90; i++) {
        sl_buf_appendf(&want, "%d request %d served {", i * 1000, i);
        if (i >= 30 && i < 60 && i % 3 == 0)
            sl_buf_appendf(&want, "trace_id=t%d;user=ann;", i);
        sl_buf_append_str(&want, "}\n");
    }
    const struct {
        int level;
        size_t stored;
    } cases[] = {{1, 65536}, {9, 0}, {9, 65536}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        struct sl_buf got = SL_BUF_INIT;
        uint32_t with, without;
        flush_meta(cases[c].level, cases[c].stored, &got, &with, &without);
        assert_string_equal(got.data, want.data);
        assert_true(with >= 1);
        assert_true(without >= 2);                  /* the plain runs before and after */
        if (cases[c].level != 1 && cases[c].stored) /* joined within each kind */
            assert_true(with + without <= 5);
        sl_buf_release(&got);
    }
    sl_buf_release(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_overlap_not_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_and_stop_within, setup, teardown),
        cmocka_unit_test_setup_teardown(test_min_wal_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_metadata, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
