/* LogQL-lite parser and evaluator: canonical round trips, Loki-style error
 * positions, unsupported constructs named, and matching semantics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/logql/logql.h"
#include "common/err.h"

/* Parses q and returns the canonical text (static buffer) or NULL; rc_out
 * gets the return code and err_out the message. */
static char canon[4096];
static char errmsg[4096];

static int parse(const char *q)
{
    struct sl_logql_query *lq = NULL;
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_logql_parse(q, strlen(q), &lq, &err);
    canon[0] = errmsg[0] = 0;
    if (rc == 0) {
        struct sl_buf out = SL_BUF_INIT;
        sl_logql_format(lq, &out);
        snprintf(canon, sizeof canon, "%.*s", (int)out.len, out.data);
        sl_buf_release(&out);
        sl_logql_query_free(lq);
        assert_int_equal(err.len, 0);
    } else {
        assert_null(lq);
        snprintf(errmsg, sizeof errmsg, "%.*s", (int)err.len, err.data ? err.data : "");
    }
    sl_buf_release(&err);
    return rc;
}

static void expect_canon(const char *q, const char *want)
{
    int rc = parse(q);
    if (rc)
        fail_msg("%s: unexpected error %d: %s", q, rc, errmsg);
    assert_string_equal(canon, want);
    /* The canonical form is a fixed point. */
    char again[4096];
    snprintf(again, sizeof again, "%s", canon);
    assert_int_equal(parse(again), 0);
    assert_string_equal(canon, again);
}

static void expect_error(const char *q, int want_rc, const char *want_msg)
{
    int rc = parse(q);
    if (rc != want_rc)
        fail_msg("%s: rc %d (want %d), canon=%s err=%s", q, rc, want_rc, canon, errmsg);
    assert_string_equal(errmsg, want_msg);
}

static void test_valid_selectors(void **state)
{
    (void)state;
    expect_canon("{app=\"api\"}", "{app=\"api\"}");
    expect_canon("  { app = \"api\" ,env!=\"dev\" }  ", "{app=\"api\", env!=\"dev\"}");
    expect_canon("{pod=~\"api-.*\", ns!~\"kube-.*\"}", "{pod=~\"api-.*\", ns!~\"kube-.*\"}");
    expect_canon("{a=`raw\\d+`}", "{a=\"raw\\\\d+\"}");
    expect_canon("{a=\"tab\\there\\nnl \\\"q\\\" \\x41\\u00e9\\101\"}",
                 "{a=\"tab\\there\\nnl \\\"q\\\" AéA\"}");
    expect_canon("{a=\"\\xff\\x00\"}", "{a=\"\\xff\\x00\"}");
    expect_canon("{_x1=\"v\"}", "{_x1=\"v\"}");
    expect_canon("(({app=\"x\"}))", "{app=\"x\"}");
    expect_canon("{a!=\"\"}", "{a!=\"\"}"); /* != "" does not match "" */
    expect_canon("{a=\"\", b=\"x\"}", "{a=\"\", b=\"x\"}");
    expect_canon("{a=\"x\"} # a comment\n", "{a=\"x\"}");
}

static void test_valid_line_filters(void **state)
{
    (void)state;
    expect_canon("{app=\"api\"} |= \"error\"", "{app=\"api\"} |= \"error\"");
    expect_canon("{app=\"api\"}|=\"a\"!=\"b\"|~\"c.*\"!~`d\\w`",
                 "{app=\"api\"} |= \"a\" != \"b\" |~ \"c.*\" !~ \"d\\\\w\"");
    expect_canon("{app=\"api\"}\n  |= \"x\"\n  != \"y\"", "{app=\"api\"} |= \"x\" != \"y\"");
    expect_canon("({app=\"api\"} |= \"x\")", "{app=\"api\"} |= \"x\"");
    expect_canon("{app=\"api\"} |= \"\"", "{app=\"api\"} |= \"\"");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("{app=\"api\"", SL_EINVAL,
                 "parse error at line 1, col 11: syntax error: unexpected $end, expecting , or }");
    expect_error("{app=\"api\" |= \"x\"", SL_EINVAL,
                 "parse error at line 1, col 12: syntax error: unexpected |=, expecting , or }");
    expect_error("{app=api}", SL_EINVAL,
                 "parse error at line 1, col 6: syntax error: unexpected IDENTIFIER, "
                 "expecting STRING");
    expect_error("{app}", SL_EINVAL,
                 "parse error at line 1, col 5: syntax error: unexpected }, expecting = or != or "
                 "=~ or !~");
    expect_error("{app=\"x\"} |= ", SL_EINVAL,
                 "parse error at line 1, col 14: syntax error: unexpected $end, expecting STRING");
    expect_error("{app=\"x\"}\n  |= \"a\" foo", SL_EINVAL,
                 "parse error at line 2, col 10: syntax error: unexpected IDENTIFIER");
    expect_error("{app=\"x", SL_EINVAL, "parse error at line 1, col 6: literal not terminated");
    expect_error("{app=\"\\q\"}", SL_EINVAL, "parse error at line 1, col 7: invalid char escape");
    expect_error("{app=\"x\"} @", SL_EINVAL,
                 "parse error at line 1, col 11: syntax error: unexpected character '@'");
    expect_error("{app=\"é\"} x", SL_EINVAL,
                 "parse error at line 1, col 11: syntax error: unexpected IDENTIFIER");
    expect_error("{app=\"x\"} | 12", SL_EINVAL,
                 "parse error at line 1, col 13: syntax error: unexpected NUMBER, "
                 "expecting IDENTIFIER");
    expect_error("foo", SL_EINVAL,
                 "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER");
    expect_error("({app=\"x\"}", SL_EINVAL,
                 "parse error at line 1, col 11: syntax error: unexpected $end, expecting )");
}

