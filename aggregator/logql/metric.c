/* Metric queries with Loki's semantics.
 *
 * Every range aggregation of the query is a source: the caller feeds it the
 * entries of the matching streams; its pipeline turns each entry into a
 * sample (1, the line's bytes, or the unwrapped value) of a series named by
 * the labels after the pipeline (grouped: the range aggregation's by/without,
 * or the `sum by` pushed down as Loki does; the unwrapped label is dropped
 * unless kept by `by`; a series with __error__ keeps all its labels).
 * Then the expression is evaluated at each step t = start, start+step, ...
 * <= end: a range aggregation reads the samples with t-offset-range < ts <=
 * t-offset; a window without samples gives no point (absent_over_time gives
 * 1 exactly then). A series with __error__ fails the query with Loki's
 * pipeline error. Results: a matrix sorted by labels (range queries), a
 * vector sorted by labels unless the query ends in sort/sort_desc (instant),
 * or a scalar. Values and timestamps are written as Loki writes them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/metric_int.h"
#include "aggregator/logql/pipeline_int.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/jsonw.h"
#include "common/mem.h"

struct sample {
    int64_t ts;
    double v;
};

struct mseries {
    struct sl_labels ls;
    struct sl_bytes key;
    bool has_error;
    struct sample *s;
    size_t n, cap;
    bool unsorted;
    size_t lo, hi; /* window cursor */
};

/* Open-addressing map from canonical label text to an index. */
struct keymap {
    uint32_t *tab; /* index + 1; 0 empty */
    size_t cap, n;
};

struct source {
    const struct sl_logql_range_expr *r;
    const struct sl_logql_grouping *push; /* sum by (...) pushed down */
    struct sl_logql_pipeline *p;
    struct mseries *series;
    size_t n, cap;
    struct keymap map;
    struct sl_arena arena;
    struct sl_buf key;
    int64_t from, through;
    bool by_mode;        /* samples keyed by the by (...) labels alone */
    struct sl_bytes *by; /* the by (...) names, sorted and unique */
    size_t nby;
    struct sl_label *by_items;
    struct sl_bytes *hint; /* parser hints (set_hints) */
    size_t nhint;
};

struct outseries {
    struct sl_labels ls;
    struct sl_bytes key;
    int64_t *ts; /* ms */
    double *v;
    size_t n, cap;
};

struct sl_logql_metric {
    struct sl_logql_query *q;
    struct sl_logql_metric_params pr;
    struct source *src;
    size_t nsrc;
    struct outseries *out;
    size_t nout, capout;
    struct keymap outmap;
    struct sl_arena arena; /* output labels */
    bool scalar, keep_order, evaluated;
    uint64_t lines, bytes;
};

/* ---- key map ---- */

static uint32_t *map_slot(struct keymap *m, struct sl_bytes key, const void *base, size_t stride,
                          size_t key_off)
{
    uint64_t h = sl_xxh3(key.ptr ? key.ptr : "", key.len);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (m->tab[i] == 0)
            return &m->tab[i];
        const struct sl_bytes *k =
            (const struct sl_bytes *)((const char *)base + (m->tab[i] - 1) * stride + key_off);
        if (sl_bytes_eq(*k, key))
            return &m->tab[i];
    }
}

static void map_grow(struct keymap *m, const void *base, size_t stride, size_t key_off)
{
    size_t ncap = m->cap ? 2 * m->cap : 64;
    uint32_t *old = m->tab;
    size_t ocap = m->cap;
    m->tab = sl_calloc(ncap, sizeof *m->tab);
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i])
            continue;
        const struct sl_bytes *k =
            (const struct sl_bytes *)((const char *)base + (old[i] - 1) * stride + key_off);
        *map_slot(m, *k, base, stride, key_off) = old[i];
    }
    sl_free(old);
}

struct sl_bytes sl__logql_labels_key(struct sl_arena *a, const struct sl_labels *ls)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_labels_format(ls, &b);
    struct sl_bytes k = sl_arena_bytes(a, sl_buf_bytes(&b));
    sl_buf_release(&b);
    return k;
}

/* ---- grouping ---- */

static int label_cmp(const void *a, const void *b)
{
    const struct sl_label *x = a, *y = b;
    return sl_bytes_cmp(x->name, y->name);
}

static bool in_names(struct sl_bytes n, const struct sl_bytes *names, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (sl_bytes_eq(names[i], n))
            return true;
    return false;
}

