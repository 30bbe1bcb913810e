/* The canonical printer: one fixed text per AST, close to Loki's String()
 * forms (binary operations parenthesised, label filter conjunctions as
 * `( a , b )`), so that parsing the canonical text gives the same text. */
#include <stdint.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/logql.h"
#include "common/jsonw.h"
#include "common/utf8.h"

void sl_logql_quote(struct sl_buf *out, struct sl_bytes v)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)v.ptr;
    sl_buf_append_char(out, '"');
    for (size_t i = 0; i < v.len;) {
        unsigned char c = p[i];
        uint32_t r;
        size_t k = sl_utf8_decode(v.ptr + i, v.len - i, &r);
        if (k == 0) { /* invalid UTF-8: one byte as \xNN, as Go does */
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            sl_buf_append(out, e, 4);
            i++;
            continue;
        }
        if (r == '"' || r == '\\') {
            sl_buf_append_char(out, '\\');
            sl_buf_append_char(out, (char)c);
        } else if (r >= 0x20 && r != 0x7F && !(r >= 0x80 && r < 0xA0) && r != 0x2028 &&
                   r != 0x2029) {
            sl_buf_append(out, p + i, k);
        } else {
            const char *esc = NULL;
            switch (r) {
            case '\a':
                esc = "\\a";
                break;
            case '\b':
                esc = "\\b";
                break;
            case '\f':
                esc = "\\f";
                break;
            case '\n':
                esc = "\\n";
                break;
            case '\r':
                esc = "\\r";
                break;
            case '\t':
                esc = "\\t";
                break;
            case '\v':
                esc = "\\v";
                break;
            }
            if (esc)
                sl_buf_append_str(out, esc);
            else if (r < 0x80)
                sl_buf_appendf(out, "\\x%c%c", hex[r >> 4], hex[r & 15]);
            else
                sl_buf_appendf(out, "\\u%04x", (unsigned)r);
        }
        i += k;
    }
    sl_buf_append_char(out, '"');
}

static const char *match_op_str(enum sl_logql_match_op op)
{
    switch (op) {
    case SL_LOGQL_MATCH_EQ:
        return "=";
    case SL_LOGQL_MATCH_NEQ:
        return "!=";
    case SL_LOGQL_MATCH_RE:
        return "=~";
    case SL_LOGQL_MATCH_NRE:
        return "!~";
    }
    return "?";
}

static const char *filter_op_str(enum sl_logql_filter_op op)
{
    switch (op) {
    case SL_LOGQL_FILTER_CONTAINS:
        return "|=";
    case SL_LOGQL_FILTER_NOT_CONTAINS:
        return "!=";
    case SL_LOGQL_FILTER_MATCH:
        return "|~";
    case SL_LOGQL_FILTER_NOT_MATCH:
        return "!~";
    case SL_LOGQL_FILTER_IP:
        return "|=";
    case SL_LOGQL_FILTER_NOT_IP:
        return "!=";
    }
    return "?";
}

static void format_matcher(const struct sl_logql_matcher *m, struct sl_buf *out)
{
    sl_buf_append_bytes(out, m->name);
    sl_buf_append_str(out, match_op_str(m->op));
    sl_logql_quote(out, m->value);
}

void sl__logql_format_float(struct sl_buf *out, double v)
{
    sl_f64_format(out, v);
}

static const char *cmp_str(enum sl_logql_cmp c)
{
    static const char *const s[] = {"==", "!=", ">", ">=", "<", "<="};
    return s[c];
}

void sl__logql_format_label_filter(const struct sl_logql_label_filter *f, struct sl_buf *out)
{
    switch (f->kind) {
    case SL_LOGQL_LF_AND:
    case SL_LOGQL_LF_OR:
        sl_buf_append_str(out, "( ");
        sl__logql_format_label_filter(f->l, out);
        sl_buf_append_str(out, f->kind == SL_LOGQL_LF_AND ? " , " : " or ");
        sl__logql_format_label_filter(f->r, out);
        sl_buf_append_str(out, " )");
        break;
    case SL_LOGQL_LF_STRING:
        format_matcher(&f->m, out);
        break;
    case SL_LOGQL_LF_NUMBER:
        sl_buf_append_bytes(out, f->m.name);
        sl_buf_append_str(out, cmp_str(f->cmp));
        sl__logql_format_float(out, f->num);
        break;
    case SL_LOGQL_LF_DURATION:
    case SL_LOGQL_LF_BYTES:
        sl_buf_append_bytes(out, f->m.name);
        sl_buf_append_str(out, cmp_str(f->cmp));
        sl_buf_append_bytes(out, f->text);
        break;
    case SL_LOGQL_LF_IP:
        sl_buf_append_bytes(out, f->m.name);
        sl_buf_append_str(out, f->m.op == SL_LOGQL_MATCH_EQ ? "=" : "!=");
        sl_buf_append_str(out, "ip(");
        sl_logql_quote(out, f->ip.text);
        sl_buf_append_char(out, ')');
        break;
    }
}

