/* Allocation wrappers: failure is fatal (logged, then abort). */
#include "common/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void __attribute__((noreturn)) oom(const char *what, size_t n)
{
    sl_log(SL_LOG_ERROR, "out of memory, aborting", "op=%s bytes=%zu", what, n);
    abort();
}

static void __attribute__((noreturn)) overflow(const char *what, size_t nmemb, size_t size)
{
    sl_log(SL_LOG_ERROR, "allocation size overflow, aborting", "op=%s nmemb=%zu size=%zu", what,
           nmemb, size);
    abort();
}

void *sl_malloc(size_t n)
{
    /* malloc(0) may return NULL; callers treat every result as usable. */
    void *p = malloc(n ? n : 1);
    if (!p)
        oom("malloc", n);
    return p;
}

void *sl_calloc(size_t nmemb, size_t size)
{
    if (nmemb == 0 || size == 0)
        nmemb = size = 1;
    void *p = calloc(nmemb, size);
    if (!p) {
        if (size && nmemb > SIZE_MAX / size)
            overflow("calloc", nmemb, size);
        oom("calloc", nmemb * size);
    }
    return p;
}

void *sl_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom("realloc", n);
    return q;
}

void *sl_mallocarray(size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n))
        overflow("mallocarray", nmemb, size);
    return sl_malloc(n);
}

void *sl_reallocarray(void *p, size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n))
        overflow("reallocarray", nmemb, size);
    return sl_realloc(p, n);
}

char *sl_strdup(const char *s)
{
    return sl_memdup(s, strlen(s) + 1);
}

char *sl_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = sl_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *sl_memdup(const void *p, size_t n)
{
    void *q = sl_malloc(n);
    if (n)
        memcpy(q, p, n);
    return q;
}

void sl_free(void *p)
{
    free(p);
}
