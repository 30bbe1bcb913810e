/* LogQL parser: recursive descent over the token array from lex.c.
 *
 *   query     := expr EOF
 *   expr      := unary (binop [bool] [on|ignoring (..) [group_left|group_right [(..)]]] unary)*
 *                with Loki's precedences: or < and unless < comparisons < + - < * / % < ^
 *   unary     := ['-'|'+'] primary
 *   primary   := '(' expr ')' | logExpr | NUMBER | vector '(' NUMBER ')'
 *              | rangeOp '(' [NUMBER ','] logRange ')' [grouping]
 *              | vecOp [grouping] '(' [NUMBER ','] expr ')' [grouping]
 *              | label_replace '(' expr ',' STRING ',' STRING ',' STRING ',' STRING ')'
 *   logRange  := logExpr '[' DURATION ']' [offset DURATION] [pipeline]
 *   logExpr   := selector pipeline | '(' logExpr ')'
 *
 * Pipeline stages are in parse_stage.c. A log expression is only valid as
 * the whole query (Loki's rule). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/timeutil.h"

/* Loki's own wording (errAtleastOneEqualityMatcherRequired). */
#define EMPTY_SELECTOR_MSG                                                                         \
    "parse error : queries require at least one regexp or equality matcher that does not have "    \
    "an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but "    \
    "app=~\".+\" will"

typedef struct sl__logql_parser parser;
typedef struct sl__logql_token token;

static const struct {
    const char *name;
    enum sl_logql_range_op op;
} range_ops[] = {
    {"count_over_time", SL_LOGQL_R_COUNT},       {"rate", SL_LOGQL_R_RATE},
    {"rate_counter", SL_LOGQL_R_RATE_COUNTER},   {"bytes_over_time", SL_LOGQL_R_BYTES},
    {"bytes_rate", SL_LOGQL_R_BYTES_RATE},       {"absent_over_time", SL_LOGQL_R_ABSENT},
    {"sum_over_time", SL_LOGQL_R_SUM},           {"avg_over_time", SL_LOGQL_R_AVG},
    {"min_over_time", SL_LOGQL_R_MIN},           {"max_over_time", SL_LOGQL_R_MAX},
    {"stdvar_over_time", SL_LOGQL_R_STDVAR},     {"stddev_over_time", SL_LOGQL_R_STDDEV},
    {"first_over_time", SL_LOGQL_R_FIRST},       {"last_over_time", SL_LOGQL_R_LAST},
    {"quantile_over_time", SL_LOGQL_R_QUANTILE},
};

static const struct {
    const char *name;
    enum sl_logql_vecagg_op op;
} vec_ops[] = {
    {"sum", SL_LOGQL_V_SUM},
    {"avg", SL_LOGQL_V_AVG},
    {"min", SL_LOGQL_V_MIN},
    {"max", SL_LOGQL_V_MAX},
    {"count", SL_LOGQL_V_COUNT},
    {"stddev", SL_LOGQL_V_STDDEV},
    {"stdvar", SL_LOGQL_V_STDVAR},
    {"topk", SL_LOGQL_V_TOPK},
    {"bottomk", SL_LOGQL_V_BOTTOMK},
    {"sort", SL_LOGQL_V_SORT},
    {"sort_desc", SL_LOGQL_V_SORT_DESC},
};

static const char *const unsupported_funcs[] = {
    "approx_topk",           "count_values", "quantile", "absent", "first_over_time_sketch",
    "approx_count_distinct", "variants"};

const struct sl__logql_token *sl__logql_peek(const parser *p, size_t ahead)
{
    size_t k = p->pos + ahead;
    return &p->t[k < p->nt ? k : p->nt - 1];
}

const struct sl__logql_token *sl__logql_next(parser *p)
{
    const token *t = &p->t[p->pos];
    if (p->pos + 1 < p->nt)
        p->pos++;
    return t;
}

#define peek(p)       sl__logql_peek((p), 0)
#define peek_at(p, k) sl__logql_peek((p), (k))
#define next(p)       sl__logql_next(p)

bool sl__logql_is_ident(const token *t, const char *s)
{
    return t->kind == SL__TOK_IDENT && sl_bytes_eq_str(t->text, s);
}

