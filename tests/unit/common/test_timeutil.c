#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/timeutil.h"

static int64_t dur(const char *s)
{
    int64_t v = 0x5555;
    int rc = sl_duration_parse(s, strlen(s), &v);
    assert_int_equal(rc, 0);
    return v;
}

static void dur_bad(const char *s)
{
    int64_t v;
    if (sl_duration_parse(s, strlen(s), &v) != SL_EINVAL)
        fail_msg("duration %s parsed", s);
}

static void test_duration_parse(void **state)
{
    (void)state;
    const int64_t S = SL_NS_PER_SEC;
    assert_int_equal(dur("0"), 0);
    assert_int_equal(dur("-0"), 0);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur("500ms"), 500 * SL_NS_PER_MS);
    assert_int_equal(dur("1h30m"), 5400 * S);
    assert_int_equal(dur("10s"), 10 * S);
    assert_int_equal(dur("1.5s"), 1500 * SL_NS_PER_MS);
    assert_int_equal(dur(".5s"), 500 * SL_NS_PER_MS);
    assert_int_equal(dur("1.s"), S);
    assert_int_equal(dur("2d"), 2 * 86400 * S);
    assert_int_equal(dur("1w"), 7 * 86400 * S);
    assert_int_equal(dur("-1.5h"), -5400 * S);
    assert_int_equal(dur("+5m"), 300 * S);
    assert_int_equal(dur("3ns"), 3);
    assert_int_equal(dur("3us"), 3000);
    assert_int_equal(dur("3\xc2\xb5s"), 3000);
    assert_int_equal(dur("3\xce\xbcs"), 3000);
    assert_int_equal(dur("1h1m1s1ms1us1ns"), 3661001001001LL);
    assert_int_equal(dur("9223372036854775807ns"), INT64_MAX);
    assert_int_equal(dur("-9223372036854775808ns"), INT64_MIN);
    assert_int_equal(dur("0.000000001s"), 1);
    assert_int_equal(dur("2562047h"), 2562047LL * 3600 * S);
    dur_bad("");
    dur_bad("-");
    dur_bad("s");
    dur_bad("10");
    dur_bad("1x");
    dur_bad(".s");
    dur_bad("1h ");
    dur_bad("9223372036854775808ns");
    dur_bad("2562048h");
    dur_bad("99999999999999999999s");
    dur_bad("1y");
}

static void check_dur_fmt(int64_t ns, const char *want)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_duration_format(&b, ns);
    assert_string_equal(b.data, want);
    /* Formatted output parses back to the same value. */
    int64_t back;
    assert_int_equal(sl_duration_parse(b.data, b.len, &back), 0);
    assert_int_equal(back, ns);
    sl_buf_release(&b);
}

static void test_duration_format(void **state)
{
    (void)state;
    const int64_t S = SL_NS_PER_SEC;
    check_dur_fmt(0, "0s");
    check_dur_fmt(1, "1ns");
    check_dur_fmt(1100, "1.1\xc2\xb5s");
    check_dur_fmt(2200 * 1000, "2.2ms");
    check_dur_fmt(500 * SL_NS_PER_MS, "500ms");
    check_dur_fmt(S, "1s");
    check_dur_fmt(1500 * SL_NS_PER_MS, "1.5s");
    check_dur_fmt(5400 * S, "1h30m0s");
    check_dur_fmt(3 * 60 * S, "3m0s");
    check_dur_fmt(-5400 * S, "-1h30m0s");
    check_dur_fmt(3661001001001LL, "1h1m1.001001001s");
    check_dur_fmt(INT64_MAX, "2562047h47m16.854775807s");
    check_dur_fmt(INT64_MIN, "-2562047h47m16.854775808s");
}

static int64_t sz(const char *s)
{
    int64_t v = -1;
    assert_int_equal(sl_size_parse(s, strlen(s), &v), 0);
    return v;
}

static void sz_bad(const char *s)
{
    int64_t v;
    if (sl_size_parse(s, strlen(s), &v) != SL_EINVAL)
        fail_msg("size %s parsed", s);
}

