/* Ingester: order of scans, time windows, duplicates, out-of-order window,
 * block cuts and many streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/ingester/ingester.h"
#include "common/buf.h"
#include "common/mem.h"
#include "common/metrics.h"

#define SEC 1000000000LL

static struct sl_ingester *new_ing(size_t block_size)
{
    struct sl_ingester_opts o = {.block_size = block_size, .max_chunk_age_ns = 2 * 3600 * SEC};
    return sl_ingester_new(&o, NULL);
}

static struct sl_label app_labels[] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
static const struct sl_labels app = {app_labels, 1};

/* Pushes one entry; returns the result. */
static struct sl_push_result push1(struct sl_ingester *ing, const struct sl_labels *ls, int64_t ts,
                                   const char *line)
{
    struct sl_batch_entry e = {ts, sl_bytes_str(line), NULL, 0};
    struct sl_push_result r = {0};
    size_t idx[1];
    assert_int_equal(sl_ingester_push(ing, SL_BYTES_LIT("t1"), ls, &e, 1, idx, &r), 0);
    return r;
}

struct collect {
    struct sl_buf out; /* "ts:line\n" */
    size_t n;
    size_t stop_after;
};

static int collect_entry(int64_t ts, struct sl_bytes line, void *ud)
{
    struct collect *c = ud;
    sl_buf_appendf(&c->out, "%lld:%.*s\n", (long long)ts, (int)line.len, line.ptr);
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

struct scan_args {
    int64_t from, through;
    bool backward;
    struct collect *c;
    int rc;
};

static int visit_scan(const struct sl_stream_info *s, struct sl_stream_reader *r, void *ud)
{
    (void)s;
    struct scan_args *a = ud;
    a->rc = sl_stream_reader_scan(r, a->from, a->through, a->backward, collect_entry, a->c);
    return 0;
}

/* Scans the only stream of tenant t1 into c. */
static int scan(struct sl_ingester *ing, int64_t from, int64_t through, bool backward,
                struct collect *c)
{
    struct scan_args a = {from, through, backward, c, 0};
    sl_ingester_visit(ing, SL_BYTES_LIT("t1"), visit_scan, &a);
    return a.rc;
}

static void test_forward_backward(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(0);
    push1(ing, &app, 10, "a");
    push1(ing, &app, 20, "b");
    push1(ing, &app, 30, "c");
    struct collect c = {SL_BUF_INIT, 0, 0};
    scan(ing, 0, 100, false, &c);
    assert_string_equal(c.out.data, "10:a\n20:b\n30:c\n");
    sl_buf_clear(&c.out);
    scan(ing, 0, 100, true, &c);
    assert_string_equal(c.out.data, "30:c\n20:b\n10:a\n");
    sl_buf_release(&c.out);
    assert_int_equal(sl_ingester_streams(ing), 1);
    sl_ingester_free(ing);
}

static void test_time_window(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(64); /* small blocks: window crosses blocks */
    char line[32];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof(line), "line %d", i);
        push1(ing, &app, 1000 + i, line);
    }
    struct collect c = {SL_BUF_INIT, 0, 0};
    scan(ing, 1010, 1013, false, &c); /* from inclusive, through exclusive */
    assert_string_equal(c.out.data, "1010:line 10\n1011:line 11\n1012:line 12\n");
    sl_buf_clear(&c.out);
    c.n = 0;
    scan(ing, 1097, 5000, true, &c);
    assert_string_equal(c.out.data, "1099:line 99\n1098:line 98\n1097:line 97\n");
    sl_buf_clear(&c.out);
    c.n = 0;
    scan(ing, 0, 1000, false, &c);
    assert_int_equal(c.n, 0);
    /* A non-zero return stops the scan and is returned. */
    c.stop_after = 5;
    assert_int_equal(scan(ing, 0, 5000, false, &c), 7);
    assert_int_equal(c.n, 5);
    sl_buf_release(&c.out);
    sl_ingester_free(ing);
}

