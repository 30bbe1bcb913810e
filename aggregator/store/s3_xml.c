/* Tiny XML walker for S3/STS responses; see s3_xml.h. */
#include "aggregator/store/s3_xml.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/utf8.h"

struct walker {
    const char *p, *end;
    char *names[SL_S3_XML_MAX_DEPTH];
    struct sl_buf text[SL_S3_XML_MAX_DEPTH];
    int depth;
    bool opened; /* an element was seen */
};

static const char *find(const char *p, const char *end, const char *needle)
{
    size_t nl = strlen(needle);
    if ((size_t)(end - p) < nl)
        return NULL;
    return memmem(p, (size_t)(end - p), needle, nl);
}

/* Decodes one entity at p ('&'); appends it and returns the bytes consumed,
 * or 0 when it is not a known entity (the '&' is then kept as is). */
static size_t entity(const char *p, const char *end, struct sl_buf *out)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < SL_ARRAY_LEN(named); i++) {
        size_t l = strlen(named[i].name);
        if ((size_t)(end - p) >= l && memcmp(p, named[i].name, l) == 0) {
            sl_buf_append_char(out, named[i].c);
            return l;
        }
    }
    if (end - p < 4 || p[1] != '#')
        return 0;
    const char *q = p + 2;
    int base = 10;
    if (*q == 'x' || *q == 'X') {
        base = 16;
        q++;
    }
    uint32_t cp = 0;
    const char *start = q;
    while (q < end && q - start < 8) {
        char c = *q;
        int v = c >= '0' && c <= '9'                 ? c - '0'
                : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
        if (v < 0)
            break;
        cp = cp * (uint32_t)base + (uint32_t)v;
        q++;
    }
    if (q == start || q >= end || *q != ';' || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    char u[4];
    sl_buf_append(out, u, sl_utf8_encode(u, cp));
    return (size_t)(q + 1 - p);
}

static void add_text(struct walker *w, const char *p, size_t n)
{
    if (w->depth == 0)
        return; /* text outside the root: whitespace, ignored */
    struct sl_buf *b = &w->text[w->depth - 1];
    const char *end = p + n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) {
            sl_buf_append(b, p, (size_t)(end - p));
            break;
        }
        sl_buf_append(b, p, (size_t)(amp - p));
        size_t used = entity(amp, end, b);
        if (!used) {
            sl_buf_append_char(b, '&');
            used = 1;
        }
        p = amp + used;
    }
}

static bool name_char(char c)
{
    return (unsigned char)c > ' ' && c != '>' && c != '<' && c != '/' && c != '=' && c != '"' &&
           c != '\'' && c != 0x7f;
}

/* Reads a tag name at *pp; returns a copy without a namespace prefix. */
static char *tag_name(const char **pp, const char *end)
{
    const char *p = *pp, *s = p, *colon = NULL;
    while (p < end && name_char(*p)) {
        if (*p == ':')
            colon = p;
        p++;
    }
    *pp = p;
    if (p == s)
        return NULL;
    if (colon && colon + 1 < p)
        s = colon + 1;
    return sl_strndup(s, (size_t)(p - s));
}

static int close_elem(struct walker *w, sl_s3_xml_fn fn, void *ud)
{
    int d = w->depth;
    struct sl_buf *t = &w->text[d - 1];
    int rc = fn(ud, (const char *const *)w->names, d, t->data ? t->data : "", t->len);
    sl_free(w->names[d - 1]);
    w->names[d - 1] = NULL;
    sl_buf_release(t);
    w->depth--;
    return rc;
}

