/* Disk buffer: append/take/done, restart, torn tail, corrupt crc, max_size
 * eviction, segment removal, the in-memory scanner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/buffer/buffer.h"
#include "common/err.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-buffer-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static struct sl_buffer *open_buf(uint64_t max, uint64_t seg, struct sl_buffer_drop *corrupt)
{
    struct sl_buffer_opts o = {.dir = dir, .max_size = max, .segment_size = seg};
    struct sl_buffer *b = NULL;
    struct sl_buf err = SL_BUF_INIT;
    int rc = sl_buffer_open(&o, &b, corrupt, &err);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", err.data);
    assert_int_equal(rc, 0);
    sl_buf_release(&err);
    return b;
}

/* Record i: body "rec-<iii>-" followed by filler, lines = i + 1. */
static void body_of(int i, size_t fill, struct sl_buf *out)
{
    sl_buf_clear(out);
    sl_buf_appendf(out, "rec-%03d-", i); /* 8 bytes */
    char *p = sl_buf_reserve(out, fill);
    memset(p, 'a' + i % 26, fill);
    sl_buf_commit(out, fill);
}

static void append(struct sl_buffer *b, int i, size_t fill, struct sl_buffer_drop *ev)
{
    struct sl_buf body = SL_BUF_INIT;
    body_of(i, fill, &body);
    struct sl_buffer_meta m = {.lines = (uint32_t)i + 1, .protocol = 2, .codec = 1};
    assert_int_equal(sl_buffer_append(b, &m, sl_buf_bytes(&body), ev, NULL), 0);
    sl_buf_release(&body);
}

/* Takes the oldest record, checks it is record i, marks it done. */
static void take_expect(struct sl_buffer *b, int i, size_t fill, bool done)
{
    struct sl_buf body = SL_BUF_INIT, want = SL_BUF_INIT;
    struct sl_buffer_meta m = {0};
    assert_int_equal(sl_buffer_take(b, &m, &body, NULL, NULL), 0);
    body_of(i, fill, &want);
    assert_int_equal(m.lines, (uint32_t)i + 1);
    assert_int_equal(m.protocol, 2);
    assert_int_equal(m.codec, 1);
    assert_int_equal(body.len, want.len);
    assert_memory_equal(body.data, want.data, want.len);
    if (done)
        assert_int_equal(sl_buffer_done(b, NULL), 0);
    sl_buf_release(&body);
    sl_buf_release(&want);
}

static void expect_empty(struct sl_buffer *b)
{
    struct sl_buf body = SL_BUF_INIT;
    struct sl_buffer_meta m;
    assert_int_equal(sl_buffer_take(b, &m, &body, NULL, NULL), SL_ENOENT);
    sl_buf_release(&body);
}

static int count_segments(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

/* Path of the newest segment file. */
static void last_segment(char *out, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", de->d_name);
    closedir(d);
    assert_true(best[0]);
    snprintf(out, cap, "%s/%s", dir, best);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_fifo(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    expect_empty(b);
    for (int i = 0; i < 5; i++)
        append(b, i, 100, NULL);
    struct sl_buffer_stats st;
    sl_buffer_stats(b, &st);
    assert_int_equal(st.records, 5);
    assert_int_equal(st.lines, 1 + 2 + 3 + 4 + 5);
    assert_int_equal(st.bytes, 5 * (16 + 8 + 100));
    take_expect(b, 0, 100, false);
    sl_buffer_stats(b, &st); /* taken, not done: still counted */
    assert_int_equal(st.records, 5);
    struct sl_buf body = SL_BUF_INIT;
    struct sl_buffer_meta m;
    assert_int_equal(sl_buffer_take(b, &m, &body, NULL, NULL), SL_EEXIST);
    assert_int_equal(sl_buffer_done(b, NULL), 0);
    sl_buffer_stats(b, &st);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.lines, 2 + 3 + 4 + 5);
    for (int i = 1; i < 5; i++)
        take_expect(b, i, 100, true);
    expect_empty(b);
    sl_buffer_stats(b, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.bytes, 0);
    /* appends after draining are taken too */
    append(b, 7, 10, NULL);
    take_expect(b, 7, 10, true);
    expect_empty(b);
    sl_buf_release(&body);
    sl_buffer_free(b);
}

static void test_restart(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 6; i++)
        append(b, i, 50, NULL);
    take_expect(b, 0, 50, true);
    take_expect(b, 1, 50, true);
    take_expect(b, 2, 50, false); /* taken, not done: must come back */
    sl_buffer_free(b);

    struct sl_buffer_drop corrupt = {0};
    b = open_buf(1 << 20, 0, &corrupt);
    assert_int_equal(corrupt.records, 0);
    struct sl_buffer_stats st;
    sl_buffer_stats(b, &st);
    assert_int_equal(st.records, 4);
    append(b, 6, 50, NULL); /* goes to a new segment, after the old ones */
    for (int i = 2; i < 7; i++)
        take_expect(b, i, 50, true);
    expect_empty(b);
    sl_buffer_free(b);

    b = open_buf(1 << 20, 0, NULL); /* everything was done */
    expect_empty(b);
    sl_buffer_free(b);
}

