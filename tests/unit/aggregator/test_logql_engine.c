/* LogQL engine conformance: small datasets, each built for one question,
 * with results computed by hand from Loki's documented semantics (windows
 * (t - range, t], steps start, start + step, ... <= end, NaN and infinity
 * rules, vector matching, label filter grouping, parser details). */
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

#define BASE 1700000000000LL /* ms */
#define MS   1000000LL

/* One entry: stream labels, time in ms after BASE, line. A dataset ends
 * with a NULL labels. */
struct ent {
    const char *labels;
    int64_t ms;
    const char *line;
};

static char out[16384];
static char errmsg[4096];

/* Appends n copies of line every step_ms from first_ms to d (at most cap). */
static size_t repeat(struct ent *d, size_t at, const char *labels, const char *line,
                     int64_t first_ms, int64_t step_ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[at + i] = (struct ent){labels, first_ms + (int64_t)i * step_ms, line};
    d[at + n] = (struct ent){NULL, 0, NULL};
    return at + n;
}

/* Runs q over d. The result goes to out as "type: {labels} t:v t:v; ..." with
 * t in seconds after BASE (ms precision); an error to errmsg. */
static int run(const struct ent *d, const char *q, int64_t start_ms, int64_t end_ms,
               int64_t step_ms, bool instant)
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
    struct sl_logql_metric_params pr = {(BASE + start_ms) * MS, (BASE + end_ms) * MS, step_ms * MS,
                                        instant, 0};
    struct sl_logql_metric *m = NULL;
    assert_int_equal(sl_logql_metric_new(lq, &pr, &m, &err), 0);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    for (size_t i = 0; i < sl_logql_metric_nsources(m); i++) {
        int64_t from, through;
        sl_logql_metric_source(m, i, &from, &through);
        /* stream by stream, as the querier feeds them */
        for (size_t s = 0; d[s].labels; s++) {
            bool first = true;
            for (size_t k = 0; k < s; k++)
                if (strcmp(d[k].labels, d[s].labels) == 0)
                    first = false;
            if (!first)
                continue;
            struct sl_labels ls;
            assert_int_equal(sl_labels_parse(&a, d[s].labels, strlen(d[s].labels), &ls, NULL), 0);
            sl_labels_sort(&ls);
            if (!sl_logql_metric_stream(m, i, &ls))
                continue;
            for (size_t k = s; d[k].labels; k++) {
                int64_t ts = (BASE + d[k].ms) * MS;
                if (strcmp(d[k].labels, d[s].labels) == 0 && ts >= from && ts < through)
                    sl_logql_metric_entry(m, i, ts, sl_bytes_str(d[k].line));
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
                int64_t rel = ts[k] - BASE;
                if (rel % 1000)
                    sl_buf_appendf(&b, " %lld.%03lld:", (long long)(rel / 1000),
                                   (long long)(rel % 1000));
                else
                    sl_buf_appendf(&b, " %lld:", (long long)(rel / 1000));
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

static void instant(const struct ent *d, const char *q, int64_t at_s, const char *want)
{
    int rc = run(d, q, at_s * 1000, at_s * 1000, 1000, true);
    if (rc)
        fail_msg("%s: rc %d: %s", q, rc, errmsg);
    if (strcmp(out, want) != 0)
        fail_msg("%s\n  got  %s\n  want %s", q, out, want);
}

static void range_ms(const struct ent *d, const char *q, int64_t s, int64_t e, int64_t step,
                     const char *want)
{
    int rc = run(d, q, s, e, step, false);
    if (rc)
        fail_msg("%s: rc %d: %s", q, rc, errmsg);
    if (strcmp(out, want) != 0)
        fail_msg("%s\n  got  %s\n  want %s", q, out, want);
}

static void range(const struct ent *d, const char *q, int64_t s, int64_t e, int64_t step,
                  const char *want)
{
    range_ms(d, q, s * 1000, e * 1000, step * 1000, want);
}

/* The query fails with rc and a message containing part. */
static void fails(const struct ent *d, const char *q, int64_t at_s, int want_rc, const char *part)
{
    int rc = run(d, q, at_s * 1000, at_s * 1000, 1000, true);
    if (rc != want_rc)
        fail_msg("%s: rc %d (want %d): %s %s", q, rc, want_rc, out, errmsg);
    if (!strstr(errmsg, part))
        fail_msg("%s\n  error %s\n  lacks %s", q, errmsg, part);
}

static const struct ent none[] = {{NULL, 0, NULL}};

/* ---- windows, steps, offset, instant ---- */

static void test_windows(void **state)
{
    (void)state;
    static struct ent d[64];
    size_t n = repeat(d, 0, "{app=\"a\"}", "x", 0, 10000, 13); /* 0s, 10s, ..., 120s */
    repeat(d, n, "{app=\"noise\"}", "x", 5000, 10000, 12);
    /* (30s, 60s]: 40, 50, 60 -- the start is out, the end is in */
    instant(d, "count_over_time({app=\"a\"}[30s])", 60, "vector: {app=\"a\"} 60:3");
    /* a window starting exactly on an entry excludes it: (0, 10] holds 10 only */
    instant(d, "count_over_time({app=\"a\"}[10s])", 10, "vector: {app=\"a\"} 10:1");
    /* steps at start, start + step, ...; the last one <= end (95 is not a step) */
    range(d, "count_over_time({app=\"a\"}[10s])", 60, 95, 15, "matrix: {app=\"a\"} 60:1 75:1 90:1");
    /* a window with no entry gives no point: (56, 61] holds 60, (61, 66] is
     * empty, (66, 71] holds 70 */
    range(d, "count_over_time({app=\"a\"}[5s])", 61, 71, 5, "matrix: {app=\"a\"} 61:1 71:1");
    /* steps stay aligned to start, not to the step: 3, 13, 23 */
    range(d, "count_over_time({app=\"a\"}[10s])", 3, 23, 10, "matrix: {app=\"a\"} 3:1 13:1 23:1");
    /* offset moves the window back: at 60 with offset 30s it is (0, 30];
     * with 100s, 100 looks at (-10, 0], 115 at (5, 15], 130 at (20, 30] */
    instant(d, "count_over_time({app=\"a\"}[30s] offset 30s)", 60, "vector: {app=\"a\"} 60:3");
    range(d, "count_over_time({app=\"a\"}[10s] offset 100s)", 100, 130, 15,
          "matrix: {app=\"a\"} 100:1 115:1 130:1");
    /* before the first entry and after the last: nothing */
    instant(d, "count_over_time({app=\"a\"}[30s])", 200, "vector:");
    range(d, "count_over_time({app=\"none\"}[30s])", 0, 120, 30, "matrix:");
    /* an instant query over the whole range: 13 lines in (-1, 120] */
    instant(d, "count_over_time({app=\"a\"}[121s])", 120, "vector: {app=\"a\"} 120:13");
    /* a sub-second range and step: 100, 300, 500 ms in (0, 500ms] */
    static struct ent ms[16];
    repeat(ms, 0, "{app=\"b\"}", "keep", 100, 200, 6);
    range_ms(ms, "rate({app=\"b\"}[500ms])", 500, 900, 400, "matrix: {app=\"b\"} 0.500:6 0.900:6");
    /* with offset: at 1 s the window is (0, 500ms]: 100, 300, 500; at 1.3 s
     * it is (300ms, 800ms]: 500, 700 */
    instant(ms, "rate({app=\"b\"}[500ms] offset 500ms)", 1, "vector: {app=\"b\"} 1:6");
    range_ms(ms, "rate({app=\"b\"}[500ms] offset 500ms)", 1300, 1300, 1000,
             "matrix: {app=\"b\"} 1.300:4");
}

/* ---- log range functions ---- */

static void test_log_range_functions(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{app=\"a\"}", 10000, "a"},
        {"{app=\"a\"}", 20000, "bb"},
        {"{app=\"a\"}", 30000, "ccc"},
        {"{app=\"a\"}", 40000, "dddd"},
        {"{app=\"b\", env=\"x\"}", 25000, "eeeee"},
        {NULL, 0, NULL},
    };
    instant(d, "count_over_time({app=\"a\"}[40s])", 40, "vector: {app=\"a\"} 40:4");
    /* 4 lines over 40 s */
    instant(d, "rate({app=\"a\"}[40s])", 40, "vector: {app=\"a\"} 40:0.1");
    /* 1 + 2 + 3 + 4 bytes */
    instant(d, "bytes_over_time({app=\"a\"}[40s])", 40, "vector: {app=\"a\"} 40:10");
    instant(d, "bytes_rate({app=\"a\"}[20s])", 40, "vector: {app=\"a\"} 40:0.35");
    /* one sample */
    instant(d, "count_over_time({app=\"b\"}[10s])", 30, "vector: {app=\"b\", env=\"x\"} 30:1");
    /* absent: 1 where nothing is in the window, with the selector's equality
     * labels; nothing where there is data */
    range(d, "absent_over_time({app=\"b\", env=~\"x|y\"}[10s])", 20, 50, 10,
          "matrix: {app=\"b\"} 20:1 40:1 50:1");
    instant(d, "absent_over_time({app=\"a\"}[10s])", 40, "vector:");
    instant(d, "absent_over_time({app=\"zz\"} |= \"x\" [1m])", 40, "vector: {app=\"zz\"} 40:1");
    /* the line filter decides what counts */
    instant(d, "count_over_time({app=\"a\"} |~ \"^[a-c]+$\" [40s])", 40,
            "vector: {app=\"a\"} 40:3");
    instant(d, "bytes_over_time({app=\"a\"} != \"dddd\" [40s])", 40, "vector: {app=\"a\"} 40:6");
}

/* ---- unwrapped range functions ---- */

static void test_unwrap_functions(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{app=\"u\"}", 10000, "v=2"},
        {"{app=\"u\"}", 20000, "v=4"},
        {"{app=\"u\"}", 30000, "v=4"},
        {"{app=\"u\"}", 40000, "v=10"},
        {"{app=\"u\"}", 35000, "noise"}, /* no v: not a sample, not an error */
        {NULL, 0, NULL},
    };
    const char *u = "{app=\"u\"} | logfmt | unwrap v [40s])";
    struct {
        const char *fn, *want;
    } cases[] = {
        {"sum_over_time(", "20"},
        {"avg_over_time(", "5"},
        {"min_over_time(", "2"},
        {"max_over_time(", "10"},
        /* mean 5: (9 + 1 + 1 + 25) / 4 = 9, computed as Loki does (Welford's
         * running mean and sum of squares), which in doubles ends a little
         * short of 9 */
        {"stdvar_over_time(", "8.999999999999998"},
        {"stddev_over_time(", "2.9999999999999996"},
        {"first_over_time(", "2"},
        {"last_over_time(", "10"},
        /* rate of an unwrapped value: the sum per second */
        {"rate(", "0.5"},
        /* sorted 2 4 4 10: rank 0.5 * 3 = 1.5 between 4 and 4 */
        {"quantile_over_time(0.5, ", "4"},
        /* rank 0.75 * 3 = 2.25: 4 * 0.75 + 10 * 0.25 */
        {"quantile_over_time(0.75, ", "5.5"},
        {"quantile_over_time(0, ", "2"},
        {"quantile_over_time(1, ", "10"},
        {"quantile_over_time(1.5, ", "+Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[256], want[128];
        snprintf(q, sizeof q, "%s%s", cases[i].fn, u);
        snprintf(want, sizeof want, "vector: {app=\"u\"} 40:%s", cases[i].want);
        instant(d, q, 40, want);
    }
    /* one sample: variance 0, the value itself for the others */
    instant(d, "stddev_over_time({app=\"u\"} | logfmt | unwrap v [5s])", 40,
            "vector: {app=\"u\"} 40:0");
    instant(d, "quantile_over_time(0.3, {app=\"u\"} | logfmt | unwrap v [5s])", 40,
            "vector: {app=\"u\"} 40:10");
    /* grouping of the allowed functions */
    instant(d, "max_over_time({app=\"u\"} | logfmt | unwrap v [40s]) by (nope)", 40,
            "vector: {} 40:10");
    instant(d, "first_over_time({app=\"u\"} | logfmt | unwrap v [40s]) without (app)", 40,
            "vector: {} 40:2");
}

/* ---- conversions and extraction errors ---- */

static void test_unwrap_conversions(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{k=\"s\"}", 10000, "d=2s b=1KB"},
        {"{k=\"ms\"}", 10000, "d=250ms b=1KiB"},
        {"{k=\"hm\"}", 10000, "d=1h30m b=1.5MB"},
        {"{k=\"neg\"}", 10000, "d=-1.5s b=2,048"},
        {"{k=\"frac\"}", 10000, "d=1.5h b=1.9B"},
        {"{k=\"bare\"}", 10000, "d=0 b=512"},
        {NULL, 0, NULL},
    };
    instant(d, "max_over_time({k=~\".+\"} | logfmt | unwrap duration(d) [1m]) by (k)", 10,
            "vector: {k=\"bare\"} 10:0; {k=\"frac\"} 10:5400; {k=\"hm\"} 10:5400; {k=\"ms\"} "
            "10:0.25; {k=\"neg\"} 10:-1.5; {k=\"s\"} 10:2");
    instant(d, "max_over_time({k=\"ms\"} | logfmt | unwrap duration_seconds(d) [1m])", 10,
            "vector: {b=\"1KiB\", k=\"ms\"} 10:0.25");
    /* bytes(): decimal and binary units, commas, a fraction truncated */
    instant(d, "max_over_time({k=~\".+\"} | logfmt | unwrap bytes(b) [1m]) by (k)", 10,
            "vector: {k=\"bare\"} 10:512; {k=\"frac\"} 10:1; {k=\"hm\"} 10:1500000; {k=\"ms\"} "
            "10:1024; {k=\"neg\"} 10:2048; {k=\"s\"} 10:1000");
    /* conversion errors: SampleExtractionErr with Go's message, the query
     * fails unless filtered */
    static const struct ent bad[] = {
        {"{k=\"x\"}", 10000, "d=90 b=1XB n=abc"},
        {"{k=\"y\"}", 10000, "d=1d b=oops n=1"},
        {"{k=\"z\"}", 10000, "d=5s b=5 n=2"},
        {NULL, 0, NULL},
    };
    fails(bad, "max_over_time({k=\"x\"} | logfmt | unwrap duration(d) [1m])", 10, SL_EINVAL,
          "__error_details__=\"time: missing unit in duration \\\"90\\\"\"");
    fails(bad, "max_over_time({k=\"y\"} | logfmt | unwrap duration(d) [1m])", 10, SL_EINVAL,
          "time: unknown unit \\\"d\\\" in duration \\\"1d\\\"");
    fails(bad, "max_over_time({k=\"x\"} | logfmt | unwrap bytes(b) [1m])", 10, SL_EINVAL,
          "unhandled size name: xb");
    fails(bad, "max_over_time({k=\"y\"} | logfmt | unwrap bytes(b) [1m])", 10, SL_EINVAL,
          "strconv.ParseFloat: parsing \\\"\\\": invalid syntax");
    fails(bad, "max_over_time({k=\"x\"} | logfmt | unwrap n [1m])", 10, SL_EINVAL,
          "pipeline error: 'SampleExtractionErr' for series");
    instant(bad, "max_over_time({k=~\".+\"} | logfmt | unwrap n | __error__=\"\" [1m]) by (k)", 10,
            "vector: {k=\"y\"} 10:1; {k=\"z\"} 10:2");
    /* Go's ParseFloat: a hex float is a number, a value beyond a double is
     * an error (out of range), spaces and underscores are syntax errors */
    static const struct ent g[] = {
        {"{k=\"h\"}", 10000, "v=0x1p4"},
        {"{k=\"o\"}", 10000, "v=1e400"},
        {"{k=\"s\"}", 10000, "v=\" 1\""},
        {"{k=\"u\"}", 10000, "v=1_000"},
        {NULL, 0, NULL},
    };
    instant(g, "max_over_time({k=~\".+\"} | logfmt | unwrap v | __error__=\"\" [1m])", 10,
            "vector: {k=\"h\"} 10:16");
    fails(g, "max_over_time({k=\"o\"} | logfmt | unwrap v [1m])", 10, SL_EINVAL,
          "strconv.ParseFloat: parsing \\\"1e400\\\": value out of range");
    fails(g, "count_over_time({k=\"u\"} | logfmt | v > 1 [1m])", 10, SL_EINVAL,
          "strconv.ParseFloat: parsing \\\"1_000\\\": invalid syntax");
    /* a NaN, Inf or -Inf value is a number, not an error */
    static const struct ent sp[] = {
        {"{k=\"n\"}", 10000, "v=NaN"},
        {"{k=\"p\"}", 10000, "v=+Inf"},
        {"{k=\"m\"}", 10000, "v=-Inf"},
        {NULL, 0, NULL},
    };
    instant(sp, "max_over_time({k=~\".+\"} | logfmt | unwrap v [1m])", 10,
            "vector: {k=\"m\"} 10:-Inf; {k=\"n\"} 10:NaN; {k=\"p\"} 10:+Inf");
}

/* ---- NaN and infinities in range functions ---- */

static void test_special_values(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{c=\"lead\"}", 10000, "v=NaN"}, {"{c=\"lead\"}", 20000, "v=3"},
        {"{c=\"lead\"}", 30000, "v=1"},   {"{c=\"inf\"}", 10000, "v=+Inf"},
        {"{c=\"inf\"}", 20000, "v=1"},    {"{c=\"mix\"}", 10000, "v=+Inf"},
        {"{c=\"mix\"}", 20000, "v=-Inf"}, {NULL, 0, NULL},
    };
    /* min/max skip a NaN; first/last return the boundary sample as it is;
     * sum/avg follow IEEE arithmetic */
    instant(d, "min_over_time({c=\"lead\"} | logfmt | unwrap v [30s])", 30,
            "vector: {c=\"lead\"} 30:1");
    instant(d, "max_over_time({c=\"lead\"} | logfmt | unwrap v [30s])", 30,
            "vector: {c=\"lead\"} 30:3");
    instant(d, "first_over_time({c=\"lead\"} | logfmt | unwrap v [30s])", 30,
            "vector: {c=\"lead\"} 30:NaN");
    instant(d, "sum_over_time({c=\"lead\"} | logfmt | unwrap v [30s])", 30,
            "vector: {c=\"lead\"} 30:NaN");
    instant(d, "avg_over_time({c=~\"inf|mix\"} | logfmt | unwrap v [30s])", 30,
            "vector: {c=\"inf\"} 30:+Inf; {c=\"mix\"} 30:NaN");
    instant(d, "stdvar_over_time({c=\"inf\"} | logfmt | unwrap v [30s])", 30,
            "vector: {c=\"inf\"} 30:NaN");
}