int sl__logql_syntax_error(parser *p, const token *t, const char *expecting)
{
    if (p->err) {
        sl_buf_appendf(p->err, "parse error at line %d, col %d: syntax error: unexpected %s",
                       t->line, t->col, sl__logql_tok_name(t->kind));
        if (expecting)
            sl_buf_appendf(p->err, ", expecting %s", expecting);
    }
    return SL_EINVAL;
}

int sl__logql_error_at(parser *p, const token *t, const char *fmt, ...)
{
    if (p->err) {
        if (t)
            sl_buf_appendf(p->err, "parse error at line %d, col %d: ", t->line, t->col);
        else
            sl_buf_append_str(p->err, "parse error : ");
        va_list ap;
        va_start(ap, fmt);
        sl_buf_vappendf(p->err, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

int sl__logql_unsupported(parser *p, const char *fmt, ...)
{
    if (p->err) {
        va_list ap;
        va_start(ap, fmt);
        sl_buf_append_str(p->err, "unsupported in this version: ");
        sl_buf_vappendf(p->err, fmt, ap);
        va_end(ap);
    }
    return SL_EUNSUPP;
}

/* Grows an arena array by one element (arrays here stay tiny). */
void *sl__logql_grow(struct sl_arena *a, void *arr, size_t n, size_t elem)
{
    void *nv = sl_arena_calloc(a, (n + 1) * elem);
    if (n)
        memcpy(nv, arr, n * elem);
    return nv;
}

int sl__logql_compile_regex(parser *p, const token *t, bool anchored, struct sl_logql_regex **out)
{
    struct sl_buf why = SL_BUF_INIT;
    int rc = sl__logql_regex_compile(p->q, t->text, anchored, out, &why);
    if (rc && p->err)
        sl_buf_appendf(p->err, "parse error at line %d, col %d: error parsing regexp: %s", t->line,
                       t->col, why.data ? why.data : "invalid");
    sl_buf_release(&why);
    return rc;
}

int sl__logql_parse_matcher(parser *p, struct sl_logql_matcher *m)
{
    const token *t = next(p);
    if (t->kind != SL__TOK_IDENT)
        return sl__logql_syntax_error(p, t, "IDENTIFIER");
    m->name = t->text;
    t = next(p);
    switch (t->kind) {
    case SL__TOK_EQ:
        m->op = SL_LOGQL_MATCH_EQ;
        break;
    case SL__TOK_NEQ:
        m->op = SL_LOGQL_MATCH_NEQ;
        break;
    case SL__TOK_RE:
        m->op = SL_LOGQL_MATCH_RE;
        break;
    case SL__TOK_NRE:
        m->op = SL_LOGQL_MATCH_NRE;
        break;
    default:
        return sl__logql_syntax_error(p, t, "= or != or =~ or !~");
    }
    t = next(p);
    if (t->kind != SL__TOK_STRING)
        return sl__logql_syntax_error(p, t, "STRING");
    m->value = t->text;
    m->re = NULL;
    if (m->op == SL_LOGQL_MATCH_RE || m->op == SL_LOGQL_MATCH_NRE)
        return sl__logql_compile_regex(p, t, true, &m->re);
    return 0;
}

static int parse_selector(parser *p, struct sl_logql_log_expr *e)
{
    const token *t = next(p);
    if (t->kind != SL__TOK_LBRACE)
        return sl__logql_syntax_error(p, t, "{");
    if (peek(p)->kind != SL__TOK_RBRACE) {
        for (;;) {
            e->matchers =
                sl__logql_grow(&p->q->arena, e->matchers, e->nmatchers, sizeof *e->matchers);
            int rc = sl__logql_parse_matcher(p, &e->matchers[e->nmatchers]);
            if (rc)
                return rc;
            e->nmatchers++;
            t = next(p);
            if (t->kind == SL__TOK_RBRACE)
                break;
            if (t->kind != SL__TOK_COMMA)
                return sl__logql_syntax_error(p, t, ", or }");
        }
    } else {
        next(p);
    }
    /* Loki: at least one matcher that does not match the empty string. */
    for (size_t k = 0; k < e->nmatchers; k++)
        if (!sl_logql_matcher_matches(p->q, &e->matchers[k], sl_bytes("", 0)))
            return 0;
    if (p->err)
        sl_buf_append_str(p->err, EMPTY_SELECTOR_MSG);
    return SL_EINVAL;
}

static int parse_log_expr(parser *p, struct sl_logql_log_expr *e, bool selector_only,
                          struct sl_logql_range_expr *range)
{
    if (peek(p)->kind == SL__TOK_LPAREN) {
        next(p);
        int rc = parse_log_expr(p, e, selector_only, range);
        if (rc)
            return rc;
        const token *t = next(p);
        if (t->kind != SL__TOK_RPAREN)
            return sl__logql_syntax_error(p, t, ")");
        return 0;
    }
    int rc = parse_selector(p, e);
    if (rc || selector_only)
        return rc;
    return sl__logql_parse_pipeline(p, e, range);
}

/* A number literal; one that overflows to infinity is refused (as Go's
 * ParseFloat reports a range error), so every literal prints back. */
static bool parse_number_tok(const token *t, double *out)
{
    return t->kind == SL__TOK_NUMBER && sl__logql_parse_float(t->text, out) && isfinite(*out);
}

static int parse_duration_tok(parser *p, const token *t, int64_t *out)
{
    if (t->kind != SL__TOK_NUMBER || sl_duration_parse(t->text.ptr, t->text.len, out) != 0)
        return sl__logql_syntax_error(p, t, "DURATION");
    return 0;
}

/* `by (a, b)` or `without (a)`; the keyword is at the current position. */
static int parse_grouping(parser *p, struct sl_logql_grouping *g)
{
    if (g->present)
        return sl__logql_syntax_error(p, peek(p), NULL);
    g->without = sl__logql_is_ident(next(p), "without");
    g->present = true;
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    if (peek(p)->kind == SL__TOK_RPAREN) {
        next(p);
        return 0;
    }
    for (;;) {
        t = next(p);
        if (t->kind != SL__TOK_IDENT)
            return sl__logql_syntax_error(p, t, "IDENTIFIER");
        g->names = sl__logql_grow(&p->q->arena, g->names, g->n, sizeof *g->names);
        g->names[g->n++] = t->text;
        t = next(p);
        if (t->kind == SL__TOK_RPAREN)
            return 0;
        if (t->kind != SL__TOK_COMMA)
            return sl__logql_syntax_error(p, t, ", or )");
    }
}

static bool at_grouping(const parser *p)
{
    const token *t = peek(p);
    return sl__logql_is_ident(t, "by") || sl__logql_is_ident(t, "without");
}

static int parse_expr(parser *p, int min_prec, struct sl_logql_expr **out);

static struct sl_logql_expr *new_expr(parser *p, enum sl_logql_expr_kind k)
{
    struct sl_logql_expr *e = sl_arena_calloc(&p->q->arena, sizeof *e);
    e->kind = k;
    return e;
}

static bool range_needs_unwrap(enum sl_logql_range_op op)
{
    return op >= SL_LOGQL_R_SUM || op == SL_LOGQL_R_RATE_COUNTER;
}

static int validate_range(parser *p, struct sl_logql_range_expr *r, const char *name)
{
    bool unwrap = r->conv != SL_LOGQL_UNWRAP_NONE;
    if (unwrap &&
        (r->op == SL_LOGQL_R_COUNT || r->op == SL_LOGQL_R_BYTES || r->op == SL_LOGQL_R_BYTES_RATE))
        return sl__logql_error_at(p, NULL, "invalid aggregation %s with unwrap", name);
    if (!unwrap && range_needs_unwrap(r->op))
        return sl__logql_error_at(p, NULL, "invalid aggregation %s without unwrap", name);
    if (r->grouping.present && !(r->op >= SL_LOGQL_R_AVG && r->op <= SL_LOGQL_R_QUANTILE))
        return sl__logql_error_at(p, NULL, "grouping not allowed for %s aggregation", name);
    return 0;
}

/* How many of the '(' at the current token wrap a whole range
 * (`(({sel} |= "x" [5m]))`, as Loki's grammar allows): the depth at which the
 * first '[' comes, 0 when the parentheses close before it. */
static size_t range_wrap_parens(parser *p)
{
    size_t lead = 0;
    while (peek_at(p, lead)->kind == SL__TOK_LPAREN)
        lead++;
    size_t depth = lead;
    for (size_t k = lead;; k++) {
        enum sl__logql_tok kind = peek_at(p, k)->kind;
        if (kind == SL__TOK_EOF)
            return 0;
        if (kind == SL__TOK_LPAREN)
            depth++;
        else if (kind == SL__TOK_RPAREN && depth-- <= 1)
            return 0;
        else if (kind == SL__TOK_LBRACKET)
            return depth < lead ? depth : lead;
    }
}

static int parse_range_agg(parser *p, enum sl_logql_range_op op, const token *name,
                           struct sl_logql_expr **out)
{
    struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_RANGE);
    struct sl_logql_range_expr *r = &e->u.range;
    r->op = op;
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    if (op == SL_LOGQL_R_QUANTILE) {
        t = next(p);
        if (!parse_number_tok(t, &r->param))
            return sl__logql_syntax_error(p, t, "NUMBER");
        t = next(p);
        if (t->kind != SL__TOK_COMMA)
            return sl__logql_syntax_error(p, t, ",");
    }
    /* ({sel} | pipeline) [5m] or {sel} | pipeline [5m], possibly all of it
     * in parentheses: ({sel} | pipeline [5m]) */
    size_t wrap = range_wrap_parens(p);
    for (size_t i = 0; i < wrap; i++)
        next(p);
    size_t k = 0;
    while (peek_at(p, k)->kind == SL__TOK_LPAREN)
        k++;
    if (peek_at(p, k)->kind != SL__TOK_LBRACE)
        return sl__logql_syntax_error(p, peek_at(p, k), "{");
    int rc = parse_log_expr(p, &r->log, false, r);
    if (rc)
        return rc;
    t = next(p);
    if (t->kind != SL__TOK_LBRACKET)
        return sl__logql_syntax_error(p, t, "[");
    if ((rc = parse_duration_tok(p, next(p), &r->range_ns)))
        return rc;
    t = next(p);
    if (t->kind != SL__TOK_RBRACKET)
        return sl__logql_syntax_error(p, t, "]");
    if (sl__logql_is_ident(peek(p), "offset")) {
        next(p);
        if ((rc = parse_duration_tok(p, next(p), &r->offset_ns)))
            return rc;
    }
    if (peek(p)->kind == SL__TOK_PIPE || peek(p)->kind == SL__TOK_PIPE_EXACT ||
        peek(p)->kind == SL__TOK_PIPE_MATCH || peek(p)->kind == SL__TOK_NEQ ||
        peek(p)->kind == SL__TOK_NRE) {
        if ((rc = sl__logql_parse_pipeline(p, &r->log, r)))
            return rc;
    }
    for (size_t i = 0; i < wrap; i++) {
        t = next(p);
        if (t->kind != SL__TOK_RPAREN)
            return sl__logql_syntax_error(p, t, ")");
    }
    t = next(p);
    if (t->kind != SL__TOK_RPAREN)
        return sl__logql_syntax_error(p, t, ")");
    if (at_grouping(p) && (rc = parse_grouping(p, &r->grouping)))
        return rc;
    char fname[64];
    snprintf(fname, sizeof fname, "%.*s", (int)name->text.len, name->text.ptr);
    if ((rc = validate_range(p, r, fname)))
        return rc;
    *out = e;
    return 0;
}

static int parse_vec_agg(parser *p, enum sl_logql_vecagg_op op, struct sl_logql_expr **out)
{
    struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_VECAGG);
    struct sl_logql_vecagg_expr *a = &e->u.agg;
    a->op = op;
    int rc;
    if (at_grouping(p) && (rc = parse_grouping(p, &a->grouping)))
        return rc;
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    bool takes_k = op == SL_LOGQL_V_TOPK || op == SL_LOGQL_V_BOTTOMK;
    if (takes_k && !(peek(p)->kind == SL__TOK_NUMBER && peek_at(p, 1)->kind == SL__TOK_COMMA)) {
        /* Loki's grammar takes topk(<expr>) and then asks for the parameter */
        if ((rc = parse_expr(p, 0, &a->inner)))
            return rc;
        if (peek(p)->kind != SL__TOK_RPAREN)
            return sl__logql_syntax_error(p, peek(p), NULL);
        return sl__logql_error_at(p, NULL, "parameter required for operation %s",
                                  op == SL_LOGQL_V_TOPK ? "topk" : "bottomk");
    }
    if (takes_k) {
        double k;
        t = next(p);
        if (!parse_number_tok(t, &k))
            return sl__logql_syntax_error(p, t, "NUMBER");
        if (k < 1 || k != (double)(int64_t)k)
            return sl__logql_error_at(p, NULL, "invalid parameter (must be greater than 0)");
        a->k = (int64_t)k;
        t = next(p);
        if (t->kind != SL__TOK_COMMA)
            return sl__logql_syntax_error(p, t, ",");
    }
    if ((rc = parse_expr(p, 0, &a->inner)))
        return rc;
    if (a->inner->kind == SL_LOGQL_EXPR_LOG || a->inner->kind == SL_LOGQL_EXPR_LITERAL)
        return sl__logql_error_at(p, NULL, "unexpected type for vector aggregation: %s",
                                  a->inner->kind == SL_LOGQL_EXPR_LOG ? "log" : "scalar");
    t = next(p);
    if (t->kind != SL__TOK_RPAREN)
        return sl__logql_syntax_error(p, t, ")");
    if (at_grouping(p) && (rc = parse_grouping(p, &a->grouping)))
        return rc;
    if ((op == SL_LOGQL_V_SORT || op == SL_LOGQL_V_SORT_DESC) && a->grouping.present)
        return sl__logql_error_at(p, NULL, "grouping not allowed for %s aggregation",
                                  op == SL_LOGQL_V_SORT ? "sort" : "sort_desc");
    *out = e;
    return 0;
}

static int expect_string(parser *p, struct sl_bytes *out, bool comma_first)
{
    const token *t;
    if (comma_first && (t = next(p))->kind != SL__TOK_COMMA)
        return sl__logql_syntax_error(p, t, ",");
    t = next(p);
    if (t->kind != SL__TOK_STRING)
        return sl__logql_syntax_error(p, t, "STRING");
    *out = t->text;
    return 0;
}

static int parse_label_replace(parser *p, struct sl_logql_expr **out)
{
    struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_LABEL_REPLACE);
    struct sl_logql_label_replace_expr *l = &e->u.lr;
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    int rc = parse_expr(p, 0, &l->inner);
    if (rc)
        return rc;
    if (l->inner->kind == SL_LOGQL_EXPR_LOG)
        return sl__logql_error_at(p, NULL, "unexpected type for label_replace: log");
    if ((rc = expect_string(p, &l->dst, true)) || (rc = expect_string(p, &l->repl, true)) ||
        (rc = expect_string(p, &l->src, true)))
        return rc;
    if ((t = next(p))->kind != SL__TOK_COMMA)
        return sl__logql_syntax_error(p, t, ",");
    t = next(p);
    if (t->kind != SL__TOK_STRING)
        return sl__logql_syntax_error(p, t, "STRING");
    l->regex = t->text;
    if ((rc = sl__logql_compile_regex(p, t, true, &l->re)))
        return rc;
    if (!sl_label_name_valid(l->dst))
        return sl__logql_error_at(p, NULL,
                                  "invalid destination label name in label_replace(): %.*s",
                                  (int)l->dst.len, l->dst.ptr);
    t = next(p);
    if (t->kind != SL__TOK_RPAREN)
        return sl__logql_syntax_error(p, t, ")");
    *out = e;
    return 0;
}