void sl__logql_group_labels(struct sl_arena *a, const struct sl_labels *in,
                            const struct sl_logql_grouping *g, const struct sl_bytes *extra_drop,
                            struct sl_labels *out)
{
    out->items = sl_arena_alloc(a, (in->n + 1) * sizeof *out->items);
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        struct sl_bytes n = in->items[i].name;
        bool listed = g && in_names(n, g->names, g->n);
        bool keep = g && g->present && !g->without ? listed : !listed;
        if (extra_drop && sl_bytes_eq(n, *extra_drop) && !(g && g->present && !g->without))
            keep = false;
        if (keep && in->items[i].value.len)
            out->items[out->n++] = in->items[i];
    }
}

/* ---- sources ---- */

static struct mseries *source_series(struct source *s, const struct sl_labels *ls, bool err)
{
    sl_buf_clear(&s->key);
    sl_labels_format(ls, &s->key);
    struct sl_bytes key = sl_buf_bytes(&s->key);
    if (s->map.n * 2 >= s->map.cap)
        map_grow(&s->map, s->series, sizeof *s->series, offsetof(struct mseries, key));
    uint32_t *slot =
        map_slot(&s->map, key, s->series, sizeof *s->series, offsetof(struct mseries, key));
    if (*slot)
        return &s->series[*slot - 1];
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->series = sl_reallocarray(s->series, s->cap, sizeof *s->series);
    }
    struct mseries *ms = &s->series[s->n];
    memset(ms, 0, sizeof *ms);
    sl_labels_copy(&s->arena, ls, &ms->ls);
    ms->key = sl_arena_bytes(&s->arena, key);
    ms->has_error = err;
    *slot = (uint32_t)++s->n;
    s->map.n++;
    return ms;
}

static void add_sample(struct mseries *ms, int64_t ts, double v)
{
    if (ms->n == ms->cap) {
        ms->cap = ms->cap ? 2 * ms->cap : 8;
        ms->s = sl_reallocarray(ms->s, ms->cap, sizeof *ms->s);
    }
    if (ms->n && ts < ms->s[ms->n - 1].ts)
        ms->unsorted = true;
    ms->s[ms->n++] = (struct sample){ts, v};
}

static bool is_unwrap(const struct sl_logql_range_expr *r)
{
    return r->conv != SL_LOGQL_UNWRAP_NONE;
}

static void conv_details(struct sl__logql_lb *lb, enum sl_logql_unwrap_conv c, struct sl_bytes v)
{
    struct sl_buf b = SL_BUF_INIT;
    if (c == SL_LOGQL_UNWRAP_DURATION || c == SL_LOGQL_UNWRAP_DURATION_SECONDS)
        sl__logql_go_duration_error(&b, v);
    else if (c == SL_LOGQL_UNWRAP_BYTES)
        sl__logql_bytes_error(&b, v);
    else
        sl__logql_float_error(&b, v);
    sl__logql_lb_set_err(lb, SL__ERR_SAMPLE, sl_arena_bytes(lb->scratch, sl_buf_bytes(&b)));
    sl_buf_release(&b);
}

void sl_logql_metric_entry(struct sl_logql_metric *m, size_t i, int64_t ts, struct sl_bytes line)
{
    struct source *s = &m->src[i];
    const struct sl_logql_range_expr *r = s->r;
    m->lines++;
    m->bytes += line.len;
    if (ts < s->from || ts >= s->through)
        return;
    if (!sl__logql_pipeline_process(s->p, ts, &line))
        return;
    struct sl__logql_lb *lb = sl__logql_pipeline_lb(s->p);
    double v = 1;
    if (r->op == SL_LOGQL_R_BYTES || r->op == SL_LOGQL_R_BYTES_RATE)
        v = (double)line.len;
    if (is_unwrap(r)) {
        struct sl_bytes sv;
        if (!sl__logql_lb_get(lb, r->unwrap_label, &sv) || sv.len == 0)
            return; /* Loki: a line without the label gives no sample */
        if (!sl_logql_unwrap_convert(r->conv, sv, &v)) {
            v = 0;
            conv_details(lb, r->conv, sv);
        }
        for (size_t k = 0; k < r->npost; k++)
            if (!sl__logql_lf_eval(m->q, lb, r->post[k]))
                return;
    }
    bool err = lb->err.len > 0;
    struct sl_labels grouped;
    const struct sl_logql_grouping *g = s->push ? s->push : &r->grouping;
    if (!err && s->by_mode) {
        /* by (...): read just those labels, no full label set per line */
        grouped.items = s->by_items;
        grouped.n = 0;
        for (size_t k = 0; k < s->nby; k++) {
            struct sl_bytes v;
            if (sl__logql_lb_get(lb, s->by[k], &v) && v.len)
                grouped.items[grouped.n++] = (struct sl_label){s->by[k], v};
        }
        add_sample(source_series(s, &grouped, false), ts, v);
        return;
    }
    const struct sl_labels *ls = sl__logql_pipeline_labels(s->p);
    if (!err && (g->present || is_unwrap(r))) {
        sl__logql_group_labels(sl__logql_pipeline_scratch(s->p), ls, g,
                               is_unwrap(r) ? &r->unwrap_label : NULL, &grouped);
        ls = &grouped;
    }
    add_sample(source_series(s, ls, err), ts, v);
}

