/* LogQL parser: recursive descent over the token array from lex.c.
 *
 * The supported grammar today:
 *   query    := logExpr EOF
 *   logExpr  := selector stage* | '(' logExpr ')'
 *   selector := '{' [ matcher (',' matcher)* ] '}'
 *   matcher  := IDENTIFIER ('=' | '!=' | '=~' | '!~') STRING
 *   stage    := ('|=' | '!=' | '|~' | '!~') STRING
 *
 * Constructs of the later levels are recognised by their first tokens and
 * refused as unsupported, so that a user never gets a wrong answer for a
 * query that Loki would evaluate differently. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/logql/lex.h"
#include "aggregator/logql/logql.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/mem.h"

/* Loki's own wording (errAtleastOneEqualityMatcherRequired). */
#define EMPTY_SELECTOR_MSG                                                                         \
    "parse error : queries require at least one regexp or equality matcher that does not have "    \
    "an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but "    \
    "app=~\".+\" will"

struct parser {
    struct sl_logql_query *q;
    struct sl__logql_token *t;
    size_t nt, pos;
    struct sl_buf *err;
};

static const char *const metric_funcs[] = {
    "count_over_time",
    "rate",
    "rate_counter",
    "bytes_over_time",
    "bytes_rate",
    "absent_over_time",
    "sum_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "first_over_time",
    "last_over_time",
    "quantile_over_time",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
    "vector",
    "label_replace",
    "approx_topk",
};

static const char *const parser_stages[] = {"json", "logfmt", "regexp", "pattern", "unpack"};

static const char *const other_stages[] = {"line_format", "label_format", "drop",    "keep",
                                           "decolorize",  "unwrap",       "distinct"};

static bool in_list(struct sl_bytes s, const char *const *list, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (sl_bytes_eq_str(s, list[k]))
            return true;
    return false;
}

static const struct sl__logql_token *peek(const struct parser *p)
{
    return &p->t[p->pos];
}

static const struct sl__logql_token *peek_at(const struct parser *p, size_t ahead)
{
    size_t k = p->pos + ahead;
    return &p->t[k < p->nt ? k : p->nt - 1];
}

static const struct sl__logql_token *next(struct parser *p)
{
    const struct sl__logql_token *t = &p->t[p->pos];
    if (p->pos + 1 < p->nt)
        p->pos++;
    return t;
}

static int syntax_error(struct parser *p, const struct sl__logql_token *t, const char *expecting)
{
    if (p->err) {
        sl_buf_appendf(p->err, "parse error at line %d, col %d: syntax error: unexpected %s",
                       t->line, t->col, sl__logql_tok_name(t->kind));
        if (expecting)
            sl_buf_appendf(p->err, ", expecting %s", expecting);
    }
    return SL_EINVAL;
}

static int unsupported(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int unsupported(struct parser *p, const char *fmt, ...)
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

static int unsupported_name(struct parser *p, const char *what, struct sl_bytes name)
{
    return unsupported(p, "%s \"%.*s\"", what, (int)name.len, name.ptr);
}

/* Grows an arena array by one element (arrays here stay tiny). */
static void *grow(struct sl_arena *a, void *arr, size_t n, size_t elem)
{
    void *nv = sl_arena_alloc(a, (n + 1) * elem);
    if (n)
        memcpy(nv, arr, n * elem);
    return nv;
}

static int compile_regex(struct parser *p, const struct sl__logql_token *t, bool anchored,
                         struct sl_logql_regex **out)
{
    struct sl_buf why = SL_BUF_INIT;
    int rc = sl__logql_regex_compile(p->q, t->text, anchored, out, &why);
    if (rc && p->err)
        sl_buf_appendf(p->err, "parse error at line %d, col %d: error parsing regexp: %s", t->line,
                       t->col, why.data ? why.data : "invalid");
    sl_buf_release(&why);
    return rc;
}

static int parse_matcher(struct parser *p, struct sl_logql_matcher *m)
{
    const struct sl__logql_token *t = next(p);
    if (t->kind != SL__TOK_IDENT)
        return syntax_error(p, t, "IDENTIFIER");
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
        return syntax_error(p, t, "= or != or =~ or !~");
    }
    t = next(p);
    if (t->kind != SL__TOK_STRING)
        return syntax_error(p, t, "STRING");
    m->value = t->text;
    m->re = NULL;
    if (m->op == SL_LOGQL_MATCH_RE || m->op == SL_LOGQL_MATCH_NRE)
        return compile_regex(p, t, true, &m->re);
    return 0;
}

