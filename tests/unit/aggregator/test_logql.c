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
    expect_error("", SL_EINVAL,
                 "parse error at line 1, col 1: syntax error: unexpected $end, "
                 "expecting {");
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
                 "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER, expecting {");
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
    expect_error("{app=\"x\"} | json", SL_EUNSUPP, "unsupported in this version: parser \"json\"");
    expect_error("{app=\"x\"} |= \"a\" | logfmt | level=\"error\"", SL_EUNSUPP,
                 "unsupported in this version: parser \"logfmt\"");
    expect_error("{app=\"x\"} | pattern \"<a>\"", SL_EUNSUPP,
                 "unsupported in this version: parser \"pattern\"");
    expect_error("{app=\"x\"} | line_format \"{{.a}}\"", SL_EUNSUPP,
                 "unsupported in this version: stage \"line_format\"");
    expect_error("{app=\"x\"} | decolorize", SL_EUNSUPP,
                 "unsupported in this version: stage \"decolorize\"");
    expect_error("{app=\"x\"} | status >= 500", SL_EUNSUPP,
                 "unsupported in this version: label filter on \"status\"");
    expect_error("{app=\"x\"} | (a=\"b\" or c=\"d\")", SL_EUNSUPP,
                 "unsupported in this version: label filter expressions");
    expect_error("{app=\"x\"} |= ip(\"10.0.0.0/8\")", SL_EUNSUPP,
                 "unsupported in this version: line filter ip()");
    expect_error("{app=\"x\"} |= \"a\" or \"b\"", SL_EUNSUPP,
                 "unsupported in this version: \"or\" in line filters");
    expect_error("{app=\"x\"} |> \"<_> error\"", SL_EUNSUPP,
                 "unsupported in this version: pattern line filter \"|>\"");
    expect_error("count_over_time({app=\"x\"}[5m])", SL_EUNSUPP,
                 "unsupported in this version: metric query \"count_over_time\"");
    expect_error("sum by (app) (rate({app=\"x\"}[1m]))", SL_EUNSUPP,
                 "unsupported in this version: metric query \"sum\"");
    expect_error("(rate({app=\"x\"}[1m]))", SL_EUNSUPP,
                 "unsupported in this version: metric query \"rate\"");
    expect_error("vector(1)+vector(1)", SL_EUNSUPP,
                 "unsupported in this version: metric query \"vector\"");
    expect_error("1 + 1", SL_EUNSUPP, "unsupported in this version: literal expressions");
    expect_error("{app=\"x\"}[5m]", SL_EUNSUPP,
                 "unsupported in this version: range vector outside a metric query");
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