/* ---- rate_counter: resets and Prometheus' extrapolation ---- */

static void test_rate_counter(void **state)
{
    (void)state;
    /* 30, 60, 90 then a reset to 30, then 60: increase 60 + 30 = 90 ... */
    static const struct ent d[] = {
        {"{k=\"r\"}", 30000, "c=30"},  {"{k=\"r\"}", 60000, "c=60"},  {"{k=\"r\"}", 90000, "c=90"},
        {"{k=\"r\"}", 120000, "c=30"}, {"{k=\"r\"}", 150000, "c=60"}, {NULL, 0, NULL},
    };
    /* (30, 150]: 60 90 30 60 -> +30 +30 reset(+30) +30 = 90 over 90 s;
     * the first sample is 30 s from the start (< 1.1 * 30): extrapolate to
     * 120 s: 90 * 120 / 90 / 120 = 1 */
    instant(d, "rate_counter({k=\"r\"} | logfmt | unwrap c [2m])", 150, "vector: {k=\"r\"} 150:1");
    /* one sample: 0; none: nothing */
    instant(d, "rate_counter({k=\"r\"} | logfmt | unwrap c [10s])", 30, "vector: {k=\"r\"} 30:0");
    instant(d, "rate_counter({k=\"r\"} | logfmt | unwrap c [10s])", 200, "vector:");
    /* 40 at 180 s, 100 at 210 s over (120, 210]: the first sample is 60 s
     * from the start, beyond 1.1 * 30 s, so only 15 s are added; the zero
     * point (20 s before 180) does not shorten that: 60 * 45 / 30 / 90 = 1 */
    static const struct ent z[] = {
        {"{k=\"z\"}", 180000, "c=40"}, {"{k=\"z\"}", 210000, "c=100"}, {NULL, 0, NULL}};
    instant(z, "rate_counter({k=\"z\"} | logfmt | unwrap c [90s])", 210, "vector: {k=\"z\"} 210:1");
    /* the zero point limits the extrapolation: 30 at 75, 90 at 105 over
     * (45, 105]: zero at 60, 15 s back, 30 s to the start -> 60 * 45 / 30 / 60 */
    static const struct ent y[] = {
        {"{k=\"y\"}", 75000, "c=30"}, {"{k=\"y\"}", 105000, "c=90"}, {NULL, 0, NULL}};
    instant(y, "rate_counter({k=\"y\"} | logfmt | unwrap c [1m])", 105,
            "vector: {k=\"y\"} 105:1.5");
}

