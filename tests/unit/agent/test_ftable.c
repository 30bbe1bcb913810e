/* File table: lookups by device + inode and by name through growth, rekeying
 * and removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/tail/ftable.h"

#define N 3000

static void test_many_files(void **state)
{
    (void)state;
    static struct sl_ftable_node nodes[N];
    static char names[N][32];
    struct sl_ftable t;
    sl_ftable_init(&t);
    for (int i = 0; i < N; i++) {
        nodes[i].dev = 7;
        nodes[i].ino = 1000 + (uint64_t)i;
        sl_ftable_add(&t, &nodes[i]);
        snprintf(names[i], sizeof(names[i]), "/p/%d/0.log", i);
        if (i % 2 == 0)
            sl_ftable_name(&t, &nodes[i], names[i]);
    }
    assert_int_equal(t.n, N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(sl_ftable_find(&t, 7, 1000 + (uint64_t)i), &nodes[i]);
        assert_ptr_equal(sl_ftable_by_name(&t, names[i]), i % 2 == 0 ? &nodes[i] : NULL);
    }
    assert_null(sl_ftable_find(&t, 8, 1000));
    /* rotated: loses its name, keeps its identity */
    sl_ftable_unname(&t, &nodes[0]);
    assert_null(sl_ftable_by_name(&t, names[0]));
    assert_ptr_equal(sl_ftable_find(&t, 7, 1000), &nodes[0]);
    /* follows a copy: new identity */
    sl_ftable_rekey(&t, &nodes[2], 9, 5);
    assert_null(sl_ftable_find(&t, 7, 1002));
    assert_ptr_equal(sl_ftable_find(&t, 9, 5), &nodes[2]);
    assert_ptr_equal(sl_ftable_by_name(&t, names[2]), &nodes[2]);
    sl_ftable_remove(&t, &nodes[2]);
    assert_null(sl_ftable_find(&t, 9, 5));
    assert_null(sl_ftable_by_name(&t, names[2]));
    size_t seen = 0;
    for (struct sl_ftable_node *n = t.head; n; n = n->next)
        seen++;
    assert_int_equal(seen, N - 1);
    assert_int_equal(t.n, N - 1);
    sl_ftable_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_many_files)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
