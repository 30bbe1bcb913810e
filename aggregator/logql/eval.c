/* LogQL evaluation of selectors and line filters, and the PCRE2 wrapper. Literal line filters use
 * memmem; regexes use PCRE2 with JIT and a match limit. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/logql/internal.h"
#include "aggregator/logql/logql.h"
#include "aggregator/logql/regex.h"
#include "common/err.h"
#include "common/mem.h"
#include "common/utf8.h"

struct sl_logql_regex {
    struct sl_logql_regex *next;
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_data *md_full; /* with room for every group, made on first use */
    pcre2_match_context *mctx;
    char *pattern; /* NUL-terminated copy, for sl__logql_regex_cached */
    size_t pattern_len;
    bool anchored;
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
    re->pattern = sl_memdup(pattern.len ? pattern.ptr : "", pattern.len + 1);
    re->pattern[pattern.len] = 0;
    re->pattern_len = pattern.len;
    re->anchored = anchored;
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

int sl__logql_regex_cached(struct sl_logql_query *q, struct sl_bytes pattern,
                           struct sl_logql_regex **out, struct sl_buf *err)
{
    for (struct sl_logql_regex *re = q->regexes; re; re = re->next)
        if (!re->anchored && re->pattern_len == pattern.len &&
            (pattern.len == 0 || memcmp(re->pattern, pattern.ptr, pattern.len) == 0)) {
            *out = re;
            return 0;
        }
    return sl__logql_regex_compile(q, pattern, false, out, err);
}

size_t sl__logql_regex_names(struct sl_logql_query *q, struct sl_logql_regex *re,
                             struct sl_bytes **names)
{
    uint32_t count = 0, namecount = 0, entry = 0;
    PCRE2_SPTR table;
    pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &count);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &namecount);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    *names = sl_arena_calloc(&q->arena, (count + 1) * sizeof **names);
    for (uint32_t i = 0; i < namecount; i++) {
        const unsigned char *e = (const unsigned char *)table + (size_t)i * entry;
        uint32_t n = ((uint32_t)e[0] << 8) | e[1];
        if (n <= count)
            (*names)[n] = sl_arena_bytes(&q->arena, sl_bytes_str((const char *)e + 2));
    }
    return count + 1;
}

int sl__logql_regex_exec(struct sl_logql_query *q, struct sl_logql_regex *re,
                         struct sl_bytes subject, size_t start, size_t *ovec, size_t novec)
{
    if (!re->md_full) {
        re->md_full = pcre2_match_data_create_from_pattern(re->code, NULL);
        if (!re->md_full)
            abort();
    }
    int rc = pcre2_match(re->code, (PCRE2_SPTR)(subject.len ? subject.ptr : ""), subject.len, start,
                         0, re->md_full, re->mctx);
    if (rc < 0) {
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
            q->regex_limit_hits++;
        return 0;
    }
    uint32_t n = pcre2_get_ovector_count(re->md_full);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md_full);
    for (size_t i = 0; i < novec && i < 2 * (size_t)n; i++)
        ovec[i] = ov[i];
    for (size_t i = 2 * (size_t)n; i < novec; i++)
        ovec[i] = PCRE2_UNSET;
    return (int)n;
}

void sl__logql_regex_free_all(struct sl_logql_query *q)
{
    struct sl_logql_regex *re = q->regexes;
    while (re) {
        struct sl_logql_regex *nx = re->next;
        pcre2_match_data_free(re->md);
        pcre2_match_data_free(re->md_full);
        pcre2_match_context_free(re->mctx);
        pcre2_code_free(re->code);
        sl_free(re->pattern);
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

static bool filter_one(struct sl_logql_query *q, const struct sl_logql_line_filter *f,
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
    case SL_LOGQL_FILTER_IP:
        return sl__logql_ip_in_line(&f->ip, line);
    case SL_LOGQL_FILTER_NOT_IP:
        return !sl__logql_ip_in_line(&f->ip, line);
    }
    return false;
}

bool sl__logql_line_filter_pass(struct sl_logql_query *q, const struct sl_logql_line_filter *f,
                                struct sl_bytes line)
{
    if (!f->alt)
        return filter_one(q, f, line);
    bool neg = f->op == SL_LOGQL_FILTER_NOT_CONTAINS || f->op == SL_LOGQL_FILTER_NOT_MATCH ||
               f->op == SL_LOGQL_FILTER_NOT_IP;
    for (const struct sl_logql_line_filter *g = f; g; g = g->alt) {
        bool pass = filter_one(q, g, line);
        if (neg && !pass)
            return false;
        if (!neg && pass)
            return true;
    }
    return neg;
}

bool sl_logql_match_line(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                         struct sl_bytes line)
{
    for (size_t k = 0; k < e->nstages; k++) {
        const struct sl_logql_stage *st = &e->stages[k];
        if (st->kind != SL_LOGQL_STAGE_LINE_FILTER)
            break;
        if (!sl__logql_line_filter_pass(q, &st->line_filter, line))
            return false;
    }
    return true;
}
