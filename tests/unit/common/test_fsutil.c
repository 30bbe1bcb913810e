/* Tests for common/fsutil.c against real temporary directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsutil.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-fsutil-XXXXXX");
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

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static size_t count_entries(const char *d)
{
    DIR *dh = opendir(d);
    assert_non_null(dh);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dh)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dh);
    return n;
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char p[300], q[300];
    path_in(p, sizeof(p), "a/b//c/d/");
    assert_int_equal(sl_mkdir_p(p), 0);
    path_in(q, sizeof(q), "a/b/c/d");
    assert_true(is_dir(q));
    /* existing path, with and without the trailing slash */
    assert_int_equal(sl_mkdir_p(p), 0);
    assert_int_equal(sl_mkdir_p(q), 0);
    assert_int_equal(sl_mkdir_p(dir), 0);
    assert_int_equal(sl_mkdir_p("/"), 0);
    /* relative paths work from the current directory */
    char cwd[300];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(sl_mkdir_p("rel/x"), 0);
    assert_int_equal(chdir(cwd), 0);
    path_in(q, sizeof(q), "rel/x");
    assert_true(is_dir(q));
    assert_int_equal(sl_mkdir_p(""), SL_ENOENT);
}

static void test_mkdir_p_file_in_the_way(void **state)
{
    (void)state;
    char f[300], p[300];
    path_in(f, sizeof(f), "file");
    write_file(f, "x");
    /* the file is the last component */
    errno = 0;
    assert_int_equal(sl_mkdir_p(f), SL_EINVAL);
    assert_int_equal(errno, ENOTDIR);
    /* the file is in the middle */
    path_in(p, sizeof(p), "file/below");
    errno = 0;
    assert_int_equal(sl_mkdir_p(p), SL_EINVAL);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(sl_mkdir_parent(p), SL_EINVAL);
}

static void test_mkdir_parent(void **state)
{
    (void)state;
    char f[300], d[300];
    path_in(f, sizeof(f), "p/q/file.json");
    assert_int_equal(sl_mkdir_parent(f), 0);
    path_in(d, sizeof(d), "p/q");
    assert_true(is_dir(d));
    path_in(d, sizeof(d), "p/q/file.json");
    assert_false(is_dir(d));
    assert_int_equal(access(d, F_OK), -1);
    assert_int_equal(sl_mkdir_parent("no-slash"), 0);
}

static void test_write_all_pipe(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    /* Above PIPE_BUF, below the default 64 KiB pipe capacity: fits without
     * a reader, then read back. */
    static char data[40000], back[40000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(sl_write_all(fds[1], data, sizeof(data)), 0);
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], back + got, sizeof(back) - got)) > 0)
        got += (size_t)r;
    assert_int_equal(got, sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    close(fds[0]);
    assert_int_equal(sl_write_all(fds[1], data, 0), 0);
}

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

/* A slow reader and a repeating timer whose handler does not restart system
 * calls: a blocked write returns early, either short or with EINTR, and every
 * byte must still arrive once and in order. */
static void test_write_all_interrupted(void **state)
{
    (void)state;
    size_t total = 1 << 20; /* far more than a pipe holds */
    char *data = malloc(total);
    assert_non_null(data);
    for (size_t i = 0; i < total; i++)
        data[i] = (char)(i * 7 + i / 1000);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[1]);
        char b[4096];
        size_t got = 0;
        ssize_t r;
        while ((r = read(fds[0], b, sizeof(b))) > 0) {
            if (got + (size_t)r > total || memcmp(b, data + got, (size_t)r) != 0)
                _exit(1);
            got += (size_t)r;
            usleep(200);
        }
        _exit(got == total ? 0 : 2);
    }
    close(fds[0]);
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {{0, 500}, {0, 500}}, off = {{0, 0}, {0, 0}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    int rc = sl_write_all(fds[1], data, total);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(rc, 0);
    assert_true(ticks > 0);
    close(fds[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(data);
}

static void test_write_all_error(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    int rc = sl_write_all(fds[1], "x", 1);
    assert_true(rc < 0);
    assert_int_equal(errno, EPIPE);
    close(fds[1]);
    assert_true(sl_write_all(-1, "x", 1) < 0);
}

static void test_fsync_dir(void **state)
{
    (void)state;
    char f[300];
    assert_int_equal(sl_fsync_dir(dir), 0);
    path_in(f, sizeof(f), "f");
    write_file(f, "x");
    assert_int_equal(sl_fsync_parent(f), 0);
    assert_int_equal(sl_fsync_dir(f), SL_EINVAL); /* not a directory */
    path_in(f, sizeof(f), "missing/f");
    assert_int_equal(sl_fsync_parent(f), SL_ENOENT);
    assert_int_equal(sl_fsync_parent("relative-file"), 0); /* "." */
}

static void test_write_file_atomic(void **state)
{
    (void)state;
    char f[300], buf[100];
    struct sl_buf err = SL_BUF_INIT;
    path_in(f, sizeof(f), "state.json");
    write_file(f, "old content that is longer");
    assert_int_equal(sl_write_file_atomic(f, "new", 3, &err), 0);
    assert_int_equal(err.len, 0);
    size_t n = read_file(f, buf, sizeof(buf));
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "new", 3);
    assert_int_equal(count_entries(dir), 1); /* no temporary file left */
    /* creates the file when absent; empty content is fine */
    path_in(f, sizeof(f), "empty");
    assert_int_equal(sl_write_file_atomic(f, "", 0, NULL), 0);
    assert_int_equal(read_file(f, buf, sizeof(buf)), 0);
    assert_int_equal(count_entries(dir), 2);
}

static void test_write_file_atomic_errors(void **state)
{
    (void)state;
    char f[300];
    struct sl_buf err = SL_BUF_INIT;
    /* missing directory: open fails and says which file */
    path_in(f, sizeof(f), "missing/state.json");
    assert_int_equal(sl_write_file_atomic(f, "x", 1, &err), SL_ENOENT);
    assert_non_null(strstr(err.data, "open "));
    assert_non_null(strstr(err.data, "missing/state.json.tmp"));
    sl_buf_clear(&err);
    /* a directory where the file should go: rename fails, temp removed */
    path_in(f, sizeof(f), "adir");
    assert_int_equal(mkdir(f, 0755), 0);
    char inner[320];
    snprintf(inner, sizeof(inner), "%s/keep", f);
    write_file(inner, "k");
    assert_true(sl_write_file_atomic(f, "x", 1, &err) < 0);
    assert_non_null(strstr(err.data, "rename "));
    assert_int_equal(count_entries(dir), 1);
    assert_true(is_dir(f));
    sl_buf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p_file_in_the_way, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_parent, setup, teardown),
        cmocka_unit_test(test_write_all_pipe),
        cmocka_unit_test(test_write_all_interrupted),
        cmocka_unit_test(test_write_all_error),
        cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_atomic_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
