/* Pipeline stages of a log expression (Loki's grammar):
 *
 *   stage := lineFilter | '|' json [extract (',' extract)*] | '|' logfmt [flags] [extract ...]
 *          | '|' regexp STRING | '|' pattern STRING | '|' unpack
 *          | '|' line_format STRING | '|' label_format fmt (',' fmt)*
 *          | '|' drop item (',' item)* | '|' keep item (',' item)* | '|' decolorize
 *          | '|' labelFilter | '|' unwrap [conv '('] IDENT [')'] (range aggregations only)
 *   labelFilter := term ((and | ',' | or | juxtaposition) term)*, "or" binding loosest
 *   term := '(' labelFilter ')' | IDENT op STRING | IDENT cmp NUMBER|DURATION|BYTES
 *         | IDENT ('='|'!=') ip '(' STRING ')' */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "common/err.h"
#include "common/mem.h"

typedef struct sl__logql_parser parser;
typedef struct sl__logql_token token;

#define peek(p)       sl__logql_peek((p), 0)
#define peek_at(p, k) sl__logql_peek((p), (k))
#define next(p)       sl__logql_next(p)

static struct sl_logql_stage *add_stage(parser *p, struct sl_logql_log_expr *e,
                                        enum sl_logql_stage_kind k)
{
    e->stages = sl__logql_grow(&p->q->arena, e->stages, e->nstages, sizeof *e->stages);
    struct sl_logql_stage *st = &e->stages[e->nstages++];
    st->kind = k;
    return st;
}

static int parse_ip_call(parser *p, struct sl_logql_ip *ip)
{
    next(p); /* ip */
    const token *t = next(p);
    if (t->kind != SL__TOK_LPAREN)
        return sl__logql_syntax_error(p, t, "(");
    t = next(p);
    if (t->kind != SL__TOK_STRING)
        return sl__logql_syntax_error(p, t, "STRING");
    if (!sl__logql_ip_parse(t->text, ip))
        return sl__logql_error_at(p, t, "invalid ip filter pattern \"%.*s\"", (int)t->text.len,
                                  t->text.ptr);
    t = next(p);
    if (t->kind != SL__TOK_RPAREN)
        return sl__logql_syntax_error(p, t, ")");
    return 0;
}

/* One value of a line filter (a string, or ip("...") after |= and !=). */
static int parse_filter_value(parser *p, enum sl_logql_filter_op op, struct sl_logql_line_filter *f)
{
    const token *t = peek(p);
    int rc;
    f->op = op;
    if (sl__logql_is_ident(t, "ip") && peek_at(p, 1)->kind == SL__TOK_LPAREN) {
        if (op != SL_LOGQL_FILTER_CONTAINS && op != SL_LOGQL_FILTER_NOT_CONTAINS)
            return sl__logql_error_at(p, t, "syntax error: ip() only with |= or !=");
        if ((rc = parse_ip_call(p, &f->ip)))
            return rc;
        f->value = f->ip.text;
        f->op = op == SL_LOGQL_FILTER_CONTAINS ? SL_LOGQL_FILTER_IP : SL_LOGQL_FILTER_NOT_IP;
        return 0;
    }
    next(p);
    if (t->kind != SL__TOK_STRING)
        return sl__logql_syntax_error(p, t, "STRING");
    f->value = t->text;
    if (op == SL_LOGQL_FILTER_MATCH || op == SL_LOGQL_FILTER_NOT_MATCH)
        return sl__logql_compile_regex(p, t, false, &f->re);
    return 0;
}

