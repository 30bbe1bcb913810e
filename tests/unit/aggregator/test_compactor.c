/* Compactor: several index files of a (day, tenant) become one with the same
 * answers; retention drops and deletes old chunks and whole days; a run
 * interrupted after the merged file was written (old and new files side by
 * side) still answers without duplicates and is finished by the next run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/compactor/compactor.h"
#include "aggregator/index/index.h"
#include "aggregator/store/store.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/labels.h"
#include "common/mem.h"
#include "common/metrics.h"

#define DAY  (86400LL * 1000000000LL)
#define HOUR (3600LL * 1000000000LL)

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sl-test-compactor-XXXXXX");
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
    return s;
}

static void put(struct sl_store *s, const char *key, const void *data, size_t len)
{
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_store_put(s, key, data, len, &err), 0);
    sl_buf_release(&err);
}

/* One chunk of stream sel at [from, through]: the chunk object (dummy bytes)
 * and an index file "index/<day>/t/<file>" listing it (and extra refs). */
struct ref {
    const char *sel;
    int64_t from, through;
};

static void chunk_key(struct sl_buf *k, const struct ref *r)
{
    sl_buf_appendf(k, "chunks/t/%s/%lld-%lld-00000000", r->sel[1] == 'a' ? "aa" : "bb",
                   (long long)r->from, (long long)r->through);
}

static void write_index(struct sl_store *s, const char *key, const struct ref *refs, size_t n)
{
    struct sl_index_writer *w = sl_index_writer_new();
    for (size_t i = 0; i < n; i++) {
        struct sl_arena a;
        sl_arena_init(&a, 1024);
        struct sl_labels ls;
        assert_int_equal(sl_labels_parse(&a, refs[i].sel, strlen(refs[i].sel), &ls, NULL), 0);
        struct sl_buf k = SL_BUF_INIT;
        chunk_key(&k, &refs[i]);
        put(s, k.data, "chunk", 5);
        struct sl_index_chunk_ref r = {.from = refs[i].from,
                                       .through = refs[i].through,
                                       .size = 5,
                                       .entries = 1,
                                       .key = {k.data, k.len}};
        sl_index_writer_add(w, &ls, sl_labels_fingerprint(&ls), &r);
        sl_buf_release(&k);
        sl_arena_release(&a);
    }
    struct sl_buf f = SL_BUF_INIT;
    sl_index_writer_finish(w, &f);
    put(s, key, f.data, f.len);
    sl_buf_release(&f);
    sl_index_writer_free(w);
}

static int on_list(const char *key, uint64_t size, void *ud)
{
    (void)size;
    struct sl_buf *b = ud;
    sl_buf_appendf(b, "%s\n", key);
    return 0;
}

static void list(struct sl_store *s, const char *prefix, struct sl_buf *out)
{
    sl_buf_clear(out);
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_store_list(s, prefix, on_list, out, &err), 0);
    sl_buf_release(&err);
}

