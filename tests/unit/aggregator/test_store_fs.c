/* Object store, filesystem backend: put/get/range/list/delete, key checks,
 * lexical list order across directories, no temporary files left or listed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/store/store.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/metrics.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sl-test-store-XXXXXX");
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

static struct sl_store *open_fs(struct sl_metrics *m)
{
    struct sl_store_opts o = {.backend = "filesystem", .fs_dir = dir};
    struct sl_store *s = NULL;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_store_open(&o, m, &s, &err), 0);
    sl_buf_release(&err);
    assert_string_equal(sl_store_backend(s), "filesystem");
    return s;
}

static void test_put_get_range(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_store *s = open_fs(m);
    struct sl_buf out = SL_BUF_INIT, err = SL_BUF_INIT;
    assert_int_equal(sl_store_put(s, "chunks/t/00ff/1-2-abc", "hello\0world", 11, &err), 0);
    assert_int_equal(sl_store_get(s, "chunks/t/00ff/1-2-abc", &out, &err), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello\0world", 11);
    sl_buf_clear(&out);
    assert_int_equal(sl_store_get_range(s, "chunks/t/00ff/1-2-abc", 6, 3, &out, &err), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "wor", 3);
    sl_buf_clear(&out);
    /* fewer bytes at the end */
    assert_int_equal(sl_store_get_range(s, "chunks/t/00ff/1-2-abc", 9, 100, &out, &err), 0);
    assert_int_equal(out.len, 2);
    /* replace whole */
    assert_int_equal(sl_store_put(s, "chunks/t/00ff/1-2-abc", "x", 1, &err), 0);
    sl_buf_clear(&out);
    assert_int_equal(sl_store_get(s, "chunks/t/00ff/1-2-abc", &out, &err), 0);
    assert_int_equal(out.len, 1);
    /* missing */
    sl_buf_clear(&err);
    assert_int_equal(sl_store_get(s, "chunks/none", &out, &err), SL_ENOENT);
    assert_non_null(strstr(err.data, "chunks/none"));
    assert_int_equal(sl_store_delete(s, "chunks/t/00ff/1-2-abc", NULL), 0);
    assert_int_equal(sl_store_delete(s, "chunks/t/00ff/1-2-abc", NULL), 0);
    assert_int_equal(sl_store_get(s, "chunks/t/00ff/1-2-abc", &out, NULL), SL_ENOENT);
    struct sl_buf r = SL_BUF_INIT;
    sl_metrics_render(m, &r);
    assert_non_null(strstr(r.data, "sluice_aggregator_store_requests_total{backend=\"filesystem\","
                                   "op=\"get\",result=\"not_found\"} 2"));
    sl_buf_release(&r);
    sl_buf_release(&out);
    sl_buf_release(&err);
    sl_store_close(s);
    sl_metrics_free(m);
}

static void test_bad_keys(void **state)
{
    (void)state;
    struct sl_store *s = open_fs(NULL);
    const char *bad[] = {"", "/abs", "a/../b", "..", "a//b", "a/./b", "a/", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sl_store_put(s, bad[i], "x", 1, NULL), SL_EINVAL);
    struct sl_buf out = SL_BUF_INIT;
    assert_int_equal(sl_store_get(s, "../etc/passwd", &out, NULL), SL_EINVAL);
    sl_store_close(s);
    struct sl_store_opts o = {.backend = "ftp", .fs_dir = dir};
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_store_open(&o, NULL, &s, &err), SL_EINVAL);
    assert_non_null(strstr(err.data, "ftp"));
    sl_buf_release(&err);
}

struct listed {
    char keys[16][64];
    uint64_t sizes[16];
    int n;
};

static int on_key(const char *key, uint64_t size, void *ud)
{
    struct listed *l = ud;
    assert_true(l->n < 16);
    snprintf(l->keys[l->n], 64, "%s", key);
    l->sizes[l->n++] = size;
    return 0;
}

static int stop_at_two(const char *key, uint64_t size, void *ud)
{
    (void)key, (void)size;
    int *n = ud;
    return ++*n == 2 ? 42 : 0;
}

struct dated {
    int n;
    int64_t mtime[4];
};

static int on_object(const struct sl_store_object *o, void *ud)
{
    struct dated *d = ud;
    assert_true(d->n < 4);
    d->mtime[d->n++] = o->mtime_ns;
    return 0;
}

/* Listing with write times: the file's mtime. */
static void test_list_objects(void **state)
{
    (void)state;
    struct sl_store *s = open_fs(NULL);
    int64_t before = (int64_t)time(NULL) * 1000000000LL;
    assert_int_equal(sl_store_put(s, "chunks/t/a", "x", 1, NULL), 0);
    assert_int_equal(sl_store_put(s, "chunks/t/b", "y", 1, NULL), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/chunks/t/b", dir);
    struct timespec ts[2] = {{1700000000, 5}, {1700000000, 5}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    struct dated d = {0};
    assert_int_equal(sl_store_list_objects(s, "chunks/", on_object, &d, NULL), 0);
    assert_int_equal(d.n, 2);
    assert_true(d.mtime[0] >= before - 1000000000LL &&
                d.mtime[0] <= (int64_t)time(NULL) * 1000000000LL + 1000000000LL);
    assert_int_equal(d.mtime[1], 1700000000LL * 1000000000LL + 5);
    sl_store_close(s);
}

static void test_list(void **state)
{
    (void)state;
    struct sl_store *s = open_fs(NULL);
    const char *keys[] = {"index/19000/t/a-1.idx", "a/b", "a.c", "a/b/c", "ab", "index/19000/tx/z",
                          "index/19001/t/b-2.idx"};
    /* "a/b" as a file and a directory cannot both exist: skip "a/b/c" */
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(keys[i], "a/b/c") != 0)
            assert_int_equal(sl_store_put(s, keys[i], keys[i], strlen(keys[i]), NULL), 0);
    struct listed l = {0};
    assert_int_equal(sl_store_list(s, "", on_key, &l, NULL), 0);
    assert_int_equal(l.n, 6);
    assert_string_equal(l.keys[0], "a.c"); /* '.' < '/' */
    assert_string_equal(l.keys[1], "a/b");
    assert_string_equal(l.keys[2], "ab");
    assert_string_equal(l.keys[3], "index/19000/t/a-1.idx");
    assert_int_equal(l.sizes[3], strlen("index/19000/t/a-1.idx"));
    assert_string_equal(l.keys[4], "index/19000/tx/z");
    memset(&l, 0, sizeof l);
    assert_int_equal(sl_store_list(s, "index/19000/t/", on_key, &l, NULL), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "index/19000/t/a-1.idx");
    memset(&l, 0, sizeof l);
    assert_int_equal(sl_store_list(s, "index/19000/t", on_key, &l, NULL), 0);
    assert_int_equal(l.n, 2);
    memset(&l, 0, sizeof l);
    assert_int_equal(sl_store_list(s, "nothing/here/", on_key, &l, NULL), 0);
    assert_int_equal(l.n, 0);
    int n = 0;
    assert_int_equal(sl_store_list(s, "", stop_at_two, &n, NULL), 42);
    assert_int_equal(n, 2);
    sl_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_objects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
