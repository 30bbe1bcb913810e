/* The json stage's fast path: one strict check of the line, then each
 * expression found by skipping through the text, without building a tree
 * (jansson allocates every node and string; this allocates nothing, and
 * unquoted strings without escapes are views into the line). The check
 * follows jansson's rules so the two agree on which lines are JSON; the
 * fuzz target tests/fuzz/fuzz_pipeline_json.c compares them on the same
 * inputs, values included. */
#include <string.h>

#include "agent/pipeline/internal.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/utf8.h"

static size_t ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static int hex4(const char *s, size_t n, size_t i, uint32_t *out)
{
    if (n < 4 || i > n - 4)
        return SL_EINVAL;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        char c = s[i + k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return SL_EINVAL;
    }
    *out = v;
    return 0;
}

size_t sl__pl_json_unescape(const char *s, size_t n, size_t *i, char out[4])
{
    size_t k = *i + 1;
    if (k >= n)
        return 0;
    char c = s[k];
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *f = c ? strchr(from, c) : NULL;
    if (f) {
        out[0] = to[f - from];
        *i = k + 1;
        return 1;
    }
    if (c != 'u')
        return 0;
    uint32_t cp, lo;
    if (hex4(s, n, k + 1, &cp))
        return 0;
    k += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return 0; /* a low surrogate first */
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (k + 1 >= n || s[k] != '\\' || s[k + 1] != 'u' || hex4(s, n, k + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return 0;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        k += 6;
    }
    *i = k;
    return sl_utf8_encode(out, cp);
}

/* s[*i] == '"': checks the string and advances past its closing quote. */
static int check_string(const char *s, size_t n, size_t *i)
{
    size_t k = *i + 1;
    char tmp[4];
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            *i = k + 1;
            return 0;
        }
        if (c == '\\') {
            if (!sl__pl_json_unescape(s, n, &k, tmp))
                return SL_EINVAL;
        } else if (c < 0x20) {
            return SL_EINVAL;
        } else if (c < 0x80) {
            k++;
        } else {
            uint32_t cp;
            size_t len = sl_utf8_decode(s + k, n - k, &cp);
            if (!len)
                return SL_EINVAL;
            k += len;
        }
    }
    return SL_EINVAL;
}

static bool digit(const char *s, size_t n, size_t i)
{
    return i < n && s[i] >= '0' && s[i] <= '9';
}

static int check_number(const char *s, size_t n, size_t *i)
{
    size_t k = *i;
    if (k < n && s[k] == '-')
        k++;
    if (!digit(s, n, k))
        return SL_EINVAL;
    if (s[k] == '0')
        k++;
    else
        while (digit(s, n, k))
            k++;
    if (k < n && s[k] == '.') {
        k++;
        if (!digit(s, n, k))
            return SL_EINVAL;
        while (digit(s, n, k))
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        if (!digit(s, n, k))
            return SL_EINVAL;
        while (digit(s, n, k))
            k++;
    }
    *i = k;
    return 0;
}

static int check_value(const char *s, size_t n, size_t *i, int depth);

static int check_container(const char *s, size_t n, size_t *i, int depth)
{
    bool obj = s[*i] == '{';
    char close = obj ? '}' : ']';
    if (depth >= SL_PL_JSON_MAX_DEPTH)
        return SL_ETOOBIG;
    size_t k = ws(s, n, *i + 1);
    if (k < n && s[k] == close) {
        *i = k + 1;
        return 0;
    }
    for (;;) {
        if (obj) {
            if (k >= n || s[k] != '"' || check_string(s, n, &k))
                return SL_EINVAL;
            k = ws(s, n, k);
            if (k >= n || s[k] != ':')
                return SL_EINVAL;
            k = ws(s, n, k + 1);
        }
        int rc = check_value(s, n, &k, depth + 1);
        if (rc)
            return rc;
        k = ws(s, n, k);
        if (k < n && s[k] == close) {
            *i = k + 1;
            return 0;
        }
        if (k >= n || s[k] != ',')
            return SL_EINVAL;
        k = ws(s, n, k + 1);
    }
}

static int check_value(const char *s, size_t n, size_t *i, int depth)
{
    if (*i >= n)
        return SL_EINVAL;
    switch (s[*i]) {
    case '{':
    case '[':
        return check_container(s, n, i, depth);
    case '"':
        return check_string(s, n, i);
    case 't':
    case 'f':
    case 'n': {
        const char *lit = s[*i] == 't' ? "true" : s[*i] == 'f' ? "false" : "null";
        size_t len = strlen(lit);
        if (n - *i < len || memcmp(s + *i, lit, len) != 0)
            return SL_EINVAL;
        *i += len;
        return 0;
    }
    default:
        return check_number(s, n, i);
    }
}

