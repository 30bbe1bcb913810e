/* Extraction stages: json, logfmt and regex read the line (or an extracted
 * value named by source) into the extracted map. */
#include <string.h>
#include <strings.h>

#include "agent/pipeline/internal.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/metrics.h"

/* The subject of an extraction: the line, or the extracted value `source`
 * (false when that is absent: the stage does nothing). */
static bool subject(const struct sl__pl_run *r, struct sl_bytes source, struct sl_bytes *out)
{
    if (!source.len) {
        *out = r->e->line;
        return true;
    }
    return sl__pl_get(r, source, out);
}

static struct sl_bytes dup_bytes(const char *s)
{
    return sl_bytes(sl_strdup(s), strlen(s));
}

static int parse_bool(struct sl__pl_build *b, const struct sl_cfgnode *opts, const char *key,
                      bool *out)
{
    const char *v = sl__pl_opt_str(opts, key);
    *out = false;
    if (!v || !*v)
        return 0;
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
        *out = true;
    else if (strcasecmp(v, "false") && strcasecmp(v, "no") && strcmp(v, "0"))
        return sl__pl_fail(b, sl_cfgnode_get(opts, key), key, "expected true or false, got \"%s\"",
                           v);
    return 0;
}

/* --- json --- */

struct json_stage {
    struct sl_bytes source;
    bool drop_malformed;
    struct sl_metric *m_drop;
    size_t n;
    struct sl_bytes *names;
    struct sl__pl_jpath *paths;
};

static void json_free(void *impl)
{
    struct json_stage *j = impl;
    for (size_t i = 0; i < j->n; i++) {
        sl_free((char *)j->names[i].ptr);
        sl__pl_jpath_release(&j->paths[i]);
    }
    sl_free(j->names);
    sl_free(j->paths);
    sl_free((char *)j->source.ptr);
    sl_free(j);
}

static void json_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct json_stage *j = st->impl;
    struct sl_bytes text;
    if (!subject(r, j->source, &text))
        return;
    if (sl__pl_json_check(text.ptr, text.len) != 0) {
        if (j->drop_malformed)
            sl__pl_drop(r, j->m_drop, "malformed_json");
        return;
    }
    size_t *at = sl_arena_alloc(r->arena, j->n * sizeof(*at));
    enum sl__pl_jtype *types = sl_arena_alloc(r->arena, j->n * sizeof(*types));
    struct sl_bytes *raws = sl_arena_alloc(r->arena, j->n * sizeof(*raws));
    sl__pl_json_find_all(text.ptr, text.len, j->paths, j->n, at, types, raws);
    for (size_t i = 0; i < j->n; i++) {
        if (types[i] == SL_PL_J_NONE || types[i] == SL_PL_J_NULL)
            continue;
        struct sl_bytes raw = raws[i];
        if (types[i] == SL_PL_J_STRING)
            raw = sl__pl_json_unquote(r->arena, raw);
        sl__pl_set(r, j->names[i], raw);
    }
}

int sl__pl_build_json(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st)
{
    static const char *const keys[] = {"expressions", "source", "drop_malformed", NULL};
    const struct sl_cfgnode *ex;
    int rc = sl__pl_check_keys(b, opts, keys);
    if (!rc)
        rc = sl__pl_opt_map(b, opts, "expressions", true, &ex);
    if (rc)
        return rc;
    struct json_stage *j = SL_NEW(struct json_stage);
    st->impl = j;
    st->free = json_free;
    st->run = json_run;
    const char *src = sl__pl_opt_str(opts, "source");
    j->source = dup_bytes(src ? src : "");
    if ((rc = parse_bool(b, opts, "drop_malformed", &j->drop_malformed)) != 0)
        return rc;
    j->m_drop = sl__pl_drop_counter(b->p, "malformed_json");
    j->names = sl_calloc(ex->n, sizeof(*j->names));
    j->paths = sl_calloc(ex->n, sizeof(*j->paths));
    for (size_t i = 0; i < ex->n; i++) {
        const struct sl_cfgnode *it = ex->items[i];
        const char *expr = it->value && *it->value ? it->value : it->key;
        const char *why;
        if (sl__pl_jpath_parse(expr, &j->paths[i], &why) != 0)
            return sl__pl_fail(b, it, "expressions", "%s: \"%s\": %s", it->key, expr, why);
        j->names[i] = dup_bytes(it->key);
        j->n++;
    }
    return 0;
}

