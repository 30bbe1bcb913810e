/* WAL: group commit through a real loop, replay in order, rotation, torn and
 * corrupt tails truncated at the last good record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "aggregator/wal/wal.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/format.h"
#include "common/mem.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sl-test-wal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

struct done_state {
    int calls;
    int status[64];
};

static void on_done(void *ud, int status)
{
    struct done_state *d = ud;
    d->status[d->calls++] = status;
}

static int ignore_record(struct sl_bytes p, void *ud)
{
    (void)p;
    (void)ud;
    return 0;
}

/* Writes n records "record <i>" (padded to pad bytes) and waits for them. */
static void write_records(int from, int n, size_t pad, size_t segment_size)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_wal *w;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_wal_opts o = {.dir = dir, .segment_size = segment_size};
    assert_int_equal(sl_wal_open(&o, &w, &err), 0);
    assert_int_equal(sl_wal_replay(w, ignore_record, NULL, NULL, &err), 0);
    assert_int_equal(sl_wal_start(w, &loop, &err), 0);
    struct done_state d = {0};
    char buf[4096];
    for (int i = 0; i < n; i++) {
        memset(buf, '.', sizeof(buf));
        int k = snprintf(buf, sizeof(buf), "record %d", from + i);
        buf[k] = '.';
        sl_wal_append(w, buf, pad, on_done, &d);
    }
    while (d.calls < n)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < n; i++)
        assert_int_equal(d.status[i], 0);
    sl_wal_close(w, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_buf_release(&err);
}

struct replayed {
    int n;
    int first;
    int ids[256];
    size_t len;
};

static int on_record(struct sl_bytes p, void *ud)
{
    struct replayed *r = ud;
    int id = -1;
    sscanf(p.ptr, "record %d", &id);
    r->ids[r->n++] = id;
    r->len = p.len;
    return 0;
}

static int replay(struct replayed *r, struct sl_wal_replay_stats *st)
{
    struct sl_wal *w;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_wal_opts o = {.dir = dir};
    memset(r, 0, sizeof(*r));
    assert_int_equal(sl_wal_open(&o, &w, &err), 0);
    int rc = sl_wal_replay(w, on_record, r, st, &err);
    sl_wal_close(w, NULL, NULL);
    sl_buf_release(&err);
    return rc;
}

static char *first_segment(void)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%016x.wal", dir, 0);
    return p;
}

static void test_write_replay(void **state)
{
    (void)state;
    write_records(0, 10, 100, 0);
    write_records(10, 5, 100, 0); /* a second run: a new segment */
    struct replayed r;
    struct sl_wal_replay_stats st;
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 15);
    for (int i = 0; i < 15; i++)
        assert_int_equal(r.ids[i], i);
    assert_int_equal(r.len, 100);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.records, 15);
    assert_int_equal(st.corrupt_tails, 0);
}

static void test_rotation(void **state)
{
    (void)state;
    /* 4 KiB segments, 1000-byte records: four per segment at most. */
    write_records(0, 20, 1000, 4096);
    struct replayed r;
    struct sl_wal_replay_stats st;
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(r.ids[i], i);
    assert_true(st.segments >= 5);
    struct stat sb;
    assert_int_equal(stat(first_segment(), &sb), 0);
    assert_true(sb.st_size <= 4096);
}

/* sl_wal_rotate closes a segment that holds records, so remove_before can
 * drop it while later records stay; a rotation of an empty segment does
 * nothing. */
