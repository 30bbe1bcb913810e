/* A borrowed view of bytes: log data is {ptr, len}, never NUL-terminated. */
#ifndef SL_BYTES_H
#define SL_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct sl_bytes {
    const char *ptr;
    size_t len;
};

#define SL_BYTES_LIT(s) ((struct sl_bytes){(s), sizeof(s) - 1})

static inline struct sl_bytes sl_bytes(const char *p, size_t n)
{
    return (struct sl_bytes){p, n};
}

static inline struct sl_bytes sl_bytes_str(const char *s)
{
    return (struct sl_bytes){s, s ? strlen(s) : 0};
}

static inline bool sl_bytes_eq(struct sl_bytes a, struct sl_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool sl_bytes_eq_str(struct sl_bytes a, const char *s)
{
    return sl_bytes_eq(a, sl_bytes_str(s));
}

/* memcmp order, shorter first on a common prefix. */
static inline int sl_bytes_cmp(struct sl_bytes a, struct sl_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

#endif