void sl_logql_metric_entry_meta(struct sl_logql_metric *m, size_t i, int64_t ts,
                                struct sl_bytes line, const struct sl_label *meta, size_t nmeta)
{
    sl__logql_pipeline_set_meta(m->src[i].p, meta, nmeta);
    sl_logql_metric_entry(m, i, ts, line);
    sl__logql_pipeline_set_meta(m->src[i].p, NULL, 0); /* when out of range */
}

bool sl_logql_metric_stream(struct sl_logql_metric *m, size_t i, const struct sl_labels *ls)
{
    struct source *s = &m->src[i];
    if (!sl_logql_match_labels(m->q, &s->r->log, ls))
        return false;
    sl_logql_pipeline_stream(s->p, ls);
    return true;
}

size_t sl_logql_metric_nsources(const struct sl_logql_metric *m)
{
    return m->nsrc;
}

const struct sl_logql_log_expr *sl_logql_metric_source(const struct sl_logql_metric *m, size_t i,
                                                       int64_t *from, int64_t *through)
{
    *from = m->src[i].from;
    *through = m->src[i].through;
    return &m->src[i].r->log;
}

static int bytes_cmp(const void *a, const void *b)
{
    return sl_bytes_cmp(*(const struct sl_bytes *)a, *(const struct sl_bytes *)b);
}

/* by (...) on the range aggregation, or pushed down from sum by (...); a
 * pushed-down sum without grouping keys every sample to {}. */
static void prepare_by(struct source *s, const struct sl_logql_grouping *g)
{
    if (g->without || (!g->present && g != s->push))
        return;
    s->by_mode = true;
    s->by = sl_arena_alloc(&s->arena, (g->n + 1) * sizeof *s->by);
    if (g->n) {
        memcpy(s->by, g->names, g->n * sizeof *s->by);
        qsort(s->by, g->n, sizeof *s->by, bytes_cmp);
    }
    for (size_t i = 0; i < g->n; i++)
        if (s->nby == 0 || !sl_bytes_eq(s->by[s->nby - 1], s->by[i]))
            s->by[s->nby++] = s->by[i];
    s->by_items = sl_arena_alloc(&s->arena, (s->nby + 1) * sizeof *s->by_items);
}

static void hint_add(struct source *s, struct sl_bytes name)
{
    for (size_t i = 0; i < s->nhint; i++)
        if (sl_bytes_eq(s->hint[i], name))
            return;
    if (s->nhint < 64)
        s->hint[s->nhint] = name;
    s->nhint++;
}

static void hint_filter(struct source *s, const struct sl_logql_label_filter *f)
{
    if (f->kind == SL_LOGQL_LF_AND || f->kind == SL_LOGQL_LF_OR) {
        hint_filter(s, f->l);
        hint_filter(s, f->r);
    } else {
        hint_add(s, f->m.name);
    }
}

/* Loki's parser hints: with `by (...)`, a pipeline of line filters, json,
 * logfmt and unpack parsers and label filters needs only the grouped labels,
 * the filtered ones and the unwrapped one; a parser extracts just those and
 * stops once it has them all, and a later parser does not run at all once
 * they are all there (Loki's NoLabels/AllRequiredExtracted). */
static void set_hints(struct source *s)
{
    const struct sl_logql_range_expr *r = s->r;
    if (!s->by_mode)
        return;
    s->hint = sl_arena_alloc(&s->arena, 64 * sizeof *s->hint);
    size_t parsers = 0;
    for (size_t i = 0; i < r->log.nstages; i++) {
        const struct sl_logql_stage *st = &r->log.stages[i];
        if (st->kind == SL_LOGQL_STAGE_LABEL_FILTER)
            hint_filter(s, st->lf);
        else if (((st->kind == SL_LOGQL_STAGE_JSON || st->kind == SL_LOGQL_STAGE_LOGFMT) &&
                  st->nex == 0) ||
                 st->kind == SL_LOGQL_STAGE_UNPACK)
            parsers++;
        else if (st->kind != SL_LOGQL_STAGE_LINE_FILTER)
            return;
    }
    for (size_t i = 0; i < r->npost; i++)
        hint_filter(s, r->post[i]);
    if (r->conv != SL_LOGQL_UNWRAP_NONE)
        hint_add(s, r->unwrap_label);
    for (size_t i = 0; i < s->nby; i++)
        hint_add(s, s->by[i]);
    if (parsers >= 1 && s->nhint <= 64)
        sl__logql_pipeline_hint(s->p, s->hint, s->nhint);
}

