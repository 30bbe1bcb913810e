/* Docker json-file lines: fast path and jansson decode alike, escapes,
 * pieces joined per stream, malformed lines; the parser's forced feeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/parse/docker.h"
#include "agent/parse/parser.h"
#include "common/err.h"

static void test_decode_escapes(void **state)
{
    (void)state;
    struct sl_buf text = SL_BUF_INIT;
    int64_t ts;
    enum sl_log_stream st;
    bool final;
    const char *reason;
    const char *l =
        "{\"log\":\"q \\\" b \\\\ s \\/ \\b\\f\\n\\r\\t u \\u00e9 \\u2603 \\ud83d\\ude00 "
        "n \\u0000 raw \xc3\xa9\\n\",\"stream\":\"stderr\","
        "\"time\":\"2024-01-02T03:04:05.000000001Z\"}";
    assert_int_equal(sl_docker_parse_line(l, strlen(l), &text, &ts, &st, &final, &reason), 0);
    const char want[] = "q \" b \\ s / \b\f\n\r\t u \xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80 "
                        "n \0 raw \xc3\xa9";
    assert_int_equal(text.len, sizeof(want) - 1);
    assert_memory_equal(text.data, want, text.len);
    assert_true(final);
    assert_int_equal(st, SL_STREAM_STDERR);
    assert_int_equal(ts, 1704164645000000001LL);

    /* The fast path and jansson agree; the fast path declines what it is
     * unsure of (spacing, other keys, lone surrogates). */
    struct sl_buf a = SL_BUF_INIT, b = SL_BUF_INIT;
    struct sl_docker_raw fa = {.log = &a}, sb = {.log = &b};
    assert_int_equal(sl__docker_fast(l, strlen(l), &fa), 1);
    assert_int_equal(sl__docker_slow(l, strlen(l), &sb, &reason), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    const char *spaced =
        "{\"log\": \"x\\n\", \"stream\": \"stdout\", \"time\": \"2024-01-02T03:04:05Z\"}";
    assert_int_equal(sl__docker_fast(spaced, strlen(spaced), &fa), 0);
    assert_int_equal(sl_docker_parse_line(spaced, strlen(spaced), &text, &ts, &st, &final, &reason),
                     0);
    assert_memory_equal(text.data, "x", 1);
    const char *lone =
        "{\"log\":\"\\ud800\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}";
    assert_int_equal(sl__docker_fast(lone, strlen(lone), &fa), 0);
    assert_int_equal(sl_docker_parse_line(lone, strlen(lone), &text, &ts, &st, &final, &reason),
                     SL_EINVAL);
    const char *bad[] = {
        "not json",
        "{\"log\":1,\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}",
        "{\"log\":\"x\",\"stream\":\"stdweird\",\"time\":\"2024-01-02T03:04:05Z\"}",
        "{\"log\":\"x\",\"stream\":\"stdout\",\"time\":\"yesterday\"}",
        "{\"log\":\"x\",\"stream\":\"stdout\"}",
        "{\"log\":\"bad \xff utf8\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            sl_docker_parse_line(bad[i], strlen(bad[i]), &text, &ts, &st, &final, &reason),
            SL_EINVAL);
    sl_buf_release(&a);
    sl_buf_release(&b);
    sl_buf_release(&text);
}

struct got {
    int n, bad;
    char lines[8][64];
    int stream[8];
    uint64_t safe[8];
};

static void on_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct got *g = ud;
    assert_true(g->n < 8 && e->line.len < 64);
    memcpy(g->lines[g->n], e->line.ptr, e->line.len);
    g->lines[g->n][e->line.len] = '\0';
    g->stream[g->n] = e->stream;
    g->safe[g->n++] = e->safe_off;
}

static void on_bad(void *ud, struct sl_bytes line, const char *reason)
{
    (void)line;
    (void)reason;
    ((struct got *)ud)->bad++;
}