static void format_extracts(const struct sl_logql_stage *st, struct sl_buf *out)
{
    for (size_t i = 0; i < st->nex; i++) {
        sl_buf_append_str(out, i ? ", " : " ");
        sl_buf_append_bytes(out, st->ex[i].name);
        sl_buf_append_char(out, '=');
        sl_logql_quote(out, st->ex[i].expr);
    }
}

static void format_items(const struct sl_logql_stage *st, struct sl_buf *out)
{
    for (size_t i = 0; i < st->nitems; i++) {
        sl_buf_append_str(out, i ? ", " : " ");
        if (st->item_has_value[i])
            format_matcher(&st->items[i], out);
        else
            sl_buf_append_bytes(out, st->items[i].name);
    }
}

static void format_stage(const struct sl_logql_stage *st, struct sl_buf *out)
{
    switch (st->kind) {
    case SL_LOGQL_STAGE_LINE_FILTER:
        sl_buf_append_char(out, ' ');
        sl_buf_append_str(out, filter_op_str(st->line_filter.op));
        for (const struct sl_logql_line_filter *f = &st->line_filter; f; f = f->alt) {
            sl_buf_append_str(out, f == &st->line_filter ? " " : " or ");
            if (f->op == SL_LOGQL_FILTER_IP || f->op == SL_LOGQL_FILTER_NOT_IP) {
                sl_buf_append_str(out, "ip(");
                sl_logql_quote(out, f->value);
                sl_buf_append_char(out, ')');
            } else {
                sl_logql_quote(out, f->value);
            }
        }
        return;
    case SL_LOGQL_STAGE_JSON:
        sl_buf_append_str(out, " | json");
        format_extracts(st, out);
        return;
    case SL_LOGQL_STAGE_LOGFMT:
        sl_buf_append_str(out, " | logfmt");
        if (st->strict)
            sl_buf_append_str(out, " --strict");
        if (st->keep_empty)
            sl_buf_append_str(out, " --keep-empty");
        format_extracts(st, out);
        return;
    case SL_LOGQL_STAGE_REGEXP:
    case SL_LOGQL_STAGE_PATTERN:
    case SL_LOGQL_STAGE_LINE_FORMAT:
        sl_buf_append_str(out, st->kind == SL_LOGQL_STAGE_REGEXP    ? " | regexp "
                               : st->kind == SL_LOGQL_STAGE_PATTERN ? " | pattern "
                                                                    : " | line_format ");
        sl_logql_quote(out, st->text);
        return;
    case SL_LOGQL_STAGE_UNPACK:
        sl_buf_append_str(out, " | unpack");
        return;
    case SL_LOGQL_STAGE_DECOLORIZE:
        sl_buf_append_str(out, " | decolorize");
        return;
    case SL_LOGQL_STAGE_LABEL_FILTER:
        sl_buf_append_str(out, " | ");
        sl__logql_format_label_filter(st->lf, out);
        return;
    case SL_LOGQL_STAGE_LABEL_FORMAT:
        sl_buf_append_str(out, " | label_format");
        for (size_t i = 0; i < st->nfmts; i++) {
            sl_buf_append_str(out, i ? ", " : " ");
            sl_buf_append_bytes(out, st->fmts[i].dst);
            sl_buf_append_char(out, '=');
            if (st->fmts[i].tmpl)
                sl_logql_quote(out, st->fmts[i].tmpl_text);
            else
                sl_buf_append_bytes(out, st->fmts[i].src);
        }
        return;
    case SL_LOGQL_STAGE_DROP:
    case SL_LOGQL_STAGE_KEEP:
        sl_buf_append_str(out, st->kind == SL_LOGQL_STAGE_DROP ? " | drop" : " | keep");
        format_items(st, out);
        return;
    }
}

