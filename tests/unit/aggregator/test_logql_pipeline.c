/* LogQL pipelines: every parser, label filter, format stage and
 * drop/keep/decolorize, with Loki's label naming (sanitized keys,
 * _extracted on collisions) and its __error__/__error_details__ rules. */
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

#define TS 1700000000123456789LL

static char got_line[4096];
static char got_labels[4096];

/* Runs the pipeline of q over line in stream `stream`; returns whether the
 * line is kept and fills got_line / got_labels. */
static bool run(const char *q, const char *stream, const char *line)
{
    struct sl_logql_query *lq = NULL;
    struct sl_buf err = SL_BUF_INIT;
    if (sl_logql_parse(q, strlen(q), &lq, &err) != 0)
        fail_msg("%s: %s", q, err.data);
    const struct sl_logql_log_expr *e = sl_logql_log_expr(lq);
    assert_non_null(e);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_labels ls;
    assert_int_equal(sl_labels_parse(&a, stream, strlen(stream), &ls, NULL), 0);
    sl_labels_sort(&ls);
    struct sl_logql_pipeline *p = sl_logql_pipeline_new(lq, e);
    sl_logql_pipeline_stream(p, &ls);
    struct sl_bytes out;
    const struct sl_labels *ols;
    bool kept = sl_logql_pipeline_run(p, TS, sl_bytes_str(line), &out, &ols);
    got_line[0] = got_labels[0] = 0;
    if (kept) {
        snprintf(got_line, sizeof got_line, "%.*s", (int)out.len, out.ptr);
        struct sl_buf b = SL_BUF_INIT;
        sl_labels_format(ols, &b);
        snprintf(got_labels, sizeof got_labels, "%s", b.data);
        sl_buf_release(&b);
    }
    sl_logql_pipeline_free(p);
    sl_arena_release(&a);
    sl_logql_query_free(lq);
    sl_buf_release(&err);
    return kept;
}

static void expect(const char *q, const char *line, const char *labels, const char *want_line)
{
    if (!run(q, "{app=\"x\"}", line))
        fail_msg("%s: line dropped: %s", q, line);
    if (strcmp(got_labels, labels) != 0)
        fail_msg("%s on %s\n  got  %s\n  want %s", q, line, got_labels, labels);
    if (want_line && strcmp(got_line, want_line) != 0)
        fail_msg("%s on %s\n  got line  %s\n  want line %s", q, line, got_line, want_line);
}

static void expect_dropped(const char *q, const char *line)
{
    if (run(q, "{app=\"x\"}", line))
        fail_msg("%s: kept %s with %s", q, line, got_labels);
}

static void test_json(void **state)
{
    (void)state;
    expect("{app=\"x\"} | json",
           "{\"a\":\"b\",\"n\":{\"x\":1,\"y\":[1,2],\"z\":{\"w\":true}},\"f\":1.5e3,\"nil\":null}",
           "{a=\"b\", app=\"x\", f=\"1.5e3\", n_x=\"1\", n_z_w=\"true\"}", NULL);
    /* keys sanitized; a stream label gets _extracted */
    expect("{app=\"x\"} | json", "{\"foo-bar\":\"1\",\"1x\":\"2\",\"app\":\"y\",\"é\":\"3\"}",
           "{_=\"3\", _1x=\"2\", app=\"x\", app_extracted=\"y\", foo_bar=\"1\"}", NULL);
    /* string escapes decoded; a value with U+FFFD becomes "" */
    expect("{app=\"x\"} | json", "{\"s\":\"a\\\"b\\u00e9\\n\",\"bad\":\"\\ufffd\"}",
           "{app=\"x\", bad=\"\", s=\"a\\\"bé\\n\"}", NULL);
    /* not JSON: the error labels, the line kept */
    expect("{app=\"x\"} | json", "hello",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't "
           "find closing '}' symbol\", app=\"x\"}",
           "hello");
    /* what was extracted before the fault stays */
    expect("{app=\"x\"} | json", "{\"a\":\"1\",\"b\":",
           "{__error__=\"JSONParserErr\", __error_details__=\"Malformed JSON error\", a=\"1\", "
           "app=\"x\"}",
           NULL);
    /* a duplicate key keeps its first value (Loki 3), in json and logfmt */
    expect("{app=\"x\"} | json", "{\"a\":\"1\",\"a\":\"2\"}", "{a=\"1\", app=\"x\"}", NULL);
    expect("{app=\"x\"} | logfmt", "a=1 b=2 a=3", "{a=\"1\", app=\"x\", b=\"2\"}", NULL);
    /* ... within one stage: a later parser still replaces the value */
    expect("{app=\"x\"} | logfmt | regexp \"a=(?P<a>\\\\d)$\"", "a=1 a=3", "{a=\"3\", app=\"x\"}",
           NULL);
}

