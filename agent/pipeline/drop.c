/* The drop stage: every condition given must hold for the entry to be
 * dropped (Promtail's AND; an OR is two drop stages). Conditions: the
 * extracted source(s), joined by separator, exist (and match expression or
 * equal value), or the line matches expression; the entry is older_than;
 * the line is longer_than. Counted under drop_counter_reason. */
#include <string.h>

#include "agent/pipeline/internal.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/timeutil.h"

struct drop_stage {
    size_t nsrc;
    struct sl_bytes *src;
    struct sl_bytes sep;
    struct sl__pl_regex *re;
    char *value;
    int64_t older_than;  /* ns, 0: unset */
    int64_t longer_than; /* bytes, -1: unset */
    char *reason;
    struct sl_metric *m;
};

static void drop_free(void *impl)
{
    struct drop_stage *d = impl;
    for (size_t i = 0; i < d->nsrc; i++)
        sl_free((char *)d->src[i].ptr);
    sl_free(d->src);
    sl_free((char *)d->sep.ptr);
    sl__pl_regex_free(d->re);
    sl_free(d->value);
    sl_free(d->reason);
    sl_free(d);
}

/* The subject: the line, or the sources joined (false if one is absent). */
static bool drop_subject(const struct drop_stage *d, struct sl__pl_run *r, struct sl_bytes *out)
{
    if (!d->nsrc) {
        *out = r->e->line;
        return true;
    }
    struct sl_bytes *v = sl_arena_alloc(r->arena, d->nsrc * sizeof(*v));
    size_t total = 0;
    for (size_t i = 0; i < d->nsrc; i++) {
        if (!sl__pl_get(r, d->src[i], &v[i]))
            return false;
        total += v[i].len + d->sep.len;
    }
    if (d->nsrc == 1) {
        *out = v[0];
        return true;
    }
    char *buf = sl_arena_alloc(r->arena, total + 1), *p = buf;
    for (size_t i = 0; i < d->nsrc; i++) {
        if (i) {
            memcpy(p, d->sep.ptr, d->sep.len);
            p += d->sep.len;
        }
        if (v[i].len)
            memcpy(p, v[i].ptr, v[i].len);
        p += v[i].len;
    }
    *out = sl_bytes(buf, (size_t)(p - buf));
    return true;
}

static void drop_run(const struct sl__pl_stage *st, struct sl__pl_run *r)
{
    const struct drop_stage *d = st->impl;
    if (d->longer_than >= 0 && (int64_t)r->e->line.len <= d->longer_than)
        return;
    if (d->older_than > 0 && r->e->ts_ns >= sl__pl_wall(r->p) - d->older_than)
        return;
    if (d->nsrc || d->re || d->value) {
        struct sl_bytes subj;
        if (!drop_subject(d, r, &subj))
            return;
        if (d->re && !sl__pl_regex_match(d->re, subj))
            return;
        if (d->value && !sl_bytes_eq_str(subj, d->value))
            return;
    }
    sl__pl_drop(r, d->m, d->reason);
}

static int build_sources(struct sl__pl_build *b, const struct sl_cfgnode *n, struct drop_stage *d)
{
    if (!n || (n->kind == SL_CFG_SCALAR && (!n->value || !*n->value)))
        return 0;
    if (n->kind == SL_CFG_SCALAR) {
        d->src = sl_calloc(1, sizeof(*d->src));
        d->src[0] = sl_bytes(sl_strdup(n->value), strlen(n->value));
        d->nsrc = 1;
        return 0;
    }
    if (n->kind != SL_CFG_SEQ || n->n == 0)
        return sl__pl_fail(b, n, "source", "expected a name or a list of names");
    d->src = sl_calloc(n->n, sizeof(*d->src));
    for (size_t i = 0; i < n->n; i++) {
        const struct sl_cfgnode *it = n->items[i];
        if (it->kind != SL_CFG_SCALAR || !it->value || !*it->value)
            return sl__pl_fail(b, it, "source", "item %zu: expected a name", i);
        d->src[i] = sl_bytes(sl_strdup(it->value), strlen(it->value));
        d->nsrc++;
    }
    return 0;
}

int sl__pl_build_drop(struct sl__pl_build *b, const struct sl_cfgnode *opts,
                      struct sl__pl_stage *st)
{
    static const char *const keys[] = {"source",     "separator",   "expression",          "value",
                                       "older_than", "longer_than", "drop_counter_reason", NULL};
    int rc = sl__pl_check_keys(b, opts, keys);
    if (rc)
        return rc;
    struct drop_stage *d = SL_NEW(struct drop_stage);
    st->impl = d;
    st->free = drop_free;
    st->run = drop_run;
    d->longer_than = -1;
    if ((rc = build_sources(b, sl_cfgnode_get(opts, "source"), d)) != 0)
        return rc;
    const char *sep = sl__pl_opt_str(opts, "separator");
    sep = sep && *sep ? sep : ";";
    d->sep = sl_bytes(sl_strdup(sep), strlen(sep));
    const char *expr = sl__pl_opt_str(opts, "expression");
    const char *value = sl__pl_opt_str(opts, "value");
    if (value && *value && expr && *expr)
        return sl__pl_fail(b, opts, "value", "value and expression cannot both be set");
    if (value && *value && !d->nsrc)
        return sl__pl_fail(b, opts, "value", "value needs a source");
    if (value && *value)
        d->value = sl_strdup(value);
    if (expr && *expr &&
        (rc = sl__pl_regex_new(b, sl_cfgnode_get(opts, "expression"), "expression", expr,
                               &d->re)) != 0)
        return rc;
    const char *older = sl__pl_opt_str(opts, "older_than");
    if (older && *older &&
        (sl_duration_parse(older, strlen(older), &d->older_than) != 0 || d->older_than <= 0))
        return sl__pl_fail(b, sl_cfgnode_get(opts, "older_than"), "older_than",
                           "expected a positive duration such as 24h, got \"%s\"", older);
    const char *longer = sl__pl_opt_str(opts, "longer_than");
    if (longer && *longer &&
        (sl_size_parse(longer, strlen(longer), &d->longer_than) != 0 || d->longer_than < 0))
        return sl__pl_fail(b, sl_cfgnode_get(opts, "longer_than"), "longer_than",
                           "expected a size such as 8KiB or 1000, got \"%s\"", longer);
    if (!d->nsrc && !d->re && !d->older_than && d->longer_than < 0)
        return sl__pl_fail(b, opts, NULL,
                           "needs at least one of source, expression, older_than, longer_than");
    const char *reason = sl__pl_opt_str(opts, "drop_counter_reason");
    d->reason = sl_strdup(reason && *reason ? reason : "drop_stage");
    d->m = sl__pl_drop_counter(b->p, d->reason);
    return 0;
}
