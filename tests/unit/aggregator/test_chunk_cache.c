/* Chunk disk cache: put/get round trip, misses, least recently used
 * eviction by size, the directory reloaded on open (order, size bound,
 * leftovers of interrupted writes), damaged files dropped, metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/querier/chunk_cache.h"
#include "common/err.h"
#include "common/metrics.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sl-test-ccache-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void put(struct sl_chunk_cache *c, const char *key, char fill, size_t n)
{
    char *d = malloc(n);
    memset(d, fill, n);
    sl_chunk_cache_put(c, key, d, n);
    free(d);
}

/* 0 if key holds n bytes of fill, else the get's code (or 1 on wrong data). */
static int check(struct sl_chunk_cache *c, const char *key, char fill, size_t n)
{
    struct sl_buf b = SL_BUF_INIT;
    int rc = sl_chunk_cache_get(c, key, &b);
    if (rc == 0 && b.len != n)
        rc = 1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (b.data[i] != fill)
            rc = 1;
    sl_buf_release(&b);
    return rc;
}

static double metric(struct sl_metrics *m, const char *name)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_metrics_render(m, &b);
    double v = -1;
    for (char *p = b.data; p && (p = strstr(p, name)); p++)
        if ((p == b.data || p[-1] == '\n') && p[strlen(name)] == ' ') {
            v = strtod(p + strlen(name) + 1, NULL);
            break;
        }
    sl_buf_release(&b);
    return v;
}

static void test_round_trip_and_lru(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_chunk_cache *c;
    struct sl_buf err = SL_BUF_INIT;
    /* room for three 1000-byte objects (each file adds a small header) */
    assert_int_equal(sl_chunk_cache_open(dir, 3200, m, &c, &err), 0);
    assert_int_equal(check(c, "chunks/t/a/1", 'a', 1000), SL_ENOENT);
    put(c, "chunks/t/a/1", 'a', 1000);
    put(c, "chunks/t/a/2", 'b', 1000);
    put(c, "chunks/t/a/3", 'c', 1000);
    assert_int_equal(sl_chunk_cache_files(c), 3);
    assert_int_equal(check(c, "chunks/t/a/1", 'a', 1000), 0); /* 1 is now the newest */
    put(c, "chunks/t/a/4", 'd', 1000);                        /* evicts 2, the oldest */
    assert_int_equal(sl_chunk_cache_files(c), 3);
    assert_true(sl_chunk_cache_bytes(c) <= 3200);
    assert_int_equal(check(c, "chunks/t/a/2", 'b', 1000), SL_ENOENT);
    assert_int_equal(check(c, "chunks/t/a/1", 'a', 1000), 0);
    assert_int_equal(check(c, "chunks/t/a/3", 'c', 1000), 0);
    assert_int_equal(check(c, "chunks/t/a/4", 'd', 1000), 0);
    put(c, "chunks/t/big", 'x', 5000); /* larger than the cache: not kept */
    assert_int_equal(check(c, "chunks/t/big", 'x', 5000), SL_ENOENT);
    assert_int_equal(sl_chunk_cache_files(c), 3);
    assert_true(metric(m, "sluice_aggregator_chunk_cache_hits_total") == 4);
    assert_true(metric(m, "sluice_aggregator_chunk_cache_misses_total") == 3);
    assert_true(metric(m, "sluice_aggregator_chunk_cache_evictions_total") == 1);
    assert_true(metric(m, "sluice_aggregator_chunk_cache_files") == 3);
    sl_chunk_cache_close(c);
    sl_metrics_free(m);
    sl_buf_release(&err);
}

static void test_reopen(void **state)
{
    (void)state;
    struct sl_chunk_cache *c;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_chunk_cache_open(dir, 1 << 20, NULL, &c, &err), 0);
    put(c, "k/old", 'o', 1000);
    put(c, "k/mid", 'm', 1000);
    put(c, "k/new", 'n', 1000);
    sl_chunk_cache_close(c);
    /* an interrupted write leaves a temporary file: removed on open */
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/00/.tmp-0000000000000000-1", dir);
    char sub[96];
    snprintf(sub, sizeof sub, "%s/00", dir);
    mkdir(sub, 0755);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("partial", f);
    fclose(f);
    /* files come back in modification-time order; reads touch them */
    assert_int_equal(sl_chunk_cache_open(dir, 1 << 20, NULL, &c, &err), 0);
    assert_int_equal(sl_chunk_cache_files(c), 3);
    assert_int_equal(check(c, "k/old", 'o', 1000), 0);
    assert_int_equal(check(c, "k/new", 'n', 1000), 0);
    sl_chunk_cache_close(c);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* reopened smaller: trimmed to the bound, the least recently used first
     * ("mid" was not read since "old" and "new" were) */
    struct sl_metrics *m = sl_metrics_new();
    assert_int_equal(sl_chunk_cache_open(dir, 2100, m, &c, &err), 0);
    assert_int_equal(sl_chunk_cache_files(c), 2);
    assert_int_equal(check(c, "k/mid", 'm', 1000), SL_ENOENT);
    assert_int_equal(check(c, "k/old", 'o', 1000), 0);
    assert_int_equal(check(c, "k/new", 'n', 1000), 0);
    assert_true(metric(m, "sluice_aggregator_chunk_cache_evictions_total") == 1);
    sl_chunk_cache_close(c);
    sl_metrics_free(m);
    sl_buf_release(&err);
}

static void test_damaged_file(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_chunk_cache *c;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_chunk_cache_open(dir, 1 << 20, m, &c, &err), 0);
    put(c, "k/a", 'a', 100);
    sl_chunk_cache_close(c);
    /* truncate the one file */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "find '%s' -name '*.chunk' -exec truncate -s 50 {} +", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(sl_chunk_cache_open(dir, 1 << 20, m, &c, &err), 0);
    assert_int_equal(check(c, "k/a", 'a', 100), SL_ENOENT);
    assert_int_equal(sl_chunk_cache_files(c), 0);
    assert_true(metric(m, "sluice_aggregator_chunk_cache_errors_total") == 1);
    put(c, "k/a", 'a', 100); /* written again */
    assert_int_equal(check(c, "k/a", 'a', 100), 0);
    sl_chunk_cache_close(c);
    sl_metrics_free(m);
    sl_buf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
