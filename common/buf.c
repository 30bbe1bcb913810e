/* Growable byte buffer. cap counts the spare NUL byte, so len < cap whenever
 * data != NULL, and data[len] is always '\0'. */
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"

/* A shared empty string so that a never-written buffer still reads as "". */
static char empty_data[1];

void sl_buf_init(struct sl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sl_buf_release(struct sl_buf *b)
{
    sl_free(b->data);
    sl_buf_init(b);
}

void sl_buf_clear(struct sl_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *sl_buf_reserve(struct sl_buf *b, size_t n)
{
    size_t need;
    if (__builtin_add_overflow(b->len, n, &need) || __builtin_add_overflow(need, 1, &need)) {
        sl_log(SL_LOG_ERROR, "buffer size overflow, aborting", "len=%zu add=%zu", b->len, n);
        abort();
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        b->data = sl_realloc(b->data, cap);
        b->cap = cap;
        b->data[b->len] = '\0';
    }
    return b->data + b->len;
}

void sl_buf_commit(struct sl_buf *b, size_t n)
{
    if (!b->data) {
        /* commit(0) on an empty buffer is fine; anything else is a caller bug. */
        if (n == 0)
            return;
        abort();
    }
    if (b->len + n >= b->cap) {
        sl_log(SL_LOG_ERROR, "buffer commit past reserve, aborting", "len=%zu commit=%zu cap=%zu",
               b->len, n, b->cap);
        abort();
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void sl_buf_consume(struct sl_buf *b, size_t n)
{
    if (n >= b->len) {
        sl_buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
    char *dst = sl_buf_reserve(b, n);
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sl_buf_append_bytes(struct sl_buf *b, struct sl_bytes v)
{
    sl_buf_append(b, v.ptr, v.len);
}

void sl_buf_append_str(struct sl_buf *b, const char *s)
{
    sl_buf_append(b, s, strlen(s));
}

void sl_buf_append_char(struct sl_buf *b, char c)
{
    char *dst = sl_buf_reserve(b, 1);
    *dst = c;
    b->len++;
    b->data[b->len] = '\0';
}

void sl_buf_vappendf(struct sl_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char *dst = sl_buf_reserve(b, 64);
    size_t avail = b->cap - b->len;
    int n = vsnprintf(dst, avail, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= avail) {
        dst = sl_buf_reserve(b, (size_t)n);
        vsnprintf(dst, (size_t)n + 1, fmt, ap);
    }
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

void sl_buf_appendf(struct sl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_buf_vappendf(b, fmt, ap);
    va_end(ap);
}

void sl_buf_append_u64(struct sl_buf *b, unsigned long long v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sl_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void sl_buf_append_i64(struct sl_buf *b, long long v)
{
    if (v < 0) {
        sl_buf_append_char(b, '-');
        /* Negate in unsigned arithmetic so LLONG_MIN works. */
        sl_buf_append_u64(b, 0ULL - (unsigned long long)v);
        return;
    }
    sl_buf_append_u64(b, (unsigned long long)v);
}

char *sl_buf_detach(struct sl_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    if (!p)
        p = sl_memdup(empty_data, 1);
    sl_buf_init(b);
    return p;
}
