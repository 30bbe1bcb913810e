/* CRI parser: full lines, P+F joining per stream, size cap, malformed lines,
 * restart offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/parse/cri.h"
#include "common/mem.h"

#define MAXE 32

struct got {
    int n;
    int malformed;
    char lines[MAXE][256];
    size_t lens[MAXE];
    int64_t ts[MAXE];
    int stream[MAXE];
    bool trunc[MAXE];
    uint64_t safe[MAXE];
    const char *reason;
};

static void on_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct got *g = ud;
    assert_true(g->n < MAXE);
    size_t n = e->line.len < 255 ? e->line.len : 255;
    memcpy(g->lines[g->n], e->line.ptr, n);
    g->lines[g->n][n] = '\0';
    g->lens[g->n] = e->line.len;
    g->ts[g->n] = e->ts_ns;
    g->stream[g->n] = e->stream;
    g->trunc[g->n] = e->split;
    g->safe[g->n] = e->safe_off;
    g->n++;
}

static void on_bad(void *ud, struct sl_bytes line, const char *reason)
{
    struct got *g = ud;
    (void)line;
    g->malformed++;
    g->reason = reason;
}

static const struct sl_parse_cbs cbs = {on_entry, on_bad};

static size_t feed(struct sl_cri *p, const char *s, struct got *g)
{
    return sl_cri_feed(p, s, strlen(s), false, &cbs, g);
}

static void test_full_lines(void **state)
{
    (void)state;
    struct sl_cri p;
    struct got g = {0};
    sl_cri_init(&p, 1024, 0);
    const char *in = "2024-01-02T03:04:05.123456789Z stdout F hello world\n"
                     "2024-01-02T03:04:06Z stderr F oops\n"
                     "2024-01-02T03:04:07.5+01:00 stdout F \n";
    assert_int_equal(feed(&p, in, &g), strlen(in));
    assert_int_equal(g.n, 3);
    assert_string_equal(g.lines[0], "hello world");
    assert_int_equal(g.ts[0], 1704164645123456789LL);
    assert_int_equal(g.stream[0], SL_STREAM_STDOUT);
    assert_string_equal(g.lines[1], "oops");
    assert_int_equal(g.stream[1], SL_STREAM_STDERR);
    assert_int_equal(g.lens[2], 0);
    assert_int_equal(g.ts[2], 1704164647500000000LL - 3600LL * 1000000000LL);
    assert_int_equal(g.safe[2], strlen(in));
    assert_int_equal(sl_cri_safe_off(&p), strlen(in));
    sl_cri_release(&p);
}

static void test_incomplete_line_not_consumed(void **state)
{
    (void)state;
    struct sl_cri p;
    struct got g = {0};
    sl_cri_init(&p, 1024, 100);
    const char *a = "2024-01-02T03:04:05Z stdout F one\n2024-01-02T03:04:05Z stdout F tw";
    size_t c = feed(&p, a, &g);
    assert_int_equal(c, strlen("2024-01-02T03:04:05Z stdout F one\n"));
    assert_int_equal(g.n, 1);
    assert_int_equal(sl_cri_safe_off(&p), 100 + c);
    /* The caller feeds the rest again with more data. */
    const char *b = "2024-01-02T03:04:05Z stdout F two\n";
    assert_int_equal(feed(&p, b, &g), strlen(b));
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[1], "two");
    sl_cri_release(&p);
}

static void test_partial_join_interleaved(void **state)
{
    (void)state;
    struct sl_cri p;
    struct got g = {0};
    sl_cri_init(&p, 1024, 0);
    const char *l1 = "2024-01-02T03:04:05Z stdout P out-a \n";
    const char *l2 = "2024-01-02T03:04:06Z stderr P err-a \n";
    const char *l3 = "2024-01-02T03:04:07Z stderr F err-b\n";
    const char *l4 = "2024-01-02T03:04:08Z stdout P out-b \n";
    const char *l5 = "2024-01-02T03:04:09Z stdout F out-c\n";
    size_t o1 = strlen(l1), o2 = o1 + strlen(l2), o3 = o2 + strlen(l3);
    size_t o4 = o3 + strlen(l4), o5 = o4 + strlen(l5);
    feed(&p, l1, &g);
    feed(&p, l2, &g);
    assert_int_equal(g.n, 0);
    assert_int_equal(sl_cri_safe_off(&p), 0);
    feed(&p, l3, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.lines[0], "err-a err-b");
    assert_int_equal(g.stream[0], SL_STREAM_STDERR);
    /* timestamp of the first piece */
    assert_int_equal(g.ts[0], 1704164646000000000LL);
    /* stdout still has an open partial starting at 0 */
    assert_int_equal(g.safe[0], 0);
    feed(&p, l4, &g);
    feed(&p, l5, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[1], "out-a out-b out-c");
    assert_int_equal(g.stream[1], SL_STREAM_STDOUT);
    assert_int_equal(g.safe[1], o5);
    assert_int_equal(sl_cri_safe_off(&p), o5);
    (void)o4;
    sl_cri_release(&p);
}

