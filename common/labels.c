/* Label sets: the text form {a="b", c="d"}, validation, canonical form and
 * fingerprint. The canonical form is written through a small sink so the
 * fingerprint is computed by streaming into XXH3 without allocating. */
#include "common/labels.h"

#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/err.h"
#include "common/gostr.h"
#include "common/mem.h"
#include "common/utf8.h"

/* ---- parsing ---- */

struct parser {
    const char *s;
    size_t n, i;
    struct sl_buf *err;
};

static int perr(struct parser *p, const char *what)
{
    if (p->err)
        sl_buf_appendf(p->err, "%s at offset %zu", what, p->i);
    return SL_EINVAL;
}

static void skip_ws(struct parser *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

/* One escape sequence after the backslash at p->i (p->i points at the
 * backslash); writes its bytes to *o and advances. On error p->i stays at the
 * backslash, which is the offset reported. */
static int parse_escape(struct parser *p, char **o)
{
    size_t j = p->i + 1;
    const char *why = NULL;
    int len = sl_go_unescape(p->s, p->n, &j, *o, &why);
    if (len < 0)
        return perr(p, why);
    *o += len;
    p->i = j;
    return 0;
}

/* A quoted value at p->i ("..." with escapes, or `...` raw). The unescaped
 * bytes never exceed the quoted ones, so one arena block of that size holds them. */
static int parse_value(struct parser *p, struct sl_arena *arena, struct sl_bytes *out)
{
    char q = p->s[p->i];
    size_t start = ++p->i;
    if (q == '`') {
        const char *end = memchr(p->s + start, '`', p->n - start);
        if (!end)
            return perr(p, "unterminated string");
        size_t len = (size_t)(end - (p->s + start));
        *out = sl_bytes(sl_arena_memdup(arena, p->s + start, len), len);
        p->i = start + len + 1;
        return 0;
    }
    /* Find the closing quote first so the copy is sized to this value. */
    size_t e = start;
    while (e < p->n && p->s[e] != '"')
        e += p->s[e] == '\\' ? 2 : 1;
    if (e >= p->n) {
        p->i = p->n;
        return perr(p, "unterminated string");
    }
    char *dst = sl_arena_alloc(arena, e - start), *o = dst;
    for (;;) {
        if (p->i >= p->n)
            return perr(p, "unterminated string");
        char c = p->s[p->i];
        if (c == '"')
            break;
        if (c == '\n')
            return perr(p, "newline in string");
        if (c == '\\') {
            int rc = parse_escape(p, &o);
            if (rc)
                return rc;
            continue;
        }
        *o++ = c;
        p->i++;
    }
    p->i++;
    *out = sl_bytes(dst, (size_t)(o - dst));
    return 0;
}

static bool name_stop(char c)
{
    return c == '=' || c == ',' || c == '}' || c == '{' || c == '"' || c == '`' || c == ' ' ||
           c == '\t' || c == '\n' || c == '\r';
}

static void push_label(struct sl_arena *arena, struct sl_labels *out, size_t *cap,
                       struct sl_label l)
{
    if (out->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct sl_label *items = sl_arena_alloc(arena, ncap * sizeof(*items));
        if (out->n)
            memcpy(items, out->items, out->n * sizeof(*items));
        out->items = items;
        *cap = ncap;
    }
    out->items[out->n++] = l;
}

int sl_labels_parse(struct sl_arena *arena, const char *s, size_t n, struct sl_labels *out,
                    struct sl_buf *err)
{
    struct parser p = {s, n, 0, err};
    size_t cap = 0;
    out->items = NULL;
    out->n = 0;
    skip_ws(&p);
    if (p.i >= n || s[p.i] != '{')
        return perr(&p, "expected '{'");
    p.i++;
    for (;;) {
        skip_ws(&p);
        if (p.i < n && s[p.i] == '}')
            break;
        size_t ns = p.i;
        while (p.i < n && !name_stop(s[p.i]))
            p.i++;
        if (p.i == ns)
            return perr(&p, "expected label name");
        struct sl_label l;
        l.name = sl_bytes(sl_arena_memdup(arena, s + ns, p.i - ns), p.i - ns);
        skip_ws(&p);
        if (p.i >= n || s[p.i] != '=')
            return perr(&p, "expected '='");
        p.i++;
        skip_ws(&p);
        if (p.i >= n || (s[p.i] != '"' && s[p.i] != '`'))
            return perr(&p, "expected quoted label value");
        int rc = parse_value(&p, arena, &l.value);
        if (rc)
            return rc;
        push_label(arena, out, &cap, l);
        skip_ws(&p);
        if (p.i < n && s[p.i] == ',') {
            p.i++;
            continue;
        }
        if (p.i < n && s[p.i] == '}')
            break;
        return perr(&p, "expected ',' or '}'");
    }
    p.i++;
    skip_ws(&p);
    if (p.i != n)
        return perr(&p, "unexpected data after '}'");
    return 0;
}

/* ---- validation and sorting ---- */

bool sl_label_name_valid(struct sl_bytes name)
{
    if (name.len == 0)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static int label_cmp(const struct sl_label *a, const struct sl_label *b)
{
    return sl_bytes_cmp(a->name, b->name);
}

static void merge_sort(struct sl_label *v, struct sl_label *tmp, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            struct sl_label x = v[i];
            size_t j = i;
            while (j > 0 && label_cmp(&v[j - 1], &x) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    merge_sort(v, tmp, h);
    merge_sort(v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = label_cmp(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    /* v[j..n) is already in place. */
    memcpy(v, tmp, k * sizeof(*v));
}

void sl_labels_sort(struct sl_labels *ls)
{
    if (ls->n <= 16) {
        merge_sort(ls->items, NULL, ls->n);
        return;
    }
    struct sl_label *tmp = sl_mallocarray(ls->n, sizeof(*tmp));
    merge_sort(ls->items, tmp, ls->n);
    sl_free(tmp);
}

static void append_quoted(struct sl_buf *b, struct sl_bytes v);

int sl_labels_validate(struct sl_labels *ls, const struct sl_label_limits *lim, struct sl_buf *err)
{
    sl_labels_sort(ls);
    if (ls->n == 0) {
        if (err)
            sl_buf_append_str(err, "empty label set");
        return SL_EINVAL;
    }
    if (lim && lim->max_names && ls->n > lim->max_names) {
        if (err)
            sl_buf_appendf(err, "too many labels: %zu, limit %zu", ls->n, lim->max_names);
        return SL_EINVAL;
    }
    for (size_t i = 0; i < ls->n; i++) {
        const struct sl_label *l = &ls->items[i];
        const char *why = NULL;
        if (!sl_label_name_valid(l->name))
            why = "is invalid";
        else if (i > 0 && sl_bytes_eq(l->name, ls->items[i - 1].name))
            why = "is duplicated";
        else if (lim && lim->max_name_len && l->name.len > lim->max_name_len)
            why = "is too long";
        else if (lim && lim->max_value_len && l->value.len > lim->max_value_len)
            why = "has a value that is too long";
        else if (!sl_utf8_valid(l->value.ptr, l->value.len))
            why = "has a value that is not valid UTF-8";
        if (why) {
            if (err) {
                sl_buf_append_str(err, "label name ");
                append_quoted(err, sl_bytes(l->name.ptr, l->name.len > 256 ? 256 : l->name.len));
                sl_buf_appendf(err, " %s", why);
            }
            return SL_EINVAL;
        }
    }
    return 0;
}

/* ---- canonical form ---- */

/* Output goes to a buffer, or in chunks into an XXH3 state. */
struct sink {
    struct sl_buf *buf;
    XXH3_state_t *st;
    size_t n;
    char tmp[512];
};

static void sink_write(struct sink *k, const char *p, size_t n)
{
    if (k->buf) {
        sl_buf_append(k->buf, p, n);
        return;
    }
    if (k->n + n > sizeof(k->tmp)) {
        XXH3_64bits_update(k->st, k->tmp, k->n);
        k->n = 0;
        if (n > sizeof(k->tmp)) {
            XXH3_64bits_update(k->st, p, n);
            return;
        }
    }
    memcpy(k->tmp + k->n, p, n);
    k->n += n;
}

/* Go's %q for \ " control bytes and invalid UTF-8; valid UTF-8 is kept. */
static void sink_quoted(struct sink *k, struct sl_bytes v)
{
    static const char hex[] = "0123456789abcdef";
    sink_write(k, "\"", 1);
    size_t run = 0, i = 0;
    while (i < v.len) {
        unsigned char c = (unsigned char)v.ptr[i];
        size_t l = 1;
        char esc[4];
        size_t el = 0;
        if (c >= 0x80) {
            uint32_t cp;
            l = sl_utf8_decode(v.ptr + i, v.len - i, &cp);
            if (l == 0) {
                l = 1;
                esc[0] = '\\';
                esc[1] = 'x';
                esc[2] = hex[c >> 4];
                esc[3] = hex[c & 15];
                el = 4;
            }
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            el = 2;
        } else if (c < 0x20 || c == 0x7f) {
            static const char ctl[] = "\a\b\f\n\r\t\v";
            static const char ctl_names[] = "abfnrtv";
            const char *hit = c ? memchr(ctl, c, sizeof(ctl) - 1) : NULL;
            esc[0] = '\\';
            if (hit) {
                esc[1] = ctl_names[hit - ctl];
                el = 2;
            } else {
                esc[1] = 'x';
                esc[2] = hex[c >> 4];
                esc[3] = hex[c & 15];
                el = 4;
            }
        }
        if (el) {
            if (run)
                sink_write(k, v.ptr + i - run, run);
            run = 0;
            sink_write(k, esc, el);
        } else {
            run += l;
        }
        i += l;
    }
    if (run)
        sink_write(k, v.ptr + i - run, run);
    sink_write(k, "\"", 1);
}

static void sink_labels(struct sink *k, const struct sl_labels *ls)
{
    sink_write(k, "{", 1);
    for (size_t i = 0; i < ls->n; i++) {
        if (i)
            sink_write(k, ", ", 2);
        sink_write(k, ls->items[i].name.ptr, ls->items[i].name.len);
        sink_write(k, "=", 1);
        sink_quoted(k, ls->items[i].value);
    }
    sink_write(k, "}", 1);
}

static void append_quoted(struct sl_buf *b, struct sl_bytes v)
{
    struct sink k = {.buf = b};
    sink_quoted(&k, v);
}

void sl_labels_format(const struct sl_labels *ls, struct sl_buf *out)
{
    struct sink k = {.buf = out};
    sink_labels(&k, ls);
}

uint64_t sl_labels_fingerprint(const struct sl_labels *ls)
{
    XXH3_state_t st;
    struct sink k = {.st = &st};
    XXH3_64bits_reset(&st);
    sink_labels(&k, ls);
    if (k.n)
        XXH3_64bits_update(&st, k.tmp, k.n);
    return XXH3_64bits_digest(&st);
}

const struct sl_bytes *sl_labels_get(const struct sl_labels *ls, const char *name)
{
    struct sl_bytes want = sl_bytes_str(name);
    for (size_t i = 0; i < ls->n; i++) {
        if (sl_bytes_eq(ls->items[i].name, want))
            return &ls->items[i].value;
    }
    return NULL;
}

void sl_labels_copy(struct sl_arena *arena, const struct sl_labels *src, struct sl_labels *dst)
{
    struct sl_label *items = sl_arena_alloc(arena, src->n * sizeof(*items));
    for (size_t i = 0; i < src->n; i++) {
        items[i].name = sl_arena_bytes(arena, src->items[i].name);
        items[i].value = sl_arena_bytes(arena, src->items[i].value);
    }
    dst->items = items;
    dst->n = src->n;
}