static void test_regex_errors(void **state)
{
    (void)state;
    assert_int_equal(parse("{app=~\"(\"}"), SL_EINVAL);
    assert_non_null(strstr(errmsg, "parse error at line 1, col 7: error parsing regexp: "));
    assert_int_equal(parse("{app=\"x\"} |~ \"a[\""), SL_EINVAL);
    assert_non_null(strstr(errmsg, "parse error at line 1, col 14: error parsing regexp: "));
}

static void test_empty_selectors(void **state)
{
    (void)state;
    const char *msg =
        "parse error : queries require at least one regexp or equality matcher that does not "
        "have an empty-compatible value. For instance, app=~\".*\" does not meet this "
        "requirement, but app=~\".+\" will";
    expect_error("{}", SL_EINVAL, msg);
    expect_error("{a=\"\"}", SL_EINVAL, msg);
    expect_error("{a=~\".*\"}", SL_EINVAL, msg);
    expect_error("{a!=\"x\", b!~\"y\"}", SL_EINVAL, msg);
    expect_error("{a=~\"x|\"}", SL_EINVAL, msg);
    assert_int_equal(parse("{a=~\".+\"}"), 0);
    assert_int_equal(parse("{a=\"\", b=~\"x\"}"), 0);
}

static void test_unsupported(void **state)
{
    (void)state;
    expect_error("{app=\"x\"} |> \"<_> error\"", SL_EUNSUPP,
                 "unsupported in this version: pattern line filter \"|>\"");
    expect_error("{app=\"x\"} !> \"<_> error\"", SL_EUNSUPP,
                 "unsupported in this version: pattern line filter \"!>\"");
    expect_error("{app=\"x\"} | distinct a", SL_EUNSUPP,
                 "unsupported in this version: stage \"distinct\"");
    expect_error("approx_topk(2, rate({a=\"b\"}[1m]))", SL_EUNSUPP,
                 "unsupported in this version: function \"approx_topk\"");
    expect_error("count_values(\"x\", rate({a=\"b\"}[1m]))", SL_EUNSUPP,
                 "unsupported in this version: function \"count_values\"");
    expect_error("sum_over_time({a=\"b\"} | unwrap foo(x) [1m])", SL_EUNSUPP,
                 "unsupported in this version: unwrap conversion \"foo\"");
    expect_error("{app=\"x\"}[5m]", SL_EUNSUPP,
                 "unsupported in this version: range vector outside a metric query");
}

