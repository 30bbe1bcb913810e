/* files: entries from the YAML subtree. */
#include "agent/discover/sources.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/labels.h"
#include "common/mem.h"

static int bad(struct sl_buf *err, size_t i, const char *key, const char *why)
{
    sl_buf_appendf(err, "config: files[%zu]%s%s: %s", i, key ? "." : "", key ? key : "", why);
    return SL_EINVAL;
}

static void strlist_add(struct sl_strlist *l, const char *s)
{
    l->items = sl_reallocarray(l->items, l->n + 1, sizeof(char *));
    l->items[l->n++] = sl_strdup(s);
}

static void strlist_free(struct sl_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        sl_free(l->items[i]);
    sl_free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* A scalar or a sequence of non-empty scalars. */
static int globs(const struct sl_cfgnode *n, struct sl_strlist *out, size_t i, const char *key,
                 struct sl_buf *err)
{
    if (n->kind == SL_CFG_SCALAR) {
        if (!n->value || !*n->value)
            return bad(err, i, key, "empty pattern");
        strlist_add(out, n->value);
        return 0;
    }
    if (n->kind != SL_CFG_SEQ)
        return bad(err, i, key, "expected a glob or a list of globs");
    for (size_t j = 0; j < n->n; j++) {
        const struct sl_cfgnode *g = n->items[j];
        if (g->kind != SL_CFG_SCALAR || !g->value || !*g->value)
            return bad(err, i, key, "expected a list of non-empty globs");
        strlist_add(out, g->value);
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int labels(const struct sl_cfgnode *n, struct sl_file_source *s, size_t i,
                  struct sl_buf *err)
{
    if (n->kind != SL_CFG_MAP)
        return bad(err, i, "labels", "expected a map of name: value");
    s->label_names = sl_calloc(n->n + 1, sizeof(char *));
    s->label_values = sl_calloc(n->n + 1, sizeof(char *));
    for (size_t j = 0; j < n->n; j++) {
        const struct sl_cfgnode *l = n->items[j];
        if (!sl_label_name_valid(sl_bytes_str(l->key)))
            return bad(err, i, "labels", "label names must match [A-Za-z_][A-Za-z0-9_]*");
        if (!strcmp(l->key, "filename"))
            return bad(err, i, "labels", "filename is set from the path");
        if (l->kind != SL_CFG_SCALAR)
            return bad(err, i, "labels", "label values must be strings");
        s->label_names[j] = sl_strdup(l->key);
        s->nlabels++;
    }
    /* Sort the names, then fetch values in that order. */
    qsort(s->label_names, s->nlabels, sizeof(char *), cmp_names);
    for (size_t j = 0; j < s->nlabels; j++) {
        if (j && !strcmp(s->label_names[j], s->label_names[j - 1]))
            return bad(err, i, "labels", "duplicate label name");
        const struct sl_cfgnode *v = sl_cfgnode_get(n, s->label_names[j]);
        s->label_values[j] = sl_strdup(v && v->value ? v->value : "");
    }
    return 0;
}

static int one(const struct sl_cfgnode *n, struct sl_file_source *s, size_t i, struct sl_buf *err)
{
    if (n->kind != SL_CFG_MAP)
        return bad(err, i, NULL, "expected a map with include, exclude, format, labels");
    s->format = SL_FORMAT_RAW;
    for (size_t j = 0; j < n->n; j++) {
        const struct sl_cfgnode *c = n->items[j];
        int rc = 0;
        if (!strcmp(c->key, "include"))
            rc = globs(c, &s->include, i, "include", err);
        else if (!strcmp(c->key, "exclude"))
            rc = globs(c, &s->exclude, i, "exclude", err);
        else if (!strcmp(c->key, "labels"))
            rc = labels(c, s, i, err);
        else if (!strcmp(c->key, "format"))
            rc = c->kind == SL_CFG_SCALAR && c->value &&
                         sl_log_format_parse(c->value, &s->format) == 0
                     ? 0
                     : bad(err, i, "format", "expected raw, cri or docker");
        else
            rc = bad(err, i, c->key, "unknown key (expected include, exclude, format, labels)");
        if (rc)
            return rc;
    }
    if (!s->include.n)
        return bad(err, i, "include", "at least one glob is required");
    return 0;
}

int sl_file_sources_parse(const struct sl_cfgnode *files, struct sl_file_sources *out,
                          struct sl_buf *err)
{
    memset(out, 0, sizeof(*out));
    if (!files || (files->kind == SL_CFG_SCALAR &&
                   (!files->value || !*files->value || !strcmp(files->value, "[]"))))
        return 0;
    if (files->kind != SL_CFG_SEQ) {
        sl_buf_append_str(err, "config: files: expected a list of sources");
        return SL_EINVAL;
    }
    out->items = sl_calloc(files->n ? files->n : 1, sizeof(*out->items));
    out->n = files->n;
    for (size_t i = 0; i < files->n; i++) {
        if (one(files->items[i], &out->items[i], i, err) != 0) {
            sl_file_sources_release(out);
            return SL_EINVAL;
        }
    }
    return 0;
}

void sl_file_sources_release(struct sl_file_sources *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct sl_file_source *f = &s->items[i];
        strlist_free(&f->include);
        strlist_free(&f->exclude);
        for (size_t j = 0; j < f->nlabels; j++) {
            sl_free(f->label_names[j]);
            sl_free(f->label_values[j]);
        }
        sl_free(f->label_names);
        sl_free(f->label_values);
    }
    sl_free(s->items);
    memset(s, 0, sizeof(*s));
}
