#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "common/err.h"
#include "common/labels.h"

static struct sl_arena arena;

static int setup(void **state)
{
    (void)state;
    sl_arena_init(&arena, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_arena_release(&arena);
    return 0;
}

static void parse_ok(const char *s, struct sl_labels *ls)
{
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_labels_parse(&arena, s, strlen(s), ls, &err);
    if (rc != 0)
        fail_msg("parse %s: %s", s, err.data);
    sl_buf_release(&err);
}

static void expect_format(const struct sl_labels *ls, const char *want)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_labels_format(ls, &b);
    assert_string_equal(b.data, want);
    sl_buf_release(&b);
}

static void test_parse_basic(void **state)
{
    (void)state;
    struct sl_labels ls;
    parse_ok("{namespace=\"prod\", app=\"api\"}", &ls);
    assert_int_equal(ls.n, 2);
    assert_true(sl_bytes_eq_str(ls.items[0].name, "namespace"));
    assert_true(sl_bytes_eq_str(ls.items[1].value, "api"));
    assert_int_equal(sl_labels_validate(&ls, NULL, NULL), 0);
    expect_format(&ls, "{app=\"api\", namespace=\"prod\"}");
    assert_true(sl_bytes_eq_str(*sl_labels_get(&ls, "app"), "api"));
    assert_null(sl_labels_get(&ls, "pod"));

    parse_ok("  { }  ", &ls);
    assert_int_equal(ls.n, 0);
    expect_format(&ls, "{}");
    parse_ok("{a=\"1\",b=\"2\",}", &ls);
    assert_int_equal(ls.n, 2);
    parse_ok("{\n a = \"x\" ,\tb=`raw\\n`}", &ls);
    assert_true(sl_bytes_eq_str(ls.items[0].value, "x"));
    assert_true(sl_bytes_eq_str(ls.items[1].value, "raw\\n"));
}

static void test_parse_escapes(void **state)
{
    (void)state;
    struct sl_labels ls;
    parse_ok("{a=\"q\\\"b\\\\s\\nn\\tt\\x41\\u00e9\\U0001F600\\101\\a\"}", &ls);
    const char want[] = "q\"b\\s\nn\ttA\xc3\xa9\xf0\x9f\x98\x80"
                        "A\a";
    assert_int_equal(ls.items[0].value.len, sizeof(want) - 1);
    assert_memory_equal(ls.items[0].value.ptr, want, sizeof(want) - 1);
    parse_ok("{a=\"\"}", &ls);
    assert_int_equal(ls.items[0].value.len, 0);
    parse_ok("{a=\"\\x00z\"}", &ls);
    assert_int_equal(ls.items[0].value.len, 2);
    assert_int_equal(ls.items[0].value.ptr[0], 0);
}

static void parse_bad(const char *s, const char *reason)
{
    struct sl_labels ls;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_labels_parse(&arena, s, strlen(s), &ls, &err), SL_EINVAL);
    if (!strstr(err.data, reason))
        fail_msg("parse %s: error %s lacks %s", s, err.data, reason);
    sl_buf_release(&err);
    /* err may be NULL. */
    assert_int_equal(sl_labels_parse(&arena, s, strlen(s), &ls, NULL), SL_EINVAL);
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("", "expected '{' at offset 0");
    parse_bad("a=\"b\"", "expected '{'");
    parse_bad("{a}", "expected '=' at offset 2");
    parse_bad("{a=b}", "expected quoted label value at offset 3");
    parse_bad("{a=\"b}", "unterminated string");
    parse_bad("{a=\"b\\", "unterminated string");
    parse_bad("{a=\"b\" c=\"d\"}", "expected ',' or '}' at offset 7");
    parse_bad("{a=\"b\"", "expected ',' or '}'");
    parse_bad("{a=\"b\"} x", "unexpected data after '}' at offset 8");
    parse_bad("{=\"b\"}", "expected label name at offset 1");
    parse_bad("{a=\"\\q\"}", "unknown escape");
    parse_bad("{a=\"\\xZZ\"}", "invalid \\x escape");
    parse_bad("{a=\"\\ud800\"}", "invalid unicode escape");
    parse_bad("{a=\"\\U00110000\"}", "invalid unicode escape");
    parse_bad("{a=\"\\400\"}", "invalid octal escape");
    parse_bad("{a=\"x\ny\"}", "newline in string");
    parse_bad("{a=`x}", "unterminated string");
}

static void validate_bad(const char *s, const struct sl_label_limits *lim, const char *reason)
{
    struct sl_labels ls;
    parse_ok(s, &ls);
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_labels_validate(&ls, lim, &err), SL_EINVAL);
    if (!strstr(err.data, reason))
        fail_msg("validate %s: error %s lacks %s", s, err.data, reason);
    sl_buf_release(&err);
}