static int parse_line_filter(parser *p, struct sl_logql_log_expr *e)
{
    const token *optok = next(p);
    enum sl_logql_filter_op op;
    switch (optok->kind) {
    case SL__TOK_PIPE_EXACT:
        op = SL_LOGQL_FILTER_CONTAINS;
        break;
    case SL__TOK_NEQ:
        op = SL_LOGQL_FILTER_NOT_CONTAINS;
        break;
    case SL__TOK_PIPE_MATCH:
        op = SL_LOGQL_FILTER_MATCH;
        break;
    default:
        op = SL_LOGQL_FILTER_NOT_MATCH;
        break;
    }
    struct sl_logql_line_filter f = {0};
    int rc = parse_filter_value(p, op, &f);
    struct sl_logql_line_filter **tail = &f.alt;
    while (rc == 0 && sl__logql_is_ident(peek(p), "or")) {
        next(p);
        *tail = sl_arena_calloc(&p->q->arena, sizeof **tail);
        rc = parse_filter_value(p, op, *tail);
        tail = &(*tail)->alt;
    }
    if (rc)
        return rc;
    add_stage(p, e, SL_LOGQL_STAGE_LINE_FILTER)->line_filter = f;
    return 0;
}

static bool cmp_of(enum sl__logql_tok k, enum sl_logql_cmp *c)
{
    switch (k) {
    case SL__TOK_EQ:
    case SL__TOK_CMP_EQ:
        *c = SL_LOGQL_CMP_EQ;
        return true;
    case SL__TOK_NEQ:
        *c = SL_LOGQL_CMP_NEQ;
        return true;
    case SL__TOK_GT:
        *c = SL_LOGQL_CMP_GT;
        return true;
    case SL__TOK_GTE:
        *c = SL_LOGQL_CMP_GTE;
        return true;
    case SL__TOK_LT:
        *c = SL_LOGQL_CMP_LT;
        return true;
    case SL__TOK_LTE:
        *c = SL_LOGQL_CMP_LTE;
        return true;
    default:
        return false;
    }
}

/* name cmp value, where value is a number, a duration or a size. */
/* Loki's lexer reads a duration as far as duration units go, so in `1mb`
 * (lower case) the token is the duration 1m and `b` is left over: a syntax
 * error, where 1MB and 1kb are bytes. */
static bool duration_then_more(struct sl_bytes t)
{
    size_t i = 0;
    while (i < t.len &&
           (isdigit((unsigned char)t.ptr[i]) || t.ptr[i] == '.' || strchr("nsumhdwy", t.ptr[i])))
        i++;
    int64_t ns;
    return i < t.len && sl__logql_parse_go_duration(sl_bytes(t.ptr, i), &ns);
}

static int parse_unit_filter(parser *p, const token *name, const token *op,
                             struct sl_logql_label_filter *f)
{
    bool neg = false;
    if (peek(p)->kind == SL__TOK_SUB || peek(p)->kind == SL__TOK_ADD)
        neg = next(p)->kind == SL__TOK_SUB;
    const token *v = next(p);
    if (v->kind != SL__TOK_NUMBER)
        return sl__logql_syntax_error(p, v, "STRING or NUMBER or DURATION or BYTES");
    if (!cmp_of(op->kind, &f->cmp))
        return sl__logql_syntax_error(p, op, NULL);
    if (duration_then_more(v->text))
        return sl__logql_error_at(p, v, "syntax error: unexpected IDENTIFIER");
    f->m.name = name->text;
    f->text = v->text;
    uint64_t bytes;
    if (sl__logql_parse_float(v->text, &f->num) && isfinite(f->num)) {
        f->kind = SL_LOGQL_LF_NUMBER;
        if (neg)
            f->num = -f->num;
    } else if (sl__logql_parse_go_duration(v->text, &f->ival)) {
        f->kind = SL_LOGQL_LF_DURATION;
        /* Loki's grammar signs numbers only: `d > -5s` is a syntax error */
        if (neg)
            return sl__logql_error_at(p, v, "syntax error: unexpected DURATION, expecting NUMBER");
    } else if (!neg && sl__logql_parse_bytes(v->text, &bytes)) {
        f->kind = SL_LOGQL_LF_BYTES;
        f->ival = (int64_t)bytes;
    } else {
        return sl__logql_error_at(p, v, "syntax error: invalid number, duration or bytes \"%.*s\"",
                                  (int)v->text.len, v->text.ptr);
    }
    if (neg) {
        struct sl_bytes t = v->text;
        char *s = sl_arena_alloc(&p->q->arena, t.len + 1);
        s[0] = '-';
        memcpy(s + 1, t.ptr, t.len);
        f->text = sl_bytes(s, t.len + 1);
    }
    return 0;
}