static bool pushable(const struct sl_logql_vecagg_expr *a, const struct sl_logql_range_expr *r)
{
    if (a->op != SL_LOGQL_V_SUM || r->grouping.present)
        return false;
    switch (r->op) {
    case SL_LOGQL_R_COUNT:
    case SL_LOGQL_R_RATE:
    case SL_LOGQL_R_BYTES:
    case SL_LOGQL_R_BYTES_RATE:
    case SL_LOGQL_R_SUM:
        return true;
    default:
        return false;
    }
}

static void collect_sources(struct sl_logql_metric *m, const struct sl_logql_expr *e,
                            const struct sl_logql_grouping *push)
{
    switch (e->kind) {
    case SL_LOGQL_EXPR_RANGE: {
        m->src = sl_reallocarray(m->src, m->nsrc + 1, sizeof *m->src);
        struct source *s = &m->src[m->nsrc++];
        memset(s, 0, sizeof *s);
        s->r = &e->u.range;
        s->push = push;
        s->p = sl_logql_pipeline_new(m->q, &e->u.range.log);
        sl_arena_init(&s->arena, 0);
        sl_buf_init(&s->key);
        int64_t first = m->pr.start_ns - s->r->offset_ns - s->r->range_ns;
        s->from = first + 1;
        s->through = m->pr.end_ns - s->r->offset_ns + 1;
        prepare_by(s, push ? push : &s->r->grouping);
        set_hints(s);
        return;
    }
    case SL_LOGQL_EXPR_VECAGG: {
        const struct sl_logql_vecagg_expr *a = &e->u.agg;
        bool p = a->inner->kind == SL_LOGQL_EXPR_RANGE && pushable(a, &a->inner->u.range);
        collect_sources(m, a->inner, p ? &a->grouping : NULL);
        return;
    }
    case SL_LOGQL_EXPR_BINOP:
        collect_sources(m, e->u.bin.lhs, NULL);
        collect_sources(m, e->u.bin.rhs, NULL);
        return;
    case SL_LOGQL_EXPR_LABEL_REPLACE:
        collect_sources(m, e->u.lr.inner, NULL);
        return;
    default:
        return;
    }
}

/* As Loki (Sortable): an instant result keeps the order the evaluation
 * gave it when a sort or sort_desc appears anywhere in the query
 * (`sort(x) + 1` stays sorted); otherwise it is sorted by labels. */
static bool has_sort(const struct sl_logql_expr *e)
{
    switch (e->kind) {
    case SL_LOGQL_EXPR_VECAGG:
        return e->u.agg.op == SL_LOGQL_V_SORT || e->u.agg.op == SL_LOGQL_V_SORT_DESC ||
               has_sort(e->u.agg.inner);
    case SL_LOGQL_EXPR_BINOP:
        return has_sort(e->u.bin.lhs) || has_sort(e->u.bin.rhs);
    case SL_LOGQL_EXPR_LABEL_REPLACE:
        return has_sort(e->u.lr.inner);
    default:
        return false;
    }
}

int sl_logql_metric_new(struct sl_logql_query *q, const struct sl_logql_metric_params *pr,
                        struct sl_logql_metric **out, struct sl_buf *err)
{
    *out = NULL;
    if (!q->root || q->root->kind == SL_LOGQL_EXPR_LOG) {
        sl_buf_append_str(err, "not a metric query");
        return SL_EINVAL;
    }
    if (!pr->instant && (pr->step_ns <= 0 || pr->end_ns < pr->start_ns)) {
        sl_buf_append_str(err, "zero or negative query resolution step widths are not accepted. "
                               "Try a positive integer");
        return SL_EINVAL;
    }
    struct sl_logql_metric *m = SL_NEW(struct sl_logql_metric);
    m->q = q;
    m->pr = *pr;
    if (pr->instant)
        m->pr.end_ns = m->pr.start_ns;
    sl_arena_init(&m->arena, 0);
    const struct sl_logql_expr *e = q->root;
    m->keep_order = pr->instant && has_sort(e);
    collect_sources(m, e, NULL);
    *out = m;
    return 0;
}

