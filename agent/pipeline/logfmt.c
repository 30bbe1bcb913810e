/* logfmt scanning for the logfmt stage, with go-logfmt's grammar and Loki's
 * leniency: a malformed pair (a key starting with '=' or '"', an
 * unterminated quote, a bad escape) is skipped, not fatal. */
#include <string.h>

#include "agent/pipeline/internal.h"

static bool key_byte(unsigned char c)
{
    return c > ' ' && c != '=' && c != '"' && c != 0x7f;
}

/* s[*i] == '"': unescapes into arena up to the closing quote. Returns false
 * (with *i past the garbage) if unterminated or badly escaped. */
static bool quoted(struct sl_arena *a, const char *s, size_t n, size_t *i, struct sl_bytes *out)
{
    size_t k = *i + 1, start = k;
    bool esc = false;
    while (k < n && s[k] != '"') {
        if (s[k] == '\\') {
            esc = true;
            k++;
        }
        k++;
    }
    if (k >= n) {
        *i = n;
        return false;
    }
    size_t end = k;
    *i = k + 1;
    if (!esc) {
        *out = sl_bytes(s + start, end - start);
        return true;
    }
    char *buf = sl_arena_alloc(a, end - start);
    size_t o = 0;
    for (size_t j = start; j < end;) {
        if (s[j] == '\\') {
            size_t len = sl__pl_json_unescape(s, end, &j, buf + o);
            if (!len)
                return false;
            o += len;
        } else {
            buf[o++] = s[j++];
        }
    }
    *out = sl_bytes(buf, o);
    return true;
}

static size_t skip_to_space(const char *s, size_t n, size_t i)
{
    while (i < n && (unsigned char)s[i] > ' ')
        i++;
    return i;
}

size_t sl__pl_logfmt_scan(struct sl_arena *a, struct sl_bytes line, sl__pl_logfmt_fn fn, void *ud)
{
    const char *s = line.ptr;
    size_t n = line.len, i = 0, pairs = 0;
    while (i < n) {
        while (i < n && (unsigned char)s[i] <= ' ')
            i++;
        if (i >= n)
            break;
        if (!key_byte((unsigned char)s[i])) {
            i = skip_to_space(s, n, i + 1); /* malformed: skip the word */
            continue;
        }
        size_t ks = i;
        while (i < n && key_byte((unsigned char)s[i]))
            i++;
        struct sl_bytes key = sl_bytes(s + ks, i - ks), val = sl_bytes("", 0);
        if (i < n && s[i] == '"') {
            i = skip_to_space(s, n, i);
            continue;
        }
        if (i < n && s[i] == '=') {
            i++;
            if (i < n && s[i] == '"') {
                if (!quoted(a, s, n, &i, &val))
                    continue;
                if (i < n && (unsigned char)s[i] > ' ') {
                    i = skip_to_space(s, n, i); /* "a"b: garbage after the quote */
                    continue;
                }
            } else {
                size_t vs = i;
                i = skip_to_space(s, n, i);
                val = sl_bytes(s + vs, i - vs);
            }
        }
        fn(ud, key, val);
        pairs++;
    }
    return pairs;
}
