/* Instant-vector operations, as Prometheus (and so Loki) defines them:
 * vector aggregations with by/without, topk/bottomk (ties resolved towards
 * the smaller label set), sort/sort_desc (NaN last), binary operators with
 * one-to-one and group_left/group_right matching on/ignoring labels, set
 * operators, comparisons as filters or with bool, and label_replace. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/metric_int.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/mem.h"

typedef struct sl__vsample vsample;

static int label_cmp(const void *a, const void *b)
{
    const struct sl_label *x = a, *y = b;
    return sl_bytes_cmp(x->name, y->name);
}

/* ---- aggregations ---- */

struct keyed {
    struct sl_bytes gkey;
    const vsample *s;
    struct sl_labels gls;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = sl_bytes_cmp(x->gkey, y->gkey);
    return c ? c : sl_bytes_cmp(x->s->key, y->s->key);
}

/* For topk: better first (NaN always last), then by labels. */
static int topk_cmp(const void *a, const void *b, void *ud)
{
    const struct keyed *x = a, *y = b;
    bool desc = *(const bool *)ud;
    int c = sl_bytes_cmp(x->gkey, y->gkey);
    if (c)
        return c;
    double p = x->s->v, q = y->s->v;
    bool pn = p != p, qn = q != q;
    if (pn != qn)
        return pn ? 1 : -1;
    if (!pn && p != q)
        return desc ? (p > q ? -1 : 1) : (p < q ? -1 : 1);
    return sl_bytes_cmp(x->s->key, y->s->key);
}

static int sort_cmp(const void *a, const void *b, void *ud)
{
    const vsample *x = a, *y = b;
    bool desc = *(const bool *)ud;
    bool pn = x->v != x->v, qn = y->v != y->v;
    if (pn != qn)
        return pn ? 1 : -1;
    if (!pn && x->v != y->v)
        return desc ? (x->v > y->v ? -1 : 1) : (x->v < y->v ? -1 : 1);
    return sl_bytes_cmp(x->key, y->key);
}

static double agg_value(enum sl_logql_vecagg_op op, const struct keyed *k, size_t n)
{
    double acc = 0, mean = 0, m2 = 0;
    switch (op) {
    case SL_LOGQL_V_SUM:
        for (size_t i = 0; i < n; i++)
            acc += k[i].s->v;
        return acc;
    case SL_LOGQL_V_COUNT:
        return (double)n;
    case SL_LOGQL_V_AVG:
        for (size_t i = 0; i < n; i++) {
            double c = (double)(i + 1);
            mean += k[i].s->v / c - mean / c;
        }
        return mean;
    case SL_LOGQL_V_MIN:
    case SL_LOGQL_V_MAX:
        acc = k[0].s->v;
        for (size_t i = 1; i < n; i++) {
            double v = k[i].s->v;
            if (acc != acc || (op == SL_LOGQL_V_MIN ? v < acc : v > acc))
                acc = v;
        }
        return acc;
    case SL_LOGQL_V_STDDEV:
    case SL_LOGQL_V_STDVAR:
        for (size_t i = 0; i < n; i++) {
            double d = k[i].s->v - mean;
            mean += d / (double)(i + 1);
            m2 += d * (k[i].s->v - mean);
        }
        return op == SL_LOGQL_V_STDVAR ? m2 / (double)n : sqrt(m2 / (double)n);
    default:
        return 0;
    }
}

void sl__logql_vecagg(struct sl__step *st, const struct sl_logql_vecagg_expr *e,
                      const struct sl__vres *in, struct sl__vres *out)
{
    memset(out, 0, sizeof *out);
    out->s = sl_arena_alloc(st->a, (in->n + 1) * sizeof *out->s);
    if (e->op == SL_LOGQL_V_SORT || e->op == SL_LOGQL_V_SORT_DESC) {
        bool desc = e->op == SL_LOGQL_V_SORT_DESC;
        if (in->n)
            memcpy(out->s, in->s, in->n * sizeof *out->s);
        out->n = in->n;
        qsort_r(out->s, out->n, sizeof *out->s, sort_cmp, &desc);
        return;
    }
    struct keyed *k = sl_arena_alloc(st->a, (in->n + 1) * sizeof *k);
    for (size_t i = 0; i < in->n; i++) {
        k[i].s = &in->s[i];
        sl__logql_group_labels(st->a, &in->s[i].ls, &e->grouping, NULL, &k[i].gls);
        if (!e->grouping.present)
            k[i].gls.n = 0;
        k[i].gkey = sl__logql_labels_key(st->a, &k[i].gls);
    }
    bool topk = e->op == SL_LOGQL_V_TOPK || e->op == SL_LOGQL_V_BOTTOMK;
    bool desc = e->op == SL_LOGQL_V_TOPK;
    if (topk)
        qsort_r(k, in->n, sizeof *k, topk_cmp, &desc);
    else
        qsort(k, in->n, sizeof *k, keyed_cmp);
    for (size_t i = 0; i < in->n;) {
        size_t j = i;
        while (j < in->n && sl_bytes_eq(k[j].gkey, k[i].gkey))
            j++;
        if (topk) {
            for (size_t x = i; x < j && (int64_t)(x - i) < e->k; x++)
                out->s[out->n++] = *k[x].s;
        } else {
            out->s[out->n++] = (vsample){k[i].gls, k[i].gkey, agg_value(e->op, k + i, j - i)};
        }
        i = j;
    }
}

