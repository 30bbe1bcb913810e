/* Bump allocator. Blocks form a singly linked list, newest first; the oldest
 * (first allocated, block_size bytes) is kept by sl_arena_clear(). */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"

#define ARENA_ALIGN         16
#define ARENA_DEFAULT_BLOCK (64 * 1024)

struct sl_arena_block {
    struct sl_arena_block *next;
    size_t size; /* usable bytes in mem[] */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char mem[];
};

void sl_arena_init(struct sl_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    a->used_total = 0;
}

void sl_arena_release(struct sl_arena *a)
{
    struct sl_arena_block *b = a->head;
    while (b) {
        struct sl_arena_block *next = b->next;
        sl_free(b);
        b = next;
    }
    a->head = NULL;
    a->used_total = 0;
}

void sl_arena_clear(struct sl_arena *a)
{
    struct sl_arena_block *b = a->head, *keep = NULL;
    while (b) {
        struct sl_arena_block *next = b->next;
        /* Keep one standard-sized block; free dedicated large ones. */
        if (!keep && b->size == a->block_size) {
            keep = b;
        } else {
            sl_free(b);
        }
        b = next;
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
    a->used_total = 0;
}

static struct sl_arena_block *block_new(size_t size)
{
    size_t total;
    if (__builtin_add_overflow(sizeof(struct sl_arena_block), size, &total)) {
        sl_log(SL_LOG_ERROR, "arena size overflow, aborting", "bytes=%zu", size);
        abort();
    }
    struct sl_arena_block *b = sl_malloc(total);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *sl_arena_alloc(struct sl_arena *a, size_t n)
{
    size_t need = n ? n : 1;
    if (need > SIZE_MAX - ARENA_ALIGN) {
        sl_log(SL_LOG_ERROR, "arena size overflow, aborting", "bytes=%zu", n);
        abort();
    }
    need = (need + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct sl_arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        if (need > a->block_size / 4) {
            /* Large request: dedicated block inserted behind the current one,
             * so the current block's free space stays usable. */
            struct sl_arena_block *big = block_new(need);
            big->used = need;
            if (b) {
                big->next = b->next;
                b->next = big;
            } else {
                a->head = big;
            }
            a->used_total += need;
            return big->mem;
        }
        b = block_new(a->block_size);
        b->next = a->head;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += need;
    a->used_total += need;
    return p;
}

void *sl_arena_calloc(struct sl_arena *a, size_t n)
{
    void *p = sl_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

void *sl_arena_memdup(struct sl_arena *a, const void *p, size_t n)
{
    void *q = sl_arena_alloc(a, n);
    if (n)
        memcpy(q, p, n);
    return q;
}

char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n)
{
    char *q = sl_arena_alloc(a, n + 1);
    if (n)
        memcpy(q, s, n);
    q[n] = '\0';
    return q;
}

struct sl_bytes sl_arena_bytes(struct sl_arena *a, struct sl_bytes v)
{
    return (struct sl_bytes){sl_arena_memdup(a, v.ptr, v.len), v.len};
}