/* Valid queries and their canonical text. */
static const char *const valid[][2] = {
    /* parsers */
    {"{a=\"b\"} | json", "{a=\"b\"} | json"},
    {"{a=\"b\"}|json|logfmt", "{a=\"b\"} | json | logfmt"},
    {"{a=\"b\"} | json foo=\"bar.baz\", q=`x[0]`", "{a=\"b\"} | json foo=\"bar.baz\", q=\"x[0]\""},
    {"{a=\"b\"} | json foo", "{a=\"b\"} | json foo=\"foo\""},
    {"{a=\"b\"} | json ua=`request.headers[\"User-Agent\"]`",
     "{a=\"b\"} | json ua=\"request.headers[\\\"User-Agent\\\"]\""},
    {"{a=\"b\"} | logfmt --strict", "{a=\"b\"} | logfmt --strict"},
    {"{a=\"b\"} | logfmt --keep-empty --strict", "{a=\"b\"} | logfmt --strict --keep-empty"},
    {"{a=\"b\"} | logfmt x=\"y\", z", "{a=\"b\"} | logfmt x=\"y\", z=\"z\""},
    {"{a=\"b\"} | regexp `(?P<ip>\\S+) (?P<m>\\w+)`",
     "{a=\"b\"} | regexp \"(?P<ip>\\\\S+) (?P<m>\\\\w+)\""},
    {"{a=\"b\"} | pattern `<ip> - <_> \"<method> <path>\"`",
     "{a=\"b\"} | pattern \"<ip> - <_> \\\"<method> <path>\\\"\""},
    {"{a=\"b\"} | unpack", "{a=\"b\"} | unpack"},
    {"{a=\"b\"} | decolorize", "{a=\"b\"} | decolorize"},
    /* label filters */
    {"{a=\"b\"} | x=\"y\"", "{a=\"b\"} | x=\"y\""},
    {"{a=\"b\"} | x!=\"y\"", "{a=\"b\"} | x!=\"y\""},
    {"{a=\"b\"} | x=~\"y.*\"", "{a=\"b\"} | x=~\"y.*\""},
    {"{a=\"b\"} | x!~\"y.*\"", "{a=\"b\"} | x!~\"y.*\""},
    {"{a=\"b\"} | x > 5", "{a=\"b\"} | x>5"},
    {"{a=\"b\"} | x >= 5.5", "{a=\"b\"} | x>=5.5"},
    {"{a=\"b\"} | x < -1", "{a=\"b\"} | x<-1"},
    {"{a=\"b\"} | x <= 1e3", "{a=\"b\"} | x<=1000"},
    {"{a=\"b\"} | x == 2", "{a=\"b\"} | x==2"},
    {"{a=\"b\"} | x = 2", "{a=\"b\"} | x==2"},
    {"{a=\"b\"} | x != 2", "{a=\"b\"} | x!=2"},
    {"{a=\"b\"} | d > 1s", "{a=\"b\"} | d>1s"},
    {"{a=\"b\"} | d >= 1m30s", "{a=\"b\"} | d>=1m30s"},
    {"{a=\"b\"} | d < 250ms", "{a=\"b\"} | d<250ms"},
    {"{a=\"b\"} | s > 10KB", "{a=\"b\"} | s>10KB"},
    {"{a=\"b\"} | s <= 1MiB", "{a=\"b\"} | s<=1MiB"},
    {"{a=\"b\"} | x=\"1\" and y=\"2\"", "{a=\"b\"} | ( x=\"1\" , y=\"2\" )"},
    {"{a=\"b\"} | x=\"1\", y=\"2\"", "{a=\"b\"} | ( x=\"1\" , y=\"2\" )"},
    {"{a=\"b\"} | x=\"1\" y=\"2\"", "{a=\"b\"} | ( x=\"1\" , y=\"2\" )"},
    {"{a=\"b\"} | x=\"1\" or y=\"2\"", "{a=\"b\"} | ( x=\"1\" or y=\"2\" )"},
    {"{a=\"b\"} | x=\"1\" or y=\"2\" and z=\"3\"",
     "{a=\"b\"} | ( x=\"1\" or ( y=\"2\" , z=\"3\" ) )"},
    {"{a=\"b\"} | (x=\"1\" or y=\"2\") and z=\"3\"",
     "{a=\"b\"} | ( ( x=\"1\" or y=\"2\" ) , z=\"3\" )"},
    {"{a=\"b\"} | addr = ip(\"10.0.0.0/8\")", "{a=\"b\"} | addr=ip(\"10.0.0.0/8\")"},
    {"{a=\"b\"} | addr != ip(\"10.0.0.1-10.0.0.9\")",
     "{a=\"b\"} | addr!=ip(\"10.0.0.1-10.0.0.9\")"},
    {"{a=\"b\"} | __error__=\"\"", "{a=\"b\"} | __error__=\"\""},
    {"{a=\"b\"} |= ip(\"::1\")", "{a=\"b\"} |= ip(\"::1\")"},
    {"{a=\"b\"} |= \"x\" or \"y\" or ip(\"10.0.0.1\") != \"z\" or `w`",
     "{a=\"b\"} |= \"x\" or \"y\" or ip(\"10.0.0.1\") != \"z\" or \"w\""},
    {"{a=\"b\"} |~ \"x.\" or \"y+\"", "{a=\"b\"} |~ \"x.\" or \"y+\""},
    {"{a=\"b\"} != ip(\"192.168.0.0/16\")", "{a=\"b\"} != ip(\"192.168.0.0/16\")"},
    /* formats */
    {"{a=\"b\"} | line_format \"{{.x}}\"", "{a=\"b\"} | line_format \"{{.x}}\""},
    {"{a=\"b\"} | line_format `{{ .x | ToUpper }} {{__line__}}`",
     "{a=\"b\"} | line_format \"{{ .x | ToUpper }} {{__line__}}\""},
    {"{a=\"b\"} | label_format x=y", "{a=\"b\"} | label_format x=y"},
    {"{a=\"b\"} | label_format x=y, z=\"{{.w}}\"", "{a=\"b\"} | label_format x=y, z=\"{{.w}}\""},
    {"{a=\"b\"} | drop x, y", "{a=\"b\"} | drop x, y"},
    {"{a=\"b\"} | drop x=\"1\", y=~\"2.*\"", "{a=\"b\"} | drop x=\"1\", y=~\"2.*\""},
    {"{a=\"b\"} | keep x, y!=\"3\"", "{a=\"b\"} | keep x, y!=\"3\""},
    {"{a=\"b\"} |= \"x\" | json | y=\"1\" != \"z\"",
     "{a=\"b\"} |= \"x\" | json | y=\"1\" != \"z\""},
    /* range aggregations */
    {"count_over_time({a=\"b\"}[5m])", "count_over_time({a=\"b\"} [5m])"},
    {"rate({a=\"b\"} |= \"x\" [1m])", "rate({a=\"b\"} |= \"x\" [1m])"},
    {"rate(({a=\"b\"} |= \"x\")[1m])", "rate({a=\"b\"} |= \"x\" [1m])"},
    {"bytes_over_time({a=\"b\"}[1h])", "bytes_over_time({a=\"b\"} [1h])"},
    {"bytes_rate({a=\"b\"}[90s])", "bytes_rate({a=\"b\"} [1m30s])"},
    {"absent_over_time({a=\"b\"}[1d])", "absent_over_time({a=\"b\"} [1d])"},
    {"count_over_time({a=\"b\"}[2w])", "count_over_time({a=\"b\"} [2w])"},
    {"count_over_time({a=\"b\"}[5m] offset 1h)", "count_over_time({a=\"b\"} [5m] offset 1h)"},
    {"count_over_time({a=\"b\"}[5m] | json)", "count_over_time({a=\"b\"} | json [5m])"},
    {"sum_over_time({a=\"b\"} | json | unwrap x [5m])",
     "sum_over_time({a=\"b\"} | json | unwrap x [5m])"},
    {"avg_over_time({a=\"b\"} | logfmt | unwrap duration(d) [5m]) by (p)",
     "avg_over_time({a=\"b\"} | logfmt | unwrap duration(d) [5m]) by (p)"},
    {"max_over_time({a=\"b\"} | unwrap duration_seconds(d) [5m]) without (p)",
     "max_over_time({a=\"b\"} | unwrap duration_seconds(d) [5m]) without (p)"},
    {"min_over_time({a=\"b\"} | unwrap bytes(s) | __error__=\"\" [5m])",
     "min_over_time({a=\"b\"} | unwrap bytes(s) | __error__=\"\" [5m])"},
    {"quantile_over_time(0.99, {a=\"b\"} | unwrap x [5m])",
     "quantile_over_time(0.99, {a=\"b\"} | unwrap x [5m])"},
    {"stddev_over_time({a=\"b\"} | unwrap x [5m])", "stddev_over_time({a=\"b\"} | unwrap x [5m])"},
    {"stdvar_over_time({a=\"b\"} | unwrap x [5m])", "stdvar_over_time({a=\"b\"} | unwrap x [5m])"},
    {"first_over_time({a=\"b\"} | unwrap x [5m])", "first_over_time({a=\"b\"} | unwrap x [5m])"},
    {"last_over_time({a=\"b\"} | unwrap x [5m])", "last_over_time({a=\"b\"} | unwrap x [5m])"},
    {"rate({a=\"b\"} | unwrap x [5m])", "rate({a=\"b\"} | unwrap x [5m])"},
    {"absent_over_time({a=\"b\"} | unwrap x [5m])", "absent_over_time({a=\"b\"} | unwrap x [5m])"},
    {"first_over_time({a=\"b\"} | unwrap x [5m]) by (y)",
     "first_over_time({a=\"b\"} | unwrap x [5m]) by (y)"},
    {"rate_counter({a=\"b\"} | unwrap x [5m])", "rate_counter({a=\"b\"} | unwrap x [5m])"},
    /* vector aggregations */
    {"sum(rate({a=\"b\"}[1m]))", "sum(rate({a=\"b\"} [1m]))"},
    {"sum by (x) (rate({a=\"b\"}[1m]))", "sum by (x) (rate({a=\"b\"} [1m]))"},
    {"sum(rate({a=\"b\"}[1m])) by (x, y)", "sum by (x, y) (rate({a=\"b\"} [1m]))"},
    {"sum without (x) (rate({a=\"b\"}[1m]))", "sum without (x) (rate({a=\"b\"} [1m]))"},
    {"avg(rate({a=\"b\"}[1m])) without ()", "avg without () (rate({a=\"b\"} [1m]))"},
    {"min(count_over_time({a=\"b\"}[1m]))", "min(count_over_time({a=\"b\"} [1m]))"},
    {"max(count_over_time({a=\"b\"}[1m]))", "max(count_over_time({a=\"b\"} [1m]))"},
    {"count(count_over_time({a=\"b\"}[1m]))", "count(count_over_time({a=\"b\"} [1m]))"},
    {"stddev(count_over_time({a=\"b\"}[1m]))", "stddev(count_over_time({a=\"b\"} [1m]))"},
    {"stdvar(count_over_time({a=\"b\"}[1m]))", "stdvar(count_over_time({a=\"b\"} [1m]))"},
    {"topk(5, rate({a=\"b\"}[1m]))", "topk(5, rate({a=\"b\"} [1m]))"},
    {"topk by (x) (5, rate({a=\"b\"}[1m]))", "topk by (x) (5, rate({a=\"b\"} [1m]))"},
    {"bottomk(1, rate({a=\"b\"}[1m])) by (x)", "bottomk by (x) (1, rate({a=\"b\"} [1m]))"},
    {"sort(rate({a=\"b\"}[1m]))", "sort(rate({a=\"b\"} [1m]))"},
    {"sort_desc(rate({a=\"b\"}[1m]))", "sort_desc(rate({a=\"b\"} [1m]))"},
    {"sum(sum by (x) (rate({a=\"b\"}[1m])))", "sum(sum by (x) (rate({a=\"b\"} [1m])))"},
    /* binary operators, literals, functions */
    {"vector(1)+vector(1)", "(vector(1) + vector(1))"},
    {"vector(-2.5)", "vector(-2.5)"},
    {"1 + 1", "(1 + 1)"},
    {"2 * 3 + 4", "((2 * 3) + 4)"},
    {"2 + 3 * 4", "(2 + (3 * 4))"},
    {"2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"},
    {"(2 + 3) * 4", "((2 + 3) * 4)"},
    {"-1", "-1"},
    {"1 == bool 1", "(1 == bool 1)"},
    {"rate({a=\"b\"}[1m]) > 0.5", "(rate({a=\"b\"} [1m]) > 0.5)"},
    {"rate({a=\"b\"}[1m]) > bool 0.5", "(rate({a=\"b\"} [1m]) > bool 0.5)"},
    {"rate({a=\"b\"}[1m]) / rate({a=\"c\"}[1m])", "(rate({a=\"b\"} [1m]) / rate({a=\"c\"} [1m]))"},
    {"rate({a=\"b\"}[1m]) % 2 - 1", "((rate({a=\"b\"} [1m]) % 2) - 1)"},
    {"rate({a=\"b\"}[1m]) / on (x) rate({a=\"c\"}[1m])",
     "(rate({a=\"b\"} [1m]) / on (x) rate({a=\"c\"} [1m]))"},
    {"rate({a=\"b\"}[1m]) * ignoring (x) group_left (y) rate({a=\"c\"}[1m])",
     "(rate({a=\"b\"} [1m]) * ignoring (x) group_left (y) rate({a=\"c\"} [1m]))"},
    {"rate({a=\"b\"}[1m]) + on () group_right rate({a=\"c\"}[1m])",
     "(rate({a=\"b\"} [1m]) + on () group_right () rate({a=\"c\"} [1m]))"},
    {"rate({a=\"b\"}[1m]) and rate({a=\"c\"}[1m])",
     "(rate({a=\"b\"} [1m]) and rate({a=\"c\"} [1m]))"},
    {"rate({a=\"b\"}[1m]) or rate({a=\"c\"}[1m]) unless rate({a=\"d\"}[1m])",
     "(rate({a=\"b\"} [1m]) or (rate({a=\"c\"} [1m]) unless rate({a=\"d\"} [1m])))"},
    {"rate({a=\"b\"}[1m]) unless on (x) rate({a=\"c\"}[1m])",
     "(rate({a=\"b\"} [1m]) unless on (x) rate({a=\"c\"} [1m]))"},
    {"rate({a=\"b\"}[1m]) >= 1 == bool 1", "((rate({a=\"b\"} [1m]) >= 1) == bool 1)"},
    {"label_replace(rate({a=\"b\"}[1m]), \"d\", \"$1\", \"s\", \"(.*)\")",
     "label_replace(rate({a=\"b\"} [1m]), \"d\", \"$1\", \"s\", \"(.*)\")"},
    {"sum(label_replace(vector(1), \"d\", \"x\", \"s\", \".*\"))",
     "sum(label_replace(vector(1), \"d\", \"x\", \"s\", \".*\"))"},
    {"1 > 2", "(1 > 2)"},
    {"1 - -1 + +2", "((1 - -1) + 2)"},
    {"rate({a=\"b\"}[5m]) > 1e+21", "(rate({a=\"b\"} [5m]) > 1e+21)"},
    {"rate({a=\"b\"}[5m]) > 0.0000001", "(rate({a=\"b\"} [5m]) > 1e-07)"},
};