/* ---- binary operators ---- */

static bool is_cmp(enum sl_logql_binop op)
{
    return op >= SL_LOGQL_OP_EQ;
}

/* Returns false when a comparison does not hold (the sample is dropped). */
static bool apply(enum sl_logql_binop op, double a, double b, double *out)
{
    switch (op) {
    case SL_LOGQL_OP_ADD:
        *out = a + b;
        return true;
    case SL_LOGQL_OP_SUB:
        *out = a - b;
        return true;
    case SL_LOGQL_OP_MUL:
        *out = a * b;
        return true;
    case SL_LOGQL_OP_DIV: /* Loki: a zero divisor gives NaN, never an infinity */
        *out = b == 0 ? NAN : a / b;
        return true;
    case SL_LOGQL_OP_MOD:
        *out = b == 0 ? NAN : fmod(a, b);
        return true;
    case SL_LOGQL_OP_POW:
        *out = pow(a, b);
        return true;
    case SL_LOGQL_OP_EQ:
        return a == b;
    case SL_LOGQL_OP_NEQ:
        return a != b;
    case SL_LOGQL_OP_GT:
        return a > b;
    case SL_LOGQL_OP_GTE:
        return a >= b;
    case SL_LOGQL_OP_LT:
        return a < b;
    case SL_LOGQL_OP_LTE:
        return a <= b;
    default:
        return false;
    }
}

/* value of `a op b` as a binary operator would give; false: filtered. */
static bool binval(const struct sl_logql_binop_expr *e, double a, double b, double keep,
                   double *out)
{
    if (!is_cmp(e->op))
        return apply(e->op, a, b, out);
    double dummy;
    bool t = apply(e->op, a, b, &dummy);
    if (e->return_bool) {
        *out = t ? 1 : 0;
        return true;
    }
    *out = keep;
    return t;
}

/* Signature of ls for matching (on: only those labels; ignoring: all but
 * those; neither: all). */
static struct sl_bytes signature(struct sl_arena *a, const struct sl_logql_binop_expr *e,
                                 const struct sl_labels *ls)
{
    struct sl_logql_grouping g = {
        .present = e->on, .without = !e->on, .names = e->match, .n = e->nmatch};
    struct sl_labels out;
    sl__logql_group_labels(a, ls, &g, NULL, &out);
    return sl__logql_labels_key(a, &out);
}

static void result_labels(struct sl_arena *a, const struct sl_logql_binop_expr *e,
                          const struct sl_labels *many, const struct sl_labels *one,
                          struct sl_labels *out)
{
    struct sl_labels base = *many;
    if (!e->group && (e->on || e->ignoring)) {
        struct sl_logql_grouping g = {
            .present = e->on, .without = !e->on, .names = e->match, .n = e->nmatch};
        sl__logql_group_labels(a, many, &g, NULL, &base);
    }
    out->items = sl_arena_alloc(a, (base.n + e->ninclude + 1) * sizeof *out->items);
    out->n = 0;
    for (size_t i = 0; i < base.n; i++) {
        bool inc = false;
        for (size_t k = 0; k < e->ninclude; k++)
            inc |= sl_bytes_eq(e->include[k], base.items[i].name);
        if (!inc)
            out->items[out->n++] = base.items[i];
    }
    for (size_t k = 0; k < e->ninclude; k++)
        for (size_t i = 0; one && i < one->n; i++)
            if (sl_bytes_eq(one->items[i].name, e->include[k]) && one->items[i].value.len)
                out->items[out->n++] = one->items[i];
    qsort(out->items, out->n, sizeof *out->items, label_cmp);
}