static int parse_lf_or(parser *p, struct sl_logql_label_filter **out);

/* As Loki: a converting filter (number, duration, bytes, ip) can never read
 * the error labels, which are strings, so it is refused rather than
 * silently matching nothing. */
static int check_error_label(parser *p, const struct sl_logql_label_filter *f)
{
    if (!sl_bytes_eq_str(f->m.name, "__error__") &&
        !sl_bytes_eq_str(f->m.name, "__error_details__"))
        return 0;
    struct sl_buf b = SL_BUF_INIT;
    sl__logql_format_label_filter(f, &b);
    int rc = sl__logql_error_at(p, NULL, "%.*s is a string label and cannot be compared with %.*s",
                                (int)f->m.name.len, f->m.name.ptr, (int)b.len, b.data);
    sl_buf_release(&b);
    return rc;
}

static int parse_lf_term(parser *p, struct sl_logql_label_filter **out)
{
    const token *t = peek(p);
    if (t->kind == SL__TOK_LPAREN) {
        next(p);
        int rc = parse_lf_or(p, out);
        if (rc)
            return rc;
        t = next(p);
        return t->kind == SL__TOK_RPAREN ? 0 : sl__logql_syntax_error(p, t, ")");
    }
    if (t->kind != SL__TOK_IDENT)
        return sl__logql_syntax_error(p, t, "IDENTIFIER");
    const token *name = next(p);
    const token *op = next(p);
    struct sl_logql_label_filter *f = sl_arena_calloc(&p->q->arena, sizeof *f);
    *out = f;
    const token *v = peek(p);
    if (sl__logql_is_ident(v, "ip") && peek_at(p, 1)->kind == SL__TOK_LPAREN) {
        if (op->kind != SL__TOK_EQ && op->kind != SL__TOK_NEQ)
            return sl__logql_syntax_error(p, op, "= or !=");
        f->kind = SL_LOGQL_LF_IP;
        f->m.name = name->text;
        f->m.op = op->kind == SL__TOK_EQ ? SL_LOGQL_MATCH_EQ : SL_LOGQL_MATCH_NEQ;
        int rc = parse_ip_call(p, &f->ip);
        return rc ? rc : check_error_label(p, f);
    }
    if (v->kind == SL__TOK_STRING) {
        f->kind = SL_LOGQL_LF_STRING;
        f->m.name = name->text;
        f->m.value = v->text;
        switch (op->kind) {
        case SL__TOK_EQ:
            f->m.op = SL_LOGQL_MATCH_EQ;
            break;
        case SL__TOK_NEQ:
            f->m.op = SL_LOGQL_MATCH_NEQ;
            break;
        case SL__TOK_RE:
            f->m.op = SL_LOGQL_MATCH_RE;
            break;
        case SL__TOK_NRE:
            f->m.op = SL_LOGQL_MATCH_NRE;
            break;
        default:
            return sl__logql_syntax_error(p, v, "NUMBER or DURATION or BYTES");
        }
        next(p);
        if (f->m.op == SL_LOGQL_MATCH_RE || f->m.op == SL_LOGQL_MATCH_NRE)
            return sl__logql_compile_regex(p, v, true, &f->m.re);
        return 0;
    }
    enum sl_logql_cmp c;
    if (!cmp_of(op->kind, &c))
        return sl__logql_syntax_error(p, op, "= or != or =~ or !~ or == or > or >= or < or <=");
    int rc = parse_unit_filter(p, name, op, f);
    return rc ? rc : check_error_label(p, f);
}