static void test_size(void **state)
{
    (void)state;
    assert_int_equal(sz("1048576"), 1048576);
    assert_int_equal(sz("0"), 0);
    assert_int_equal(sz("1KB"), 1000);
    assert_int_equal(sz("1kb"), 1000);
    assert_int_equal(sz("1K"), 1000);
    assert_int_equal(sz("2MB"), 2000000);
    assert_int_equal(sz("1.5 MB"), 1500000);
    assert_int_equal(sz("3GB"), 3000000000LL);
    assert_int_equal(sz("1KiB"), 1024);
    assert_int_equal(sz("1kib"), 1024);
    assert_int_equal(sz("1Ki"), 1024);
    assert_int_equal(sz("64MiB"), 64 << 20);
    assert_int_equal(sz("64 Mi"), 64 << 20);
    assert_int_equal(sz("2GiB"), 2LL << 30);
    assert_int_equal(sz("0.5KiB"), 512);
    assert_int_equal(sz("10B"), 10);
    sz_bad("");
    sz_bad("MB");
    sz_bad("-1");
    sz_bad("1 ");
    sz_bad("1XB");
    sz_bad("1  MB");
    sz_bad("1.MB");
    sz_bad("99999999999GiB");
    sz_bad("9223372036854775808");

    struct sl_buf b = SL_BUF_INIT;
    sl_size_format(&b, 256 << 10);
    sl_buf_append_char(&b, ' ');
    sl_size_format(&b, 64 << 20);
    sl_buf_append_char(&b, ' ');
    sl_size_format(&b, 1000);
    sl_buf_append_char(&b, ' ');
    sl_size_format(&b, 0);
    sl_buf_append_char(&b, ' ');
    sl_size_format(&b, 3LL << 30);
    sl_buf_append_char(&b, ' ');
    sl_size_format(&b, 1536);
    assert_string_equal(b.data, "256KiB 64MiB 1000 0 3GiB 1536");
    sl_buf_release(&b);
}

static int64_t rfc(const char *s)
{
    int64_t v = 0;
    int rc = sl_rfc3339_parse(s, strlen(s), &v);
    if (rc != 0)
        fail_msg("rfc3339 %s rejected", s);
    return v;
}