static size_t count_lines(const struct sl_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

/* The answer of a query over a prefix as the querier computes it: every
 * series' chunk keys from every index file, deduplicated by key; sorted
 * "fp key" lines. */
static int on_series(const struct sl_labels *ls, uint64_t fp, const struct sl_index_chunk_ref *refs,
                     size_t nrefs, void *ud)
{
    (void)ls;
    struct sl_buf *b = ud;
    for (size_t i = 0; i < nrefs; i++)
        sl_buf_appendf(b, "%016llx %.*s %lld\n", (unsigned long long)fp, (int)refs[i].key.len,
                       (const char *)refs[i].key.ptr, (long long)refs[i].through);
    return 0;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void answer(struct sl_store *s, const char *prefix, struct sl_buf *out)
{
    struct sl_buf keys = SL_BUF_INIT, raw = SL_BUF_INIT, err = SL_BUF_INIT;
    list(s, prefix, &keys);
    for (char *k = keys.data, *nl; k && (nl = strchr(k, '\n')); k = nl + 1) {
        *nl = 0;
        struct sl_buf f = SL_BUF_INIT;
        assert_int_equal(sl_store_get(s, k, &f, &err), 0);
        struct sl_index_reader *r;
        assert_int_equal(sl_index_reader_open_mem(f.data, f.len, &r), 0);
        assert_int_equal(
            sl_index_reader_select(r, NULL, 0, NULL, NULL, INT64_MIN, INT64_MAX, on_series, &raw),
            0);
        sl_index_reader_close(r);
        sl_buf_release(&f);
    }
    char *lines[64];
    size_t n = 0;
    for (char *l = raw.data, *nl; l && (nl = strchr(l, '\n')); l = nl + 1) {
        *nl = 0;
        assert_true(n < 64);
        lines[n++] = l;
    }
    qsort(lines, n, sizeof(*lines), line_cmp);
    sl_buf_clear(out);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(lines[i], lines[i - 1]) != 0)
            sl_buf_appendf(out, "%s\n", lines[i]);
    sl_buf_release(&keys);
    sl_buf_release(&raw);
    sl_buf_release(&err);
}

static const int64_t D = 20000; /* a day number */

static void fill_day(struct sl_store *s)
{
    int64_t t0 = D * DAY;
    struct ref f1[] = {{"{a=\"1\"}", t0 + HOUR, t0 + 2 * HOUR}, {"{b=\"2\"}", t0, t0 + HOUR}};
    struct ref f2[] = {{"{a=\"1\"}", t0 + 3 * HOUR, t0 + 4 * HOUR},
                       {"{a=\"1\"}", t0 + HOUR, t0 + 2 * HOUR}}; /* same chunk again */
    struct ref f3[] = {{"{b=\"2\"}", t0 + 5 * HOUR, t0 + 6 * HOUR}};
    write_index(s, "index/20000/t/host-1.idx", f1, 2);
    write_index(s, "index/20000/t/host-2.idx", f2, 2);
    write_index(s, "index/20000/t/host-3.idx", f3, 1);
}

static void test_merge(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_store *s = open_fs(m);
    fill_day(s);
    struct ref other[] = {{"{a=\"1\"}", 1, 2}};
    write_index(s, "index/20000/u/host-1.idx", other, 1); /* one file: left alone */
    struct sl_buf before = SL_BUF_INIT, after = SL_BUF_INIT, keys = SL_BUF_INIT;
    answer(s, "index/20000/t/", &before);
    assert_int_equal(count_lines(&before), 4);

    struct sl_compactor *c;
    struct sl_compactor_opts o = {.store = s, .metrics = m};
    assert_int_equal(sl_compactor_start(&o, &c), 0);
    struct sl_compactor_stats st;
    assert_int_equal(sl_compactor_run(c, (D + 1) * DAY, &st), 0);
    assert_int_equal(st.prefixes, 2);
    assert_int_equal(st.files_merged, 3);
    assert_int_equal(st.files_written, 1);
    assert_int_equal(st.chunks_deleted, 0);

    list(s, "index/20000/t/", &keys);
    assert_int_equal(count_lines(&keys), 1);
    assert_non_null(strstr(keys.data, "index/20000/t/compactor-"));
    list(s, "index/20000/u/", &keys);
    assert_string_equal(keys.data, "index/20000/u/host-1.idx\n");
    answer(s, "index/20000/t/", &after);
    assert_string_equal(before.data, after.data);
    list(s, "chunks/", &keys);
    assert_int_equal(count_lines(&keys), 5);

    /* Nothing more to do: a second run changes nothing. */
    assert_int_equal(sl_compactor_run(c, (D + 1) * DAY, &st), 0);
    assert_int_equal(st.files_merged + st.files_written + st.chunks_deleted, 0);
    struct sl_buf r = SL_BUF_INIT;
    sl_metrics_render(m, &r);
    assert_non_null(strstr(r.data, "sluice_aggregator_compactor_index_files_merged_total 3"));
    assert_non_null(strstr(r.data, "sluice_aggregator_compactor_runs_total{result=\"success\"} 2"));
    sl_buf_release(&r);

    sl_compactor_stop(c);
    sl_buf_release(&before);
    sl_buf_release(&after);
    sl_buf_release(&keys);
    sl_store_close(s);
    sl_metrics_free(m);
}

static void test_retention(void **state)
{
    (void)state;
    struct sl_store *s = open_fs(NULL);
    fill_day(s);
    struct ref old[] = {{"{a=\"1\"}", (D - 3) * DAY, (D - 3) * DAY + HOUR}};
    write_index(s, "index/19997/t/host-1.idx", old, 1);
    struct sl_compactor *c;
    /* Now is day D + 1; keep 21 h: chunks through before D + 3h expire. */
    struct sl_compactor_opts o = {.store = s, .retention_ns = 21 * HOUR};
    assert_int_equal(sl_compactor_start(&o, &c), 0);
    struct sl_compactor_stats st;
    assert_int_equal(sl_compactor_run(c, (D + 1) * DAY, &st), 0);
    assert_int_equal(st.chunks_deleted, 3); /* b 0-1h, a 1-2h, the old day's */
    assert_int_equal(st.files_merged, 4);
    assert_int_equal(st.files_written, 1);

    struct sl_buf keys = SL_BUF_INIT, ans = SL_BUF_INIT;
    list(s, "index/19997/", &keys);
    assert_int_equal(keys.len, 0); /* the whole day is gone */
    list(s, "chunks/", &keys);
    assert_int_equal(count_lines(&keys), 2);
    answer(s, "index/20000/t/", &ans);
    assert_int_equal(count_lines(&ans), 2);
    int64_t t0 = D * DAY;
    char want[64];
    snprintf(want, sizeof want, "-%lld-00000000 %lld", (long long)(t0 + 4 * HOUR),
             (long long)(t0 + 4 * HOUR));
    assert_non_null(strstr(ans.data, want));
    snprintf(want, sizeof want, "-%lld-00000000 %lld", (long long)(t0 + 6 * HOUR),
             (long long)(t0 + 6 * HOUR));
    assert_non_null(strstr(ans.data, want));
    sl_compactor_stop(c);
    sl_buf_release(&keys);
    sl_buf_release(&ans);
    sl_store_close(s);
}

/* A run stopped after writing the merged file and before deleting its
 * inputs leaves both: same answer (refs deduplicated by key); the next run
 * merges them into one again. */
static void test_interrupted(void **state)
{
    (void)state;
    struct sl_store *s = open_fs(NULL);
    fill_day(s);
    struct sl_buf before = SL_BUF_INIT, mid = SL_BUF_INIT, keys = SL_BUF_INIT, f = SL_BUF_INIT,
                  err = SL_BUF_INIT;
    answer(s, "index/20000/t/", &before);
    /* Simulate: compact a copy of the store, then put its output back next
     * to the original inputs. */
    struct sl_compactor *c;
    struct sl_compactor_opts o = {.store = s};
    assert_int_equal(sl_compactor_start(&o, &c), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cp -a '%s/index' '%s/saved'", dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(sl_compactor_run(c, (D + 1) * DAY, NULL), 0);
    snprintf(cmd, sizeof cmd, "cp -a '%s/saved/.' '%s/index/' && rm -rf '%s/saved'", dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    list(s, "index/20000/t/", &keys);
    assert_int_equal(count_lines(&keys), 4);
    answer(s, "index/20000/t/", &mid);
    assert_string_equal(before.data, mid.data);

    struct sl_compactor_stats st;
    assert_int_equal(sl_compactor_run(c, (D + 1) * DAY, &st), 0);
    assert_int_equal(st.files_merged, 4);
    list(s, "index/20000/t/", &keys);
    assert_int_equal(count_lines(&keys), 1);
    answer(s, "index/20000/t/", &mid);
    assert_string_equal(before.data, mid.data);
    sl_compactor_stop(c);
    sl_buf_release(&before);
    sl_buf_release(&mid);
    sl_buf_release(&keys);
    sl_buf_release(&f);
    sl_buf_release(&err);
    sl_store_close(s);
}

/* Sets the write time of every object under the store's top/ to age_s
 * seconds ago. */
static void age_objects(const char *top, int age_s)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "find '%s/%s' -type f -exec touch -d '@%lld' {} +", dir, top,
             (long long)time(NULL) - age_s);
    assert_int_equal(system(cmd), 0);
}

static bool exists(const char *key)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, key);
    return access(p, F_OK) == 0;
}