static bool lf_term_start(const parser *p)
{
    const token *t = peek(p);
    if (t->kind == SL__TOK_LPAREN)
        return true;
    if (t->kind != SL__TOK_IDENT || sl__logql_is_ident(t, "or") || sl__logql_is_ident(t, "and"))
        return false;
    enum sl_logql_cmp c;
    enum sl__logql_tok k = peek_at(p, 1)->kind;
    return cmp_of(k, &c) || k == SL__TOK_RE || k == SL__TOK_NRE;
}

static struct sl_logql_label_filter *lf_bin(parser *p, enum sl_logql_lf_kind k,
                                            struct sl_logql_label_filter *l,
                                            struct sl_logql_label_filter *r)
{
    struct sl_logql_label_filter *f = sl_arena_calloc(&p->q->arena, sizeof *f);
    f->kind = k;
    f->l = l;
    f->r = r;
    return f;
}

/* Grouping as Loki's yacc grammar resolves it: `and` binds tighter than
 * `or`, both left-associative, while `,` and juxtaposition have no declared
 * precedence, so the parser always shifts after them: their right operand is
 * the whole rest of the filter. `a, b or c` is `a and (b or c)`; `a or b, c`
 * is `a or (b and c)`. */
static int parse_lf_and_term(parser *p, struct sl_logql_label_filter **out)
{
    int rc = parse_lf_term(p, out);
    if (rc)
        return rc;
    bool comma = peek(p)->kind == SL__TOK_COMMA;
    if (!comma && !lf_term_start(p))
        return 0;
    if (comma)
        next(p);
    struct sl_logql_label_filter *r;
    if ((rc = parse_lf_or(p, &r)))
        return rc;
    *out = lf_bin(p, SL_LOGQL_LF_AND, *out, r);
    return 0;
}

static int parse_lf_and(parser *p, struct sl_logql_label_filter **out)
{
    int rc = parse_lf_and_term(p, out);
    while (rc == 0 && sl__logql_is_ident(peek(p), "and")) {
        next(p);
        struct sl_logql_label_filter *r;
        if ((rc = parse_lf_and_term(p, &r)))
            break;
        *out = lf_bin(p, SL_LOGQL_LF_AND, *out, r);
    }
    return rc;
}

static int parse_lf_or(parser *p, struct sl_logql_label_filter **out)
{
    int rc = parse_lf_and(p, out);
    while (rc == 0 && sl__logql_is_ident(peek(p), "or")) {
        next(p);
        struct sl_logql_label_filter *r;
        if ((rc = parse_lf_and(p, &r)))
            break;
        *out = lf_bin(p, SL_LOGQL_LF_OR, *out, r);
    }
    return rc;
}

/* json/logfmt expressions: IDENT ['=' STRING] (',' ...)* */
static int parse_extracts(parser *p, struct sl_logql_stage *st, bool json)
{
    for (;;) {
        const token *t = next(p);
        struct sl_logql_extract x = {.name = t->text, .expr = t->text};
        if (peek(p)->kind == SL__TOK_EQ) {
            next(p);
            const token *v = next(p);
            if (v->kind != SL__TOK_STRING)
                return sl__logql_syntax_error(p, v, "STRING");
            x.expr = v->text;
        }
        if (!sl_label_name_valid(x.name))
            return sl__logql_error_at(p, t, "invalid extracted label name '%.*s'", (int)x.name.len,
                                      x.name.ptr);
        if (json) {
            struct sl_buf why = SL_BUF_INIT;
            int rc = sl__logql_json_path_parse(&p->q->arena, x.expr, &x, &why);
            if (rc) {
                sl__logql_error_at(p, NULL, "cannot parse expression [%.*s]: %.*s", (int)x.expr.len,
                                   x.expr.ptr, (int)why.len, why.data ? why.data : "");
                sl_buf_release(&why);
                return rc;
            }
        }
        st->ex = sl__logql_grow(&p->q->arena, st->ex, st->nex, sizeof *st->ex);
        st->ex[st->nex++] = x;
        if (peek(p)->kind != SL__TOK_COMMA || peek_at(p, 1)->kind != SL__TOK_IDENT)
            return 0;
        next(p);
    }
}