static void test_torn_tail(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 3; i++)
        append(b, i, 200, NULL);
    sl_buffer_free(b);
    char seg[512];
    last_segment(seg, sizeof(seg));
    off_t full = file_size(seg);
    assert_int_equal(truncate(seg, full - 50), 0); /* the last record half written */

    struct sl_buffer_drop corrupt = {0};
    b = open_buf(1 << 20, 0, &corrupt);
    assert_int_equal(corrupt.records, 1);
    assert_int_equal(corrupt.lines, 3);
    assert_int_equal(corrupt.bytes, (16 + 208) - 50);
    assert_non_null(strstr(seg, corrupt.file));
    assert_int_equal(file_size(seg), full - (16 + 208)); /* truncated to the good part */
    take_expect(b, 0, 200, true);
    take_expect(b, 1, 200, true);
    expect_empty(b);
    sl_buffer_free(b);
}

static void test_corrupt_crc(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 4; i++)
        append(b, i, 100, NULL);
    sl_buffer_free(b);
    char seg[512];
    last_segment(seg, sizeof(seg));
    /* flip a body byte of record 2 (header 16, records of 16 + 108 bytes) */
    int fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    off_t at = 16 + 2 * 124 + 16 + 30;
    char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);

    struct sl_buffer_drop corrupt = {0};
    b = open_buf(1 << 20, 0, &corrupt);
    /* record 2 and everything after it in that segment is dropped */
    assert_int_equal(corrupt.records, 1);
    assert_int_equal(corrupt.bytes, 2 * 124);
    take_expect(b, 0, 100, true);
    take_expect(b, 1, 100, true);
    expect_empty(b);
    append(b, 9, 10, NULL); /* still usable */
    take_expect(b, 9, 10, true);
    sl_buffer_free(b);
}

static void test_corrupt_while_running(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 3; i++)
        append(b, i, 100, NULL);
    char seg[512];
    last_segment(seg, sizeof(seg));
    int fd = open(seg, O_RDWR);
    char c = 0;
    assert_int_equal(pwrite(fd, &c, 1, 16 + 124 + 20), 1); /* record 1's body */
    close(fd);
    take_expect(b, 0, 100, true);
    struct sl_buffer_drop corrupt = {0};
    struct sl_buf body = SL_BUF_INIT;
    struct sl_buffer_meta m;
    assert_int_equal(sl_buffer_take(b, &m, &body, &corrupt, NULL), SL_ENOENT);
    assert_int_equal(corrupt.records, 2); /* the bad one and the one after it */
    sl_buf_release(&body);
    sl_buffer_free(b);
}

