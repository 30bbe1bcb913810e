/* LogQL-lite (DESIGN.md "LogQL-lite"): parser, canonical printer and the
 * evaluation of the parts supported so far:
 *
 *   level 1  stream selectors   {app="api", env!="dev", pod=~"api-.*", ns!~"kube-.*"}
 *   level 2  line filters       |= "x"  != "x"  |~ "re"  !~ "re", chained
 *
 * Everything else that LogQL has (ip() filters, parsers, label filters,
 * formatting stages, metric queries, binary operators ...) is recognised
 * enough to be refused with SL_EUNSUPP and a message naming the construct,
 * e.g. `unsupported in this version: parser "json"`; it is never silently
 * ignored. Syntax errors are SL_EINVAL with Loki's wording:
 * `parse error at line 1, col 17: syntax error: unexpected ...`.
 *
 * The AST is a tree of sl_logql_expr nodes; today only the LOG kind exists.
 * Later levels add kinds (range/vector aggregations, binary operations,
 * literals) and pipeline stage kinds (parsers, label filters, formats)
 * without changing the existing ones.
 *
 * Regexes are PCRE2 with JIT. Stream matchers are fully anchored (compiled
 * with PCRE2_ANCHORED | PCRE2_ENDANCHORED, the equivalent of Go's ^(?:re)$);
 * line filter regexes are not. Every match runs with a match limit, so no
 * pattern can hang a querier; a match that hits the limit counts as "no
 * match" and is counted in sl_logql_query.regex_limit_hits.
 *
 * Ownership: a query owns all its memory (one arena plus the compiled
 * regexes); strings in the AST point into that arena.
 * Threading: parsing is pure and thread-safe. A parsed query carries PCRE2
 * match state, so one query may be evaluated by one thread at a time. */
#ifndef SL_LOGQL_H
#define SL_LOGQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/bytes.h"
#include "common/labels.h"

/* Match limit handed to pcre2_set_match_limit (and used for the JIT). */
#define SL_LOGQL_REGEX_MATCH_LIMIT 1000000u
/* Upper bound on the query text, to keep a hostile request cheap. */
#define SL_LOGQL_MAX_QUERY_BYTES (128 * 1024)

struct sl_logql_regex; /* compiled PCRE2 pattern, opaque */
struct sl_logql_query;

enum sl_logql_match_op {
    SL_LOGQL_MATCH_EQ,  /* =  */
    SL_LOGQL_MATCH_NEQ, /* != */
    SL_LOGQL_MATCH_RE,  /* =~ */
    SL_LOGQL_MATCH_NRE, /* !~ */
};

struct sl_logql_matcher {
    struct sl_bytes name;
    struct sl_bytes value; /* unescaped */
    enum sl_logql_match_op op;
    struct sl_logql_regex *re; /* RE and NRE only */
};

enum sl_logql_filter_op {
    SL_LOGQL_FILTER_CONTAINS,     /* |= */
    SL_LOGQL_FILTER_NOT_CONTAINS, /* != */
    SL_LOGQL_FILTER_MATCH,        /* |~ */
    SL_LOGQL_FILTER_NOT_MATCH,    /* !~ */
};

struct sl_logql_line_filter {
    enum sl_logql_filter_op op;
    struct sl_bytes value;     /* unescaped */
    struct sl_logql_regex *re; /* MATCH and NOT_MATCH only */
};

/* Pipeline stages, applied in order. Later levels add parser, label filter,
 * line_format, label_format, drop, keep, decolorize, unwrap kinds. */
enum sl_logql_stage_kind {
    SL_LOGQL_STAGE_LINE_FILTER,
};

struct sl_logql_stage {
    enum sl_logql_stage_kind kind;
    union {
        struct sl_logql_line_filter line_filter;
    } u;
};

/* A log query: a stream selector and a pipeline. */
struct sl_logql_log_expr {
    struct sl_logql_matcher *matchers;
    size_t nmatchers;
    struct sl_logql_stage *stages;
    size_t nstages;
};

/* Expression kinds. Later levels add range aggregations, vector
 * aggregations, binary operations and literals. */
enum sl_logql_expr_kind {
    SL_LOGQL_EXPR_LOG,
};

struct sl_logql_expr {
    enum sl_logql_expr_kind kind;
    union {
        struct sl_logql_log_expr log;
    } u;
};

struct sl_logql_query {
    struct sl_arena arena; /* AST and its strings */
    struct sl_logql_expr *root;
    struct sl_logql_regex *regexes; /* list of every compiled regex, for freeing */
    uint64_t regex_limit_hits;      /* matches abandoned at the match limit */
};

/* Parses a whole LogQL query. On success returns 0 and a query in *out
 * (caller frees with sl_logql_query_free). On failure *out is NULL and a
 * message is appended to err (if not NULL):
 *   SL_EINVAL   syntax error, invalid string or regex, or a selector without
 *               a non-empty-matching matcher ("parse error ...")
 *   SL_EUNSUPP  valid LogQL outside what is supported
 *               ("unsupported in this version: ...")
 *   SL_ETOOBIG  query longer than SL_LOGQL_MAX_QUERY_BYTES */
int sl_logql_parse(const char *s, size_t n, struct sl_logql_query **out, struct sl_buf *err);

/* Like sl_logql_parse, but the query must be a stream selector alone (the
 * match[] of /series): anything after the selector is SL_EINVAL. */
int sl_logql_parse_selector(const char *s, size_t n, struct sl_logql_query **out,
                            struct sl_buf *err);

void sl_logql_query_free(struct sl_logql_query *q);

/* The log expression of q, or NULL if q is not a log query. */
const struct sl_logql_log_expr *sl_logql_log_expr(const struct sl_logql_query *q);

/* Canonical text of q, appended to out: `{a="b", c=~"d"} |= "x" != "y"`.
 * Strings are quoted as Go's strconv.Quote does. Parsing the canonical text
 * gives the same canonical text. */
void sl_logql_format(const struct sl_logql_query *q, struct sl_buf *out);

/* Appends a Go-quoted ("...") form of v to out. */
void sl_logql_quote(struct sl_buf *out, struct sl_bytes v);

/* True if value satisfies the matcher (an absent label has value ""). */
bool sl_logql_matcher_matches(struct sl_logql_query *q, const struct sl_logql_matcher *m,
                              struct sl_bytes value);

/* True if the label set satisfies every matcher of the log expression. */
bool sl_logql_match_labels(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                           const struct sl_labels *ls);

/* True if the line passes every line filter of the pipeline. */
bool sl_logql_match_line(struct sl_logql_query *q, const struct sl_logql_log_expr *e,
                         struct sl_bytes line);

#endif