static int parse_vector(parser *p, struct sl_logql_expr **out)
{
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_VECTOR);
    bool neg = false;
    if (peek(p)->kind == SL__TOK_SUB || peek(p)->kind == SL__TOK_ADD)
        neg = next(p)->kind == SL__TOK_SUB;
    t = next(p);
    if (!parse_number_tok(t, &e->u.literal))
        return sl__logql_syntax_error(p, t, "NUMBER");
    if (neg)
        e->u.literal = -e->u.literal;
    t = next(p);
    if (t->kind != SL__TOK_RPAREN)
        return sl__logql_syntax_error(p, t, ")");
    *out = e;
    return 0;
}

static bool is_log_start(const parser *p)
{
    size_t k = 0;
    while (peek_at(p, k)->kind == SL__TOK_LPAREN)
        k++;
    return peek_at(p, k)->kind == SL__TOK_LBRACE;
}

static int parse_primary(parser *p, struct sl_logql_expr **out)
{
    const token *t = peek(p);
    if (t->kind == SL__TOK_LPAREN && !is_log_start(p)) {
        next(p);
        int rc = parse_expr(p, 0, out);
        if (rc)
            return rc;
        t = next(p);
        return t->kind == SL__TOK_RPAREN ? 0 : sl__logql_syntax_error(p, t, ")");
    }
    if (is_log_start(p)) {
        struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_LOG);
        int rc = parse_log_expr(p, &e->u.log, false, NULL);
        if (rc)
            return rc;
        if (peek(p)->kind == SL__TOK_LBRACKET)
            return sl__logql_unsupported(p, "range vector outside a metric query");
        *out = e;
        return 0;
    }
    if (t->kind == SL__TOK_NUMBER) {
        struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_LITERAL);
        if (!parse_number_tok(t, &e->u.literal))
            return sl__logql_syntax_error(p, t, NULL);
        next(p);
        *out = e;
        return 0;
    }
    if (t->kind != SL__TOK_IDENT)
        return sl__logql_syntax_error(p, t, NULL);
    for (size_t i = 0; i < SL_ARRAY_LEN(range_ops); i++)
        if (sl_bytes_eq_str(t->text, range_ops[i].name))
            return parse_range_agg(p, range_ops[i].op, next(p), out);
    for (size_t i = 0; i < SL_ARRAY_LEN(vec_ops); i++)
        if (sl_bytes_eq_str(t->text, vec_ops[i].name)) {
            next(p);
            return parse_vec_agg(p, vec_ops[i].op, out);
        }
    if (sl__logql_is_ident(t, "vector")) {
        next(p);
        return parse_vector(p, out);
    }
    if (sl__logql_is_ident(t, "label_replace")) {
        next(p);
        return parse_label_replace(p, out);
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(unsupported_funcs); i++)
        if (sl_bytes_eq_str(t->text, unsupported_funcs[i]))
            return sl__logql_unsupported(p, "function \"%s\"", unsupported_funcs[i]);
    return sl__logql_syntax_error(p, t, NULL);
}