void sl__logql_format_log_expr(const struct sl_logql_log_expr *e, struct sl_buf *out)
{
    sl_buf_append_char(out, '{');
    for (size_t k = 0; k < e->nmatchers; k++) {
        if (k)
            sl_buf_append_str(out, ", ");
        format_matcher(&e->matchers[k], out);
    }
    sl_buf_append_char(out, '}');
    for (size_t k = 0; k < e->nstages; k++)
        format_stage(&e->stages[k], out);
}

static const char *const range_names[] = {
    [SL_LOGQL_R_COUNT] = "count_over_time",       [SL_LOGQL_R_RATE] = "rate",
    [SL_LOGQL_R_RATE_COUNTER] = "rate_counter",   [SL_LOGQL_R_BYTES] = "bytes_over_time",
    [SL_LOGQL_R_BYTES_RATE] = "bytes_rate",       [SL_LOGQL_R_ABSENT] = "absent_over_time",
    [SL_LOGQL_R_SUM] = "sum_over_time",           [SL_LOGQL_R_AVG] = "avg_over_time",
    [SL_LOGQL_R_MIN] = "min_over_time",           [SL_LOGQL_R_MAX] = "max_over_time",
    [SL_LOGQL_R_STDVAR] = "stdvar_over_time",     [SL_LOGQL_R_STDDEV] = "stddev_over_time",
    [SL_LOGQL_R_FIRST] = "first_over_time",       [SL_LOGQL_R_LAST] = "last_over_time",
    [SL_LOGQL_R_QUANTILE] = "quantile_over_time",
};

static const char *const vec_names[] = {
    [SL_LOGQL_V_SUM] = "sum",
    [SL_LOGQL_V_AVG] = "avg",
    [SL_LOGQL_V_MIN] = "min",
    [SL_LOGQL_V_MAX] = "max",
    [SL_LOGQL_V_COUNT] = "count",
    [SL_LOGQL_V_STDDEV] = "stddev",
    [SL_LOGQL_V_STDVAR] = "stdvar",
    [SL_LOGQL_V_TOPK] = "topk",
    [SL_LOGQL_V_BOTTOMK] = "bottomk",
    [SL_LOGQL_V_SORT] = "sort",
    [SL_LOGQL_V_SORT_DESC] = "sort_desc",
};

static const char *const binop_names[] = {
    [SL_LOGQL_OP_OR] = "or",  [SL_LOGQL_OP_AND] = "and", [SL_LOGQL_OP_UNLESS] = "unless",
    [SL_LOGQL_OP_ADD] = "+",  [SL_LOGQL_OP_SUB] = "-",   [SL_LOGQL_OP_MUL] = "*",
    [SL_LOGQL_OP_DIV] = "/",  [SL_LOGQL_OP_MOD] = "%",   [SL_LOGQL_OP_POW] = "^",
    [SL_LOGQL_OP_EQ] = "==",  [SL_LOGQL_OP_NEQ] = "!=",  [SL_LOGQL_OP_GT] = ">",
    [SL_LOGQL_OP_GTE] = ">=", [SL_LOGQL_OP_LT] = "<",    [SL_LOGQL_OP_LTE] = "<=",
};

static void format_names(const struct sl_bytes *names, size_t n, struct sl_buf *out)
{
    sl_buf_append_char(out, '(');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_buf_append_str(out, ", ");
        sl_buf_append_bytes(out, names[i]);
    }
    sl_buf_append_char(out, ')');
}

static void format_grouping(const struct sl_logql_grouping *g, struct sl_buf *out)
{
    if (!g->present)
        return;
    sl_buf_append_str(out, g->without ? " without " : " by ");
    format_names(g->names, g->n, out);
}

static void format_expr(const struct sl_logql_expr *e, struct sl_buf *out);