static void rfc_bad(const char *s)
{
    int64_t v;
    if (sl_rfc3339_parse(s, strlen(s), &v) != SL_EINVAL)
        fail_msg("rfc3339 %s parsed", s);
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    const int64_t S = SL_NS_PER_SEC;
    assert_int_equal(rfc("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(rfc("2024-02-29T12:34:56Z"), 1709210096LL * S);
    assert_int_equal(rfc("2024-02-29T12:34:56.5Z"), 1709210096LL * S + 500000000);
    assert_int_equal(rfc("2024-02-29T12:34:56.123456789Z"), 1709210096LL * S + 123456789);
    /* Digits past nanoseconds are truncated. */
    assert_int_equal(rfc("2024-02-29T12:34:56.1234567891Z"), 1709210096LL * S + 123456789);
    assert_int_equal(rfc("2024-02-29T14:34:56+02:00"), 1709210096LL * S);
    assert_int_equal(rfc("2024-02-29T07:04:56-05:30"), 1709210096LL * S);
    assert_int_equal(rfc("1969-12-31T23:59:59.9Z"), -100000000);
    assert_int_equal(rfc("2016-08-26T15:45:04.123456789z"), 1472226304123456789LL);
    assert_int_equal(rfc("2262-04-11T23:47:16.854775807Z"), INT64_MAX);
    assert_int_equal(rfc("1677-09-21T00:12:43.145224192Z"), INT64_MIN);
    rfc_bad("");
    rfc_bad("2024-02-30T00:00:00Z");
    rfc_bad("2023-02-29T00:00:00Z");
    rfc_bad("2024-13-01T00:00:00Z");
    rfc_bad("2024-01-01T24:00:00Z");
    rfc_bad("2024-01-01T00:60:00Z");
    rfc_bad("2024-01-01T00:00:60Z");
    rfc_bad("2024-01-01T00:00:00");
    rfc_bad("2024-01-01T00:00:00.Z");
    rfc_bad("2024-01-01T00:00:00+0100");
    rfc_bad("2024-01-01 00:00:00Z");
    rfc_bad("2024-01-01T00:00:00Zx");
    rfc_bad("2262-04-11T23:47:16.854775808Z");
    rfc_bad("0001-01-01T00:00:00Z");
}

static void test_rfc3339_matches_timegm(void **state)
{
    (void)state;
    /* Cross-check the calendar math against libc over many dates. */
    for (int64_t t = -6000000000LL; t < 9000000000LL; t += 7777777) {
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        char s[64];
        snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_int_equal(rfc(s), t * SL_NS_PER_SEC);
        struct sl_buf b = SL_BUF_INIT;
        sl_rfc3339_format(&b, t * SL_NS_PER_SEC);
        assert_string_equal(b.data, s);
        sl_buf_release(&b);
    }
}

static void check_rfc_fmt(int64_t ns, const char *want)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_rfc3339_format(&b, ns);
    assert_string_equal(b.data, want);
    assert_int_equal(rfc(b.data), ns);
    sl_buf_release(&b);
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    check_rfc_fmt(0, "1970-01-01T00:00:00Z");
    check_rfc_fmt(1472226304123456789LL, "2016-08-26T15:45:04.123456789Z");
    check_rfc_fmt(1472226304120000000LL, "2016-08-26T15:45:04.12Z");
    check_rfc_fmt(1472226304000000001LL, "2016-08-26T15:45:04.000000001Z");
    check_rfc_fmt(-1, "1969-12-31T23:59:59.999999999Z");
    check_rfc_fmt(INT64_MAX, "2262-04-11T23:47:16.854775807Z");
    check_rfc_fmt(INT64_MIN, "1677-09-21T00:12:43.145224192Z");
}

static int64_t loki(const char *s)
{
    int64_t v = 0;
    if (sl_loki_time_parse(s, strlen(s), &v) != 0)
        fail_msg("loki time %s rejected", s);
    return v;
}

static void loki_bad(const char *s)
{
    int64_t v;
    if (sl_loki_time_parse(s, strlen(s), &v) != SL_EINVAL)
        fail_msg("loki time %s parsed", s);
}

static void test_loki_time(void **state)
{
    (void)state;
    const int64_t S = SL_NS_PER_SEC;
    assert_int_equal(loki("1700000000"), 1700000000LL * S);
    assert_int_equal(loki("0"), 0);
    assert_int_equal(loki("1700000000000000000"), 1700000000000000000LL);
    /* 11 digits: nanoseconds. */
    assert_int_equal(loki("17000000000"), 17000000000LL);
    assert_int_equal(loki("1700000000.5"), 1700000000LL * S + 500000000);
    /* The fraction is rounded to milliseconds. */
    assert_int_equal(loki("1700000000.1236"), 1700000000LL * S + 124000000);
    assert_int_equal(loki("1.0004"), S);
    assert_int_equal(loki("-1.5"), -1500000000);
    assert_int_equal(loki("2023-11-14T22:13:20Z"), 1700000000LL * S);
    assert_int_equal(loki("2023-11-14T22:13:20.25Z"), 1700000000LL * S + 250000000);
    assert_int_equal(loki("-100"), -100 * S);
    loki_bad("");
    loki_bad("abc");
    loki_bad("1.2.3");
    loki_bad("12x");
    loki_bad("9999999999");
    loki_bad("nan.");
    loki_bad("99999999999999999999");
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t a = sl_mono_ns(), b = sl_mono_ns();
    assert_true(b >= a);
    int64_t now = sl_now_ns();
    /* After 2020 and before 2100. */
    assert_true(now > 1577836800LL * SL_NS_PER_SEC);
    assert_true(now < 4102444800LL * SL_NS_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_matches_timegm),
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_loki_time),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