static int parse_unary(parser *p, struct sl_logql_expr **out)
{
    const token *t = peek(p);
    if (t->kind == SL__TOK_SUB || t->kind == SL__TOK_ADD) {
        /* As in Loki's grammar, a sign only goes directly before a number
         * (`-1`, `1 - -1`): `-rate(...)`, `-(1)` and `--1` are syntax errors. */
        next(p);
        if (peek(p)->kind != SL__TOK_NUMBER)
            return sl__logql_syntax_error(p, peek(p), "NUMBER");
        int rc = parse_primary(p, out);
        if (rc)
            return rc;
        if (t->kind == SL__TOK_SUB)
            (*out)->u.literal = -(*out)->u.literal;
        return 0;
    }
    return parse_primary(p, out);
}

/* Binary operator at the current token: its kind and precedence (0: none). */
static int binop_at(const parser *p, enum sl_logql_binop *op)
{
    const token *t = peek(p);
    switch (t->kind) {
    case SL__TOK_ADD:
        *op = SL_LOGQL_OP_ADD;
        return 4;
    case SL__TOK_SUB:
        *op = SL_LOGQL_OP_SUB;
        return 4;
    case SL__TOK_MUL:
        *op = SL_LOGQL_OP_MUL;
        return 5;
    case SL__TOK_DIV:
        *op = SL_LOGQL_OP_DIV;
        return 5;
    case SL__TOK_MOD:
        *op = SL_LOGQL_OP_MOD;
        return 5;
    case SL__TOK_POW:
        *op = SL_LOGQL_OP_POW;
        return 6;
    case SL__TOK_CMP_EQ:
        *op = SL_LOGQL_OP_EQ;
        return 3;
    case SL__TOK_NEQ:
        *op = SL_LOGQL_OP_NEQ;
        return 3;
    case SL__TOK_GT:
        *op = SL_LOGQL_OP_GT;
        return 3;
    case SL__TOK_GTE:
        *op = SL_LOGQL_OP_GTE;
        return 3;
    case SL__TOK_LT:
        *op = SL_LOGQL_OP_LT;
        return 3;
    case SL__TOK_LTE:
        *op = SL_LOGQL_OP_LTE;
        return 3;
    case SL__TOK_IDENT:
        if (sl_bytes_eq_str(t->text, "or")) {
            *op = SL_LOGQL_OP_OR;
            return 1;
        }
        if (sl_bytes_eq_str(t->text, "and")) {
            *op = SL_LOGQL_OP_AND;
            return 2;
        }
        if (sl_bytes_eq_str(t->text, "unless")) {
            *op = SL_LOGQL_OP_UNLESS;
            return 2;
        }
        return 0;
    default:
        return 0;
    }
}