static void set_op(struct sl__step *st, const struct sl_logql_binop_expr *e,
                   const struct sl__vres *l, const struct sl__vres *r, struct sl__vres *out)
{
    out->s = sl_arena_alloc(st->a, (l->n + r->n + 1) * sizeof *out->s);
    struct sl_bytes *ls = sl_arena_alloc(st->a, (l->n + 1) * sizeof *ls);
    struct sl_bytes *rs = sl_arena_alloc(st->a, (r->n + 1) * sizeof *rs);
    for (size_t i = 0; i < l->n; i++)
        ls[i] = signature(st->a, e, &l->s[i].ls);
    for (size_t i = 0; i < r->n; i++)
        rs[i] = signature(st->a, e, &r->s[i].ls);
    for (size_t i = 0; i < l->n; i++) {
        bool in_r = false;
        for (size_t j = 0; j < r->n && !in_r; j++)
            in_r = sl_bytes_eq(ls[i], rs[j]);
        if (e->op == SL_LOGQL_OP_OR || (e->op == SL_LOGQL_OP_AND) == in_r)
            out->s[out->n++] = l->s[i];
    }
    if (e->op != SL_LOGQL_OP_OR)
        return;
    for (size_t j = 0; j < r->n; j++) {
        bool in_l = false;
        for (size_t i = 0; i < l->n && !in_l; i++)
            in_l = sl_bytes_eq(ls[i], rs[j]);
        if (!in_l)
            out->s[out->n++] = r->s[j];
    }
}

static int fail(struct sl__step *st, const char *msg)
{
    if (!st->rc) {
        sl_buf_append_str(st->err, msg);
        st->rc = SL_EINVAL;
    }
    return st->rc;
}

static void vector_vector(struct sl__step *st, const struct sl_logql_binop_expr *e,
                          const struct sl__vres *l, const struct sl__vres *r, struct sl__vres *out)
{
    /* "many" side: lhs, or rhs for group_right */
    bool right = e->group > 0;
    const struct sl__vres *many = right ? r : l, *one = right ? l : r;
    struct sl_bytes *ms = sl_arena_alloc(st->a, (many->n + 1) * sizeof *ms);
    struct sl_bytes *os = sl_arena_alloc(st->a, (one->n + 1) * sizeof *os);
    for (size_t i = 0; i < one->n; i++) {
        os[i] = signature(st->a, e, &one->s[i].ls);
        for (size_t j = 0; j < i; j++)
            if (sl_bytes_eq(os[i], os[j])) {
                /* Loki's wording: the "one" side is the right one, or the left
                 * one for group_right */
                fail(st,
                     right ? "found duplicate series on the left hand-side;many-to-many matching "
                             "not allowed: matching labels must be unique on one side"
                           : "found duplicate series on the right hand-side;many-to-many matching "
                             "not allowed: matching labels must be unique on one side");
                return;
            }
    }
    out->s = sl_arena_alloc(st->a, (many->n + 1) * sizeof *out->s);
    for (size_t i = 0; i < many->n; i++) {
        ms[i] = signature(st->a, e, &many->s[i].ls);
        if (!e->group)
            for (size_t j = 0; j < i; j++)
                if (sl_bytes_eq(ms[i], ms[j])) {
                    fail(st, "multiple matches for labels: many-to-one matching must be "
                             "explicit (group_left/group_right)");
                    return;
                }
        size_t j = 0;
        while (j < one->n && !sl_bytes_eq(ms[i], os[j]))
            j++;
        if (j == one->n)
            continue;
        double a = right ? one->s[j].v : many->s[i].v, b = right ? many->s[i].v : one->s[j].v;
        double v;
        if (!binval(e, a, b, a, &v))
            continue;
        vsample *o = &out->s[out->n++];
        if (is_cmp(e->op) && !e->return_bool && !e->on && !e->ignoring && !e->group) {
            o->ls = many->s[i].ls;
        } else {
            result_labels(st->a, e, &many->s[i].ls, &one->s[j].ls, &o->ls);
        }
        o->key = sl__logql_labels_key(st->a, &o->ls);
        o->v = v;
        for (size_t k = 0; k + 1 < out->n; k++)
            if (sl_bytes_eq(out->s[k].key, o->key)) {
                fail(st, "multiple matches for labels: grouping labels must ensure unique "
                         "matches");
                return;
            }
    }
}