static void test_eviction(void **state)
{
    (void)state;
    /* each record is 16 + 8 + 992 = 1016 bytes; room for 10 */
    struct sl_buffer *b = open_buf(10 * 1016 + 100, 64 << 10, NULL);
    struct sl_buffer_drop ev = {0};
    for (int i = 0; i < 10; i++)
        append(b, i, 992, &ev);
    assert_int_equal(ev.records, 0);
    for (int i = 10; i < 13; i++)
        append(b, i, 992, &ev);
    assert_int_equal(ev.records, 3);
    assert_int_equal(ev.lines, 1 + 2 + 3);
    assert_int_equal(ev.bytes, 3 * 1016);
    struct sl_buffer_stats st;
    sl_buffer_stats(b, &st);
    assert_int_equal(st.records, 10);
    assert_true(st.bytes <= 10 * 1016 + 100);
    /* a taken record is never evicted: it is delivered */
    take_expect(b, 3, 992, false);
    memset(&ev, 0, sizeof(ev));
    append(b, 13, 992, &ev);
    append(b, 14, 992, &ev);
    assert_int_equal(ev.records, 1); /* record 4 */
    assert_int_equal(sl_buffer_done(b, NULL), 0);
    for (int i = 5; i < 15; i++)
        take_expect(b, i, 992, true);
    expect_empty(b);
    sl_buffer_free(b);
}

static void test_segments_removed(void **state)
{
    (void)state;
    /* 64 KiB segments (the minimum), 8 KiB records: 7 per segment */
    struct sl_buffer *b = open_buf(16 << 20, 64 << 10, NULL);
    for (int i = 0; i < 30; i++)
        append(b, i, 8000, NULL);
    int before = count_segments();
    assert_true(before >= 4);
    for (int i = 0; i < 20; i++)
        take_expect(b, i, 8000, true);
    int mid = count_segments();
    assert_true(mid < before);
    assert_true(mid >= 1);
    sl_buffer_free(b);
    b = open_buf(16 << 20, 64 << 10, NULL); /* restart keeps exactly the rest */
    for (int i = 20; i < 30; i++)
        take_expect(b, i, 8000, true);
    expect_empty(b);
    append(b, 31, 10, NULL);
    take_expect(b, 31, 10, true);
    assert_true(count_segments() <= 2);
    sl_buffer_free(b);
}

static void test_state_corrupt(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 3; i++)
        append(b, i, 10, NULL);
    take_expect(b, 0, 10, true);
    sl_buffer_free(b);
    char path[400];
    snprintf(path, sizeof(path), "%s/state", dir);
    FILE *f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    /* an unreadable state means "from the start": a resend, never a loss */
    b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 3; i++)
        take_expect(b, i, 10, true);
    expect_empty(b);
    sl_buffer_free(b);
}

static void test_scan(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 3; i++)
        append(b, i, 20, NULL);
    sl_buffer_free(b);
    char seg[512];
    last_segment(seg, sizeof(seg));
    FILE *f = fopen(seg, "rb");
    char img[4096];
    size_t n = fread(img, 1, sizeof(img), f);
    fclose(f);
    uint64_t recs, lines;
    assert_int_equal(sl_buffer_scan(img, n, &recs, &lines), n);
    assert_int_equal(recs, 3);
    assert_int_equal(lines, 6);
    assert_int_equal(sl_buffer_scan(img, n - 1, &recs, &lines), n - 44);
    assert_int_equal(recs, 2);
    img[0] ^= 1;
    assert_int_equal(sl_buffer_scan(img, n, &recs, &lines), 0);
    assert_int_equal(recs, 0);
}