static void test_duplicates(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(64);
    assert_int_equal(push1(ing, &app, 10, "x").accepted, 1);
    assert_int_equal(push1(ing, &app, 10, "x").duplicates, 1);
    /* Same timestamp, other line: kept. Same line, other timestamp: kept. */
    assert_int_equal(push1(ing, &app, 10, "y").accepted, 1);
    assert_int_equal(push1(ing, &app, 11, "x").accepted, 1);
    /* Push enough to cut the entries above into a block, then retry them. */
    char line[64];
    for (int i = 0; i < 20; i++) {
        snprintf(line, sizeof(line), "filler line number %d", i);
        push1(ing, &app, 100 + i, line);
    }
    assert_int_equal(push1(ing, &app, 10, "x").duplicates, 1);
    assert_int_equal(push1(ing, &app, 10, "y").duplicates, 1);
    assert_int_equal(push1(ing, &app, 105, "filler line number 5").duplicates, 1);
    /* A whole batch retried: indexes of the accepted ones come back. */
    struct sl_batch_entry e[3] = {{200, SL_BYTES_LIT("p"), NULL, 0},
                                  {201, SL_BYTES_LIT("q"), NULL, 0},
                                  {200, SL_BYTES_LIT("p"), NULL, 0}};
    struct sl_push_result r = {0};
    size_t idx[3] = {99, 99, 99};
    sl_ingester_push(ing, SL_BYTES_LIT("t1"), &app, e, 3, idx, &r);
    assert_int_equal(r.accepted, 2);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);
    memset(&r, 0, sizeof(r));
    sl_ingester_push(ing, SL_BYTES_LIT("t1"), &app, e, 3, idx, &r);
    assert_int_equal(r.accepted, 0);
    assert_int_equal(r.duplicates, 3);
    struct collect c = {SL_BUF_INIT, 0, 0};
    scan(ing, 0, 1000, false, &c);
    assert_int_equal(c.n, 3 + 20 + 2);
    sl_buf_release(&c.out);
    sl_ingester_free(ing);
}

static void test_out_of_order(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(48);
    int64_t base = 1700000000 * SEC;
    push1(ing, &app, base + 100 * SEC, "newest");
    /* Within the window (1 h = max_chunk_age / 2): accepted, returned in order. */
    assert_int_equal(push1(ing, &app, base + 50 * SEC, "older").accepted, 1);
    assert_int_equal(push1(ing, &app, base + 100 * SEC - 3600 * SEC, "edge").accepted, 1);
    assert_int_equal(push1(ing, &app, base + 100 * SEC - 3600 * SEC - 1, "too old").out_of_order,
                     1);
    push1(ing, &app, base + 75 * SEC, "middle");
    push1(ing, &app, base + 75 * SEC, "middle 2"); /* tie: arrival order */
    struct collect c = {SL_BUF_INIT, 0, 0};
    scan(ing, 0, INT64_MAX, false, &c);
    struct sl_buf want = SL_BUF_INIT;
    sl_buf_appendf(&want, "%lld:edge\n%lld:older\n%lld:middle\n%lld:middle 2\n%lld:newest\n",
                   (long long)(base - 3500 * SEC), (long long)(base + 50 * SEC),
                   (long long)(base + 75 * SEC), (long long)(base + 75 * SEC),
                   (long long)(base + 100 * SEC));
    assert_string_equal(c.out.data, want.data);
    sl_buf_release(&want);
    sl_buf_release(&c.out);
    sl_ingester_free(ing);
}

/* Out-of-order entries that land in overlapping blocks still come back in
 * order, forward and backward, ties in arrival order. */
