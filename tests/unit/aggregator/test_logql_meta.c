/* Structured metadata in the LogQL pipeline and the metric engine: pairs
 * of an entry become its labels, with Loki's precedence rules (a stream
 * label's name gets _extracted, parsed labels replace metadata), and never
 * leak into the next entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/logql/logql.h"
#include "common/buf.h"
#include "common/labels.h"

#define NS 1000000000LL

static struct sl_label stream_items[] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")},
                                         {SL_BYTES_LIT("env"), SL_BYTES_LIT("prod")}};
static const struct sl_labels stream = {stream_items, 2};

/* Runs q's pipeline over one entry; returns whether it is kept and writes
 * "line {labels}" into out. */
static bool run1(const char *q, const char *line, const struct sl_label *meta, size_t nmeta,
                 char *out, size_t cap)
{
    struct sl_logql_query *lq = NULL;
    assert_int_equal(sl_logql_parse(q, strlen(q), &lq, NULL), 0);
    const struct sl_logql_log_expr *e = sl_logql_log_expr(lq);
    assert_non_null(e);
    struct sl_logql_pipeline *p = sl_logql_pipeline_new(lq, e);
    sl_logql_pipeline_stream(p, &stream);
    struct sl_bytes lo;
    const struct sl_labels *ls;
    bool kept = sl_logql_pipeline_run_meta(p, 1, sl_bytes_str(line), meta, nmeta, &lo, &ls);
    out[0] = 0;
    if (kept) {
        struct sl_buf b = SL_BUF_INIT;
        sl_buf_append(&b, lo.ptr, lo.len);
        sl_buf_append_char(&b, ' ');
        sl_labels_format(ls, &b);
        snprintf(out, cap, "%s", b.data);
        sl_buf_release(&b);
        /* the next entry, without metadata (an empty line: nothing to
         * parse), has none */
        if (sl_logql_pipeline_run(p, 2, sl_bytes("", 0), &lo, &ls))
            assert_null(sl_labels_get(ls, "trace_id"));
    }
    sl_logql_pipeline_free(p);
    sl_logql_query_free(lq);
    return kept;
}

static const struct sl_label meta[] = {{SL_BYTES_LIT("trace_id"), SL_BYTES_LIT("abc")},
                                       {SL_BYTES_LIT("env"), SL_BYTES_LIT("meta-env")}};

static void test_labels_of_the_entry(void **state)
{
    (void)state;
    char out[512];
    assert_true(run1("{app=\"api\"}", "hello", meta, 2, out, sizeof out));
    assert_string_equal(out, "hello {app=\"api\", env=\"prod\", env_extracted=\"meta-env\", "
                             "trace_id=\"abc\"}");
    assert_true(run1("{app=\"api\"} | trace_id=\"abc\"", "x", meta, 2, out, sizeof out));
    assert_false(run1("{app=\"api\"} | trace_id=\"zzz\"", "x", meta, 2, out, sizeof out));
    assert_false(run1("{app=\"api\"} | trace_id=\"abc\"", "x", NULL, 0, out, sizeof out));
    assert_true(run1("{app=\"api\"} | keep trace_id", "x", meta, 2, out, sizeof out));
    assert_string_equal(out, "x {trace_id=\"abc\"}");
    assert_true(
        run1("{app=\"api\"} | drop trace_id, env_extracted", "x", meta, 2, out, sizeof out));
    assert_string_equal(out, "x {app=\"api\", env=\"prod\"}");
    assert_true(run1("{app=\"api\"} | line_format \"{{.trace_id}}-{{.env_extracted}}\"", "x", meta,
                     2, out, sizeof out));
    assert_true(strncmp(out, "abc-meta-env {", 14) == 0);
    assert_true(
        run1("{app=\"api\"} | label_format t=trace_id | keep t", "x", meta, 2, out, sizeof out));
    assert_string_equal(out, "x {t=\"abc\"}");
}

static void test_parsed_labels_win(void **state)
{
    (void)state;
    char out[512];
    assert_true(run1("{app=\"api\"} | json | keep trace_id", "{\"trace_id\":\"parsed\"}", meta, 2,
                     out, sizeof out));
    assert_string_equal(out, "{\"trace_id\":\"parsed\"} {trace_id=\"parsed\"}");
    assert_true(
        run1("{app=\"api\"} | logfmt | keep trace_id", "other=1", meta, 2, out, sizeof out));
    assert_string_equal(out, "other=1 {trace_id=\"abc\"}");
}

/* sum by (trace_id) over entries with and without metadata, one of them
 * outside the range (its metadata must not reach the next entry). */
static void test_metric_grouping(void **state)
{
    (void)state;
    const char *q = "sum by (trace_id) (count_over_time({app=\"api\"}[1m]))";
    struct sl_logql_query *lq = NULL;
    assert_int_equal(sl_logql_parse(q, strlen(q), &lq, NULL), 0);
    int64_t t = 1700000000LL * NS;
    struct sl_logql_metric_params pr = {t, t, NS, true, 0};
    struct sl_logql_metric *m = NULL;
    assert_int_equal(sl_logql_metric_new(lq, &pr, &m, NULL), 0);
    assert_int_equal(sl_logql_metric_nsources(m), 1);
    assert_true(sl_logql_metric_stream(m, 0, &stream));
    struct sl_label other = {SL_BYTES_LIT("trace_id"), SL_BYTES_LIT("def")};
    sl_logql_metric_entry_meta(m, 0, t - 10 * NS, sl_bytes_str("a"), meta, 2);
    sl_logql_metric_entry_meta(m, 0, t - 9 * NS, sl_bytes_str("b"), meta, 2);
    sl_logql_metric_entry_meta(m, 0, t - 3600 * NS, sl_bytes_str("old"), &other, 1);
    sl_logql_metric_entry(m, 0, t - 8 * NS, sl_bytes_str("c"));
    sl_logql_metric_entry_meta(m, 0, t - 7 * NS, sl_bytes_str("d"), &other, 1);
    assert_int_equal(sl_logql_metric_eval(m, NULL), 0);
    size_t n = sl_logql_metric_nseries(m);
    assert_int_equal(n, 3);
    double got[3] = {-1, -1, -1}; /* {}, abc, def */
    for (size_t i = 0; i < n; i++) {
        const int64_t *ts;
        const double *v;
        size_t np;
        const struct sl_labels *ls = sl_logql_metric_series(m, i, &ts, &v, &np);
        assert_int_equal(np, 1);
        const struct sl_bytes *tid = sl_labels_get(ls, "trace_id");
        size_t k = !tid ? 0 : sl_bytes_eq_str(*tid, "abc") ? 1 : 2;
        got[k] = v[0];
    }
    assert_true(got[0] == 1 && got[1] == 2 && got[2] == 1);
    sl_logql_metric_free(m);
    sl_logql_query_free(lq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_of_the_entry),
        cmocka_unit_test(test_parsed_labels_win),
        cmocka_unit_test(test_metric_grouping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