/* Invalid queries: return code and message. */
static const struct {
    const char *q;
    int rc;
    const char *msg;
} invalid[] = {
    {"", SL_EINVAL, "parse error at line 1, col 1: syntax error: unexpected $end"},
    {"{a=\"b\"} | json x=", SL_EINVAL,
     "parse error at line 1, col 18: syntax error: unexpected $end, expecting STRING"},
    {"{a=\"b\"} | json 5", SL_EINVAL,
     "parse error at line 1, col 16: syntax error: unexpected NUMBER"},
    {"{a=\"b\"} | regexp \"(\\\\d+)\"", SL_EINVAL,
     "parse error at line 1, col 18: at least one named capture must be supplied"},
    {"{a=\"b\"} | regexp \"(?P<a-b>x)\"", SL_EINVAL,
     "parse error at line 1, col 18: error parsing regexp: "},
    {"{a=\"b\"} | pattern \"<a><b>\"", SL_EINVAL,
     "parse error at line 1, col 19: found consecutive capture: invalid expression"},
    {"{a=\"b\"} | pattern \"abc\"", SL_EINVAL,
     "parse error at line 1, col 19: at least one capture is required"},
    {"{a=\"b\"} | pattern \"<a> <a>\"", SL_EINVAL,
     "parse error at line 1, col 19: duplicate capture name (a): invalid expression"},
    {"{a=\"b\"} | line_format \"{{.x\"", SL_EINVAL,
     "parse error at line 1, col 23: template: line:1: unclosed action"},
    {"{a=\"b\"} | line_format \"{{ nope .x }}\"", SL_EINVAL,
     "parse error at line 1, col 23: template: line:1: function \"nope\" not defined"},
    {"{a=\"b\"} | line_format \"{{ if .x }}\"", SL_EINVAL,
     "parse error at line 1, col 23: template: line:1: unexpected EOF"},
    {"{a=\"b\"} | label_format a=b, a=c", SL_EINVAL,
     "parse error at line 1, col 29: multiple label name 'a' not allowed in a single format "
     "operation"},
    {"{a=\"b\"} | label_format a=5", SL_EINVAL,
     "parse error at line 1, col 26: syntax error: unexpected NUMBER, expecting IDENTIFIER or "
     "STRING"},
    {"{a=\"b\"} | x > \"5\"", SL_EINVAL,
     "parse error at line 1, col 15: syntax error: unexpected STRING, expecting NUMBER or "
     "DURATION or BYTES"},
    {"{a=\"b\"} | x =~ 5", SL_EINVAL,
     "parse error at line 1, col 13: syntax error: unexpected =~, expecting = or != or =~ or !~ "
     "or == or > or >= or < or <="},
    {"{a=\"b\"} | x > 5zz", SL_EINVAL,
     "parse error at line 1, col 15: syntax error: invalid number, duration or bytes \"5zz\""},
    {"{a=\"b\"} | x = ip(\"300.1.1.1\")", SL_EINVAL,
     "parse error at line 1, col 18: invalid ip filter pattern \"300.1.1.1\""},
    {"{a=\"b\"} | x=\"1\" or", SL_EINVAL,
     "parse error at line 1, col 19: syntax error: unexpected $end, expecting IDENTIFIER"},
    {"{a=\"b\"} |= \"x\" or", SL_EINVAL,
     "parse error at line 1, col 18: syntax error: unexpected $end, expecting STRING"},
    {"{a=\"b\"} |~ \"x\" or ip(\"1.2.3.4\")", SL_EINVAL,
     "parse error at line 1, col 19: syntax error: ip() only with |= or !="},
    {"{a=\"b\"} | logfmt --nope", SL_EINVAL,
     "parse error at line 1, col 20: syntax error: unknown logfmt flag"},
    {"{a=\"b\"} | unwrap x", SL_EINVAL,
     "parse error at line 1, col 11: syntax error: unexpected unwrap outside a range "
     "aggregation"},
    {"count_over_time({a=\"b\"})", SL_EINVAL,
     "parse error at line 1, col 24: syntax error: unexpected ), expecting ["},
    {"count_over_time({a=\"b\"}[x])", SL_EINVAL,
     "parse error at line 1, col 25: syntax error: unexpected IDENTIFIER, expecting DURATION"},
    {"count_over_time({a=\"b\"}[5m]", SL_EINVAL,
     "parse error at line 1, col 28: syntax error: unexpected $end, expecting )"},
    {"count_over_time({a=\"b\"} | unwrap x [5m])", SL_EINVAL,
     "parse error : invalid aggregation count_over_time with unwrap"},
    {"sum_over_time({a=\"b\"}[5m])", SL_EINVAL,
     "parse error : invalid aggregation sum_over_time without unwrap"},
    {"count_over_time({a=\"b\"}[5m]) by (x)", SL_EINVAL,
     "parse error : grouping not allowed for count_over_time aggregation"},
    {"sum_over_time({a=\"b\"} | unwrap x [5m]) by (x)", SL_EINVAL,
     "parse error : grouping not allowed for sum_over_time aggregation"},
    {"quantile_over_time({a=\"b\"} | unwrap x [5m])", SL_EINVAL,
     "parse error at line 1, col 20: syntax error: unexpected {, expecting NUMBER"},
    {"sum({a=\"b\"})", SL_EINVAL, "parse error : unexpected type for vector aggregation: log"},
    {"sum(1)", SL_EINVAL, "parse error : unexpected type for vector aggregation: scalar"},
    {"topk(0, rate({a=\"b\"}[1m]))", SL_EINVAL,
     "parse error : invalid parameter (must be greater than 0)"},
    {"topk(1.5, rate({a=\"b\"}[1m]))", SL_EINVAL,
     "parse error : invalid parameter (must be greater than 0)"},
    {"topk(rate({a=\"b\"}[1m]))", SL_EINVAL, "parse error : parameter required for operation topk"},
    {"sort by (x) (rate({a=\"b\"}[1m]))", SL_EINVAL,
     "parse error : grouping not allowed for sort aggregation"},
    {"sum by (x) (rate({a=\"b\"}[1m])) by (y)", SL_EINVAL,
     "parse error at line 1, col 32: syntax error: unexpected IDENTIFIER"},
    {"sum by x (rate({a=\"b\"}[1m]))", SL_EINVAL,
     "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting ("},
    {"{a=\"b\"} + 1", SL_EINVAL,
     "parse error : unexpected type for left leg of binary operation: log"},
    {"1 + {a=\"b\"}", SL_EINVAL,
     "parse error : unexpected type for right leg of binary operation: log"},
    /* as in Loki's grammar, a sign only goes directly before a number */
    {"-{a=\"b\"}", SL_EINVAL,
     "parse error at line 1, col 2: syntax error: unexpected {, expecting NUMBER"},
    {"--1", SL_EINVAL,
     "parse error at line 1, col 2: syntax error: unexpected -, expecting NUMBER"},
    {"-rate({a=\"b\"}[1m])", SL_EINVAL,
     "parse error at line 1, col 2: syntax error: unexpected IDENTIFIER, expecting NUMBER"},
    {"1 and 2", SL_EINVAL,
     "parse error : unexpected literal for left leg of logical/set binary operation"},
    {"vector(1) and 2", SL_EINVAL,
     "parse error : unexpected literal for right leg of logical/set binary operation"},
    {"vector(1) + bool vector(1)", SL_EINVAL,
     "parse error : bool modifier can only be used on comparison operators"},
    {"vector(1) + on (x) 1", SL_EINVAL,
     "parse error : vector matching only allowed between vectors"},
    {"vector(1) and on (x) group_left vector(1)", SL_EINVAL,
     "parse error : no grouping allowed for \"and\" operation"},
    {"vector(x)", SL_EINVAL,
     "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER"},
    {"vector(1", SL_EINVAL,
     "parse error at line 1, col 9: syntax error: unexpected $end, expecting )"},
    {"label_replace(vector(1), \"d\", \"x\", \"s\")", SL_EINVAL,
     "parse error at line 1, col 39: syntax error: unexpected ), expecting ,"},
    {"label_replace(vector(1), \"1d\", \"x\", \"s\", \".*\")", SL_EINVAL,
     "parse error : invalid destination label name in label_replace(): 1d"},
    {"label_replace(vector(1), \"d\", \"x\", \"s\", \"(\")", SL_EINVAL,
     "parse error at line 1, col 41: error parsing regexp: "},
    {"rate({a=\"b\"}[1m]) +", SL_EINVAL,
     "parse error at line 1, col 20: syntax error: unexpected $end"},
    {"nope(1)", SL_EINVAL, "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"},
    {"rate({a=\"b\"}[1m]) offset 5m", SL_EINVAL,
     "parse error at line 1, col 19: syntax error: unexpected IDENTIFIER"},
};