static void test_overlapping_blocks(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(40);
    char line[32];
    /* Interleave two sequences so every cut block overlaps the previous ones. */
    for (int i = 0; i < 200; i++) {
        int64_t ts = (i % 2) ? 1000 + i : 1000 + (200 - i);
        snprintf(line, sizeof(line), "e%03d", i);
        assert_int_equal(push1(ing, &app, ts, line).accepted, 1);
    }
    push1(ing, &app, 1100, "tie-late");
    struct collect f = {SL_BUF_INIT, 0, 0}, b = {SL_BUF_INIT, 0, 0};
    scan(ing, 0, INT64_MAX, false, &f);
    scan(ing, 0, INT64_MAX, true, &b);
    assert_int_equal(f.n, 201);
    assert_int_equal(b.n, 201);
    /* Forward is sorted; backward is its exact reverse. */
    long long prev = -1;
    const char *p = f.out.data;
    for (size_t i = 0; i < f.n; i++) {
        long long ts = strtoll(p, NULL, 10);
        assert_true(ts >= prev);
        prev = ts;
        p = strchr(p, '\n') + 1;
    }
    assert_non_null(strstr(f.out.data, "1100:e100\n1100:tie-late\n"));
    assert_non_null(strstr(b.out.data, "1100:tie-late\n1100:e100\n"));
    sl_buf_release(&f.out);
    sl_buf_release(&b.out);
    sl_ingester_free(ing);
}

static double counter(struct sl_metrics *m, const char *name)
{
    return sl_metric_value(sl_metric_with(sl_metrics_counter(m, name, "", NULL)));
}

/* Several senders per stream: interleaved out-of-order pushes over many
 * blocks. Every retry of a stored entry is dropped (wherever it was cut),
 * every new entry is kept, the stream reads back sorted and complete, and
 * the blocks are decompressed for the duplicate check about once each, not
 * once per entry. */
static void test_out_of_order_duplicates_across_blocks(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_ingester_opts o = {.block_size = 2048, .max_chunk_age_ns = 2 * 3600 * SEC};
    struct sl_ingester *ing = sl_ingester_new(&o, m);
    enum { SENDERS = 4, ROUNDS = 50, PER = 20 };
    char line[64];
    /* Sender k pushes batches of entries k, k+4, k+8 ... of each round; the
     * senders' batches of a round arrive in reverse order. */
    size_t total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = SENDERS - 1; k >= 0; k--) {
            struct sl_batch_entry e[PER];
            char lines[PER][64];
            for (int i = 0; i < PER; i++) {
                int64_t n = (int64_t)r * SENDERS * PER + i * SENDERS + k;
                snprintf(lines[i], sizeof(lines[i]), "sender %d entry %lld", k, (long long)n);
                e[i] = (struct sl_batch_entry){1000 + n, sl_bytes_str(lines[i]), NULL, 0};
            }
            struct sl_push_result res = {0};
            size_t idx[PER];
            sl_ingester_push(ing, SL_BYTES_LIT("t1"), &app, e, PER, idx, &res);
            assert_int_equal(res.accepted, PER);
            total += PER;
        }
    }
    double reads_after_push = counter(m, "sluice_aggregator_ingester_dedup_block_reads_total");
    double blocks = counter(m, "sluice_aggregator_ingester_blocks_cut_total");
    assert_true(blocks > 20);
    /* One read per block to build its filter, plus the rare false positive. */
    assert_true(reads_after_push <= blocks + 10);
    /* Retry everything in the same interleaving: all dropped as duplicates. */
    size_t dups = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = SENDERS - 1; k >= 0; k--) {
            for (int i = 0; i < PER; i++) {
                int64_t n = (int64_t)r * SENDERS * PER + i * SENDERS + k;
                snprintf(line, sizeof(line), "sender %d entry %lld", k, (long long)n);
                dups += push1(ing, &app, 1000 + n, line).duplicates;
            }
        }
    }
    assert_int_equal(dups, total);
    /* Same timestamps, other lines: kept (the filter is keyed by the line). */
    for (int n = 0; n < 100; n += 7) {
        snprintf(line, sizeof(line), "another line %d", n);
        assert_int_equal(push1(ing, &app, 1000 + n, line).accepted, 1);
        assert_int_equal(push1(ing, &app, 1000 + n, line).duplicates, 1);
    }
    struct collect c = {SL_BUF_INIT, 0, 0};
    scan(ing, 0, INT64_MAX, false, &c);
    assert_int_equal(c.n, total + 15);
    long long prev = -1;
    const char *p = c.out.data;
    for (size_t i = 0; i < c.n; i++) {
        long long ts = strtoll(p, NULL, 10);
        assert_true(ts >= prev);
        prev = ts;
        p = strchr(p, '\n') + 1;
    }
    sl_buf_release(&c.out);
    sl_ingester_free(ing);
    sl_metrics_free(m);
}