int sl__pl_json_check(const char *s, size_t n)
{
    size_t i = ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return SL_EINVAL;
    int rc = check_container(s, n, &i, 0);
    if (rc)
        return rc;
    return ws(s, n, i) == n ? 0 : SL_EINVAL;
}

/* --- finding values in checked text --- */

/* s[i] == '"': the index after the closing quote (a quote preceded by an
 * even run of backslashes), found with memchr. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    size_t open = i;
    for (i++; i < n;) {
        const char *q = memchr(s + i, '"', n - i);
        if (!q)
            return n;
        size_t k = (size_t)(q - s), bs = 0;
        while (k - bs - 1 > open && s[k - bs - 1] == '\\')
            bs++;
        if (bs % 2 == 0)
            return k + 1;
        i = k + 1;
    }
    return n;
}

static size_t skip_value(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, n, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

/* Compares the checked string token at s[i] (quotes included) with key. */
static bool key_eq(const char *s, size_t n, size_t i, size_t end, struct sl_bytes key)
{
    size_t k = i + 1, pos = 0;
    end--; /* closing quote */
    if (!memchr(s + k, '\\', end - k))
        return end - k == key.len && (key.len == 0 || memcmp(s + k, key.ptr, key.len) == 0);
    char tmp[4];
    while (k < end) {
        if (s[k] == '\\') {
            size_t len = sl__pl_json_unescape(s, n, &k, tmp);
            if (pos + len > key.len || memcmp(key.ptr + pos, tmp, len) != 0)
                return false;
            pos += len;
        } else {
            if (pos >= key.len || key.ptr[pos] != s[k])
                return false;
            pos++;
            k++;
        }
    }
    return pos == key.len;
}

/* s[i] == '{': the start of the last member named key, or 0. */
static size_t find_key(const char *s, size_t n, size_t i, struct sl_bytes key)
{
    size_t found = 0;
    i = ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t kend = skip_string(s, n, i);
        bool match = key_eq(s, n, i, kend, key);
        size_t v = ws(s, n, ws(s, n, kend) + 1);
        if (match)
            found = v;
        i = ws(s, n, skip_value(s, n, v));
        if (i >= n || s[i] != ',')
            break;
        i = ws(s, n, i + 1);
    }
    return found;
}

/* s[i] == '[': the start of element idx (negative: from the end), or 0. */
static size_t find_index(const char *s, size_t n, size_t i, long idx)
{
    size_t start = ws(s, n, i + 1);
    if (start < n && s[start] == ']')
        return 0;
    if (idx < 0) {
        long count = 0;
        for (size_t k = start; k < n;) {
            count++;
            k = ws(s, n, skip_value(s, n, k));
            if (k >= n || s[k] != ',')
                break;
            k = ws(s, n, k + 1);
        }
        idx += count;
        if (idx < 0)
            return 0;
    }
    size_t k = start;
    for (long at = 0; k < n; at++) {
        if (at == idx)
            return k;
        k = ws(s, n, skip_value(s, n, k));
        if (k >= n || s[k] != ',')
            return 0;
        k = ws(s, n, k + 1);
    }
    return 0;
}

/* Follows segs[0..nseg) from the value at s[i]. */
static enum sl__pl_jtype find_from(const char *s, size_t n, size_t i,
                                   const struct sl__pl_jseg *segs, size_t nseg,
                                   struct sl_bytes *raw)
{
    for (size_t k = 0; k < nseg; k++) {
        const struct sl__pl_jseg *g = &segs[k];
        if (i >= n)
            return SL_PL_J_NONE;
        if (!g->is_index && s[i] == '{')
            i = find_key(s, n, i, g->key);
        else if (g->is_index && s[i] == '[')
            i = find_index(s, n, i, g->index);
        else
            return SL_PL_J_NONE;
        if (!i)
            return SL_PL_J_NONE;
    }
    if (i >= n)
        return SL_PL_J_NONE;
    size_t end = skip_value(s, n, i);
    *raw = sl_bytes(s + i, end - i);
    switch (s[i]) {
    case '"':
        return SL_PL_J_STRING;
    case '{':
        return SL_PL_J_OBJECT;
    case '[':
        return SL_PL_J_ARRAY;
    case 't':
    case 'f':
        return SL_PL_J_BOOL;
    case 'n':
        return SL_PL_J_NULL;
    default:
        return SL_PL_J_NUMBER;
    }
}

enum sl__pl_jtype sl__pl_json_find(const char *s, size_t n, const struct sl__pl_jpath *path,
                                   struct sl_bytes *raw)
{
    return find_from(s, n, ws(s, n, 0), path->segs, path->n, raw);
}

