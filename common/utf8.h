/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Pure functions, thread-safe. */
#ifndef SL_UTF8_H
#define SL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the code point at s[0..n), n > 0. Returns its length (1-4) and
 * sets *cp, or returns 0 if the bytes there are not valid UTF-8. */
size_t sl_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* True if all of s[0..n) is valid UTF-8. */
bool sl_utf8_valid(const char *s, size_t n);

/* Encodes cp (a valid scalar value) into out; returns the length 1-4, or 0 if
 * cp is a surrogate or above U+10FFFF. */
size_t sl_utf8_encode(char out[4], uint32_t cp);

#endif