static void test_pieces_joined_per_stream(void **state)
{
    (void)state;
    const char *a =
        "{\"log\":\"part one \",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}\n";
    const char *b =
        "{\"log\":\"err\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-02T03:04:06Z\"}\n";
    const char *c =
        "{\"log\":\"two\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:07Z\"}\n";
    char all[512];
    snprintf(all, sizeof(all), "%s%s%sgarbage\n", a, b, c);
    struct sl_parser p;
    struct got g = {0};
    const struct sl_parse_cbs cbs = {on_entry, on_bad};
    sl_parser_init(&p, SL_FORMAT_DOCKER, 1024, 0);
    assert_int_equal(sl_parser_feed(&p, all, strlen(all), false, &cbs, &g), strlen(all));
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[0], "err");
    assert_int_equal(g.stream[0], SL_STREAM_STDERR);
    assert_int_equal(g.safe[0], 0); /* stdout's first piece is not delivered yet */
    assert_string_equal(g.lines[1], "part one two");
    assert_int_equal(g.safe[1], strlen(a) + strlen(b) + strlen(c));
    assert_int_equal(g.bad, 1);
    /* A physical line cut by forced feeds is reassembled. */
    const char *d =
        "{\"log\":\"forced\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:08Z\"}\n";
    size_t half = strlen(d) / 2;
    assert_int_equal(sl_parser_feed(&p, d, half, true, &cbs, &g), half);
    assert_int_equal(g.n, 2);
    assert_int_equal(sl_parser_safe_off(&p), strlen(all));
    assert_int_equal(sl_parser_feed(&p, d + half, strlen(d) - half, false, &cbs, &g),
                     strlen(d) - half);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.lines[2], "forced");
    sl_parser_release(&p);
}

/* A full read buffer that holds complete lines and the start of the next one
 * is not a long physical line: only the complete lines are consumed, and the
 * cut line (here inside its CRI header) is parsed whole on the next feed. */
static void test_full_buffer_keeps_cut_line(void **state)
{
    (void)state;
    const char *l1 = "2024-01-02T03:04:05.000000001Z stdout F first\n";
    const char *l2 = "2024-01-02T03:04:05.000000002Z stdout F second\n";
    char all[256];
    snprintf(all, sizeof(all), "%s%s", l1, l2);
    struct sl_parser p;
    struct got g = {0};
    const struct sl_parse_cbs cbs = {on_entry, on_bad};
    sl_parser_init(&p, SL_FORMAT_CRI, 1024, 0);
    size_t cut = strlen(l1) + 12; /* in the middle of l2's timestamp */
    assert_int_equal(sl_parser_feed(&p, all, cut, true, &cbs, &g), strlen(l1));
    assert_int_equal(g.n, 1);
    assert_string_equal(g.lines[0], "first");
    assert_int_equal(sl_parser_feed(&p, all + strlen(l1), strlen(l2), true, &cbs, &g), strlen(l2));
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[1], "second");
    assert_int_equal(g.bad, 0);
    sl_parser_release(&p);
}

static int64_t fixed_clock(void)
{
    return 42;
}

static void test_raw_lines(void **state)
{
    (void)state;
    struct sl_parser p;
    struct got g = {0};
    const struct sl_parse_cbs cbs = {on_entry, on_bad};
    enum sl_log_format f;
    assert_int_equal(sl_log_format_parse("raw", &f), 0);
    assert_int_equal(f, SL_FORMAT_RAW);
    assert_int_equal(sl_log_format_parse("json", &f), SL_EINVAL);
    sl_parser_init(&p, SL_FORMAT_RAW, 8, 0);
    p.clock = fixed_clock;
    const char *in = "one\n\nlonger than 8\nrest";
    assert_int_equal(sl_parser_feed(&p, in, strlen(in), false, &cbs, &g), strlen(in) - 4);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.lines[0], "one");
    assert_string_equal(g.lines[1], "");
    assert_string_equal(g.lines[2], "longer t");
    assert_string_equal(g.lines[3], "han 8");
    assert_int_equal(g.bad, 0);
    sl_parser_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_escapes),
        cmocka_unit_test(test_pieces_joined_per_stream),
        cmocka_unit_test(test_full_buffer_keeps_cut_line),
        cmocka_unit_test(test_raw_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
