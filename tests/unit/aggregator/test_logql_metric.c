/* LogQL metric engine: hand-computed answers for every range function,
 * vector aggregation and binary operator over a small dataset, with Loki's
 * window (start exclusive, end inclusive), step and error semantics. */
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
#include "common/err.h"
#include "common/jsonw.h"
#include "common/labels.h"

#define BASE 1700000000LL
#define NS   1000000000LL

struct entry {
    int64_t sec;
    const char *line;
};

struct stream {
    const char *labels;
    struct entry e[8];
};

/* A: api logs in logfmt; B: web logs with one bad duration; C: a counter. */
static const struct stream data[] = {
    {"{app=\"api\", env=\"prod\"}",
     {{0, "level=info dur=10ms size=1KB"},
      {10, "level=error dur=250ms size=2KB"},
      {20, "level=info dur=1s size=3KB"},
      {30, "level=error dur=1.5s size=4KB"}}},
    {"{app=\"web\", env=\"prod\"}",
     {{5, "level=info dur=5ms status=200"},
      {15, "level=info dur=20ms status=500"},
      {25, "level=warn dur=bad status=404"}}},
    {"{app=\"ctr\", env=\"dev\"}", {{10, "{\"n\":1}"}, {20, "{\"n\":3}"}, {30, "{\"n\":6}"}}},
    /* after every other test's windows: JSON broken after its first key */
    {"{app=\"js\", env=\"qa\"}",
     {{40, "{\"level\":\"error\",\"x\":"}, {50, "{\"level\":\"info\"}"}}},
};

static char out[8192];
static size_t max_series = 100;
static char errmsg[4096];

/* Runs q over data; returns the rc and writes "type: {labels} t:v t:v; ..."
 * (t in seconds after BASE) into out. */
static int run(const char *q, int64_t start, int64_t end, int64_t step, bool instant)
{
    struct sl_logql_query *lq = NULL;
    struct sl_buf err = SL_BUF_INIT;
    out[0] = errmsg[0] = 0;
    int rc = sl_logql_parse(q, strlen(q), &lq, &err);
    if (rc) {
        snprintf(errmsg, sizeof errmsg, "%s", err.data);
        sl_buf_release(&err);
        return rc;
    }
    struct sl_logql_metric_params pr = {(BASE + start) * NS, (BASE + end) * NS, step * NS, instant,
                                        max_series};
    struct sl_logql_metric *m = NULL;
    rc = sl_logql_metric_new(lq, &pr, &m, &err);
    assert_int_equal(rc, 0);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    for (size_t i = 0; i < sl_logql_metric_nsources(m); i++) {
        int64_t from, through;
        sl_logql_metric_source(m, i, &from, &through);
        for (size_t s = 0; s < sizeof data / sizeof data[0]; s++) {
            struct sl_labels ls;
            assert_int_equal(sl_labels_parse(&a, data[s].labels, strlen(data[s].labels), &ls, NULL),
                             0);
            sl_labels_sort(&ls);
            if (!sl_logql_metric_stream(m, i, &ls))
                continue;
            for (size_t k = 0; k < 8 && data[s].e[k].line; k++) {
                int64_t ts = (BASE + data[s].e[k].sec) * NS;
                if (ts >= from && ts < through)
                    sl_logql_metric_entry(m, i, ts, sl_bytes_str(data[s].e[k].line));
            }
        }
    }
    rc = sl_logql_metric_eval(m, &err);
    if (rc) {
        snprintf(errmsg, sizeof errmsg, "%s", err.data);
    } else {
        struct sl_buf b = SL_BUF_INIT;
        sl_buf_appendf(&b, "%s:", sl_logql_metric_result_type(m));
        for (size_t i = 0; i < sl_logql_metric_nseries(m); i++) {
            const int64_t *ts;
            const double *v;
            size_t n;
            const struct sl_labels *ls = sl_logql_metric_series(m, i, &ts, &v, &n);
            sl_buf_append_str(&b, i ? "; " : " ");
            sl_labels_format(ls, &b);
            for (size_t k = 0; k < n; k++) {
                sl_buf_appendf(&b, " %lld:", (long long)(ts[k] / 1000 - BASE));
                sl_f64_format(&b, v[k]);
            }
        }
        snprintf(out, sizeof out, "%s", b.data);
        sl_buf_release(&b);
    }
    sl_buf_release(&err);
    sl_arena_release(&a);
    sl_logql_metric_free(m);
    sl_logql_query_free(lq);
    return rc;
}

