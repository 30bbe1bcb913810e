#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.c"

/* Captures what is written to stderr between begin and end. */
static int saved_fd = -1;
static int pipe_r = -1;
static char captured[65536];

static void capture_begin(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    saved_fd = dup(2);
    dup2(p[1], 2);
    close(p[1]);
    pipe_r = p[0];
}

static const char *capture_end(void)
{
    dup2(saved_fd, 2);
    close(saved_fd);
    size_t n = 0;
    ssize_t r;
    while ((r = read(pipe_r, captured + n, sizeof(captured) - 1 - n)) > 0)
        n += (size_t)r;
    close(pipe_r);
    captured[n] = '\0';
    return captured;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_line_shape(void **state)
{
    (void)state;
    sl_log_set_level(SL_LOG_INFO);
    capture_begin();
    sl_log(SL_LOG_WARN, "dropped \"line\"", "file=%s reason=%s", "/var/log/x", "too_long");
    const char *out = capture_end();
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_memory_equal(out, "ts=", 3);
    assert_int_equal(strlen(out) > 28, 1);
    assert_int_equal(out[7], '-');
    assert_int_equal(out[13], 'T');
    assert_int_equal(out[22], '.');
    assert_int_equal(out[26], 'Z');
    assert_string_equal(out + 27, " level=warn msg=\"dropped \\\"line\\\"\" file=/var/log/x "
                                  "reason=too_long\n");
}

static void test_levels(void **state)
{
    (void)state;
    enum sl_log_level lv;
    assert_int_equal(sl_log_level_parse("debug", &lv), 0);
    assert_int_equal(lv, SL_LOG_DEBUG);
    assert_int_equal(sl_log_level_parse("error", &lv), 0);
    assert_int_equal(lv, SL_LOG_ERROR);
    assert_int_equal(sl_log_level_parse("loud", &lv), SL_EINVAL);

    sl_log_set_level(SL_LOG_WARN);
    assert_false(sl_log_enabled(SL_LOG_INFO));
    assert_true(sl_log_enabled(SL_LOG_ERROR));
    capture_begin();
    sl_info("hidden", NULL);
    sl_debug("hidden", "%s", "x");
    sl_error("shown", NULL);
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "level=error msg=\"shown\"\n"));
    sl_log_set_level(SL_LOG_INFO);
}

static void test_msg_escapes_control_bytes(void **state)
{
    (void)state;
    capture_begin();
    sl_info("a\nb\x01", NULL);
    const char *out = capture_end();
    assert_non_null(strstr(out, "msg=\"a\\nb\\u0001\"\n"));
}

static void test_long_line_truncated_one_write(void **state)
{
    (void)state;
    static char big[20000];
    memset(big, 'v', sizeof(big) - 1);
    capture_begin();
    sl_info("big", "v=%s", big);
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    size_t n = strlen(out);
    assert_true(n <= LOG_LINE_MAX);
    assert_memory_equal(out + n - 4, "...\n", 4);
}

static void test_rate_limit(void **state)
{
    (void)state;
    struct sl_log_limit lim = {.period_ms = 1000, .burst = 3};
    uint64_t sup = 99;
    assert_true(limit_take(&lim, 5000, &sup));
    assert_int_equal(sup, 0);
    assert_true(limit_take(&lim, 5001, &sup));
    assert_true(limit_take(&lim, 5002, &sup));
    assert_false(limit_take(&lim, 5003, &sup));
    assert_false(limit_take(&lim, 5999, &sup));
    assert_int_equal(lim.suppressed, 2);
    assert_true(limit_take(&lim, 6000, &sup));
    assert_int_equal(sup, 2);
    assert_int_equal(lim.suppressed, 0);

    /* Zero-init uses the defaults (10 per 10 s) and reports suppressed=N. */
    struct sl_log_limit z = {0};
    capture_begin();
    for (int i = 0; i < 25; i++)
        sl_log_limited(&z, SL_LOG_WARN, "repeat", "i=%d", i);
    const char *out = capture_end();
    assert_int_equal(count_lines(out), 10);
    assert_int_equal(z.suppressed, 15);
    z.window_start_ms -= 20000;
    capture_begin();
    sl_log_limited(&z, SL_LOG_WARN, "repeat", "i=%d", 99);
    out = capture_end();
    assert_non_null(strstr(out, "i=99 suppressed=15\n"));
}

static void test_quote(void **state)
{
    (void)state;
    char q[32];
    assert_string_equal(SL_LOGQ(q, "plain", 5), "plain");
    assert_string_equal(SL_LOGQ(q, "", 0), "\"\"");
    assert_string_equal(SL_LOGQ(q, "a b", 3), "\"a b\"");
    assert_string_equal(SL_LOGQ(q, "k=v", 3), "\"k=v\"");
    assert_string_equal(SL_LOGQ(q, "a\0b", 3), "\"a\\u0000b\"");
    const char *longv = "this value is far too long for the small buffer";
    const char *r = SL_LOGQ(q, longv, strlen(longv));
    assert_true(strlen(r) < sizeof(q));
    assert_memory_equal(r + strlen(r) - 4, "...\"", 4);
    const char *plainlong = "abcdefghijklmnopqrstuvwxyz0123456789abcdef";
    r = SL_LOGQ(q, plainlong, strlen(plainlong));
    assert_int_equal(strlen(r), sizeof(q) - 1);
    assert_memory_equal(r + strlen(r) - 3, "...", 3);
    char tiny[2];
    assert_string_equal(sl_log_quote(tiny, sizeof(tiny), "a b", 3), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_shape),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_msg_escapes_control_bytes),
        cmocka_unit_test(test_long_line_truncated_one_write),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
