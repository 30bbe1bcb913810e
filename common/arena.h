/* Bump allocator for short-lived memory: one arena per request, decoded batch
 * or query, released at once. No per-object free.
 *
 * Allocations are 16-byte aligned. Memory comes from blocks of block_size (or a
 * dedicated block for larger requests). sl_arena_clear() keeps the first block
 * for reuse. Not thread-safe. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

#include "common/bytes.h"

struct sl_arena_block;

struct sl_arena {
    struct sl_arena_block *head;
    size_t block_size;
    size_t used_total; /* bytes handed out since init/clear */
};

/* block_size 0 picks 64 KiB. */
void sl_arena_init(struct sl_arena *a, size_t block_size);
void sl_arena_release(struct sl_arena *a);
void sl_arena_clear(struct sl_arena *a);
void *sl_arena_alloc(struct sl_arena *a, size_t n);
void *sl_arena_calloc(struct sl_arena *a, size_t n);
void *sl_arena_memdup(struct sl_arena *a, const void *p, size_t n);
/* Copies n bytes and adds a NUL. */
char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n);
struct sl_bytes sl_arena_bytes(struct sl_arena *a, struct sl_bytes v);

#endif