/* --- logfmt --- */

struct logfmt_stage {
    struct sl_bytes source;
    size_t n;
    struct sl_bytes *names; /* extracted names */
    struct sl_bytes *keys;  /* logfmt keys */
};

static void logfmt_free(void *impl)
{
    struct logfmt_stage *l = impl;
    for (size_t i = 0; i < l->n; i++) {
        sl_free((char *)l->names[i].ptr);
        sl_free((char *)l->keys[i].ptr);
    }
    sl_free(l->names);
    sl_free(l->keys);
    sl_free((char *)l->source.ptr);
    sl_free(l);
}

struct logfmt_ctx {
    const struct logfmt_stage *l;
    struct sl__pl_run *r;
};

static void logfmt_pair(void *ud, struct sl_bytes key, struct sl_bytes value)
{
    struct logfmt_ctx *c = ud;
    for (size_t i = 0; i < c->l->n; i++)
        if (sl_bytes_eq(c->l->keys[i], key))
            sl__pl_set(c->r, c->l->names[i], value);
}

static void logfmt_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct logfmt_stage *l = st->impl;
    struct sl_bytes text;
    if (!subject(r, l->source, &text))
        return;
    struct logfmt_ctx c = {l, r};
    sl__pl_logfmt_scan(r->arena, text, logfmt_pair, &c);
}

int sl__pl_build_logfmt(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                        struct sl__pl_stage *st)
{
    static const char *const keys[] = {"mapping", "source", NULL};
    const struct sl_cfgnode *m;
    int rc = sl__pl_check_keys(b, opts, keys);
    if (!rc)
        rc = sl__pl_opt_map(b, opts, "mapping", true, &m);
    if (rc)
        return rc;
    struct logfmt_stage *l = SL_NEW(struct logfmt_stage);
    st->impl = l;
    st->free = logfmt_free;
    st->run = logfmt_run;
    const char *src = sl__pl_opt_str(opts, "source");
    l->source = dup_bytes(src ? src : "");
    l->names = sl_calloc(m->n, sizeof(*l->names));
    l->keys = sl_calloc(m->n, sizeof(*l->keys));
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_cfgnode *it = m->items[i];
        l->names[i] = dup_bytes(it->key);
        l->keys[i] = dup_bytes(it->value && *it->value ? it->value : it->key);
        l->n++;
    }
    return 0;
}

/* --- regex --- */

struct regex_stage {
    struct sl_bytes source;
    struct sl__pl_regex *re;
};

static void regex_free(void *impl)
{
    struct regex_stage *x = impl;
    sl__pl_regex_free(x->re);
    sl_free((char *)x->source.ptr);
    sl_free(x);
}

static void regex_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct regex_stage *x = st->impl;
    struct sl_bytes text;
    if (subject(r, x->source, &text))
        sl__pl_regex_extract(x->re, r, text);
}

int sl__pl_build_regex(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                       struct sl__pl_stage *st)
{
    static const char *const keys[] = {"expression", "source", NULL};
    int rc = sl__pl_check_keys(b, opts, keys);
    if (rc)
        return rc;
    const char *expr = sl__pl_opt_str(opts, "expression");
    if (!expr || !*expr)
        return sl__pl_fail(b, opts, "expression",
                           "required (a regular expression with named "
                           "groups such as (?P<level>\\w+))");
    struct regex_stage *x = SL_NEW(struct regex_stage);
    st->impl = x;
    st->free = regex_free;
    st->run = regex_run;
    const char *src = sl__pl_opt_str(opts, "source");
    x->source = dup_bytes(src ? src : "");
    return sl__pl_regex_new(b, sl_cfgnode_get(opts, "expression"), "expression", expr, &x->re);
}