struct ref_entry {
    int64_t ts;
    size_t arrival;
    char line[32];
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref_entry *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* Random out-of-order arrivals with many equal timestamps and small blocks:
 * every window, forward and backward, reads exactly the reference (the
 * entries sorted by time, ties in arrival order; backward is its reverse). */
static void test_random_out_of_order_scans(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(300);
    enum { N = 3000 };
    struct ref_entry *ref = sl_calloc(N, sizeof(*ref));
    uint64_t x = 42;
    for (size_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        /* mostly rising, often late by up to 400, often tied */
        int64_t ts = 10000 + (int64_t)i * 3 - (int64_t)((x >> 33) % 400);
        ref[i].ts = ts;
        ref[i].arrival = i;
        snprintf(ref[i].line, sizeof(ref[i].line), "e%zu", i);
    }
    /* In batches of 1 to 64 entries (late entries of a call are merged into
     * the head at its end, or before a cut in the middle), each batch with
     * a copy of one of its entries, which must be dropped. */
    for (size_t i = 0; i < N;) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t k = 1 + (size_t)((x >> 40) % 64);
        if (k > N - i)
            k = N - i;
        struct sl_batch_entry e[65];
        for (size_t j = 0; j < k; j++)
            e[j] = (struct sl_batch_entry){ref[i + j].ts, sl_bytes_str(ref[i + j].line), NULL, 0};
        e[k] = e[(x >> 20) % k];
        struct sl_push_result r = {0};
        size_t idx[65];
        sl_ingester_push(ing, SL_BYTES_LIT("t1"), &app, e, k + 1, idx, &r);
        assert_int_equal(r.accepted, k);
        assert_int_equal(r.duplicates, 1);
        i += k;
    }
    qsort(ref, N, sizeof(*ref), ref_cmp);
    for (int w = 0; w < 40; w++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t from = 9500 + (int64_t)((x >> 33) % 9500);
        int64_t through = from + (int64_t)((x >> 13) % 3000) + 1;
        if (w == 0) {
            from = 0;
            through = INT64_MAX;
        }
        struct sl_buf want = SL_BUF_INIT, want_b = SL_BUF_INIT;
        for (size_t i = 0; i < N; i++)
            if (ref[i].ts >= from && ref[i].ts < through)
                sl_buf_appendf(&want, "%lld:%s\n", (long long)ref[i].ts, ref[i].line);
        for (size_t i = N; i-- > 0;)
            if (ref[i].ts >= from && ref[i].ts < through)
                sl_buf_appendf(&want_b, "%lld:%s\n", (long long)ref[i].ts, ref[i].line);
        struct collect f = {SL_BUF_INIT, 0, 0}, b = {SL_BUF_INIT, 0, 0};
        scan(ing, from, through, false, &f);
        scan(ing, from, through, true, &b);
        assert_int_equal(f.out.len, want.len);
        assert_int_equal(b.out.len, want_b.len);
        if (want.len) {
            assert_memory_equal(f.out.data, want.data, want.len);
            assert_memory_equal(b.out.data, want_b.data, want_b.len);
        }
        sl_buf_release(&want);
        sl_buf_release(&want_b);
        sl_buf_release(&f.out);
        sl_buf_release(&b.out);
    }
    sl_free(ref);
    sl_ingester_free(ing);
}

struct info_sum {
    size_t streams, entries;
    int64_t min, max;
};

static int visit_info(const struct sl_stream_info *s, struct sl_stream_reader *r, void *ud)
{
    (void)r;
    struct info_sum *sum = ud;
    sum->streams++;
    sum->entries += s->entries;
    if (sum->streams == 1 || s->min_ts < sum->min)
        sum->min = s->min_ts;
    if (sum->streams == 1 || s->max_ts > sum->max)
        sum->max = s->max_ts;
    return 0;
}

