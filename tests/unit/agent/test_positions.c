/* Positions file: round trip, atomic save, fingerprint checks through
 * sl_tail_open (resume vs. restart at 0). */
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

#include "agent/positions/positions.h"
#include "agent/tail/tail.h"
#include "common/err.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-positions-XXXXXX");
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

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static void test_round_trip(void **state)
{
    (void)state;
    char file[300];
    path_in(file, sizeof(file), "sub/dir/positions.json");
    struct sl_positions p, q;
    struct sl_buf err = SL_BUF_INIT;
    sl_positions_init(&p);
    sl_positions_init(&q);
    struct sl_fingerprint fp1 = {1024, 0xfedcba9876543210ull}, fp2 = {7, 42};
    sl_positions_set(&p, "/var/log/pods/a_b_c/app/0.log", 2049, 123456789012ull, fp1, 777);
    sl_positions_set(&p, "/x/\"quoted\"\n.log", 1, 2, fp2, 0);
    sl_positions_set(&p, "/var/log/pods/a_b_c/app/0.log", 2049, 123456789012ull, fp1, 999);
    /* keyed by device + inode: a rotated sibling keeps its name */
    sl_positions_add(&p, "/p/0.log.20240101-000000", "/p/0.log", 2049, 5, fp2, 12);
    assert_int_equal(p.n, 3);
    assert_int_equal(sl_positions_save(&p, file, &err), 0);
    assert_int_equal(sl_positions_load(&q, file, &err), 0);
    const struct sl_position *e = sl_positions_get(&q, "/var/log/pods/a_b_c/app/0.log");
    assert_non_null(e);
    assert_int_equal(e->dev, 2049);
    assert_int_equal(e->ino, 123456789012ull);
    assert_int_equal(e->fp.len, 1024);
    assert_true(e->fp.hash == 0xfedcba9876543210ull);
    assert_int_equal(e->offset, 999);
    e = sl_positions_get(&q, "/x/\"quoted\"\n.log");
    assert_non_null(e);
    assert_int_equal(e->fp.hash, 42);
    assert_null(sl_positions_get(&q, "/nope"));
    assert_int_equal(q.n, 3);
    e = sl_positions_find(&q, 2049, 5);
    assert_non_null(e);
    assert_string_equal(e->path, "/p/0.log.20240101-000000");
    assert_string_equal(e->name, "/p/0.log");
    assert_int_equal(e->offset, 12);
    assert_null(sl_positions_get(&q, "/x/\"quoted\"\n.log")->name);
    assert_null(sl_positions_find(&q, 2049, 6));
    sl_positions_release(&p);
    sl_positions_release(&q);
    sl_buf_release(&err);
}

static void test_atomic_no_temp_left(void **state)
{
    (void)state;
    char file[300];
    path_in(file, sizeof(file), "positions.json");
    struct sl_positions p;
    struct sl_buf err = SL_BUF_INIT;
    sl_positions_init(&p);
    sl_positions_set(&p, "/a.log", 1, 2, (struct sl_fingerprint){0, 0}, 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_positions_save(&p, file, &err), 0);
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        assert_string_equal(de->d_name, "positions.json");
        n++;
    }
    closedir(d);
    assert_int_equal(n, 1);
    /* A failed save leaves neither the temp file nor a changed target. */
    char bad[300];
    path_in(bad, sizeof(bad), "positions.json/x.json");
    assert_int_equal(sl_positions_save(&p, bad, &err), SL_EIO);
    assert_true(err.len > 0);
    sl_positions_release(&p);
    sl_buf_release(&err);
}

static void test_load_missing_and_corrupt(void **state)
{
    (void)state;
    char file[300];
    struct sl_positions p;
    struct sl_buf err = SL_BUF_INIT;
    sl_positions_init(&p);
    path_in(file, sizeof(file), "missing.json");
    assert_int_equal(sl_positions_load(&p, file, &err), 0);
    assert_int_equal(p.n, 0);
    path_in(file, sizeof(file), "corrupt.json");
    write_file(file, "{\"version\": 1, \"files\": [{\"path\": 3}]}");
    assert_int_equal(sl_positions_load(&p, file, &err), SL_ECORRUPT);
    write_file(file, "{not json");
    assert_int_equal(sl_positions_load(&p, file, &err), SL_ECORRUPT);
    write_file(file, "{\"version\": 99, \"files\": []}");
    assert_int_equal(sl_positions_load(&p, file, &err), SL_EUNSUPP);
    assert_int_equal(p.n, 0);
    sl_positions_release(&p);
    sl_buf_release(&err);
}