static int parse_label_list(parser *p, struct sl_bytes **names, size_t *n)
{
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    if (peek(p)->kind == SL__TOK_RPAREN) {
        next(p);
        return 0;
    }
    for (;;) {
        t = next(p);
        if (t->kind != SL__TOK_IDENT)
            return sl__logql_syntax_error(p, t, "IDENTIFIER");
        *names = sl__logql_grow(&p->q->arena, *names, *n, sizeof **names);
        (*names)[(*n)++] = t->text;
        t = next(p);
        if (t->kind == SL__TOK_RPAREN)
            return 0;
        if (t->kind != SL__TOK_COMMA)
            return sl__logql_syntax_error(p, t, ", or )");
    }
}

static bool is_comparison(enum sl_logql_binop op)
{
    return op >= SL_LOGQL_OP_EQ;
}

static bool is_set_op(enum sl_logql_binop op)
{
    return op <= SL_LOGQL_OP_UNLESS;
}

static bool is_scalar(const struct sl_logql_expr *e)
{
    return e->kind == SL_LOGQL_EXPR_LITERAL || (e->kind == SL_LOGQL_EXPR_BINOP && e->u.bin.lhs &&
                                                is_scalar(e->u.bin.lhs) && is_scalar(e->u.bin.rhs));
}