static void test_rotate_on_request(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_wal *w;
    struct sl_buf err = SL_BUF_INIT;
    struct sl_wal_opts o = {.dir = dir};
    assert_int_equal(sl_wal_open(&o, &w, &err), 0);
    assert_int_equal(sl_wal_replay(w, ignore_record, NULL, NULL, &err), 0);
    assert_int_equal(sl_wal_start(w, &loop, &err), 0);
    uint64_t first = sl_wal_segment(w);
    struct done_state d = {0};
    sl_wal_append(w, "record 0", 8, on_done, &d);
    while (d.calls < 1)
        uv_run(&loop, UV_RUN_ONCE);
    sl_wal_rotate(w);
    for (int i = 0; i < 500 && sl_wal_segment(w) == first; i++)
        usleep(10000);
    uint64_t second = sl_wal_segment(w);
    assert_int_equal(second, first + 1);
    sl_wal_rotate(w); /* nothing written since: no new segment */
    usleep(50000);
    assert_int_equal(sl_wal_segment(w), second);
    sl_wal_append(w, "record 1", 8, on_done, &d);
    while (d.calls < 2)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(d.status[0], 0);
    assert_int_equal(d.status[1], 0);
    assert_int_equal(sl_wal_remove_before(w, second), 0);
    sl_wal_close(w, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    sl_buf_release(&err);
    struct replayed r;
    assert_int_equal(replay(&r, NULL), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], 1);
}

static void test_torn_tail(void **state)
{
    (void)state;
    write_records(0, 5, 100, 0);
    struct stat sb;
    assert_int_equal(stat(first_segment(), &sb), 0);
    off_t full = sb.st_size;
    /* Cut the last record in half, as a crash during write would. */
    assert_int_equal(truncate(first_segment(), full - 50), 0);
    struct replayed r;
    struct sl_wal_replay_stats st;
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(st.corrupt_tails, 1);
    assert_int_equal(stat(first_segment(), &sb), 0);
    assert_int_equal(sb.st_size, full - 108); /* truncated at the last good record */
    /* A second replay finds a clean segment, and appending works after it. */
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(st.corrupt_tails, 0);
    write_records(4, 2, 100, 0);
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(r.ids[i], i);
}

static void test_corrupt_crc(void **state)
{
    (void)state;
    write_records(0, 6, 100, 0);
    /* Flip a payload byte of the 3rd record. */
    FILE *f = fopen(first_segment(), "r+b");
    assert_non_null(f);
    long off = SL_WAL_HEADER_SIZE + 2 * 108 + SL_WAL_RECORD_HEADER + 50;
    fseek(f, off, SEEK_SET);
    fputc('X', f);
    fclose(f);
    struct replayed r;
    struct sl_wal_replay_stats st;
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(st.corrupt_tails, 1);
    struct stat sb;
    assert_int_equal(stat(first_segment(), &sb), 0);
    assert_int_equal(sb.st_size, SL_WAL_HEADER_SIZE + 2 * 108);
}

static void test_bad_length_and_foreign_file(void **state)
{
    (void)state;
    write_records(0, 3, 100, 0);
    FILE *f = fopen(first_segment(), "ab");
    unsigned char huge[8] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
    fwrite(huge, 1, sizeof(huge), f);
    fclose(f);
    struct replayed r;
    struct sl_wal_replay_stats st;
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(st.corrupt_tails, 1);
    /* A file with the segment name but another magic is refused, not misread. */
    char p[512];
    snprintf(p, sizeof(p), "%s/%016x.wal", dir, 0x50);
    f = fopen(p, "wb");
    fputs("NOTAWAL!and more", f);
    fclose(f);
    assert_int_equal(replay(&r, &st), SL_EUNSUPP);
}

static void test_empty_segment_removed(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof(p), "%s/%016x.wal", dir, 3);
    FILE *f = fopen(p, "wb");
    fputs("SLW", f); /* torn while the header was written */
    fclose(f);
    struct replayed r;
    struct sl_wal_replay_stats st;
    assert_int_equal(replay(&r, &st), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(st.corrupt_tails, 1);
    struct stat sb;
    assert_int_not_equal(stat(p, &sb), 0);
}

static void test_fsync_parse(void **state)
{
    (void)state;
    enum sl_wal_fsync m;
    assert_int_equal(sl_wal_fsync_parse("never", &m), 0);
    assert_int_equal(m, SL_WAL_FSYNC_NEVER);
    assert_int_equal(sl_wal_fsync_parse("batch", &m), 0);
    assert_int_equal(m, SL_WAL_FSYNC_BATCH);
    assert_int_equal(sl_wal_fsync_parse("sometimes", &m), SL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_on_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_length_and_foreign_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_segment_removed, setup, teardown),
        cmocka_unit_test(test_fsync_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
