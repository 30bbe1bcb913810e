/* Tests for common/mem.c: the allocation wrappers. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/mem.h"

static void test_mem_wrappers(void **state)
{
    (void)state;
    char *s = sl_strdup("abc");
    assert_string_equal(s, "abc");
    sl_free(s);
    s = sl_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    sl_free(s);
    s = sl_strndup("ab", 10);
    assert_string_equal(s, "ab");
    sl_free(s);
    int *a = sl_mallocarray(10, sizeof(int));
    for (int i = 0; i < 10; i++)
        a[i] = i;
    a = sl_reallocarray(a, 1000, sizeof(int));
    assert_int_equal(a[9], 9);
    sl_free(a);
    unsigned char *z = sl_calloc(16, 4);
    for (int i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    sl_free(z);
    void *m = sl_malloc(0);
    assert_non_null(m);
    sl_free(m);
    void *d = sl_memdup("x\0y", 3);
    assert_memory_equal(d, "x\0y", 3);
    sl_free(d);
    struct pt {
        int x, y;
    } *pt = SL_NEW(struct pt);
    assert_int_equal(pt->x + pt->y, 0);
    sl_free(pt);
    int arr[7];
    assert_int_equal(SL_ARRAY_LEN(arr), 7);
}

/* An overflowing size must abort, never return a short block. */
static void test_mallocarray_overflow_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Child: keep the expected log line out of the test output. */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        volatile void *p = sl_mallocarray(SIZE_MAX / 2, 4);
        (void)p;
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_wrappers),
        cmocka_unit_test(test_mallocarray_overflow_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
