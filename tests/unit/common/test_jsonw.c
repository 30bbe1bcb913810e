#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/jsonw.h"

static void expect_escape(const char *in, size_t n, const char *want)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_json_escape(&b, sl_bytes(in, n));
    assert_string_equal(b.data, want);
    sl_buf_release(&b);
}

static void test_escape(void **state)
{
    (void)state;
    expect_escape("", 0, "\"\"");
    expect_escape("plain", 5, "\"plain\"");
    expect_escape("q\"b\\", 4, "\"q\\\"b\\\\\"");
    expect_escape("\n\r\t", 3, "\"\\n\\r\\t\"");
    expect_escape("\x01\x1f\b\f", 4, "\"\\u0001\\u001f\\u0008\\u000c\"");
    expect_escape("a\0b", 3, "\"a\\u0000b\"");
    expect_escape("<a&b>", 5, "\"\\u003ca\\u0026b\\u003e\"");
    expect_escape("\x7f", 1, "\"\x7f\"");
    expect_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
                  "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    expect_escape("\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\"");
    /* Each byte of invalid UTF-8 becomes U+FFFD. */
    expect_escape("a\xff\xfe", 3, "\"a\\ufffd\\ufffd\"");
    expect_escape("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
    expect_escape("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
}

static void test_structure(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    struct sl_jsonw w;
    sl_jsonw_init(&w, &b);
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "status");
    sl_jsonw_str(&w, "success");
    sl_jsonw_key(&w, "data");
    sl_jsonw_obj_open(&w);
    sl_jsonw_key(&w, "result");
    sl_jsonw_arr_open(&w);
    for (int i = 0; i < 2; i++) {
        sl_jsonw_obj_open(&w);
        sl_jsonw_key(&w, "values");
        sl_jsonw_arr_open(&w);
        sl_jsonw_arr_open(&w);
        sl_jsonw_i64_str(&w, 1700000000000000000LL + i);
        sl_jsonw_bytes(&w, SL_BYTES_LIT("line"));
        sl_jsonw_arr_close(&w);
        sl_jsonw_arr_close(&w);
        sl_jsonw_obj_close(&w);
    }
    sl_jsonw_arr_close(&w);
    sl_jsonw_key_bytes(&w, SL_BYTES_LIT("k<"));
    sl_jsonw_arr_open(&w);
    sl_jsonw_i64(&w, -5);
    sl_jsonw_f64(&w, 1.5);
    sl_jsonw_f64_str(&w, 2);
    sl_jsonw_bool(&w, true);
    sl_jsonw_bool(&w, false);
    sl_jsonw_null(&w);
    sl_jsonw_f64(&w, NAN);
    sl_jsonw_arr_close(&w);
    sl_jsonw_obj_close(&w);
    sl_jsonw_obj_close(&w);
    assert_int_equal(w.depth, 0);
    assert_string_equal(b.data, "{\"status\":\"success\",\"data\":{\"result\":["
                                "{\"values\":[[\"1700000000000000000\",\"line\"]]},"
                                "{\"values\":[[\"1700000000000000001\",\"line\"]]}],"
                                "\"k\\u003c\":[-5,1.5,\"2\",true,false,null,\"NaN\"]}}");
    /* A real parser agrees it is valid JSON. */
    json_error_t jerr;
    json_t *root = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(root);
    json_decref(root);
    sl_buf_release(&b);
}

static void test_deep_nesting_stays_valid(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    struct sl_jsonw w;
    sl_jsonw_init(&w, &b);
    for (int i = 0; i < 40; i++) {
        sl_jsonw_arr_open(&w);
        sl_jsonw_i64(&w, i);
    }
    for (int i = 0; i < 40; i++)
        sl_jsonw_arr_close(&w);
    json_error_t jerr;
    json_t *root = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(root);
    json_decref(root);
    sl_buf_release(&b);
}

static void expect_f64(double v, const char *json, const char *prom)
{
    struct sl_buf b = SL_BUF_INIT;
    struct sl_jsonw w;
    sl_jsonw_init(&w, &b);
    sl_jsonw_f64(&w, v);
    assert_string_equal(b.data, json);
    sl_buf_clear(&b);
    sl_f64_format(&b, v);
    assert_string_equal(b.data, prom);
    sl_buf_release(&b);
}

static void test_f64(void **state)
{
    (void)state;
    /* Expected strings are what Go's encoding/json and Prometheus print. */
    expect_f64(0, "0", "0");
    expect_f64(-0.0, "-0", "-0");
    expect_f64(1, "1", "1");
    expect_f64(100, "100", "100");
    expect_f64(1.5, "1.5", "1.5");
    expect_f64(-2.25, "-2.25", "-2.25");
    expect_f64(0.1, "0.1", "0.1");
    expect_f64(0.1 + 0.2, "0.30000000000000004", "0.30000000000000004");
    expect_f64(1.0 / 3, "0.3333333333333333", "0.3333333333333333");
    expect_f64(123456789.125, "123456789.125", "123456789.125");
    expect_f64(0.000001, "0.000001", "0.000001");
    expect_f64(0.0000025, "0.0000025", "0.0000025");
    expect_f64(1e-7, "1e-7", "1e-07");
    expect_f64(1.5e-10, "1.5e-10", "1.5e-10");
    expect_f64(1e20, "100000000000000000000", "100000000000000000000");
    expect_f64(1.23e20, "123000000000000000000", "123000000000000000000");
    expect_f64(1e21, "1e+21", "1e+21");
    expect_f64(5e-324, "5e-324", "5e-324");
    expect_f64(1.7976931348623157e308, "1.7976931348623157e+308", "1.7976931348623157e+308");
    expect_f64(9007199254740993.0, "9007199254740992", "9007199254740992");
    expect_f64(INFINITY, "\"+Inf\"", "+Inf");
    expect_f64(-INFINITY, "\"-Inf\"", "-Inf");
    expect_f64(NAN, "\"NaN\"", "NaN");
}

static void test_f64_roundtrip_random(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    struct sl_buf b = SL_BUF_INIT;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof(v));
        if (!isfinite(v))
            continue;
        sl_buf_clear(&b);
        sl_f64_format(&b, v);
        assert_true(strtod(b.data, NULL) == v);
        /* Never more than 17 significant digits. */
        size_t digits = 0;
        for (const char *p = b.data; *p && *p != 'e'; p++)
            digits += *p >= '0' && *p <= '9';
        if (!strchr(b.data, 'e') && fabs(v) < 1)
            continue; /* leading zeros of 0.000xxx are not significant */
        if (!strchr(b.data, 'e') && fabs(v) >= 1e17)
            continue; /* trailing zeros of big integers are not significant */
        assert_true(digits <= 17);
    }
    sl_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_deep_nesting_stays_valid),
        cmocka_unit_test(test_f64),
        cmocka_unit_test(test_f64_roundtrip_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