void sl__pl_json_find_all(const char *s, size_t n, const struct sl__pl_jpath *paths, size_t np,
                          size_t *at, enum sl__pl_jtype *types, struct sl_bytes *raws)
{
    size_t i = ws(s, n, 0);
    memset(at, 0, np * sizeof(*at));
    if (i < n && s[i] == '{') {
        i = ws(s, n, i + 1);
        while (i < n && s[i] == '"') {
            size_t kend = skip_string(s, n, i);
            size_t v = ws(s, n, ws(s, n, kend) + 1);
            for (size_t p = 0; p < np; p++)
                if (paths[p].n && !paths[p].segs[0].is_index &&
                    key_eq(s, n, i, kend, paths[p].segs[0].key))
                    at[p] = v;
            i = ws(s, n, skip_value(s, n, v));
            if (i >= n || s[i] != ',')
                break;
            i = ws(s, n, i + 1);
        }
    }
    for (size_t p = 0; p < np; p++)
        types[p] = at[p] ? find_from(s, n, at[p], paths[p].segs + 1, paths[p].n - 1, &raws[p])
                         : SL_PL_J_NONE;
}

struct sl_bytes sl__pl_json_unquote(struct sl_arena *a, struct sl_bytes raw)
{
    const char *s = raw.ptr;
    size_t n = raw.len;
    if (n < 2)
        return sl_bytes("", 0);
    if (!memchr(s + 1, '\\', n - 2))
        return sl_bytes(s + 1, n - 2);
    char *out = sl_arena_alloc(a, n);
    size_t o = 0;
    for (size_t k = 1; k < n - 1;) {
        if (s[k] == '\\') {
            size_t len = sl__pl_json_unescape(s, n, &k, out + o);
            if (!len)
                break; /* not checked text: stop here */
            o += len;
        } else {
            out[o++] = s[k++];
        }
    }
    return sl_bytes(out, o);
}

/* --- paths --- */

static bool ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool ident_char(char c)
{
    return ident_start(c) || (c >= '0' && c <= '9');
}

static void add_seg(struct sl__pl_jpath *p, struct sl__pl_jseg g)
{
    p->segs = sl_reallocarray(p->segs, p->n + 1, sizeof(*p->segs));
    p->segs[p->n++] = g;
}

static int parse_quoted(const char *e, size_t *i, struct sl__pl_jpath *out, const char **why)
{
    size_t n = strlen(e), k = *i;
    if (check_string(e, n, &k) != 0) {
        *why = "unterminated or invalid quoted identifier";
        return SL_EINVAL;
    }
    char *key = sl_malloc(k - *i + 1);
    size_t o = 0;
    for (size_t j = *i + 1; j < k - 1;) {
        if (e[j] == '\\')
            o += sl__pl_json_unescape(e, n, &j, key + o);
        else
            key[o++] = e[j++];
    }
    add_seg(out, (struct sl__pl_jseg){.key = sl_bytes(key, o)});
    *i = k;
    return 0;
}

static int parse_index(const char *e, size_t *i, struct sl__pl_jpath *out, const char **why)
{
    size_t k = *i + 1;
    bool neg = e[k] == '-';
    if (neg)
        k++;
    if (e[k] < '0' || e[k] > '9') {
        *why = "expected a number inside [ ]";
        return SL_EINVAL;
    }
    long v = 0;
    while (e[k] >= '0' && e[k] <= '9' && v < 100000000)
        v = v * 10 + (e[k++] - '0');
    if (e[k] != ']') {
        *why = "expected ] after the index";
        return SL_EINVAL;
    }
    add_seg(out, (struct sl__pl_jseg){.is_index = true, .index = neg ? -v : v});
    *i = k + 1;
    return 0;
}

int sl__pl_jpath_parse(const char *e, struct sl__pl_jpath *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    bool need_seg = true;
    *why = NULL;
    while (e[i]) {
        int rc = 0;
        if (e[i] == '[') {
            rc = parse_index(e, &i, out, why);
            need_seg = false;
        } else if (need_seg && e[i] == '"') {
            rc = parse_quoted(e, &i, out, why);
            need_seg = false;
        } else if (need_seg && ident_start(e[i])) {
            size_t k = i;
            while (ident_char(e[k]))
                k++;
            add_seg(out, (struct sl__pl_jseg){.key = sl_bytes(sl_strndup(e + i, k - i), k - i)});
            i = k;
            need_seg = false;
        } else if (!need_seg && e[i] == '.') {
            i++;
            need_seg = true;
        } else {
            *why = need_seg ? "expected an identifier, a \"quoted\" key or [index]"
                            : "expected '.' or '[' between path segments";
            rc = SL_EINVAL;
        }
        if (rc) {
            sl__pl_jpath_release(out);
            return rc;
        }
    }
    if (need_seg) {
        *why = out->n ? "path ends with '.'" : "empty expression";
        sl__pl_jpath_release(out);
        return SL_EINVAL;
    }
    return 0;
}

void sl__pl_jpath_release(struct sl__pl_jpath *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->segs[i].is_index)
            sl_free((char *)p->segs[i].key.ptr);
    sl_free(p->segs);
    memset(p, 0, sizeof(*p));
}