static int parse_modifiers(parser *p, struct sl_logql_binop_expr *b)
{
    int rc;
    if (sl__logql_is_ident(peek(p), "bool")) {
        next(p);
        if (!is_comparison(b->op))
            return sl__logql_error_at(p, NULL,
                                      "bool modifier can only be used on comparison "
                                      "operators");
        b->return_bool = true;
    }
    if (sl__logql_is_ident(peek(p), "on") || sl__logql_is_ident(peek(p), "ignoring")) {
        b->on = sl__logql_is_ident(next(p), "on");
        b->ignoring = !b->on;
        if ((rc = parse_label_list(p, &b->match, &b->nmatch)))
            return rc;
        if (sl__logql_is_ident(peek(p), "group_left") ||
            sl__logql_is_ident(peek(p), "group_right")) {
            b->group = sl__logql_is_ident(next(p), "group_left") ? -1 : 1;
            if (peek(p)->kind == SL__TOK_LPAREN &&
                (rc = parse_label_list(p, &b->include, &b->ninclude)))
                return rc;
        }
    }
    return 0;
}

static int check_binop(parser *p, struct sl_logql_binop_expr *b)
{
    if (b->lhs->kind == SL_LOGQL_EXPR_LOG || b->rhs->kind == SL_LOGQL_EXPR_LOG)
        return sl__logql_error_at(p, NULL, "unexpected type for %s leg of binary operation: log",
                                  b->lhs->kind == SL_LOGQL_EXPR_LOG ? "left" : "right");
    bool ls = is_scalar(b->lhs), rs = is_scalar(b->rhs);
    /* Loki's wording; a comparison between scalars gives 0 or 1, bool or not */
    if (is_set_op(b->op) && (ls || rs))
        return sl__logql_error_at(p, NULL,
                                  "unexpected literal for %s leg of logical/set binary operation",
                                  ls ? "left" : "right");
    if ((b->on || b->ignoring || b->group) && (ls || rs))
        return sl__logql_error_at(p, NULL, "vector matching only allowed between vectors");
    if (b->group && is_set_op(b->op))
        return sl__logql_error_at(p, NULL, "no grouping allowed for \"%s\" operation",
                                  b->op == SL_LOGQL_OP_OR    ? "or"
                                  : b->op == SL_LOGQL_OP_AND ? "and"
                                                             : "unless");
    return 0;
}