static void test_fingerprint_resume_or_restart(void **state)
{
    (void)state;
    char log[300];
    path_in(log, sizeof(log), "0.log");
    write_file(log, "2024-01-02T03:04:05Z stdout F one\n2024-01-02T03:04:05Z stdout F two\n");
    int fd = open(log, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    struct sl_fingerprint fp;
    assert_int_equal(sl_fingerprint_fd(fd, (uint64_t)st.st_size, &fp), 0);
    assert_int_equal(fp.len, st.st_size);
    close(fd);

    struct sl_positions ps;
    sl_positions_init(&ps);
    sl_positions_add(&ps, log, NULL, (uint64_t)st.st_dev, (uint64_t)st.st_ino, fp, 34);
    struct sl_tail_opts opts = {SL_FORMAT_CRI, 1024};
    struct sl_tail t;
    bool resumed;
    assert_int_equal(sl_tail_open(&t, log, &opts, &ps, &resumed), 0);
    assert_true(resumed);
    assert_int_equal(t.read_off, 34);
    sl_tail_release(&t);

    /* Same inode, different first bytes: a new file, start at 0. */
    fd = open(log, O_WRONLY);
    assert_int_equal(pwrite(fd, "1999", 4, 0), 4);
    close(fd);
    assert_int_equal(sl_tail_open(&t, log, &opts, &ps, &resumed), 0);
    assert_false(resumed);
    assert_int_equal(t.read_off, 0);
    sl_tail_release(&t);

    /* Different inode: start at 0. */
    ps.items[0].ino += 1;
    assert_int_equal(sl_tail_open(&t, log, &opts, &ps, &resumed), 0);
    assert_false(resumed);
    sl_tail_release(&t);
    sl_positions_release(&ps);
}

struct count {
    int n;
    struct sl_tail *t;
};

static void cnt_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct count *c = ud;
    (void)e;
    c->n++;
    sl_tail_hold(c->t); /* as the agent does for entries it ships */
}

static void cnt_bad(void *ud, struct sl_bytes l, const char *r)
{
    (void)ud;
    (void)l;
    (void)r;
}

static void test_tail_ack_moves_position(void **state)
{
    (void)state;
    char log[300];
    path_in(log, sizeof(log), "1.log");
    const char *a = "2024-01-02T03:04:05Z stdout P x\n";
    const char *b = "2024-01-02T03:04:05Z stderr F y\n";
    const char *c = "2024-01-02T03:04:05Z stdout F z\n";
    char all[256];
    snprintf(all, sizeof(all), "%s%s%s", a, b, c);
    write_file(log, all);
    struct sl_tail_opts opts = {SL_FORMAT_CRI, 1024};
    struct sl_tail t;
    bool resumed;
    assert_int_equal(sl_tail_open(&t, log, &opts, NULL, &resumed), 0);
    char scratch[4096];
    size_t consumed;
    struct count cnt = {0, &t};
    const struct sl_parse_cbs cbs = {cnt_entry, cnt_bad};
    assert_int_equal(sl_tail_read(&t, scratch, sizeof(scratch), &cbs, &cnt, &consumed),
                     SL_TAIL_DATA);
    assert_int_equal(consumed, strlen(all));
    assert_int_equal(cnt.n, 2);
    assert_int_equal(t.unacked, 2);
    assert_int_equal(t.acked_off, 0);
    /* stderr entry acknowledged alone: stdout partial from 0 still open then */
    sl_tail_ack(&t, 1, sl_tail_cookie(&t, 0));
    assert_int_equal(t.acked_off, 0);
    uint64_t old = sl_tail_cookie(&t, strlen(all));
    sl_tail_ack(&t, 1, old);
    assert_int_equal(t.acked_off, strlen(all));
    assert_int_equal(sl_tail_read(&t, scratch, sizeof(scratch), &cbs, &cnt, &consumed),
                     SL_TAIL_EOF);

    /* copytruncate: restart at 0; late acks of old lines do not move it. */
    write_file(log, b);
    assert_int_equal(sl_tail_read(&t, scratch, sizeof(scratch), &cbs, &cnt, &consumed),
                     SL_TAIL_TRUNCATED);
    assert_int_equal(sl_tail_follow_copy(&t, NULL, NULL), SL_ENOENT); /* no copy */
    uint64_t missed;
    sl_tail_restart(&t, &missed);
    assert_int_equal(missed, 0);
    assert_int_equal(t.read_off, 0);
    sl_tail_ack(&t, 1, old);
    assert_int_equal(t.acked_off, 0);
    assert_int_equal(sl_tail_read(&t, scratch, sizeof(scratch), &cbs, &cnt, &consumed),
                     SL_TAIL_DATA);
    assert_int_equal(cnt.n, 3);
    sl_tail_ack(&t, 1, sl_tail_cookie(&t, strlen(b)));
    assert_int_equal(t.acked_off, strlen(b));
    sl_tail_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_no_temp_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_missing_and_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_resume_or_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_ack_moves_position, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
