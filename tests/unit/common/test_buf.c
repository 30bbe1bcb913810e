/* Tests for common/buf.c. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/mem.h"

static void test_empty_buffer(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_clear(&b);
    sl_buf_consume(&b, 10);
    sl_buf_commit(&b, 0);
    assert_int_equal(b.len, 0);
    size_t len = 99;
    char *p = sl_buf_detach(&b, &len);
    assert_int_equal(len, 0);
    assert_string_equal(p, "");
    sl_free(p);
    assert_null(b.data);
}

static void test_reserve_commit_consume(void **state)
{
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b);
    char *p = sl_buf_reserve(&b, 5);
    assert_true(b.cap >= 6);
    memcpy(p, "hello", 5);
    sl_buf_commit(&b, 5);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    sl_buf_append_str(&b, " world");
    assert_string_equal(b.data, "hello world");
    sl_buf_consume(&b, 6);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "world");
    sl_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    sl_buf_release(&b);
    assert_null(b.data);
}

static void test_append_with_nuls_and_growth(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    for (int i = 0; i < 10000; i++)
        sl_buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 30000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[30000], '\0');
    assert_memory_equal(b.data + 29997, "a\0b", 3);
    sl_buf_append_bytes(&b, SL_BYTES_LIT("xy"));
    sl_buf_append_char(&b, 'z');
    assert_memory_equal(b.data + 30000, "xyz", 4);
    struct sl_bytes v = sl_buf_bytes(&b);
    assert_int_equal(v.len, 30003);
    sl_buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap > 30000);
    sl_buf_release(&b);
}

static void test_appendf(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_appendf(&b, "%s=%d", "x", 42);
    assert_string_equal(b.data, "x=42");
    /* Longer than the first reservation, so the second vsnprintf runs. */
    char big[500];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sl_buf_appendf(&b, " %s|", big);
    assert_int_equal(b.len, 4 + 1 + 499 + 1);
    assert_int_equal(b.data[b.len - 1], '|');
    assert_int_equal(b.data[b.len], '\0');
    sl_buf_release(&b);
}

static void test_integers(void **state)
{
    (void)state;
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_u64(&b, 0);
    sl_buf_append_char(&b, ' ');
    sl_buf_append_u64(&b, ULLONG_MAX);
    sl_buf_append_char(&b, ' ');
    sl_buf_append_i64(&b, LLONG_MIN);
    sl_buf_append_char(&b, ' ');
    sl_buf_append_i64(&b, -7);
    sl_buf_append_char(&b, ' ');
    sl_buf_append_i64(&b, 1234567890123LL);
    assert_string_equal(b.data, "0 18446744073709551615 -9223372036854775808 -7 1234567890123");
    size_t len;
    char *p = sl_buf_detach(&b, &len);
    assert_int_equal(len, strlen(p));
    assert_int_equal(b.len, 0);
    assert_null(b.data);
    sl_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_buffer),
        cmocka_unit_test(test_reserve_commit_consume),
        cmocka_unit_test(test_append_with_nuls_and_growth),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