void sl_logql_metric_free(struct sl_logql_metric *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nsrc; i++) {
        struct source *s = &m->src[i];
        for (size_t k = 0; k < s->n; k++)
            sl_free(s->series[k].s);
        sl_free(s->series);
        sl_free(s->map.tab);
        sl_arena_release(&s->arena);
        sl_buf_release(&s->key);
        sl_logql_pipeline_free(s->p);
    }
    sl_free(m->src);
    for (size_t i = 0; i < m->nout; i++) {
        sl_free(m->out[i].ts);
        sl_free(m->out[i].v);
    }
    sl_free(m->out);
    sl_free(m->outmap.tab);
    sl_arena_release(&m->arena);
    sl_free(m);
}

/* ---- range functions over one window ---- */

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double q, double *v, size_t n)
{
    if (q != q)
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(v, n, sizeof *v, dbl_cmp);
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)rank, hi = lo + 1 < n ? lo + 1 : lo;
    double w = rank - (double)lo;
    return v[lo] * (1 - w) + v[hi] * w;
}

static double rate_counter(const struct sample *s, size_t n, int64_t wstart, int64_t wend,
                           double range_s)
{
    if (n < 2)
        return 0;
    double result = s[n - 1].v - s[0].v, last = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].v < last)
            result += last;
        last = s[i].v;
    }
    double to_start = (double)(s[0].ts - wstart) / 1e9;
    double to_end = (double)(wend - s[n - 1].ts) / 1e9;
    double sampled = (double)(s[n - 1].ts - s[0].ts) / 1e9;
    double avg = sampled / (double)(n - 1);
    /* Prometheus' order (as Loki uses it): a sample farther than 1.1 average
     * intervals from an edge extrapolates half an interval only; then the
     * counter's zero point may shorten the start side further. */
    double thr = avg * 1.1;
    if (to_start >= thr)
        to_start = avg / 2;
    if (to_end >= thr)
        to_end = avg / 2;
    if (result > 0 && s[0].v >= 0) {
        double to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double interval = sampled + to_start + to_end;
    if (sampled == 0)
        return 0;
    return result * (interval / sampled) / range_s;
}

