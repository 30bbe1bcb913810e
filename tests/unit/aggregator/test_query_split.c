/* Split metric queries (querier/split.h): the plan covers every step once
 * on the query's grid; a metric query_range split into parts on threads
 * answers byte for byte what the whole evaluation answers (ingester memory,
 * random data, range and vector aggregations, offsets, topk, binary
 * operators, steps that do not divide the range); stats count every line
 * once; limits.max_query_bytes_read stops a query with a 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/ingester/ingester.h"
#include "aggregator/querier/querier.h"
#include "aggregator/querier/split.h"
#include "common/buf.h"
#include "common/mem.h"

#define SEC  1000000000LL
#define MIN  (60 * SEC)
#define BASE (1700000000LL * SEC)

static void check_plan(int64_t start, int64_t end, int64_t step, int64_t split, size_t max)
{
    struct sl_split_part p[SL_SPLIT_MAX_PARTS];
    size_t n = sl_split_plan(start, end, step, split, max, p);
    assert_true(n >= 1 && n <= max && n <= SL_SPLIT_MAX_PARTS);
    /* every step start + k*step <= end in exactly one part, in order */
    int64_t t = start;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].start_ns, t);
        assert_int_equal((p[i].start_ns - start) % step, 0);
        int64_t last = p[i].start_ns;
        while (last + step <= p[i].end_ns)
            last += step;
        if (i + 1 < n)
            assert_int_equal(p[i].end_ns, last); /* ends on its last step */
        t = last + step;
    }
    assert_int_equal(p[n - 1].end_ns, end);
    assert_true(t > end);
    if (split > 0 && end - start > split && max > 1 && (end - start) / step >= 1)
        assert_true(n >= 2);
    else
        assert_int_equal(n, 1);
}

static void test_plan(void **state)
{
    (void)state;
    check_plan(BASE, BASE + 6 * 3600 * SEC, 60 * SEC, 3600 * SEC, 4);
    check_plan(BASE, BASE + 6 * 3600 * SEC + 17 * SEC, 47 * SEC, 3600 * SEC, 3);
    check_plan(BASE, BASE + 90 * MIN, 7 * MIN, 20 * MIN, 64);
    check_plan(BASE, BASE + 10 * MIN, 60 * SEC, 3600 * SEC, 4);  /* short: whole */
    check_plan(BASE, BASE + 10 * 3600 * SEC, 60 * SEC, 0, 4);    /* disabled */
    check_plan(BASE, BASE + 10 * 3600 * SEC, 60 * SEC, SEC, 1);  /* one thread */
    check_plan(BASE, BASE + 2 * 3600 * SEC, 3600 * SEC, SEC, 8); /* 3 steps: 3 parts */
    struct sl_split_part p[SL_SPLIT_MAX_PARTS];
    assert_int_equal(sl_split_plan(BASE, BASE + 2 * 3600 * SEC, 3600 * SEC, SEC, 8, p), 3);
    assert_int_equal(sl_split_plan(BASE, BASE + 1000 * 3600 * SEC, SEC, SEC, 1000, p),
                     SL_SPLIT_MAX_PARTS);
}

static struct sl_ingester *ing;
static const char *pods[] = {"a", "b", "gap", "late"};

/* ~3 h of logfmt lines for four pods; "gap" only in the first hour, "late"
 * only in the last 40 minutes. */
static int setup(void **state)
{
    (void)state;
    struct sl_ingester_opts o = {.block_size = 4096, .max_chunk_age_ns = 4 * 3600 * SEC};
    ing = sl_ingester_new(&o, NULL);
    unsigned seed = 11;
    static const char *levels[] = {"info", "info", "warn", "error"};
    for (size_t pi = 0; pi < 4; pi++) {
        int64_t t0 = pi == 3 ? BASE + 140 * MIN : BASE,
                t1 = pi == 2 ? BASE + 60 * MIN : BASE + 180 * MIN;
        struct sl_label l[2] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("split")},
                                {SL_BYTES_LIT("pod"), sl_bytes_str(pods[pi])}};
        struct sl_labels ls = {l, 2};
        for (int64_t ts = t0 + pi; ts < t1; ts += (int64_t)(1 + rand_r(&seed) % 9) * SEC) {
            char line[128];
            snprintf(line, sizeof line, "level=%s latency=%d.%03d pod=%s",
                     levels[rand_r(&seed) % 4], rand_r(&seed) % 3, rand_r(&seed) % 1000, pods[pi]);
            struct sl_batch_entry e = {ts, sl_bytes_str(line), NULL, 0};
            struct sl_push_result r = {0};
            size_t idx[1];
            assert_int_equal(sl_ingester_push(ing, SL_BYTES_LIT("t"), &ls, &e, 1, idx, &r), 0);
        }
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_ingester_free(ing);
    return 0;
}