static void format_range(const struct sl_logql_range_expr *r, struct sl_buf *out)
{
    sl_buf_append_str(out, range_names[r->op]);
    sl_buf_append_char(out, '(');
    if (r->op == SL_LOGQL_R_QUANTILE) {
        sl__logql_format_float(out, r->param);
        sl_buf_append_str(out, ", ");
    }
    sl__logql_format_log_expr(&r->log, out);
    if (r->conv != SL_LOGQL_UNWRAP_NONE) {
        static const char *const conv[] = {"", "", "duration", "duration_seconds", "bytes"};
        sl_buf_append_str(out, " | unwrap ");
        if (r->conv != SL_LOGQL_UNWRAP_PLAIN) {
            sl_buf_append_str(out, conv[r->conv]);
            sl_buf_append_char(out, '(');
        }
        sl_buf_append_bytes(out, r->unwrap_label);
        if (r->conv != SL_LOGQL_UNWRAP_PLAIN)
            sl_buf_append_char(out, ')');
        for (size_t i = 0; i < r->npost; i++) {
            sl_buf_append_str(out, " | ");
            sl__logql_format_label_filter(r->post[i], out);
        }
    }
    sl_buf_append_str(out, " [");
    sl__logql_format_model_duration(out, r->range_ns);
    sl_buf_append_char(out, ']');
    if (r->offset_ns) {
        sl_buf_append_str(out, " offset ");
        sl__logql_format_model_duration(out, r->offset_ns);
    }
    sl_buf_append_char(out, ')');
    format_grouping(&r->grouping, out);
}

static void format_binop(const struct sl_logql_binop_expr *b, struct sl_buf *out)
{
    sl_buf_append_char(out, '(');
    format_expr(b->lhs, out);
    sl_buf_append_char(out, ' ');
    sl_buf_append_str(out, binop_names[b->op]);
    if (b->return_bool)
        sl_buf_append_str(out, " bool");
    if (b->on || b->ignoring) {
        sl_buf_append_str(out, b->on ? " on " : " ignoring ");
        format_names(b->match, b->nmatch, out);
        if (b->group) {
            sl_buf_append_str(out, b->group < 0 ? " group_left " : " group_right ");
            format_names(b->include, b->ninclude, out);
        }
    }
    sl_buf_append_char(out, ' ');
    format_expr(b->rhs, out);
    sl_buf_append_char(out, ')');
}

static void format_expr(const struct sl_logql_expr *e, struct sl_buf *out)
{
    switch (e->kind) {
    case SL_LOGQL_EXPR_LOG:
        sl__logql_format_log_expr(&e->u.log, out);
        return;
    case SL_LOGQL_EXPR_RANGE:
        format_range(&e->u.range, out);
        return;
    case SL_LOGQL_EXPR_VECAGG:
        sl_buf_append_str(out, vec_names[e->u.agg.op]);
        format_grouping(&e->u.agg.grouping, out);
        sl_buf_append_str(out, e->u.agg.grouping.present ? " (" : "(");
        if (e->u.agg.op == SL_LOGQL_V_TOPK || e->u.agg.op == SL_LOGQL_V_BOTTOMK)
            sl_buf_appendf(out, "%lld, ", (long long)e->u.agg.k);
        format_expr(e->u.agg.inner, out);
        sl_buf_append_char(out, ')');
        return;
    case SL_LOGQL_EXPR_BINOP:
        format_binop(&e->u.bin, out);
        return;
    case SL_LOGQL_EXPR_LITERAL:
        sl__logql_format_float(out, e->u.literal);
        return;
    case SL_LOGQL_EXPR_VECTOR:
        sl_buf_append_str(out, "vector(");
        sl__logql_format_float(out, e->u.literal);
        sl_buf_append_char(out, ')');
        return;
    case SL_LOGQL_EXPR_LABEL_REPLACE:
        sl_buf_append_str(out, "label_replace(");
        format_expr(e->u.lr.inner, out);
        sl_buf_append_str(out, ", ");
        sl_logql_quote(out, e->u.lr.dst);
        sl_buf_append_str(out, ", ");
        sl_logql_quote(out, e->u.lr.repl);
        sl_buf_append_str(out, ", ");
        sl_logql_quote(out, e->u.lr.src);
        sl_buf_append_str(out, ", ");
        sl_logql_quote(out, e->u.lr.regex);
        sl_buf_append_char(out, ')');
        return;
    }
}

void sl_logql_format(const struct sl_logql_query *q, struct sl_buf *out)
{
    if (q && q->root)
        format_expr(q->root, out);
}