static void test_json_expressions(void **state)
{
    (void)state;
    const char *line = "{\"response\":{\"code\":503,\"body\":{\"k\":[1]}},\"request\":{\"headers\":"
                       "{\"User-Agent\":\"curl/8\"}},\"list\":[\"a\",{\"b\":\"c\"}],\"app\":\"z\"}";
    expect("{app=\"x\"} | json status=\"response.code\", ua=`request.headers[\"User-Agent\"]`",
           line, "{app=\"x\", status=\"503\", ua=\"curl/8\"}", NULL);
    expect("{app=\"x\"} | json first=\"list[0]\", b=\"list[1].b\", body=\"response.body\"", line,
           "{app=\"x\", b=\"c\", body=\"{\\\"k\\\":[1]}\", first=\"a\"}", NULL);
    /* a missing path is ""; a stream label gets _extracted */
    expect("{app=\"x\"} | json nope=\"a.b\", app", line,
           "{app=\"x\", app_extracted=\"z\", nope=\"\"}", NULL);
    expect("{app=\"x\"} | json a=\"a\"", "plain", "{__error__=\"JSONParserErr\", app=\"x\"}", NULL);
}

static void test_logfmt(void **state)
{
    (void)state;
    const char *line = "level=info msg=\"hello world\" dur=1.5s empty= standalone app=y "
                       "esc=\"a\\\"b\" k-1=v";
    expect("{app=\"x\"} | logfmt", line,
           "{app=\"x\", app_extracted=\"y\", dur=\"1.5s\", esc=\"a\\\"b\", k_1=\"v\", "
           "level=\"info\", msg=\"hello world\"}",
           line);
    expect("{app=\"x\"} | logfmt --keep-empty", line,
           "{app=\"x\", app_extracted=\"y\", dur=\"1.5s\", empty=\"\", esc=\"a\\\"b\", k_1=\"v\", "
           "level=\"info\", msg=\"hello world\", standalone=\"\"}",
           NULL);
    /* malformed pairs are skipped; --strict stops with an error */
    expect("{app=\"x\"} | logfmt", "a=1 =bad b=2", "{a=\"1\", app=\"x\", b=\"2\"}", NULL);
    expect("{app=\"x\"} | logfmt --strict", "a=1 =bad b=2",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 5 : "
           "unexpected '='\", a=\"1\", app=\"x\"}",
           NULL);
    expect("{app=\"x\"} | logfmt --strict", "a=\"open",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 8 : "
           "unterminated quoted value\", app=\"x\"}",
           NULL);
    /* expressions: only the listed keys, renamed; absent ones are "" */
    expect("{app=\"x\"} | logfmt lvl=\"level\", m=\"msg\", none=\"zzz\"", line,
           "{app=\"x\", lvl=\"info\", m=\"hello world\", none=\"\"}", NULL);
}

static void test_regexp_pattern_unpack(void **state)
{
    (void)state;
    expect("{app=\"x\"} | regexp `(?P<ip>\\S+) (?P<method>[A-Z]+) (?:(?P<opt>x))?`",
           "10.0.0.1 GET /", "{app=\"x\", ip=\"10.0.0.1\", method=\"GET\", opt=\"\"}", NULL);
    expect("{app=\"x\"} | regexp `(?P<app>\\w+)`", "hello", "{app=\"x\", app_extracted=\"hello\"}",
           NULL);
    expect("{app=\"x\"} | regexp `(?P<n>\\d+)`", "no digits", "{app=\"x\"}", NULL);
    const char *nginx =
        "10.1.2.3 - - [24/Nov/2026:05:00:00 +0000] \"GET /api/v1 HTTP/1.1\" 200 512";
    expect("{app=\"x\"} | pattern `<ip> - - [<_>] \"<method> <path> <_>\" <status> <size>`", nginx,
           "{app=\"x\", ip=\"10.1.2.3\", method=\"GET\", path=\"/api/v1\", size=\"512\", "
           "status=\"200\"}",
           NULL);
    /* a missing literal: the capture takes the rest, later ones are absent */
    expect("{app=\"x\"} | pattern `<a> | <b>`", "one two", "{a=\"one two\", app=\"x\"}", NULL);
    /* a leading literal must be a prefix */
    expect("{app=\"x\"} | pattern `GET <p>`", "POST /x", "{app=\"x\"}", NULL);
    expect("{app=\"x\"} | unpack", "{\"_entry\":\"the line\",\"pod\":\"p1\",\"n\":5,\"app\":\"q\"}",
           "{app=\"x\", app_extracted=\"q\", pod=\"p1\"}", "the line");
    expect("{app=\"x\"} | unpack", "nope",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't "
           "find closing '}' symbol\", app=\"x\"}",
           "nope");
}