static double range_value(const struct sl_logql_range_expr *r, const struct sample *s, size_t n,
                          int64_t wstart, int64_t wend, struct sl_arena *a)
{
    double range_s = (double)r->range_ns / 1e9, acc = 0;
    switch (r->op) {
    case SL_LOGQL_R_COUNT:
        return (double)n;
    case SL_LOGQL_R_RATE:
        if (!is_unwrap(r))
            return (double)n / range_s;
        for (size_t i = 0; i < n; i++) /* with unwrap: the values' sum per second */
            acc += s[i].v;
        return acc / range_s;
    case SL_LOGQL_R_BYTES_RATE:
        for (size_t i = 0; i < n; i++)
            acc += s[i].v;
        return acc / range_s;
    case SL_LOGQL_R_BYTES:
    case SL_LOGQL_R_SUM:
        for (size_t i = 0; i < n; i++)
            acc += s[i].v;
        return acc;
    case SL_LOGQL_R_AVG: {
        double mean = 0;
        for (size_t i = 0; i < n; i++) { /* Loki's incremental mean, same rounding */
            double c = (double)(i + 1);
            if (isinf(mean) && (isinf(s[i].v) ? (mean > 0) == (s[i].v > 0) : s[i].v == s[i].v))
                continue;
            mean += s[i].v / c - mean / c;
        }
        return mean;
    }
    case SL_LOGQL_R_MIN:
    case SL_LOGQL_R_MAX:
        acc = s[0].v;
        for (size_t i = 1; i < n; i++)
            if (r->op == SL_LOGQL_R_MIN ? (s[i].v < acc || acc != acc)
                                        : (s[i].v > acc || acc != acc))
                acc = s[i].v;
        return acc;
    case SL_LOGQL_R_STDVAR:
    case SL_LOGQL_R_STDDEV: {
        double mean = 0, m2 = 0;
        for (size_t i = 0; i < n; i++) {
            double d = s[i].v - mean;
            mean += d / (double)(i + 1);
            m2 += d * (s[i].v - mean);
        }
        double var = m2 / (double)n;
        return r->op == SL_LOGQL_R_STDVAR ? var : sqrt(var);
    }
    case SL_LOGQL_R_FIRST:
        return s[0].v;
    case SL_LOGQL_R_LAST:
        return s[n - 1].v;
    case SL_LOGQL_R_QUANTILE: {
        double *v = sl_arena_alloc(a, n * sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = s[i].v;
        return quantile(r->param, v, n);
    }
    case SL_LOGQL_R_RATE_COUNTER:
        return rate_counter(s, n, wstart, wend, range_s);
    case SL_LOGQL_R_ABSENT:
        return 1;
    }
    return 0;
}

static int sample_cmp(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* ---- evaluation ---- */

static void pipeline_error(struct sl__step *st, const struct mseries *ms)
{
    if (st->rc)
        return;
    struct sl_bytes e = {"", 0};
    for (size_t i = 0; i < ms->ls.n; i++)
        if (sl_bytes_eq_str(ms->ls.items[i].name, SL__ERROR_LABEL))
            e = ms->ls.items[i].value;
    sl_buf_appendf(
        st->err,
        "pipeline error: '%.*s' for series: '%.*s'.\n"
        "Use a label filter to intentionally skip this error. (e.g | __error__!=\"%.*s\").\n"
        "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
        "The label filter can also be specified after unwrap. (e.g | unwrap latency | "
        "__error__=\"\" )\n",
        (int)e.len, e.ptr, (int)ms->key.len, ms->key.ptr, (int)e.len, e.ptr);
    st->rc = SL_EINVAL;
}

/* Labels of absent_over_time: the selector's equality matchers. */
static void absent_labels(struct sl_arena *a, const struct sl_logql_range_expr *r,
                          struct sl_labels *out)
{
    const struct sl_logql_log_expr *e = &r->log;
    out->items = sl_arena_alloc(a, (e->nmatchers + 1) * sizeof *out->items);
    out->n = 0;
    for (size_t i = 0; i < e->nmatchers; i++) {
        const struct sl_logql_matcher *mt = &e->matchers[i];
        if (mt->op != SL_LOGQL_MATCH_EQ)
            continue;
        bool dup = false;
        for (size_t k = 0; k < e->nmatchers; k++)
            dup |= k != i && sl_bytes_eq(e->matchers[k].name, mt->name);
        if (!dup)
            out->items[out->n++] = (struct sl_label){mt->name, mt->value};
    }
    qsort(out->items, out->n, sizeof *out->items, label_cmp);
}

static void eval_range(struct sl_logql_metric *m, struct sl__step *st, struct source *s, int64_t t,
                       struct sl__vres *out)
{
    const struct sl_logql_range_expr *r = s->r;
    int64_t wend = t - r->offset_ns, wstart = wend - r->range_ns;
    out->scalar = false;
    out->s = sl_arena_alloc(st->a, (s->n + 1) * sizeof *out->s);
    out->n = 0;
    size_t present = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct mseries *ms = &s->series[i];
        while (ms->lo < ms->n && ms->s[ms->lo].ts <= wstart)
            ms->lo++;
        if (ms->hi < ms->lo)
            ms->hi = ms->lo;
        while (ms->hi < ms->n && ms->s[ms->hi].ts <= wend)
            ms->hi++;
        size_t n = ms->hi - ms->lo;
        if (n == 0)
            continue;
        present++;
        if (ms->has_error) {
            pipeline_error(st, ms);
            return;
        }
        if (r->op == SL_LOGQL_R_ABSENT)
            continue;
        out->s[out->n++] = (struct sl__vsample){
            ms->ls, ms->key, range_value(r, ms->s + ms->lo, n, wstart, wend, st->a)};
    }
    if (r->op == SL_LOGQL_R_ABSENT && present == 0) {
        struct sl__vsample *v = &out->s[out->n++];
        absent_labels(st->a, r, &v->ls);
        v->key = sl__logql_labels_key(st->a, &v->ls);
        v->v = 1;
    }
    (void)m;
}

static size_t source_index(struct sl_logql_metric *m, const struct sl_logql_range_expr *r)
{
    for (size_t i = 0; i < m->nsrc; i++)
        if (m->src[i].r == r)
            return i;
    return 0;
}

static void eval_expr(struct sl_logql_metric *m, struct sl__step *st, const struct sl_logql_expr *e,
                      int64_t t, struct sl__vres *out)
{
    memset(out, 0, sizeof *out);
    if (st->rc)
        return;
    struct sl__vres a, b;
    switch (e->kind) {
    case SL_LOGQL_EXPR_RANGE:
        eval_range(m, st, &m->src[source_index(m, &e->u.range)], t, out);
        return;
    case SL_LOGQL_EXPR_LITERAL:
        out->scalar = true;
        out->sv = e->u.literal;
        return;
    case SL_LOGQL_EXPR_VECTOR:
        out->s = sl_arena_calloc(st->a, sizeof *out->s);
        out->s[0].v = e->u.literal;
        out->s[0].key = SL_BYTES_LIT("{}");
        out->n = 1;
        return;
    case SL_LOGQL_EXPR_VECAGG:
        eval_expr(m, st, e->u.agg.inner, t, &a);
        if (!st->rc)
            sl__logql_vecagg(st, &e->u.agg, &a, out);
        return;
    case SL_LOGQL_EXPR_BINOP:
        eval_expr(m, st, e->u.bin.lhs, t, &a);
        eval_expr(m, st, e->u.bin.rhs, t, &b);
        if (!st->rc)
            sl__logql_binop(st, &e->u.bin, &a, &b, out);
        return;
    case SL_LOGQL_EXPR_LABEL_REPLACE:
        eval_expr(m, st, e->u.lr.inner, t, &a);
        if (!st->rc)
            sl__logql_label_replace(st, &e->u.lr, &a, out);
        return;
    case SL_LOGQL_EXPR_LOG:
        return;
    }
}

static struct outseries *out_series(struct sl_logql_metric *m, const struct sl__vsample *v)
{
    if (m->outmap.n * 2 >= m->outmap.cap)
        map_grow(&m->outmap, m->out, sizeof *m->out, offsetof(struct outseries, key));
    uint32_t *slot =
        map_slot(&m->outmap, v->key, m->out, sizeof *m->out, offsetof(struct outseries, key));
    if (*slot)
        return &m->out[*slot - 1];
    if (m->nout == m->capout) {
        m->capout = m->capout ? 2 * m->capout : 16;
        m->out = sl_reallocarray(m->out, m->capout, sizeof *m->out);
    }
    struct outseries *o = &m->out[m->nout];
    memset(o, 0, sizeof *o);
    sl_labels_copy(&m->arena, &v->ls, &o->ls);
    o->key = sl_arena_bytes(&m->arena, v->key);
    *slot = (uint32_t)++m->nout;
    m->outmap.n++;
    return o;
}

static void out_point(struct outseries *o, int64_t ts_ms, double v)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->ts = sl_reallocarray(o->ts, o->cap, sizeof *o->ts);
        o->v = sl_reallocarray(o->v, o->cap, sizeof *o->v);
    }
    o->ts[o->n] = ts_ms;
    o->v[o->n++] = v;
}