static void test_validate(void **state)
{
    (void)state;
    struct sl_label_limits lim = {.max_names = 3, .max_name_len = 5, .max_value_len = 4};
    validate_bad("{}", NULL, "empty label set");
    validate_bad("{x-y=\"1\"}", NULL, "label name \"x-y\" is invalid");
    validate_bad("{1a=\"1\"}", NULL, "label name \"1a\" is invalid");
    validate_bad("{b=\"1\", a=\"2\", b=\"3\"}", NULL, "label name \"b\" is duplicated");
    validate_bad("{a=\"1\",b=\"1\",c=\"1\",d=\"1\"}", &lim, "too many labels: 4, limit 3");
    validate_bad("{abcdef=\"1\"}", &lim, "label name \"abcdef\" is too long");
    validate_bad("{a=\"12345\"}", &lim, "label name \"a\" has a value that is too long");
    validate_bad("{a=\"\\xff\"}", NULL, "label name \"a\" has a value that is not valid UTF-8");
    struct sl_labels ls;
    parse_ok("{_a9=\"1234\", Z=\"\xc3\xa9\"}", &ls);
    assert_int_equal(sl_labels_validate(&ls, &lim, NULL), 0);
    assert_true(sl_bytes_eq_str(ls.items[0].name, "Z"));

    assert_true(sl_label_name_valid(SL_BYTES_LIT("_")));
    assert_true(sl_label_name_valid(SL_BYTES_LIT("app_kubernetes_io_name9")));
    assert_false(sl_label_name_valid(SL_BYTES_LIT("")));
    assert_false(sl_label_name_valid(SL_BYTES_LIT("a.b")));
    assert_false(sl_label_name_valid(SL_BYTES_LIT("9")));
}

static void test_sort_stable_large(void **state)
{
    (void)state;
    enum { N = 200 };
    struct sl_label items[N];
    char names[N][16];
    char values[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "n%03d", (i * 37) % 50);
        snprintf(values[i], sizeof(values[i]), "%d", i);
        items[i].name = sl_bytes_str(names[i]);
        items[i].value = sl_bytes_str(values[i]);
    }
    struct sl_labels ls = {items, N};
    sl_labels_sort(&ls);
    for (int i = 1; i < N; i++) {
        int c = sl_bytes_cmp(items[i - 1].name, items[i].name);
        assert_true(c <= 0);
        if (c == 0) /* stable: original order (value = index) kept */
            assert_true(atoi(items[i - 1].value.ptr) < atoi(items[i].value.ptr));
    }
}

static void test_format_escapes_and_roundtrip(void **state)
{
    (void)state;
    struct sl_label items[] = {
        {SL_BYTES_LIT("a"), SL_BYTES_LIT("q\"b\\s\nn\x01\x7f\xff\xc3\xa9\t")},
    };
    struct sl_labels ls = {items, 1};
    expect_format(&ls, "{a=\"q\\\"b\\\\s\\nn\\x01\\x7f\\xff\xc3\xa9\\t\"}");
    struct sl_buf b = SL_BUF_INIT;
    sl_labels_format(&ls, &b);
    struct sl_labels back;
    parse_ok(b.data, &back);
    assert_int_equal(back.n, 1);
    assert_true(sl_bytes_eq(back.items[0].value, items[0].value));
    sl_buf_release(&b);
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct sl_labels ls;
    parse_ok("{namespace=\"prod\", app=\"api\"}", &ls);
    sl_labels_sort(&ls);
    const char canon[] = "{app=\"api\", namespace=\"prod\"}";
    assert_true(sl_labels_fingerprint(&ls) == XXH3_64bits(canon, sizeof(canon) - 1));

    /* Long values go through the streaming path in several chunks. */
    static char big[3000];
    memset(big, 'v', sizeof(big) - 1);
    struct sl_label items[] = {
        {SL_BYTES_LIT("a"), sl_bytes(big, 700)},
        {SL_BYTES_LIT("b"), SL_BYTES_LIT("x\"y")},
        {SL_BYTES_LIT("c"), sl_bytes(big, 2999)},
    };
    struct sl_labels ls2 = {items, 3};
    struct sl_buf b = SL_BUF_INIT;
    sl_labels_format(&ls2, &b);
    assert_true(sl_labels_fingerprint(&ls2) == XXH3_64bits(b.data, b.len));
    sl_buf_release(&b);

    struct sl_labels other;
    parse_ok("{app=\"api\", namespace=\"prod2\"}", &other);
    assert_true(sl_labels_fingerprint(&other) != sl_labels_fingerprint(&ls));
}

static void test_copy(void **state)
{
    (void)state;
    char name[] = "app", value[] = "api";
    struct sl_label items[] = {{sl_bytes(name, 3), sl_bytes(value, 3)}};
    struct sl_labels src = {items, 1}, dst;
    sl_labels_copy(&arena, &src, &dst);
    name[0] = 'X';
    value[0] = 'X';
    assert_int_equal(dst.n, 1);
    assert_true(sl_bytes_eq_str(dst.items[0].name, "app"));
    assert_true(sl_bytes_eq_str(dst.items[0].value, "api"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_escapes),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_sort_stable_large),
        cmocka_unit_test(test_format_escapes_and_roundtrip),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
