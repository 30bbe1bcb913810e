/* Go string escapes. Digits are read with explicit bounds so an escape cut
 * short by the end of the input is an error, never a read past it. */
#include "common/gostr.h"

#include <stdint.h>

#include "common/err.h"
#include "common/utf8.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ndig (at most 8) hex digits at s[i] into *out; -1 if any is missing or not hex. */
static int read_hex(const char *s, size_t n, size_t i, int ndig, uint32_t *out)
{
    uint32_t v = 0;
    if (n < i || n - i < (size_t)ndig)
        return -1;
    for (int k = 0; k < ndig; k++) {
        int h = hexval(s[i + (size_t)k]);
        if (h < 0)
            return -1;
        v = v * 16 + (uint32_t)h;
    }
    *out = v;
    return 0;
}

static int fail(const char **why, const char *what)
{
    if (why)
        *why = what;
    return SL_EINVAL;
}

int sl_go_unescape(const char *s, size_t n, size_t *i, char *out, const char **why)
{
    size_t j = *i;
    if (j >= n)
        return fail(why, "unterminated escape");
    char c = s[j];
    uint32_t v = 0;
    switch (c) {
    case 'a':
        out[0] = '\a';
        break;
    case 'b':
        out[0] = '\b';
        break;
    case 'f':
        out[0] = '\f';
        break;
    case 'n':
        out[0] = '\n';
        break;
    case 'r':
        out[0] = '\r';
        break;
    case 't':
        out[0] = '\t';
        break;
    case 'v':
        out[0] = '\v';
        break;
    case '\\':
    case '"':
        out[0] = c;
        break;
    case 'x':
        if (read_hex(s, n, j + 1, 2, &v) != 0)
            return fail(why, "invalid \\x escape");
        out[0] = (char)v;
        *i = j + 3;
        return 1;
    case 'u':
    case 'U': {
        int nd = c == 'u' ? 4 : 8;
        size_t len = 0;
        if (read_hex(s, n, j + 1, nd, &v) == 0)
            len = sl_utf8_encode(out, v); /* 0 for surrogates and > U+10FFFF */
        if (len == 0)
            return fail(why, "invalid unicode escape");
        *i = j + 1 + (size_t)nd;
        return (int)len;
    }
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        for (int k = 0; k < 3; k++) {
            if (j + (size_t)k >= n || s[j + (size_t)k] < '0' || s[j + (size_t)k] > '7')
                return fail(why, "invalid octal escape");
            v = v * 8 + (uint32_t)(s[j + (size_t)k] - '0');
        }
        if (v > 255)
            return fail(why, "invalid octal escape");
        out[0] = (char)v;
        *i = j + 3;
        return 1;
    default:
        return fail(why, "unknown escape");
    }
    *i = j + 1;
    return 1;
}