static int out_cmp(const void *a, const void *b)
{
    const struct outseries *x = a, *y = b;
    size_t n = x->ls.n < y->ls.n ? x->ls.n : y->ls.n;
    for (size_t i = 0; i < n; i++) {
        int c = sl_bytes_cmp(x->ls.items[i].name, y->ls.items[i].name);
        if (c)
            return c;
        if ((c = sl_bytes_cmp(x->ls.items[i].value, y->ls.items[i].value)))
            return c;
    }
    return x->ls.n < y->ls.n ? -1 : x->ls.n > y->ls.n;
}

int sl_logql_metric_eval(struct sl_logql_metric *m, struct sl_buf *err)
{
    for (size_t i = 0; i < m->nsrc; i++)
        for (size_t k = 0; k < m->src[i].n; k++)
            if (m->src[i].series[k].unsorted)
                qsort(m->src[i].series[k].s, m->src[i].series[k].n, sizeof(struct sample),
                      sample_cmp);
    struct sl_arena a;
    sl_arena_init(&a, 0);
    struct sl__step st = {.a = &a, .err = err, .q = m->q};
    int64_t step = m->pr.instant ? 1 : m->pr.step_ns;
    for (int64_t t = m->pr.start_ns; t <= m->pr.end_ns && !st.rc; t += step) {
        sl_arena_clear(&a);
        struct sl__vres r;
        eval_expr(m, &st, m->q->root, t, &r);
        if (st.rc)
            break;
        int64_t ms = t / 1000000;
        if (r.scalar) {
            struct sl__vsample v = {{NULL, 0}, SL_BYTES_LIT("{}"), r.sv};
            m->scalar = true;
            out_point(out_series(m, &v), ms, r.sv);
            continue;
        }
        for (size_t i = 0; i < r.n; i++) {
            out_point(out_series(m, &r.s[i]), ms, r.s[i].v);
            if (m->pr.max_series && m->nout > m->pr.max_series) {
                sl_buf_appendf(err, "maximum of series (%zu) reached for a single query",
                               m->pr.max_series);
                st.rc = SL_ETOOBIG;
                break;
            }
        }
    }
    sl_arena_release(&a);
    if (st.rc)
        return st.rc;
    if (!m->keep_order && m->nout > 1)
        qsort(m->out, m->nout, sizeof *m->out, out_cmp);
    m->evaluated = true;
    return 0;
}

