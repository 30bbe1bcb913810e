/* LogQL evaluation of selectors and line filters, the canonical printer, and
 * the PCRE2 wrapper. Literal line filters use memmem; regexes use PCRE2 with
 * JIT and a match limit. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/logql.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/utf8.h"

struct sl_logql_regex {
    struct sl_logql_regex *next;
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

int sl__logql_regex_compile(struct sl_logql_query *q, struct sl_bytes pattern, bool anchored,
                            struct sl_logql_regex **out, struct sl_buf *err)
{
    /* Go's regexp semantics where PCRE2 differs by default: '$' is the end
     * of the text only; lines need not be valid UTF-8. */
    uint32_t opts =
        PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C;
    if (anchored)
        opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
    int ec;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(pattern.len ? pattern.ptr : ""), pattern.len,
                                     opts, &ec, &eoff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        if (err)
            sl_buf_appendf(err, "%s at offset %zu", (const char *)msg, (size_t)eoff);
        return SL_EINVAL;
    }
    /* JIT is an optimisation: without it (unsupported CPU, no exec memory)
     * the interpreter gives the same answers under the same limit. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    struct sl_logql_regex *re = SL_NEW(struct sl_logql_regex);
    re->code = code;
    re->md = pcre2_match_data_create(1, NULL);
    re->mctx = pcre2_match_context_create(NULL);
    if (!re->md || !re->mctx)
        abort(); /* as sl_malloc: allocation failure is fatal */
    pcre2_set_match_limit(re->mctx, SL_LOGQL_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, SL_LOGQL_REGEX_MATCH_LIMIT / 10);
    re->next = q->regexes;
    q->regexes = re;
    *out = re;
    return 0;
}

bool sl__logql_regex_match(struct sl_logql_query *q, struct sl_logql_regex *re,
                           struct sl_bytes subject)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(subject.len ? subject.ptr : ""), subject.len, 0, 0,
                         re->md, re->mctx);
    if (rc >= 0)
        return true;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
        q->regex_limit_hits++;
    return false;
}

void sl__logql_regex_free_all(struct sl_logql_query *q)
{
    struct sl_logql_regex *re = q->regexes;
    while (re) {
        struct sl_logql_regex *nx = re->next;
        pcre2_match_data_free(re->md);
        pcre2_match_context_free(re->mctx);
        pcre2_code_free(re->code);
        sl_free(re);
        re = nx;
    }
    q->regexes = NULL;
}

bool sl_logql_matcher_matches(struct sl_logql_query *q, const struct sl_logql_matcher *m,
                              struct sl_bytes value)
{
    switch (m->op) {
    case SL_LOGQL_MATCH_EQ:
        return sl_bytes_eq(value, m->value);
    case SL_LOGQL_MATCH_NEQ:
        return !sl_bytes_eq(value, m->value);
    case SL_LOGQL_MATCH_RE:
        return sl__logql_regex_match(q, m->re, value);
    case SL_LOGQL_MATCH_NRE:
        return !sl__logql_regex_match(q, m->re, value);
    }
    return false;
}

bool sl_logql_match_labels(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                           const struct sl_labels *ls)
{
    for (size_t k = 0; k < e->nmatchers; k++) {
        const struct sl_logql_matcher *m = &e->matchers[k];
        struct sl_bytes v = {"", 0};
        for (size_t j = 0; j < ls->n; j++) {
            if (sl_bytes_eq(ls->items[j].name, m->name)) {
                v = ls->items[j].value;
                break;
            }
        }
        if (!sl_logql_matcher_matches(q, m, v))
            return false;
    }
    return true;
}

static bool contains(struct sl_bytes line, struct sl_bytes needle)
{
    if (needle.len == 0)
        return true;
    return line.len >= needle.len && memmem(line.ptr, line.len, needle.ptr, needle.len) != NULL;
}

static bool line_filter_pass(struct sl_logql_query *q, const struct sl_logql_line_filter *f,
                             struct sl_bytes line)
{
    switch (f->op) {
    case SL_LOGQL_FILTER_CONTAINS:
        return contains(line, f->value);
    case SL_LOGQL_FILTER_NOT_CONTAINS:
        return !contains(line, f->value);
    case SL_LOGQL_FILTER_MATCH:
        return sl__logql_regex_match(q, f->re, line);
    case SL_LOGQL_FILTER_NOT_MATCH:
        return !sl__logql_regex_match(q, f->re, line);
    }
    return false;
}

bool sl_logql_match_line(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                         struct sl_bytes line)
{
    for (size_t k = 0; k < e->nstages; k++) {
        const struct sl_logql_stage *st = &e->stages[k];
        if (st->kind == SL_LOGQL_STAGE_LINE_FILTER &&
            !line_filter_pass(q, &st->u.line_filter, line))
            return false;
    }
    return true;
}

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
    }
    return "?";
}

static void format_log_expr(const struct sl_logql_log_expr *e, struct sl_buf *out)
{
    sl_buf_append_char(out, '{');
    for (size_t k = 0; k < e->nmatchers; k++) {
        const struct sl_logql_matcher *m = &e->matchers[k];
        if (k)
            sl_buf_append_str(out, ", ");
        sl_buf_append_bytes(out, m->name);
        sl_buf_append_str(out, match_op_str(m->op));
        sl_logql_quote(out, m->value);
    }
    sl_buf_append_char(out, '}');
    for (size_t k = 0; k < e->nstages; k++) {
        const struct sl_logql_stage *st = &e->stages[k];
        if (st->kind == SL_LOGQL_STAGE_LINE_FILTER) {
            sl_buf_append_char(out, ' ');
            sl_buf_append_str(out, filter_op_str(st->u.line_filter.op));
            sl_buf_append_char(out, ' ');
            sl_logql_quote(out, st->u.line_filter.value);
        }
    }
}

void sl_logql_format(const struct sl_logql_query *q, struct sl_buf *out)
{
    if (!q || !q->root)
        return;
    switch (q->root->kind) {
    case SL_LOGQL_EXPR_LOG:
        format_log_expr(&q->root->u.log, out);
        break;
    }
}