/* Handles the markup starting at w->p ('<'). */
static int markup(struct walker *w, sl_s3_xml_fn fn, void *ud)
{
    const char *p = w->p + 1, *end = w->end, *q;
    if (p < end && (*p == '?' || *p == '!')) {
        const char *term = "?>";
        if (end - p >= 3 && memcmp(p, "!--", 3) == 0)
            term = "-->";
        else if (end - p >= 8 && memcmp(p, "![CDATA[", 8) == 0)
            term = "]]>";
        else if (*p == '!')
            term = ">";
        q = find(p, end, term);
        if (!q)
            return SL_EINVAL;
        if (term[0] == ']') {
            struct sl_buf *b = w->depth ? &w->text[w->depth - 1] : NULL;
            if (b)
                sl_buf_append(b, p + 8, (size_t)(q - p - 8));
        }
        w->p = q + strlen(term);
        return 0;
    }
    bool closing = p < end && *p == '/';
    if (closing)
        p++;
    char *name = tag_name(&p, end);
    if (!name)
        return SL_EINVAL;
    q = memchr(p, '>', (size_t)(end - p));
    if (!q) {
        sl_free(name);
        return SL_EINVAL;
    }
    bool self_closing = !closing && q > p && q[-1] == '/';
    w->p = q + 1;
    if (closing) {
        int ok = w->depth > 0 && strcmp(w->names[w->depth - 1], name) == 0;
        sl_free(name);
        return ok ? close_elem(w, fn, ud) : SL_EINVAL;
    }
    if (w->depth == SL_S3_XML_MAX_DEPTH) {
        sl_free(name);
        return SL_EINVAL;
    }
    w->opened = true;
    w->names[w->depth] = name;
    sl_buf_init(&w->text[w->depth]);
    w->depth++;
    return self_closing ? close_elem(w, fn, ud) : 0;
}

int sl_s3_xml_walk(const char *p, size_t n, sl_s3_xml_fn fn, void *ud)
{
    struct walker w = {.p = p, .end = p + n};
    int rc = 0;
    while (w.p < w.end) {
        const char *lt = memchr(w.p, '<', (size_t)(w.end - w.p));
        const char *stop = lt ? lt : w.end;
        add_text(&w, w.p, (size_t)(stop - w.p));
        w.p = stop;
        if (!lt)
            break;
        rc = markup(&w, fn, ud);
        if (rc)
            break;
    }
    if (rc == 0 && (w.depth != 0 || !w.opened))
        rc = SL_EINVAL;
    while (w.depth > 0) {
        w.depth--;
        sl_free(w.names[w.depth]);
        sl_buf_release(&w.text[w.depth]);
    }
    return rc;
}

/* ---- ListObjectsV2 ---- */

struct list_ctx {
    struct sl_s3_list *l;
    char *key;
    uint64_t size;
    int64_t mtime_ns;
    bool have_size;
};

static bool is(const char *const *names, int depth, int i, const char *s)
{
    return depth > i && strcmp(names[depth - 1 - i], s) == 0;
}

static int parse_u64(const char *t, size_t n, uint64_t *out)
{
    while (n && (*t == ' ' || *t == '\n' || *t == '\r' || *t == '\t'))
        t++, n--;
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 20)
        return SL_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return SL_EINVAL;
        v = v * 10 + (uint64_t)(t[i] - '0');
    }
    *out = v;
    return 0;
}

static int list_cb(void *ud, const char *const *names, int depth, const char *text, size_t len)
{
    struct list_ctx *c = ud;
    struct sl_s3_list *l = c->l;
    if (depth == 3 && is(names, depth, 1, "Contents")) {
        if (strcmp(names[2], "Key") == 0) {
            sl_free(c->key);
            c->key = sl_strndup(text, len);
        } else if (strcmp(names[2], "Size") == 0) {
            if (parse_u64(text, len, &c->size))
                return SL_EINVAL;
            c->have_size = true;
        } else if (strcmp(names[2], "LastModified") == 0) {
            /* an unparsable date only makes the object look new (never
             * collected as an orphan), so it is not an error */
            if (sl_rfc3339_parse(text, len, &c->mtime_ns) != 0)
                c->mtime_ns = 0;
        }
    } else if (depth == 2 && strcmp(names[1], "Contents") == 0) {
        if (!c->key)
            return SL_EINVAL;
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 64;
            l->items = sl_reallocarray(l->items, l->cap, sizeof(*l->items));
        }
        l->items[l->n].key = c->key;
        l->items[l->n].size = c->have_size ? c->size : 0;
        l->items[l->n].mtime_ns = c->mtime_ns;
        l->n++;
        c->key = NULL;
        c->have_size = false;
        c->mtime_ns = 0;
    } else if (depth == 2 && strcmp(names[1], "IsTruncated") == 0) {
        l->truncated = len == 4 && memcmp(text, "true", 4) == 0;
    } else if (depth == 2 && strcmp(names[1], "NextContinuationToken") == 0) {
        sl_free(l->next_token);
        l->next_token = sl_strndup(text, len);
    } else if (depth == 1 && strcmp(names[0], "ListBucketResult") != 0) {
        return SL_EINVAL;
    }
    return 0;
}