static int parse_logfmt_flags(parser *p, struct sl_logql_stage *st)
{
    while (peek(p)->kind == SL__TOK_SUB && peek_at(p, 1)->kind == SL__TOK_SUB) {
        next(p);
        next(p);
        const token *t = next(p);
        if (sl__logql_is_ident(t, "strict")) {
            st->strict = true;
        } else if (sl__logql_is_ident(t, "keep") && peek(p)->kind == SL__TOK_SUB &&
                   sl__logql_is_ident(peek_at(p, 1), "empty")) {
            next(p);
            next(p);
            st->keep_empty = true;
        } else {
            return sl__logql_error_at(p, t, "syntax error: unknown logfmt flag");
        }
    }
    return 0;
}

static int parse_regexp_stage(parser *p, struct sl_logql_stage *st, const token *t)
{
    int rc = sl__logql_compile_regex(p, t, false, &st->re);
    if (rc)
        return rc;
    st->nnames = sl__logql_regex_names(p->q, st->re, &st->names);
    size_t named = 0;
    for (size_t i = 0; i < st->nnames; i++) {
        if (!st->names[i].len)
            continue;
        named++;
        if (!sl_label_name_valid(st->names[i]))
            return sl__logql_error_at(p, NULL, "invalid extracted label name '%.*s'",
                                      (int)st->names[i].len, st->names[i].ptr);
    }
    if (named == 0)
        return sl__logql_error_at(p, t, "at least one named capture must be supplied");
    return 0;
}

static int parse_label_format(parser *p, struct sl_logql_stage *st)
{
    for (;;) {
        const token *d = next(p);
        if (d->kind != SL__TOK_IDENT)
            return sl__logql_syntax_error(p, d, "IDENTIFIER");
        const token *t = next(p);
        if (t->kind != SL__TOK_EQ)
            return sl__logql_syntax_error(p, t, "=");
        t = next(p);
        struct sl_logql_label_fmt f = {.dst = d->text};
        if (sl_bytes_eq_str(f.dst, "__error__")) /* Loki: only parsers set the error */
            return sl__logql_error_at(p, d, "%s cannot be formatted", "__error__");
        if (t->kind == SL__TOK_IDENT) {
            f.src = t->text;
        } else if (t->kind == SL__TOK_STRING) {
            f.tmpl_text = t->text;
            struct sl_buf why = SL_BUF_INIT;
            int rc = sl__logql_template_parse(p->q, t->text, &f.tmpl, &why);
            if (rc) {
                sl__logql_error_at(p, t, "%.*s", (int)why.len, why.data ? why.data : "");
                sl_buf_release(&why);
                return rc;
            }
        } else {
            return sl__logql_syntax_error(p, t, "IDENTIFIER or STRING");
        }
        for (size_t i = 0; i < st->nfmts; i++)
            if (sl_bytes_eq(st->fmts[i].dst, f.dst))
                return sl__logql_error_at(p, d,
                                          "multiple label name '%.*s' not allowed in a "
                                          "single format operation",
                                          (int)f.dst.len, f.dst.ptr);
        st->fmts = sl__logql_grow(&p->q->arena, st->fmts, st->nfmts, sizeof *st->fmts);
        st->fmts[st->nfmts++] = f;
        if (peek(p)->kind != SL__TOK_COMMA)
            return 0;
        next(p);
    }
}

