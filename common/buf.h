/* Growable byte buffer. One idiom everywhere: reserve -> write -> commit -> consume.
 *
 *   char *p = sl_buf_reserve(&b, 64);   // at least 64 writable bytes at p
 *   size_t n = produce(p, 64);
 *   sl_buf_commit(&b, n);
 *   ... use b.data[0 .. b.len) ...
 *   sl_buf_consume(&b, used);           // drop from the front
 *
 * data is always NUL-terminated after len (one spare byte is kept) so it can be
 * handed to APIs wanting a C string, but contents may contain NULs. The buffer
 * owns data; sl_buf_detach() hands ownership to the caller. Not thread-safe. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/bytes.h"

struct sl_buf {
    char *data;
    size_t len;
    size_t cap;
};

#define SL_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void sl_buf_init(struct sl_buf *b);
void sl_buf_release(struct sl_buf *b);
/* len = 0, keeps the allocation. */
void sl_buf_clear(struct sl_buf *b);
/* Ensures n writable bytes after len; returns a pointer to them. */
char *sl_buf_reserve(struct sl_buf *b, size_t n);
void sl_buf_commit(struct sl_buf *b, size_t n);
/* Drops n bytes from the front (memmove). */
void sl_buf_consume(struct sl_buf *b, size_t n);
void sl_buf_append(struct sl_buf *b, const void *p, size_t n);
void sl_buf_append_bytes(struct sl_buf *b, struct sl_bytes v);
void sl_buf_append_str(struct sl_buf *b, const char *s);
void sl_buf_append_char(struct sl_buf *b, char c);
void sl_buf_appendf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_buf_vappendf(struct sl_buf *b, const char *fmt, va_list ap);
/* Decimal integers without printf. */
void sl_buf_append_u64(struct sl_buf *b, unsigned long long v);
void sl_buf_append_i64(struct sl_buf *b, long long v);
/* Returns data (NUL-terminated, caller frees with sl_free) and resets b. */
char *sl_buf_detach(struct sl_buf *b, size_t *len);

static inline struct sl_bytes sl_buf_bytes(const struct sl_buf *b)
{
    return (struct sl_bytes){b->data, b->len};
}

#endif
