/* Pattern expressions (`| pattern "<ip> - - [<_>] \"<method> <path> <_>\""`),
 * with Loki's matching: a leading literal must be a prefix of the line; each
 * capture extends to the first occurrence of the literal after it; a
 * capture whose literal is missing takes the rest of the line and ends the
 * match; a final capture takes the rest. `<_>` matches without capturing. */
#include <string.h>

#include "aggregator/logql/internal.h"
#include "common/err.h"

struct node {
    bool capture;
    struct sl_bytes text; /* literal bytes, or capture name ("_" unnamed) */
};

struct sl_logql_pattern {
    struct node *nodes;
    size_t n;
    struct sl_bytes *names;
    size_t nnames;
};

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* Length of a capture `<name>` at s, or 0. */
static size_t capture_len(const char *s, size_t n)
{
    if (n < 3 || s[0] != '<' || !name_start(s[1]))
        return 0;
    size_t i = 2;
    while (i < n && name_char(s[i]))
        i++;
    return i < n && s[i] == '>' ? i + 1 : 0;
}

int sl__logql_pattern_parse(struct sl_arena *a, struct sl_bytes text, struct sl_logql_pattern **out,
                            struct sl_buf *err)
{
    struct sl_logql_pattern *pt = sl_arena_calloc(a, sizeof *pt);
    pt->nodes = sl_arena_calloc(a, (text.len + 1) * sizeof *pt->nodes);
    pt->names = sl_arena_calloc(a, (text.len / 3 + 1) * sizeof *pt->names);
    size_t i = 0;
    while (i < text.len) {
        size_t cl = capture_len(text.ptr + i, text.len - i);
        if (cl) {
            struct sl_bytes name = sl_bytes(text.ptr + i + 1, cl - 2);
            if (pt->n && pt->nodes[pt->n - 1].capture) {
                sl_buf_append_str(err, "found consecutive capture: invalid expression");
                return SL_EINVAL;
            }
            if (!sl_bytes_eq_str(name, "_")) {
                for (size_t k = 0; k < pt->nnames; k++)
                    if (sl_bytes_eq(pt->names[k], name)) {
                        sl_buf_appendf(err, "duplicate capture name (%.*s): invalid expression",
                                       (int)name.len, name.ptr);
                        return SL_EINVAL;
                    }
                pt->names[pt->nnames++] = name;
            }
            pt->nodes[pt->n++] = (struct node){true, name};
            i += cl;
            continue;
        }
        if (pt->n && !pt->nodes[pt->n - 1].capture) {
            pt->nodes[pt->n - 1].text.len++;
        } else {
            pt->nodes[pt->n++] = (struct node){false, sl_bytes(text.ptr + i, 1)};
        }
        i++;
    }
    if (pt->nnames == 0) {
        sl_buf_append_str(err, "at least one capture is required");
        return SL_EINVAL;
    }
    *out = pt;
    return 0;
}

size_t sl__logql_pattern_names(const struct sl_logql_pattern *pt, const struct sl_bytes **names)
{
    *names = pt->names;
    return pt->nnames;
}

static const char *find(struct sl_bytes hay, struct sl_bytes needle)
{
    if (needle.len > hay.len)
        return NULL;
    return memmem(hay.ptr, hay.len, needle.ptr, needle.len);
}

size_t sl__logql_pattern_match(const struct sl_logql_pattern *pt, struct sl_bytes in,
                               struct sl_bytes *vals)
{
    size_t nv = 0, k = 0;
    if (in.len == 0 || pt->n == 0)
        return 0;
    if (!pt->nodes[0].capture) {
        struct sl_bytes lit = pt->nodes[0].text;
        if (in.len < lit.len || memcmp(in.ptr, lit.ptr, lit.len) != 0)
            return 0;
        in = sl_bytes(in.ptr + lit.len, in.len - lit.len);
        k = 1;
    }
    while (k < pt->n) {
        const struct node *c = &pt->nodes[k];
        bool named = !sl_bytes_eq_str(c->text, "_");
        if (k + 1 == pt->n) {
            if (named)
                vals[nv++] = in;
            return nv;
        }
        struct sl_bytes lit = pt->nodes[k + 1].text;
        k += 2;
        const char *at = find(in, lit);
        if (!at) {
            if (named)
                vals[nv++] = in;
            return nv;
        }
        size_t i = (size_t)(at - in.ptr);
        if (named)
            vals[nv++] = sl_bytes(in.ptr, i);
        in = sl_bytes(in.ptr + i + lit.len, in.len - i - lit.len);
    }
    return nv;
}
