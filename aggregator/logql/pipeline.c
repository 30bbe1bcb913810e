/* Pipeline execution: the label builder and every stage but the parsers
 * (parsers.c). Loki's rules kept here:
 *
 * - Label filters: a string matcher compares the value ("" when absent;
 *   __error__ reads the error). A number, duration or bytes filter drops a
 *   line without the label; a value that does not convert sets
 *   __error__=LabelFilterErr (unless an error is set already) and keeps the
 *   line. `and` evaluates both sides, `or` stops at the first true.
 * - line_format renders with the labels as they are; an execution error
 *   sets TemplateFormatErr and leaves the line unchanged.
 * - label_format templates all see the labels from before the stage; a
 *   rename of an absent label does nothing.
 * - drop/keep never remove __error__/__error_details__ unless named by drop.
 * - Errors become the labels __error__ and __error_details__.
 *
 * Memory: per line, everything goes to a scratch arena cleared at the next
 * line; the arrays of the builder are reused. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/pipeline_int.h"
#include "aggregator/logql/regex.h"
#include "common/mem.h"

struct sl_logql_pipeline {
    struct sl_logql_query *q;
    const struct sl_logql_log_expr *e;
    struct sl_arena scratch;
    struct sl__logql_lb lb;
    struct sl_label *out;
    size_t capout;
    struct sl_labels out_ls;
    struct sl_buf render;
    struct sl_buf why;
    struct sl_bytes *tvals; /* label_format results */
    size_t captvals;
    bool changes;
    const struct sl_label *meta; /* structured metadata of the next line */
    size_t nmeta;
};

/* ---- label builder ---- */

bool sl__logql_lb_base_has(const struct sl__logql_lb *lb, struct sl_bytes name)
{
    for (size_t i = 0; lb->base && i < lb->base->n; i++)
        if (sl_bytes_eq(lb->base->items[i].name, name))
            return true;
    return false;
}

bool sl__logql_lb_get(const struct sl__logql_lb *lb, struct sl_bytes name, struct sl_bytes *v)
{
    if (sl_bytes_eq_str(name, SL__ERROR_LABEL)) {
        *v = lb->err;
        return lb->err.len > 0;
    }
    if (sl_bytes_eq_str(name, SL__DETAILS_LABEL)) {
        *v = lb->details;
        return lb->details.len > 0;
    }
    for (size_t i = 0; i < lb->nadd; i++)
        if (sl_bytes_eq(lb->add[i].name, name)) {
            *v = lb->add[i].value;
            return true;
        }
    for (size_t i = 0; i < lb->ndel; i++)
        if (sl_bytes_eq(lb->del[i], name))
            return false;
    for (size_t i = 0; lb->base && i < lb->base->n; i++)
        if (sl_bytes_eq(lb->base->items[i].name, name)) {
            *v = lb->base->items[i].value;
            return true;
        }
    return false;
}

void sl__logql_lb_set(struct sl__logql_lb *lb, struct sl_bytes name, struct sl_bytes v)
{
    if (sl_bytes_eq_str(name, SL__ERROR_LABEL)) {
        lb->err = v;
        return;
    }
    if (sl_bytes_eq_str(name, SL__DETAILS_LABEL)) {
        lb->details = v;
        return;
    }
    for (size_t i = 0; i < lb->nadd; i++)
        if (sl_bytes_eq(lb->add[i].name, name)) {
            lb->add[i].value = v;
            return;
        }
    if (lb->nadd == lb->capadd) {
        lb->capadd = lb->capadd ? 2 * lb->capadd : 16;
        lb->add = sl_reallocarray(lb->add, lb->capadd, sizeof *lb->add);
    }
    lb->add[lb->nadd++] = (struct sl_label){name, v};
}

void sl__logql_lb_del(struct sl__logql_lb *lb, struct sl_bytes name)
{
    if (sl_bytes_eq_str(name, SL__ERROR_LABEL)) {
        lb->err = sl_bytes("", 0);
        return;
    }
    if (sl_bytes_eq_str(name, SL__DETAILS_LABEL)) {
        lb->details = sl_bytes("", 0);
        return;
    }
    for (size_t i = 0; i < lb->nadd; i++)
        if (sl_bytes_eq(lb->add[i].name, name)) {
            memmove(&lb->add[i], &lb->add[i + 1], (lb->nadd - i - 1) * sizeof *lb->add);
            lb->nadd--;
            break;
        }
    if (lb->ndel == lb->capdel) {
        lb->capdel = lb->capdel ? 2 * lb->capdel : 16;
        lb->del = sl_reallocarray(lb->del, lb->capdel, sizeof *lb->del);
    }
    lb->del[lb->ndel++] = name;
}