static void test_max_line_size(void **state)
{
    (void)state;
    struct sl_cri p;
    struct got g = {0};
    sl_cri_init(&p, 10, 0);
    /* 16 bytes joined from three pieces: split into 10 + 6, nothing cut. */
    feed(&p, "2024-01-02T03:04:05Z stdout P 0123456\n", &g);
    feed(&p, "2024-01-02T03:04:05Z stdout P 789abc\n", &g);
    feed(&p, "2024-01-02T03:04:05Z stdout F def\n", &g);
    /* exactly the size: one entry, not split */
    feed(&p, "2024-01-02T03:04:05Z stdout F 0123456789\n", &g);
    /* 21 bytes: 10 + 10 + 1 */
    feed(&p, "2024-01-02T03:04:05Z stdout F 0123456789ABCDEFGHIJX\n", &g);
    assert_int_equal(g.n, 6);
    assert_string_equal(g.lines[0], "0123456789");
    assert_true(g.trunc[0]);
    assert_int_equal(g.safe[0], 0); /* the line is not complete yet */
    assert_string_equal(g.lines[1], "abcdef");
    assert_true(g.trunc[1]);
    assert_int_equal(g.ts[0] + 1, g.ts[1]); /* pieces 1 ns apart */
    assert_string_equal(g.lines[2], "0123456789");
    assert_false(g.trunc[2]);
    assert_string_equal(g.lines[3], "0123456789");
    assert_string_equal(g.lines[4], "ABCDEFGHIJ");
    assert_string_equal(g.lines[5], "X");
    assert_true(g.trunc[3] && g.trunc[4] && g.trunc[5]);
    sl_cri_release(&p);
}

static void test_malformed(void **state)
{
    (void)state;
    struct sl_cri p;
    struct got g = {0};
    sl_cri_init(&p, 1024, 0);
    const char *in = "garbage\n"
                     "2024-13-02T03:04:05Z stdout F bad month\n"
                     "2024-01-02T03:04:05Z stdin F bad stream\n"
                     "2024-01-02T03:04:05Z stdout X bad tag\n"
                     "2024-01-02T03:04:05Z stdout\n"
                     "\n"
                     "2024-01-02T03:04:05Z stdout F:x tagged ok\n"
                     "2024-01-02T03:04:05Z stdout F\n";
    assert_int_equal(feed(&p, in, &g), strlen(in));
    assert_int_equal(g.malformed, 6);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[0], "tagged ok");
    assert_int_equal(g.lens[1], 0);
    assert_int_equal(sl_cri_safe_off(&p), strlen(in));
    sl_cri_release(&p);
}

static void test_forced_long_physical_line(void **state)
{
    (void)state;
    struct sl_cri p;
    struct got g = {0};
    sl_cri_init(&p, 16, 0);
    const char *a = "2024-01-02T03:04:05Z stdout F abcdefgh";
    const char *b = "ijklmnopqrstuvwxyz\n2024-01-02T03:04:06Z stdout F next\n";
    assert_int_equal(sl_cri_feed(&p, a, strlen(a), true, &cbs, &g), strlen(a));
    assert_int_equal(g.n, 0);
    assert_int_equal(sl_cri_safe_off(&p), 0);
    assert_int_equal(sl_cri_feed(&p, b, strlen(b), false, &cbs, &g), strlen(b));
    assert_int_equal(g.n, 3);
    assert_string_equal(g.lines[0], "abcdefghijklmnop");
    assert_true(g.trunc[0]);
    assert_string_equal(g.lines[1], "qrstuvwxyz");
    assert_true(g.trunc[1]);
    assert_string_equal(g.lines[2], "next");
    assert_int_equal(sl_cri_safe_off(&p), strlen(a) + strlen(b));
    /* A forced line with a bad header is skipped to its newline. */
    const char *c = "nonsense nonsense";
    const char *d = " more\n2024-01-02T03:04:06Z stderr F after\n";
    sl_cri_feed(&p, c, strlen(c), true, &cbs, &g);
    assert_int_equal(g.malformed, 1);
    sl_cri_feed(&p, d, strlen(d), false, &cbs, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.lines[3], "after");
    sl_cri_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_lines),
        cmocka_unit_test(test_incomplete_line_not_consumed),
        cmocka_unit_test(test_partial_join_interleaved),
        cmocka_unit_test(test_max_line_size),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_forced_long_physical_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
