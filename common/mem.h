/* Allocation wrappers: the only place the project calls malloc and friends.
 *
 * Like Redis' zmalloc, allocation failure is fatal: it logs and aborts, so
 * callers do not carry an error path per allocation. Size arithmetic that may
 * overflow is checked (sl_mallocarray) and also aborts. Thread-safe. */
#ifndef SL_MEM_H
#define SL_MEM_H

#include <stddef.h>

void *sl_malloc(size_t n);
void *sl_calloc(size_t nmemb, size_t size);
void *sl_realloc(void *p, size_t n);
void *sl_mallocarray(size_t nmemb, size_t size);
void *sl_reallocarray(void *p, size_t nmemb, size_t size);
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);
void *sl_memdup(const void *p, size_t n);
void sl_free(void *p);

#define SL_NEW(type)    ((type *)sl_calloc(1, sizeof(type)))
#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