static int parse_expr(parser *p, int min_prec, struct sl_logql_expr **out)
{
    struct sl_logql_expr *lhs;
    int rc = parse_unary(p, &lhs);
    if (rc)
        return rc;
    for (;;) {
        enum sl_logql_binop op;
        int prec = binop_at(p, &op);
        if (prec == 0 || prec < min_prec)
            break;
        next(p);
        struct sl_logql_expr *e = new_expr(p, SL_LOGQL_EXPR_BINOP);
        struct sl_logql_binop_expr *b = &e->u.bin;
        b->op = op;
        if ((rc = parse_modifiers(p, b)))
            return rc;
        /* ^ is right-associative, everything else left. */
        if ((rc = parse_expr(p, op == SL_LOGQL_OP_POW ? prec : prec + 1, &b->rhs)))
            return rc;
        b->lhs = lhs;
        if ((rc = check_binop(p, b)))
            return rc;
        lhs = e;
    }
    *out = lhs;
    return 0;
}

static int parse_query(parser *p, bool selector_only)
{
    struct sl_logql_expr *root = NULL;
    int rc;
    if (selector_only) {
        if (!is_log_start(p))
            return sl__logql_syntax_error(p, peek(p), "{");
        root = new_expr(p, SL_LOGQL_EXPR_LOG);
        rc = parse_log_expr(p, &root->u.log, true, NULL);
    } else {
        rc = parse_expr(p, 0, &root);
    }
    if (rc)
        return rc;
    const token *t = peek(p);
    if (t->kind != SL__TOK_EOF) {
        if (!selector_only && t->kind == SL__TOK_LBRACKET)
            return sl__logql_unsupported(p, "range vector outside a metric query");
        return sl__logql_syntax_error(p, t, NULL);
    }
    p->q->root = root;
    return 0;
}