static void instant(const char *q, int64_t at, const char *want)
{
    int rc = run(q, at, at, 1, true);
    if (rc)
        fail_msg("%s: rc %d: %s", q, rc, errmsg);
    if (strcmp(out, want) != 0)
        fail_msg("%s\n  got  %s\n  want %s", q, out, want);
}

static void range(const char *q, int64_t s, int64_t e, int64_t step, const char *want)
{
    int rc = run(q, s, e, step, false);
    if (rc)
        fail_msg("%s: rc %d: %s", q, rc, errmsg);
    if (strcmp(out, want) != 0)
        fail_msg("%s\n  got  %s\n  want %s", q, out, want);
}

static void test_windows_and_steps(void **state)
{
    (void)state;
    /* (t-30s, t]: the entry at 0 is out at t=30, the one at 30 is in. */
    instant("count_over_time({env=\"prod\"}[30s])", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:3; {app=\"web\", env=\"prod\"} 30:3");
    range("count_over_time({app=\"api\"}[10s])", 10, 30, 10,
          "matrix: {app=\"api\", env=\"prod\"} 10:1 20:1 30:1");
    /* step not dividing the range: the last step is <= end */
    range("count_over_time({app=\"web\"}[10s])", 10, 35, 10,
          "matrix: {app=\"web\", env=\"prod\"} 10:1 20:1 30:1");
    /* empty windows give no point */
    range("count_over_time({app=\"api\"}[5s])", 0, 40, 5,
          "matrix: {app=\"api\", env=\"prod\"} 0:1 10:1 20:1 30:1");
    /* no data at all: an empty matrix */
    range("count_over_time({app=\"none\"}[5s])", 0, 40, 5, "matrix:");
    /* offset moves the window back */
    instant("count_over_time({app=\"api\"}[10s] offset 10s)", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:1");
}

static void test_range_functions(void **state)
{
    (void)state;
    instant("rate({app=\"api\"}[30s])", 30, "vector: {app=\"api\", env=\"prod\"} 30:0.1");
    /* lines of B: 29 + 30 + 29 bytes */
    instant("bytes_over_time({app=\"web\"}[30s])", 30, "vector: {app=\"web\", env=\"prod\"} 30:88");
    instant("bytes_rate({app=\"web\"}[40s])", 30, "vector: {app=\"web\", env=\"prod\"} 30:2.2");
    instant("absent_over_time({app=\"none\", env=~\"p.*\"}[30s])", 30,
            "vector: {app=\"none\"} 30:1");
    instant("absent_over_time({app=\"api\"}[30s])", 30, "vector:");
    const char *u = "{app=\"api\"} | logfmt | drop size, level | unwrap duration(dur) [30s])";
    char q[256];
    struct {
        const char *fn, *want;
    } cases[] = {
        {"avg_over_time", "0.9166666666666666"},
        {"sum_over_time", "2.75"},
        {"rate", "0.09166666666666666"},
        {"min_over_time", "0.25"},
        {"max_over_time", "1.5"},
        {"first_over_time", "0.25"},
        {"last_over_time", "1.5"},
        {"stdvar_over_time", "0.2638888888888889"},
        {"stddev_over_time", "0.5137011669140814"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(q, sizeof q, "%s(%s", cases[i].fn, u);
        char want[128];
        snprintf(want, sizeof want, "vector: {app=\"api\", env=\"prod\"} 30:%s", cases[i].want);
        instant(q, 30, want);
    }
    instant("quantile_over_time(0.5, {app=\"api\"} | logfmt | unwrap duration(dur) [30s]) by (app)",
            30, "vector: {app=\"api\"} 30:1");
    instant(
        "quantile_over_time(0.25, {app=\"api\"} | logfmt | unwrap duration(dur) [30s]) by (app)",
        30, "vector: {app=\"api\"} 30:0.625");
    instant("sum by (app) (sum_over_time({app=\"api\"} | logfmt | unwrap bytes(size) [30s]))", 30,
            "vector: {app=\"api\"} 30:9000");
    instant("sum by (app) (rate({app=\"api\"} | logfmt | unwrap bytes(size) [30s]))", 30,
            "vector: {app=\"api\"} 30:300");
    /* without by, each distinct label set is its own series */
    instant("sum_over_time({app=\"api\"} | logfmt | unwrap bytes(size) [30s])", 30,
            "vector: {app=\"api\", dur=\"1.5s\", env=\"prod\", level=\"error\"} 30:4000; "
            "{app=\"api\", dur=\"1s\", env=\"prod\", level=\"info\"} 30:3000; {app=\"api\", "
            "dur=\"250ms\", env=\"prod\", level=\"error\"} 30:2000");
    /* counter 1, 3, 6 at 10, 20, 30: extrapolated as Prometheus does */
    instant("rate_counter({app=\"ctr\"} | json | unwrap n [30s])", 30,
            "vector: {app=\"ctr\", env=\"dev\"} 30:0.2");
    /* the unwrapped label leaves the series; others stay */
    instant("max_over_time({app=\"ctr\"} | json | unwrap n [30s])", 30,
            "vector: {app=\"ctr\", env=\"dev\"} 30:6");
    /* one sample in the window */
    instant("stddev_over_time({app=\"ctr\"} | json | unwrap n [5s])", 30,
            "vector: {app=\"ctr\", env=\"dev\"} 30:0");
}

static void test_errors(void **state)
{
    (void)state;
    /* "bad" is no duration: SampleExtractionErr fails the query... */
    assert_int_equal(
        run("max_over_time({app=\"web\"} | logfmt | unwrap duration(dur) [30s]) by (app)", 30, 30,
            1, true),
        SL_EINVAL);
    assert_non_null(strstr(errmsg, "pipeline error: 'SampleExtractionErr' for series: '{"));
    assert_non_null(strstr(errmsg, "__error_details__=\"time: invalid duration \\\"bad\\\"\""));
    /* ... unless filtered after unwrap */
    instant("max_over_time({app=\"web\"} | logfmt | unwrap duration(dur) | __error__=\"\" [30s]) "
            "by (app)",
            30, "vector: {app=\"web\"} 30:0.02");
    /* a parser error fails a metric query too */
    assert_int_equal(run("count_over_time({app=\"api\"} | json [30s])", 30, 30, 1, true),
                     SL_EINVAL);
    assert_non_null(strstr(errmsg, "pipeline error: 'JSONParserErr'"));
    instant("sum(count_over_time({app=\"api\"} | json | __error__!=\"\" | drop __error__, "
            "__error_details__ [30s]))",
            30, "vector: {} 30:3");
    /* Loki's parser hints: with by (level), json stops once it has level,
     * so a fault after it is not seen; without them the line is an error */
    instant("sum by (level) (count_over_time({app=\"js\"} | json [20s]))", 50,
            "vector: {level=\"error\"} 50:1; {level=\"info\"} 50:1");
    assert_int_equal(run("count_over_time({app=\"js\"} | json [20s])", 50, 50, 1, true), SL_EINVAL);
    assert_non_null(strstr(errmsg, "pipeline error: 'JSONParserErr'"));
    /* sum without grouping needs no label: json does not even run */
    instant("sum(count_over_time({app=\"js\"} | json [20s]))", 50, "vector: {} 50:2");
    /* a label filter on another label needs it too: the parser reads on */
    assert_int_equal(run("sum by (level) (count_over_time({app=\"js\"} | json | x!=\"1\" [20s]))",
                         50, 50, 1, true),
                     SL_EINVAL);
    /* the series limit */
    max_series = 3;
    assert_int_equal(run("count_over_time({env=\"prod\"} | logfmt [30s])", 0, 30, 1, false),
                     SL_ETOOBIG);
    max_series = 100;
    assert_string_equal(errmsg, "maximum of series (3) reached for a single query");
}

static void test_vector_aggregations(void **state)
{
    (void)state;
    const char *inner = "count_over_time({env=\"prod\"} | logfmt | drop dur, size, status [30s])";
    /* api: error 2, info 1; web: info 2, warn 1 */
    char q[256];
    snprintf(q, sizeof q, "sum by (level) (%s)", inner);
    instant(q, 30, "vector: {level=\"error\"} 30:2; {level=\"info\"} 30:3; {level=\"warn\"} 30:1");
    snprintf(q, sizeof q, "sum(%s) by (level)", inner);
    instant(q, 30, "vector: {level=\"error\"} 30:2; {level=\"info\"} 30:3; {level=\"warn\"} 30:1");
    snprintf(q, sizeof q, "sum without (app, env) (%s)", inner);
    instant(q, 30, "vector: {level=\"error\"} 30:2; {level=\"info\"} 30:3; {level=\"warn\"} 30:1");
    snprintf(q, sizeof q, "count by (app) (%s)", inner);
    instant(q, 30, "vector: {app=\"api\"} 30:2; {app=\"web\"} 30:2");
    snprintf(q, sizeof q, "avg(%s)", inner);
    instant(q, 30, "vector: {} 30:1.5");
    snprintf(q, sizeof q, "min(%s)", inner);
    instant(q, 30, "vector: {} 30:1");
    snprintf(q, sizeof q, "max by (app) (%s)", inner);
    instant(q, 30, "vector: {app=\"api\"} 30:2; {app=\"web\"} 30:2");
    snprintf(q, sizeof q, "stdvar(%s)", inner);
    instant(q, 30, "vector: {} 30:0.25");
    snprintf(q, sizeof q, "stddev(%s)", inner);
    instant(q, 30, "vector: {} 30:0.5");
    /* topk: ties go to the smaller label set */
    snprintf(q, sizeof q, "topk(1, %s)", inner);
    instant(q, 30, "vector: {app=\"api\", env=\"prod\", level=\"error\"} 30:2");
    snprintf(q, sizeof q, "topk by (app) (1, %s)", inner);
    instant(
        q, 30,
        "vector: {app=\"api\", env=\"prod\", level=\"error\"} 30:2; {app=\"web\", env=\"prod\", "
        "level=\"info\"} 30:2");
    snprintf(q, sizeof q, "bottomk(2, %s)", inner);
    instant(q, 30,
            "vector: {app=\"api\", env=\"prod\", level=\"info\"} 30:1; {app=\"web\", env=\"prod\", "
            "level=\"warn\"} 30:1");
    /* sort keeps its order in an instant vector */
    snprintf(q, sizeof q, "sort_desc(sum by (level) (%s))", inner);
    instant(q, 30, "vector: {level=\"info\"} 30:3; {level=\"error\"} 30:2; {level=\"warn\"} 30:1");
    snprintf(q, sizeof q, "sort(sum by (level) (%s))", inner);
    instant(q, 30, "vector: {level=\"warn\"} 30:1; {level=\"error\"} 30:2; {level=\"info\"} 30:3");
    /* over steps */
    range("sum by (app) (count_over_time({env=\"prod\"}[10s]))", 10, 30, 10,
          "matrix: {app=\"api\"} 10:1 20:1 30:1; {app=\"web\"} 10:1 20:1 30:1");
}

static void test_binary_operators(void **state)
{
    (void)state;
    instant("vector(1)+vector(1)", 30, "vector: {} 30:2");
    instant("1 + 2 * 3", 30, "scalar: {} 30:7");
    instant("2 ^ 3 ^ 2", 30, "scalar: {} 30:512");
    instant("7 % 4 - 1", 30, "scalar: {} 30:2");
    instant("1 == bool 1", 30, "scalar: {} 30:1");
    /* Loki: a zero divisor gives NaN for / and %, never an infinity */
    instant("vector(0) / vector(0)", 30, "vector: {} 30:NaN");
    instant("vector(1) / 0", 30, "vector: {} 30:NaN");
    instant("-1 / 0", 30, "scalar: {} 30:NaN");
    instant("vector(5) % 0", 30, "vector: {} 30:NaN");
    instant("-2 * vector(1)", 30, "vector: {} 30:-2");
    /* the sign belongs to the literal: (-2)^2 */
    instant("-2 ^ 2", 30, "scalar: {} 30:4");
    /* scalar comparisons give 0/1 with or without bool */
    instant("7 > 2", 30, "scalar: {} 30:1");
    instant("2 >= 7", 30, "scalar: {} 30:0");
    instant("sum(count_over_time({app=\"api\"}[30s])) / sum(count_over_time({env=\"prod\"}[30s]))",
            30, "vector: {} 30:0.5");
    instant("count_over_time({env=\"prod\"}[30s]) * 2", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:6; {app=\"web\", env=\"prod\"} 30:6");
    instant("10 - count_over_time({app=\"api\"}[30s])", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:7");
    /* comparisons filter, or give 0/1 with bool */
    instant("count_over_time({env=~\".+\"}[30s]) > 2", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:3; {app=\"ctr\", env=\"dev\"} 30:3; "
            "{app=\"web\", env=\"prod\"} 30:3");
    instant("count_over_time({env=\"prod\"}[15s]) >= bool 2", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:1; {app=\"web\", env=\"prod\"} 30:0");
    instant("count_over_time({env=\"prod\"}[15s]) == 2", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:2");
    /* one-to-one on all labels */
    instant("count_over_time({env=\"prod\"}[30s]) - count_over_time({env=\"prod\"}[15s])", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:1; {app=\"web\", env=\"prod\"} 30:2");
    /* on/ignoring */
    instant("sum by (app, env) (count_over_time({app=\"api\"}[30s])) / on (env) sum by (env) "
            "(count_over_time({env=\"prod\"}[30s]))",
            30, "vector: {env=\"prod\"} 30:0.5");
    instant("sum by (app, env) (count_over_time({app=\"api\"}[30s])) / ignoring (app) sum by (env) "
            "(count_over_time({env=\"prod\"}[30s]))",
            30, "vector: {env=\"prod\"} 30:0.5");
    /* many-to-one */
    instant("sum by (app, env) (count_over_time({env=\"prod\"}[30s])) / on (env) group_left sum "
            "by (env) (count_over_time({env=\"prod\"}[30s]))",
            30, "vector: {app=\"api\", env=\"prod\"} 30:0.5; {app=\"web\", env=\"prod\"} 30:0.5");
    instant("sum by (env) (count_over_time({env=\"prod\"}[30s])) * on (env) group_right sum by "
            "(app, env) (count_over_time({env=\"prod\"}[30s]))",
            30, "vector: {app=\"api\", env=\"prod\"} 30:18; {app=\"web\", env=\"prod\"} 30:18");
    /* many-to-one without group_left is an error */
    assert_int_equal(run("sum by (app, env) (count_over_time({env=\"prod\"}[30s])) / on (env) sum "
                         "by (env) (count_over_time({env=\"prod\"}[30s]))",
                         30, 30, 1, true),
                     SL_EINVAL);
    assert_non_null(strstr(errmsg, "many-to-one matching must be explicit"));
    /* set operators */
    instant("count_over_time({app=\"api\"}[30s]) and count_over_time({app=\"web\"}[30s])", 30,
            "vector:");
    instant("count_over_time({app=\"api\"}[30s]) and on (env) count_over_time({app=\"web\"}[30s])",
            30, "vector: {app=\"api\", env=\"prod\"} 30:3");
    instant("count_over_time({app=\"api\"}[30s]) or count_over_time({app=\"web\"}[30s])", 30,
            "vector: {app=\"api\", env=\"prod\"} 30:3; {app=\"web\", env=\"prod\"} 30:3");
    instant(
        "count_over_time({env=~\".+\"}[30s]) unless on (env) count_over_time({app=\"api\"}[30s])",
        30, "vector: {app=\"ctr\", env=\"dev\"} 30:3");
}

static void test_label_replace(void **state)
{
    (void)state;
    instant("label_replace(count_over_time({app=\"api\"}[30s]), \"x\", \"$1-y\", \"env\", "
            "\"(p)rod\")",
            30, "vector: {app=\"api\", env=\"prod\", x=\"p-y\"} 30:3");
    /* no match: unchanged; an empty result deletes the label */
    instant("label_replace(count_over_time({app=\"api\"}[30s]), \"x\", \"$1\", \"env\", \"dev\")",
            30, "vector: {app=\"api\", env=\"prod\"} 30:3");
    instant("label_replace(count_over_time({app=\"api\"}[30s]), \"app\", \"\", \"env\", \".*\")",
            30, "vector: {env=\"prod\"} 30:3");
    instant("label_replace(vector(1), \"a\", \"${1}b\", \"none\", \"(.*)\")", 30,
            "vector: {a=\"b\"} 30:1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_and_steps),
        cmocka_unit_test(test_range_functions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_vector_aggregations),
        cmocka_unit_test(test_binary_operators),
        cmocka_unit_test(test_label_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