int sl_s3_list_parse(const char *p, size_t n, struct sl_s3_list *out)
{
    struct list_ctx c = {.l = out};
    int rc = sl_s3_xml_walk(p, n, list_cb, &c);
    sl_free(c.key);
    return rc;
}

void sl_s3_list_release(struct sl_s3_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        sl_free(l->items[i].key);
    sl_free(l->items);
    sl_free(l->next_token);
    memset(l, 0, sizeof(*l));
}

/* ---- errors ---- */

struct err_ctx {
    struct sl_buf *code, *message;
    bool have_code, have_message;
};

static int err_cb(void *ud, const char *const *names, int depth, const char *text, size_t len)
{
    struct err_ctx *c = ud;
    if (depth < 2 || !is(names, depth, 1, "Error"))
        return 0;
    if (!c->have_code && strcmp(names[depth - 1], "Code") == 0) {
        sl_buf_append(c->code, text, len);
        c->have_code = true;
    } else if (!c->have_message && strcmp(names[depth - 1], "Message") == 0) {
        sl_buf_append(c->message, text, len);
        c->have_message = true;
    }
    return 0;
}

int sl_s3_error_parse(const char *p, size_t n, struct sl_buf *code, struct sl_buf *message)
{
    struct sl_buf c = SL_BUF_INIT, m = SL_BUF_INIT;
    struct err_ctx ctx = {&c, &m, false, false};
    int rc = sl_s3_xml_walk(p, n, err_cb, &ctx);
    if (rc == 0 && ctx.have_code && c.len > 0) {
        sl_buf_append(code, c.data, c.len);
        if (m.len)
            sl_buf_append(message, m.data, m.len);
    } else {
        rc = SL_ENOENT;
    }
    sl_buf_release(&c);
    sl_buf_release(&m);
    return rc;
}

/* ---- STS credentials ---- */

struct creds_ctx {
    struct sl_s3_creds_xml *c;
    int bad;
};

static int creds_cb(void *ud, const char *const *names, int depth, const char *text, size_t len)
{
    struct creds_ctx *x = ud;
    if (depth < 2 || !is(names, depth, 1, "Credentials"))
        return 0;
    const char *n = names[depth - 1];
    char **slot = NULL;
    if (strcmp(n, "AccessKeyId") == 0)
        slot = &x->c->access_key_id;
    else if (strcmp(n, "SecretAccessKey") == 0)
        slot = &x->c->secret_access_key;
    else if (strcmp(n, "SessionToken") == 0)
        slot = &x->c->session_token;
    else if (strcmp(n, "Expiration") == 0 && sl_rfc3339_parse(text, len, &x->c->expiration_ns) != 0)
        x->bad = 1;
    if (slot) {
        sl_free(*slot);
        *slot = sl_strndup(text, len);
    }
    return 0;
}

int sl_s3_creds_parse(const char *p, size_t n, struct sl_s3_creds_xml *out)
{
    memset(out, 0, sizeof(*out));
    struct creds_ctx x = {out, 0};
    int rc = sl_s3_xml_walk(p, n, creds_cb, &x);
    if (rc == 0 && (x.bad || !out->access_key_id || !*out->access_key_id ||
                    !out->secret_access_key || !*out->secret_access_key))
        rc = SL_EINVAL;
    if (rc)
        sl_s3_creds_xml_release(out);
    return rc;
}

void sl_s3_creds_xml_release(struct sl_s3_creds_xml *c)
{
    if (c->secret_access_key)
        memset(c->secret_access_key, 0, strlen(c->secret_access_key));
    sl_free(c->access_key_id);
    sl_free(c->secret_access_key);
    sl_free(c->session_token);
    memset(c, 0, sizeof(*c));
}