static int parse_common(const char *s, size_t n, struct sl_logql_query **out, struct sl_buf *err,
                        bool selector_only)
{
    *out = NULL;
    if (n > SL_LOGQL_MAX_QUERY_BYTES) {
        if (err)
            sl_buf_appendf(err, "query too long: %zu bytes, at most %d", n,
                           SL_LOGQL_MAX_QUERY_BYTES);
        return SL_ETOOBIG;
    }
    struct sl_logql_query *q = SL_NEW(struct sl_logql_query);
    sl_arena_init(&q->arena, 4096);
    parser p = {.q = q, .err = err};
    int rc = sl__logql_lex(&q->arena, s, n, &p.t, &p.nt, err);
    if (rc == 0)
        rc = parse_query(&p, selector_only);
    if (rc) {
        if (err && err->len == 0)
            sl_buf_append_str(err, "parse error : invalid query");
        sl_logql_query_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

int sl_logql_parse(const char *s, size_t n, struct sl_logql_query **out, struct sl_buf *err)
{
    return parse_common(s, n, out, err, false);
}

int sl_logql_parse_selector(const char *s, size_t n, struct sl_logql_query **out,
                            struct sl_buf *err)
{
    return parse_common(s, n, out, err, true);
}

void sl_logql_query_free(struct sl_logql_query *q)
{
    if (!q)
        return;
    sl__logql_regex_free_all(q);
    sl_arena_release(&q->arena);
    sl_free(q);
}

const struct sl_logql_log_expr *sl_logql_log_expr(const struct sl_logql_query *q)
{
    if (!q || !q->root || q->root->kind != SL_LOGQL_EXPR_LOG)
        return NULL;
    return &q->root->u.log;
}
