/* Stages that act on labels, metadata and the line: labels,
 * structured_metadata, static_labels, labeldrop, labelkeep (labelallow),
 * output. */
#include <string.h>

#include "agent/pipeline/internal.h"
#include "common/err.h"
#include "common/labels.h"
#include "common/mem.h"
#include "common/utf8.h"

/* name -> source (or fixed value) pairs; also a plain list of names. */
struct pairs {
    size_t n;
    struct sl_bytes *a; /* names */
    struct sl_bytes *b; /* sources or values */
};

static void pairs_free(void *impl)
{
    struct pairs *p = impl;
    for (size_t i = 0; i < p->n; i++) {
        sl_free((char *)p->a[i].ptr);
        sl_free((char *)p->b[i].ptr);
    }
    sl_free(p->a);
    sl_free(p->b);
    sl_free(p);
}

static struct sl_bytes dup(const char *s)
{
    return sl_bytes(sl_strdup(s), strlen(s));
}

static int check_name(struct sl__pl_build *b, const struct sl_cfgnode *at, const char *name)
{
    struct sl_bytes n = sl_bytes_str(name);
    if (n.len > 1024 || !sl_label_name_valid(n))
        return sl__pl_fail(b, at, name,
                           "invalid label name (expected [A-Za-z_][A-Za-z0-9_]*, at most 1024 "
                           "bytes)");
    return 0;
}

/* A map of name: source; an empty source means the name itself. */
static int build_map(struct sl__pl_build *b, const struct sl_cfgnode *opts, struct sl__pl_stage *st,
                     bool values_are_sources)
{
    if (!opts || opts->kind != SL_CFG_MAP || opts->n == 0)
        return sl__pl_fail(b, opts, NULL, "expected a non-empty map of label name: %s",
                           values_are_sources ? "source" : "value");
    struct pairs *p = SL_NEW(struct pairs);
    st->impl = p;
    st->free = pairs_free;
    p->a = sl_calloc(opts->n, sizeof(*p->a));
    p->b = sl_calloc(opts->n, sizeof(*p->b));
    for (size_t i = 0; i < opts->n; i++) {
        const struct sl_cfgnode *it = opts->items[i];
        if (it->kind != SL_CFG_SCALAR)
            return sl__pl_fail(b, it, it->key, "expected a scalar");
        int rc = check_name(b, it, it->key);
        if (rc)
            return rc;
        const char *v = it->value ? it->value : "";
        if (!values_are_sources) {
            if (!*v)
                return sl__pl_fail(b, it, it->key, "empty value");
            if (strlen(v) > 2048 || !sl_utf8_valid(v, strlen(v)))
                return sl__pl_fail(b, it, it->key, "value must be UTF-8 of at most 2048 bytes");
        }
        p->a[i] = dup(it->key);
        p->b[i] = dup(*v || !values_are_sources ? v : it->key);
        p->n++;
    }
    return 0;
}

/* A list of names (or one name). */
static int build_list(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st)
{
    struct pairs *p = SL_NEW(struct pairs);
    st->impl = p;
    st->free = pairs_free;
    if (opts && opts->kind == SL_CFG_SCALAR && opts->value && *opts->value) {
        p->a = sl_calloc(1, sizeof(*p->a));
        p->b = sl_calloc(1, sizeof(*p->b));
        p->a[0] = dup(opts->value);
        p->b[0] = dup("");
        p->n = 1;
        return 0;
    }
    if (!opts || opts->kind != SL_CFG_SEQ || opts->n == 0)
        return sl__pl_fail(b, opts, NULL, "expected a non-empty list of label names");
    p->a = sl_calloc(opts->n, sizeof(*p->a));
    p->b = sl_calloc(opts->n, sizeof(*p->b));
    for (size_t i = 0; i < opts->n; i++) {
        const struct sl_cfgnode *it = opts->items[i];
        if (it->kind != SL_CFG_SCALAR || !it->value || !*it->value)
            return sl__pl_fail(b, it, NULL, "item %zu: expected a label name", i);
        p->a[i] = dup(it->value);
        p->b[i] = dup("");
        p->n++;
    }
    return 0;
}

static void labels_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct pairs *p = st->impl;
    for (size_t i = 0; i < p->n; i++) {
        struct sl_bytes v;
        if (sl__pl_get(r, p->b[i], &v))
            sl__pl_label_set(r, p->a[i], v);
    }
}

static void meta_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct pairs *p = st->impl;
    for (size_t i = 0; i < p->n; i++) {
        struct sl_bytes v;
        if (sl__pl_get(r, p->b[i], &v) && v.len)
            sl__pl_meta_set(r, p->a[i], v);
    }
}

static void static_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct pairs *p = st->impl;
    for (size_t i = 0; i < p->n; i++)
        sl__pl_label_set(r, p->a[i], p->b[i]);
}

static void labeldrop_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct pairs *p = st->impl;
    for (size_t i = 0; i < p->n; i++)
        sl__pl_label_del(r, p->a[i]);
}

static void labelkeep_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct pairs *p = st->impl;
    sl__pl_label_keep(r, p->a, p->n);
}

int sl__pl_build_labels(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st)
{
    st->run = labels_run;
    return build_map(b, opts, st, true);
}

int sl__pl_build_meta(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st)
{
    st->run = meta_run;
    return build_map(b, opts, st, true);
}

int sl__pl_build_static(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st)
{
    st->run = static_run;
    return build_map(b, opts, st, false);
}

int sl__pl_build_labeldrop(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                           struct sl__pl_stage *st)
{
    st->run = labeldrop_run;
    return build_list(b, opts, st);
}

int sl__pl_build_labelkeep(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                           struct sl__pl_stage *st)
{
    st->run = labelkeep_run;
    return build_list(b, opts, st);
}

/* --- output --- */

static void output_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct pairs *p = st->impl;
    struct sl_bytes v;
    if (sl__pl_get(r, p->a[0], &v))
        r->e->line = v;
}

int sl__pl_build_output(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st)
{
    static const char *const keys[] = {"source", NULL};
    int rc = sl__pl_check_keys(b, opts, keys);
    if (rc)
        return rc;
    const char *src = sl__pl_opt_str(opts, "source");
    if (!src || !*src)
        return sl__pl_fail(b, opts, "source", "required (the extracted value to use as the line)");
    struct pairs *p = SL_NEW(struct pairs);
    st->impl = p;
    st->free = pairs_free;
    st->run = output_run;
    p->a = sl_calloc(1, sizeof(*p->a));
    p->b = sl_calloc(1, sizeof(*p->b));
    p->a[0] = dup(src);
    p->b[0] = dup("");
    p->n = 1;
    return 0;
}