void sl__logql_lb_set_err(struct sl__logql_lb *lb, const char *err, struct sl_bytes details)
{
    if (lb->err.len)
        return;
    lb->err = sl_bytes_str(err);
    lb->details = details;
}

/* ---- label filters ---- */

static int cmp_f(double a, double b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

static bool cmp_ok(enum sl_logql_cmp c, int r, bool eq_nan_false)
{
    if (eq_nan_false && r == 2)
        return c == SL_LOGQL_CMP_NEQ;
    switch (c) {
    case SL_LOGQL_CMP_EQ:
        return r == 0;
    case SL_LOGQL_CMP_NEQ:
        return r != 0;
    case SL_LOGQL_CMP_GT:
        return r > 0;
    case SL_LOGQL_CMP_GTE:
        return r >= 0;
    case SL_LOGQL_CMP_LT:
        return r < 0;
    case SL_LOGQL_CMP_LTE:
        return r <= 0;
    }
    return false;
}

enum conv_kind { CONV_FLOAT, CONV_DURATION, CONV_BYTES };

/* Sets LabelFilterErr with Go's message for v (the first failure wins). */
static void conv_error(struct sl__logql_lb *lb, enum conv_kind k, struct sl_bytes v)
{
    if (lb->err.len)
        return;
    struct sl_buf b = SL_BUF_INIT;
    if (k == CONV_DURATION) {
        sl__logql_go_duration_error(&b, v);
    } else if (k == CONV_BYTES) {
        sl__logql_bytes_error(&b, v);
    } else {
        sl__logql_float_error(&b, v);
    }
    lb->err = sl_bytes_str(SL__ERR_LABEL);
    lb->details = sl_arena_bytes(lb->scratch, sl_buf_bytes(&b));
    sl_buf_release(&b);
}

static bool unit_filter(struct sl__logql_lb *lb, const struct sl_logql_label_filter *f)
{
    struct sl_bytes v;
    if (!sl__logql_lb_get(lb, f->m.name, &v))
        return false;
    if (f->kind == SL_LOGQL_LF_NUMBER) {
        double d;
        if (!sl__logql_parse_float(v, &d)) {
            conv_error(lb, CONV_FLOAT, v);
            return true;
        }
        return d != d || f->num != f->num ? f->cmp == SL_LOGQL_CMP_NEQ
                                          : cmp_ok(f->cmp, cmp_f(d, f->num), false);
    }
    if (f->kind == SL_LOGQL_LF_DURATION) {
        int64_t ns;
        if (!sl__logql_parse_go_duration(v, &ns)) {
            conv_error(lb, CONV_DURATION, v);
            return true;
        }
        return cmp_ok(f->cmp, ns < f->ival ? -1 : ns > f->ival, false);
    }
    uint64_t b;
    if (!sl__logql_parse_bytes(v, &b)) {
        conv_error(lb, CONV_BYTES, v);
        return true;
    }
    uint64_t want = (uint64_t)f->ival;
    return cmp_ok(f->cmp, b < want ? -1 : b > want, false);
}

bool sl__logql_lf_eval(struct sl_logql_query *q, struct sl__logql_lb *lb,
                       const struct sl_logql_label_filter *f)
{
    struct sl_bytes v = {"", 0};
    switch (f->kind) {
    case SL_LOGQL_LF_AND: {
        bool l = sl__logql_lf_eval(q, lb, f->l);
        bool r = sl__logql_lf_eval(q, lb, f->r);
        return l && r;
    }
    case SL_LOGQL_LF_OR:
        return sl__logql_lf_eval(q, lb, f->l) || sl__logql_lf_eval(q, lb, f->r);
    case SL_LOGQL_LF_STRING:
        if (!sl__logql_lb_get(lb, f->m.name, &v))
            v = sl_bytes("", 0);
        return sl_logql_matcher_matches(q, &f->m, v);
    case SL_LOGQL_LF_IP: {
        if (lb->err.len) /* Loki: with an error only string matchers filter */
            return true;
        if (!sl__logql_lb_get(lb, f->m.name, &v))
            return false;
        bool m = sl__logql_ip_in_line(&f->ip, v);
        return f->m.op == SL_LOGQL_MATCH_EQ ? m : !m;
    }
    default:
        return unit_filter(lb, f);
    }
}

/* ---- formats ---- */

static bool tmpl_get(void *ud, struct sl_bytes name, struct sl_bytes *val)
{
    return sl__logql_lb_get(ud, name, val);
}

static int render(struct sl_logql_pipeline *p, const struct sl_logql_template *t, int64_t ts,
                  struct sl_bytes line, struct sl_bytes *out)
{
    struct sl__logql_tmpl_ctx c = {
        .get = tmpl_get, .ud = &p->lb, .line = line, .ts = ts, .q = p->q, .scratch = &p->scratch};
    sl_buf_clear(&p->render);
    sl_buf_clear(&p->why);
    int rc = sl__logql_template_exec(t, &c, &p->render, &p->why);
    if (rc) {
        sl__logql_lb_set_err(&p->lb, SL__ERR_TEMPLATE,
                             sl_arena_bytes(&p->scratch, sl_buf_bytes(&p->why)));
        return rc;
    }
    *out = sl_arena_bytes(&p->scratch, sl_buf_bytes(&p->render));
    return 0;
}

static void label_format(struct sl_logql_pipeline *p, const struct sl_logql_stage *st, int64_t ts,
                         struct sl_bytes line)
{
    if (st->nfmts > p->captvals) {
        p->captvals = st->nfmts;
        p->tvals = sl_reallocarray(p->tvals, p->captvals, sizeof *p->tvals);
    }
    bool *ok = sl_arena_alloc(&p->scratch, st->nfmts * sizeof *ok);
    for (size_t i = 0; i < st->nfmts; i++)
        ok[i] = st->fmts[i].tmpl && render(p, st->fmts[i].tmpl, ts, line, &p->tvals[i]) == 0;
    for (size_t i = 0; i < st->nfmts; i++) {
        const struct sl_logql_label_fmt *f = &st->fmts[i];
        if (f->tmpl) {
            if (ok[i])
                sl__logql_lb_set(&p->lb, f->dst, p->tvals[i]);
            continue;
        }
        struct sl_bytes v;
        if (sl__logql_lb_get(&p->lb, f->src, &v)) {
            sl__logql_lb_set(&p->lb, f->dst, v);
            if (!sl_bytes_eq(f->dst, f->src))
                sl__logql_lb_del(&p->lb, f->src);
        }
    }
}

static bool is_special(struct sl_bytes n)
{
    return sl_bytes_eq_str(n, SL__ERROR_LABEL) || sl_bytes_eq_str(n, SL__DETAILS_LABEL);
}

static void drop_labels(struct sl_logql_pipeline *p, const struct sl_logql_stage *st)
{
    for (size_t i = 0; i < st->nitems; i++) {
        const struct sl_logql_matcher *m = &st->items[i];
        struct sl_bytes v;
        bool has = sl__logql_lb_get(&p->lb, m->name, &v);
        if (!has)
            continue;
        if (st->item_has_value[i] && !sl_logql_matcher_matches(p->q, m, v))
            continue;
        sl__logql_lb_del(&p->lb, m->name);
    }
}

static bool keep_one(struct sl_logql_pipeline *p, const struct sl_logql_stage *st,
                     struct sl_bytes name, struct sl_bytes value)
{
    for (size_t i = 0; i < st->nitems; i++) {
        if (!sl_bytes_eq(st->items[i].name, name))
            continue;
        if (!st->item_has_value[i] || sl_logql_matcher_matches(p->q, &st->items[i], value))
            return true;
    }
    return false;
}

static void keep_labels(struct sl_logql_pipeline *p, const struct sl_logql_stage *st)
{
    struct sl__logql_lb *lb = &p->lb;
    for (size_t i = 0; lb->base && i < lb->base->n; i++) {
        struct sl_bytes n = lb->base->items[i].name, v;
        if (!sl__logql_lb_get(lb, n, &v))
            continue;
        bool added = false;
        for (size_t k = 0; k < lb->nadd; k++)
            added |= sl_bytes_eq(lb->add[k].name, n);
        if (!added && !keep_one(p, st, n, v))
            sl__logql_lb_del(lb, n);
    }
    for (size_t k = 0; k < lb->nadd;) {
        struct sl_label l = lb->add[k];
        if (!is_special(l.name) && !keep_one(p, st, l.name, l.value)) {
            sl__logql_lb_del(lb, l.name); /* shifts add[] */
            continue;
        }
        k++;
    }
}

/* Strips ANSI escape sequences (CSI and OSC), as decolorize does. */
static struct sl_bytes decolorize(struct sl_logql_pipeline *p, struct sl_bytes line)
{
    if (!memchr(line.ptr, 0x1b, line.len))
        return line;
    char *o = sl_arena_alloc(&p->scratch, line.len + 1);
    size_t k = 0;
    for (size_t i = 0; i < line.len; i++) {
        if (line.ptr[i] == 0x1b && i + 1 < line.len && line.ptr[i + 1] == '[') {
            size_t j = i + 2;
            while (j < line.len && ((line.ptr[j] >= '0' && line.ptr[j] <= '9') ||
                                    line.ptr[j] == ';' || line.ptr[j] == '?'))
                j++;
            if (j < line.len && line.ptr[j] >= '@' && line.ptr[j] <= '~') {
                i = j;
                continue;
            }
        } else if (line.ptr[i] == 0x1b && i + 1 < line.len && line.ptr[i + 1] == ']') {
            size_t j = i + 2;
            while (j < line.len && line.ptr[j] != 0x07)
                j++;
            if (j < line.len) {
                i = j;
                continue;
            }
        }
        o[k++] = line.ptr[i];
    }
    return sl_bytes(o, k);
}

/* ---- the pipeline ---- */

struct sl_logql_pipeline *sl_logql_pipeline_new(struct sl_logql_query *q,
                                                const struct sl_logql_log_expr *e)
{
    struct sl_logql_pipeline *p = SL_NEW(struct sl_logql_pipeline);
    p->q = q;
    p->e = e;
    sl_arena_init(&p->scratch, 16384);
    p->lb.scratch = &p->scratch;
    sl_buf_init(&p->lb.tmp);
    sl_buf_init(&p->render);
    sl_buf_init(&p->why);
    for (size_t i = 0; i < e->nstages; i++) {
        enum sl_logql_stage_kind k = e->stages[i].kind;
        if (k != SL_LOGQL_STAGE_LINE_FILTER && k != SL_LOGQL_STAGE_LINE_FORMAT &&
            k != SL_LOGQL_STAGE_DECOLORIZE)
            p->changes = true;
    }
    return p;
}

void sl_logql_pipeline_free(struct sl_logql_pipeline *p)
{
    if (!p)
        return;
    sl_arena_release(&p->scratch);
    sl_buf_release(&p->lb.tmp);
    sl_buf_release(&p->render);
    sl_buf_release(&p->why);
    sl_free(p->lb.add);
    sl_free(p->lb.del);
    sl_free(p->lb.seen);
    sl_free(p->out);
    sl_free(p->tvals);
    sl_free(p);
}

void sl_logql_pipeline_stream(struct sl_logql_pipeline *p, const struct sl_labels *ls)
{
    p->lb.base = ls;
}

bool sl_logql_pipeline_changes_labels(const struct sl_logql_pipeline *p)
{
    return p->changes;
}

void sl__logql_pipeline_hint(struct sl_logql_pipeline *p, const struct sl_bytes *names, size_t n)
{
    if (n > 64)
        return;
    p->lb.want = names; /* n == 0: no label is needed (Loki's NoLabels) */
    p->lb.nwant = n;
}

struct sl__logql_lb *sl__logql_pipeline_lb(struct sl_logql_pipeline *p)
{
    return &p->lb;
}

struct sl_arena *sl__logql_pipeline_scratch(struct sl_logql_pipeline *p)
{
    return &p->scratch;
}

static bool run_stage(struct sl_logql_pipeline *p, const struct sl_logql_stage *st, int64_t ts,
                      struct sl_bytes *line)
{
    struct sl_bytes nl;
    p->lb.nseen = 0; /* a new stage: duplicates are per parser stage */
    switch (st->kind) {
    case SL_LOGQL_STAGE_LINE_FILTER:
        return sl__logql_line_filter_pass(p->q, &st->line_filter, *line);
    case SL_LOGQL_STAGE_JSON:
        if (st->nex)
            sl__logql_parse_json_exprs(&p->lb, st, *line);
        else
            sl__logql_parse_json(&p->lb, *line);
        return true;
    case SL_LOGQL_STAGE_LOGFMT:
        if (st->nex)
            sl__logql_parse_logfmt_prepare(&p->lb, st);
        sl__logql_parse_logfmt(&p->lb, st, *line);
        return true;
    case SL_LOGQL_STAGE_REGEXP:
        sl__logql_parse_regexp(&p->lb, p->q, st, *line);
        return true;
    case SL_LOGQL_STAGE_PATTERN:
        sl__logql_parse_pattern(&p->lb, st, *line);
        return true;
    case SL_LOGQL_STAGE_UNPACK:
        *line = sl__logql_parse_unpack(&p->lb, *line);
        return true;
    case SL_LOGQL_STAGE_LABEL_FILTER:
        return sl__logql_lf_eval(p->q, &p->lb, st->lf);
    case SL_LOGQL_STAGE_LINE_FORMAT:
        if (render(p, st->tmpl, ts, *line, &nl) == 0)
            *line = nl;
        return true;
    case SL_LOGQL_STAGE_LABEL_FORMAT:
        label_format(p, st, ts, *line);
        return true;
    case SL_LOGQL_STAGE_DROP:
        drop_labels(p, st);
        return true;
    case SL_LOGQL_STAGE_KEEP:
        keep_labels(p, st);
        return true;
    case SL_LOGQL_STAGE_DECOLORIZE:
        *line = decolorize(p, *line);
        return true;
    }
    return true;
}

void sl__logql_pipeline_set_meta(struct sl_logql_pipeline *p, const struct sl_label *meta, size_t n)
{
    p->meta = meta;
    p->nmeta = n;
}

/* Structured metadata enters as labels of the entry (Loki's
 * LabelsBuilder.Add(StructuredMetadataLabel, ...)): a stream label's name
 * gets the suffix _extracted; parsers replace them later like any label. */
static void add_meta(struct sl_logql_pipeline *p)
{
    for (size_t i = 0; i < p->nmeta; i++) {
        struct sl_bytes name = p->meta[i].name;
        if (sl__logql_lb_base_has(&p->lb, name)) {
            char *n = sl_arena_alloc(&p->scratch, name.len + 10);
            memcpy(n, name.ptr, name.len);
            memcpy(n + name.len, "_extracted", 10);
            name = sl_bytes(n, name.len + 10);
        }
        sl__logql_lb_set(&p->lb, name, p->meta[i].value);
    }
    p->meta = NULL;
    p->nmeta = 0;
}

bool sl__logql_pipeline_process(struct sl_logql_pipeline *p, int64_t ts, struct sl_bytes *line)
{
    sl_arena_clear(&p->scratch);
    p->lb.nadd = p->lb.ndel = 0;
    p->lb.found = 0;
    p->lb.err = p->lb.details = sl_bytes("", 0);
    if (p->nmeta)
        add_meta(p);
    for (size_t i = 0; i < p->e->nstages; i++)
        if (!run_stage(p, &p->e->stages[i], ts, line))
            return false;
    return true;
}

static int label_cmp(const void *a, const void *b)
{
    const struct sl_label *x = a, *y = b;
    return sl_bytes_cmp(x->name, y->name);
}

const struct sl_labels *sl__logql_pipeline_labels(struct sl_logql_pipeline *p)
{
    struct sl__logql_lb *lb = &p->lb;
    if (lb->nadd == 0 && lb->ndel == 0 && lb->err.len == 0 && lb->details.len == 0)
        return lb->base;
    size_t need = (lb->base ? lb->base->n : 0) + lb->nadd + 2;
    if (need > p->capout) {
        p->capout = need * 2;
        p->out = sl_reallocarray(p->out, p->capout, sizeof *p->out);
    }
    size_t n = 0;
    for (size_t i = 0; lb->base && i < lb->base->n; i++) {
        struct sl_bytes name = lb->base->items[i].name, v;
        bool added = false;
        for (size_t k = 0; k < lb->nadd && !added; k++)
            added = sl_bytes_eq(lb->add[k].name, name);
        if (!added && sl__logql_lb_get(lb, name, &v))
            p->out[n++] = lb->base->items[i];
    }
    for (size_t k = 0; k < lb->nadd; k++)
        p->out[n++] = lb->add[k];
    if (lb->err.len)
        p->out[n++] = (struct sl_label){sl_bytes_str(SL__ERROR_LABEL), lb->err};
    if (lb->details.len)
        p->out[n++] = (struct sl_label){sl_bytes_str(SL__DETAILS_LABEL), lb->details};
    qsort(p->out, n, sizeof *p->out, label_cmp);
    p->out_ls.items = p->out;
    p->out_ls.n = n;
    return &p->out_ls;
}

bool sl_logql_pipeline_run_meta(struct sl_logql_pipeline *p, int64_t ts, struct sl_bytes line,
                                const struct sl_label *meta, size_t nmeta,
                                struct sl_bytes *line_out, const struct sl_labels **labels_out)
{
    sl__logql_pipeline_set_meta(p, meta, nmeta);
    return sl_logql_pipeline_run(p, ts, line, line_out, labels_out);
}

bool sl_logql_pipeline_run(struct sl_logql_pipeline *p, int64_t ts, struct sl_bytes line,
                           struct sl_bytes *line_out, const struct sl_labels **labels_out)
{
    if (!sl__logql_pipeline_process(p, ts, &line))
        return false;
    *line_out = line;
    *labels_out = sl__logql_pipeline_labels(p);
    return true;
}