/* ---- vector aggregations ---- */

static const struct ent agg_data[] = {
    /* in (0, 60]: a/1 6, a/2 2, b/1 4, b/2 4 lines */
    {"{app=\"a\", pod=\"1\"}", 10000, "x"},
    {"{app=\"a\", pod=\"1\"}", 20000, "x"},
    {"{app=\"a\", pod=\"1\"}", 30000, "x"},
    {"{app=\"a\", pod=\"1\"}", 40000, "x"},
    {"{app=\"a\", pod=\"1\"}", 50000, "x"},
    {"{app=\"a\", pod=\"1\"}", 60000, "x"},
    {"{app=\"a\", pod=\"2\"}", 30000, "x"},
    {"{app=\"a\", pod=\"2\"}", 60000, "x"},
    {"{app=\"b\", pod=\"1\"}", 15000, "x"},
    {"{app=\"b\", pod=\"1\"}", 30000, "x"},
    {"{app=\"b\", pod=\"1\"}", 45000, "x"},
    {"{app=\"b\", pod=\"1\"}", 60000, "x"},
    {"{app=\"b\", pod=\"2\"}", 15000, "x"},
    {"{app=\"b\", pod=\"2\"}", 30000, "x"},
    {"{app=\"b\", pod=\"2\"}", 45000, "x"},
    {"{app=\"b\", pod=\"2\"}", 60000, "x"},
    {NULL, 0, NULL},
};
#define C "count_over_time({app=~\"a|b\"}[1m])"

