/* Tailing through rotations: rename (find_name), copytruncate (follow_copy),
 * truncate-and-rewrite seen by the fingerprint, positions found again after a
 * restart (open_known), and acknowledgements that straddle a truncation. */
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

#include "agent/tail/tail.h"
#include "common/err.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-tail-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, const char *name)
{
    snprintf(out, 256, "%s/%s", dir, name);
}

static void put(const char *path, const char *mode, const char *s)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

#define L1 "2024-01-02T03:04:05Z stdout F one\n"
#define L2 "2024-01-02T03:04:05Z stdout F two\n"
#define L3 "2024-01-02T03:04:05Z stdout F three\n"
#define N1 "2024-01-02T03:04:06Z stdout F new-one\n"
#define N2 "2024-01-02T03:04:06Z stdout F new-two\n"

struct ctx {
    struct sl_tail *t;
    int n;
    char last[64];
    uint64_t cookies[16];
};

static void on_entry(void *ud, const struct sl_parsed_entry *e)
{
    struct ctx *c = ud;
    sl_tail_hold(c->t);
    snprintf(c->last, sizeof(c->last), "%.*s", (int)e->line.len, e->line.ptr);
    c->cookies[c->n++ % 16] = sl_tail_cookie(c->t, e->safe_off);
}

static void on_bad(void *ud, struct sl_bytes l, const char *r)
{
    (void)ud;
    (void)l;
    (void)r;
    fail();
}

static const struct sl_parse_cbs cbs = {on_entry, on_bad};
static const struct sl_tail_opts opts = {SL_FORMAT_CRI, 1024};

static int rd(struct sl_tail *t, struct ctx *c)
{
    char scratch[4096];
    size_t consumed;
    return sl_tail_read(t, scratch, sizeof(scratch), &cbs, c, &consumed);
}

