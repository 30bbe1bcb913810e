#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/arena.c"

static void test_alignment_and_distinct(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 0);
    assert_int_equal(a.block_size, 64 * 1024);
    char *prev = NULL;
    for (size_t i = 1; i < 200; i++) {
        char *p = sl_arena_alloc(&a, i);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, (int)i, i);
        if (prev)
            assert_int_equal((unsigned char)prev[0], (unsigned char)(i - 1));
        prev = p;
    }
    assert_true(a.used_total >= 199 * 200 / 2);
    sl_arena_release(&a);
    assert_null(a.head);
}

static void test_many_blocks_and_large(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 1024);
    char *small = sl_arena_alloc(&a, 10);
    memcpy(small, "0123456789", 10);
    /* Large request gets its own block and does not waste the current one. */
    char *big = sl_arena_calloc(&a, 100000);
    for (size_t i = 0; i < 100000; i++)
        assert_int_equal(big[i], 0);
    char *small2 = sl_arena_alloc(&a, 10);
    assert_ptr_equal(small2, small + 16);
    for (int i = 0; i < 1000; i++) {
        char *p = sl_arena_alloc(&a, 100);
        memset(p, 0xab, 100);
    }
    assert_memory_equal(small, "0123456789", 10);
    size_t nblocks = 0;
    for (struct sl_arena_block *b = a.head; b; b = b->next)
        nblocks++;
    assert_true(nblocks > 10);
    sl_arena_clear(&a);
    assert_int_equal(a.used_total, 0);
    assert_non_null(a.head);
    assert_null(a.head->next);
    assert_int_equal(a.head->size, 1024);
    char *again = sl_arena_alloc(&a, 8);
    assert_ptr_equal(again, (char *)a.head->mem);
    sl_arena_release(&a);
}

static void test_copies(void **state)
{
    (void)state;
    struct sl_arena a;
    sl_arena_init(&a, 256);
    char *s = sl_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    struct sl_bytes v = sl_arena_bytes(&a, SL_BYTES_LIT("a\0b"));
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.ptr, "a\0b", 3);
    char *d = sl_arena_memdup(&a, "xyz", 3);
    assert_memory_equal(d, "xyz", 3);
    void *z = sl_arena_alloc(&a, 0);
    assert_non_null(z);
    struct sl_bytes e = sl_arena_bytes(&a, (struct sl_bytes){NULL, 0});
    assert_int_equal(e.len, 0);
    sl_arena_release(&a);
    /* Clear on a never-used arena is a no-op. */
    sl_arena_init(&a, 0);
    sl_arena_clear(&a);
    assert_null(a.head);
    sl_arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_distinct),
        cmocka_unit_test(test_many_blocks_and_large),
        cmocka_unit_test(test_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