static int parse_drop_keep(parser *p, struct sl_logql_stage *st)
{
    for (;;) {
        const token *t = next(p);
        if (t->kind != SL__TOK_IDENT)
            return sl__logql_syntax_error(p, t, "IDENTIFIER");
        struct sl_logql_matcher m = {.name = t->text};
        bool has = false;
        enum sl__logql_tok k = peek(p)->kind;
        if (k == SL__TOK_EQ || k == SL__TOK_NEQ || k == SL__TOK_RE || k == SL__TOK_NRE) {
            p->pos--;
            int rc;
            if ((rc = sl__logql_parse_matcher(p, &m)))
                return rc;
            has = true;
        }
        st->items = sl__logql_grow(&p->q->arena, st->items, st->nitems, sizeof *st->items);
        st->item_has_value =
            sl__logql_grow(&p->q->arena, st->item_has_value, st->nitems, sizeof(bool));
        st->items[st->nitems] = m;
        st->item_has_value[st->nitems++] = has;
        if (peek(p)->kind != SL__TOK_COMMA)
            return 0;
        next(p);
    }
}

static bool lf_term_start_after_pipe(parser *p)
{
    p->pos++;
    bool ok = lf_term_start(p);
    p->pos--;
    return ok;
}

static int parse_unwrap(parser *p, struct sl_logql_range_expr *r)
{
    const token *t = next(p);
    if (t->kind != SL__TOK_IDENT)
        return sl__logql_syntax_error(p, t, "IDENTIFIER");
    r->conv = SL_LOGQL_UNWRAP_PLAIN;
    if (peek(p)->kind == SL__TOK_LPAREN) {
        if (sl_bytes_eq_str(t->text, "duration"))
            r->conv = SL_LOGQL_UNWRAP_DURATION;
        else if (sl_bytes_eq_str(t->text, "duration_seconds"))
            r->conv = SL_LOGQL_UNWRAP_DURATION_SECONDS;
        else if (sl_bytes_eq_str(t->text, "bytes"))
            r->conv = SL_LOGQL_UNWRAP_BYTES;
        else
            return sl__logql_unsupported(p, "unwrap conversion \"%.*s\"", (int)t->text.len,
                                         t->text.ptr);
        next(p);
        t = next(p);
        if (t->kind != SL__TOK_IDENT)
            return sl__logql_syntax_error(p, t, "IDENTIFIER");
        const token *c = next(p);
        if (c->kind != SL__TOK_RPAREN)
            return sl__logql_syntax_error(p, c, ")");
    }
    r->unwrap_label = t->text;
    /* Label filters after unwrap apply to the extracted samples. */
    while (peek(p)->kind == SL__TOK_PIPE && lf_term_start_after_pipe(p)) {
        next(p);
        struct sl_logql_label_filter *f;
        int rc = parse_lf_or(p, &f);
        if (rc)
            return rc;
        r->post = sl__logql_grow(&p->q->arena, r->post, r->npost, sizeof *r->post);
        r->post[r->npost++] = f;
    }
    return 0;
}

static const char *const unsupported_stages[] = {"distinct", "xml"};