static void test_block_cut_and_many_streams(void **state)
{
    (void)state;
    struct sl_ingester *ing = new_ing(1024);
    char val[32], line[128];
    for (int s = 0; s < 300; s++) {
        snprintf(val, sizeof(val), "pod-%d", s);
        struct sl_label l[2] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("x")},
                                {SL_BYTES_LIT("pod"), sl_bytes_str(val)}};
        struct sl_labels ls = {l, 2};
        for (int i = 0; i < 50; i++) {
            snprintf(line, sizeof(line), "stream %d entry %d with some padding text", s, i);
            assert_int_equal(push1(ing, &ls, 5000 + i, line).accepted, 1);
        }
    }
    assert_int_equal(sl_ingester_streams(ing), 300);
    struct info_sum sum = {0};
    sl_ingester_visit(ing, SL_BYTES_LIT("t1"), visit_info, &sum);
    assert_int_equal(sum.streams, 300);
    assert_int_equal(sum.entries, 300 * 50);
    assert_int_equal(sum.min, 5000);
    assert_int_equal(sum.max, 5049);
    /* Another tenant sees nothing. */
    struct info_sum other = {0};
    sl_ingester_visit(ing, SL_BYTES_LIT("t2"), visit_info, &other);
    assert_int_equal(other.streams, 0);
    sl_ingester_free(ing);
}

static void test_stream_limit(void **state)
{
    (void)state;
    struct sl_ingester_opts o = {.max_chunk_age_ns = 3600 * SEC, .max_streams_per_tenant = 2};
    struct sl_ingester *ing = sl_ingester_new(&o, NULL);
    struct sl_label l[3] = {{SL_BYTES_LIT("a"), SL_BYTES_LIT("1")},
                            {SL_BYTES_LIT("a"), SL_BYTES_LIT("2")},
                            {SL_BYTES_LIT("a"), SL_BYTES_LIT("3")}};
    struct sl_labels s1 = {&l[0], 1}, s2 = {&l[1], 1}, s3 = {&l[2], 1};
    assert_int_equal(push1(ing, &s1, 1, "x").accepted, 1);
    assert_int_equal(push1(ing, &s2, 1, "x").accepted, 1);
    assert_int_equal(push1(ing, &s3, 1, "x").stream_limit, 1);
    assert_int_equal(push1(ing, &s1, 2, "x").accepted, 1); /* existing stream still fine */
    sl_ingester_free(ing);
}

/* ---- structured metadata ---- */

static struct sl_push_result push_meta(struct sl_ingester *ing, int64_t ts, const char *line,
                                       const char *k, const char *v)
{
    struct sl_label m[2] = {{sl_bytes_str(k ? k : ""), sl_bytes_str(v ? v : "")},
                            {SL_BYTES_LIT("span"), SL_BYTES_LIT("s1")}};
    struct sl_batch_entry e = {ts, sl_bytes_str(line), k ? m : NULL, k ? 2 : 0};
    struct sl_push_result r = {0};
    size_t idx[1];
    assert_int_equal(sl_ingester_push(ing, SL_BYTES_LIT("t1"), &app, &e, 1, idx, &r), 0);
    return r;
}

static int collect_meta(const struct sl_chunk_entry *e, void *ud)
{
    struct collect *c = ud;
    sl_buf_appendf(&c->out, "%lld:%.*s{", (long long)e->ts, (int)e->line.len, e->line.ptr);
    size_t pos = 0, n = 0;
    struct sl_bytes k, v;
    int rc;
    while ((rc = sl_chunk_meta_next(e, &pos, &k, &v)) == 1) {
        sl_buf_appendf(&c->out, "%s%.*s=%.*s", n ? "," : "", (int)k.len, k.ptr, (int)v.len, v.ptr);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, e->n_meta);
    sl_buf_append_str(&c->out, "}\n");
    c->n++;
    return 0;
}

struct meta_scan {
    bool backward;
    struct collect *c;
};

static int visit_meta(const struct sl_stream_info *s, struct sl_stream_reader *r, void *ud)
{
    (void)s;
    struct meta_scan *a = ud;
    assert_int_equal(sl_stream_reader_scan_entries(r, 0, 1000, a->backward, collect_meta, a->c), 0);
    return 0;
}

