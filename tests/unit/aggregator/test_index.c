/* Index files: series selected through postings and a label predicate,
 * chunks filtered by time, duplicates kept once, mmap'd files, and damaged
 * files refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/index/index.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/format.h"
#include "common/fsutil.h"
#include "common/labels.h"
#include "common/mem.h"

static void add(struct sl_index_writer *w, const char *labels, int64_t from, int64_t through,
                const char *key)
{
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl_labels ls;
    assert_int_equal(sl_labels_parse(&a, labels, strlen(labels), &ls, NULL), 0);
    sl_labels_sort(&ls);
    struct sl_index_chunk_ref ref = {from, through, 100, 10, sl_bytes_str(key)};
    sl_index_writer_add(w, &ls, sl_labels_fingerprint(&ls), &ref);
    sl_arena_release(&a);
}

static void build(struct sl_buf *out)
{
    struct sl_index_writer *w = sl_index_writer_new();
    add(w, "{app=\"api\", env=\"prod\"}", 100, 200, "chunks/t/a/1");
    add(w, "{app=\"api\", env=\"prod\"}", 300, 400, "chunks/t/a/2");
    add(w, "{app=\"api\", env=\"prod\"}", 300, 400, "chunks/t/a/2"); /* again */
    add(w, "{app=\"api\", env=\"dev\"}", 100, 400, "chunks/t/b/1");
    add(w, "{app=\"web\", env=\"prod\"}", 150, 160, "chunks/t/c/1");
    add(w, "{app=\"db\"}", 500, 600, "chunks/t/d/1");
    assert_int_equal(sl_index_writer_chunks(w), 6);
    sl_index_writer_finish(w, out);
    sl_index_writer_free(w);
}

struct seen {
    char labels[8][128];
    char keys[8][64];
    int nseries, nrefs;
    uint64_t last_fp;
};

static int on_series(const struct sl_labels *ls, uint64_t fp, const struct sl_index_chunk_ref *refs,
                     size_t n, void *ud)
{
    struct seen *s = ud;
    assert_int_equal(fp, sl_labels_fingerprint(ls));
    assert_true(s->nseries == 0 || fp > s->last_fp);
    s->last_fp = fp;
    struct sl_buf b = SL_BUF_INIT;
    sl_labels_format(ls, &b);
    snprintf(s->labels[s->nseries++], 128, "%s", b.data);
    sl_buf_release(&b);
    for (size_t i = 0; i < n; i++)
        snprintf(s->keys[s->nrefs++], 64, "%.*s", (int)refs[i].key.len, refs[i].key.ptr);
    return 0;
}

static bool env_not_dev(const struct sl_labels *ls, void *ud)
{
    (void)ud;
    const struct sl_bytes *v = sl_labels_get(ls, "env");
    return !v || !sl_bytes_eq_str(*v, "dev");
}

static bool has_label(struct seen *s, const char *l)
{
    for (int i = 0; i < s->nseries; i++)
        if (strcmp(s->labels[i], l) == 0)
            return true;
    return false;
}

static void test_select(void **state)
{
    (void)state;
    struct sl_buf file = SL_BUF_INIT;
    build(&file);
    struct sl_index_reader *r;
    assert_int_equal(sl_index_reader_open_mem(file.data, file.len, &r), 0);
    assert_int_equal(sl_index_reader_series(r), 4);

    struct seen s = {0};
    assert_int_equal(
        sl_index_reader_select(r, NULL, 0, NULL, NULL, INT64_MIN, INT64_MAX, on_series, &s), 0);
    assert_int_equal(s.nseries, 4);
    assert_int_equal(s.nrefs, 5); /* the repeated chunk once */

    struct sl_index_matcher eq[2] = {{SL_BYTES_LIT("app"), SL_BYTES_LIT("api")}};
    memset(&s, 0, sizeof s);
    assert_int_equal(
        sl_index_reader_select(r, eq, 1, NULL, NULL, INT64_MIN, INT64_MAX, on_series, &s), 0);
    assert_int_equal(s.nseries, 2);
    assert_true(has_label(&s, "{app=\"api\", env=\"prod\"}"));
    assert_true(has_label(&s, "{app=\"api\", env=\"dev\"}"));

    /* predicate */
    memset(&s, 0, sizeof s);
    assert_int_equal(
        sl_index_reader_select(r, eq, 1, env_not_dev, NULL, INT64_MIN, INT64_MAX, on_series, &s),
        0);
    assert_int_equal(s.nseries, 1);
    assert_int_equal(s.nrefs, 2);

    /* intersection of two postings lists, and time: [300, 301) sees chunk 2 only */
    eq[1] = (struct sl_index_matcher){SL_BYTES_LIT("env"), SL_BYTES_LIT("prod")};
    memset(&s, 0, sizeof s);
    assert_int_equal(sl_index_reader_select(r, eq, 2, NULL, NULL, 300, 301, on_series, &s), 0);
    assert_int_equal(s.nseries, 1);
    assert_int_equal(s.nrefs, 1);
    assert_string_equal(s.keys[0], "chunks/t/a/2");
    /* [201, 300) touches no chunk of that series: the series is not reported */
    memset(&s, 0, sizeof s);
    assert_int_equal(sl_index_reader_select(r, eq, 2, NULL, NULL, 201, 300, on_series, &s), 0);
    assert_int_equal(s.nseries, 0);

    /* unknown value or name */
    eq[0].value = SL_BYTES_LIT("nope");
    memset(&s, 0, sizeof s);
    assert_int_equal(
        sl_index_reader_select(r, eq, 1, NULL, NULL, INT64_MIN, INT64_MAX, on_series, &s), 0);
    assert_int_equal(s.nseries, 0);
    sl_index_reader_close(r);
    sl_buf_release(&file);
}

