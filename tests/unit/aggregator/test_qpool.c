/* Query worker pool: every unit of an attached source runs, sources are
 * served in turn (a big one does not starve a small one), detach waits for
 * running callbacks, and a pool without threads runs nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/querier/qpool.h"

struct src {
    struct sl_qpool_source s;
    atomic_int left; /* units still to run */
    atomic_int done;
    atomic_int inside;
    int sleep_us;
};

static bool work(void *ud)
{
    struct src *x = ud;
    if (atomic_fetch_sub(&x->left, 1) <= 0) {
        atomic_fetch_add(&x->left, 1);
        return false;
    }
    atomic_fetch_add(&x->inside, 1);
    if (x->sleep_us)
        usleep((useconds_t)x->sleep_us);
    atomic_fetch_sub(&x->inside, 1);
    atomic_fetch_add(&x->done, 1);
    return true;
}

static void wait_done(struct src *x, int n)
{
    for (int i = 0; i < 20000 && atomic_load(&x->done) < n; i++)
        usleep(500);
}

static void test_runs_every_unit(void **state)
{
    (void)state;
    struct sl_qpool *p = sl_qpool_new(3);
    assert_int_equal(sl_qpool_threads(p), 3);
    struct src a = {.left = 500};
    sl_qpool_attach(p, &a.s, work, &a);
    wait_done(&a, 500);
    assert_int_equal(atomic_load(&a.done), 500);
    /* more work after the source went idle: a kick wakes the workers */
    atomic_store(&a.left, 50);
    sl_qpool_kick(p, &a.s);
    wait_done(&a, 550);
    assert_int_equal(atomic_load(&a.done), 550);
    sl_qpool_detach(p, &a.s);
    sl_qpool_free(p);
}

static void test_sources_share_fairly(void **state)
{
    (void)state;
    struct sl_qpool *p = sl_qpool_new(1);
    struct src big = {.left = 1000000, .sleep_us = 200};
    struct src small = {.left = 20, .sleep_us = 200};
    sl_qpool_attach(p, &big.s, work, &big);
    usleep(2000);
    sl_qpool_attach(p, &small.s, work, &small);
    wait_done(&small, 20);
    assert_int_equal(atomic_load(&small.done), 20);
    /* served in turn: the big source ran about as many units meanwhile, not
     * all of its million */
    assert_true(atomic_load(&big.done) < 200);
    sl_qpool_detach(p, &big.s);
    assert_int_equal(atomic_load(&big.inside), 0); /* detach waited for it */
    int after = atomic_load(&big.done);
    usleep(5000);
    assert_int_equal(atomic_load(&big.done), after); /* and nothing runs it since */
    sl_qpool_detach(p, &small.s);
    sl_qpool_free(p);
}

static void test_no_threads(void **state)
{
    (void)state;
    struct sl_qpool *p = sl_qpool_new(0);
    struct src a = {.left = 5};
    sl_qpool_attach(p, &a.s, work, &a);
    usleep(2000);
    assert_int_equal(atomic_load(&a.done), 0);
    sl_qpool_detach(p, &a.s);
    sl_qpool_free(p);
    sl_qpool_attach(NULL, &a.s, work, &a); /* no pool: no-ops */
    sl_qpool_kick(NULL, &a.s);
    sl_qpool_detach(NULL, &a.s);
    assert_true(sl_qpool_ncpu() >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_every_unit),
        cmocka_unit_test(test_sources_share_fairly),
        cmocka_unit_test(test_no_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