void sl__logql_binop(struct sl__step *st, const struct sl_logql_binop_expr *e,
                     const struct sl__vres *l, const struct sl__vres *r, struct sl__vres *out)
{
    memset(out, 0, sizeof *out);
    if (l->scalar && r->scalar) {
        double v;
        out->scalar = true;
        /* Loki folds scalar comparisons to 0/1, with or without bool */
        struct sl_logql_binop_expr as_bool = *e;
        as_bool.return_bool = true;
        binval(&as_bool, l->sv, r->sv, l->sv, &v);
        out->sv = v;
        return;
    }
    if (l->scalar || r->scalar) {
        const struct sl__vres *vec = l->scalar ? r : l;
        out->s = sl_arena_alloc(st->a, (vec->n + 1) * sizeof *out->s);
        for (size_t i = 0; i < vec->n; i++) {
            double a = l->scalar ? l->sv : vec->s[i].v, b = r->scalar ? r->sv : vec->s[i].v, v;
            if (!binval(e, a, b, vec->s[i].v, &v))
                continue;
            out->s[out->n++] = (vsample){vec->s[i].ls, vec->s[i].key, v};
        }
        return;
    }
    if (e->op <= SL_LOGQL_OP_UNLESS)
        set_op(st, e, l, r, out);
    else
        vector_vector(st, e, l, r, out);
}

/* ---- label_replace ---- */

static void expand(struct sl_buf *b, struct sl_bytes tmpl, struct sl_bytes src, const size_t *ov,
                   int ng, const struct sl_bytes *names, size_t nnames)
{
    for (size_t i = 0; i < tmpl.len; i++) {
        char c = tmpl.ptr[i];
        if (c != '$' || i + 1 >= tmpl.len) {
            sl_buf_append_char(b, c);
            continue;
        }
        if (tmpl.ptr[i + 1] == '$') {
            sl_buf_append_char(b, '$');
            i++;
            continue;
        }
        size_t j = i + 1, s0, s1;
        bool brace = tmpl.ptr[j] == '{';
        if (brace)
            j++;
        s0 = j;
        while (j < tmpl.len && (tmpl.ptr[j] == '_' || (tmpl.ptr[j] >= '0' && tmpl.ptr[j] <= '9') ||
                                ((tmpl.ptr[j] | 32) >= 'a' && (tmpl.ptr[j] | 32) <= 'z')))
            j++;
        s1 = j;
        if (s1 == s0 || (brace && (j >= tmpl.len || tmpl.ptr[j] != '}'))) {
            sl_buf_append_char(b, c); /* not a reference: a literal '$' */
            continue;
        }
        if (brace)
            j++;
        struct sl_bytes name = sl_bytes(tmpl.ptr + s0, s1 - s0);
        long g = -1;
        bool num = true;
        for (size_t k = 0; k < name.len; k++)
            num &= name.ptr[k] >= '0' && name.ptr[k] <= '9';
        if (num && name.len < 6) { /* name is not NUL-terminated: no strtol */
            g = 0;
            for (size_t k = 0; k < name.len; k++)
                g = g * 10 + (name.ptr[k] - '0');
        } else
            for (size_t k = 0; k < nnames; k++)
                if (sl_bytes_eq(names[k], name))
                    g = (long)k;
        if (g >= 0 && g < ng && ov[2 * g] != (size_t)-1)
            sl_buf_append(b, src.ptr + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        i = j - 1;
    }
}

void sl__logql_label_replace(struct sl__step *st, const struct sl_logql_label_replace_expr *e,
                             const struct sl__vres *in, struct sl__vres *out)
{
    *out = *in;
    if (in->scalar)
        return;
    out->s = sl_arena_alloc(st->a, (in->n + 1) * sizeof *out->s);
    struct sl_bytes *names;
    size_t nnames = sl__logql_regex_names(st->q, e->re, &names);
    size_t ov[2 * 32];
    for (size_t i = 0; i < in->n; i++) {
        vsample v = in->s[i];
        struct sl_bytes src = {"", 0};
        for (size_t k = 0; k < v.ls.n; k++)
            if (sl_bytes_eq(v.ls.items[k].name, e->src))
                src = v.ls.items[k].value;
        int ng = sl__logql_regex_exec(st->q, e->re, src, 0, ov, 2 * 32);
        if (ng > 0) {
            struct sl_buf b = SL_BUF_INIT;
            expand(&b, e->repl, src, ov, ng, names, nnames);
            struct sl_labels nl;
            nl.items = sl_arena_alloc(st->a, (v.ls.n + 1) * sizeof *nl.items);
            nl.n = 0;
            for (size_t k = 0; k < v.ls.n; k++)
                if (!sl_bytes_eq(v.ls.items[k].name, e->dst))
                    nl.items[nl.n++] = v.ls.items[k];
            if (b.len)
                nl.items[nl.n++] =
                    (struct sl_label){e->dst, sl_arena_bytes(st->a, sl_buf_bytes(&b))};
            sl_buf_release(&b);
            qsort(nl.items, nl.n, sizeof *nl.items, label_cmp);
            v.ls = nl;
            v.key = sl__logql_labels_key(st->a, &nl);
        }
        out->s[i] = v;
    }
    out->n = in->n;
}