static void run(const char *q, int64_t start, int64_t end, int64_t step, int64_t split, size_t max,
                uint64_t max_bytes, struct sl_querier_result *res)
{
    struct sl_querier_request req = {.kind = SL_QUERIER_LOGS,
                                     .tenant = SL_BYTES_LIT("t"),
                                     .query = sl_bytes_str(q),
                                     .start_ns = start,
                                     .end_ns = end,
                                     .limit = 100,
                                     .step_ns = step,
                                     .max_series = 500,
                                     .max_bytes_read = max_bytes,
                                     .split_ns = split,
                                     .split_max = max};
    sl_querier_run(ing, &req, res);
}

/* The body up to its stats (which hold timings). */
static size_t upto_stats(const struct sl_querier_result *r)
{
    const char *s = memmem(r->body.data, r->body.len, ",\"stats\"", 8);
    assert_non_null(s);
    return (size_t)(s - r->body.data);
}

static const char *queries[] = {
    "sum by (level) (count_over_time({app=\"split\"} | logfmt [5m]))",
    "rate({app=\"split\"}[2m])",
    "count_over_time({app=\"split\"} [5m] offset 3m)",
    "topk(2, sum by (pod) (rate({app=\"split\"}[5m])))",
    "sum by (pod) (count_over_time({app=\"split\"} |= \"level=error\" [5m])) / "
    "sum by (pod) (count_over_time({app=\"split\"}[5m]))",
    "avg_over_time({app=\"split\"} | logfmt | unwrap latency [3m]) by (pod)",
    "quantile_over_time(0.9, {app=\"split\"} | logfmt | unwrap latency [5m]) by (level)",
    "absent_over_time({app=\"split\", pod=\"gap\"}[1m])",
    "label_replace(sum by (pod) (bytes_over_time({app=\"split\"}[4m])), \"x\", \"$1\", \"pod\", "
    "\"(.*)\")",
    "sum(count_over_time({app=\"split\"}[1m])) > 12",
};

static void test_split_equals_whole(void **state)
{
    (void)state;
    static const int64_t steps[] = {60 * SEC, 47 * SEC, 7 * MIN};
    for (size_t qi = 0; qi < sizeof queries / sizeof *queries; qi++) {
        for (size_t si = 0; si < 3; si++) {
            int64_t start = BASE + 2 * MIN + 13 * SEC, end = BASE + 178 * MIN + 5 * SEC;
            struct sl_querier_result w, s;
            run(queries[qi], start, end, steps[si], 0, 0, 0, &w);
            run(queries[qi], start, end, steps[si], 20 * MIN, 5, 0, &s);
            assert_int_equal(w.status, 200);
            assert_int_equal(s.status, 200);
            size_t nw = upto_stats(&w), ns = upto_stats(&s);
            if (nw != ns || memcmp(w.body.data, s.body.data, nw) != 0)
                fail_msg("%s step %lld: split differs\n%.*s\n%.*s", queries[qi],
                         (long long)steps[si], (int)(nw < 400 ? nw : 400), w.body.data,
                         (int)(ns < 400 ? ns : 400), s.body.data);
            assert_non_null(memmem(w.body.data, w.body.len, "\"splits\":1}", 11));
            assert_non_null(memmem(s.body.data, s.body.len, "\"splits\":5}", 11));
            if (steps[si] <= 60 * SEC) { /* every line in some window */
                assert_int_equal(w.lines_scanned, s.lines_scanned);
                assert_int_equal(w.bytes_scanned, s.bytes_scanned);
            } else { /* lines between windows: the parts skip them */
                assert_true(s.lines_scanned <= w.lines_scanned);
            }
            assert_true(w.lines_scanned > 100);
            sl_buf_release(&w.body);
            sl_buf_release(&s.body);
        }
    }
}

static void test_max_bytes_read(void **state)
{
    (void)state;
    struct sl_querier_result r;
    const char *q = "sum(count_over_time({app=\"split\"}[5m]))";
    int64_t start = BASE, end = BASE + 180 * MIN;
    run(q, start, end, 60 * SEC, 0, 0, 0, &r);
    assert_int_equal(r.status, 200);
    uint64_t total = r.bytes_scanned;
    sl_buf_release(&r.body);
    for (int split = 0; split < 2; split++) {
        run(q, start, end, 60 * SEC, split ? 20 * MIN : 0, 4, total - 1, &r);
        assert_int_equal(r.status, 400);
        assert_non_null(memmem(r.body.data, r.body.len, "max_query_bytes_read", 20));
        sl_buf_release(&r.body);
        run(q, start, end, 60 * SEC, split ? 20 * MIN : 0, 4, total, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.bytes_scanned, total);
        sl_buf_release(&r.body);
    }
    /* a log query too */
    run("{app=\"split\"}", start, end, 0, 0, 0, 100, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(memmem(r.body.data, r.body.len, "max_query_bytes_read", 20));
    sl_buf_release(&r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_split_equals_whole),
        cmocka_unit_test(test_max_bytes_read),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