/* ---- results ---- */

const char *sl_logql_metric_result_type(const struct sl_logql_metric *m)
{
    if (m->pr.instant)
        return m->scalar ? "scalar" : "vector";
    return "matrix";
}

size_t sl_logql_metric_nseries(const struct sl_logql_metric *m)
{
    return m->nout;
}

const struct sl_labels *sl_logql_metric_series(const struct sl_logql_metric *m, size_t i,
                                               const int64_t **ts_ms, const double **vals,
                                               size_t *npoints)
{
    *ts_ms = m->out[i].ts;
    *vals = m->out[i].v;
    *npoints = m->out[i].n;
    return &m->out[i].ls;
}

uint64_t sl_logql_metric_lines(const struct sl_logql_metric *m)
{
    return m->lines;
}

uint64_t sl_logql_metric_bytes(const struct sl_logql_metric *m)
{
    return m->bytes;
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64). */
static void format_f(struct sl_buf *b, double v)
{
    if (v != v) {
        sl_buf_append_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sl_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[400];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    int exp = atoi(strchr(tmp, 'e') + 1);
    int dec = prec - 1 - exp;
    snprintf(tmp, sizeof tmp, "%.*f", dec > 0 ? dec : 0, v);
    sl_buf_append_str(b, tmp);
}

void sl_logql_write_point(struct sl_jsonw *w, int64_t ms, double v)
{
    struct sl_buf *b = w->out;
    sl_jsonw_arr_open(w);
    /* model.Time: seconds with the milliseconds, trailing zeros dropped */
    char ts[48];
    long long sec = (long long)(ms / 1000), frac = (long long)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    if (frac == 0)
        snprintf(ts, sizeof ts, "%lld", sec);
    else if (frac % 100 == 0)
        snprintf(ts, sizeof ts, "%lld.%lld", sec, frac / 100);
    else if (frac % 10 == 0)
        snprintf(ts, sizeof ts, "%lld.%02lld", sec, frac / 10);
    else
        snprintf(ts, sizeof ts, "%lld.%03lld", sec, frac);
    /* raw number: let the writer place the comma, then append */
    sl_jsonw_i64(w, 0);
    b->len--; /* drop the placeholder 0 */
    sl_buf_append_str(b, ts);
    struct sl_buf val = SL_BUF_INIT;
    format_f(&val, v);
    sl_jsonw_bytes(w, sl_buf_bytes(&val));
    sl_buf_release(&val);
    sl_jsonw_arr_close(w);
}

void sl_logql_write_labels(struct sl_jsonw *w, const struct sl_labels *ls)
{
    sl_jsonw_obj_open(w);
    for (size_t i = 0; i < ls->n; i++) {
        sl_jsonw_key_bytes(w, ls->items[i].name);
        sl_jsonw_bytes(w, ls->items[i].value);
    }
    sl_jsonw_obj_close(w);
}

void sl_logql_metric_write(struct sl_logql_metric *m, struct sl_jsonw *w)
{
    const char *type = sl_logql_metric_result_type(m);
    sl_jsonw_key(w, "resultType");
    sl_jsonw_str(w, type);
    sl_jsonw_key(w, "result");
    if (strcmp(type, "scalar") == 0) {
        if (m->nout && m->out[0].n)
            sl_logql_write_point(w, m->out[0].ts[0], m->out[0].v[0]);
        else
            sl_logql_write_point(w, m->pr.start_ns / 1000000, 0);
        return;
    }
    sl_jsonw_arr_open(w);
    for (size_t i = 0; i < m->nout; i++) {
        const struct outseries *o = &m->out[i];
        sl_jsonw_obj_open(w);
        sl_jsonw_key(w, "metric");
        sl_logql_write_labels(w, &o->ls);
        if (m->pr.instant) {
            sl_jsonw_key(w, "value");
            sl_logql_write_point(w, o->ts[0], o->v[0]);
        } else {
            sl_jsonw_key(w, "values");
            sl_jsonw_arr_open(w);
            for (size_t k = 0; k < o->n; k++)
                sl_logql_write_point(w, o->ts[k], o->v[k]);
            sl_jsonw_arr_close(w);
        }
        sl_jsonw_obj_close(w);
    }
    sl_jsonw_arr_close(w);
}