static void test_label_filters(void **state)
{
    (void)state;
    const char *l = "status=503 dur=1.5s size=2KB name=api-7 addr=10.1.2.3 bad=zz";
    const char *q[] = {
        "| status >= 500",
        "| status == 503",
        "| status = 503",
        "| status != 200",
        "| status < 600.5",
        "| dur > 1s",
        "| dur <= 1500ms",
        "| size > 1KB",
        "| size == 2kB",
        "| size < 2KiB",
        "| name =~ \"api-.*\"",
        "| name !~ \"web.*\"",
        "| name = \"api-7\"",
        "| nope = \"\"",
        "| addr = ip(\"10.0.0.0/8\")",
        "| addr != ip(\"192.168.0.0/16\")",
        "| status > 500 and dur > 1s",
        "| status > 600 or dur > 1s",
        "| (status > 600 or dur > 1s), name=\"api-7\"",
        "| status > 500 name=\"api-7\"",
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char full[256];
        snprintf(full, sizeof full,
                 "{app=\"x\"} | logfmt %s | drop status, dur, size, name, addr, "
                 "bad",
                 q[i]);
        expect(full, l, "{app=\"x\"}", NULL);
    }
    const char *dropped[] = {
        "| status < 500",
        "| dur > 2s",
        "| size >= 3KB",
        "| name = \"web\"",
        "| missing > 1",
        "| missing = ip(\"10.0.0.0/8\")",
        "| addr = ip(\"11.0.0.0/8\")",
        "| status > 500 and dur > 2s",
        "| status > 600 or dur > 2s",
        "| name =~ \"api\"",
    };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++) {
        char full[256];
        snprintf(full, sizeof full, "{app=\"x\"} | logfmt %s", dropped[i]);
        expect_dropped(full, l);
    }
    /* a value that does not convert: LabelFilterErr, the line kept */
    expect("{app=\"x\"} | logfmt | bad > 1 | drop status, dur, size, name, addr", l,
           "{__error__=\"LabelFilterErr\", __error_details__=\"strconv.ParseFloat: parsing "
           "\\\"zz\\\": invalid syntax\", app=\"x\", bad=\"zz\"}",
           NULL);
    expect("{app=\"x\"} | logfmt | bad > 1s | keep app", l,
           "{__error__=\"LabelFilterErr\", __error_details__=\"time: invalid duration "
           "\\\"zz\\\"\", app=\"x\"}",
           NULL);
    /* __error__ filters */
    expect_dropped("{app=\"x\"} | json | __error__=\"\"", "not json");
    expect("{app=\"x\"} | json | __error__=\"JSONParserErr\" | drop __error__, __error_details__",
           "not json", "{app=\"x\"}", NULL);
}

static void test_formats(void **state)
{
    (void)state;
    const char *l = "level=info msg=\"hello world\" user=bob n=7";
    expect(
        "{app=\"x\"} | logfmt | line_format \"{{.level}}: {{.msg | ToUpper}} ({{.app}})\" | keep "
        "app",
        l, "{app=\"x\"}", "info: HELLO WORLD (x)");
    expect("{app=\"x\"} | line_format \"[{{__line__}}] {{ __timestamp__ | unixEpoch }}\"", "raw",
           "{app=\"x\"}", "[raw] 1700000000");
    expect("{app=\"x\"} | line_format `{{ __timestamp__ }}`", "raw", "{app=\"x\"}",
           "2023-11-14 22:13:20.123456789 +0000 UTC");
    expect("{app=\"x\"} | line_format `{{ __timestamp__ | date \"2006-01-02T15:04:05.000Z\" }}`",
           "raw", "{app=\"x\"}", "2023-11-14T22:13:20.123Z");
    expect("{app=\"x\"} | logfmt | line_format `{{ if eq .level \"info\" }}I{{ else if .user }}U{{ "
           "else }}E{{ end }}-{{ .missing | default \"none\" }}` | keep app",
           l, "{app=\"x\"}", "I-none");
    expect("{app=\"x\"} | logfmt | line_format `{{- .user -}}   {{ printf \"%05d|%-4s|%q|%.2f\" .n "
           ".user .level 2.5 }}` | keep app",
           l, "{app=\"x\"}", "bob00007|bob |\"info\"|2.50");
    expect(
        "{app=\"x\"} | logfmt | line_format `{{ .msg | replace \"world\" \"there\" | title }} {{ "
        "trimPrefix \"he\" .msg }} {{ Replace .msg \"l\" \"L\" 2 }}` | keep app",
        l, "{app=\"x\"}", "Hello There llo world heLLo world");
    expect("{app=\"x\"} | logfmt | line_format `{{ regexReplaceAll \"(o+)\" .msg \"[$1]\" }} {{ "
           "contains \"wor\" .msg }} {{ hasPrefix \"x\" .msg }} {{ len .user }}` | keep app",
           l, "{app=\"x\"}", "hell[o] w[o]rld true false 3");
    expect(
        "{app=\"x\"} | logfmt | line_format `{{ add .n 3 }} {{ mulf .n 1.5 }} {{ div 7 2 }} {{ "
        "trunc 3 .msg }} {{ substr 6 11 .msg }} {{ ToLower \"ABC\" }} {{ trim \"  s \" }}` | keep "
        "app",
        l, "{app=\"x\"}", "10 10.5 3 hel world abc s");
    /* an execution error: TemplateFormatErr, the line unchanged */
    expect("{app=\"x\"} | line_format `{{ div 1 0 }}`", "raw",
           "{__error__=\"TemplateFormatErr\", __error_details__=\"template: line:1: error calling "
           "div: integer divide by zero\", app=\"x\"}",
           "raw");
    /* label_format: rename (the source goes away) and templates that see
     * the labels from before the stage */
    expect("{app=\"x\"} | logfmt | label_format who=user, lvl=\"{{.level}}-{{.user}}\" | keep app, "
           "who, lvl",
           l, "{app=\"x\", lvl=\"info-bob\", who=\"bob\"}", NULL);
    expect("{app=\"x\"} | label_format app=nope", "l", "{app=\"x\"}", NULL);
    expect("{app=\"x\"} | label_format app=\"{{ .app | ToUpper }}\"", "l", "{app=\"X\"}", NULL);
}