/* Chunks that no index file references: left by a retention interrupted
 * between deleting index entries and deleting chunks (constructed here: the
 * chunk objects without their index entries), deleted once older than the
 * grace period; a recent one (a flush whose index is not written yet) and
 * every referenced one stay; no sweep while an index file is unreadable. */
static void test_orphans(void **state)
{
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_store *s = open_fs(NULL);
    fill_day(s);
    put(s, "chunks/t/aa/100-200-00000000", "chunk", 5); /* index entry gone */
    put(s, "chunks/u/cc/100-300-00000000", "chunk", 5); /* another tenant's */
    age_objects("chunks", 7200);
    put(s, "chunks/t/bb/300-400-00000000", "chunk", 5); /* in flight: just stored */
    struct sl_buf keys = SL_BUF_INIT, before = SL_BUF_INIT, after = SL_BUF_INIT;
    answer(s, "index/20000/t/", &before);

    struct sl_compactor *c;
    struct sl_compactor_opts o = {.store = s, .metrics = m, .orphan_grace_ns = HOUR};
    assert_int_equal(sl_compactor_start(&o, &c), 0);
    /* an unreadable index file: its references are unknown, nothing is swept */
    put(s, "index/20001/t/host-9.idx", "garbage", 7);
    struct sl_compactor_stats st;
    assert_int_equal(sl_compactor_run(c, 0, &st), 0);
    assert_int_equal(st.orphans_deleted, 0);
    assert_true(exists("chunks/t/aa/100-200-00000000"));

    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_store_delete(s, "index/20001/t/host-9.idx", &err), 0);
    assert_int_equal(sl_compactor_run(c, 0, &st), 0);
    assert_int_equal(st.orphans_deleted, 2);
    assert_false(exists("chunks/t/aa/100-200-00000000"));
    assert_false(exists("chunks/u/cc/100-300-00000000"));
    assert_true(exists("chunks/t/bb/300-400-00000000"));
    list(s, "chunks/", &keys);
    assert_int_equal(count_lines(&keys), 5); /* 4 referenced + the one in flight */
    answer(s, "index/20000/t/", &after);
    assert_string_equal(before.data, after.data);

    /* once the in-flight one is past the grace period it goes too */
    age_objects("chunks", 7200);
    assert_int_equal(sl_compactor_run(c, 0, &st), 0);
    assert_int_equal(st.orphans_deleted, 1);
    list(s, "chunks/", &keys);
    assert_int_equal(count_lines(&keys), 4);

    struct sl_buf r = SL_BUF_INIT;
    sl_metrics_render(m, &r);
    assert_non_null(strstr(r.data, "sluice_aggregator_compactor_orphaned_chunks_deleted_total 3"));
    sl_buf_release(&r);
    sl_compactor_stop(c);

    /* grace 0: no sweep at all */
    put(s, "chunks/t/aa/500-600-00000000", "chunk", 5);
    age_objects("chunks", 7200);
    o.orphan_grace_ns = 0;
    o.metrics = NULL;
    assert_int_equal(sl_compactor_start(&o, &c), 0);
    assert_int_equal(sl_compactor_run(c, 0, &st), 0);
    assert_int_equal(st.orphans_deleted, 0);
    assert_true(exists("chunks/t/aa/500-600-00000000"));
    sl_compactor_stop(c);
    sl_buf_release(&keys);
    sl_buf_release(&before);
    sl_buf_release(&after);
    sl_buf_release(&err);
    sl_store_close(s);
    sl_metrics_free(m);
}

/* The background thread runs on its interval and stops promptly. */
static void test_thread(void **state)
{
    (void)state;
    struct sl_store *s = open_fs(NULL);
    fill_day(s);
    struct sl_compactor *c;
    struct sl_compactor_opts o = {.store = s, .interval_ns = 10 * 1000000LL};
    assert_int_equal(sl_compactor_start(&o, &c), 0);
    struct sl_buf keys = SL_BUF_INIT;
    for (int i = 0; i < 500; i++) {
        list(s, "index/20000/t/", &keys);
        if (count_lines(&keys) == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(count_lines(&keys), 1);
    sl_compactor_stop(c);
    sl_buf_release(&keys);
    sl_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