struct names {
    char v[8][32];
    int n;
};

static int on_name(struct sl_bytes v, void *ud)
{
    struct names *n = ud;
    snprintf(n->v[n->n++], 32, "%.*s", (int)v.len, v.ptr);
    return 0;
}

static void test_label_names_and_values(void **state)
{
    (void)state;
    struct sl_buf file = SL_BUF_INIT;
    build(&file);
    struct sl_index_reader *r;
    assert_int_equal(sl_index_reader_open_mem(file.data, file.len, &r), 0);
    struct names n = {0};
    assert_int_equal(sl_index_reader_label_names(r, INT64_MIN, INT64_MAX, on_name, &n), 0);
    assert_int_equal(n.n, 2); /* each once, sorted */
    assert_string_equal(n.v[0], "app");
    assert_string_equal(n.v[1], "env");
    /* [500, 600] holds only {app="db"} */
    memset(&n, 0, sizeof n);
    assert_int_equal(sl_index_reader_label_names(r, 500, 601, on_name, &n), 0);
    assert_int_equal(n.n, 1);
    assert_string_equal(n.v[0], "app");
    memset(&n, 0, sizeof n);
    assert_int_equal(
        sl_index_reader_label_values(r, SL_BYTES_LIT("app"), INT64_MIN, INT64_MAX, on_name, &n), 0);
    assert_int_equal(n.n, 3);
    assert_string_equal(n.v[0], "api");
    assert_string_equal(n.v[1], "db");
    assert_string_equal(n.v[2], "web");
    /* [201, 300): {app="api", env="prod"} spans it (chunks at 100-200 and
     * 300-400) but has no chunk inside; {app="api", env="dev"} (100-400) has */
    memset(&n, 0, sizeof n);
    assert_int_equal(sl_index_reader_label_values(r, SL_BYTES_LIT("env"), 201, 300, on_name, &n),
                     0);
    assert_int_equal(n.n, 1);
    assert_string_equal(n.v[0], "dev");
    memset(&n, 0, sizeof n);
    assert_int_equal(sl_index_reader_label_values(r, SL_BYTES_LIT("env"), 401, 500, on_name, &n),
                     0);
    assert_int_equal(n.n, 0); /* every series with an env ended at 400 */
    memset(&n, 0, sizeof n);
    assert_int_equal(sl_index_reader_label_values(r, SL_BYTES_LIT("app"), 155, 156, on_name, &n),
                     0);
    assert_int_equal(n.n, 2); /* the api series and web (150-160); not db */
    assert_string_equal(n.v[0], "api");
    assert_string_equal(n.v[1], "web");
    memset(&n, 0, sizeof n);
    assert_int_equal(
        sl_index_reader_label_values(r, SL_BYTES_LIT("nope"), INT64_MIN, INT64_MAX, on_name, &n),
        0);
    assert_int_equal(n.n, 0);
    sl_index_reader_close(r);
    sl_buf_release(&file);
}

static void test_empty_and_file(void **state)
{
    (void)state;
    struct sl_index_writer *w = sl_index_writer_new();
    struct sl_buf file = SL_BUF_INIT;
    sl_index_writer_finish(w, &file);
    sl_index_writer_free(w);
    struct sl_index_reader *r;
    assert_int_equal(sl_index_reader_open_mem(file.data, file.len, &r), 0);
    assert_int_equal(sl_index_reader_series(r), 0);
    sl_index_reader_close(r);
    sl_buf_clear(&file);

    build(&file);
    char path[] = "/tmp/sl-test-index-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(sl_write_all(fd, file.data, file.len), 0);
    close(fd);
    assert_int_equal(sl_index_reader_open_file(path, &r), 0);
    struct seen s = {0};
    assert_int_equal(sl_index_reader_select(r, NULL, 0, NULL, NULL, 550, 551, on_series, &s), 0);
    assert_int_equal(s.nseries, 1);
    assert_string_equal(s.labels[0], "{app=\"db\"}");
    sl_index_reader_close(r);
    unlink(path);
    assert_int_equal(sl_index_reader_open_file(path, &r), SL_ENOENT);
    sl_buf_release(&file);
}

static void test_corruption(void **state)
{
    (void)state;
    struct sl_buf file = SL_BUF_INIT;
    build(&file);
    struct sl_index_reader *r;
    for (size_t i = 0; i < file.len; i++) {
        file.data[i] ^= 0x20;
        int rc = sl_index_reader_open_mem(file.data, file.len, &r);
        /* the body and footer checksums cover every byte but the reserved ones */
        if (i < 5 || i >= 8)
            assert_int_not_equal(rc, 0);
        if (rc == 0)
            sl_index_reader_close(r);
        file.data[i] ^= 0x20;
    }
    for (size_t n = 0; n < file.len; n += 5)
        assert_int_not_equal(sl_index_reader_open_mem(file.data, n, &r), 0);
    sl_buf_release(&file);
}

static void test_day_prefix(void **state)
{
    (void)state;
    assert_int_equal(sl_index_day(0), 0);
    assert_int_equal(sl_index_day(SL_INDEX_PERIOD_NS - 1), 0);
    assert_int_equal(sl_index_day(SL_INDEX_PERIOD_NS), 1);
    assert_int_equal(sl_index_day(-1), -1);
    assert_int_equal(sl_index_day(1700000000LL * 1000000000LL), 19675);
    struct sl_buf b = SL_BUF_INIT;
    sl_index_prefix(&b, 19675, SL_BYTES_LIT("team"));
    assert_string_equal(b.data, "index/19675/team/");
    sl_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),         cmocka_unit_test(test_label_names_and_values),
        cmocka_unit_test(test_empty_and_file), cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_day_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