/* After a '|'. */
static int parse_pipe_stage(parser *p, struct sl_logql_log_expr *e, struct sl_logql_range_expr *r,
                            bool *after_unwrap)
{
    next(p); /* | */
    const token *t = peek(p);
    int rc;
    if (lf_term_start(p)) {
        struct sl_logql_label_filter *f;
        if ((rc = parse_lf_or(p, &f)))
            return rc;
        add_stage(p, e, SL_LOGQL_STAGE_LABEL_FILTER)->lf = f;
        return 0;
    }
    if (t->kind != SL__TOK_IDENT)
        return sl__logql_syntax_error(p, t, "IDENTIFIER");
    next(p);
    if (sl__logql_is_ident(t, "json")) {
        struct sl_logql_stage *st = add_stage(p, e, SL_LOGQL_STAGE_JSON);
        return peek(p)->kind == SL__TOK_IDENT ? parse_extracts(p, st, true) : 0;
    }
    if (sl__logql_is_ident(t, "logfmt")) {
        struct sl_logql_stage *st = add_stage(p, e, SL_LOGQL_STAGE_LOGFMT);
        if ((rc = parse_logfmt_flags(p, st)))
            return rc;
        return peek(p)->kind == SL__TOK_IDENT ? parse_extracts(p, st, false) : 0;
    }
    if (sl__logql_is_ident(t, "unpack")) {
        add_stage(p, e, SL_LOGQL_STAGE_UNPACK);
        return 0;
    }
    if (sl__logql_is_ident(t, "decolorize")) {
        add_stage(p, e, SL_LOGQL_STAGE_DECOLORIZE);
        return 0;
    }
    bool is_re = sl__logql_is_ident(t, "regexp"), is_pat = sl__logql_is_ident(t, "pattern");
    bool is_lf = sl__logql_is_ident(t, "line_format");
    if (is_re || is_pat || is_lf) {
        const token *s = next(p);
        if (s->kind != SL__TOK_STRING)
            return sl__logql_syntax_error(p, s, "STRING");
        struct sl_logql_stage *st = add_stage(p, e,
                                              is_re    ? SL_LOGQL_STAGE_REGEXP
                                              : is_pat ? SL_LOGQL_STAGE_PATTERN
                                                       : SL_LOGQL_STAGE_LINE_FORMAT);
        st->text = s->text;
        if (is_re)
            return parse_regexp_stage(p, st, s);
        struct sl_buf why = SL_BUF_INIT;
        rc = is_pat ? sl__logql_pattern_parse(&p->q->arena, s->text, &st->pattern, &why)
                    : sl__logql_template_parse(p->q, s->text, &st->tmpl, &why);
        if (rc)
            sl__logql_error_at(p, s, "%.*s", (int)why.len, why.data ? why.data : "");
        sl_buf_release(&why);
        return rc;
    }
    if (sl__logql_is_ident(t, "label_format"))
        return parse_label_format(p, add_stage(p, e, SL_LOGQL_STAGE_LABEL_FORMAT));
    if (sl__logql_is_ident(t, "drop"))
        return parse_drop_keep(p, add_stage(p, e, SL_LOGQL_STAGE_DROP));
    if (sl__logql_is_ident(t, "keep"))
        return parse_drop_keep(p, add_stage(p, e, SL_LOGQL_STAGE_KEEP));
    if (sl__logql_is_ident(t, "unwrap")) {
        if (!r)
            return sl__logql_error_at(p, t,
                                      "syntax error: unexpected unwrap outside a range "
                                      "aggregation");
        if (*after_unwrap)
            return sl__logql_syntax_error(p, t, NULL);
        *after_unwrap = true;
        return parse_unwrap(p, r);
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(unsupported_stages); i++)
        if (sl__logql_is_ident(t, unsupported_stages[i]))
            return sl__logql_unsupported(p, "stage \"%s\"", unsupported_stages[i]);
    return sl__logql_syntax_error(p, peek(p), "= or != or =~ or !~ or == or > or >= or < or <=");
}

int sl__logql_parse_pipeline(parser *p, struct sl_logql_log_expr *e,
                             struct sl_logql_range_expr *range)
{
    bool after_unwrap = range && range->conv != SL_LOGQL_UNWRAP_NONE;
    for (;;) {
        const token *t = peek(p);
        int rc;
        switch (t->kind) {
        case SL__TOK_PIPE_EXACT:
        case SL__TOK_NEQ:
        case SL__TOK_PIPE_MATCH:
        case SL__TOK_NRE:
            if (after_unwrap)
                return sl__logql_syntax_error(p, t, NULL);
            rc = parse_line_filter(p, e);
            break;
        case SL__TOK_PIPE_PATTERN:
        case SL__TOK_NPA:
            return sl__logql_unsupported(p, "pattern line filter \"%s\"",
                                         sl__logql_tok_name(t->kind));
        case SL__TOK_PIPE:
            if (after_unwrap)
                return sl__logql_syntax_error(p, peek_at(p, 1), NULL);
            rc = parse_pipe_stage(p, e, range, &after_unwrap);
            break;
        default:
            return 0;
        }
        if (rc)
            return rc;
    }
}