static void test_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        expect_canon(valid[i][0], valid[i][1]);
}

static void test_invalid_table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        int rc = parse(invalid[i].q);
        if (rc != invalid[i].rc || strncmp(errmsg, invalid[i].msg, strlen(invalid[i].msg)) != 0) {
            print_error("%s: rc %d (want %d)\n  got  %s\n  want %s\n", invalid[i].q, rc,
                        invalid[i].rc, errmsg, invalid[i].msg);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* Every pipeline inside every wrapper: each combination must parse and
 * reach a canonical fixed point. */
static void test_combinations(void **state)
{
    (void)state;
    static const char *const sels[] = {"{a=\"b\"}", "{a=~\"b.+\", c!=\"d\"}"};
    static const char *const pipes[] = {
        "",
        " |= \"x\"",
        " | json",
        " | logfmt | level=\"error\"",
        " | json | status >= 500 or d > 1s",
        " | regexp \"(?P<x>\\\\d+)\" | x > 3",
        " | pattern \"<a> <b>\" | line_format \"{{.a}}\"",
        " | label_format n=a | drop b",
        " | keep a | decolorize",
        " |~ \"x+\" | unpack | __error__=\"\"",
    };
    static const char *const wraps[] = {
        "%s%s",
        "count_over_time(%s%s [1m])",
        "sum by (level) (rate(%s%s [5m]))",
        "topk(2, sum by (a) (bytes_rate(%s%s [1m] offset 1h)))",
        "sum(count_over_time(%s%s [1m])) / sum(count_over_time({z=\"1\"} [1m]))",
        "absent_over_time(%s%s [10m])",
    };
    size_t n = 0;
    for (size_t w = 0; w < sizeof wraps / sizeof *wraps; w++)
        for (size_t s = 0; s < sizeof sels / sizeof *sels; s++)
            for (size_t p = 0; p < sizeof pipes / sizeof *pipes; p++) {
                char q[1024], first[4096];
                snprintf(q, sizeof q, wraps[w], sels[s], pipes[p]);
                if (parse(q) != 0)
                    fail_msg("%s: %s", q, errmsg);
                snprintf(first, sizeof first, "%s", canon);
                if (parse(first) != 0 || strcmp(first, canon) != 0)
                    fail_msg("%s: not a fixed point: %s -> %s", q, first, canon);
                n++;
            }
    assert_int_equal(n, 120);
}

static struct sl_logql_query *must_parse(const char *q)
{
    struct sl_logql_query *lq = NULL;
    assert_int_equal(sl_logql_parse(q, strlen(q), &lq, NULL), 0);
    assert_non_null(sl_logql_log_expr(lq));
    return lq;
}

static bool labels_match(struct sl_logql_query *q, struct sl_label *items, size_t n)
{
    struct sl_labels ls = {items, n};
    return sl_logql_match_labels(q, sl_logql_log_expr(q), &ls);
}

#define L(n, v)                                                                                    \
    {                                                                                              \
        SL_BYTES_LIT(n), SL_BYTES_LIT(v)                                                           \
    }

static void test_match_labels(void **state)
{
    (void)state;
    struct sl_label api[] = {L("app", "api"), L("env", "prod"), L("pod", "api-7f9")};
    struct sl_label web[] = {L("app", "web"), L("pod", "web-1")};
    struct sl_logql_query *q = must_parse("{app=\"api\"}");
    assert_true(labels_match(q, api, 3));
    assert_false(labels_match(q, web, 2));
    sl_logql_query_free(q);

    q = must_parse("{pod=~\"api-.*\", env!=\"dev\"}");
    assert_true(labels_match(q, api, 3));
    assert_false(labels_match(q, web, 2));
    sl_logql_query_free(q);

    /* Anchored: a substring match is not enough; alternation anchors too. */
    q = must_parse("{app=~\"pi\"}");
    assert_false(labels_match(q, api, 3));
    sl_logql_query_free(q);
    q = must_parse("{app=~\"ap|web\"}");
    assert_false(labels_match(q, api, 3));
    assert_true(labels_match(q, web, 2));
    sl_logql_query_free(q);

    /* An absent label has the value "": env="" selects streams without env. */
    q = must_parse("{app=~\".+\", env=\"\"}");
    assert_false(labels_match(q, api, 3));
    assert_true(labels_match(q, web, 2));
    sl_logql_query_free(q);

    q = must_parse("{app!~\"a.*\", pod=~\".+\"}");
    assert_false(labels_match(q, api, 3));
    assert_true(labels_match(q, web, 2));
    sl_logql_query_free(q);

    /* '$' before a trailing newline must not match (Go semantics). */
    struct sl_label nl[] = {L("a", "x\n")};
    q = must_parse("{a=~\"x$\"}");
    assert_false(labels_match(q, nl, 1));
    sl_logql_query_free(q);
}

static bool line_passes(struct sl_logql_query *q, const char *line, size_t n)
{
    return sl_logql_match_line(q, sl_logql_log_expr(q), sl_bytes(line, n));
}

static void test_match_lines(void **state)
{
    (void)state;
    struct sl_logql_query *q =
        must_parse("{a=\"b\"} |= \"err\" != \"debug\" |~ \"code=[45]\\\\d\\\\d\"");
    assert_true(line_passes(q, "level=err code=500", 18));
    assert_false(line_passes(q, "level=err code=200", 18));
    assert_false(line_passes(q, "level=err debug code=500", 24));
    assert_false(line_passes(q, "level=info code=500", 19));
    sl_logql_query_free(q);

    /* Lines are bytes: NULs and invalid UTF-8 are fine. */
    q = must_parse("{a=\"b\"} |= \"x\\x00y\" !~ \"zz\"");
    assert_true(line_passes(q, "a\xffx\0y", 5));
    assert_false(line_passes(q, "axy", 3));
    sl_logql_query_free(q);
    q = must_parse("{a=\"b\"} |~ \"(?i)error\"");
    assert_true(line_passes(q, "\xfe\xff ERROR here", 13));
    assert_false(line_passes(q, "\xfe\xff fine", 7));
    sl_logql_query_free(q);

    /* Catastrophic backtracking ends at the match limit, counted. */
    q = must_parse("{a=\"b\"} |~ \"(a+)+$\"");
    char evil[64];
    memset(evil, 'a', sizeof evil);
    evil[sizeof evil - 1] = 'b';
    assert_false(line_passes(q, evil, sizeof evil));
    assert_true(q->regex_limit_hits > 0);
    sl_logql_query_free(q);
}

static void test_selector_only(void **state)
{
    (void)state;
    struct sl_logql_query *q = NULL;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_logql_parse_selector("{a=\"b\"}", 7, &q, &err), 0);
    sl_logql_query_free(q);
    const char *s = "{a=\"b\"} |= \"x\"";
    assert_int_equal(sl_logql_parse_selector(s, strlen(s), &q, &err), SL_EINVAL);
    assert_null(q);
    assert_string_equal(err.data, "parse error at line 1, col 9: syntax error: unexpected |=");
    sl_buf_release(&err);
}

static void test_too_long(void **state)
{
    (void)state;
    struct sl_logql_query *q = NULL;
    size_t n = SL_LOGQL_MAX_QUERY_BYTES + 1;
    char *s = calloc(1, n);
    memset(s, ' ', n);
    assert_int_equal(sl_logql_parse(s, n, &q, NULL), SL_ETOOBIG);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_selectors), cmocka_unit_test(test_valid_line_filters),
        cmocka_unit_test(test_syntax_errors),   cmocka_unit_test(test_regex_errors),
        cmocka_unit_test(test_empty_selectors), cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_match_labels),    cmocka_unit_test(test_match_lines),
        cmocka_unit_test(test_selector_only),   cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_valid_table),     cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_combinations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