static void test_vector_aggregations(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    instant(d, "sum(" C ")", 60, "vector: {} 60:16");
    instant(d, "sum by (app) (" C ")", 60, "vector: {app=\"a\"} 60:8; {app=\"b\"} 60:8");
    instant(d, "sum(" C ") by (app)", 60, "vector: {app=\"a\"} 60:8; {app=\"b\"} 60:8");
    instant(d, "sum without (app) (" C ")", 60, "vector: {pod=\"1\"} 60:10; {pod=\"2\"} 60:6");
    instant(d, "sum(" C ") without (app, pod)", 60, "vector: {} 60:16");
    instant(d, "avg(" C ")", 60, "vector: {} 60:4");
    instant(d, "min by (pod) (" C ")", 60, "vector: {pod=\"1\"} 60:4; {pod=\"2\"} 60:2");
    instant(d, "max without (pod) (" C ")", 60, "vector: {app=\"a\"} 60:6; {app=\"b\"} 60:4");
    instant(d, "count(" C ")", 60, "vector: {} 60:4");
    /* 6 2 4 4: mean 4, squares 4 4 0 0 -> 2 */
    instant(d, "stdvar(" C ")", 60, "vector: {} 60:2");
    instant(d, "stddev by (app) (" C ")", 60, "vector: {app=\"a\"} 60:2; {app=\"b\"} 60:0");
    /* a group that is absent at a step gives no point there */
    range(d, "sum by (pod) (count_over_time({app=\"a\"}[10s]))", 20, 40, 10,
          "matrix: {pod=\"1\"} 20:1 30:1 40:1; {pod=\"2\"} 30:1");
    /* grouping by a label nobody has: one group with no labels */
    instant(d, "max by (nope) (" C ")", 60, "vector: {} 60:6");
}

