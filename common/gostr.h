/* Go string-literal escapes, decoded by one function for every parser that
 * reads Go-quoted text (label sets, LogQL). The rules are Go's for
 * double-quoted strings (the spec's rune and string literals, as
 * strconv.Unquote and text/scanner apply them):
 *
 *   \a \b \f \n \r \t \v \\ \"   the control character or quote
 *   \xNN                          one byte, two hex digits
 *   \NNN                          one byte, three octal digits, at most \377
 *   \uNNNN \UNNNNNNNN             a code point as UTF-8; surrogates and
 *                                 values above U+10FFFF are errors
 *
 * \' is an error: Go accepts it only inside single-quoted rune literals, and
 * no caller decodes those. \x and octal escapes may produce bytes that are not
 * valid UTF-8; callers that need UTF-8 validate the result.
 *
 * Pure function, thread-safe. */
#ifndef SL_GOSTR_H
#define SL_GOSTR_H

#include <stddef.h>

/* Decodes the escape sequence whose first character (the one after the
 * backslash) is s[*i], reading no further than s[n-1]. On success writes its
 * bytes to out, advances *i past the sequence and returns the byte count:
 * 1-4, and never more than the sequence's own length with its backslash, so
 * a buffer sized to the quoted text holds the unescaped text. Nothing is
 * written on failure: returns SL_EINVAL, leaves *i unchanged and, if why is
 * non-NULL, sets *why to a static description: "unterminated escape",
 * "unknown escape", "invalid \x escape", "invalid octal escape" or
 * "invalid unicode escape". */
int sl_go_unescape(const char *s, size_t n, size_t *i, char *out, const char **why);

#endif