struct flags_seen {
    size_t with_meta, without;
};

static void on_cut(const struct sl_ingester_chunk *c, void *ud)
{
    struct flags_seen *f = ud;
    for (size_t i = 0; i < c->nblocks; i++) {
        if (c->blocks[i].flags & SL_CHUNK_BLOCK_META)
            f->with_meta++;
        else
            f->without++;
    }
}

/* Metadata comes back with its entry from the head and from blocks, in
 * order and out of order; blocks without any are cut without the flag. */
static void test_structured_metadata(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    /* 30 raw bytes: two plain lines fill a block, a line with metadata
     * alone nearly does */
    struct sl_ingester_opts o = {.block_size = 30, .max_chunk_age_ns = 2 * 3600 * SEC};
    struct sl_ingester *ing = sl_ingester_new(&o, m);
    push_meta(ing, 10, "plain-a", NULL, NULL);
    push_meta(ing, 20, "plain-b", NULL, NULL);       /* cut: a block without metadata */
    push_meta(ing, 30, "traced", "trace_id", "abc"); /* cut: one entry, with metadata */
    push_meta(ing, 40, "plain-c", NULL, NULL);
    push_meta(ing, 50, "traced-2", "trace_id", "def"); /* cut: a mixed block */
    push_meta(ing, 25, "late", "trace_id", "old");     /* out of order: overlaps */
    push_meta(ing, 60, "head", "trace_id", "");        /* empty value kept */
    push_meta(ing, 70, "tail", NULL, NULL);            /* stays in the head */
    /* a duplicate (same ts and line) is dropped even with other metadata */
    assert_int_equal(push_meta(ing, 30, "traced", "trace_id", "zzz").duplicates, 1);
    const char *want = "10:plain-a{}\n20:plain-b{}\n25:late{trace_id=old,span=s1}\n"
                       "30:traced{trace_id=abc,span=s1}\n40:plain-c{}\n"
                       "50:traced-2{trace_id=def,span=s1}\n60:head{trace_id=,span=s1}\n"
                       "70:tail{}\n";
    struct collect c = {SL_BUF_INIT, 0, 0};
    struct meta_scan a = {false, &c};
    sl_ingester_visit(ing, SL_BYTES_LIT("t1"), visit_meta, &a);
    assert_string_equal(c.out.data, want);
    sl_buf_clear(&c.out);
    a.backward = true;
    sl_ingester_visit(ing, SL_BYTES_LIT("t1"), visit_meta, &a);
    assert_true(strncmp(c.out.data, "70:tail{}\n60:head{trace_id=,span=s1}\n50:traced-2", 48) == 0);
    /* the plain scan still gives every line */
    struct collect p = {SL_BUF_INIT, 0, 0};
    scan(ing, 0, 1000, false, &p);
    assert_int_equal(p.n, 8);
    /* cut everything: flags say which blocks carry metadata */
    struct flags_seen f = {0, 0};
    assert_int_equal(sl_ingester_cut(ing, true, on_cut, &f), 1);
    assert_true(f.without >= 1);
    assert_true(f.with_meta >= 1);
    /* the head gauge counted metadata bytes in and out: back to zero */
    struct sl_buf text = SL_BUF_INIT;
    sl_metrics_render(m, &text);
    assert_non_null(strstr(text.data, "sluice_aggregator_ingester_head_bytes 0\n"));
    sl_buf_clear(&c.out);
    a.backward = false;
    sl_ingester_visit(ing, SL_BYTES_LIT("t1"), visit_meta, &a);
    assert_string_equal(c.out.data, want);
    sl_buf_release(&text);
    sl_buf_release(&c.out);
    sl_buf_release(&p.out);
    sl_ingester_free(ing);
    sl_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_backward),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_overlapping_blocks),
        cmocka_unit_test(test_out_of_order_duplicates_across_blocks),
        cmocka_unit_test(test_random_out_of_order_scans),
        cmocka_unit_test(test_block_cut_and_many_streams),
        cmocka_unit_test(test_stream_limit),
        cmocka_unit_test(test_structured_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