static int parse_selector(struct parser *p, struct sl_logql_log_expr *e)
{
    const struct sl__logql_token *t = next(p);
    if (t->kind != SL__TOK_LBRACE)
        return syntax_error(p, t, "{");
    if (peek(p)->kind != SL__TOK_RBRACE) {
        for (;;) {
            e->matchers = grow(&p->q->arena, e->matchers, e->nmatchers, sizeof *e->matchers);
            int rc = parse_matcher(p, &e->matchers[e->nmatchers]);
            if (rc)
                return rc;
            e->nmatchers++;
            t = next(p);
            if (t->kind == SL__TOK_RBRACE)
                break;
            if (t->kind != SL__TOK_COMMA)
                return syntax_error(p, t, ", or }");
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

static int parse_line_filter(struct parser *p, struct sl_logql_log_expr *e)
{
    const struct sl__logql_token *op = next(p);
    struct sl_logql_line_filter f = {0};
    switch (op->kind) {
    case SL__TOK_PIPE_EXACT:
        f.op = SL_LOGQL_FILTER_CONTAINS;
        break;
    case SL__TOK_NEQ:
        f.op = SL_LOGQL_FILTER_NOT_CONTAINS;
        break;
    case SL__TOK_PIPE_MATCH:
        f.op = SL_LOGQL_FILTER_MATCH;
        break;
    default:
        f.op = SL_LOGQL_FILTER_NOT_MATCH;
        break;
    }
    const struct sl__logql_token *t = next(p);
    if (t->kind == SL__TOK_IDENT && sl_bytes_eq_str(t->text, "ip") &&
        peek(p)->kind == SL__TOK_LPAREN)
        return unsupported(p, "line filter ip()");
    if (t->kind != SL__TOK_STRING)
        return syntax_error(p, t, "STRING");
    f.value = t->text;
    if (f.op == SL_LOGQL_FILTER_MATCH || f.op == SL_LOGQL_FILTER_NOT_MATCH) {
        int rc = compile_regex(p, t, false, &f.re);
        if (rc)
            return rc;
    }
    if (peek(p)->kind == SL__TOK_IDENT && sl_bytes_eq_str(peek(p)->text, "or"))
        return unsupported(p, "\"or\" in line filters");
    e->stages = grow(&p->q->arena, e->stages, e->nstages, sizeof *e->stages);
    e->stages[e->nstages].kind = SL_LOGQL_STAGE_LINE_FILTER;
    e->stages[e->nstages].u.line_filter = f;
    e->nstages++;
    return 0;
}

static bool is_label_filter_op(enum sl__logql_tok k)
{
    switch (k) {
    case SL__TOK_EQ:
    case SL__TOK_NEQ:
    case SL__TOK_RE:
    case SL__TOK_NRE:
    case SL__TOK_CMP_EQ:
    case SL__TOK_GT:
    case SL__TOK_GTE:
    case SL__TOK_LT:
    case SL__TOK_LTE:
        return true;
    default:
        return false;
    }
}

/* After a '|': every valid continuation is a later level. */
static int parse_pipe_stage(struct parser *p)
{
    next(p); /* | */
    const struct sl__logql_token *t = peek(p);
    if (t->kind == SL__TOK_IDENT) {
        if (in_list(t->text, parser_stages, SL_ARRAY_LEN(parser_stages)))
            return unsupported_name(p, "parser", t->text);
        if (in_list(t->text, other_stages, SL_ARRAY_LEN(other_stages)))
            return unsupported_name(p, "stage", t->text);
        if (is_label_filter_op(peek_at(p, 1)->kind) ||
            (sl_bytes_eq_str(t->text, "ip") && peek_at(p, 1)->kind == SL__TOK_LPAREN))
            return unsupported_name(p, "label filter on", t->text);
        return syntax_error(p, peek_at(p, 1), "= or != or =~ or !~ or == or > or >= or < or <=");
    }
    if (t->kind == SL__TOK_LPAREN)
        return unsupported(p, "label filter expressions");
    return syntax_error(p, t, "IDENTIFIER");
}

static int parse_pipeline(struct parser *p, struct sl_logql_log_expr *e)
{
    for (;;) {
        const struct sl__logql_token *t = peek(p);
        int rc;
        switch (t->kind) {
        case SL__TOK_PIPE_EXACT:
        case SL__TOK_NEQ:
        case SL__TOK_PIPE_MATCH:
        case SL__TOK_NRE:
            rc = parse_line_filter(p, e);
            break;
        case SL__TOK_PIPE_PATTERN:
        case SL__TOK_NPA:
            return unsupported(p, "pattern line filter \"%s\"", sl__logql_tok_name(t->kind));
        case SL__TOK_PIPE:
            rc = parse_pipe_stage(p);
            break;
        default:
            return 0;
        }
        if (rc)
            return rc;
    }
}

static int parse_log_expr(struct parser *p, struct sl_logql_log_expr *e, bool selector_only)
{
    if (peek(p)->kind == SL__TOK_LPAREN) {
        next(p);
        int rc = parse_log_expr(p, e, selector_only);
        if (rc)
            return rc;
        const struct sl__logql_token *t = next(p);
        if (t->kind != SL__TOK_RPAREN)
            return syntax_error(p, t, ")");
        return 0;
    }
    int rc = parse_selector(p, e);
    if (rc || selector_only)
        return rc;
    return parse_pipeline(p, e);
}

/* A query not starting with a selector: name what it is, if we can. */
static int classify_other(struct parser *p)
{
    size_t k = 0;
    while (peek_at(p, k)->kind == SL__TOK_LPAREN)
        k++;
    const struct sl__logql_token *t = peek_at(p, k);
    if (t->kind == SL__TOK_IDENT && in_list(t->text, metric_funcs, SL_ARRAY_LEN(metric_funcs)))
        return unsupported_name(p, "metric query", t->text);
    if (t->kind == SL__TOK_NUMBER || ((t->kind == SL__TOK_SUB || t->kind == SL__TOK_ADD) &&
                                      peek_at(p, k + 1)->kind == SL__TOK_NUMBER))
        return unsupported(p, "literal expressions");
    return syntax_error(p, t, k ? NULL : "{");
}

static int parse_query(struct parser *p, bool selector_only)
{
    size_t k = 0;
    while (peek_at(p, k)->kind == SL__TOK_LPAREN)
        k++;
    if (peek_at(p, k)->kind != SL__TOK_LBRACE)
        return selector_only ? syntax_error(p, peek_at(p, k), "{") : classify_other(p);
    struct sl_logql_expr *root = sl_arena_calloc(&p->q->arena, sizeof *root);
    root->kind = SL_LOGQL_EXPR_LOG;
    int rc = parse_log_expr(p, &root->u.log, selector_only);
    if (rc)
        return rc;
    const struct sl__logql_token *t = peek(p);
    if (t->kind != SL__TOK_EOF) {
        if (!selector_only && k == 0 && t->kind == SL__TOK_LBRACKET)
            return unsupported(p, "range vector outside a metric query");
        return syntax_error(p, t, NULL);
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
    struct parser p = {.q = q, .err = err};
    int rc = sl__logql_lex(&q->arena, s, n, &p.t, &p.nt, err);
    if (rc == 0)
        rc = parse_query(&p, selector_only);
    if (rc) {
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
