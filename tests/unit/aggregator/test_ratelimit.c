/* Tests for aggregator/distributor/ratelimit.c: burst, refill at the rate,
 * Retry-After values, fractional rates, debt for pushes above the burst,
 * tenants apart, forgetting idle tenants. Time is passed in, so no sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/distributor/ratelimit.h"
#include "common/err.h"

#define S  1000000000LL
#define MB (1 << 20)

static int take(struct sl_ratelimit *rl, const char *t, size_t n, int64_t now, int64_t *wait)
{
    return sl_ratelimit_take(rl, sl_bytes_str(t), n, now, wait);
}

static void test_burst_then_rate(void **state)
{
    (void)state;
    struct sl_ratelimit *rl = sl_ratelimit_new(1 * MB, 2 * MB);
    int64_t t0 = 1000 * S, wait;
    /* a full bucket holds the burst */
    assert_int_equal(take(rl, "a", MB, t0, &wait), 0);
    assert_int_equal(take(rl, "a", MB, t0, &wait), 0);
    assert_int_equal(take(rl, "a", 1, t0, &wait), SL_EAGAIN);
    assert_true(wait > 0 && wait <= S / 1000); /* one byte at 1 MB/s: about 1 us */
    assert_int_equal(take(rl, "a", MB / 2, t0, &wait), SL_EAGAIN);
    assert_true(wait >= S / 2 - 1000 && wait <= S / 2 + 1000);
    /* half a second later half a MB is back */
    assert_int_equal(take(rl, "a", MB / 2, t0 + S / 2, &wait), 0);
    assert_int_equal(take(rl, "a", 1000, t0 + S / 2, &wait), SL_EAGAIN);
    /* the bucket never holds more than the burst */
    assert_int_equal(take(rl, "a", 2 * MB, t0 + 100 * S, &wait), 0);
    assert_int_equal(take(rl, "a", 1, t0 + 100 * S, &wait), SL_EAGAIN);
    /* a time going backwards adds nothing */
    assert_int_equal(take(rl, "a", 1, t0, &wait), SL_EAGAIN);
    sl_ratelimit_free(rl);
}

static void test_tenants_apart(void **state)
{
    (void)state;
    struct sl_ratelimit *rl = sl_ratelimit_new(1000, 1000);
    int64_t wait;
    assert_int_equal(take(rl, "a", 1000, 0, &wait), 0);
    assert_int_equal(take(rl, "a", 1, 0, &wait), SL_EAGAIN);
    assert_int_equal(take(rl, "b", 1000, 0, &wait), 0);
    assert_int_equal(take(rl, "ab", 1000, 0, &wait), 0);
    assert_int_equal(sl_ratelimit_tenants(rl), 3);
    sl_ratelimit_free(rl);
}

static void test_fraction_and_retry_after(void **state)
{
    (void)state;
    /* 0.5 MB/s, burst 0.5 MB */
    struct sl_ratelimit *rl = sl_ratelimit_new(0.5 * MB, 0.5 * MB);
    int64_t wait;
    assert_int_equal(take(rl, "t", MB / 2, 0, &wait), 0);
    assert_int_equal(take(rl, "t", MB / 4, 0, &wait), SL_EAGAIN);
    assert_true(wait >= S / 2 - 1000 && wait <= S / 2 + 1000);
    /* waiting as told makes the same push pass */
    assert_int_equal(take(rl, "t", MB / 4, wait, &wait), 0);
    sl_ratelimit_free(rl);
}

static void test_above_burst_goes_into_debt(void **state)
{
    (void)state;
    struct sl_ratelimit *rl = sl_ratelimit_new(1000, 1000);
    int64_t wait;
    /* 3000 bytes > burst: passes on a full bucket, leaving 2000 bytes of debt */
    assert_int_equal(take(rl, "t", 3000, 0, &wait), 0);
    assert_int_equal(take(rl, "t", 10, S, &wait), SL_EAGAIN);
    assert_true(wait > S && wait <= S + S / 50);                  /* 1000 of debt + 10 at 1000/s */
    assert_int_equal(take(rl, "t", 10, 2 * S, &wait), SL_EAGAIN); /* at 0 tokens */
    assert_int_equal(take(rl, "t", 10, 2 * S + S / 50, &wait), 0);
    /* a second oversized push waits until the bucket is full again */
    assert_int_equal(take(rl, "t", 5000, 2 * S + S / 50, &wait), SL_EAGAIN);
    assert_true(wait > S - S / 10 && wait <= S + S / 10);
    assert_int_equal(take(rl, "t", 5000, 4 * S, &wait), 0);
    sl_ratelimit_free(rl);
}

static void test_disabled(void **state)
{
    (void)state;
    struct sl_ratelimit *rl = sl_ratelimit_new(0, 0);
    int64_t wait = 42;
    for (int i = 0; i < 100; i++)
        assert_int_equal(take(rl, "t", 1 << 30, 0, &wait), 0);
    assert_int_equal(wait, 0);
    assert_int_equal(sl_ratelimit_tenants(rl), 0);
    sl_ratelimit_free(rl);
}

static void test_idle_tenants_forgotten(void **state)
{
    (void)state;
    struct sl_ratelimit *rl = sl_ratelimit_new(1000, 1000);
    int64_t wait;
    char name[32];
    /* 1000 tenants, each active once, one second apart in groups: the full
     * buckets of idle tenants are dropped when the table grows. */
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "tenant-%d", i);
        assert_int_equal(take(rl, name, 500, (int64_t)i * S, &wait), 0);
    }
    assert_true(sl_ratelimit_tenants(rl) < 64);
    /* a tenant still in debt of tokens is kept and limited */
    assert_int_equal(take(rl, "busy", 1000, 1000 * S, &wait), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "other-%d", i);
        take(rl, name, 10, 1000 * S, &wait);
    }
    assert_int_equal(take(rl, "busy", 500, 1000 * S, &wait), SL_EAGAIN);
    sl_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_tenants_apart),
        cmocka_unit_test(test_fraction_and_retry_after),
        cmocka_unit_test(test_above_burst_goes_into_debt),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_idle_tenants_forgotten),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