static void test_bad_opts(void **state)
{
    (void)state;
    struct sl_buffer *b;
    struct sl_buffer_opts o = {.dir = "", .max_size = 100};
    assert_int_equal(sl_buffer_open(&o, &b, NULL, NULL), SL_EINVAL);
    char file[400];
    snprintf(file, sizeof(file), "%s/file", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(file, sizeof(file), "%s/file/sub", dir);
    o.dir = file;
    struct sl_buf err = SL_BUF_INIT;
    assert_int_equal(sl_buffer_open(&o, &b, NULL, &err), SL_EIO);
    assert_non_null(strstr(err.data, "file/sub"));
    sl_buf_release(&err);
}

static void test_untake(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(10 * 1016 + 100, 64 << 10, NULL);
    for (int i = 0; i < 3; i++)
        append(b, i, 992, NULL);
    take_expect(b, 0, 992, false);
    struct sl_buffer_drop d = {0};
    sl_buffer_untake(b, &d); /* not sent: first again */
    assert_int_equal(d.records, 0);
    struct sl_buffer_stats st;
    sl_buffer_stats(b, &st);
    assert_int_equal(st.records, 3);
    assert_int_equal(st.bytes, 3 * 1016);
    take_expect(b, 0, 992, false);
    /* records after it evicted meanwhile: it cannot come back alone */
    for (int i = 3; i < 13; i++)
        append(b, i, 992, NULL);
    sl_buffer_untake(b, &d);
    assert_int_equal(d.records, 1);
    assert_int_equal(d.lines, 1);
    for (int i = 3; i < 13; i++)
        take_expect(b, i, 992, true);
    expect_empty(b);
    sl_buffer_free(b);
}

static void test_shared_open(void **state)
{
    (void)state;
    struct sl_buffer *a = open_buf(1 << 20, 0, NULL);
    append(a, 0, 10, NULL);
    take_expect(a, 0, 10, false);
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL); /* the same instance */
    struct sl_buf body = SL_BUF_INIT;
    struct sl_buffer_meta m;
    assert_int_equal(sl_buffer_take(b, &m, &body, NULL, NULL), SL_EEXIST);
    sl_buffer_untake(a, NULL);
    sl_buffer_free(a);
    take_expect(b, 0, 10, true);
    expect_empty(b);
    sl_buf_release(&body);
    sl_buffer_free(b);
}

static void test_segment_deleted(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(16 << 20, 64 << 10, NULL);
    for (int i = 0; i < 10; i++) /* 8 per segment */
        append(b, i, 8000, NULL);
    char path[400];
    snprintf(path, sizeof(path), "%s/%016x.seg", dir, 1);
    assert_int_equal(unlink(path), 0);
    struct sl_buffer_drop d = {0};
    struct sl_buf body = SL_BUF_INIT;
    struct sl_buffer_meta m;
    assert_int_equal(sl_buffer_take(b, &m, &body, &d, NULL), 0);
    assert_int_equal(d.records, 8);
    assert_int_equal(m.lines, 9); /* record 8 */
    assert_int_equal(sl_buffer_done(b, NULL), 0);
    take_expect(b, 9, 8000, true);
    sl_buf_release(&body);
    sl_buffer_free(b);
}

/* A crash (no last close) right after records were done: they come back
 * (sent again), nothing that was not done is missing. */
static void test_crash_resends(void **state)
{
    (void)state;
    struct sl_buffer *b = open_buf(1 << 20, 0, NULL);
    for (int i = 0; i < 5; i++)
        append(b, i, 30, NULL);
    take_expect(b, 0, 30, true);
    take_expect(b, 1, 30, true);
    char cmd[1400], copy[300];
    snprintf(copy, sizeof(copy), "%s/crash", dir);
    snprintf(cmd, sizeof(cmd), "mkdir '%s' && cp '%s'/*.seg '%s'/state '%s'/", copy, dir, dir,
             copy);
    assert_int_equal(system(cmd), 0); /* the disk as a crash now would leave it */
    sl_buffer_free(b);
    struct sl_buffer_opts o = {.dir = copy, .max_size = 1 << 20};
    struct sl_buffer_drop corrupt = {0};
    assert_int_equal(sl_buffer_open(&o, &b, &corrupt, NULL), 0);
    assert_int_equal(corrupt.records, 0);
    struct sl_buffer_stats st;
    sl_buffer_stats(b, &st);
    assert_true(st.records >= 3 && st.records <= 5);
    for (int i = 5 - (int)st.records; i < 5; i++)
        take_expect(b, i, 30, true);
    expect_empty(b);
    sl_buffer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_resends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
