/* Accept-Encoding parsing of the read API (statics of query_api.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aggregator/querier/query_api.c"

static bool ae(const char *s)
{
    struct sl_bytes b = sl_bytes(s, strlen(s));
    return accepts_gzip(&b);
}

static void test_accepts_gzip(void **state)
{
    (void)state;
    assert_true(ae("gzip"));
    assert_true(ae("GZIP"));
    assert_true(ae("deflate, gzip;q=0.5, br"));
    assert_true(ae("  gzip ; q=1"));
    assert_true(ae("*"));
    assert_true(ae("gzip;q=0.001"));
    assert_false(ae(""));
    assert_false(ae("identity"));
    assert_false(ae("deflate, br"));
    assert_false(ae("gzip;q=0"));
    assert_false(ae("gzip; q=0.000"));
    assert_false(ae("x-gzip2"));
    assert_false(ae("gzipx"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_accepts_gzip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