static void test_drop_keep_decolorize(void **state)
{
    (void)state;
    const char *l = "a=1 b=2 c=3";
    expect("{app=\"x\"} | logfmt | drop a, c", l, "{app=\"x\", b=\"2\"}", NULL);
    expect("{app=\"x\"} | logfmt | drop a=\"1\", b=\"9\", c=~\"[0-9]\"", l, "{app=\"x\", b=\"2\"}",
           NULL);
    expect("{app=\"x\"} | logfmt | drop app", l, "{a=\"1\", b=\"2\", c=\"3\"}", NULL);
    expect("{app=\"x\"} | logfmt | keep a, app", l, "{a=\"1\", app=\"x\"}", NULL);
    expect("{app=\"x\"} | logfmt | keep b=\"2\", c=\"9\"", l, "{b=\"2\"}", NULL);
    /* keep never drops the error labels */
    expect("{app=\"x\"} | json | keep app", "x",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't "
           "find closing '}' symbol\", app=\"x\"}",
           NULL);
    expect("{app=\"x\"} | decolorize", "\x1b[31mred\x1b[0m and \x1b[1;32mgreen\x1b[m",
           "{app=\"x\"}", "red and green");
}

static void test_line_filters(void **state)
{
    (void)state;
    expect("{app=\"x\"} |= ip(\"10.0.0.0/8\")", "from 10.2.3.4:80 ok", "{app=\"x\"}", NULL);
    expect_dropped("{app=\"x\"} |= ip(\"10.0.0.0/8\")", "from 11.2.3.4 ok");
    expect("{app=\"x\"} != ip(\"10.0.0.0/8\")", "from 11.2.3.4 ok", "{app=\"x\"}", NULL);
    expect("{app=\"x\"} |= ip(\"192.168.0.1-192.168.0.10\")", "c=192.168.0.7", "{app=\"x\"}", NULL);
    expect("{app=\"x\"} |= ip(\"::1\")", "peer ::1 closed", "{app=\"x\"}", NULL);
    /* line filters after a parser see the line, before a line_format too */
    expect("{app=\"x\"} | logfmt | a=\"1\" |= \"b=2\" | line_format \"{{.c}}\" |= \"3\" | keep app",
           "a=1 b=2 c=3", "{app=\"x\"}", "3");
    expect_dropped("{app=\"x\"} | line_format \"z\" |= \"a\"", "a");
    /* "or": any value for a positive filter, none for a negative one */
    expect("{app=\"x\"} |= \"a\" or \"b\"", "xbx", "{app=\"x\"}", NULL);
    expect_dropped("{app=\"x\"} |= \"a\" or \"b\"", "xcx");
    expect("{app=\"x\"} |~ \"^a\" or \"c$\"", "xbc", "{app=\"x\"}", NULL);
    expect_dropped("{app=\"x\"} != \"a\" or \"b\"", "xbx");
    expect("{app=\"x\"} != \"a\" or \"b\"", "xcx", "{app=\"x\"}", NULL);
    expect_dropped("{app=\"x\"} !~ \"a\" or \"b\"", "xax");
    expect("{app=\"x\"} |= \"zz\" or ip(\"10.0.0.0/8\")", "from 10.0.0.5", "{app=\"x\"}", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_expressions),
        cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_regexp_pattern_unpack),
        cmocka_unit_test(test_label_filters),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_drop_keep_decolorize),
        cmocka_unit_test(test_line_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