static void test_rename_then_find_name(void **state)
{
    (void)state;
    char p[256], r[256];
    path_in(p, "0.log");
    path_in(r, "0.log.20240101-000000");
    put(p, "w", L1);
    struct sl_tail t;
    struct ctx c = {.t = &t};
    bool resumed;
    assert_int_equal(sl_tail_open(&t, p, &opts, NULL, &resumed), 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_int_equal(rename(p, r), 0);
    put(r, "a", L2); /* the runtime still writes to the renamed file */
    put(p, "w", N1); /* and a new file takes the name */
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_string_equal(c.last, "two");
    assert_int_equal(rd(&t, &c), SL_TAIL_ROTATED);
    assert_int_equal(sl_tail_find_name(&t), 0);
    assert_string_equal(t.path, r);
    assert_string_equal(t.name, p);
    /* Once deleted (gzipped away), the open descriptor still reads it. */
    put(r, "a", L3);
    assert_int_equal(unlink(r), 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_string_equal(c.last, "three");
    assert_int_equal(rd(&t, &c), SL_TAIL_DELETED);
    sl_tail_release(&t);
}

static void test_copytruncate_follows_copy(void **state)
{
    (void)state;
    char p[256], cp[256], cmd[600];
    path_in(p, "1.log");
    path_in(cp, "1.log.1");
    put(p, "w", L1 L2);
    struct sl_tail t;
    struct ctx c = {.t = &t};
    bool resumed;
    assert_int_equal(sl_tail_open(&t, p, &opts, NULL, &resumed), 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_int_equal(rd(&t, &c), SL_TAIL_EOF);
    uint64_t off = t.read_off;
    put(p, "a", L3); /* written, then copied and truncated before we read it */
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p, cp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(truncate(p, 0), 0);
    put(p, "a", N1);
    assert_int_equal(rd(&t, &c), SL_TAIL_TRUNCATED);
    assert_int_equal(sl_tail_follow_copy(&t, NULL, NULL), 0);
    assert_string_equal(t.path, cp);
    assert_int_equal(t.read_off, off);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_string_equal(c.last, "three");
    sl_tail_release(&t);
}

static void test_rewrite_seen_by_fingerprint(void **state)
{
    (void)state;
    char p[256];
    path_in(p, "2.log");
    put(p, "w", L1);
    struct sl_tail t;
    struct ctx c = {.t = &t};
    bool resumed;
    assert_int_equal(sl_tail_open(&t, p, &opts, NULL, &resumed), 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_int_equal(rd(&t, &c), SL_TAIL_EOF);
    /* Truncated and rewritten past our offset before we looked again: the
     * size alone cannot tell, the first bytes do. */
    put(p, "w", N1 N2);
    assert_int_equal(rd(&t, &c), SL_TAIL_TRUNCATED);
    assert_int_equal(sl_tail_follow_copy(&t, NULL, NULL), SL_ENOENT);
    uint64_t missed = 99;
    sl_tail_restart(&t, &missed);
    assert_int_equal(missed, 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_string_equal(c.last, "new-two");
    sl_tail_release(&t);
}

static void test_acks_straddling_a_truncation(void **state)
{
    (void)state;
    char p[256];
    path_in(p, "3.log");
    put(p, "w", L1 L2);
    struct sl_tail t;
    struct ctx c = {.t = &t};
    bool resumed;
    assert_int_equal(sl_tail_open(&t, p, &opts, NULL, &resumed), 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_int_equal(t.unacked, 2);
    assert_int_equal(truncate(p, 0), 0);
    put(p, "a", N1);
    assert_int_equal(rd(&t, &c), SL_TAIL_TRUNCATED);
    uint64_t missed;
    sl_tail_restart(&t, &missed);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA); /* new-one: in the same batch as one, two */
    put(p, "a", N2);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA); /* new-two: in the next batch */
    assert_int_equal(t.stale, 2);
    assert_int_equal(t.unacked, 2);
    /* The first batch: one, two, new-one. Only new-one counts, and the
     * position must stop before new-two, which is not delivered yet. */
    sl_tail_ack(&t, 3, c.cookies[2]);
    assert_int_equal(t.stale, 0);
    assert_int_equal(t.unacked, 1);
    assert_int_equal(t.acked_off, strlen(N1));
    sl_tail_ack(&t, 1, c.cookies[3]);
    assert_int_equal(t.acked_off, strlen(N1 N2));
    assert_true(sl_tail_settled(&t));
    sl_tail_release(&t);
}

static void test_open_known_after_restart(void **state)
{
    (void)state;
    char p[256], r[256];
    path_in(p, "4.log");
    path_in(r, "4.log.1");
    put(p, "w", L1 L2);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    struct sl_tail t;
    struct ctx c = {.t = &t};
    bool resumed;
    assert_int_equal(sl_tail_open(&t, p, &opts, NULL, &resumed), 0);
    struct sl_position pos = {
        .path = p, .dev = t.dev, .ino = t.ino, .fp = t.fp, .offset = strlen(L1)};
    sl_tail_release(&t);
    /* Rotated while the agent was down. */
    assert_int_equal(rename(p, r), 0);
    put(p, "w", N1);
    assert_int_equal(sl_tail_open_known(&t, &pos, &opts, NULL, NULL), 0);
    assert_string_equal(t.path, r);
    assert_string_equal(t.name, p);
    assert_int_equal(t.read_off, strlen(L1));
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_string_equal(c.last, "two");
    sl_tail_release(&t);
    /* Gone for good. */
    assert_int_equal(unlink(r), 0);
    assert_int_equal(sl_tail_open_known(&t, &pos, &opts, NULL, NULL), SL_ENOENT);
}

/* Lines read but not acknowledged (position 0) when the agent stopped, then
 * copytruncate while it was down: the copy is found by its fingerprint and
 * read from the start, so those lines are not lost. */
static void test_open_known_unacked_copytruncate(void **state)
{
    (void)state;
    char p[256], r[256];
    path_in(p, "5.log");
    path_in(r, "5.log.1");
    put(p, "w", L1 L2);
    struct sl_tail t;
    struct ctx c = {.t = &t};
    bool resumed;
    assert_int_equal(sl_tail_open(&t, p, &opts, NULL, &resumed), 0);
    struct sl_position pos = {.path = p, .dev = t.dev, .ino = t.ino, .fp = t.fp, .offset = 0};
    sl_tail_release(&t);
    put(r, "w", L1 L2); /* the copy: a new inode */
    put(p, "w", N1);    /* truncated in place and written again */
    assert_int_equal(sl_tail_open_known(&t, &pos, &opts, NULL, NULL), 0);
    assert_string_equal(t.path, r);
    assert_int_equal(t.read_off, 0);
    assert_int_equal(rd(&t, &c), SL_TAIL_DATA);
    assert_string_equal(c.last, "two");
    assert_int_equal(c.n, 2);
    sl_tail_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rename_then_find_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copytruncate_follows_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_known_unacked_copytruncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_seen_by_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_straddling_a_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_known_after_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