static void test_topk_sort(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    instant(d, "topk(1, " C ")", 60, "vector: {app=\"a\", pod=\"1\"} 60:6");
    /* a tie (b/1 and b/2 at 4) goes to the smaller label set */
    instant(d, "topk(2, " C ")", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:6; {app=\"b\", pod=\"1\"} 60:4");
    instant(d, "bottomk(2, " C ")", 60,
            "vector: {app=\"a\", pod=\"2\"} 60:2; {app=\"b\", pod=\"1\"} 60:4");
    instant(d, "topk by (app) (1, " C ")", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:6; {app=\"b\", pod=\"1\"} 60:4");
    instant(d, "bottomk(1, " C ") without (app)", 60,
            "vector: {app=\"a\", pod=\"2\"} 60:2; {app=\"b\", pod=\"1\"} 60:4");
    /* k larger than the vector: all of it */
    instant(d, "topk(10, count_over_time({app=\"a\"}[1m]))", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:6; {app=\"a\", pod=\"2\"} 60:2");
    /* topk over steps: per step, the top series of that step */
    range(d, "topk(1, count_over_time({app=~\"a|b\", pod=\"2\"}[15s]))", 15, 30, 15,
          "matrix: {app=\"a\", pod=\"2\"} 30:1; {app=\"b\", pod=\"2\"} 15:1");
    /* sort orders an instant vector by value (ties: by labels), and the order
     * survives an operation with a scalar */
    instant(
        d, "sort(" C ")", 60,
        "vector: {app=\"a\", pod=\"2\"} 60:2; {app=\"b\", pod=\"1\"} 60:4; {app=\"b\", pod=\"2\"} "
        "60:4; {app=\"a\", pod=\"1\"} 60:6");
    instant(d, "sort_desc(" C ") * 10", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:60; {app=\"b\", pod=\"1\"} 60:40; {app=\"b\", "
            "pod=\"2\"} 60:40; {app=\"a\", pod=\"2\"} 60:20");
    /* NaN: dropped by topk/bottomk, last in sort and sort_desc */
    static const struct ent sp[] = {
        {"{k=\"n\"}", 10000, "v=NaN"},
        {"{k=\"f\"}", 10000, "v=2"},
        {"{k=\"i\"}", 10000, "v=-Inf"},
        {NULL, 0, NULL},
    };
    const char *m = "max_over_time({k=~\".+\"} | logfmt | unwrap v [1m])";
    char q[256];
    snprintf(q, sizeof q, "topk(2, %s)", m);
    instant(sp, q, 10, "vector: {k=\"f\"} 10:2; {k=\"i\"} 10:-Inf");
    snprintf(q, sizeof q, "bottomk(1, %s)", m);
    instant(sp, q, 10, "vector: {k=\"i\"} 10:-Inf");
    snprintf(q, sizeof q, "sort_desc(%s)", m);
    instant(sp, q, 10, "vector: {k=\"f\"} 10:2; {k=\"i\"} 10:-Inf; {k=\"n\"} 10:NaN");
    snprintf(q, sizeof q, "sort(%s)", m);
    instant(sp, q, 10, "vector: {k=\"i\"} 10:-Inf; {k=\"f\"} 10:2; {k=\"n\"} 10:NaN");
    /* min and max ignore NaN unless it is all there is; sum and avg do not */
    snprintf(q, sizeof q, "min(%s)", m);
    instant(sp, q, 10, "vector: {} 10:-Inf");
    snprintf(q, sizeof q, "max(%s)", m);
    instant(sp, q, 10, "vector: {} 10:2");
    snprintf(q, sizeof q, "sum(%s)", m);
    instant(sp, q, 10, "vector: {} 10:NaN");
    snprintf(q, sizeof q, "count(%s)", m);
    instant(sp, q, 10, "vector: {} 10:3");
}

/* ---- binary operators ---- */

static void test_arithmetic(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    /* scalar-scalar, precedence, associativity */
    instant(none, "1 + 2 * 3 - 4 / 2", 60, "scalar: {} 60:5");
    instant(none, "2 ^ 3 ^ 2", 60, "scalar: {} 60:512");
    instant(none, "(2 ^ 3) ^ 2", 60, "scalar: {} 60:64");
    instant(none, "10 / 5 / 2", 60, "scalar: {} 60:1");
    instant(none, "10 % 4", 60, "scalar: {} 60:2");
    instant(none, "-2 ^ 2", 60, "scalar: {} 60:4");
    instant(none, "1 - -1", 60, "scalar: {} 60:2");
    /* a zero divisor gives NaN (Loki), for / and % alike */
    instant(none, "1 / 0", 60, "scalar: {} 60:NaN");
    instant(none, "-1 / 0", 60, "scalar: {} 60:NaN");
    instant(none, "5 % 0", 60, "scalar: {} 60:NaN");
    instant(d, "count_over_time({app=\"a\", pod=\"2\"}[1m]) / 0", 60,
            "vector: {app=\"a\", pod=\"2\"} 60:NaN");
    instant(d, "vector(1) / vector(0) + 1", 60, "vector: {} 60:NaN");
    /* vector-scalar on either side keeps the vector's labels */
    instant(d, "count_over_time({app=\"a\"}[1m]) * 2", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:12; {app=\"a\", pod=\"2\"} 60:4");
    instant(d, "12 / count_over_time({app=\"a\"}[1m])", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:2; {app=\"a\", pod=\"2\"} 60:6");
    instant(d, "2 ^ count_over_time({app=\"a\", pod=\"2\"}[1m])", 60,
            "vector: {app=\"a\", pod=\"2\"} 60:4");
    /* vector-vector: one-to-one on all labels; unmatched series vanish */
    instant(d, "count_over_time({app=\"a\"}[1m]) - count_over_time({pod=\"1\"}[1m])", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:0");
    instant(d, "vector(1) + vector(1)", 60, "vector: {} 60:2");
    /* over steps: (vector(2) * 3) at every step */
    range(none, "vector(2) * 3", 0, 20, 10, "matrix: {} 0:6 10:6 20:6");
}

static void test_comparisons(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    /* scalar comparisons give 0 or 1, bool or not */
    instant(none, "2 > 1", 60, "scalar: {} 60:1");
    instant(none, "2 < 1", 60, "scalar: {} 60:0");
    instant(none, "2 == bool 2", 60, "scalar: {} 60:1");
    /* vector-scalar: a filter keeping the vector's value, on either side */
    instant(d, C " > 4", 60, "vector: {app=\"a\", pod=\"1\"} 60:6");
    instant(d, "4 > " C, 60, "vector: {app=\"a\", pod=\"2\"} 60:2");
    instant(d, C " == 4", 60, "vector: {app=\"b\", pod=\"1\"} 60:4; {app=\"b\", pod=\"2\"} 60:4");
    instant(d, "4 != " C, 60, "vector: {app=\"a\", pod=\"1\"} 60:6; {app=\"a\", pod=\"2\"} 60:2");
    instant(d, C " >= bool 4", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:1; {app=\"a\", pod=\"2\"} 60:0; {app=\"b\", "
            "pod=\"1\"} 60:1; {app=\"b\", pod=\"2\"} 60:1");
    instant(d, "5 < bool count_over_time({app=\"a\"}[1m])", 60,
            "vector: {app=\"a\", pod=\"1\"} 60:1; {app=\"a\", pod=\"2\"} 60:0");
    /* vector-vector: the left value where it holds */
    instant(d,
            "sum by (pod) (count_over_time({app=\"a\"}[1m])) > sum by (pod) "
            "(count_over_time({app=\"b\"}[1m]))",
            60, "vector: {pod=\"1\"} 60:6");
    instant(d,
            "sum by (pod) (count_over_time({app=\"a\"}[1m])) <= bool sum by (pod) "
            "(count_over_time({app=\"b\"}[1m]))",
            60, "vector: {pod=\"1\"} 60:0; {pod=\"2\"} 60:1");
    /* NaN compares false, except != */
    static const struct ent n[] = {{"{k=\"n\"}", 10000, "v=NaN"}, {NULL, 0, NULL}};
    const char *m = "max_over_time({k=\"n\"} | logfmt | unwrap v [1m])";
    char q[256];
    snprintf(q, sizeof q, "%s > 0", m);
    instant(n, q, 10, "vector:");
    snprintf(q, sizeof q, "%s != 0", m);
    instant(n, q, 10, "vector: {k=\"n\"} 10:NaN");
    snprintf(q, sizeof q, "%s == bool 0", m);
    instant(n, q, 10, "vector: {k=\"n\"} 10:0");
    /* a filter over steps drops points, not series */
    range(d, "count_over_time({app=\"a\", pod=\"1\"}[30s]) > 2", 30, 60, 10,
          "matrix: {app=\"a\", pod=\"1\"} 30:3 40:3 50:3 60:3");
    range(d, "count_over_time({app=\"a\", pod=\"2\"}[30s]) >= 1", 20, 60, 20,
          "matrix: {app=\"a\", pod=\"2\"} 40:1 60:1");
}

static void test_set_operators(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    instant(d, "count_over_time({app=\"a\"}[1m]) and count_over_time({pod=\"2\"}[1m])", 60,
            "vector: {app=\"a\", pod=\"2\"} 60:2");
    instant(d,
            "count_over_time({app=\"a\"}[1m]) and on (pod) count_over_time({app=\"b\", "
            "pod=\"2\"}[1m])",
            60, "vector: {app=\"a\", pod=\"2\"} 60:2");
    instant(d,
            "count_over_time({app=\"a\"}[1m]) unless ignoring (app) count_over_time({app=\"b\", "
            "pod=\"1\"}[1m])",
            60, "vector: {app=\"a\", pod=\"2\"} 60:2");
    /* or: all of the left, then the right series whose match is missing */
    instant(
        d,
        "count_over_time({app=\"a\", pod=\"1\"}[1m]) or on (pod) count_over_time({app=\"b\"}[1m])",
        60, "vector: {app=\"a\", pod=\"1\"} 60:6; {app=\"b\", pod=\"2\"} 60:4");
    /* and/unless bind tighter than or: a or (b and c) */
    instant(d,
            "count_over_time({app=\"a\", pod=\"1\"}[1m]) or count_over_time({app=\"b\"}[1m]) and "
            "vector(0)",
            60, "vector: {app=\"a\", pod=\"1\"} 60:6");
    /* or vector(0) fills the steps where the left has nothing */
    range(d, "sum(count_over_time({app=\"a\", pod=\"2\"}[10s])) or vector(0)", 20, 40, 10,
          "matrix: {} 20:0 30:1 40:0");
    /* on () with an empty right side: nothing matches */
    instant(d, "count_over_time({app=\"a\"}[1m]) and on () count_over_time({app=\"zz\"}[1m])", 60,
            "vector:");
}

static void test_vector_matching(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    /* each pod's share of its app */
    instant(d,
            "sum by (app, pod) (count_over_time({app=\"a\"}[1m])) / on (app) group_left sum by "
            "(app) (count_over_time({app=\"a\"}[1m]))",
            60, "vector: {app=\"a\", pod=\"1\"} 60:0.75; {app=\"a\", pod=\"2\"} 60:0.25");
    /* group_right: the labels of the many (right) side, the one side's value
     * on the left of the operator */
    instant(d,
            "sum by (app) (count_over_time({app=\"b\"}[1m])) - on (app) group_right sum by (app, "
            "pod) (count_over_time({app=\"b\"}[1m]))",
            60, "vector: {app=\"b\", pod=\"1\"} 60:4; {app=\"b\", pod=\"2\"} 60:4");
    /* group_left (label): copies the label from the one side */
    instant(d,
            "sum by (pod) (count_over_time({app=\"a\"}[1m])) * on (pod) group_left (app) sum by "
            "(pod, app) (count_over_time({app=\"b\"}[1m]))",
            60, "vector: {app=\"b\", pod=\"1\"} 60:24; {app=\"b\", pod=\"2\"} 60:8");
    /* many-to-one without group_left, and duplicates on the one side */
    fails(d,
          "sum by (app, pod) (count_over_time({app=\"a\"}[1m])) / on (app) sum by (app) "
          "(count_over_time({app=\"a\"}[1m]))",
          60, SL_EINVAL,
          "multiple matches for labels: many-to-one matching must be explicit "
          "(group_left/group_right)");
    fails(d,
          "sum by (app) (count_over_time({app=\"a\"}[1m])) / ignoring (pod) sum by (app, pod) "
          "(count_over_time({app=\"a\"}[1m]))",
          60, SL_EINVAL, "found duplicate series on the right hand-side;many-to-many matching");
    fails(d,
          "sum by (app, pod) (count_over_time({app=~\"a|b\"}[1m])) > bool on (pod) group_right "
          "sum by (app, pod) (count_over_time({app=~\"a|b\"}[1m]))",
          60, SL_EINVAL, "found duplicate series on the left hand-side");
}

static void test_functions(void **state)
{
    (void)state;
    const struct ent *d = agg_data;
    instant(none, "vector(3)", 60, "vector: {} 60:3");
    range(none, "vector(1.5)", 0, 20, 10, "matrix: {} 0:1.5 10:1.5 20:1.5");
    /* a capture into a new label; the regex is anchored */
    instant(d,
            "label_replace(count_over_time({app=\"a\"}[1m]), \"p\", \"pod-$1\", \"pod\", \"(1)\")",
            60, "vector: {app=\"a\", p=\"pod-1\", pod=\"1\"} 60:6; {app=\"a\", pod=\"2\"} 60:2");
    /* an empty result deletes the label; an absent source reads as "" */
    instant(d,
            "label_replace(count_over_time({app=\"a\", pod=\"2\"}[1m]), \"app\", \"$1\", \"app\", "
            "\"a(.*)\")",
            60, "vector: {pod=\"2\"} 60:2");
    instant(d,
            "label_replace(count_over_time({app=\"a\", pod=\"2\"}[1m]), \"zone\", \"eu\", "
            "\"nope\", \".*\")",
            60, "vector: {app=\"a\", pod=\"2\", zone=\"eu\"} 60:2");
    /* ${1}x names the group next to a letter */
    instant(none, "label_replace(vector(1), \"a\", \"${1}x\", \"b\", \"(.*)\")", 60,
            "vector: {a=\"x\"} 60:1");
}

/* ---- parsers, label filters, formats inside metric queries ---- */

static void test_parsers(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{app=\"j\", level=\"s\"}", 10000,
         "{\"level\":\"p\",\"a.b\":1,\"o\":{\"x\":{\"y\":true}},\"arr\":[1],\"n\":null,\"d\":1,"
         "\"d\":2}"},
        {"{app=\"l\"}", 10000, "a-b=1 9x=2 d=1 d=2 msg=\"hi there\" e="},
        {"{app=\"r\"}", 10000, "GET /api 200"},
        {"{app=\"u\"}", 10000, "{\"k\":\"v\",\"_entry\":\"inner\",\"num\":5}"},
        {NULL, 0, NULL},
    };
    /* json: nested keys joined with _, arrays and null skipped, the first of
     * a duplicate kept, a stream label's name gets _extracted */
    instant(d, "count_over_time({app=\"j\"} | json [1m])", 10,
            "vector: {a_b=\"1\", app=\"j\", d=\"1\", level=\"s\", level_extracted=\"p\", "
            "o_x_y=\"true\"} 10:1");
    instant(d, "count_over_time({app=\"j\"} | json v=\"o.x.y\", m=\"missing\", w=\"o.x\" [1m])", 10,
            "vector: {app=\"j\", level=\"s\", m=\"\", v=\"true\", w=\"{\\\"y\\\":true}\"} 10:1");
    /* logfmt: sanitized names, first duplicate, empty values with --keep-empty */
    instant(d, "count_over_time({app=\"l\"} | logfmt [1m])", 10,
            "vector: {_9x=\"2\", a_b=\"1\", app=\"l\", d=\"1\", msg=\"hi there\"} 10:1");
    instant(d, "count_over_time({app=\"l\"} | logfmt --keep-empty e, m=\"msg\" [1m])", 10,
            "vector: {app=\"l\", e=\"\", m=\"hi there\"} 10:1");
    instant(d, "count_over_time({app=\"r\"} | regexp \"(?P<m>\\\\w+) (?P<p>\\\\S+)\" [1m])", 10,
            "vector: {app=\"r\", m=\"GET\", p=\"/api\"} 10:1");
    instant(d, "count_over_time({app=\"r\"} | pattern \"<_> <path> <code>\" [1m])", 10,
            "vector: {app=\"r\", code=\"200\", path=\"/api\"} 10:1");
    /* unpack: string fields only; _entry replaces the line */
    instant(d, "bytes_over_time({app=\"u\"} | unpack [1m])", 10,
            "vector: {app=\"u\", k=\"v\"} 10:5");
    /* a parse error fails a metric query, unless filtered or dropped */
    fails(d, "count_over_time({app=\"r\"} | json [1m])", 10, SL_EINVAL,
          "pipeline error: 'JSONParserErr'");
    instant(d, "count_over_time({app=\"r\"} | json | __error__=\"\" [1m])", 10, "vector:");
    instant(d, "count_over_time({app=\"r\"} | json | drop __error__, __error_details__ [1m])", 10,
            "vector: {app=\"r\"} 10:1");
    /* Loki's parser hints: under sum() a later parser does not run once the
     * labels the query needs are all extracted, so unpack never sees that
     * this logfmt line is no JSON; without the hints it does */
    instant(d, "sum(count_over_time({app=\"l\"} | logfmt | unpack | d=\"1\" [1m]))", 10,
            "vector: {} 10:1");
    fails(d, "count_over_time({app=\"l\"} | logfmt | unpack | d=\"1\" [1m])", 10, SL_EINVAL,
          "pipeline error: 'JSONParserErr'");
    /* a parser after an error-free parser keeps the line's labels */
    instant(d,
            "count_over_time({app=\"l\"} | logfmt | line_format \"{{.msg}}\" | regexp "
            "\"(?P<w>\\\\w+)$\" | keep w [1m])",
            10, "vector: {w=\"there\"} 10:1");
}

/* __error_details__ of json as Loki's parser (jsonparser's ObjectEach) words
 * them; an array's content is skipped, a trailing comma is accepted */
static void test_json_errors(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{i=\"0\"}", 10000, "{"},
        {"{i=\"1\"}", 10000, "broken"},
        {"{i=\"2\"}", 10000, "{\"a\":1"},
        {"{i=\"3\"}", 10000, "{\"a\" 1}"},
        {"{i=\"4\"}", 10000, "{\"a\":\"x"},
        {"{i=\"5\"}", 10000, "{\"a\":{\"b\":x}}"},
        {"{i=\"6\"}", 10000, "{\"a\":[1,2}"},
        {"{i=\"7\"}", 10000, "{\"a\":[1,x],\"b\":\"c\",}"},
        {NULL, 0, NULL},
    };
    instant(d,
            "sum by (i, __error_details__) (count_over_time({i=~\".+\"} | json | __error__!=\"\" "
            "| drop __error__ [1m]))",
            10,
            "vector: {__error_details__=\"Malformed JSON error\", i=\"0\"} 10:1; "
            "{__error_details__=\"Malformed JSON error\", i=\"3\"} 10:1; "
            "{__error_details__=\"Unknown value type\", i=\"5\"} 10:1; "
            "{__error_details__=\"Value is array, but can't find closing ']' symbol\", i=\"2\"} "
            "10:1; {__error_details__=\"Value is array, but can't find closing ']' symbol\", "
            "i=\"6\"} 10:1; {__error_details__=\"Value is string, but can't find closing "
            "'\\\"' symbol\", i=\"4\"} 10:1; {__error_details__=\"Value looks like object, but "
            "can't find closing '}' symbol\", i=\"1\"} 10:1");
    instant(d, "count_over_time({i=~\".+\"} | json | __error__=\"\" [1m])", 10,
            "vector: {b=\"c\", i=\"7\"} 10:1");
}

/* logfmt --strict errors name go-logfmt's position (1-based) and reason */
static void test_logfmt_errors(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{i=\"0\"}", 10000, "a=1 =2"},
        {"{i=\"1\"}", 10000, "a\"b=1"},
        {"{i=\"2\"}", 10000, "a=b=c"},
        {"{i=\"3\"}", 10000, "a=\"x"},
        {"{i=\"4\"}", 10000, "a=\"\\q\""},
        {"{i=\"5\"}", 10000, "a b= c=\"x y\" d=\"q\\\"z\""},
        {NULL, 0, NULL},
    };
    instant(
        d,
        "sum by (i, __error_details__) (count_over_time({i=~\".+\"} | logfmt --strict | "
        "__error__!=\"\" | drop __error__ [1m]))",
        10,
        "vector: {__error_details__=\"logfmt syntax error at pos 2 : unexpected '\\\"'\", "
        "i=\"1\"} 10:1; {__error_details__=\"logfmt syntax error at pos 4 : unexpected '='\", "
        "i=\"2\"} 10:1; {__error_details__=\"logfmt syntax error at pos 5 : unexpected '='\", "
        "i=\"0\"} 10:1; {__error_details__=\"logfmt syntax error at pos 5 : unterminated quoted "
        "value\", i=\"3\"} 10:1; {__error_details__=\"logfmt syntax error at pos 7 : invalid "
        "quoted value\", i=\"4\"} 10:1");
    /* bare keys and empty values are skipped, kept empty with --keep-empty;
     * quoted values are unescaped */
    instant(d, "count_over_time({i=\"5\"} | logfmt [1m])", 10,
            "vector: {c=\"x y\", d=\"q\\\"z\", i=\"5\"} 10:1");
    instant(d, "count_over_time({i=\"5\"} | logfmt --keep-empty [1m])", 10,
            "vector: {a=\"\", b=\"\", c=\"x y\", d=\"q\\\"z\", i=\"5\"} 10:1");
}

static void test_label_filters(void **state)
{
    (void)state;
    static struct ent d[32];
    size_t n = 0;
    /* x y z in binary: 111, 100, 011, 010, 001 */
    n = repeat(d, n, "{app=\"f\"}", "x=1 y=1 z=1", 10000, 1000, 1);
    n = repeat(d, n, "{app=\"f\"}", "x=1 y=0 z=0", 11000, 1000, 1);
    n = repeat(d, n, "{app=\"f\"}", "x=0 y=1 z=1", 12000, 1000, 1);
    n = repeat(d, n, "{app=\"f\"}", "x=0 y=1 z=0", 13000, 1000, 1);
    n = repeat(d, n, "{app=\"f\"}", "x=0 y=0 z=1", 14000, 1000, 1);
    const char *fmt = "sum(count_over_time({app=\"f\"} | logfmt | %s [1m]))";
    struct {
        const char *filter;
        int count;
    } cases[] = {
        {"x=\"1\" and y=\"1\"", 1},
        /* and binds tighter than or: x or (y and z) = 111 100 011 */
        {"x=\"1\" or y=\"1\" and z=\"1\"", 3},
        {"x=\"1\" and y=\"1\" or z=\"1\"", 3},
        /* a comma or a space takes the rest of the filter as its right side
         * (Loki's grammar): x and (y or z) = 111 100... only x=1 lines with
         * y=1 or z=0: 111 100 */
        {"x=\"1\", y=\"1\" or z=\"0\"", 2},
        {"x=\"1\" y=\"1\" or z=\"0\"", 2},
        /* but after an or, the same as and: x or (y, z) */
        {"x=\"1\" or y=\"1\", z=\"1\"", 3},
        /* a pipe starts a new stage: (x or y) and z = 111 011 */
        {"x=\"1\" or y=\"1\" | z=\"1\"", 2},
        {"(x=\"1\" or y=\"1\") and z=\"1\"", 2},
        {"x=\"1\" or y=\"1\" or z=\"0\"", 4},
        {"x!=\"1\", z=~\"0|1\"", 3},
        {"x > 0 or z >= 1", 4},
        {"x == 0 and y != 0", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[256], want[64];
        snprintf(q, sizeof q, fmt, cases[i].filter);
        snprintf(want, sizeof want, "vector: {} 60:%d", cases[i].count);
        instant(d, q, 60, want);
    }
    /* numbers, durations, bytes and ip compare converted values */
    static const struct ent v[] = {
        {"{app=\"v\"}", 10000, "n=200.0 d=1m30s b=3MB ip=10.1.2.3 s=oops"},
        {"{app=\"v\"}", 11000, "n=500 d=250ms b=3000KB ip=192.168.0.1 s=x"},
        {NULL, 0, NULL},
    };
    const char *vf = "sum(count_over_time({app=\"v\"} | logfmt | %s | __error__=\"\" [1m]))";
    struct {
        const char *filter, *want;
    } vc[] = {
        {"n == 200", "vector: {} 60:1"},
        {"n = 200", "vector: {} 60:1"},
        {"d > 1m", "vector: {} 60:1"},
        {"d <= 250ms", "vector: {} 60:1"},
        {"b == 3MB", "vector: {} 60:2"},
        {"b > 2.9MiB", "vector: {} 60:0"},
        {"ip = ip(\"10.0.0.0/8\")", "vector: {} 60:1"},
        {"ip != ip(\"10.0.0.0/8\")", "vector: {} 60:1"},
        {"nope > 1", "vector:"},
        /* a value that does not convert is an error: filtered out here */
        {"s > 1", "vector:"},
    };
    for (size_t i = 0; i < sizeof vc / sizeof vc[0]; i++) {
        char q[256];
        snprintf(q, sizeof q, vf, vc[i].filter);
        /* sum() of nothing is an empty vector, not 0 */
        instant(v, q, 60, strcmp(vc[i].want, "vector: {} 60:0") == 0 ? "vector:" : vc[i].want);
    }
    /* or short-circuits: a matching left side never converts the right one,
     * the other order fails on the first line */
    instant(v, "sum(count_over_time({app=\"v\"} | logfmt | ip=~\".+\" or s > 1 [1m]))", 60,
            "vector: {} 60:2");
    fails(v, "sum(count_over_time({app=\"v\"} | logfmt | s > 1 or ip=~\".+\" [1m]))", 60, SL_EINVAL,
          "pipeline error: 'LabelFilterErr'");
    /* and runs both sides: a false right side drops the line, error or not */
    instant(v, "sum(count_over_time({app=\"v\"} | logfmt | s > 1 and n > 1000 [1m]))", 60,
            "vector:");
    /* the first failing filter owns the details */
    fails(v, "sum by (n) (count_over_time({app=\"v\"} | logfmt | n=\"500\" | s > 1s [1m]))", 60,
          SL_EINVAL, "time: invalid duration \\\"x\\\"");
}

static void test_formats(void **state)
{
    (void)state;
    static const struct ent d[] = {
        {"{app=\"f\", level=\"error\"}", 10000, "plain"},
        {"{app=\"f\", level=\"info\"}", 20000, "\x1b[31mred\x1b[0m"},
        {NULL, 0, NULL},
    };
    /* bytes_over_time sees the rewritten line */
    instant(
        d,
        "bytes_over_time({app=\"f\", level=\"error\"} | line_format \"{{.level | upper}}!\" [1m])",
        30, "vector: {app=\"f\", level=\"error\"} 30:6");
    instant(d, "count_over_time({app=\"f\"} | line_format \"L={{.level}}\" |= \"L=info\" [1m])", 30,
            "vector: {app=\"f\", level=\"info\"} 30:1");
    /* Go escapes in a template string; decolorize strips ANSI codes */
    instant(d,
            "bytes_over_time({app=\"f\", level=\"error\"} | line_format `{{ printf "
            "\"\\x1b[1m%s\\x1b[0m\" .level }}` [1m])",
            30, "vector: {app=\"f\", level=\"error\"} 30:13");
    instant(d,
            "bytes_over_time({app=\"f\"} | line_format `{{ printf \"\\x1b[1m%s\\x1b[0m\" "
            ".level }}` | decolorize [1m])",
            30, "vector: {app=\"f\", level=\"error\"} 30:5; {app=\"f\", level=\"info\"} 30:4");
    instant(d, "bytes_over_time({app=\"f\", level=\"info\"} | decolorize [1m])", 30,
            "vector: {app=\"f\", level=\"info\"} 30:3");
    /* label_format: a rename moves the value, a template keeps the source */
    instant(d, "count_over_time({app=\"f\"} | label_format lvl=level [1m])", 30,
            "vector: {app=\"f\", lvl=\"error\"} 30:1; {app=\"f\", lvl=\"info\"} 30:1");
    instant(d,
            "sum by (t) (count_over_time({app=\"f\"} | label_format t=\"{{.app}}-{{.level | "
            "ToUpper}}\" [1m]))",
            30, "vector: {t=\"f-ERROR\"} 30:1; {t=\"f-INFO\"} 30:1");
    /* sprig's round: scale, then ceil from .5 and floor below it, also for
     * negative numbers; a huge place count ends at once */
    instant(d,
            "sum by (r) (count_over_time({app=\"f\", level=\"error\"} | label_format r=`{{ "
            "round -2.4 0 }}/{{ round 1234.5 -2 }}/{{ round 0.125 2 }}/{{ round 1.5 "
            "9223372036854775807 }}` [1m]))",
            30, "vector: {r=\"-3/1200/0.13/NaN\"} 30:1");
    /* trunc keeps the last -n bytes, also at the most negative count */
    instant(d,
            "sum by (r) (count_over_time({app=\"f\", level=\"error\"} | label_format r=`{{ "
            "trunc -2 .level }}/{{ trunc 2 .level }}/{{ trunc -9223372036854775808 .level }}` "
            "[1m]))",
            30, "vector: {r=\"or/er/error\"} 30:1");
    /* sprig's substr: clamps only as sprig does; other bounds are Go's
     * runtime error, so the template fails */
    instant(d,
            "sum by (r) (count_over_time({app=\"f\", level=\"error\"} | label_format r=`{{ "
            "substr 1 3 .level }}/{{ substr -1 2 .level }}/{{ substr 3 99 .level }}` [1m]))",
            30, "vector: {r=\"rr/er/or\"} 30:1");
    fails(d,
          "count_over_time({app=\"f\", level=\"error\"} | label_format r=`{{ substr 4 2 .level "
          "}}` [1m])",
          30, SL_EINVAL, "slice bounds out of range [4:2]");
    /* drop and keep, by name and by matcher */
    instant(d, "count_over_time({app=\"f\"} | drop level [1m])", 30, "vector: {app=\"f\"} 30:2");
    instant(d, "count_over_time({app=\"f\"} | drop level=\"info\" [1m])", 30,
            "vector: {app=\"f\"} 30:1; {app=\"f\", level=\"error\"} 30:1");
    instant(d, "count_over_time({app=\"f\"} | keep level=\"info\" [1m])", 30,
            "vector: {} 30:1; {level=\"info\"} 30:1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_log_range_functions),
        cmocka_unit_test(test_unwrap_functions),
        cmocka_unit_test(test_unwrap_conversions),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_rate_counter),
        cmocka_unit_test(test_vector_aggregations),
        cmocka_unit_test(test_topk_sort),
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_set_operators),
        cmocka_unit_test(test_vector_matching),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_logfmt_errors),
        cmocka_unit_test(test_label_filters),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
